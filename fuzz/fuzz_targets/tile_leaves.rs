//! Data tile parsing: `parse_tile_leaves` and the TileLeaf encoding.
//!
//! Mode 0, raw bytes: nothing panics, and `parse_tile_leaves(b) == Ok(v)`
//! implies re-encoding v gives back b exactly (with `Entry::write_tile_leaf`
//! for leaves whose extensions are a leaf_index, byte for byte otherwise);
//! each leaf's MerkleTreeLeaf agrees with `Entry::merkle_tree_leaf`.
//! Mode 1, entries made here: written with `write_tile_leaf`, they parse
//! back to the same entries, timestamps and indexes.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ct_formats::{
    leaf_index_extension, parse_leaf_index_extension, parse_tile_leaves, Entry, EntryKind,
    TileLeaf,
};
use libfuzzer_sys::fuzz_target;

/// TileLeaf encoding with the stored extensions (independent of the crate).
fn encode(leaf: &TileLeaf, out: &mut Vec<u8>) {
    fn prefixed(out: &mut Vec<u8>, n: usize, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u64).to_be_bytes()[8 - n..]);
        out.extend_from_slice(b);
    }
    out.extend_from_slice(&leaf.timestamp.to_be_bytes());
    match &leaf.entry.kind {
        EntryKind::X509 { certificate } => {
            out.extend_from_slice(&[0, 0]);
            prefixed(out, 3, certificate);
            prefixed(out, 2, &leaf.extensions);
        }
        EntryKind::Precert {
            issuer_key_hash,
            tbs,
            precertificate,
        } => {
            out.extend_from_slice(&[0, 1]);
            out.extend_from_slice(issuer_key_hash);
            prefixed(out, 3, tbs);
            prefixed(out, 2, &leaf.extensions);
            prefixed(out, 3, precertificate);
        }
    }
    prefixed(out, 2, &leaf.entry.chain_fingerprints.concat());
}

#[derive(Arbitrary, Debug)]
struct Made {
    timestamp: u64,
    index: u64,
    precert: Option<([u8; 32], Vec<u8>)>,
    certificate: Vec<u8>,
    fingerprints: Vec<[u8; 32]>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let Ok(leaves) = parse_tile_leaves(rest) else {
            return;
        };
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for leaf in &leaves {
            encode(leaf, &mut ours);
            match leaf.leaf_index() {
                Ok(index) => {
                    assert!(index < 1 << 40);
                    assert_eq!(leaf_index_extension(index).as_slice(), leaf.extensions);
                    leaf.entry.write_tile_leaf(leaf.timestamp, index, &mut theirs);
                    assert_eq!(
                        leaf.merkle_tree_leaf(),
                        leaf.entry.merkle_tree_leaf(leaf.timestamp, index)
                    );
                }
                Err(_) => encode(leaf, &mut theirs),
            }
        }
        assert_eq!(ours, rest, "TileLeaf re-encoding differs");
        assert_eq!(theirs, rest, "write_tile_leaf re-encoding differs");
        return;
    }
    let Ok(made) = Vec::<Made>::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let mut tile = Vec::new();
    let mut want = Vec::new();
    for m in made {
        let index = m.index & ((1 << 40) - 1);
        let kind = match m.precert {
            Some((issuer_key_hash, precertificate)) => EntryKind::Precert {
                issuer_key_hash,
                tbs: m.certificate,
                precertificate,
            },
            None => EntryKind::X509 {
                certificate: m.certificate,
            },
        };
        let entry = Entry {
            kind,
            chain_fingerprints: m.fingerprints,
        };
        entry.write_tile_leaf(m.timestamp, index, &mut tile);
        want.push((m.timestamp, index, entry));
    }
    let got = parse_tile_leaves(&tile).expect("own tile does not parse");
    assert_eq!(got.len(), want.len());
    for (leaf, (timestamp, index, entry)) in got.iter().zip(&want) {
        assert_eq!(leaf.timestamp, *timestamp);
        assert_eq!(&leaf.entry, entry);
        assert_eq!(parse_leaf_index_extension(&leaf.extensions), Ok(*index));
    }
});
