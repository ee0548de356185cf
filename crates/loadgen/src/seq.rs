//! The sequencer alone: entries (built from real chains) handed straight
//! to `ct_sequencer` over an in-memory store and lock, timed from the first
//! batch sent to the last batch answered. Every round does the whole job:
//! leaf hashes, tiles (data tiles gzip-compressed), staging bundle, signed
//! checkpoint, compare-and-swap, uploads, publish.
//!
//! The rate is also reported per segment of the run (`--segments`), so a
//! run of 10 M entries shows whether the cost per entry stays flat as the
//! tree grows. The in-memory store drops tile bytes once written (the
//! sequencer never reads a tile back while it runs) so that such a run
//! fits in memory; batches are cloned from the samples as they are sent,
//! on a thread of its own whose CPU time the rate leaves out: making
//! entries is the harness's work (a server's frontend), not the sequencer's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use ct_formats::{Entry, LogKey};
use ct_sequencer::{Batch, LogConfig, Sequenced, SequencerHandle, SequencingError};
use ct_storage::{MemoryLock, MemoryStore, ObjectStore, PutIf, StorageError, WriteCondition};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::procstat;

#[derive(clap::Args)]
pub struct Args {
    /// The chains file written by `generate` (entries are built from it, cycled).
    #[arg(long)]
    chains: PathBuf,
    /// The roots PEM of those chains.
    #[arg(long)]
    roots: PathBuf,
    /// The log's private key (PEM), for the checkpoints.
    #[arg(long, default_value = "testdata/dev/log-key.pem")]
    log_key: PathBuf,
    /// Entries to integrate.
    #[arg(long, default_value_t = 500_000)]
    entries: usize,
    /// Round period in milliseconds (short: rounds run back to back).
    #[arg(long, default_value_t = 20)]
    period_ms: u64,
    /// Entries per batch (as a batcher sends them).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Most entries in one round.
    #[arg(long, default_value_t = 100_000)]
    pool_size: usize,
    /// Report the rate over this many equal parts of the run.
    #[arg(long, default_value_t = 10)]
    segments: usize,
    /// Also write the result as JSON here.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

/// The mean size of the entries' TileLeaf encodings, in bytes.
fn mean_tile_leaf(entries: &[Entry]) -> usize {
    entries
        .iter()
        .map(|e| {
            let mut out = Vec::new();
            e.write_tile_leaf(0, 0, &mut out);
            out.len()
        })
        .sum::<usize>()
        / entries.len()
}

/// Entries as the frontend builds them, from validating `chains`.
pub fn entries_from_chains(chains: &Path, roots: &Path, max: usize) -> anyhow::Result<Vec<Entry>> {
    use sha2::{Digest, Sha256};
    let roots = ct_validate::Roots::from_pem(&std::fs::read(roots)?)?;
    let policy = ct_validate::Policy {
        not_after_start: 0,
        not_after_limit: u64::MAX,
        max_chain_length: 16,
    };
    crate::chains::read(chains)?
        .iter()
        .take(max)
        .map(|c| {
            let endpoint = if c.precert {
                ct_validate::Endpoint::AddPreChain
            } else {
                ct_validate::Endpoint::AddChain
            };
            let v = ct_validate::validate_chain(&c.ders()?, &roots, &policy, endpoint)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let kind = ct_formats::EntryKind::from(v.leaf);
            Ok(Entry {
                kind,
                chain_fingerprints: v.issuers.iter().map(|d| Sha256::digest(d).into()).collect(),
            })
        })
        .collect()
}

/// An in-memory store that keeps everything but the tiles' bytes.
struct DropTiles(MemoryStore);

#[async_trait]
impl ObjectStore for DropTiles {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        let kept = if key.starts_with("tile/") {
            Bytes::new()
        } else {
            data
        };
        self.0.put(key, kept).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        self.0.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.0.delete(key).await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, String)>, StorageError> {
        self.0.get_versioned(key).await
    }

