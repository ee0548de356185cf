//! The sequencing round: the whole commit story of one period, in order.
//!
//! 1. take the pool and give the round one timestamp, strictly later than
//!    the last checkpoint's;
//! 2. append every entry to the right edge and sign the new checkpoint;
//! 3. stage every new tile as one bundle keyed by (size, root);
//! 4. compare-and-swap the checkpoint into the lock — the commit point;
//! 5. upload the tiles;
//! 6. publish the checkpoint;
//! 7. answer the waiting requests.
//!
//! Up to the commit nothing is visible, so a failure only fails this pool.
//! After it, the lock says the tree has grown: a failure to make storage
//! match is fatal, and the sequencer reloads (which re-applies the staging
//! bundle) before taking more work. A request is answered with its index
//! only after step 6, so every SCT names an entry in a published tree.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ct_formats::{leaf_hash, Checkpoint, SignedCheckpoint, TileKind};
use ct_storage::{Claim, ObjectStore, StorageError};
use tokio::task::JoinSet;

use crate::edge::{NewTile, RightEdge};
use crate::staging::{self, staging_key};
use crate::{now_millis, Batch, Log, Sequenced, SequencingError, Tree};

/// Everything a round produces before any of it is written.
struct Round {
    old_size: u64,
    edge: RightEdge,
    checkpoint: SignedCheckpoint,
    /// `(key, stored bytes)` of every new tile; data tiles gzip-compressed.
    tiles: Vec<(String, Bytes)>,
    waiters: Vec<(Batch, Sequenced)>,
}

impl Round {
    fn entries(&self) -> u64 {
        self.edge.size() - self.old_size
    }

    fn staging_key(&self) -> String {
        staging_key(
            self.checkpoint.checkpoint.size,
            &self.checkpoint.checkpoint.root,
        )
    }

    /// Answers every waiter with its batch's first index and the timestamp.
    fn wake(self) {
        for (batch, sequenced) in self.waiters {
            let _ = batch.reply.send(Ok(sequenced));
        }
    }

    /// Answers every waiter with `error`; none of them gets an SCT.
    fn fail(self, error: String) {
        let error = SequencingError::Failed(error);
        for (batch, _) in self.waiters {
            let _ = batch.reply.send(Err(error.clone()));
        }
    }
}

/// A failure after the commit point: the sequencer must reload.
pub(crate) struct Fatal(pub String);

