//! Admission control: whether a submission can be answered within the
//! latency budget, decided once its body has arrived and before it is
//! parsed or its chain validated. A refusal (503 with `Retry-After`) costs
//! a small fraction of an accepted entry's CPU. Taking work the log cannot
//! finish in time would instead make every submission late (congestion
//! collapse), and CAs give up on a log after a couple of seconds anyway.
//!
//! Three measurements decide (a full pool does not: an entry the log already
//! knows is answered even then, and only its validation can tell):
//! - **the standing delay of the front runtime** ([`RuntimeLag`]), which
//!   reads every request: when even the least late of its tasks waited
//!   beyond [`lag::TARGET`](crate::lag::TARGET) lately, requests arrive
//!   faster than the cores can serve them, and only a share of them is
//!   admitted, refused at once otherwise;
//! - **the work queue**: submissions being parsed, validated and handed to
//!   the batchers, across every log of the process, on the log runtime. At
//!   most a few per core at a time; the others wait their turn, and one
//!   that waited as long as its log's budget allows ([`turn_wait`]) is
//!   refused;
//! - **the rounds**: when the period plus the time rounds take lately
//!   exceeds the budget, no new submission can be answered in time.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::lag::RuntimeLag;
use crate::refused::Refused;
use crate::sequencing::Sequencing;

/// Submissions parsed and validated at once per core, by default: enough to
/// keep every core busy while some wait on storage for a new issuer.
pub const WORKING_PER_CORE: usize = 4;
/// The least a submission may wait for its turn to be validated, whatever
/// its log's budget. Such waits fall mostly in the burst of SCTs that
/// follows each round, and usually cost no latency: the entry still makes
/// the next round, up to a period away.
pub const MIN_TURN_WAIT: Duration = Duration::from_millis(250);

/// The default `max_working_submissions`.
pub fn default_working() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * WORKING_PER_CORE).max(8)
}

/// The CPU-bound part of every submission of the process: at most `limit`
/// at once, the others waiting in line for a bounded time. It runs on the
/// log runtime (the one that runs the rounds), not on the front runtime
/// that reads and refuses requests: a flood fills the front's queue, and
/// an admitted submission, which wakes several times on its way to its
/// SCT, would otherwise wait behind the whole flood each time.
pub struct WorkQueue {
    permits: Arc<Semaphore>,
    /// The front runtime's.
    lag: Arc<RuntimeLag>,
    log_runtime: Handle,
}

impl WorkQueue {
    pub fn new(limit: usize, lag: Arc<RuntimeLag>, log_runtime: Handle) -> Arc<WorkQueue> {
        Arc::new(WorkQueue {
            permits: Arc::new(Semaphore::new(limit)),
            lag,
            log_runtime,
        })
    }

    /// A turn to do a submission's work, within `max_wait`.
    async fn enter(self: &Arc<Self>, max_wait: Duration) -> Option<Working> {
        let turn = self.permits.clone().acquire_owned();
        let permit = tokio::time::timeout(max_wait, turn).await.ok()?.ok()?;
        Some(Working {
            queue: self.clone(),
            _permit: permit,
        })
    }
}

/// A submission's turn in the [`WorkQueue`]; ends when dropped.
pub struct Working {
    queue: Arc<WorkQueue>,
    _permit: OwnedSemaphorePermit,
}

impl Working {
    /// Where the rest of the submission's work runs.
    pub fn runtime(&self) -> &Handle {
        &self.queue.log_runtime
    }
}

/// One log's admission control.
pub struct Admission {
    /// Shared by every log of the process (they share its cores).
    queue: Arc<WorkQueue>,
    period: Duration,
    /// The longest a submission should wait for its SCT.
    budget: Duration,
    log: String,
}

impl Admission {
    pub fn new(queue: Arc<WorkQueue>, period: Duration, budget: Duration, log: &str) -> Admission {
        Admission {
            queue,
            period,
            budget,
            log: log.to_string(),
        }
    }

