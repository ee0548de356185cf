//! SCT signing (deterministic ECDSA P-256, RFC 6979) over a typical x509
//! entry, and the entry encodings the frontend and sequencer compute.
//!
//! Run: `cargo bench -p ct-formats --bench sct`.

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
    let mut index = 0u64;
    c.bench_function("sct_sign", |b| {
        b.iter(|| {
            index += 1;
            Sct::sign(&key, &entry, 1_795_000_000_000, index)
        })
    });
    c.bench_function("dedup_key", |b| b.iter(|| entry.dedup_key()));
    c.bench_function("leaf_hash", |b| {
        b.iter(|| leaf_hash(&entry.merkle_tree_leaf(1_795_000_000_000, 12345)))
    });
}

criterion_group!(sct, benches);
criterion_main!(sct);
