//! How long work that is ready waits for the process's async workers: the
//! queue delay every request sees before any of its code runs, which no
//! handler can measure for itself (its wait ends before it starts).
//!
//! A probe thread hands the runtime a task every [`PROBE_EVERY`] and notes
//! how late it runs. It spawns from outside the runtime, as the blocking
//! pool and the storage clients wake a round: such work joins the back of
//! the shared queue, behind every connection that overflowed its worker's
//! own queue, which is the wait a flood makes long (a timer woken on a
//! worker would jump it). Like CoDel, what counts is the *standing* delay,
//! the least lateness over a [`WINDOW`]: a burst (every SCT of a round
//! signed at once) makes some probes late, but a window in which even the
//! least late probe waited long means work arrives faster than the cores
//! can do it, and only refusing some of it will drain the queue.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

/// How often the probe hands the runtime a task.
const PROBE_EVERY: Duration = Duration::from_millis(5);
/// The span over which the least lateness is the standing delay.
const WINDOW: Duration = Duration::from_millis(100);

/// The standing delay beyond which the runtime takes less new work.
pub const TARGET: Duration = Duration::from_millis(25);
/// The least share of new work still taken when overloaded: refusals cost
/// CPU too, and a flood of them alone must not starve the entries that
/// would be answered.
const MIN_SHARE: u32 = SHARE_SCALE / 16;
/// Shares are counted in parts of this.
const SHARE_SCALE: u32 = 1024;

/// The standing queue delay of the async workers, as of the last window,
/// and the share of new work they can take: cut by 30% after every
/// window whose standing delay was beyond [`TARGET`], grown back by a
/// twentieth after every window within it (like TCP's congestion window,
/// quick to back off, slow to probe for more).
pub struct RuntimeLag {
    standing_micros: AtomicU64,
    share: AtomicU32,
}

impl Default for RuntimeLag {
    fn default() -> RuntimeLag {
        RuntimeLag {
            standing_micros: AtomicU64::new(0),
            share: AtomicU32::new(SHARE_SCALE),
        }
    }
}

impl RuntimeLag {
    /// A lag that starts measuring `runtime` now, until it is dropped or
    /// the runtime shuts down.
    pub fn watch(runtime: Handle) -> std::io::Result<Arc<RuntimeLag>> {
        let lag = Arc::new(RuntimeLag::default());
        let watched = Arc::downgrade(&lag);
        std::thread::Builder::new()
            .name("lag-probe".into())
            .spawn(move || probe(watched, runtime))?;
        Ok(lag)
    }

    /// The least time ready work waited for a worker over the last window.
    pub fn standing(&self) -> Duration {
        Duration::from_micros(self.standing_micros.load(Ordering::Relaxed))
    }

    /// Whether the runtime kept up lately (its share is whole).
    pub fn keeps_up(&self) -> bool {
        self.share.load(Ordering::Relaxed) >= SHARE_SCALE
    }

    /// Whether to take one more piece of new work: always while the
    /// runtime keeps up, else by chance at the current share.
    pub fn admits_one(&self) -> bool {
        let share = self.share.load(Ordering::Relaxed);
        share >= SHARE_SCALE || fastrand::u32(0..SHARE_SCALE) < share
    }

    fn set_standing(&self, delay: Duration) {
        let micros = delay.as_micros().min(u64::MAX as u128) as u64;
        self.standing_micros.store(micros, Ordering::Relaxed);
        let share = self.share.load(Ordering::Relaxed);
        let share = if delay > TARGET {
            (share * 7 / 10).max(MIN_SHARE)
        } else {
            (share + SHARE_SCALE / 20).min(SHARE_SCALE)
        };
        self.share.store(share, Ordering::Relaxed);
        metrics::gauge!("ct_runtime_standing_delay_seconds").set(delay.as_secs_f64());
        metrics::gauge!("ct_admitted_share").set(f64::from(share) / f64::from(SHARE_SCALE));
    }
}

