//! The sequencer task: it owns the log's tree, collects batches into the
//! pool, runs a round every period, and answers every batch of the pool in
//! one place, whether the round succeeded or failed. After a fatal failure
//! it reloads the log from the lock and storage; after losing its lease it
//! stands by until it can claim the lease again.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use ct_formats::SignedCheckpoint;
use ct_storage::{Claim, LockBackend, LockError, ObjectStore};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::cleanup::Cleaner;
use crate::handle::{Batch, LogConfig, SequencerHandle, SequencingError};
use crate::load::{self, LoadError};
use crate::log::{Log, Tree};
use crate::round::{self, RoundError};

/// Batches that may wait in the channel beyond the pool: a little slack
/// so that batchers rarely block, while `pool_size` bounds the real queue.
const BATCH_QUEUE: usize = 64;

/// Opens the log (creating it when lock and storage are both empty, and
/// refusing when they disagree) and starts its sequencer task. The task
/// ends after a final round once every `SequencerHandle` is dropped.
pub async fn start(
    config: LogConfig,
    store: Arc<dyn ObjectStore>,
    lock: Arc<dyn LockBackend>,
) -> Result<(SequencerHandle, JoinHandle<()>), LoadError> {
    let span = tracing::info_span!("sequencer", log = %config.origin);
    let log = Log::new(&config, store, lock).map_err(LoadError::Thread)?;
    // Refuse before any work if another process sequences this log; the
    // lock's compare-and-swap would only stop it at its first commit.
    let claim = claim_within(&log, config.claim_wait)
        .instrument(span.clone())
        .await?;
    let create = match config.create {
        true => load::Create::IfEmpty,
        false => load::Create::Never,
    };
    let tree = load::open(&log, create).instrument(span.clone()).await?;
    tracing::info!(parent: &span, size = tree.checkpoint.checkpoint.size, "log opened");
    let (tx, rx) = mpsc::channel(BATCH_QUEUE);
    let (published, published_rx) = watch::channel(tree.checkpoint.clone());
    let (active, active_rx) = watch::channel(false);
    let (trouble, trouble_rx) = watch::channel(None);
    let (round_time, round_time_rx) = watch::channel(Duration::ZERO);
    let (next_round, next_round_rx) = watch::channel(Instant::now());
    let sequencer = Sequencer {
        log,
        tree,
        batches: rx,
        published,
        active,
        trouble,
        round_time,
        next_round,
        claim,
    };
    sequencer.set_active(true);
    if let Some(cleanup) = config.cleanup {
        let cleaner = Cleaner {
            store: sequencer.log.store.clone(),
            log: config.name.clone(),
            config: cleanup,
            published: published_rx.clone(),
            active: active_rx.clone(),
        };
        tokio::spawn(cleaner.run().instrument(span.clone()));
    }
    let task = tokio::spawn(sequencer.run(config).instrument(span));
    let handle = SequencerHandle {
        batches: tx,
        published: published_rx,
        active: active_rx,
        trouble: trouble_rx,
        round_time: round_time_rx,
        next_round: next_round_rx,
    };
    Ok((handle, task))
}

