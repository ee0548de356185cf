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
//!   most a few per core at a time; the others wait their turn, each as
//!   long as it can and still make a round that ends within its log's
//!   budget ([`turn_wait`]), and is refused then;
//! - **the rounds**: when the period plus the time rounds take lately
//!   exceeds the budget, no new submission can be answered in time.

use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::lag::RuntimeLag;
use crate::refused::Refused;
use crate::sequencing::Sequencing;

/// Submissions parsed and validated at once per core, by default: enough to
/// keep every core busy while some wait on storage for a new issuer.
pub const WORKING_PER_CORE: usize = 4;
/// A turn's wait while the front sheds a flood, and the least where
/// another process sequences the log (which round an entry makes is not
/// known here): long enough for the burst of work that follows each
/// round's SCTs. Under a flood a longer wait only makes the log runtime's
/// queue, and every answer, later (measured: accepted p99 2.4 s at 4x
/// with a 1.2 s budget).
pub const SHORT_TURN_WAIT: Duration = Duration::from_millis(250);
/// How long before a round a turn must start for its entry to make that
/// round: validation, and the batcher's wait (at most 25 ms).
const ROUND_MARGIN: Duration = Duration::from_millis(30);

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
    /// `ct_admission_refused_total` of this log, by index in `REASONS`.
    refused: [Counter; REASONS.len()],
}

/// Why a submission is refused: `REASONS[reason as usize]` labels it in
/// `ct_admission_refused_total`.
#[derive(Clone, Copy)]
enum Reason {
    SlowRounds,
    Overloaded,
    Busy,
}
const REASONS: [&str; 3] = ["slow_rounds", "overloaded", "busy"];

impl Admission {
    pub fn new(queue: Arc<WorkQueue>, period: Duration, budget: Duration, log: &str) -> Admission {
        Admission {
            queue,
            period,
            budget,
            refused: REASONS.map(|reason| {
                metrics::counter!("ct_admission_refused_total", "log" => log.to_string(), "reason" => reason)
            }),
        }
    }

    /// Admits a submission to be parsed and validated, or refuses it. Hold
    /// the turn until the entry is handed to the batchers.
    pub async fn admit(&self, sequencing: &Sequencing) -> Result<Working, Refused> {
        // Where another node sequences, its rounds count as instant here.
        let mut rounds = Rounds {
            period: self.period,
            took: Duration::ZERO,
            next_in: None,
        };
        if let Some(local) = sequencing.active_here() {
            rounds.took = local.sequencer.round_time();
            let next = local.sequencer.next_round();
            rounds.next_in = Some(next.saturating_duration_since(Instant::now()));
            if let Err(why) = rounds_allow(self.period, rounds.took, self.budget) {
                return Err(self.refuse(Reason::SlowRounds, why));
            }
        }
        if !self.queue.lag.admits_one() {
            let why = format!(
                "the server is overloaded (requests wait {} ms for a core); retry later",
                self.queue.lag.standing().as_millis()
            );
            return Err(self.refuse(Reason::Overloaded, why));
        }
        let mut max_wait = turn_wait(&rounds, self.budget);
        if !self.queue.lag.keeps_up() {
            max_wait = max_wait.min(SHORT_TURN_WAIT);
        }
        self.queue
            .enter(max_wait)
            .await
            .ok_or_else(|| self.refuse(Reason::Busy, "the log is busy; retry later".into()))
    }

    fn refuse(&self, reason: Reason, why: String) -> Refused {
        self.refused[reason as usize].increment(1);
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

/// A log's rounds as admission sees them.
struct Rounds {
    period: Duration,
    /// How long rounds take lately.
    took: Duration,
    /// Until the next round starts, where this process sequences the log.
    next_in: Option<Duration>,
}

/// How long a submission may wait for its turn and still get its SCT
/// within `budget`: until shortly before the last round that starts in
/// time to end within the budget. Right after a round starts that is
/// nearly a period, which lets the burst that follows each round's SCTs
/// (every CA's next submission at once) wait instead of being refused.
fn turn_wait(rounds: &Rounds, budget: Duration) -> Duration {
    let Some(next_in) = rounds.next_in else {
        // Any round may be the next: only the budget's slack beyond a
        // whole period and a round is safe.
        let slack = budget.saturating_sub(rounds.period + rounds.took);
        return slack.max(SHORT_TURN_WAIT);
    };
    let room = budget.saturating_sub(rounds.took + next_in);
    let later_rounds = room.as_nanos() / rounds.period.as_nanos().max(1);
    let last_start = next_in + rounds.period * u32::try_from(later_rounds).unwrap_or(u32::MAX);
    last_start.saturating_sub(ROUND_MARGIN)
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
    fn a_turn_waits_until_the_last_round_that_ends_in_the_budget() {
        let ms = Duration::from_millis;
        let rounds = |took, next_in: Option<u64>| Rounds {
            period: ms(1000),
            took: ms(took),
            next_in: next_in.map(ms),
        };
        // Just after a round started: until shortly before the next one.
        assert_eq!(turn_wait(&rounds(100, Some(990)), ms(1200)), ms(960));
        // Just before one: the one after still ends at 1.15 s.
        assert_eq!(turn_wait(&rounds(100, Some(50)), ms(1200)), ms(1020));
        // In between, the round after would end too late.
        assert_eq!(turn_wait(&rounds(100, Some(200)), ms(1200)), ms(170));
        // A larger budget reaches rounds further on.
        assert_eq!(turn_wait(&rounds(100, Some(500)), ms(3000)), ms(2470));
        // Sequenced elsewhere: the budget's slack, at least SHORT_TURN_WAIT.
        assert_eq!(turn_wait(&rounds(100, None), ms(2000)), ms(900));
        assert_eq!(turn_wait(&rounds(100, None), ms(1200)), SHORT_TURN_WAIT);
    }
}
