//! The published tree read back from a log's storage, for the RFC 6962
//! read API: Merkle proofs from the hash tiles, entries from the data tiles
//! and the issuers.
//!
//! There is no copy of the tree in memory and no second store of entries:
//! everything comes from the immutable objects the sequencer uploaded (hot
//! ones from the log's read cache), so every role on every backend answers
//! alike, a stateless frontend included. A proof for a tree size that was
//! published reads that size's own tiles, partial ones included; a size
//! between two checkpoints reads the same hashes from the newest tree's
//! wider tiles. Proof planning is `ct_client`'s, shared with the audit tool.

use std::collections::HashMap;
use std::io::Read;
use std::sync::LazyLock;

use bytes::Bytes;
use ct_client::{capture, consistency_plan, inclusion_plan, ProofPlan};
use ct_dedup::DedupError;
use ct_formats::{
    parse_tile_leaves, FormatError, Hash, TileId, TileKind, TileLeaf, TILE_HEIGHT, TILE_WIDTH,
};
use ct_storage::StorageError;
use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use crate::log::Log;

/// A decompressed data tile larger than this is damage, not 256 entries.
const DATA_TILE_DECODED_LIMIT: u64 = 64 << 20;
/// Issuers read at once while answering one get-entries.
const ISSUER_READS: usize = 16;

/// Why the tree could not answer.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The request names something the tree does not hold: a size or an
    /// index beyond it, or a range no proof or answer exists for.
    #[error("{0}")]
    Beyond(String),
    /// The tree does not hold what was asked for (a leaf hash).
    #[error("{0}")]
    NotFound(String),
    /// The log's storage failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The leaf-hash index failed.
    #[error("{0}")]
    Index(#[from] DedupError),
    /// Storage lacks an object the tree needs, or holds one that is not
    /// what the sequencer wrote.
    #[error("{0}")]
    Damaged(String),
    /// A read task of this process failed (a panic: a bug).
    #[error("{0}")]
    Task(String),
}

fn damaged(what: impl std::fmt::Display, e: impl std::fmt::Display) -> TreeError {
    TreeError::Damaged(format!("{what}: {e}"))
}

/// CPU-heavy read work (decompressing and decoding data tiles, encoding
/// answers) runs on the blocking pool, at most on half the cores at once
/// for the whole process: a burst of get-entries then leaves the other
/// half to submissions, whatever the number of reads in flight.
static READ_WORKERS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Semaphore::new((cores / 2).max(1))
});

