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
//!   exceeds the budget, no new submission can be answered in time. And
//!   while the log sheds work anyway, a submission that arrives too soon
//!   after a round started to make it is refused at once: it would wait a
//!   whole period for the next round, then for that round and the signing
//!   of its SCTs ([`AnswerTail`]), beyond the budget. The log sheds those
//!   first and keeps its turns for submissions it can answer in time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ct_sequencer::now_millis;
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
    /// When a submission last waited in vain for a turn (ms since the
    /// Unix epoch): while that is recent, the log is shedding work.
    last_turn_missed_ms: AtomicU64,
    /// The front runtime's.
    lag: Arc<RuntimeLag>,
    log_runtime: Handle,
}

impl WorkQueue {
    pub fn new(limit: usize, lag: Arc<RuntimeLag>, log_runtime: Handle) -> Arc<WorkQueue> {
        Arc::new(WorkQueue {
            permits: Arc::new(Semaphore::new(limit)),
            last_turn_missed_ms: AtomicU64::new(0),
            lag,
            log_runtime,
        })
    }

    /// A turn to do a submission's work, within `max_wait`.
    async fn enter(self: &Arc<Self>, max_wait: Duration) -> Option<Working> {
        let turn = self.permits.clone().acquire_owned();
        let Ok(Ok(permit)) = tokio::time::timeout(max_wait, turn).await else {
            self.last_turn_missed_ms
                .fetch_max(now_millis(), Ordering::Relaxed);
            return None;
        };
        Some(Working {
            queue: self.clone(),
            _permit: permit,
        })
    }

    /// Whether a submission waited in vain for a turn within `span`.
    fn missed_a_turn_within(&self, span: Duration) -> bool {
        let missed = self.last_turn_missed_ms.load(Ordering::Relaxed);
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
        now_millis().saturating_sub(missed) <= span_ms
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
    tail: AnswerTail,
}

/// Why a submission is refused: `REASONS[reason as usize]` labels it in
/// `ct_admission_refused_total`.
#[derive(Clone, Copy)]
enum Reason {
    SlowRounds,
    Overloaded,
    Busy,
    /// Shed first: it would be answered beyond the budget.
    Late,
}
const REASONS: [&str; 4] = ["slow_rounds", "overloaded", "busy", "late"];

impl Admission {
    pub fn new(queue: Arc<WorkQueue>, period: Duration, budget: Duration, log: &str) -> Admission {
        Admission {
            queue,
            period,
            budget,
            refused: REASONS.map(|reason| {
                metrics::counter!("ct_admission_refused_total", "log" => log.to_string(), "reason" => reason)
            }),
            tail: AnswerTail::default(),
        }
    }

    /// Notes that an SCT of the round with timestamp `round_ms` (this
    /// process's sequencer's) was signed at `now_ms`.
    pub fn answered(&self, round_ms: u64, now_ms: u64) {
        self.tail.record(round_ms, now_ms);
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
            let took = local.sequencer.round_time();
            if let Err(why) = rounds_allow(self.period, took, self.budget) {
                return Err(self.refuse(Reason::SlowRounds, why));
            }
            // A round's last SCT is signed after the round itself; both are
            // part of the wait of every entry in it.
            rounds.took = took.max(self.tail.lately(now_millis(), self.period));
            let next = local.sequencer.next_round();
            rounds.next_in = Some(next.saturating_duration_since(Instant::now()));
        }
        if !self.queue.lag.admits_one() {
            let why = format!(
                "the server is overloaded (requests wait {} ms for a core); retry later",
                self.queue.lag.standing().as_millis()
            );
            return Err(self.refuse(Reason::Overloaded, why));
        }
        let keeps_up = self.queue.lag.keeps_up();
        // Shedding: the front is behind, or a submission lately waited in
        // vain for a turn.
        let shedding = !keeps_up || self.queue.missed_a_turn_within(self.period);
        let Some(max_wait) = max_turn_wait(&rounds, self.budget, keeps_up, shedding) else {
            return Err(self.refuse(Reason::Late, too_late(&rounds, self.budget)));
        };
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

/// Why a submission now would get its SCT too late, and how much later
/// in the period it would not.
fn too_late(rounds: &Rounds, budget: Duration) -> String {
    let wait = rounds.next_in.unwrap_or_default() + rounds.took;
    format!(
        "the log is busy, and this submission would wait {:.2} s for its SCT, beyond its budget; retry in {} ms",
        wait.as_secs_f64(),
        wait.saturating_sub(budget).as_millis()
    )
}

/// A log's rounds as admission sees them.
struct Rounds {
    period: Duration,
    /// How long after its start a round's last SCT is signed, lately
    /// (where this process sequences the log; else how long rounds take).
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

/// Whether a submission validated now would get its SCT within `budget`
/// (assumed where another process sequences the log).
fn answered_in_time(rounds: &Rounds, budget: Duration) -> bool {
    rounds
        .next_in
        .is_none_or(|next_in| next_in + rounds.took <= budget)
}

/// How long a submission may wait for its turn, shorter while the front
/// is behind; `None` to refuse it at once, because the log is shedding
/// work and it would be answered beyond the budget. Measured at capacity
/// (BENCHMARKS.md): refusing those always turned away 7-10% of what the
/// log serves within its budget's p99; only while shedding, next to none.
fn max_turn_wait(
    rounds: &Rounds,
    budget: Duration,
    keeps_up: bool,
    shedding: bool,
) -> Option<Duration> {
    if shedding && !answered_in_time(rounds, budget) {
        return None;
    }
    let wait = turn_wait(rounds, budget);
    Some(if keeps_up {
        wait
    } else {
        wait.min(SHORT_TURN_WAIT)
    })
}

/// How long after its round started the last SCT of recent rounds was
/// signed: the round's own time, then the burst of signing and answering
/// that follows every round (most of an entry's remaining CPU, all at
/// once), which is part of the wait of the round's entries and grows with
/// the round. Rounds are told apart by their timestamps.
#[derive(Default)]
struct AnswerTail {
    /// Held only to update or read three numbers, never across an await.
    state: Mutex<TailState>,
}

#[derive(Default)]
struct TailState {
    /// The newest round answered, by its timestamp (ms).
    round_ms: u64,
    /// Its slowest SCT so far, after its start (ms).
    slowest_ms: u64,
    /// The rounds before it: a moving average of their slowest (ms).
    lately_ms: u64,
}

impl AnswerTail {
    fn record(&self, round_ms: u64, now_ms: u64) {
        let after = now_ms.saturating_sub(round_ms);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if round_ms > state.round_ms {
            // The previous round is answered: one slow round is noise,
            // several are a trend, as with the rounds' own time.
            state.lately_ms = (state.lately_ms * 3 + state.slowest_ms) / 4;
            state.round_ms = round_ms;
            state.slowest_ms = after;
        } else if round_ms == state.round_ms {
            state.slowest_ms = state.slowest_ms.max(after);
        }
    }