    /// Admits a submission to be parsed and validated, or refuses it. Hold
    /// the turn until the entry is handed to the batchers.
    pub async fn admit(&self, sequencing: &Sequencing) -> Result<Working, Refused> {
        // Where another node sequences, its rounds count as instant here.
        let mut round_time = Duration::ZERO;
        if let Some(local) = sequencing.active_here() {
            round_time = local.sequencer.round_time();
            if let Err(why) = rounds_allow(self.period, round_time, self.budget) {
                return Err(self.refuse("slow_rounds", why));
            }
        }
        if !self.queue.lag.admits_one() {
            let why = format!(
                "the server is overloaded (requests wait {} ms for a core); retry later",
                self.queue.lag.standing().as_millis()
            );
            return Err(self.refuse("overloaded", why));
        }
        self.queue
            .enter(turn_wait(self.period, round_time, self.budget))
            .await
            .ok_or_else(|| self.refuse("busy", "the log is busy; retry later".into()))
    }

    fn refuse(&self, reason: &'static str, why: String) -> Refused {
        let labels = [("log", self.log.clone()), ("reason", reason.to_string())];
        metrics::counter!("ct_admission_refused_total", &labels).increment(1);
        Refused::Busy(why)
    }
}

/// Whether a submission can get its SCT within `budget` when rounds come
/// every `period` and take `round_time` lately; else why not.
fn rounds_allow(period: Duration, round_time: Duration, budget: Duration) -> Result<(), String> {
    let wait = period + round_time;
    if wait <= budget {
        return Ok(());
    }
    Err(format!(
        "rounds take {:.1} s lately, so a submission would wait {:.1} s, beyond the log's {:.1} s budget; retry later",
        round_time.as_secs_f64(),
        wait.as_secs_f64(),
        budget.as_secs_f64()
    ))
}

/// How long a submission may wait for its turn and still get its SCT
/// within `budget`: after its turn come at most a period until the next
/// round, and the round itself. A burst of 1,000 submissions at once takes
/// about a second to validate on two cores of a debug build, and gets its
/// SCTs in time with the default budget (the period + 1 s).
fn turn_wait(period: Duration, round_time: Duration, budget: Duration) -> Duration {
    budget
        .saturating_sub(period + round_time)
        .max(MIN_TURN_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_rounds_refuse_what_cannot_be_answered_in_time() {
        let ms = Duration::from_millis;
        assert!(rounds_allow(ms(1000), ms(200), ms(2000)).is_ok());
        assert!(rounds_allow(ms(1000), ms(1000), ms(2000)).is_ok());
        let why = rounds_allow(ms(1000), ms(1500), ms(2000)).unwrap_err();
        assert!(why.contains("rounds take 1.5 s"), "{why}");
    }

    /// Past its limit the queue serves whoever gets a turn in time, and
    /// refuses the others after a bounded wait.
    #[tokio::test(start_paused = true)]
    async fn the_queue_waits_a_bounded_time() {
        let queue = WorkQueue::new(2, Default::default(), Handle::current());
        let wait = Duration::from_millis(400);
        let (a, _b) = (
            queue.enter(wait).await.unwrap(),
            queue.enter(wait).await.unwrap(),
        );
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.enter(wait).await }
        });
        tokio::task::yield_now().await;
        drop(a);
        let _c = waiting.await.unwrap().expect("served when a turn ended");
        // Both turns taken, and nobody ends one.
        let started = tokio::time::Instant::now();
        assert!(queue.enter(wait).await.is_none());
        assert_eq!(started.elapsed(), wait);
    }

    #[test]
    fn a_turn_waits_what_the_budget_leaves_after_the_next_round() {
        let ms = Duration::from_millis;
        assert_eq!(turn_wait(ms(1000), ms(100), ms(2000)), ms(900));
        assert_eq!(turn_wait(ms(200), ms(50), ms(1200)), ms(950));
        // A tight budget still leaves the SCT burst after a round its time.
        assert_eq!(turn_wait(ms(1000), ms(100), ms(1200)), MIN_TURN_WAIT);
        assert_eq!(turn_wait(ms(1000), ms(1500), ms(2000)), MIN_TURN_WAIT);
    }
}