/// Runs `work` on the blocking pool under the process's [`READ_WORKERS`].
pub async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TreeError> {
    let _permit = READ_WORKERS
        .acquire()
        .await
        .map_err(|e| TreeError::Task(format!("read workers: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TreeError::Task(format!("read task failed: {e}")))
}

/// Tile `index` of `kind` as it is in the tree of `size` leaves (width 0
/// when that tree does not reach it).
pub(crate) fn tile_at(kind: TileKind, index: u64, size: u64) -> TileId {
    let count = match kind {
        TileKind::Data => size,
        TileKind::Hash { level } => size >> (u32::from(level) * TILE_HEIGHT),
    };
    let width = count.saturating_sub(index * TILE_WIDTH).min(TILE_WIDTH);
    TileId { kind, index, width }
}

/// Reads `tile` as published for its own tree size or, when that size was
/// never published, the wider version of the newest tree (of `newest`
/// leaves), which begins with the same hashes or entries. Returns the
/// version read.
async fn read_tile(log: &Log, tile: TileId, newest: u64) -> Result<(TileId, Bytes), TreeError> {
    if let Some(bytes) = log.read_object(&tile.path()).await? {
        return Ok((tile, bytes));
    }
    let wider = tile_at(tile.kind, tile.index, newest);
    if wider.width > tile.width {
        if let Some(bytes) = log.read_object(&wider.path()).await? {
            return Ok((wider, bytes));
        }
    }
    Err(TreeError::Damaged(format!(
        "{} is missing from storage",
        tile.path()
    )))
}

/// The first `tile.width` hashes of a hash tile.
async fn hash_tile(log: &Log, tile: TileId, newest: u64) -> Result<Vec<Hash>, TreeError> {
    let (read, bytes) = read_tile(log, tile, newest).await?;
    if bytes.len() as u64 != read.width * 32 {
        return Err(damaged(read.path(), format!("{} bytes", bytes.len())));
    }
    Ok(bytes
        .chunks_exact(32)
        .take(tile.width as usize)
        .map(|c| Hash::try_from(c).expect("32-byte chunk"))
        .collect())
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `size`
/// leaves, `size` at most `newest`.
pub async fn inclusion_proof(
    log: &Log,
    index: u64,
    size: u64,
    newest: u64,
) -> Result<Vec<Hash>, TreeError> {
    let plan = inclusion_plan(index, size).map_err(|e| TreeError::Beyond(e.to_string()))?;
    prove(log, &plan, size, newest).await
}

/// The consistency proof from the tree of `old` leaves to the tree of
/// `new` leaves, `new` at most `newest`.
pub async fn consistency_proof(
    log: &Log,
    old: u64,
    new: u64,
    newest: u64,
) -> Result<Vec<Hash>, TreeError> {
    let plan = consistency_plan(old, new).map_err(|e| TreeError::Beyond(e.to_string()))?;
    prove(log, &plan, new, newest).await
}

/// Reads the hash tiles a plan needs (a few per tile level, at once) and
/// folds the proof.
async fn prove(
    log: &Log,
    plan: &ProofPlan,
    size: u64,
    newest: u64,
) -> Result<Vec<Hash>, TreeError> {
    let lookups = plan.lookups(size);
    let tiles = stream::iter(lookups.keys().copied())
        .map(|tile| async move { Ok::<_, TreeError>((tile, hash_tile(log, tile, newest).await?)) })
        .buffer_unordered(lookups.len().max(1));
    let tiles: Vec<(TileId, Vec<Hash>)> = tiles.try_collect().await?;
    let mut found = HashMap::new();
    for (tile, hashes) in &tiles {
        capture(&lookups[tile], hashes, &mut found);
    }
    plan.assemble(&found).map_err(|e| damaged("hash tiles", e))
}

/// The leaf hash at `index` (below `newest`), from its level-0 tile.
pub async fn leaf_hash_at(log: &Log, index: u64, newest: u64) -> Result<Hash, TreeError> {
    let tile = tile_at(TileKind::Hash { level: 0 }, index / TILE_WIDTH, newest);
    let hashes = hash_tile(log, tile, newest).await?;
    Ok(hashes[(index % TILE_WIDTH) as usize])
}

/// The index of the entry whose leaf hash is `leaf_hash` in the tree of
/// `size` leaves (at most `newest`), from the leaf-hash index. The index
/// is not trusted beyond the tree: an entry it places beyond the newest
/// tree, or whose level-0 hash is not `leaf_hash`, is a fault to report,
/// and the answer is that the tree does not hold the hash.
pub async fn find_leaf(
    log: &Log,
    leaf_hash: Hash,
    size: u64,
    newest: u64,
) -> Result<u64, TreeError> {
    let not_found = || {
        TreeError::NotFound(format!(
            "no entry with this leaf hash in the tree of size {size}"
        ))
    };
    let index = log
        .leaf_hashes
        .leaf_index(leaf_hash)
        .await?
        .ok_or_else(not_found)?;
    if index >= newest || leaf_hash_at(log, index, newest).await? != leaf_hash {
        tracing::error!(
            log = %log.info.name,
            index,
            newest,
            "the leaf-hash index names an entry the tree does not hold there; run ct-log reindex"
        );
        return Err(not_found());
    }
    if index >= size {
        return Err(not_found());
    }
    Ok(index)
}

/// The entries one get-entries answers: `start..=end` of what was asked,
/// cut at the end of `start`'s data tile and at the end of the tree, so
/// that an answer is one tile's worth at most and monitors paging through
/// the log ask for tile-aligned ranges (which CDNs then share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRange {
    pub start: u64,
    pub end: u64,
    /// Whether the answer is final: cut by the request or a tile boundary,
    /// never by the tree's size, so later answers are byte-identical.
    pub immutable: bool,
}

impl EntryRange {
    /// The range answering `start..=end` in the tree of `size` leaves.
    pub fn new(start: u64, end: u64, size: u64) -> Result<EntryRange, TreeError> {
        if start > end {
            return Err(TreeError::Beyond(format!(
                "start {start} is after end {end}"
            )));
        }
        if start >= size {
            return Err(TreeError::Beyond(format!(
                "start {start} is beyond the tree of size {size}"
            )));
        }
        let tile_end = start - start % TILE_WIDTH + (TILE_WIDTH - 1);
        let wanted = end.min(tile_end);
        Ok(EntryRange {
            start,
            end: wanted.min(size - 1),
            immutable: wanted < size,
        })
    }
}

/// One entry as get-entries and get-entry-and-proof answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// The MerkleTreeLeaf.
    pub leaf_input: Vec<u8>,
    /// The certificate chain, or the PrecertChainEntry (RFC 6962 §4.6).
    pub extra_data: Vec<u8>,
}

/// Reads the entries of `range` (within the tree of `newest` leaves) from
/// their data tile and the issuers their chains name.
pub async fn entries(
    log: &Log,
    range: EntryRange,
    newest: u64,
) -> Result<Vec<RawEntry>, TreeError> {
    let tile = tile_at(TileKind::Data, range.start / TILE_WIDTH, newest);
    let (read, gzipped) = read_tile(log, tile, newest).await?;
    let first = (range.start % TILE_WIDTH) as usize;
    let count = (range.end - range.start + 1) as usize;
    let leaves = off_the_workers(move || decode_data_tile(read, &gzipped)).await??;
    let leaves: Vec<TileLeaf> = leaves.into_iter().skip(first).take(count).collect();
    let issuers = read_issuers(log, &leaves).await?;
    leaves
        .iter()
        .map(|leaf| {
            let chain: Vec<&[u8]> = leaf
                .entry
                .chain_fingerprints
                .iter()
                .map(|fingerprint| &issuers[fingerprint][..])
                .collect();
            Ok(RawEntry {
                leaf_input: leaf.merkle_tree_leaf(),
                extra_data: leaf
                    .entry
                    .extra_data(&chain)
                    .map_err(|e| damaged(format!("issuers of {}", read.path()), e))?,
            })
        })
        .collect()
}

/// Decompresses and parses a stored data tile, which must hold exactly its
/// width of entries.
pub(crate) fn decode_data_tile(tile: TileId, gzipped: &[u8]) -> Result<Vec<TileLeaf>, TreeError> {
    let path = tile.path();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .take(DATA_TILE_DECODED_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| damaged(&path, format!("bad gzip: {e}")))?;
    if bytes.len() as u64 > DATA_TILE_DECODED_LIMIT {
        return Err(damaged(&path, "decompresses to too many bytes"));
    }
    let leaves = parse_tile_leaves(&bytes).map_err(|e: FormatError| damaged(&path, e))?;
    if leaves.len() as u64 != tile.width {
        return Err(damaged(&path, format!("{} entries", leaves.len())));
    }
    Ok(leaves)
}

/// The DER of every issuer the leaves' chains name, by fingerprint.
async fn read_issuers(log: &Log, leaves: &[TileLeaf]) -> Result<HashMap<Hash, Bytes>, TreeError> {
    let mut wanted: Vec<Hash> = leaves
        .iter()
        .flat_map(|leaf| leaf.entry.chain_fingerprints.iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    stream::iter(wanted)
        .map(|fingerprint| async move {
            let key = format!("issuer/{}", hex::encode(fingerprint));
            match log.read_object(&key).await? {
                Some(der) => Ok((fingerprint, der)),
                None => Err(TreeError::Damaged(format!("{key} is missing from storage"))),
            }
        })
        .buffer_unordered(ISSUER_READS)
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_stay_within_one_tile_and_the_tree() {
        let range = |start, end, size| EntryRange::new(start, end, size).unwrap();
        let at = |start, end, immutable| EntryRange {
            start,
            end,
            immutable,
        };
        assert_eq!(range(0, 1000, 1000), at(0, 255, true));
        assert_eq!(range(256, 1000, 1000), at(256, 511, true));
        assert_eq!(range(5, 10, 1000), at(5, 10, true));
        assert_eq!(range(768, 1000, 1000), at(768, 999, false));
        assert_eq!(range(990, 999, 1000), at(990, 999, true));
        assert_eq!(range(990, 1005, 1000), at(990, 999, false));
        assert_eq!(range(0, u64::MAX, 1), at(0, 0, false));
        assert_eq!(range(255, 255, 256), at(255, 255, true));
        for (start, end, size) in [(5, 4, 10), (10, 10, 10), (0, 0, 0), (u64::MAX, u64::MAX, 5)] {
            assert!(
                matches!(EntryRange::new(start, end, size), Err(TreeError::Beyond(_))),
                "{start}..={end} in {size}"
            );
        }
    }

    #[test]
    fn tiles_at_a_size() {
        let width = |level, index| tile_at(TileKind::Hash { level }, index, 778).width;
        assert_eq!(width(0, 3), 10);
        assert_eq!(width(0, 2), 256);
        assert_eq!(width(0, 4), 0);
        assert_eq!(width(1, 0), 3);
        assert_eq!(width(2, 0), 0);
        assert_eq!(tile_at(TileKind::Data, 3, 778).path(), "tile/data/003.p/10");
    }
}
