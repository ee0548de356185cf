//! The right edge of the Merkle tree: the only part of the tree the
//! sequencer keeps in memory.
//!
//! For each level it holds the hashes of the partial (not yet full) tile, and
//! for the data level the encoded entries of the partial data tile. That is
//! enough to append entries, emit every tile a round completes or changes,
//! and compute the root. Full tiles are never read back while sequencing.

use ct_formats::{empty_root, node_hash, root_of, Hash, TileId, TileKind, TILE_HEIGHT, TILE_WIDTH};

/// A tile produced by a round, uncompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTile {
    pub id: TileId,
    pub bytes: Vec<u8>,
}

/// The right edge of a tree of `size` entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RightEdge {
    size: u64,
    /// `levels[l]`: the hashes in the partial level-`l` tile (< 256 of them).
    levels: Vec<Vec<Hash>>,
    /// The TileLeaf bytes of the partial data tile.
    data: Vec<u8>,
}

/// Number of hashes at `level` for a tree of `size` entries.
pub fn level_count(size: u64, level: usize) -> u64 {
    size.checked_shr(TILE_HEIGHT * level as u32).unwrap_or(0)
}

impl RightEdge {
    /// Rebuilds an edge from the partial tiles read back from storage.
    /// `levels[l]` must hold `level_count(size, l) % 256` hashes.
    pub fn from_parts(size: u64, levels: Vec<Vec<Hash>>, data: Vec<u8>) -> RightEdge {
        RightEdge { size, levels, data }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one entry given its leaf hash and encoded TileLeaf. Every
    /// tile this completes is pushed onto `full`.
    pub fn append(&mut self, leaf_hash: Hash, tile_leaf: &[u8], full: &mut Vec<NewTile>) {
        self.data.extend_from_slice(tile_leaf);
        self.size += 1;
        if self.size.is_multiple_of(TILE_WIDTH) {
            let id = TileId {
                kind: TileKind::Data,
                index: self.size / TILE_WIDTH - 1,
                width: TILE_WIDTH,
            };
            // The next tile will be about as long: room for it at once
            // spares the copies and page faults of growing it by doubling.
            let next = Vec::with_capacity(self.data.len() + self.data.len() / 8);
            full.push(NewTile {
                id,
                bytes: std::mem::replace(&mut self.data, next),
            });
        }
        let mut hash = leaf_hash;
        for level in 0.. {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            if self.levels[level].len() < TILE_WIDTH as usize {
                return;
            }
            let hashes = std::mem::take(&mut self.levels[level]);
            hash = root_of(&hashes);
            let index = level_count(self.size, level) / TILE_WIDTH - 1;
            let kind = TileKind::Hash { level: level as u8 };
            full.push(NewTile {
                id: TileId {
                    kind,
                    index,
                    width: TILE_WIDTH,
                },
                bytes: hashes.concat(),
            });
        }
    }

    /// The partial tiles whose contents changed since the tree had
    /// `old_size` entries (full tiles are reported by `append`).
    pub fn partial_tiles_since(&self, old_size: u64) -> Vec<NewTile> {
        let mut tiles = Vec::new();
        if self.size != old_size && !self.data.is_empty() {
            let id = TileId {
                kind: TileKind::Data,
                index: self.size / TILE_WIDTH,
                width: self.size % TILE_WIDTH,
            };
            tiles.push(NewTile {
                id,
                bytes: self.data.clone(),
            });
        }
        for (level, hashes) in self.levels.iter().enumerate() {
            let count = level_count(self.size, level);
            if hashes.is_empty() || count == level_count(old_size, level) {
                continue;
            }
            let kind = TileKind::Hash { level: level as u8 };
            let id = TileId {
                kind,
                index: count / TILE_WIDTH,
                width: hashes.len() as u64,
            };
            tiles.push(NewTile {
                id,
                bytes: hashes.concat(),
            });
        }
        tiles
    }

    /// The tree's root: the perfect subtrees along the edge, largest (top
    /// level) first, folded from the right as RFC 6962 defines.
    pub fn root(&self) -> Hash {
        let mut subtrees = Vec::new();
        for hashes in self.levels.iter().rev() {
            let mut start = 0;
            for bit in (0..TILE_HEIGHT).rev() {
                let n = 1usize << bit;
                if hashes.len() & n != 0 {
                    subtrees.push(root_of(&hashes[start..start + n]));
                    start += n;
                }
            }
        }
        let Some(mut root) = subtrees.pop() else {
            return empty_root();
        };
        for left in subtrees.iter().rev() {
            root = node_hash(left, &root);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_formats::leaf_hash;
    use std::collections::HashMap;

    fn leaf(i: u64) -> Hash {
        leaf_hash(&i.to_be_bytes())
    }

    /// Grows a tree in uneven rounds and checks, after each round, the root
    /// against the flat RFC 6962 definition and every tile against the
    /// hashes it must contain.
    #[test]
    fn edge_matches_flat_tree_and_tiles_cover_every_level() {
        let mut edge = RightEdge::default();
        let mut leaves = Vec::new();
        let mut tiles: HashMap<(TileKind, u64), Vec<u8>> = HashMap::new();
        let rounds = [1u64, 0, 254, 1, 1, 300, 65_000, 1, 255, 256, 70_000];
        for n in rounds {
            let old_size = edge.size();
            let mut full = Vec::new();
            for _ in 0..n {
                let i = leaves.len() as u64;
                leaves.push(leaf(i));
                edge.append(leaf(i), &i.to_be_bytes(), &mut full);
            }
            for t in full.into_iter().chain(edge.partial_tiles_since(old_size)) {
                assert_eq!(
                    t.bytes.len() as u64,
                    t.id.width * if t.id.kind == TileKind::Data { 8 } else { 32 }
                );
                tiles.insert((t.id.kind, t.id.index), t.bytes);
            }
            assert_eq!(edge.size(), leaves.len() as u64);
            assert_eq!(edge.root(), root_of(&leaves), "size {}", leaves.len());
            check_tiles(&tiles, &leaves);
        }
    }

    /// Every tile stored so far must hold exactly the hashes of its subtrees.
    fn check_tiles(tiles: &HashMap<(TileKind, u64), Vec<u8>>, leaves: &[Hash]) {
        let size = leaves.len() as u64;
        let mut level_hashes: Vec<Hash> = leaves.to_vec();
        for level in 0u8.. {
            if level_hashes.is_empty() {
                break;
            }
            for (index, chunk) in level_hashes.chunks(256).enumerate() {
                let stored = &tiles[&(TileKind::Hash { level }, index as u64)];
                assert_eq!(
                    stored,
                    &chunk.concat(),
                    "level {level} tile {index} at size {size}"
                );
            }
            level_hashes = level_hashes.chunks_exact(256).map(root_of).collect();
        }
        for index in 0..size.div_ceil(256) {
            let data = &tiles[&(TileKind::Data, index)];
            let first = u64::from_be_bytes(data[..8].try_into().unwrap());
            assert_eq!(first, index * 256);
        }
    }

    #[test]
    fn nothing_changes_when_nothing_is_appended() {
        let mut edge = RightEdge::default();
        let mut full = Vec::new();
        for i in 0..300u64 {
            edge.append(leaf(i), b"x", &mut full);
        }
        assert!(edge.partial_tiles_since(300).is_empty());
        assert_eq!(RightEdge::default().root(), empty_root());
        let paths = |old| {
            edge.partial_tiles_since(old)
                .iter()
                .map(|t| t.id.path())
                .collect::<Vec<_>>()
        };
        // From 256 the level-1 count stays 1: its partial tile is unchanged.
        assert_eq!(paths(256), ["tile/data/001.p/44", "tile/0/001.p/44"]);
        assert_eq!(
            paths(200),
            ["tile/data/001.p/44", "tile/0/001.p/44", "tile/1/000.p/1"]
        );
    }
}
