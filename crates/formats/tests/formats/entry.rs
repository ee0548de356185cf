use ct_formats::*;
use sha2::{Digest, Sha256};

use crate::{b64, unhex};

fn x509_entry() -> Entry {
    Entry {
        kind: EntryKind::X509 {
            certificate: vec![0xaa, 0xbb, 0xcc],
        },
        chain_fingerprints: vec![[0x11; 32], [0x22; 32]],
    }
}

fn precert_entry() -> Entry {
    Entry {
        kind: EntryKind::Precert {
            issuer_key_hash: [0x33; 32],
            tbs: vec![0xdd, 0xee],
            precertificate: vec![1, 2, 3, 4],
        },
        chain_fingerprints: vec![[0x44; 32]],
    }
}

const X509_TS: u64 = 0x0102_0304_0506_0708;
const PRECERT_TS: u64 = 1;

fn x509_leaf_hex() -> String {
    "0000 0102030405060708 0000 000003 aabbcc 0008 0000050000000007".into()
}

fn x509_tile_hex() -> String {
    format!(
        "0102030405060708 0000 000003 aabbcc 0008 0000050000000007 0040 {}{}",
        "11".repeat(32),
        "22".repeat(32)
    )
}

fn precert_leaf_hex() -> String {
    format!(
        "0000 0000000000000001 0001 {} 000002 ddee 0008 0000050000000100",
        "33".repeat(32)
    )
}

fn precert_tile_hex() -> String {
    format!(
        "0000000000000001 0001 {} 000002 ddee 0008 0000050000000100 000004 01020304 0020 {}",
        "33".repeat(32),
        "44".repeat(32)
    )
}

#[test]
fn leaf_index_extension_known_bytes() {
    assert_eq!(leaf_index_extension(0).to_vec(), b64("AAAFAAAAAAA="));
    assert_eq!(leaf_index_extension(7).to_vec(), b64("AAAFAAAAAAc="));
    assert_eq!(leaf_index_extension(256).to_vec(), b64("AAAFAAAAAQA="));
    assert_eq!(
        leaf_index_extension((1 << 40) - 1).to_vec(),
        unhex("000005ffffffffff")
    );
}

#[test]
fn leaf_index_extension_parses() {
    assert_eq!(parse_leaf_index_extension(&b64("AAAFAAAAAAc=")), Ok(7));
    assert_eq!(parse_leaf_index_extension(&b64("AAAFAAAAAQA=")), Ok(256));
    assert_eq!(
        parse_leaf_index_extension(&unhex("000005ffffffffff")),
        Ok((1 << 40) - 1)
    );
}

#[test]
fn leaf_index_extension_rejects_malformed() {
    let bad = [
        "",                     // empty
        "010005000000000a",     // wrong type
        "000004000000000a",     // length 4 with 5 bytes following
        "0000040000000a",       // length 4, consistent, but not 5
        "00000600000000000a",   // length 6
        "000005000000000a00",   // trailing byte
        "000005000000000a0000", // a second (truncated) extension
        "0000050000000a",       // truncated data
        "0000",                 // truncated length
    ];
    for hex in bad {
        assert!(
            parse_leaf_index_extension(&unhex(hex)).is_err(),
            "accepted {hex}"
        );
    }
}

#[test]
fn x509_layouts() {
    let e = x509_entry();
    assert_eq!(e.entry_type(), 0);
    assert_eq!(e.merkle_tree_leaf(X509_TS, 7), unhex(&x509_leaf_hex()));
    let mut tile = vec![0xff];
    e.write_tile_leaf(X509_TS, 7, &mut tile);
    assert_eq!(tile[0], 0xff, "write_tile_leaf must append");
    assert_eq!(tile[1..], unhex(&x509_tile_hex())[..]);
}

#[test]
fn precert_layouts() {
    let e = precert_entry();
    assert_eq!(e.entry_type(), 1);
    assert_eq!(
        e.merkle_tree_leaf(PRECERT_TS, 256),
        unhex(&precert_leaf_hex())
    );
    let mut tile = Vec::new();
    e.write_tile_leaf(PRECERT_TS, 256, &mut tile);
    assert_eq!(tile, unhex(&precert_tile_hex()));
}

#[test]
fn extra_data_layouts() {
    // X509ChainEntry.certificate_chain: u24 length, then each u24 cert.
    let issuers: [&[u8]; 2] = [&[0x11, 0x12], &[0x22]];
    assert_eq!(
        x509_entry().extra_data(&issuers).unwrap(),
        unhex("000009 000002 1112 000001 22")
    );
    assert_eq!(x509_entry().extra_data(&[]).unwrap(), unhex("000000"));
    // PrecertChainEntry: the precertificate, then the chain.
    assert_eq!(
        precert_entry().extra_data(&[&[0x44, 0x45]]).unwrap(),
        unhex("000004 01020304 000005 000002 4445")
    );
    let huge = vec![0u8; 1 << 24];
    assert_eq!(
        x509_entry().extra_data(&[&huge]),
        Err(FormatError::TooLong("an ASN.1Cert"))
    );
}

#[test]
fn dedup_keys() {
    let want: [u8; 32] = Sha256::digest(unhex("0000 aabbcc")).into();
    assert_eq!(x509_entry().dedup_key(), want);
    let want: [u8; 32] = Sha256::digest(unhex(&format!("0001 {} ddee", "33".repeat(32)))).into();
    assert_eq!(precert_entry().dedup_key(), want);
    // The chain and the full precertificate do not change the identity.
    let mut other = precert_entry();
    other.chain_fingerprints.clear();
    if let EntryKind::Precert { precertificate, .. } = &mut other.kind {
        precertificate.push(9);
    }
    assert_eq!(other.dedup_key(), precert_entry().dedup_key());
}

