//! The per-log sequencer: the single owner of a log's tree.
//!
//! Exactly one sequencer runs per log. It receives batches of entries, and
//! every period runs one round (see `round`) that assigns indexes, writes
//! tiles, commits the new checkpoint to the lock backend and publishes it,
//! then answers each batch with its first index and the round's timestamp.
//!
//! It owns the tree's right edge and nothing else; it never validates
//! certificates, signs SCTs or deduplicates — those belong to the frontend
//! and batchers. It must never answer a batch before the checkpoint covering
//! it is published, and never sign a checkpoint that does not extend the one
//! in the lock.

mod edge;
mod load;
mod round;
mod staging;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ct_formats::{Entry, LogKey, SignedCheckpoint};
use ct_storage::{Claim, LockBackend, LockError, ObjectStore};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use load::LoadError;

/// Where a batch's entries landed: consecutive indexes from `first_index`,
/// all with the round's `timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequenced {
    pub first_index: u64,
    pub timestamp: u64,
}

/// Why a batch was not sequenced; the entries got no index.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SequencingError {
    /// This process does not hold the log's sequencing lease (it lost it,
    /// or never had it): the active sequencer runs elsewhere.
    #[error("this log's sequencer here is standing by; retry later")]
    StandingBy,
    #[error("{0}")]
    Failed(String),
}

/// A batch of entries to sequence together, and where to send the result.
pub struct Batch {
    pub entries: Vec<Entry>,
    pub reply: oneshot::Sender<Result<Sequenced, SequencingError>>,
}

/// What a sequencer needs to know about its log.
#[derive(Clone)]
pub struct LogConfig {
    /// The log's short name, for metrics labels.
    pub name: String,
    /// The checkpoint origin (submission prefix without scheme).
    pub origin: String,
    pub key: Arc<LogKey>,
    /// How often a round runs.
    pub period: Duration,
    /// At most this many entries wait for one round; beyond it, batches
    /// stay queued in the channel and the senders feel back-pressure.
    pub pool_size: usize,
    /// How long `start` waits for another holder's claim to lapse before
    /// refusing; `None` waits as long as it takes (a standby sequencer).
    /// Lease-based locks keep a crashed holder's lease until it expires, so
    /// a restart must outwait it; an OS-lock claim (SQLite) is released at
    /// the holder's death and needs no wait.
    pub claim_wait: Option<Duration>,
}

/// The sending side of a running sequencer.
#[derive(Clone)]
pub struct SequencerHandle {
    batches: mpsc::Sender<Batch>,
    published: watch::Receiver<SignedCheckpoint>,
    active: watch::Receiver<bool>,
}

impl SequencerHandle {
    /// Queues `batch` for a coming round. Gives the batch back if the
    /// sequencer has stopped.
    pub async fn send(&self, batch: Batch) -> Result<(), Batch> {
        self.batches.send(batch).await.map_err(|e| e.0)
    }

    /// The latest checkpoint published to storage (for health and status).
    pub fn published(&self) -> watch::Receiver<SignedCheckpoint> {
        self.published.clone()
    }

    /// Whether the sequencer holds its lease now: `false` after it lost
    /// it and while it waits to claim it again.
    pub fn is_active(&self) -> bool {
        *self.active.borrow()
    }
}

/// A log's fixed parts and its backends, shared by rounds and recovery.
pub(crate) struct Log {
    pub name: String,
    pub origin: String,
    pub key: Arc<LogKey>,
    pub store: Arc<dyn ObjectStore>,
    pub lock: Arc<dyn LockBackend>,
    /// The log's row in the lock backend: its log ID in hex.
    pub lock_id: String,
}