/// Creates a new, empty log: its first checkpoint (size 0), committed to
/// the lock and published. Refuses when the lock already holds the log, or
/// storage holds a checkpoint, a tile, an issuer or a staged round.
pub async fn create(
    config: &LogConfig,
    store: Arc<dyn ObjectStore>,
    lock: Arc<dyn LockBackend>,
) -> Result<SignedCheckpoint, LoadError> {
    let log = Log::new(config, store, lock).map_err(LoadError::Thread)?;
    if log.lock.fetch(&log.lock_id).await?.is_some() {
        return Err(LoadError::AlreadyExists);
    }
    if log.store.get("checkpoint").await?.is_some() {
        return Err(LoadError::StorageWithoutLock);
    }
    Ok(load::create_log(&log).await?.checkpoint)
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
            // A standby outlives lock backend outages, and waits for its
            // clock to be corrected (it says so on /health meanwhile).
            Err(LockError::Backend(e) | LockError::ClockSkew(e)) if deadline.is_none() => {
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
    /// Why rounds keep failing, when an operator must act.
    trouble: watch::Sender<Option<String>>,
    /// How long rounds take lately (a moving average).
    round_time: watch::Sender<Duration>,
    /// When the next round is due to start.
    next_round: watch::Sender<Instant>,
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
                started = ticker.tick() => {
                    self.next_round.send_replace(started + config.period);
                    // When rounds take longer than the period the tick is
                    // ready first every time: without this, batches that
                    // arrived during the last round would wait for ever,
                    // and so would a shutdown.
                    let senders = self.pool_waiting(&mut pool, config.pool_size.saturating_sub(pooled));
                    pooled = 0;
                    let flow = self.round_or_reload(std::mem::take(&mut pool)).await;
                    if senders.is_break() { senders } else { flow }
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

    /// Moves the batches already waiting into `pool`, until `room` entries
    /// are pooled. Breaks when every handle is gone and nothing waits.
    fn pool_waiting(&mut self, pool: &mut Vec<Batch>, mut room: usize) -> ControlFlow<()> {
        while room > 0 {
            match self.batches.try_recv() {
                Ok(batch) => {
                    room = room.saturating_sub(batch.entries.len());
                    pool.push(batch);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return ControlFlow::Break(()),
            }
        }
        ControlFlow::Continue(())
    }

    /// Runs a round and answers every batch of the pool: each with its
    /// first index, or all with the round's error. A failure is logged and
    /// counted here; a fatal one makes the sequencer reload or, if the lease
    /// is lost, step down. Breaks when every handle is gone meanwhile.
    async fn round_or_reload(&mut self, pool: Vec<Batch>) -> ControlFlow<()> {
        let (entries, replies): (Vec<_>, Vec<_>) =
            pool.into_iter().map(|b| (b.entries, b.reply)).unzip();
        match round::sequence(&self.log, &mut self.tree, &self.claim, entries).await {
            Ok(mut published) => {
                // Known published before anyone hears of its entries: their
                // locations must fall inside it (see the batchers' check).
                self.published.send_replace(published.checkpoint.clone());
                self.trouble.send_if_modified(|t| t.take().is_some());
                // A moving average over the last few rounds: one slow round
                // is noise, several are a trend worth refusing work for.
                self.round_time
                    .send_modify(|average| *average = (*average * 3 + published.took) / 4);
                let placements = std::mem::take(&mut published.placements);
                for (reply, placement) in replies.into_iter().zip(placements) {
                    let _ = reply.send(Ok(placement));
                }
                round::drop_staging(&self.log, &published).await;
                ControlFlow::Continue(())
            }
            Err(error) => {
                let why = error.for_waiters();
                for reply in replies {
                    let _ = reply.send(Err(why.clone()));
                }
                self.recover(error).await
            }
        }
    }

    /// After a failed round: logs and counts it, then goes on (not fatal),
    /// steps down (the lease is lost: that explains the failure, and
    /// reloading would only race the new holder) or reloads.
    async fn recover(&mut self, error: RoundError) -> ControlFlow<()> {
        round::count_failure(&self.log.name, &error);
        if error.phase == round::Phase::Clock {
            self.trouble.send_replace(Some(error.to_string()));
        }
        if !error.fatal {
            tracing::warn!(%error, "round failed; its requests got no index");
            return ControlFlow::Continue(());
        }
        if self.claim.is_lost() {
            tracing::error!(%error, "round failed after the lease was lost");
            return self.step_down(Vec::new()).await;
        }
        tracing::error!(%error, "fatal round failure; reloading the log from storage");
        self.reload().await
    }

    /// Reloads until it succeeds, backing off up to 30 s between tries.
    /// A reload may republish the lock's checkpoint, so it first claims
    /// the lease again if it is lost. Batches arriving meanwhile are
    /// refused at once rather than left waiting for a recovery that may
    /// need an operator. Breaks, without reloading, once every handle is
    /// gone: nobody can send work again.
    async fn reload(&mut self) -> ControlFlow<()> {
        let mut delay = Duration::from_millis(100);
        loop {
            if self.claim.is_lost() {
                self.set_active(false);
                self.reclaim().await?;
            }
            match load::open(&self.log, load::Create::Never).await {
                Ok(tree) => {
                    tracing::info!(size = tree.checkpoint.checkpoint.size, "log reloaded");
                    self.tree = tree;
                    self.set_active(true);
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
        self.reload().await
    }

    /// Claims the lease again, refusing queued batches while it waits.
    async fn reclaim(&mut self) -> ControlFlow<()> {
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
