//! Admission control: whether a submission can be answered within the
//! latency budget, decided once its body has arrived and before it is
//! parsed or its chain validated. A refusal (503 with `Retry-After`) costs
//! a small fraction of an accepted entry's CPU. Taking work the log cannot
//! finish in time would instead make every submission late (congestion
//! collapse), and CAs give up on a log after a couple of seconds anyway.
//!
//! Two measurements decide (a full pool does not: an entry the log already
//! knows is answered even then, and only its validation can tell):
//! - **the work queue**: submissions being parsed, validated and handed to
//!   the batchers, across every log of the process. That is CPU work, done
//!   by a few per core at a time; the others wait their turn. A new one
//!   whose expected wait (the submissions ahead of it times how long one
//!   takes lately) is beyond [`MAX_QUEUE_WAIT`] is refused at once;
//! - **the rounds**: when the period plus the time rounds take lately
//!   exceeds the budget, no new submission can be answered in time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::refused::Refused;
use crate::sequencing::Sequencing;

/// Submissions parsed and validated at once per core, by default: enough to
/// keep every core busy while some wait on storage for a new issuer.
pub const WORKING_PER_CORE: usize = 4;
/// The longest a submission may wait for its turn to be validated. Its SCT
/// then waits for the next round (up to a period) and the round itself:
/// with this, about 1.2 s at the default 1 s period.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_millis(100);

/// The default `max_working_submissions`.
pub fn default_working() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * WORKING_PER_CORE).max(8)
}

/// The CPU-bound part of every submission of the process: at most `limit`
/// at once, the others waiting in line for a bounded time.
pub struct WorkQueue {
    permits: Arc<Semaphore>,
    limit: u64,
    waiting: AtomicUsize,
    /// How long one submission's work takes lately, in microseconds.
    work_micros: AtomicU64,
}

impl WorkQueue {
    pub fn new(limit: usize) -> Arc<WorkQueue> {
        Arc::new(WorkQueue {
            permits: Arc::new(Semaphore::new(limit)),
            limit: limit as u64,
            waiting: AtomicUsize::new(0),
            // A first guess, replaced as soon as submissions are measured.
            work_micros: AtomicU64::new(200),
        })
    }

    /// A turn to do a submission's work: at once, or after a wait that is
    /// expected (and bounded) to stay within [`MAX_QUEUE_WAIT`]; `None`
    /// when it would not.
    async fn enter(self: &Arc<Self>) -> Option<Working> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => self.wait_in_line().await?,
        };
        Some(Working {
            queue: self.clone(),
            _permit: permit,
            started: Instant::now(),
        })
    }

    async fn wait_in_line(&self) -> Option<OwnedSemaphorePermit> {
        let ahead = self.waiting.fetch_add(1, Ordering::AcqRel) as u64 + 1;
        let expected = self.work_micros.load(Ordering::Relaxed) * ahead / self.limit;
        let permit = if Duration::from_micros(expected) > MAX_QUEUE_WAIT {
            None
        } else {
            let turn = self.permits.clone().acquire_owned();
            tokio::time::timeout(MAX_QUEUE_WAIT, turn).await.ok()?.ok()
        };
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit
    }
}

/// A submission's turn in the [`WorkQueue`]; ends when dropped, which also
/// teaches the queue how long a turn takes.
pub struct Working {
    queue: Arc<WorkQueue>,
    _permit: OwnedSemaphorePermit,
    started: Instant,
}

impl Drop for Working {
    fn drop(&mut self) {
        let took = self.started.elapsed().as_micros() as u64;
        // A moving average over the last few dozen submissions.
        let _ =
            self.queue
                .work_micros
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |average| {
                    Some(average - average / 16 + took / 16)
                });
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
        if let Some(local) = sequencing.active_here() {
            let round_time = local.sequencer.round_time();
            if let Err(why) = rounds_allow(self.period, round_time, self.budget) {
                return Err(self.refuse("slow_rounds", why));
            }
        }
        self.queue
            .enter()
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

    /// Past its limit the queue lets in only whom it expects to serve
    /// within the bound, refuses the rest at once, and learns how long a
    /// turn takes.
    #[tokio::test(start_paused = true)]
    async fn the_queue_refuses_what_it_cannot_serve_in_time() {
        let queue = WorkQueue::new(2);
        let (a, b) = (queue.enter().await.unwrap(), queue.enter().await.unwrap());
        // Two turns of 200 µs ahead, on two lanes: well within the bound.
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.enter().await.is_some() }
        });
        tokio::task::yield_now().await;
        drop(a);
        assert!(waiting.await.unwrap(), "served when a turn ended");
        let _c = queue.enter().await.unwrap(); // both lanes busy again: b and c
                                               // Turns that take 50 ms each: a fifth in line would wait beyond it.
        queue.work_micros.store(50_000, Ordering::Relaxed);
        queue.waiting.store(4, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        assert!(queue.enter().await.is_none());
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "refused at once, not after waiting"
        );
        queue.waiting.store(0, Ordering::Relaxed);
        // Nobody ends a turn: the wait is bounded.
        queue.work_micros.store(1_000, Ordering::Relaxed);
        assert!(queue.enter().await.is_none());
        assert!(started.elapsed() >= MAX_QUEUE_WAIT);
        drop(b);
        assert!(
            queue.work_micros.load(Ordering::Relaxed) < 1_000,
            "learned from b's turn"
        );
    }
}