/// Runs one round over `pool`, returning the checkpoint it published, if
/// any. Returns `Err` only for fatal failures.
pub(crate) async fn sequence(
    log: &Log,
    tree: &mut Tree,
    claim: &Claim,
    pool: Vec<Batch>,
) -> Result<Option<SignedCheckpoint>, Fatal> {
    let mut clock = PhaseClock::start(&log.name);
    let round = build(log, tree, pool).await;
    clock.lap("build");
    // Stage. Not fatal: the lock still names the old tree, nothing new is
    // visible, and the next round starts again from the same edge.
    if let Err(e) = stage(log, &round).await {
        tracing::warn!(error = %e, "staging failed; this pool's requests fail");
        round.fail(format!("staging failed: {e}"));
        return Ok(None);
    }
    clock.lap("stage");
    // Commit only while the lease is ours by our own clock: a process
    // paused past its lease (SIGSTOP, a stalled host) must not publish even a
    // consistent extension while a standby may be sequencing. Fatal, like
    // the swap below: another sequencer may have moved the log.
    if claim.is_lost() {
        round.fail("this sequencer lost its lease before committing".into());
        return Err(Fatal(
            "the sequencing lease ran out before the commit".into(),
        ));
    }
    // Commit. Fatal: an error may hide a swap that landed, and a lost swap
    // means another sequencer moved the log. Either way our edge is stale.
    let swap = log
        .lock
        .replace(&log.lock_id, &tree.checkpoint.note, &round.checkpoint.note);
    if let Err(e) = swap.await {
        round.fail(format!("commit failed: {e}"));
        return Err(Fatal(format!("lock compare-and-swap failed: {e}")));
    }
    clock.lap("commit");
    *tree = Tree {
        edge: round.edge.clone(),
        checkpoint: round.checkpoint.clone(),
    };
    // Upload. Fatal: the lock names tiles that may be missing; reloading
    // re-applies the staging bundle.
    if let Err(e) = upload(log, &round).await {
        round.fail(format!("tile upload failed: {e}"));
        return Err(Fatal(format!("tile upload failed: {e}")));
    }
    clock.lap("upload");
    // Publishing after the lease is gone could put this older checkpoint
    // over a newer one of the next holder: leave publishing to it (the lock
    // already holds this round; its staging bundle stays for the reload).
    if claim.is_lost() {
        round.fail("this sequencer lost its lease before publishing".into());
        return Err(Fatal(
            "the sequencing lease ran out before publishing".into(),
        ));
    }
    // Publish. Not fatal: the tiles are in place and the next round's
    // checkpoint covers these entries, but nobody may hold an SCT for an
    // entry no published checkpoint covers yet.
    let note = Bytes::from(round.checkpoint.note.clone());
    if let Err(e) = put_counted(&log.store, &log.name, "checkpoint", "checkpoint", note).await {
        tracing::warn!(error = %e, "publishing the checkpoint failed; this pool's requests fail");
        round.fail(format!("publishing the checkpoint failed: {e}"));
        return Ok(None);
    }
    clock.lap("publish");
    log_round(log, &round, clock.total());
    let staged = (!round.tiles.is_empty()).then(|| round.staging_key());
    let published = round.checkpoint.clone();
    round.wake();
    // The staged bytes are all in place now; dropping the bundle is tidy-up.
    if let Some(key) = staged {
        if let Err(e) = log.store.delete(&key).await {
            tracing::warn!(error = %e, key, "could not delete the staging bundle");
        }
    }
    Ok(Some(published))
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

    fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        let labels = [("log", self.log.clone()), ("phase", phase.to_string())];
        metrics::histogram!("ct_round_phase_seconds", &labels).record(now - self.lap);
        self.lap = now;
    }

    fn total(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

fn log_round(log: &Log, round: &Round, took: std::time::Duration) {
    let (size, entries) = (round.checkpoint.checkpoint.size, round.entries());
    metrics::histogram!("ct_round_seconds", "log" => log.name.clone()).record(took);
    metrics::histogram!("ct_round_entries", "log" => log.name.clone()).record(entries as f64);
    metrics::gauge!("ct_tree_size", "log" => log.name.clone()).set(size as f64);
    let ms = took.as_secs_f64() * 1e3;
    if entries > 0 {
        tracing::info!(size, entries, tiles = round.tiles.len(), ms, "round");
    } else {
        tracing::debug!(size, ms, "round (no new entries)");
    }
}

/// Writes one object, counting it in `ct_uploads_total{log, kind}` and any
/// failure in `ct_upload_errors_total{log, kind}`.
async fn put_counted(
    store: &Arc<dyn ObjectStore>,
    log: &str,
    kind: &'static str,
    key: &str,
    data: Bytes,
) -> Result<(), StorageError> {
    let labels = [("log", log.to_string()), ("kind", kind.to_string())];
    metrics::counter!("ct_uploads_total", &labels).increment(1);
    let result = store.put(key, data).await;
    if result.is_err() {
        metrics::counter!("ct_upload_errors_total", &labels).increment(1);
    }
    result
}

/// Steps 1–2, on the blocking pool: hashing, encoding and compressing a
/// round's tiles is CPU work that must not stall the async workers.
async fn build(log: &Log, tree: &Tree, pool: Vec<Batch>) -> Round {
    let timestamp = now_millis().max(tree.checkpoint.timestamp + 1);
    let (edge, origin, key) = (tree.edge.clone(), log.origin.clone(), log.key.clone());
    tokio::task::spawn_blocking(move || {
        let old_size = edge.size();
        let (edge, full, waiters) = append(edge, pool, timestamp);
        let tiles = full
            .into_iter()
            .chain(edge.partial_tiles_since(old_size))
            .map(encode_tile)
            .collect();
        let checkpoint = Checkpoint {
            origin,
            size: edge.size(),
            root: edge.root(),
        }
        .sign(&key, timestamp);
        Round {
            old_size,
            edge,
            checkpoint,
            tiles,
            waiters,
        }
    })
    .await
    .expect("building a round does not panic")
}

/// Gives every entry of the pool the round's timestamp and the next index.
fn append(
    mut edge: RightEdge,
    pool: Vec<Batch>,
    timestamp: u64,
) -> (RightEdge, Vec<NewTile>, Vec<(Batch, Sequenced)>) {
    let mut full = Vec::new();
    let mut waiters = Vec::with_capacity(pool.len());
    let mut tile_leaf = Vec::new();
    for batch in pool {
        let first_index = edge.size();
        for entry in &batch.entries {
            let index = edge.size();
            tile_leaf.clear();
            entry.write_tile_leaf(timestamp, index, &mut tile_leaf);
            edge.append(
                leaf_hash(&entry.merkle_tree_leaf(timestamp, index)),
                &tile_leaf,
                &mut full,
            );
        }
        waiters.push((
            batch,
            Sequenced {
                first_index,
                timestamp,
            },
        ));
    }
    (edge, full, waiters)
}

/// The stored form of a tile: data tiles are gzip-compressed (served with
/// `Content-Encoding: gzip`), hash tiles are raw.
fn encode_tile(tile: NewTile) -> (String, Bytes) {
    let bytes = if tile.id.kind == TileKind::Data {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tile.bytes).expect("writing to memory");
        gz.finish().expect("writing to memory")
    } else {
        tile.bytes
    };
    (tile.id.path(), Bytes::from(bytes))
}

async fn stage(log: &Log, round: &Round) -> Result<(), StorageError> {
    if round.tiles.is_empty() {
        return Ok(());
    }
    let bundle = Bytes::from(staging::encode(&round.tiles));
    put_counted(
        &log.store,
        &log.name,
        "staging",
        &round.staging_key(),
        bundle,
    )
    .await
}

/// Uploads every tile in parallel; the first error wins.
async fn upload(log: &Log, round: &Round) -> Result<(), StorageError> {
    let mut uploads = JoinSet::new();
    for (key, data) in round.tiles.iter().cloned() {
        let (store, name) = (log.store.clone(), log.name.clone());
        let kind = if key.starts_with("tile/data/") {
            "data_tile"
        } else {
            "hash_tile"
        };
        uploads.spawn(async move { put_counted(&store, &name, kind, &key, data).await });
    }
    while let Some(result) = uploads.join_next().await {
        result.map_err(|e| StorageError::Task(e.to_string()))??;
    }
    Ok(())
}
