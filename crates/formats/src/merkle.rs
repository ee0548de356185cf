//! RFC 6962 / RFC 9162 Merkle tree hashing and proof verification.

use sha2::{Digest, Sha256};

use crate::{FormatError, Hash};

/// Leaf hash: SHA-256(0x00 | MerkleTreeLeaf).
pub fn leaf_hash(merkle_tree_leaf: &[u8]) -> Hash {
    leaf_hash_of_parts(&[merkle_tree_leaf])
}

/// The leaf hash of a MerkleTreeLeaf given as consecutive parts, for
/// callers that hold its bytes in pieces and need not join them.
pub(crate) fn leaf_hash_of_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// Interior node hash: SHA-256(0x01 | left | right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// RFC 6962 Merkle Tree Hash over already-hashed leaves, in O(n) time and
/// O(log n) memory without recursion.
pub fn root_of(hashes: &[Hash]) -> Hash {
    // Perfect subtrees of the leaves so far, sizes strictly decreasing left
    // to right (a binary counter). Equal-sized neighbours merge at once.
    let mut stack: Vec<(Hash, u64)> = Vec::new();
    for leaf in hashes {
        let (mut node, mut size) = (*leaf, 1u64);
        while let Some(&(left, left_size)) = stack.last() {
            if left_size != size {
                break;
            }
            stack.pop();
            node = node_hash(&left, &node);
            size *= 2;
        }
        stack.push((node, size));
    }
    // The MTH splits at the largest power of two, so the root folds the
    // perfect subtrees together from the right.
    let mut subtrees = stack.into_iter().rev().map(|(hash, _)| hash);
    let Some(mut root) = subtrees.next() else {
        return empty_root();
    };
    for left in subtrees {
        root = node_hash(&left, &root);
    }
    root
}

/// Verifies an RFC 9162 §2.1.3.2 inclusion proof of `leaf_hash` at `index`
/// in the tree of `tree_size` leaves with root `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), FormatError> {
    if index >= tree_size {
        return Err(FormatError::Proof("leaf index is not below the tree size"));
    }
    let (mut fnode, mut snode) = (index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return Err(FormatError::Proof("inclusion proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            // Skip the levels where this node has no right sibling.
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(FormatError::Proof("inclusion proof is too short"));
    }
    if r != *root {
        return Err(FormatError::Proof(
            "inclusion proof does not lead to the root",
        ));
    }
    Ok(())
}

/// Verifies an RFC 9162 §2.1.4.2 consistency proof between the tree of
/// `size1` leaves (root1) and the tree of `size2` leaves (root2).
/// A proof from the empty tree proves nothing and is rejected.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), FormatError> {
    if size1 == 0 {
        return Err(FormatError::Proof(
            "consistency from the empty tree proves nothing",
        ));
    }
    if size1 > size2 {
        return Err(FormatError::Proof("first tree is larger than the second"));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(FormatError::Proof(
                "proof between equal sizes must be empty",
            ));
        }
        if root1 != root2 {
            return Err(FormatError::Proof("equal sizes with different roots"));
        }
        return Ok(());
    }
    // When size1 is a power of two, its root is the proof's implicit first node.
    let (seed, rest) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        proof
            .split_first()
            .ok_or(FormatError::Proof("consistency proof is empty"))?
    };
    consistency_walk(size1, size2, seed, rest, root1, root2)
}

/// The RFC 9162 §2.1.4.2 loop after the seed node has been chosen.
fn consistency_walk(
    size1: u64,
    size2: u64,
    seed: &Hash,
    rest: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), FormatError> {
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if snode == 0 {
            return Err(FormatError::Proof("consistency proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(FormatError::Proof("consistency proof is too short"));
    }
    if fr != *root1 || sr != *root2 {
        return Err(FormatError::Proof(
            "consistency proof does not lead to the roots",
        ));
    }
    Ok(())
}
