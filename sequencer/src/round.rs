//! The sequencing round: the whole commit story of one period, in order.
//!
//! 1. **clock**: give the round one timestamp, strictly later than the last
//!    checkpoint's and never far ahead of this machine's clock;
//! 2. **build**: append every entry to the right edge, sign the new
//!    checkpoint and pack every new tile into one staging bundle; while the
//!    next steps wait on storage, an idle-priority thread signs the
//!    entries' SCTs ahead, handed out only with the answers after step 6;
//! 3. **stage**: write the bundle, keyed by (size, root);
//! 4. **commit**: compare-and-swap the checkpoint into the lock — the
//!    commit point;
//! 5. **upload**: apply the bundle, exactly as recovery would;
//! 6. **publish**: write the checkpoint for monitors.
//!
//! The caller (`sequencer`) then answers the waiting requests, in one place
//! for success and failure alike.
//!
//! Up to the commit nothing is visible, so a failure only fails this pool.
//! After it, the lock says the tree has grown: a failure to make storage
//! match is fatal, and the sequencer reloads (which re-applies the staging
//! bundle) before taking more work. A request is answered with its index
//! only after step 6, so every SCT names an entry in a published tree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ct_formats::{Checkpoint, Entry, Sct, SignedCheckpoint, TileKind};
use ct_storage::Claim;

use crate::clock::{now_millis, round_timestamp};
use crate::edge::{NewTile, RightEdge};
use crate::gzip::gzip;
use crate::handle::{SctSignatures, Sequenced, SequencingError};
use crate::log::{Log, Tree};
use crate::publish::{self, PublishError};
use crate::staging::{self, staging_key};
use crate::upload::put_counted;

/// How long staging may take. A staging write that hangs holds every
/// request of the pool; past this the pool fails (nothing is visible yet,
/// so that is safe) and the next round tries again. Room for the S3
/// store's retries of a slow PUT.
const STAGE_DEADLINE: Duration = Duration::from_secs(10);
/// How long publishing may take when no lease bounds it sooner (a lease
/// always does: a checkpoint landing after the lease ran out could cover a
/// newer one of the next holder).
const PUBLISH_DEADLINE: Duration = Duration::from_secs(10);

/// The steps of a round, named in errors, logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Clock,
    Build,
    Stage,
    Lease,
    Commit,
    Upload,
    Publish,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Clock => "clock",
            Phase::Build => "build",
            Phase::Stage => "stage",
            Phase::Lease => "lease",
            Phase::Commit => "commit",
            Phase::Upload => "upload",
            Phase::Publish => "publish",
        }
    }
}

/// Why a round failed. None of its entries got an index. `fatal` says the
/// sequencer's view of the tree may be stale: it must reload (or step down,
/// if its lease is gone) before the next round.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", phase.name())]
pub(crate) struct RoundError {
    pub phase: Phase,
    pub fatal: bool,
    pub message: String,
}

impl RoundError {
    fn new(phase: Phase, fatal: bool, message: impl std::fmt::Display) -> RoundError {
        RoundError {
            phase,
            fatal,
            message: message.to_string(),
        }
    }

    /// What the requests of the failed round are told.
    pub fn for_waiters(&self) -> SequencingError {
        match self.phase {
            Phase::Clock => SequencingError::Unavailable(self.to_string()),
            Phase::Lease => SequencingError::Failed(self.message.clone()),
            _ => SequencingError::Failed(format!("{} failed: {}", self.phase.name(), self.message)),
        }
    }
}

/// A round that published its checkpoint.
pub(crate) struct Published {
    pub checkpoint: SignedCheckpoint,
    /// Where each batch landed, in pool order: the batches' answers.
    pub placements: Vec<Sequenced>,
    /// The staging bundle, no longer needed.
    pub staged: Option<String>,
    /// How long the round took, from its timestamp to its publication.
    pub took: Duration,
}

