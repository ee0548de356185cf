//! [`LogClient`]: the monitoring side of one log, object by object.
//!
//! Every fetch is checked for shape before it is returned: a hash tile has
//! exactly its width of hashes, a data tile parses into exactly its width of
//! entries with no trailing bytes, an issuer hashes to its name, and a
//! checkpoint carries a valid signature from the log's key. A partial tile
//! that is gone falls back to the full tile, which logs may serve instead
//! once it exists.

use std::collections::HashMap;
use std::io::Read;

use ct_formats::{
    open_checkpoint, parse_tile_leaves, verify_inclusion, Hash, SignedCheckpoint, TileId, TileKind,
    TileLeaf, TILE_WIDTH,
};
use flate2::read::GzDecoder;
use futures_util::{stream, StreamExt, TryStreamExt};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::proof::{capture, inclusion_plan, ProofPlan};
use crate::source::{Object, Source};
use crate::{consistency_plan, Error, Result};

/// Checkpoints are a few lines.
const CHECKPOINT_LIMIT: u64 = 64 * 1024;
/// A full hash tile: 256 hashes.
const HASH_TILE_LIMIT: u64 = TILE_WIDTH * 32;
/// 256 entries of a few kilobytes each, far under these in practice.
const DATA_TILE_LIMIT: u64 = 32 << 20;
const DATA_TILE_DECODED_LIMIT: u64 = 64 << 20;
const ISSUER_LIMIT: u64 = 1 << 20;
/// Tile requests in flight by default.
pub const DEFAULT_IN_FLIGHT: usize = 16;

/// Reads one log at a location (see [`Source::parse`]).
#[derive(Clone, Debug)]
pub struct LogClient {
    source: Source,
    in_flight: usize,
}

impl LogClient {
    /// A client for the log at `location`: its monitoring prefix
    /// (`http(s)://…`), a `file://` URL or a local directory.
    pub fn new(location: &str) -> Result<LogClient> {
        Ok(LogClient {
            source: Source::parse(location)?,
            in_flight: DEFAULT_IN_FLIGHT,
        })
    }

    /// At most `n` (at least 1) tile requests in flight in bulk fetches.
    pub fn with_in_flight(mut self, n: usize) -> LogClient {
        self.in_flight = n.max(1);
        self
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Fetches the checkpoint and verifies its RFC6962NoteSignature with
    /// `key`; other signature lines are ignored. The origin is `origin` when
    /// given, else the checkpoint's own first line (the key is the trust
    /// anchor: its signature covers the tree head, and its key ID commits to
    /// the origin).
    pub async fn checkpoint(
        &self,
        key: &VerifyingKey,
        origin: Option<&str>,
    ) -> Result<SignedCheckpoint> {
        let note = self.must_get("checkpoint", CHECKPOINT_LIMIT).await?.bytes;
        let first_line = note.split(|&b| b == b'\n').next().unwrap_or_default();
        let origin = match origin {
            Some(origin) => origin.to_string(),
            None => String::from_utf8_lossy(first_line).into_owned(),
        };
        open_checkpoint(&note, &origin, key).map_err(|e| Error::format("checkpoint", e))
    }

    /// The `tile.width` hashes of a hash tile.
    pub async fn hash_tile(&self, tile: TileId) -> Result<Vec<Hash>> {
        let (served, object) = self.get_tile(tile, HASH_TILE_LIMIT).await?;
        let path = served.path();
        // Hash tiles are never compressed by logs; honour the header anyway.
        let bytes = if object.gzip {
            gunzip(&path, &object.bytes, HASH_TILE_LIMIT)?
        } else {
            object.bytes
        };
        if bytes.len() as u64 != served.width * 32 {
            return Err(Error::Inconsistent(format!(
                "{path}: {} bytes, expected {} hashes",
                bytes.len(),
                served.width
            )));
        }
        Ok(bytes
            .chunks_exact(32)
            .take(tile.width as usize)
            .map(|c| Hash::try_from(c).expect("32-byte chunk"))
            .collect())
    }

    /// The `tile.width` entries of a data tile, gzip-compressed or not.
    pub async fn data_tile(&self, tile: TileId) -> Result<Vec<TileLeaf>> {
        let (served, object) = self.get_tile(tile, DATA_TILE_LIMIT).await?;
        let path = served.path();
        // Some mirrors store the gzip bytes without the header. A TileLeaf
        // starts with a millisecond timestamp, which is never 0x1f8b… .
        let bytes = if object.gzip || object.bytes.starts_with(&[0x1f, 0x8b]) {
            gunzip(&path, &object.bytes, DATA_TILE_DECODED_LIMIT)?
        } else {
            object.bytes
        };
        let mut leaves = parse_tile_leaves(&bytes).map_err(|e| Error::format(&path, e))?;
        if leaves.len() as u64 != served.width {
            return Err(Error::Inconsistent(format!(
                "{path}: {} entries, expected {}",
                leaves.len(),
                served.width
            )));
        }
        leaves.truncate(tile.width as usize);
        Ok(leaves)
    }

    /// The DER of issuer `fingerprint`, checked to hash to it.
    pub async fn issuer(&self, fingerprint: &Hash) -> Result<Vec<u8>> {
        let path = format!("issuer/{}", hex::encode(fingerprint));
        let der = self.must_get(&path, ISSUER_LIMIT).await?.bytes;
        if Sha256::digest(&der)[..] != fingerprint[..] {
            return Err(Error::Inconsistent(format!(
                "{path}: content does not hash to its name"
            )));
        }
        Ok(der)
    }

    /// Computes the inclusion proof of leaf `index` in the tree of `size`
    /// leaves from the hash tiles.
    pub async fn prove_inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.prove(&inclusion_plan(index, size)?, size).await
    }

