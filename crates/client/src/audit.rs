//! Auditing a whole log: every tile, every entry, every issuer, and, with a
//! saved [`AuditState`], consistency with the last audit while fetching only
//! what is new.
//!
//! Level-0 hash tiles and data tiles are fetched in order, a bounded number
//! in flight. Each entry must carry its own index, hash to its level-0 hash
//! and be no newer than the checkpoint. Hashes above level 0 are recomputed
//! from the tiles below and compared with the served tiles as each tile
//! completes, so memory stays bounded by one tile per level. The root is
//! then recomputed from the right edge and compared with the checkpoint.

use std::collections::{BTreeSet, HashMap};

use base64::prelude::{Engine, BASE64_STANDARD};
use ct_formats::{
    leaf_hash, root_of, verify_consistency, Hash, TileId, TileKind, TileLeaf, TILE_HEIGHT,
    TILE_WIDTH,
};
use futures_util::{stream, StreamExt, TryStreamExt};
use p256::ecdsa::VerifyingKey;
use serde::Serialize;

use crate::edge::RightEdge;
use crate::fetch::data_tile_of;
use crate::proof::{capture, Node, TileLookups};
use crate::{consistency_plan, AuditState, Error, LogClient, ProofPlan, Result};

/// A tree head trusted without a checkpoint (for example, a root published
/// out of band). `timestamp`, when known, bounds the entries' timestamps.
#[derive(Clone, Copy, Debug)]
pub struct TrustedHead {
    pub size: u64,
    pub root: Hash,
    pub timestamp: Option<u64>,
}

/// What an audit covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Everything a log must serve.
    #[default]
    Full,
    /// Only data tiles, level-0 tiles and the root: for a partial mirror
    /// (such as test vectors) without the upper hash tiles and issuers.
    /// Upper-level hashes are still computed, so proofs still work.
    Leaves,
}

/// Called with (entries checked, entries to check).
pub type Progress = Box<dyn Fn(u64, u64) + Send + Sync>;

#[derive(Default)]
pub struct AuditOptions {
    pub scope: Scope,
    pub progress: Option<Progress>,
}

/// The outcome of a successful audit.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    pub origin: Option<String>,
    pub size: u64,
    /// Base64, as in the checkpoint.
    pub root: String,
    pub timestamp: Option<u64>,
    /// The size audited before (0 without a state).
    pub from_size: u64,
    /// Entries checked by this run.
    pub entries: u64,
    pub data_tiles: u64,
    pub hash_tiles: u64,
    /// Issuers fetched and checked by this run.
    pub issuers: u64,
    /// Length of the consistency proof verified against the last audit.
    pub consistency_proof: Option<usize>,
}

/// Audits the log behind `client` at its current checkpoint, verified with
/// `key`. The origin is `origin`, else the previous state's, else the
/// checkpoint's own. Returns the report and the state for the next run.
pub async fn audit(
    client: &LogClient,
    key: &VerifyingKey,
    origin: Option<&str>,
    previous: Option<&AuditState>,
    options: &AuditOptions,
) -> Result<(AuditReport, AuditState)> {
    let origin = origin.or_else(|| previous.and_then(|s| s.origin.as_deref()));
    let signed = client.checkpoint(key, origin).await?;
    let head = TrustedHead {
        size: signed.checkpoint.size,
        root: signed.checkpoint.root,
        timestamp: Some(signed.timestamp),
    };
    let (mut report, mut state) = audit_trusted(client, head, previous, options).await?;
    report.origin = Some(signed.checkpoint.origin.clone());
    state.origin = Some(signed.checkpoint.origin);
    state.checkpoint = Some(String::from_utf8_lossy(&signed.note).into_owned());
    Ok((report, state))
}