/// Everything a round produces before any of it is written.
struct Round {
    old_size: u64,
    edge: RightEdge,
    checkpoint: SignedCheckpoint,
    /// Every new tile, packed; empty when the round added no entry.
    bundle: Bytes,
    tiles: usize,
    placements: Vec<Sequenced>,
    /// The entries, in pool order, until their SCTs are signed ahead.
    pool: Vec<Vec<Entry>>,
}

impl Round {
    fn staging_key(&self) -> Option<String> {
        let checkpoint = &self.checkpoint.checkpoint;
        (!self.bundle.is_empty()).then(|| staging_key(checkpoint.size, &checkpoint.root))
    }
}

/// Runs one round over `pool` (one list of entries per batch).
pub(crate) async fn sequence(
    log: &Log,
    tree: &mut Tree,
    claim: &Claim,
    pool: Vec<Vec<Entry>>,
) -> Result<Published, RoundError> {
    let mut clock = PhaseClock::start(&log.name);
    let timestamp = round_timestamp(tree.checkpoint.timestamp, now_millis())
        .map_err(|e| RoundError::new(Phase::Clock, false, e))?;
    let mut round = build(log, tree, pool, timestamp).await?;
    clock.lap(Phase::Build);
    let presigning = presign(log, &mut round);
    stage(log, &round).await?;
    clock.lap(Phase::Stage);
    lease_held(claim, "committing")?;
    commit(log, tree, &round).await?;
    clock.lap(Phase::Commit);
    upload(log, &round).await?;
    clock.lap(Phase::Upload);
    lease_held(claim, "publishing")?;
    publish(log, claim, &round).await?;
    clock.lap(Phase::Publish);
    drop(presigning);
    let took = clock.total();
    log_round(log, &round, took);
    Ok(Published {
        staged: round.staging_key(),
        checkpoint: round.checkpoint,
        placements: round.placements,
        took,
    })
}

/// Drops a published round's staging bundle: its bytes are all in place.
/// Tidy-up only; a bundle left behind is never read again.
pub(crate) async fn drop_staging(log: &Log, published: &Published) {
    if let Some(key) = &published.staged {
        if let Err(e) = log.store.delete(key).await {
            tracing::warn!(error = %e, key, "could not delete the staging bundle");
        }
    }
}

/// Steps 2 and 3's packing, on the log's round thread: hashing, encoding
/// and compressing a round's tiles is CPU work that must not stall the
/// async workers.
async fn build(
    log: &Log,
    tree: &Tree,
    pool: Vec<Vec<Entry>>,
    timestamp: u64,
) -> Result<Round, RoundError> {
    let (edge, origin, key) = (tree.edge.clone(), log.origin.clone(), log.key.clone());
    let cosigners = log.cosigners.clone();
    let built = log
        .worker
        .run(move || -> Result<Round, ct_formats::FormatError> {
            let old_size = edge.size();
            let (edge, full, placements) = append(edge, &pool, timestamp);
            let tiles: Vec<(String, Bytes)> = full
                .into_iter()
                .chain(edge.partial_tiles_since(old_size))
                .map(encode_tile)
                .collect();
            let checkpoint = Checkpoint {
                origin,
                size: edge.size(),
                root: edge.root(),
            }
            .sign_with(&key, &cosigners, timestamp)?;
            Ok(Round {
                old_size,
                edge,
                checkpoint,
                bundle: Bytes::from(staging::encode(&tiles)),
                tiles: tiles.len(),
                placements,
                pool,
            })
        });
    // A signing failure is not fatal: nothing was written, and the next
    // round tries again with the same entries' successors.
    match built.await {
        Ok(round) => round.map_err(|e| RoundError::new(Phase::Build, false, e)),
        Err(e) => Err(RoundError::new(Phase::Build, false, e)),
    }
}