/// Measures until the lag is dropped or the runtime is gone.
fn probe(lag: Weak<RuntimeLag>, runtime: Handle) {
    let mut window = Window::new(Instant::now());
    loop {
        std::thread::sleep(PROBE_EVERY);
        let (ran, run) = mpsc::sync_channel(1);
        let sent = Instant::now();
        runtime.spawn(async move {
            let _ = ran.send(());
        });
        loop {
            // A probe still waiting when a window ends is as late as that.
            let outcome = run.recv_timeout(WINDOW);
            let Some(lag) = lag.upgrade() else { return };
            let now = Instant::now();
            if let Some(standing) = window.note(now, now - sent) {
                lag.set_standing(standing);
            }
            match outcome {
                Ok(()) => break,
                Err(RecvTimeoutError::Timeout) => continue,
                // The runtime dropped the task: it is shutting down.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// The least lateness seen since a window opened.
struct Window {
    opened: Instant,
    least: Duration,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            opened: now,
            least: Duration::MAX,
        }
    }

    /// Notes one probe's lateness; when the window is over, returns its
    /// standing delay and opens the next.
    fn note(&mut self, now: Instant, late: Duration) -> Option<Duration> {
        self.least = self.least.min(late);
        if now - self.opened < WINDOW {
            return None;
        }
        let standing = self.least;
        *self = Window::new(now);
        Some(standing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst makes some probes late; only a window in which every probe
    /// was late is a standing delay.
    #[test]
    fn the_standing_delay_is_the_least_lateness_of_a_window() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut window = Window::new(start);
        assert_eq!(window.note(start + ms(40), ms(60)), None);
        assert_eq!(window.note(start + ms(45), ms(0)), None);
        assert_eq!(window.note(start + ms(100), ms(1)), Some(ms(0)));
        // One probe that ran 300 ms late spans whole windows by itself.
        assert_eq!(window.note(start + ms(400), ms(300)), Some(ms(300)));
        assert_eq!(window.note(start + ms(450), ms(30)), None);
        assert_eq!(window.note(start + ms(500), ms(20)), Some(ms(20)));
    }

    /// Standing delays cut the share of work admitted, down to a floor a
    /// flood of refusals cannot starve; windows within the target grow it
    /// back, slower than it was cut.
    #[test]
    fn the_share_backs_off_quickly_and_recovers_slowly() {
        let lag = RuntimeLag::default();
        assert!((0..1000).all(|_| lag.admits_one()));
        let admitted = |lag: &RuntimeLag| (0..10_000).filter(|_| lag.admits_one()).count();
        lag.set_standing(TARGET * 2);
        assert!(
            (6_500..7_500).contains(&admitted(&lag)),
            "{}",
            admitted(&lag)
        );
        for _ in 0..50 {
            lag.set_standing(TARGET * 2);
        }
        assert_eq!(lag.share.load(Ordering::Relaxed), MIN_SHARE);
        assert!((400..900).contains(&admitted(&lag)), "{}", admitted(&lag));
        // Five windows within the target grow it by a quarter.
        for _ in 0..5 {
            lag.set_standing(TARGET / 2);
        }
        let quarter = MIN_SHARE + 5 * (SHARE_SCALE / 20);
        assert_eq!(lag.share.load(Ordering::Relaxed), quarter);
        for _ in 0..20 {
            lag.set_standing(Duration::ZERO);
        }
        assert!((0..1000).all(|_| lag.admits_one()));
    }

    /// The probe itself: an idle runtime has no standing delay, and one
    /// whose only worker is held busy has one.
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_worker_is_a_standing_delay() {
        let lag = RuntimeLag::watch(Handle::current()).unwrap();
        tokio::time::sleep(WINDOW * 3).await;
        assert!(
            lag.standing() < Duration::from_millis(20),
            "{:?}",
            lag.standing()
        );
        // Hold the only worker without yielding, as a CPU-bound flood would.
        std::thread::sleep(WINDOW * 3);
        assert!(lag.standing() >= WINDOW, "{:?}", lag.standing());
        // Free again: the next windows show it.
        tokio::time::sleep(WINDOW * 3).await;
        assert!(
            lag.standing() < Duration::from_millis(20),
            "{:?}",
            lag.standing()
        );
    }
}