/// Audits the tree of `head.size` leaves served by `client` against a
/// trusted head instead of a signed checkpoint.
pub async fn audit_trusted(
    client: &LogClient,
    head: TrustedHead,
    previous: Option<&AuditState>,
    options: &AuditOptions,
) -> Result<(AuditReport, AuditState)> {
    let mut state = previous.cloned().unwrap_or_else(empty_state);
    check_against_previous(&state, &head)?;
    let from = state.size;
    let mut report = AuditReport {
        origin: None,
        size: head.size,
        root: BASE64_STANDARD.encode(head.root),
        timestamp: head.timestamp,
        from_size: from,
        entries: head.size - from,
        data_tiles: 0,
        hash_tiles: 0,
        issuers: 0,
        consistency_proof: None,
    };
    if head.size > from {
        let plan = (from > 0)
            .then(|| consistency_plan(from, head.size))
            .transpose()?;
        let mut walk = Walk::new(client, &head, &state, options.scope, plan.as_ref());
        let fingerprints = walk.run(options).await?;
        report.data_tiles = walk.data_tiles;
        report.hash_tiles = walk.hash_tiles;
        state.edge = RightEdge { levels: walk.edge };
        let computed = state.edge.root();
        if computed != head.root {
            return Err(Error::Inconsistent(format!(
                "checkpoint root {} differs from the root {} computed from the tiles",
                BASE64_STANDARD.encode(head.root),
                BASE64_STANDARD.encode(computed)
            )));
        }
        if let Some(plan) = plan {
            report.consistency_proof = Some(check_consistency(&plan, &walk.found, &state, &head)?);
        }
        if options.scope == Scope::Full {
            report.issuers = check_issuers(client, fingerprints, &mut state.issuers).await?;
        }
    }
    state.size = head.size;
    state.root = head.root;
    state.timestamp = head.timestamp;
    Ok((report, state))
}

fn empty_state() -> AuditState {
    let edge = RightEdge::default();
    AuditState {
        origin: None,
        size: 0,
        root: edge.root(),
        timestamp: None,
        checkpoint: None,
        edge,
        issuers: BTreeSet::new(),
    }
}

/// A tree never shrinks, never changes at the same size, and its checkpoint
/// timestamps never go back.
fn check_against_previous(previous: &AuditState, head: &TrustedHead) -> Result<()> {
    let b64 = |h: &Hash| BASE64_STANDARD.encode(h);
    if head.size < previous.size {
        return Err(Error::Inconsistent(format!(
            "checkpoint size {} is smaller than the last audited size {}: the log rolled back",
            head.size, previous.size
        )));
    }
    if head.size == previous.size && head.root != previous.root {
        return Err(Error::Inconsistent(format!(
            "checkpoint of size {} has root {}, but the tree audited at that size has root {}: the log forked",
            head.size,
            b64(&head.root),
            b64(&previous.root)
        )));
    }
    if let (Some(now), Some(before)) = (head.timestamp, previous.timestamp) {
        if now < before {
            return Err(Error::Inconsistent(format!(
                "checkpoint timestamp {now} is before the last audited checkpoint's {before}"
            )));
        }
    }
    Ok(())
}

/// Builds the consistency proof from the hashes the walk verified and
/// checks it against both roots; returns its length.
fn check_consistency(
    plan: &ProofPlan,
    found: &HashMap<Node, Hash>,
    previous: &AuditState,
    head: &TrustedHead,
) -> Result<usize> {
    let proof = plan.assemble(found)?;
    verify_consistency(previous.size, head.size, &proof, &previous.root, &head.root).map_err(
        |e| {
            Error::Inconsistent(format!(
                "the tree of size {} is not consistent with the audited tree of size {}: {e}",
                head.size, previous.size
            ))
        },
    )?;
    Ok(proof.len())
}