    async fn put_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition<'_>,
    ) -> Result<PutIf, StorageError> {
        self.0.put_if(key, data, condition).await
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        self.0.list(prefix, limit).await
    }
}

/// Progress through the run: (entries answered, seconds, CPU seconds of
/// the process less the sender's).
type Mark = (usize, f64, Option<f64>);

/// A batch's answer from the sequencer.
type BatchReply = Result<Sequenced, SequencingError>;

/// The sender's thread CPU time so far, in nanoseconds, as it last read it.
type SenderCpu = Arc<AtomicU64>;

/// Builds the batches (cloning the samples) and sends them, on a thread of
/// its own that keeps its CPU time in `cpu`: making entries is the
/// harness's work, which the frontend does in a server, not the
/// sequencer's, so the rate leaves it out.
fn spawn_sender(
    handle: SequencerHandle,
    samples: Arc<Vec<Entry>>,
    total: usize,
    batch: usize,
    tx: mpsc::Sender<(usize, oneshot::Receiver<BatchReply>)>,
    cpu: SenderCpu,
) -> std::thread::JoinHandle<()> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            for first in (0..total).step_by(batch) {
                let entries = (first..total.min(first + batch))
                    .map(|i| samples[i % samples.len()].clone())
                    .collect::<Vec<_>>();
                let (reply, answer) = oneshot::channel();
                let n = entries.len();
                cpu.store(procstat::thread_cpu_nanos(), Ordering::Release);
                if handle.send(Batch { entries, reply }).await.is_err()
                    || tx.send((n, answer)).await.is_err()
                {
                    break;
                }
            }
            cpu.store(procstat::thread_cpu_nanos(), Ordering::Release);
        })
    })
}

/// The process's CPU seconds so far, less the sender's.
fn sequencer_cpu(sender: &AtomicU64) -> Option<f64> {
    let sender = sender.load(Ordering::Acquire) as f64 / 1e9;
    procstat::cpu_seconds(std::process::id()).map(|all| all - sender)
}

/// Sends `entries` entries (the samples, cycled) in batches and waits for
/// every answer; returns a mark at the end of each segment, and the
/// sender's CPU seconds.
async fn drive(
    handle: SequencerHandle,
    samples: Arc<Vec<Entry>>,
    args: &Args,
) -> anyhow::Result<(Vec<Mark>, f64)> {
    let total = args.entries;
    let (tx, mut rx) = mpsc::channel(1024);
    let sender_cpu = SenderCpu::default();
    let start = Instant::now();
    let mut marks = vec![(0, 0.0, sequencer_cpu(&sender_cpu))];
    let sender = spawn_sender(handle, samples, total, args.batch, tx, sender_cpu.clone());
    let segment = total.div_ceil(args.segments.max(1));
    let mut done = 0;
    while let Some((n, answer)) = rx.recv().await {
        answer.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        done += n;
        if done % segment < n || done == total {
            let cpu = sequencer_cpu(&sender_cpu);
            marks.push((done, start.elapsed().as_secs_f64(), cpu));
        }
    }
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("the sender thread panicked"))?;
    Ok((marks, sender_cpu.load(Ordering::Acquire) as f64 / 1e9))
}

/// Entries per CPU-second between two marks; `None` when too little CPU
/// time passed to tell (a round answers many batches at once, so a
/// segment shorter than a round or two has no time of its own).
fn per_cpu_second(a: &Mark, b: &Mark) -> Option<f64> {
    let cpu = b.2? - a.2?;
    (cpu >= 0.2).then(|| (b.0 - a.0) as f64 / cpu)
}

