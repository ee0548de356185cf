//! The sequencer alone on an in-memory store and lock: 4,096
//! entries (one 700-byte, partly random certificate each, 16 batches of 256, period 1 ms
//! so rounds run back to back) go through whole rounds
//! — leaf hashes, tiles, gzip of data tiles, staging bundle, signed
//! checkpoint, compare-and-swap, uploads, publish. Throughput is reported
//! in entries per second.
//!
//! Run: `cargo bench -p ct-sequencer --bench sequencer`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ct_formats::{Entry, EntryKind, LogKey};
use ct_sequencer::{Batch, LogConfig};
use ct_storage::{MemoryLock, MemoryStore};
use tokio::sync::oneshot;

const LOG_KEY: &str = include_str!("../../testdata/dev/log-key.pem");
const ROUND: usize = 4096;

/// A 700-byte certificate stand-in: 400 pseudo-random bytes (keys and
/// signatures do not compress) and 300 fixed ones (names, extensions).
fn entry(i: u64) -> Entry {
    let mut certificate = vec![0x5a; 700];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for byte in &mut certificate[..400] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    Entry {
        kind: EntryKind::X509 { certificate },
        chain_fingerprints: vec![[1; 32], [2; 32]],
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = LogConfig {
        name: "bench".into(),
        origin: "bench.invalid/log".into(),
        key: Arc::new(LogKey::from_pem(LOG_KEY).unwrap()),
        period: Duration::from_millis(1),
        pool_size: ROUND * 4,
        cosigners: Default::default(),
        claim_wait: Some(Duration::ZERO),
        create: true,
        cleanup: None,
        sign_ahead: false,
    };
    let (handle, _task) = rt
        .block_on(ct_sequencer::start(
            config,
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryLock::new()),
        ))
        .unwrap();
    let entries: Vec<Entry> = (0..ROUND as u64).map(entry).collect();
    let mut group = c.benchmark_group("sequencer");
    group.throughput(Throughput::Elements(ROUND as u64));
    group.sample_size(20);
    group.bench_function("4096_entries", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let batches: Vec<Vec<Entry>> = entries.chunks(256).map(<[Entry]>::to_vec).collect();
                let start = Instant::now();
                rt.block_on(async {
                    let mut answers = Vec::new();
                    for entries in batches {
                        let (reply, answer) = oneshot::channel();
                        handle.send(Batch { entries, reply }).await.ok().unwrap();
                        answers.push(answer);
                    }
                    for a in answers {
                        a.await.unwrap().unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(sequencer, benches);
criterion_main!(sequencer);
