//! The log's clock: the timestamp a round signs. Only the clock of the
//! machine that signs matters, and it is not trusted blindly: timestamps
//! must strictly increase, and none may be far ahead of that clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// How far ahead of the local clock a round may sign. A clock stepped back
/// by a little (an NTP correction, a leap-second smear) lets the log go on
/// at one millisecond past its last checkpoint; more than this means the
/// clock or the log's past is wrong, and signing on would carry the log
/// into the future.
pub const MAX_AHEAD_MS: u64 = 3_000;

/// Milliseconds since the Unix epoch, by this machine's clock: the clock
/// rounds' timestamps come from.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The clock is too far behind the log's last checkpoint to sign.
#[derive(Debug, thiserror::Error)]
#[error("the clock is {behind_ms} ms behind the log's last checkpoint (more than {MAX_AHEAD_MS} ms); refusing to sign ahead of it")]
pub(crate) struct ClockBehind {
    pub behind_ms: u64,
}

/// The timestamp of a round after a checkpoint signed at `last`, when the
/// clock says `now`: `now`, or just after `last` if the clock has not
/// passed it yet but is within [`MAX_AHEAD_MS`] of it.
pub(crate) fn round_timestamp(last: u64, now: u64) -> Result<u64, ClockBehind> {
    let next = now.max(last + 1);
    if next - now > MAX_AHEAD_MS {
        return Err(ClockBehind {
            behind_ms: last - now,
        });
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_increase_and_never_run_far_ahead() {
        assert_eq!(round_timestamp(1_000, 5_000).unwrap(), 5_000);
        assert_eq!(round_timestamp(5_000, 5_000).unwrap(), 5_001);
        assert_eq!(round_timestamp(7_000, 5_000).unwrap(), 7_001);
        assert_eq!(
            round_timestamp(5_000 + MAX_AHEAD_MS - 1, 5_000).unwrap(),
            5_000 + MAX_AHEAD_MS
        );
        let behind = round_timestamp(5_000 + MAX_AHEAD_MS, 5_000).unwrap_err();
        assert_eq!(behind.behind_ms, MAX_AHEAD_MS);
        assert!(round_timestamp(35_000, 5_000).is_err());
    }
}
