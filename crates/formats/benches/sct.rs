//! SCT signing (deterministic ECDSA P-256, RFC 6979) over a typical x509
//! entry, the signers it was chosen from, and the entry encodings the
//! frontend and sequencer compute.
//!
//! `sign/*` signs the same SHA-256 input (the MerkleTreeLeaf of a 700-byte
//! certificate) four ways, in one run:
//! - `sct` is `Sct::sign`, what the server calls: the RFC 6979 nonce from
//!   RustCrypto's `rfc6979`, the signature from AWS-LC (`fast_sign.rs`);
//! - `p256_0_14_rfc6979`: RustCrypto `p256` 0.14 with precomputed basepoint
//!   tables, the signer before (byte-identical output);
//! - `p256_0_13_rfc6979`: `p256` 0.13, the signer before that;
//! - `aws_lc_rs_random_nonce`: aws-lc-rs's own ECDSA, the OpenSSL-class
//!   floor, which cannot serve SCTs (a fresh random nonce each time).
//!
//! Run: `cargo bench -p ct-formats --bench sct`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use criterion::{criterion_group, criterion_main, Criterion};
use ct_formats::{leaf_hash, Entry, EntryKind, LogKey, Sct};

const LOG_KEY: &str = include_str!("../../../testdata/dev/log-key.pem");

fn benches(c: &mut Criterion) {
    let key = LogKey::from_pem(LOG_KEY).unwrap();
    let entry = Entry {
        kind: EntryKind::X509 {
            certificate: vec![0x5a; 700],
        },
        chain_fingerprints: vec![[1; 32], [2; 32]],
    };
    // Any key signs as fast as any other.
    let p256_013 = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
    let p256_014 = p256_014::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &SystemRandom::new(),
    )
    .unwrap();
    let aws_lc = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let rng = SystemRandom::new();

    let mut index = 0u64;
    let mut next = || {
        index += 1;
        (index, entry.merkle_tree_leaf(1_795_000_000_000, index))
    };
    let mut group = c.benchmark_group("sign");
    group.bench_function("sct", |b| {
        b.iter(|| Sct::sign(&key, &entry, 1_795_000_000_000, next().0))
    });
    group.bench_function("p256_0_14_rfc6979", |b| {
        use p256_014::ecdsa::signature::Signer;
        b.iter(|| -> p256_014::ecdsa::Signature { p256_014.sign(&next().1) })
    });
    group.bench_function("p256_0_13_rfc6979", |b| {
        use p256::ecdsa::signature::Signer;
        b.iter(|| -> p256::ecdsa::Signature { p256_013.sign(&next().1) })
    });
    group.bench_function("aws_lc_rs_random_nonce", |b| {
        b.iter(|| aws_lc.sign(&rng, &next().1).unwrap())
    });
    group.finish();
    c.bench_function("dedup_key", |b| b.iter(|| entry.dedup_key()));
    c.bench_function("leaf_hash", |b| {
        b.iter(|| leaf_hash(&entry.merkle_tree_leaf(1_795_000_000_000, 12345)))
    });
}

criterion_group!(sct, benches);
criterion_main!(sct);
