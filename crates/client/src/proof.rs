//! RFC 9162 inclusion and consistency proofs, planned as tile lookups.
//!
//! A proof is a list of range hashes. Each range is split into perfect
//! subtrees ([`Node`]s), and each node's hash is the root of a run of hashes
//! in one hash tile. Planning is pure; the hashes come from fetched tiles
//! ([`crate::LogClient::prove_inclusion`]), from tiles an audit has already
//! verified, or from a log's own storage (the server's RFC 6962 read API,
//! through [`ProofPlan::lookups`] and [`capture`]). Verification is
//! `ct_formats::verify_*`.

use std::collections::HashMap;
use std::ops::Range;

use ct_formats::{node_hash, root_of, Hash, TileId, TileKind, TILE_HEIGHT, TILE_WIDTH};

use crate::{Error, Result};

/// The perfect subtree of leaves `[index << level, (index + 1) << level)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub level: u32,
    pub index: u64,
}

impl Node {
    /// The hash tile holding this node's hashes in a tree of `size` leaves,
    /// and the positions in it whose root is the node's hash.
    pub fn tile(&self, size: u64) -> (TileId, Range<usize>) {
        let tile_level = self.level / TILE_HEIGHT;
        let sub_level = self.level % TILE_HEIGHT;
        let first = self.index << sub_level;
        let index = first / TILE_WIDTH;
        let count = size >> (tile_level * TILE_HEIGHT);
        let tile = TileId {
            kind: TileKind::Hash {
                level: tile_level as u8,
            },
            index,
            width: (count - index * TILE_WIDTH).min(TILE_WIDTH),
        };
        let start = (first % TILE_WIDTH) as usize;
        (tile, start..start + (1 << sub_level))
    }
}

/// The nodes to look up for a proof: one list of perfect subtrees per proof
/// hash, leaf side first, as RFC 9162 orders them.
#[derive(Clone, Debug)]
pub struct ProofPlan(Vec<Vec<Node>>);

/// Plans the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan> {
    if index >= size {
        return Err(Error::Usage(format!(
            "no inclusion proof for index {index} in a tree of size {size}"
        )));
    }
    let mut ranges = Vec::new();
    inclusion_ranges(index, 0..size, &mut ranges);
    Ok(ProofPlan::from_ranges(ranges))
}

/// Plans the consistency proof from the tree of `old` leaves to the tree
/// of `new` leaves. A proof from the empty tree proves nothing, so it is
/// refused, like `ct_formats::verify_consistency` refuses it.
pub fn consistency_plan(old: u64, new: u64) -> Result<ProofPlan> {
    if old == 0 || old > new {
        return Err(Error::Usage(format!(
            "no consistency proof from size {old} to size {new}"
        )));
    }
    let mut ranges = Vec::new();
    if old < new {
        subproof(old, 0..new, true, &mut ranges);
    }
    Ok(ProofPlan::from_ranges(ranges))
}

impl ProofPlan {
    fn from_ranges(ranges: Vec<Range<u64>>) -> ProofPlan {
        ProofPlan(ranges.into_iter().map(perfect_subtrees).collect())
    }

    pub fn nodes(&self) -> impl Iterator<Item = Node> + '_ {
        self.0.iter().flatten().copied()
    }

    /// Folds the looked-up node hashes into the proof.
    pub fn assemble(&self, hashes: &HashMap<Node, Hash>) -> Result<Vec<Hash>> {
        let lookup = |node: &Node| {
            hashes.get(node).copied().ok_or_else(|| {
                Error::Inconsistent(format!(
                    "proof node at level {} index {} was not found in the tiles",
                    node.level, node.index
                ))
            })
        };
        self.0
            .iter()
            .map(|subtrees| {
                // A range's hash joins its perfect subtrees from the right.
                let mut nodes = subtrees.iter().rev();
                let last = nodes.next().expect("a proof range is never empty");
                nodes.try_fold(lookup(last)?, |acc, n| Ok(node_hash(&lookup(n)?, &acc)))
            })
            .collect()
    }
}