    /// The tail of recent rounds; nothing when no round was answered for
    /// a few periods (where everything was refused there would be no new
    /// measurement, and old news must not refuse for ever).
    fn lately(&self, now_ms: u64, period: Duration) -> Duration {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stale_ms = 3 * u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        if now_ms.saturating_sub(state.round_ms) > stale_ms {
            return Duration::ZERO;
        }
        Duration::from_millis(state.lately_ms.max(state.slowest_ms))
    }
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
        assert!(!queue.missed_a_turn_within(Duration::from_secs(1)));
        let started = tokio::time::Instant::now();
        assert!(queue.enter(wait).await.is_none());
        assert_eq!(started.elapsed(), wait);
        // The log is shedding now, as admission sees it.
        assert!(queue.missed_a_turn_within(Duration::from_secs(1)));
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

    /// While the log sheds work, a submission that would be answered
    /// beyond the budget is refused at once; otherwise it waits its turn.
    #[test]
    fn the_late_are_refused_first_only_while_shedding() {
        let ms = Duration::from_millis;
        // A round and its SCTs taking 300 ms: whoever arrives in the first
        // 100 ms after a round started would wait 1.2 s and more.
        let rounds = |next_in| Rounds {
            period: ms(1000),
            took: ms(300),
            next_in: Some(ms(next_in)),
        };
        let (late, in_time) = (rounds(950), rounds(900));
        assert!(!answered_in_time(&late, ms(1200)));
        assert!(answered_in_time(&in_time, ms(1200)));
        assert_eq!(max_turn_wait(&late, ms(1200), true, true), None);
        assert_eq!(max_turn_wait(&late, ms(1200), false, true), None);
        // Keeping up: served, late as it may be.
        assert_eq!(max_turn_wait(&late, ms(1200), true, false), Some(ms(920)));
        assert_eq!(max_turn_wait(&in_time, ms(1200), true, true), Some(ms(870)));
        // The front behind: a shorter wait.
        assert_eq!(
            max_turn_wait(&in_time, ms(1200), false, true),
            Some(SHORT_TURN_WAIT)
        );
        // Sequenced elsewhere: nothing is known to be late.
        let elsewhere = Rounds {
            next_in: None,
            ..rounds(0)
        };
        assert!(answered_in_time(&elsewhere, ms(1200)));
    }

    /// The tail is the slowest SCT of recent rounds after their start,
    /// averaged over rounds; stragglers of older rounds and old news do
    /// not count.
    #[test]
    fn the_answer_tail_follows_the_slowest_sct_of_recent_rounds() {
        let tail = AnswerTail::default();
        let period = Duration::from_secs(1);
        let ms = Duration::from_millis;
        assert_eq!(tail.lately(10_000, period), ms(0));
        tail.record(10_000, 10_050);
        tail.record(10_000, 10_300);
        tail.record(10_000, 10_100);
        assert_eq!(tail.lately(10_400, period), ms(300));
        // The next round: the last one's 300 ms now weighs a quarter (75).
        tail.record(11_000, 11_100);
        tail.record(10_000, 11_900);
        assert_eq!(tail.lately(11_200, period), ms(100));
        // And another: (75 * 3 + 100) / 4.
        tail.record(12_000, 12_040);
        assert_eq!(tail.lately(12_100, period), ms(81));
        // No round answered for over three periods: nothing is known.
        assert_eq!(tail.lately(15_001, period), ms(0));
    }
}
