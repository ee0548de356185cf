use ct_formats::*;
use tlog_tiles::HashReader;

use crate::unhex;

fn h(hex: &str) -> Hash {
    unhex(hex).try_into().unwrap()
}

#[test]
fn hash_primitives() {
    assert_eq!(
        empty_root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    // RFC 6962 test data: the leaf hash of the empty leaf.
    assert_eq!(
        leaf_hash(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(root_of(&[]), empty_root());
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    assert_eq!(
        node_hash(&a, &b),
        tlog_tiles::node_hash(tlog_tiles::Hash(a), tlog_tiles::Hash(b)).0
    );
    assert_eq!(leaf_hash(b"a"), tlog_tiles::record_hash(b"a").0);
}

/// The RFC 6962 reference leaves (certificate-transparency / transparency-dev
/// test data) and the published roots of their prefixes.
#[test]
fn rfc6962_reference_roots() {
    let leaves: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
    for (n, root) in roots.iter().enumerate() {
        assert_eq!(root_of(&hashes[..=n]), h(root), "size {}", n + 1);
    }
}

/// Stored hashes of a tlog_tiles tree, built record by record by the oracle.
struct OracleTree(Vec<tlog_tiles::Hash>);

impl HashReader for OracleTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

impl OracleTree {
    fn build(leaves: &[Hash]) -> OracleTree {
        let mut tree = OracleTree(Vec::new());
        for (n, leaf) in leaves.iter().enumerate() {
            let new =
                tlog_tiles::stored_hashes_for_record_hash(n as u64, tlog_tiles::Hash(*leaf), &tree)
                    .unwrap();
            tree.0.extend(new);
        }
        tree
    }

    fn root(&self, size: u64) -> Hash {
        tlog_tiles::tree_hash(size, self).unwrap().0
    }
}

fn test_leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn root_of_matches_oracle() {
    let leaves = test_leaves(70_000);
    let tree = OracleTree::build(&leaves);
    for size in (1..=1100).chain([65535, 65536, 65537, 70_000]) {
        assert_eq!(
            root_of(&leaves[..size]),
            tree.root(size as u64),
            "size {size}"
        );
    }
}

#[test]
fn root_of_handles_a_million() {
    // Must neither recurse deeply nor take quadratic time. With identical
    // leaves a perfect subtree's root is its half's root hashed with itself.
    let leaf = [7u8; 32];
    let mut perfect = leaf;
    for _ in 0..20 {
        perfect = node_hash(&perfect, &perfect);
    }
    let leaves = vec![leaf; (1 << 20) + 1];
    assert_eq!(root_of(&leaves), node_hash(&perfect, &leaf));
}

#[test]
fn oracle_proofs_verify() {
    let leaves = test_leaves(80);
    let tree = OracleTree::build(&leaves);
    for size in 1..=80u64 {
        let root = tree.root(size);
        for n in 0..size {
            let proof: Vec<Hash> = tlog_tiles::prove_record(size, n, &tree)
                .unwrap()
                .iter()
                .map(|h| h.0)
                .collect();
            verify_inclusion(&leaves[n as usize], n, size, &proof, &root).unwrap();
            let mut other = leaves[n as usize];
            other[0] ^= 1;
            assert!(verify_inclusion(&other, n, size, &proof, &root).is_err());
            let proof: Vec<Hash> = tlog_tiles::prove_tree(size, n + 1, &tree)
                .unwrap()
                .iter()
                .map(|h| h.0)
                .collect();
            let old = tree.root(n + 1);
            verify_consistency(n + 1, size, &proof, &old, &root).unwrap();
            assert!(verify_consistency(n + 1, size, &proof, &root, &old).is_err() || old == root);
        }
    }
}

#[test]
fn proof_edge_cases() {
    let leaves = test_leaves(4);
    let root = root_of(&leaves);
    assert!(verify_inclusion(&leaves[0], 0, 0, &[], &empty_root()).is_err());
    assert!(verify_inclusion(&leaves[0], 4, 4, &[], &root).is_err());
    assert!(verify_consistency(0, 4, &[], &empty_root(), &root).is_err());
    assert!(verify_consistency(4, 3, &[], &root, &root).is_err());
    verify_consistency(4, 4, &[], &root, &root).unwrap();
    assert!(verify_consistency(4, 4, &[root], &root, &root).is_err());
    verify_inclusion(&leaves[0], 0, 1, &[], &leaves[0]).unwrap();
}
