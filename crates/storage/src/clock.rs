//! Clocks a lease can trust. A holder measures its lease on the boot-time
//! clock (`CLOCK_BOOTTIME`), which keeps counting while a VM or laptop is
//! suspended, unlike the monotonic clock: a holder resumed after a long
//! suspend must find its lease run out, not carry on as if no time had
//! passed. And a machine compares its wall clock with the lock store's
//! ([`ClockReading`]): one whose clock is far off must not sequence, since
//! it would sign timestamps in the future or the past.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How far this machine's clock may be from the lock store's before it
/// refuses to sequence. Checkpoints and SCTs carry this machine's time,
/// and monitors and browsers judge them by theirs.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(3);

/// An instant on the boot-time clock (time since boot, suspends included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl BootInstant {
    pub fn now() -> BootInstant {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        BootInstant(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
    }

    /// How long until `self`, zero if passed.
    pub fn remaining(self) -> Duration {
        self.0.saturating_sub(BootInstant::now().0)
    }
}

impl std::ops::Add<Duration> for BootInstant {
    type Output = BootInstant;
    fn add(self, d: Duration) -> BootInstant {
        BootInstant(self.0 + d)
    }
}

/// This machine's wall clock against the lock store's, from one exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockReading {
    /// Local minus store, in milliseconds (positive: this clock is ahead).
    pub skew_ms: i64,
    /// How far off the reading itself may be: half the round trip, plus
    /// the store clock's resolution.
    pub uncertainty_ms: i64,
}

impl ClockReading {
    /// A reading from an exchange sent at `sent` and answered at
    /// `received` (both local), whose answer said `store` with `resolution`.
    pub fn from_exchange(
        sent: SystemTime,
        received: SystemTime,
        store: SystemTime,
        resolution: Duration,
    ) -> ClockReading {
        let millis = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        };
        let (sent, received) = (millis(sent), millis(received));
        // A truncated store clock (an HTTP Date) lies anywhere in the
        // `resolution` after what it says: take the middle.
        let store = millis(store) + resolution.as_millis() as i64 / 2;
        ClockReading {
            skew_ms: (sent + received) / 2 - store,
            uncertainty_ms: (received - sent).max(0) / 2 + resolution.as_millis() as i64 / 2,
        }
    }

    /// Why this clock must not sequence, if the skew is beyond
    /// [`MAX_CLOCK_SKEW`] even at the reading's most favourable.
    pub fn problem(&self) -> Option<String> {
        let certain = self.skew_ms.abs() - self.uncertainty_ms;
        if certain <= MAX_CLOCK_SKEW.as_millis() as i64 {
            return None;
        }
        let (how, by) = if self.skew_ms > 0 {
            ("ahead of", self.skew_ms)
        } else {
            ("behind", -self.skew_ms)
        };
        Some(format!(
            "this machine's clock is {:.1} s {how} the lock store's (more than {} s): not sequencing until it is corrected (NTP)",
            by as f64 / 1000.0,
            MAX_CLOCK_SKEW.as_secs()
        ))
    }
}

/// The last word on this machine's clock, for `/health`.
#[derive(Debug, Default)]
pub struct ClockStatus(Mutex<Option<String>>);

impl ClockStatus {
    pub fn set(&self, problem: Option<String>) {
        *self.0.lock().unwrap() = problem;
    }

    pub fn problem(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_judge_skew_beyond_their_own_uncertainty() {
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        let second = Duration::from_secs(1);
        // Sent at 10.000, answered at 10.100; the store said "10" (10.000-10.999).
        let fine = ClockReading::from_exchange(at(10_000), at(10_100), at(10_000), second);
        assert_eq!(
            fine,
            ClockReading {
                skew_ms: -450,
                uncertainty_ms: 550
            }
        );
        assert_eq!(fine.problem(), None);
        let ahead = ClockReading::from_exchange(at(40_000), at(40_100), at(10_000), second);
        assert_eq!(ahead.skew_ms, 29_550);
        assert!(ahead.problem().unwrap().contains("29.6 s ahead of"));
        let behind =
            ClockReading::from_exchange(at(10_000), at(10_002), at(40_000), Duration::ZERO);
        assert!(behind.problem().unwrap().contains("30.0 s behind"));
        // Within the bound once the reading's own uncertainty is allowed for.
        let slow_answer = ClockReading::from_exchange(at(10_000), at(14_000), at(10_000), second);
        assert_eq!(slow_answer.problem(), None);
    }

    #[test]
    fn boot_time_moves_forward() {
        let a = BootInstant::now();
        assert!(a + Duration::from_secs(1) > BootInstant::now());
        assert!((a + Duration::from_secs(60)).remaining() > Duration::from_secs(59));
        assert_eq!(a.remaining(), Duration::ZERO);
    }
}
