//! The right edge of a tree: at each tile level, the hashes of the rightmost
//! tile that is not full yet. It is all an audit keeps between runs: enough
//! to compute the root, and to check that the next, larger tree starts with
//! the same hashes.

use ct_formats::{empty_root, node_hash, Hash, TILE_HEIGHT, TILE_WIDTH};

use crate::{Error, Result};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RightEdge {
    /// `levels[l]` holds the `(size >> 8l) % 256` hashes of the rightmost
    /// partial tile at level `l` (empty when that level ends on a full tile).
    pub levels: Vec<Vec<Hash>>,
}

impl RightEdge {
    /// Checks that the level widths are the ones a tree of `size` has.
    pub fn check_shape(&self, size: u64) -> Result<()> {
        let levels = (0..)
            .map(|l: u32| size.checked_shr(l * TILE_HEIGHT).unwrap_or(0))
            .take_while(|&count| count > 0);
        let mut expected: Vec<usize> = levels.map(|c| (c % TILE_WIDTH) as usize).collect();
        let mut got: Vec<usize> = self.levels.iter().map(Vec::len).collect();
        trim_zeros(&mut expected);
        trim_zeros(&mut got);
        if got != expected {
            return Err(Error::Usage(format!(
                "state: right edge widths {got:?} do not fit a tree of size {size}"
            )));
        }
        Ok(())
    }

    /// The root of the tree: the edge hashes, top level first, are the
    /// perfect subtrees of the tree from left to right (256^l leaves each);
    /// they are merged like a binary counter and joined from the right.
    pub fn root(&self) -> Hash {
        let mut stack: Vec<(Hash, u32)> = Vec::new();
        for (level, hashes) in self.levels.iter().enumerate().rev() {
            for hash in hashes {
                let (mut node, mut height) = (*hash, level as u32 * TILE_HEIGHT);
                while let Some(&(left, left_height)) = stack.last() {
                    if left_height != height {
                        break;
                    }
                    stack.pop();
                    node = node_hash(&left, &node);
                    height += 1;
                }
                stack.push((node, height));
            }
        }
        let mut subtrees = stack.into_iter().rev().map(|(hash, _)| hash);
        let Some(last) = subtrees.next() else {
            return empty_root();
        };
        subtrees.fold(last, |right, left| node_hash(&left, &right))
    }
}

fn trim_zeros(widths: &mut Vec<usize>) {
    while widths.last() == Some(&0) {
        widths.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_formats::{leaf_hash, root_of};

    /// The edge of a tree built from its leaves gives the same root as
    /// hashing every leaf, across tile boundaries at levels 0 and 1.
    #[test]
    fn root_matches_root_of() {
        let leaves: Vec<Hash> = (0u32..70_000)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        for size in [
            1u64, 2, 255, 256, 257, 778, 1024, 65_535, 65_536, 65_537, 70_000,
        ] {
            let mut levels = vec![];
            let mut hashes: Vec<Hash> = leaves[..size as usize].to_vec();
            while !hashes.is_empty() {
                let full = hashes.len() / 256 * 256;
                levels.push(hashes[full..].to_vec());
                hashes = hashes[..full].chunks(256).map(root_of).collect();
            }
            let edge = RightEdge { levels };
            edge.check_shape(size).unwrap();
            assert_eq!(
                edge.root(),
                root_of(&leaves[..size as usize]),
                "size {size}"
            );
        }
        assert_eq!(RightEdge::default().root(), empty_root());
    }
}
