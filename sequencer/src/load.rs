//! Opening a log: create it, load it, or recover it after a crash.
//!
//! The lock's checkpoint is the truth. Storage may lag it by one round (a
//! crash after the commit but before the uploads finished): then the staging
//! bundle named by the lock's checkpoint is re-applied. Storage ahead of the
//! lock, or disagreeing with it at the same size, means two histories exist
//! and we refuse to start rather than pick one. A checkpoint in storage with
//! none in the lock is a misconfiguration, never a reason to start afresh.

use std::io::Read;

use bytes::Bytes;
use ct_formats::{
    empty_root, leaf_hash, open_checkpoint, parse_tile_leaves, Checkpoint, FormatError, Hash,
    SignedCheckpoint, TileId, TileKind, TILE_WIDTH,
};
use ct_storage::{LockError, StorageError};

use crate::clock::now_millis;
use crate::edge::{level_count, RightEdge};
use crate::log::{Log, Tree};
use crate::publish::{publish, PublishError};
use crate::staging::{self, staging_key, ApplyError};

/// Why a log could not be opened. Each is a one-line operator message.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("lock backend: {0}")]
    Lock(#[from] LockError),
    #[error("{0} checkpoint does not verify with this log's key and origin: {1}")]
    BadCheckpoint(&'static str, FormatError),
    #[error("storage holds a checkpoint but the lock database has none for this log; refusing to start a new log over existing data (wrong lock_db or storage path?)")]
    StorageWithoutLock,
    #[error("this log does not exist: neither the lock nor storage holds a checkpoint for it; create it with `ct-log create` (or its inception date), or check lock_db/lock and storage if it should exist")]
    Missing,
    #[error("this log already exists: the lock holds its checkpoint")]
    AlreadyExists,
    #[error("storage already holds objects under {0} but no log: refusing to create a log over them (wrong bucket, prefix or path?)")]
    NotEmpty(&'static str),
    #[error("storage checkpoint (size {stored}) is ahead of the lock's (size {locked}); refusing to start (wrong lock_db?)")]
    StorageAhead { stored: u64, locked: u64 },
    #[error("storage and lock hold different trees of size {0}; refusing to start")]
    Fork(u64),
    #[error("staging bundle {0} needed to recover the lock's checkpoint is missing")]
    MissingStaging(String),
    #[error("re-applying the staging bundle: {0}")]
    Staging(#[from] ApplyError),
    #[error("tile {0} is missing from storage")]
    MissingTile(String),
    #[error("tile {0}: {1}")]
    BadTile(String, String),
    #[error("the right-edge tiles hash to a root other than the lock checkpoint's")]
    RootMismatch,
    #[error("publishing the checkpoint: {0}")]
    Publish(#[from] PublishError),
    #[error("signing the first checkpoint: {0}")]
    Sign(#[from] FormatError),
    #[error("starting the log's round thread: {0}")]
    Thread(std::io::Error),
}

/// Whether opening may create a new, empty log. Creation is an explicit
/// act: an unmounted volume or a wrong bucket must never look like a new
/// log and start a second tree under a live log's key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    IfEmpty,
    Never,
}

/// Opens the log: creates it when lock and storage are both empty (and
/// `create` allows it), otherwise reconciles storage with the lock and
/// reads the right edge back.
pub(crate) async fn open(log: &Log, create: Create) -> Result<Tree, LoadError> {
    let locked = log.lock.fetch(&log.lock_id).await?;
    let stored = log.store.get("checkpoint").await?;
    let Some(locked) = locked else {
        return match (stored, create) {
            (Some(_), _) => Err(LoadError::StorageWithoutLock),
            (None, Create::Never) => Err(LoadError::Missing),
            (None, Create::IfEmpty) => create_log(log).await,
        };
    };
    let locked = verify(log, "lock", &locked)?;
    let stored = stored
        .map(|note| verify(log, "storage", &note))
        .transpose()?;
    reconcile(log, &locked, stored.as_ref()).await?;
    let edge = read_edge(log, &locked.checkpoint).await?;
    Ok(Tree {
        edge,
        checkpoint: locked,
    })
}

fn verify(log: &Log, what: &'static str, note: &[u8]) -> Result<SignedCheckpoint, LoadError> {
    open_checkpoint(note, &log.origin, log.key.verifying_key())
        .map_err(|e| LoadError::BadCheckpoint(what, e))
}

/// A new log: an empty tree, committed to the lock first (so a concurrent
/// creator loses the race), then published. Refused over storage that
/// holds any tile, issuer or staged round: that is some log's data.
pub(crate) async fn create_log(log: &Log) -> Result<Tree, LoadError> {
    for prefix in ["tile/", "issuer/", "staging/"] {
        if log.store.any_under(prefix).await? {
            return Err(LoadError::NotEmpty(prefix));
        }
    }
    let checkpoint = Checkpoint {
        origin: log.origin.clone(),
        size: 0,
        root: empty_root(),
    };
    let signed = checkpoint.sign_with(&log.key, &log.cosigners, now_millis())?;
    match log.lock.create(&log.lock_id, &signed.note).await {
        Err(LockError::Lost) => return Err(LoadError::AlreadyExists),
        other => other?,
    }
    publish(log, &signed).await?;
    tracing::info!("created a new, empty log");
    Ok(Tree {
        edge: RightEdge::default(),
        checkpoint: signed,
    })
}

/// Brings storage up to the lock's checkpoint, or refuses.
async fn reconcile(
    log: &Log,
    locked: &SignedCheckpoint,
    stored: Option<&SignedCheckpoint>,
) -> Result<(), LoadError> {
    let (lsize, lroot) = (locked.checkpoint.size, locked.checkpoint.root);
    if let Some(stored) = stored {
        let ssize = stored.checkpoint.size;
        if ssize > lsize {
            return Err(LoadError::StorageAhead {
                stored: ssize,
                locked: lsize,
            });
        }
        if ssize == lsize {
            return if stored.checkpoint.root == lroot {
                Ok(())
            } else {
                Err(LoadError::Fork(lsize))
            };
        }
    }
    if lsize > 0 {
        match apply_staging(log, lsize, &lroot).await {
            // Its holder deletes a bundle only after publishing the round,
            // so storage lags by more than that round: an older checkpoint
            // was published late over a newer one (possible before
            // publishing was conditional, and left by those versions). The
            // tiles are all there; the right edge must hash to the lock's
            // root before it is published again.
            Err(LoadError::MissingStaging(key)) => {
                if read_edge(log, &locked.checkpoint).await.is_err() {
                    return Err(LoadError::MissingStaging(key));
                }
            }
            other => other?,
        }
    }
    publish(log, locked).await?;
    tracing::warn!(
        size = lsize,
        "recovered: storage lagged the lock; re-applied the staged round"
    );
    Ok(())
}

async fn apply_staging(log: &Log, size: u64, root: &Hash) -> Result<(), LoadError> {
    let key = staging_key(size, root);
    let bundle = log
        .store
        .get(&key)
        .await?
        .ok_or(LoadError::MissingStaging(key))?;
    Ok(staging::apply(&log.store, &log.name, &bundle).await?)
}

/// The last tile of a level (hash level or data) for a tree of `size`.
fn last_tile(kind: TileKind, size: u64) -> Option<TileId> {
    let count = match kind {
        TileKind::Hash { level } => level_count(size, level as usize),
        TileKind::Data => size,
    };
    let last = count.checked_sub(1)?;
    Some(TileId {
        kind,
        index: last / TILE_WIDTH,
        width: last % TILE_WIDTH + 1,
    })
}

/// Reads the right edge of a tree back from storage and checks it hashes to
/// the checkpoint's root, and that the last data tile matches its level-0
/// hashes.
async fn read_edge(log: &Log, checkpoint: &Checkpoint) -> Result<RightEdge, LoadError> {
    let size = checkpoint.size;
    let mut levels = Vec::new();
    let mut level0 = Vec::new();
    while let Some(id) = last_tile(
        TileKind::Hash {
            level: levels.len() as u8,
        },
        size,
    ) {
        let hashes = read_hash_tile(log, id).await?;
        if levels.is_empty() {
            level0 = hashes.clone();
        }
        levels.push(if id.is_full() { Vec::new() } else { hashes });
    }
    let mut data = Vec::new();
    if let Some(id) = last_tile(TileKind::Data, size) {
        let bytes = read_data_tile(log, id, &level0).await?;
        if !id.is_full() {
            data = bytes;
        }
    }
    let edge = RightEdge::from_parts(size, levels, data);
    if edge.root() != checkpoint.root {
        return Err(LoadError::RootMismatch);
    }
    Ok(edge)
}

async fn fetch(log: &Log, id: TileId) -> Result<Bytes, LoadError> {
    let path = id.path();
    log.store
        .get(&path)
        .await?
        .ok_or(LoadError::MissingTile(path))
}

async fn read_hash_tile(log: &Log, id: TileId) -> Result<Vec<Hash>, LoadError> {
    let bytes = fetch(log, id).await?;
    if bytes.len() as u64 != id.width * 32 {
        return Err(LoadError::BadTile(
            id.path(),
            format!("{} bytes, want {}", bytes.len(), id.width * 32),
        ));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|h| h.try_into().expect("32-byte chunk"))
        .collect())
}

/// Reads a data tile, returning its decompressed TileLeaf bytes after
/// checking each entry's index and leaf hash against `level0`.
async fn read_data_tile(log: &Log, id: TileId, level0: &[Hash]) -> Result<Vec<u8>, LoadError> {
    let bad = |reason: String| LoadError::BadTile(id.path(), reason);
    let gzipped = fetch(log, id).await?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    let leaves = parse_tile_leaves(&bytes).map_err(|e| bad(e.to_string()))?;
    if leaves.len() as u64 != id.width || level0.len() != leaves.len() {
        return Err(bad(format!("{} entries, want {}", leaves.len(), id.width)));
    }
    for (i, (leaf, hash)) in leaves.iter().zip(level0).enumerate() {
        let want_index = id.index * TILE_WIDTH + i as u64;
        if leaf.leaf_index().ok() != Some(want_index)
            || leaf_hash(&leaf.merkle_tree_leaf()) != *hash
        {
            return Err(bad(format!(
                "entry {want_index} does not match its level-0 hash or index"
            )));
        }
    }
    Ok(bytes)
}