/// Starts a fresh log's sequencer on the in-memory store, drives the run
/// through it and waits for it to stop.
async fn measure(
    args: &Args,
    key: Arc<LogKey>,
    samples: Vec<Entry>,
) -> anyhow::Result<(Vec<Mark>, f64)> {
    let config = LogConfig {
        name: "seqbench".into(),
        origin: "127.0.0.1/seqbench".into(),
        key,
        period: Duration::from_millis(args.period_ms),
        pool_size: args.pool_size,
        cosigners: Default::default(),
        claim_wait: Some(Duration::ZERO),
        create: true,
        cleanup: None,
        sign_ahead: false,
    };
    let store = Arc::new(DropTiles(MemoryStore::new()));
    let (handle, task) = ct_sequencer::start(config, store, Arc::new(MemoryLock::new())).await?;
    let driven = drive(handle, Arc::new(samples), args).await?;
    task.await?;
    Ok(driven)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let key = Arc::new(LogKey::from_pem(&std::fs::read_to_string(&args.log_key)?)?);
    let samples = entries_from_chains(&args.chains, &args.roots, 2000)?;
    let mean_leaf = mean_tile_leaf(&samples);
    let (marks, sender_cpu) = measure(&args, key, samples).await?;
    let (first, last) = (&marks[0], &marks[marks.len() - 1]);
    let segments: Vec<_> = marks
        .windows(2)
        .map(|w| json!({"entries_upto": w[1].0, "entries_per_cpu_s": per_cpu_second(&w[0], &w[1])}))
        .collect();
    let rate = args.entries as f64 / last.1;
    let cpu = per_cpu_second(first, last);
    let result = json!({
        "entries": args.entries,
        "mean_tile_leaf_bytes": mean_leaf,
        "period_ms": args.period_ms,
        "seconds": last.1,
        "entries_per_s": rate,
        "cpu_s": last.2.zip(first.2).map(|(b, a)| b - a),
        "sender_cpu_s": sender_cpu,
        "entries_per_cpu_s": cpu,
        "segments": segments,
    });
    println!(
        "sequencer alone (in-memory store): {} entries (~{mean_leaf} B TileLeaf) in {:.2} s = {rate:.0} entries/s wall, {:.0} entries per CPU-second (the sender's {sender_cpu:.2} s making entries left out)",
        args.entries,
        last.1,
        cpu.unwrap_or(0.0)
    );
    for w in marks.windows(2) {
        let rate = per_cpu_second(&w[0], &w[1]).map_or("too short to time".to_string(), |r| {
            format!("{r:.0} per CPU-second")
        });
        println!("  entries {:>10} to {:>10}: {rate}", w[0].0, w[1].0);
    }
    println!("RESULT-JSON {result}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_formats::EntryKind;

    /// A short run: every entry answered, a mark per segment, and the
    /// sender's CPU time (cloning ~100 MB of entries) left out of the
    /// sequencer's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_run_leaves_the_senders_cpu_out() {
        let pem = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/dev/log-key.pem"
        ));
        let key = Arc::new(LogKey::from_pem(pem).unwrap());
        let samples = (0..64u8)
            .map(|i| Entry {
                kind: EntryKind::X509 {
                    certificate: vec![i; 4096],
                },
                chain_fingerprints: vec![[i; 32]],
            })
            .collect();
        let args = Args {
            chains: PathBuf::new(),
            roots: PathBuf::new(),
            log_key: PathBuf::new(),
            entries: 25_000,
            period_ms: 5,
            batch: 256,
            pool_size: 100_000,
            segments: 4,
            json_out: None,
        };
        let (marks, sender_cpu) = measure(&args, key, samples).await.unwrap();
        assert_eq!(marks.len(), 5, "{marks:?}");
        assert_eq!(marks.last().unwrap().0, 25_000);
        assert!(sender_cpu > 0.0);
        // The process's CPU time only grows; the sender's last reading may
        // come a moment after the last mark's.
        let at_last = marks.last().unwrap().2.unwrap();
        let all = procstat::cpu_seconds(std::process::id()).unwrap();
        assert!(
            at_last + sender_cpu <= all + 0.01,
            "the sequencer's {at_last} s and the sender's {sender_cpu} s, of {all} s in all"
        );
    }
}