/// Gives every entry of the pool the round's timestamp and the next index.
fn append(
    mut edge: RightEdge,
    pool: &[Vec<Entry>],
    timestamp: u64,
) -> (RightEdge, Vec<NewTile>, Vec<Sequenced>) {
    let mut full = Vec::new();
    let mut placements = Vec::with_capacity(pool.len());
    let mut tile_leaf = Vec::new();
    for batch in pool {
        let first_index = edge.size();
        let mut leaf_hashes = Vec::with_capacity(batch.len());
        for entry in batch {
            let index = edge.size();
            tile_leaf.clear();
            let hash = entry.write_tile_leaf_and_hash(timestamp, index, &mut tile_leaf);
            edge.append(hash, &tile_leaf, &mut full);
            leaf_hashes.push(hash);
        }
        placements.push(Sequenced {
            first_index,
            timestamp,
            leaf_hashes,
            signatures: Arc::new(SctSignatures::empty(batch.len())),
        });
    }
    (edge, full, placements)
}

/// Signs the round's SCTs on the log's idle-priority thread, in pool
/// order, while the round waits on storage, until the returned guard
/// drops: once the round is published (the answers go out then, and
/// signing on would only race the frontend for the same SCTs) or fails.
/// Skipped while the last round's signing has not ended (the thread found
/// no idle core since). Never fatal, and never visible before the round is
/// published: the signatures travel with the round's answers, and an SCT
/// not made ahead is signed by whoever answers it.
fn presign(log: &Log, round: &mut Round) -> Presigning {
    let stop = Arc::new(AtomicBool::new(false));
    let pool = std::mem::take(&mut round.pool);
    let Some(presigner) = log.presigner.as_ref().filter(|_| !pool.is_empty()) else {
        return Presigning { stop };
    };
    let batches: Vec<(u64, u64, Arc<SctSignatures>)> = round
        .placements
        .iter()
        .map(|batch| (batch.first_index, batch.timestamp, batch.signatures.clone()))
        .collect();
    let (key, stopped) = (log.key.clone(), stop.clone());
    let made = metrics::counter!("ct_presigned_scts_total", "log" => log.name.clone());
    let job = move || {
        let mut count = 0;
        'pool: for (entries, (first_index, timestamp, signatures)) in pool.iter().zip(batches) {
            for (position, entry) in entries.iter().enumerate() {
                if stopped.load(Ordering::Relaxed) {
                    break 'pool;
                }
                let index = first_index + position as u64;
                signatures.fill(position, Sct::signature(&key, entry, timestamp, index));
                count += 1;
            }
        }
        made.increment(count);
    };
    if let Err(e) = presigner.start_unless_busy(job) {
        tracing::warn!(error = %e, "could not sign the round's SCTs ahead");
    }
    Presigning { stop }
}

/// Stops a round's signing ahead when dropped.
struct Presigning {
    stop: Arc<AtomicBool>,
}

