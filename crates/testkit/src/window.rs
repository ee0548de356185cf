//! The NotAfter window of a test log, `[START, LIMIT)`: the current UTC
//! year, from January 1 (inclusive) to January 1 of the next (exclusive).
//!
//! A log refuses every submission (410, read-only) once the clock passes
//! its `not_after_limit` plus `sunset_grace_days`, so a window written as
//! fixed dates breaks every test that submits once the calendar passes
//! it. This one is read from the clock, once per test process: at any
//! moment of a year, that year's window has not ended yet, and a run that
//! goes past New Year's midnight keeps its window and stays within the
//! grace period.
//!
//! Leaves inside it take [`mid_window`] (or an offset from `ts(&START)`);
//! a test that needs a NotAfter outside derives it from `START` or
//! `LIMIT`, and builds the messages it expects with [`rfc3339`].

use std::sync::LazyLock;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

/// The UTC year the window covers: the current one when first asked.
static YEAR: LazyLock<i32> = LazyLock::new(|| OffsetDateTime::now_utc().year());

/// The window's start (inclusive), RFC 3339: January 1 of this UTC year.
pub static START: LazyLock<String> = LazyLock::new(|| rfc3339(january_first(*YEAR)));

/// The window's end (exclusive), RFC 3339: January 1 of the next year.
pub static LIMIT: LazyLock<String> = LazyLock::new(|| rfc3339(january_first(*YEAR + 1)));

/// A NotAfter well inside the window: June 1 of its year, midnight UTC.
pub fn mid_window() -> OffsetDateTime {
    Date::from_calendar_date(*YEAR, Month::June, 1)
        .expect("June 1")
        .midnight()
        .assume_utc()
}

/// `t` in RFC 3339, as the log writes times in its messages and metadata
/// (e.g. `2026-01-01T00:00:00Z`); the inverse of [`crate::pki::ts`].
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("RFC 3339 time")
}

fn january_first(year: i32) -> OffsetDateTime {
    Date::from_calendar_date(year, Month::January, 1)
        .expect("January 1")
        .midnight()
        .assume_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ts;

    #[test]
    fn the_window_is_this_year_and_has_not_ended() {
        let (start, limit) = (ts(&START), ts(&LIMIT));
        let now = OffsetDateTime::now_utc();
        // (Up to a day past LIMIT: the year may have been read just before
        // New Year's midnight.)
        assert!(
            start <= now && now < limit + time::Duration::days(1),
            "{now} not in [{start}, {limit})"
        );
        assert!(start < mid_window() && mid_window() < limit);
        assert_eq!(rfc3339(start), *START);
        assert!(START.ends_with("-01-01T00:00:00Z") && LIMIT.ends_with("-01-01T00:00:00Z"));
    }
}