/// The committed tree: its right edge and the checkpoint the lock holds.
pub(crate) struct Tree {
    pub edge: edge::RightEdge,
    pub checkpoint: SignedCheckpoint,
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Opens the log (creating it when lock and storage are both empty, and
/// refusing when they disagree) and starts its sequencer task. The task
/// ends after a final round once every `SequencerHandle` is dropped.
pub async fn start(
    config: LogConfig,
    store: Arc<dyn ObjectStore>,
    lock: Arc<dyn LockBackend>,
) -> Result<(SequencerHandle, JoinHandle<()>), LoadError> {
    let span = tracing::info_span!("sequencer", log = %config.origin);
    let lock_id = hex::encode(config.key.log_id());
    let log = Log {
        name: config.name.clone(),
        origin: config.origin.clone(),
        key: config.key.clone(),
        store,
        lock,
        lock_id,
    };
    // Refuse before any work if another process sequences this log; the
    // lock's compare-and-swap would only stop it at its first commit.
    let claim = claim_within(&log, config.claim_wait)
        .instrument(span.clone())
        .await?;
    let tree = load::open(&log, load::Create::IfEmpty)
        .instrument(span.clone())
        .await?;
    tracing::info!(parent: &span, size = tree.checkpoint.checkpoint.size, "log opened");
    let (tx, rx) = mpsc::channel(64);
    let (published, published_rx) = watch::channel(tree.checkpoint.clone());
    let (active, active_rx) = watch::channel(false);
    let sequencer = Sequencer {
        log,
        tree,
        batches: rx,
        published,
        active,
        claim,
    };
    sequencer.set_active(true);
    let task = tokio::spawn(sequencer.run(config).instrument(span));
    Ok((
        SequencerHandle {
            batches: tx,
            published: published_rx,
            active: active_rx,
        },
        task,
    ))
}

/// Claims the log, retrying while another holder's claim may still lapse
/// within `wait` (forever for `None`).
async fn claim_within(log: &Log, wait: Option<Duration>) -> Result<Claim, LoadError> {
    let deadline = wait.map(|wait| tokio::time::Instant::now() + wait);
    let mut said = false;
    loop {
        match log.lock.claim(&log.lock_id).await {
            Err(LockError::Claimed(holder))
                if deadline.is_none_or(|d| tokio::time::Instant::now() < d) =>
            {
                // Once at info: a standby may wait here for months.
                if !said {
                    tracing::info!(%holder, "standing by until the log's claim lapses");
                    said = true;
                }
                tracing::debug!(%holder, "the log's claim is still held");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // A standby outlives lock backend outages.
            Err(LockError::Backend(e)) if deadline.is_none() => {
                tracing::warn!(error = %e, "claiming the log failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            result => return Ok(result?),
        }
    }
}

/// Sets `ct_sequencer_active{log}`: whether this process sequences the log
/// (0 also for a process that stands by without having started it).
pub fn report_active(log: &str, active: bool) {
    metrics::gauge!("ct_sequencer_active", "log" => log.to_string()).set(f64::from(active));
}

/// A running sequencer's state, owned by its task.
struct Sequencer {
    log: Log,
    tree: Tree,
    batches: mpsc::Receiver<Batch>,
    published: watch::Sender<SignedCheckpoint>,
    /// Whether `claim` is held; shown to handles and in metrics.
    active: watch::Sender<bool>,
    /// The right to sequence this log; a lease that can be lost for some
    /// lock backends, and then this sequencer must stand down.
    claim: Claim,
}

impl Sequencer {
    /// Says whether this process sequences the log, to the handles and in
    /// `ct_sequencer_active{log}`.
    fn set_active(&self, active: bool) {
        self.active.send_replace(active);
        report_active(&self.log.name, active);
    }

    /// Collects batches into the pool, runs a round every period, reloads
    /// after a fatal failure; ends after a last round once every handle is
    /// dropped.
    async fn run(mut self, config: LogConfig) {
        let mut pool: Vec<Batch> = Vec::new();
        let mut pooled = 0;
        let mut ticker = tokio::time::interval(config.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let flow = tokio::select! {
                // A lost lease comes first: nothing may be committed after it.
                biased;
                () = self.claim.lost() => {
                    pooled = 0;
                    self.step_down(std::mem::take(&mut pool)).await
                }
                _ = ticker.tick() => {
                    pooled = 0;
                    self.round_or_reload(std::mem::take(&mut pool)).await
                }
                batch = self.batches.recv(), if pooled < config.pool_size => match batch {
                    Some(batch) => {
                        pooled += batch.entries.len();
                        pool.push(batch);
                        ControlFlow::Continue(())
                    }
                    None => {
                        let _ = self.round_or_reload(std::mem::take(&mut pool)).await;
                        ControlFlow::Break(())
                    }
                },
            };
            if flow.is_break() {
                tracing::info!("sequencer stopped");
                return;
            }
        }
    }

    /// Runs a round; after a fatal failure, reloads or, if the lease is
    /// lost, steps down. Breaks when every handle is gone meanwhile.
    async fn round_or_reload(&mut self, pool: Vec<Batch>) -> ControlFlow<()> {
        match round::sequence(&self.log, &mut self.tree, &self.claim, pool).await {
            Ok(Some(published)) => {
                self.published.send_replace(published);
                ControlFlow::Continue(())
            }
            Ok(None) => ControlFlow::Continue(()),
            // A lost lease explains the failure (the swap found another
            // sequencer's checkpoint, or was not tried): reloading would
            // only race the new holder.
            Err(round::Fatal(error)) if self.claim.is_lost() => {
                tracing::error!(%error, "round failed after the lease was lost");
                self.step_down(Vec::new()).await
            }
            Err(round::Fatal(error)) => {
                tracing::error!(%error, "fatal round failure; reloading the log from storage");
                self.reload().await
            }
        }
    }

    /// Reloads until it succeeds, backing off up to 30 s between tries.
    /// Batches arriving meanwhile are refused at once rather than left
    /// waiting for a recovery that may need an operator. Breaks, without
    /// reloading, once every handle is gone: nobody can send work again.
    async fn reload(&mut self) -> ControlFlow<()> {
        let mut delay = Duration::from_millis(100);
        loop {
            match load::open(&self.log, load::Create::Never).await {
                Ok(tree) => {
                    tracing::info!(size = tree.checkpoint.checkpoint.size, "log reloaded");
                    self.tree = tree;
                    return ControlFlow::Continue(());
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?delay, "reloading the log failed")
                }
            }
            self.refuse_queued(SequencingError::Failed(
                "the log is recovering from a storage failure; retry later".into(),
            ))?;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// The lease went to another sequencer, so this one's view of the tree
    /// may be stale: it must not commit again before it holds the lease
    /// and has reloaded. The batches of `pool` are refused. (Even a commit
    /// racing this check cannot fork the log: the lock's compare-and-swap
    /// fails on a stale view.) Breaks once every handle is gone, so that a
    /// stepped-down process can shut down.
    async fn step_down(&mut self, pool: Vec<Batch>) -> ControlFlow<()> {
        tracing::error!("lost the sequencing lease; standing by until it can be claimed again");
        self.set_active(false);
        for batch in pool {
            let _ = batch.reply.send(Err(SequencingError::StandingBy));
        }
        // Drop the old claim first: lost by our clock, it may still have a
        // renewal task running, and its lease must not block our new claim.
        let (_, released) = tokio::sync::watch::channel(true);
        self.claim = Claim::revocable((), released);
        let mut delay = Duration::from_millis(100);
        self.claim = loop {
            match self.log.lock.claim(&self.log.lock_id).await {
                Ok(claim) => break claim,
                Err(e) => {
                    tracing::debug!(error = %e, retry_in = ?delay, "waiting for the sequencing lease")
                }
            }
            self.refuse_queued(SequencingError::StandingBy)?;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        };
        tracing::info!("claimed the sequencing lease again");
        self.reload().await?;
        self.set_active(true);
        ControlFlow::Continue(())
    }

    /// Answers every queued batch with `why` instead of an index. Breaks
    /// when every handle is gone.
    fn refuse_queued(&mut self, why: SequencingError) -> ControlFlow<()> {
        loop {
            match self.batches.try_recv() {
                Ok(batch) => {
                    let _ = batch.reply.send(Err(why.clone()));
                }
                Err(mpsc::error::TryRecvError::Empty) => return ControlFlow::Continue(()),
                Err(mpsc::error::TryRecvError::Disconnected) => return ControlFlow::Break(()),
            }
        }
    }
}
