//! Third-party vectors in ../shared/vectors: transparency-dev Merkle proof
//! test data and real navigli2025h2 tiles (from Sunlight's testdata).

use std::path::{Path, PathBuf};

use ct_formats::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{b64, vectors_dir};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// A leaf hash or proof node that is not 32 bytes cannot be passed to the
/// typed API at all: the conversion is where it is rejected.
fn node(v: &Value) -> Option<Hash> {
    b64(v.as_str().unwrap()).try_into().ok()
}

/// Roots are only ever compared for equality, and one positive vector uses
/// equal 12-byte "don't care" roots. A root of another length becomes a hash
/// no real value produces, equal only for equal inputs.
fn root(v: &Value) -> Hash {
    let bytes = b64(v.as_str().unwrap());
    bytes.clone().try_into().unwrap_or_else(|_| {
        let mut h = Sha256::new();
        h.update(b"not a 32-byte hash");
        h.update(&bytes);
        h.finalize().into()
    })
}

fn proof(v: &Value) -> Option<Vec<Hash>> {
    v.as_array()
        .map_or(Some(vec![]), |a| a.iter().map(node).collect())
}

/// Runs one vector file; returns (wantErr, whether it was rejected).
fn run_vector(path: &Path) -> (bool, bool) {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let want_err = v["wantErr"].as_bool().unwrap();
    let Some(proof) = proof(&v["proof"]) else {
        return (want_err, true);
    };
    let result = if v.get("leafIdx").is_some() {
        let Some(leaf) = node(&v["leafHash"]) else {
            return (want_err, true);
        };
        verify_inclusion(
            &leaf,
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &proof,
            &root(&v["root"]),
        )
    } else {
        verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &proof,
            &root(&v["root1"]),
            &root(&v["root2"]),
        )
    };
    (want_err, result.is_err())
}

#[test]
fn merkle_proof_vectors() {
    let Some(dir) = vectors_dir("merkle") else {
        return;
    };
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    assert!(files.len() > 150, "only {} vector files", files.len());
    let (mut positive, mut negative) = (0, 0);
    for path in &files {
        let (want_err, got_err) = run_vector(path);
        assert_eq!(got_err, want_err, "{}", path.display());
        if want_err {
            negative += 1;
        } else {
            positive += 1;
        }
    }
    eprintln!("{positive} positive and {negative} negative Merkle vectors passed");
}

const ROOT_778: &str = "+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=";
const ROOT_1024: &str = "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=";

fn read_tile(dir: &Path, path: &str) -> Vec<u8> {
    let bytes = std::fs::read(dir.join(path)).unwrap();
    assert!(!bytes.starts_with(&[0x1f, 0x8b]), "{path} is gzip");
    bytes
}

fn level0_hashes(dir: &Path) -> Vec<Hash> {
    let mut hashes = Vec::new();
    for n in 0..4 {
        let tile = read_tile(dir, &format!("tile/0/{n:03}"));
        assert_eq!(tile.len(), 256 * 32);
        hashes.extend(tile.chunks(32).map(|c| Hash::try_from(c).unwrap()));
    }
    hashes
}

#[test]
fn real_tiles() {
    let Some(dir) = vectors_dir("navigli2025h2") else {
        return;
    };
    let hashes = level0_hashes(&dir);
    assert_eq!(root_of(&hashes[..778]).to_vec(), b64(ROOT_778));
    assert_eq!(root_of(&hashes).to_vec(), b64(ROOT_1024));
    let partial = read_tile(&dir, "tile/0/003.p/10");
    assert_eq!(partial, read_tile(&dir, "tile/0/003")[..320]);

    for n in 0..4u64 {
        let path = format!("tile/data/{n:03}");
        let data = read_tile(&dir, &path);
        let leaves = parse_tile_leaves(&data).unwrap();
        assert_eq!(leaves.len(), 256, "{path}");
        let mut reencoded = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            let index = n * 256 + i as u64;
            assert_eq!(leaf.leaf_index(), Ok(index), "{path} entry {i}");
            assert_eq!(leaf_hash(&leaf.merkle_tree_leaf()), hashes[index as usize]);
            assert_eq!(
                leaf.entry.merkle_tree_leaf(leaf.timestamp, index),
                leaf.merkle_tree_leaf()
            );
            leaf.entry
                .write_tile_leaf(leaf.timestamp, index, &mut reencoded);
        }
        assert_eq!(reencoded, data, "{path} re-encodes byte for byte");
        check_with_oracle(&data, &leaves);
    }

    let partial = read_tile(&dir, "tile/data/003.p/10");
    let leaves = parse_tile_leaves(&partial).unwrap();
    assert_eq!(
        leaves,
        parse_tile_leaves(&read_tile(&dir, "tile/data/003")).unwrap()[..10]
    );
}

/// static_ct_api parses the same entries the same way.
fn check_with_oracle(data: &[u8], leaves: &[TileLeaf]) {
    let oracle = static_ct_api::TileIterator::new(data.to_vec(), leaves.len());
    for (o, leaf) in oracle.zip(leaves) {
        let o = o.unwrap();
        assert_eq!(o.timestamp, leaf.timestamp);
        assert_eq!(Ok(o.leaf_index), leaf.leaf_index());
        assert_eq!(o.chain_fingerprints, leaf.entry.chain_fingerprints);
        assert_eq!(o.merkle_tree_leaf(), leaf.merkle_tree_leaf());
        match &leaf.entry.kind {
            EntryKind::X509 { certificate } => {
                assert!(!o.is_precert);
                assert_eq!(&o.certificate, certificate);
            }
            EntryKind::Precert {
                issuer_key_hash,
                tbs,
                precertificate,
            } => {
                assert!(o.is_precert);
                assert_eq!(&o.issuer_key_hash, issuer_key_hash);
                assert_eq!(&o.certificate, tbs);
                assert_eq!(&o.pre_certificate, precertificate);
            }
        }
    }
}