impl Drop for Presigning {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The stored form of a tile: data tiles are gzip-compressed (served with
/// `Content-Encoding: gzip`), hash tiles are raw.
fn encode_tile(tile: NewTile) -> (String, Bytes) {
    let bytes = if tile.id.kind == TileKind::Data {
        gzip(&tile.bytes)
    } else {
        tile.bytes
    };
    (tile.id.path(), Bytes::from(bytes))
}

/// Stage. Not fatal: the lock still names the old tree, nothing new is
/// visible, and the next round starts again from the same edge.
async fn stage(log: &Log, round: &Round) -> Result<(), RoundError> {
    let Some(key) = round.staging_key() else {
        return Ok(());
    };
    let put = put_counted(&log.store, &log.name, &key, round.bundle.clone());
    match tokio::time::timeout(STAGE_DEADLINE, put).await {
        Ok(written) => written.map_err(|e| RoundError::new(Phase::Stage, false, e)),
        Err(_) => Err(RoundError::new(
            Phase::Stage,
            false,
            format!("no answer within {STAGE_DEADLINE:?}"),
        )),
    }
}

/// Commit and publish only while the lease is ours by our own clock: a
/// process paused past its lease (SIGSTOP, a stalled host) must not
/// publish even a consistent extension while a standby may be sequencing.
/// Fatal: another sequencer may have moved the log.
fn lease_held(claim: &Claim, before: &str) -> Result<(), RoundError> {
    if claim.is_lost() {
        return Err(RoundError::new(
            Phase::Lease,
            true,
            format!("this sequencer lost its lease before {before}"),
        ));
    }
    Ok(())
}

/// Commit. Fatal: an error may hide a swap that landed, and a lost swap
/// means another sequencer moved the log. Either way our edge is stale.
async fn commit(log: &Log, tree: &mut Tree, round: &Round) -> Result<(), RoundError> {
    log.lock
        .replace(&log.lock_id, &tree.checkpoint.note, &round.checkpoint.note)
        .await
        .map_err(|e| RoundError::new(Phase::Commit, true, e))?;
    *tree = Tree {
        edge: round.edge.clone(),
        checkpoint: round.checkpoint.clone(),
    };
    Ok(())
}

/// Upload, by applying the staging bundle. Fatal: the lock names tiles
/// that may be missing; reloading re-applies the bundle.
async fn upload(log: &Log, round: &Round) -> Result<(), RoundError> {
    staging::apply(&log.store, &log.name, &round.bundle)
        .await
        .map_err(|e| RoundError::new(Phase::Upload, true, e))
}

/// Publish, within the lease, never over a newer checkpoint. Not fatal:
/// the tiles are in place and the next round's checkpoint covers these
/// entries, but nobody may hold an SCT for an entry no published
/// checkpoint covers yet. Finding a newer checkpoint is fatal, though:
/// another sequencer has moved the log.
async fn publish(log: &Log, claim: &Claim, round: &Round) -> Result<(), RoundError> {
    let deadline = claim
        .remaining()
        .map_or(PUBLISH_DEADLINE, |left| left.min(PUBLISH_DEADLINE));
    match tokio::time::timeout(deadline, publish::publish(log, &round.checkpoint)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            let fatal = matches!(e, PublishError::Newer { .. });
            Err(RoundError::new(Phase::Publish, fatal, e))
        }
        Err(_) => Err(RoundError::new(
            Phase::Publish,
            false,
            format!("no answer within {deadline:?}"),
        )),
    }
}

/// Times a round's phases into `ct_round_phase_seconds{log, phase}`.
struct PhaseClock {
    log: String,
    started: Instant,
    lap: Instant,
}

impl PhaseClock {
    fn start(log: &str) -> PhaseClock {
        let now = Instant::now();
        PhaseClock {
            log: log.to_string(),
            started: now,
            lap: now,
        }
    }

    fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        let labels = [
            ("log", self.log.clone()),
            ("phase", phase.name().to_string()),
        ];
        metrics::histogram!("ct_round_phase_seconds", &labels).record(now - self.lap);
        self.lap = now;
    }

    fn total(&self) -> Duration {
        self.started.elapsed()
    }
}

fn log_round(log: &Log, round: &Round, took: Duration) {
    let size = round.checkpoint.checkpoint.size;
    let entries = size - round.old_size;
    metrics::histogram!("ct_round_seconds", "log" => log.name.clone()).record(took);
    metrics::histogram!("ct_round_entries", "log" => log.name.clone()).record(entries as f64);
    metrics::gauge!("ct_tree_size", "log" => log.name.clone()).set(size as f64);
    let ms = took.as_secs_f64() * 1e3;
    if entries > 0 {
        tracing::info!(size, entries, tiles = round.tiles, ms, "round");
    } else {
        tracing::debug!(size, ms, "round (no new entries)");
    }
}

/// Counts a failed round in `ct_round_failures_total{log, phase}`.
pub(crate) fn count_failure(log: &str, error: &RoundError) {
    let labels = [
        ("log", log.to_string()),
        ("phase", error.phase.name().to_string()),
    ];
    metrics::counter!("ct_round_failures_total", &labels).increment(1);
}