/// Fetches every issuer not checked before; each must hash to its name.
async fn check_issuers(
    client: &LogClient,
    fingerprints: BTreeSet<Hash>,
    known: &mut BTreeSet<Hash>,
) -> Result<u64> {
    let new: Vec<Hash> = fingerprints.difference(known).copied().collect();
    stream::iter(&new)
        .map(|fp| client.issuer(fp))
        .buffer_unordered(client.in_flight())
        .try_for_each(|_| async { Ok(()) })
        .await?;
    known.extend(&new);
    Ok(new.len() as u64)
}

/// One pass over the new tiles, keeping one tile per level in memory.
struct Walk<'a> {
    client: &'a LogClient,
    size: u64,
    from: u64,
    timestamp: Option<u64>,
    scope: Scope,
    /// Per level: the verified hashes of the rightmost tile not complete yet.
    edge: Vec<Vec<Hash>>,
    /// Per level: the position of `edge[l][0]` at that level.
    start: Vec<u64>,
    /// Proof nodes still to capture, by the tile that holds them.
    wanted: TileLookups,
    found: HashMap<Node, Hash>,
    data_tiles: u64,
    hash_tiles: u64,
}

impl<'a> Walk<'a> {
    fn new(
        client: &'a LogClient,
        head: &TrustedHead,
        previous: &AuditState,
        scope: Scope,
        plan: Option<&ProofPlan>,
    ) -> Walk<'a> {
        let edge = previous.edge.levels.clone();
        let start = (0..edge.len() as u32)
            .map(|l| (previous.size >> (l * TILE_HEIGHT)) / TILE_WIDTH * TILE_WIDTH)
            .collect();
        let wanted = plan.map(|p| p.lookups(head.size)).unwrap_or_default();
        Walk {
            client,
            size: head.size,
            from: previous.size,
            timestamp: head.timestamp,
            scope,
            edge,
            start,
            wanted,
            found: HashMap::new(),
            data_tiles: 0,
            hash_tiles: 0,
        }
    }

    /// Fetches and checks every level-0 and data tile from the one holding
    /// the first new entry; returns the issuer fingerprints seen.
    async fn run(&mut self, options: &AuditOptions) -> Result<BTreeSet<Hash>> {
        let client = self.client;
        let size = self.size;
        let first = self.from / TILE_WIDTH;
        let tiles = stream::iter(first..size.div_ceil(TILE_WIDTH))
            .map(|n| async move {
                let tile = level0_tile(n, size);
                let (hashes, leaves) =
                    tokio::try_join!(client.hash_tile(tile), client.data_tile(data_tile_of(tile)))?;
                Ok::<_, Error>((tile, hashes, leaves))
            })
            .buffered(client.in_flight());
        futures_util::pin_mut!(tiles);
        let mut fingerprints = BTreeSet::new();
        while let Some(fetched) = tiles.next().await {
            let (tile, hashes, leaves) = fetched?;
            self.data_tiles += 1;
            self.hash_tiles += 1;
            self.check_prefix(&tile, &hashes)?;
            self.check_entries(&tile, &hashes, &leaves, &mut fingerprints)?;
            self.edge_at(0).clone_from(&hashes);
            self.settle(0).await?;
            if let Some(progress) = &options.progress {
                let done = tile.index * TILE_WIDTH + tile.width;
                progress(done - self.from, size - self.from);
            }
        }
        self.finish().await?;
        Ok(fingerprints)
    }

    /// The hashes of the last audited tree must still be there, unchanged.
    fn check_prefix(&mut self, tile: &TileId, hashes: &[Hash]) -> Result<()> {
        let known = self.edge_at(0);
        match known.iter().zip(hashes).position(|(a, b)| a != b) {
            None => Ok(()),
            Some(i) => Err(Error::Inconsistent(format!(
                "{}: hash {i} differs from the tree audited at size {}: the log forked",
                tile.path(),
                self.from
            ))),
        }
    }

    fn check_entries(
        &self,
        tile: &TileId,
        hashes: &[Hash],
        leaves: &[TileLeaf],
        fingerprints: &mut BTreeSet<Hash>,
    ) -> Result<()> {
        let data = data_tile_of(*tile).path();
        for (i, (leaf, hash)) in leaves.iter().zip(hashes).enumerate() {
            let index = tile.index * TILE_WIDTH + i as u64;
            let carried = leaf
                .leaf_index()
                .map_err(|e| Error::format(format!("{data}: entry {i}"), e))?;
            if carried != index {
                return Err(Error::Inconsistent(format!(
                    "{data}: entry {i} carries leaf_index {carried}, expected {index}"
                )));
            }
            if leaf_hash(&leaf.merkle_tree_leaf()) != *hash {
                return Err(Error::Inconsistent(format!(
                    "{data}: entry {i} (index {index}) does not hash to its level-0 hash in {}",
                    tile.path()
                )));
            }
            if let Some(ts) = self.timestamp.filter(|&ts| leaf.timestamp > ts) {
                return Err(Error::Inconsistent(format!(
                    "{data}: entry {i} (index {index}) has timestamp {}, after the checkpoint's {ts}",
                    leaf.timestamp
                )));
            }
            fingerprints.extend(&leaf.entry.chain_fingerprints);
        }
        Ok(())
    }

    /// While the tile at `level` is complete: check it against the served
    /// tile (above level 0), capture proof nodes, and carry its root up.
    async fn settle(&mut self, mut level: usize) -> Result<()> {
        while self.edge_at(level).len() as u64 == TILE_WIDTH {
            self.check_served(level).await?;
            self.capture(level);
            let root = root_of(&self.edge[level]);
            self.edge[level].clear();
            self.start[level] += TILE_WIDTH;
            level += 1;
            self.edge_at(level).push(root);
        }
        Ok(())
    }

    /// The partial tiles left at the right edge.
    async fn finish(&mut self) -> Result<()> {
        for level in 0..self.edge.len() {
            if !self.edge[level].is_empty() {
                self.check_served(level).await?;
                self.capture(level);
            }
        }
        Ok(())
    }

    /// Compares a computed tile above level 0 with the one the log serves.
    async fn check_served(&mut self, level: usize) -> Result<()> {
        if level == 0 || self.scope == Scope::Leaves {
            return Ok(());
        }
        let tile = self.edge_tile(level);
        let served = self.client.hash_tile(tile).await?;
        self.hash_tiles += 1;
        let Some(i) = served
            .iter()
            .zip(&self.edge[level])
            .position(|(a, b)| a != b)
        else {
            return Ok(());
        };
        let below = TileId {
            kind: TileKind::Hash {
                level: level as u8 - 1,
            },
            index: tile.index * TILE_WIDTH + i as u64,
            width: TILE_WIDTH,
        };
        Err(Error::Inconsistent(format!(
            "{}: hash {i} is not the root of {}",
            tile.path(),
            below.path()
        )))
    }

    /// Records the proof nodes that live in the edge tile at `level`.
    fn capture(&mut self, level: usize) {
        if let Some(lookups) = self.wanted.remove(&self.edge_tile(level)) {
            capture(&lookups, &self.edge[level], &mut self.found);
        }
    }

    fn edge_tile(&self, level: usize) -> TileId {
        TileId {
            kind: TileKind::Hash { level: level as u8 },
            index: self.start[level] / TILE_WIDTH,
            width: self.edge[level].len() as u64,
        }
    }

    /// The edge at `level`, creating the level (empty, at position 0).
    fn edge_at(&mut self, level: usize) -> &mut Vec<Hash> {
        while self.edge.len() <= level {
            self.edge.push(Vec::new());
            self.start.push(0);
        }
        &mut self.edge[level]
    }
}

/// Level-0 tile `n` of a tree of `size` leaves.
fn level0_tile(n: u64, size: u64) -> TileId {
    TileId {
        kind: TileKind::Hash { level: 0 },
        index: n,
        width: (size - n * TILE_WIDTH).min(TILE_WIDTH),
    }
}