/// A plan's nodes grouped by the hash tile that holds them in a tree of a
/// given size, each with its positions in that tile.
pub type TileLookups = HashMap<TileId, Vec<(Node, Range<usize>)>>;

impl ProofPlan {
    /// The hash tiles of the tree of `size` leaves that hold this plan's
    /// nodes. A wider version of a tile (a later partial or the full tile)
    /// holds the same hashes at the same positions, so it serves too.
    pub fn lookups(&self, size: u64) -> TileLookups {
        let mut lookups: TileLookups = HashMap::new();
        for node in self.nodes() {
            let (tile, positions) = node.tile(size);
            lookups.entry(tile).or_default().push((node, positions));
        }
        lookups
    }
}

/// Records the hashes of the nodes `lookups` places in a tile with `hashes`.
pub fn capture(lookups: &[(Node, Range<usize>)], hashes: &[Hash], found: &mut HashMap<Node, Hash>) {
    for (node, positions) in lookups {
        if let Some(run) = hashes.get(positions.clone()) {
            found.insert(*node, root_of(run));
        }
    }
}

/// RFC 9162 §2.1.3.1 PATH(m, D[range]) as the ranges whose hashes form it.
fn inclusion_ranges(m: u64, range: Range<u64>, out: &mut Vec<Range<u64>>) {
    let n = range.end - range.start;
    if n <= 1 {
        return;
    }
    let k = split(n);
    let mid = range.start + k;
    if m < k {
        inclusion_ranges(m, range.start..mid, out);
        out.push(mid..range.end);
    } else {
        inclusion_ranges(m - k, mid..range.end, out);
        out.push(range.start..mid);
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF(m, D[range], whole) as ranges.
fn subproof(m: u64, range: Range<u64>, whole: bool, out: &mut Vec<Range<u64>>) {
    let n = range.end - range.start;
    if m == n {
        if !whole {
            out.push(range);
        }
        return;
    }
    let k = split(n);
    let mid = range.start + k;
    if m <= k {
        subproof(m, range.start..mid, whole, out);
        out.push(mid..range.end);
    } else {
        subproof(m - k, mid..range.end, false, out);
        out.push(range.start..mid);
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Splits a proof range (its start aligned to a power of two at least its
/// length) into perfect subtrees of decreasing size.
fn perfect_subtrees(range: Range<u64>) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let fits = 63 - (range.end - start).leading_zeros();
        let level = fits.min(start.trailing_zeros());
        nodes.push(Node {
            level,
            index: start >> level,
        });
        start += 1 << level;
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_formats::{leaf_hash, verify_consistency, verify_inclusion};

    /// Every proof for every pair of sizes up to 70, built from an in-memory
    /// level-0 "tile" (one tile level suffices below 256 leaves, whatever
    /// the node level) and checked with ct-formats.
    #[test]
    fn plans_give_valid_proofs() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let lookup = |plan: &ProofPlan| {
            let found = plan
                .nodes()
                .map(|n| {
                    let first = (n.index << n.level) as usize;
                    (n, root_of(&leaves[first..first + (1 << n.level)]))
                })
                .collect();
            plan.assemble(&found).unwrap()
        };
        for size in 1..=70u64 {
            let root = root_of(&leaves[..size as usize]);
            for index in 0..size {
                let proof = lookup(&inclusion_plan(index, size).unwrap());
                verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
            }
            for old in 1..=size {
                let proof = lookup(&consistency_plan(old, size).unwrap());
                let old_root = root_of(&leaves[..old as usize]);
                verify_consistency(old, size, &proof, &old_root, &root).unwrap();
            }
        }
    }

    #[test]
    fn node_tiles() {
        // Level 9 node 1 = leaves 512..1024 = level-1 hashes 2..4 of tile/1/000.
        let (tile, positions) = Node { level: 9, index: 1 }.tile(1030);
        assert_eq!(tile.path(), "tile/1/000.p/4");
        assert_eq!(positions, 2..4);
        let (tile, positions) = Node {
            level: 2,
            index: 65,
        }
        .tile(1030);
        assert_eq!(tile.path(), "tile/0/001");
        assert_eq!(positions, 4..8);
    }
}