#[test]
fn tile_round_trip() {
    let mut tile = unhex(&x509_tile_hex());
    tile.extend(unhex(&precert_tile_hex()));
    let leaves = parse_tile_leaves(&tile).unwrap();
    assert_eq!(
        leaves,
        vec![
            TileLeaf {
                timestamp: X509_TS,
                entry: x509_entry(),
                extensions: leaf_index_extension(7).to_vec(),
            },
            TileLeaf {
                timestamp: PRECERT_TS,
                entry: precert_entry(),
                extensions: leaf_index_extension(256).to_vec(),
            },
        ]
    );
    assert_eq!(leaves[0].leaf_index(), Ok(7));
    assert_eq!(leaves[1].leaf_index(), Ok(256));
    assert_eq!(leaves[0].merkle_tree_leaf(), unhex(&x509_leaf_hex()));
    assert_eq!(leaves[1].merkle_tree_leaf(), unhex(&precert_leaf_hex()));
    assert_eq!(parse_tile_leaves(&[]), Ok(vec![]));
}

#[test]
fn tile_leaf_keeps_extensions_as_stored() {
    let mut tile = unhex(&x509_tile_hex());
    // Replace the leaf_index extension with a foreign 3-byte one.
    tile.splice(16..26, unhex("0003 010203"));
    let leaves = parse_tile_leaves(&tile).unwrap();
    assert_eq!(leaves[0].extensions, vec![1, 2, 3]);
    assert!(leaves[0].leaf_index().is_err());
    assert_eq!(
        leaves[0].merkle_tree_leaf(),
        unhex("0000 0102030405060708 0000 000003 aabbcc 0003 010203")
    );
}

#[test]
fn tile_parse_rejects_malformed() {
    let x509 = unhex(&x509_tile_hex());
    let precert = unhex(&precert_tile_hex());
    for tile in [&x509, &precert] {
        for cut in 1..tile.len() {
            assert!(
                parse_tile_leaves(&tile[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
        let mut trailing = tile.clone();
        trailing.push(0);
        assert!(parse_tile_leaves(&trailing).is_err(), "trailing byte");
    }
    let mut bad_type = x509.clone();
    bad_type[9] = 2;
    assert_eq!(
        parse_tile_leaves(&bad_type),
        Err(FormatError::UnknownEntryType(2))
    );
    // 33 fingerprint bytes: length says 0x0021 and one byte more follows.
    let mut bad_fp = x509[..x509.len() - 66].to_vec();
    bad_fp.extend(unhex(&format!("0021 {}", "11".repeat(33))));
    assert_eq!(
        parse_tile_leaves(&bad_fp),
        Err(FormatError::BadFingerprints(33))
    );
}

fn oracle_entry(e: &Entry, timestamp: u64, leaf_index: u64) -> static_ct_api::LogEntry {
    let mut o = static_ct_api::LogEntry {
        chain_fingerprints: e.chain_fingerprints.clone(),
        leaf_index,
        timestamp,
        ..Default::default()
    };
    match &e.kind {
        EntryKind::X509 { certificate } => o.certificate = certificate.clone(),
        EntryKind::Precert {
            issuer_key_hash,
            tbs,
            precertificate,
        } => {
            o.is_precert = true;
            o.issuer_key_hash = *issuer_key_hash;
            o.certificate = tbs.clone();
            o.pre_certificate = precertificate.clone();
        }
    }
    o
}

#[test]
fn oracle_agrees_on_encoding() {
    let entries = [
        (x509_entry(), X509_TS, 7),
        (precert_entry(), PRECERT_TS, 256),
        (
            Entry {
                kind: EntryKind::X509 {
                    certificate: vec![7; 70_000],
                },
                chain_fingerprints: vec![],
            },
            u64::MAX,
            (1 << 40) - 1,
        ),
    ];
    let mut tile = Vec::new();
    for (e, ts, idx) in &entries {
        let oracle = oracle_entry(e, *ts, *idx);
        let mut ours = Vec::new();
        e.write_tile_leaf(*ts, *idx, &mut ours);
        assert_eq!(ours, oracle.tile_leaf());
        assert_eq!(e.merkle_tree_leaf(*ts, *idx), oracle.merkle_tree_leaf());
        // The sequencer's path: the same bytes, appended, and the leaf
        // hash of the oracle's MerkleTreeLeaf.
        let mut appended = vec![0xff];
        let hash = e.write_tile_leaf_and_hash(*ts, *idx, &mut appended);
        assert_eq!(appended[1..], ours[..]);
        assert_eq!(hash, leaf_hash(&oracle.merkle_tree_leaf()));
        tile.extend(ours);
    }
    // The oracle parses our tile and re-encodes it byte for byte.
    let parsed: Vec<_> = static_ct_api::TileIterator::new(tile.clone(), entries.len())
        .collect::<Result<_, _>>()
        .unwrap();
    let reencoded: Vec<u8> = parsed.iter().flat_map(|p| p.tile_leaf()).collect();
    assert_eq!(reencoded, tile);
    for (p, (e, ts, idx)) in parsed.iter().zip(&entries) {
        assert_eq!(*p, oracle_entry(e, *ts, *idx));
    }
}