    /// Computes the consistency proof from size `old` to size `new` from the
    /// hash tiles of the tree of size `new`.
    pub async fn prove_consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.prove(&consistency_plan(old, new)?, new).await
    }

    /// Fetches and verifies the inclusion of `leaf_hash` at `index` under a
    /// checkpoint (a convenience over [`LogClient::prove_inclusion`]).
    pub async fn check_inclusion(
        &self,
        leaf_hash: &Hash,
        index: u64,
        checkpoint: &SignedCheckpoint,
    ) -> Result<Vec<Hash>> {
        let (size, root) = (checkpoint.checkpoint.size, checkpoint.checkpoint.root);
        let proof = self.prove_inclusion(index, size).await?;
        verify_inclusion(leaf_hash, index, size, &proof, &root)
            .map_err(|e| Error::format(format!("inclusion of index {index} in size {size}"), e))?;
        Ok(proof)
    }

    /// Fetches the tiles a plan needs, concurrently, and folds the proof.
    async fn prove(&self, plan: &ProofPlan, size: u64) -> Result<Vec<Hash>> {
        let lookups = plan.lookups(size);
        let mut found = HashMap::new();
        let mut tiles = stream::iter(lookups.keys().copied())
            .map(|tile| async move { Ok::<_, Error>((tile, self.hash_tile(tile).await?)) })
            .buffer_unordered(self.in_flight);
        while let Some((tile, hashes)) = tiles.try_next().await? {
            capture(&lookups[&tile], &hashes, &mut found);
        }
        plan.assemble(&found)
    }

    /// GETs a tile; a partial tile that is not found falls back to the full
    /// tile. Returns the tile actually served.
    async fn get_tile(&self, tile: TileId, limit: u64) -> Result<(TileId, Object)> {
        if let Some(object) = self.source.get(&tile.path(), limit).await? {
            return Ok((tile, object));
        }
        let full = TileId {
            width: TILE_WIDTH,
            ..tile
        };
        if tile.is_full() {
            return Err(Error::NotFound {
                object: self.source.describe(&tile.path()),
            });
        }
        match self.source.get(&full.path(), limit).await? {
            Some(object) => Ok((full, object)),
            None => Err(Error::NotFound {
                object: format!("{} (and the full tile)", self.source.describe(&tile.path())),
            }),
        }
    }

    async fn must_get(&self, path: &str, limit: u64) -> Result<Object> {
        self.source
            .get(path, limit)
            .await?
            .ok_or_else(|| Error::NotFound {
                object: self.source.describe(path),
            })
    }
}

/// The data tile path for the level-0 tile `tile` (same index and width).
pub(crate) fn data_tile_of(tile: TileId) -> TileId {
    TileId {
        kind: TileKind::Data,
        ..tile
    }
}

/// Decompresses gzip, refusing output beyond `limit` (a gzip bomb).
fn gunzip(path: &str, bytes: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Inconsistent(format!("{path}: bad gzip: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::TooLarge {
            object: path.to_string(),
            limit,
        });
    }
    Ok(out)
}
