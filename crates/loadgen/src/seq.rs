//! The sequencer alone: entries (built from real chains) handed straight
//! to `ct_sequencer` over an in-memory store and lock, timed from the first
//! batch sent to the last batch answered. Every round does the whole job:
//! leaf hashes, tiles (data tiles gzip-compressed), staging bundle, signed
//! checkpoint, compare-and-swap, uploads, publish.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ct_formats::{Entry, LogKey};
use ct_sequencer::{Batch, LogConfig, SequencerHandle};
use ct_storage::{MemoryLock, MemoryStore};
use serde_json::json;
use tokio::sync::oneshot;

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

/// Sends every batch to the sequencer as a batcher does, without waiting
/// for the answers in between, then waits for every answer.
async fn sequence_all(handle: &SequencerHandle, batches: Vec<Vec<Entry>>) -> anyhow::Result<()> {
    let mut replies = Vec::with_capacity(batches.len());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = handle.clone();
    let sender = tokio::spawn(async move {
        for entries in batches {
            let (reply, answer) = oneshot::channel();
            if handle.send(Batch { entries, reply }).await.is_err() {
                break;
            }
            let _ = tx.send(answer);
        }
    });
    while let Some(answer) = rx.recv().await {
        replies.push(answer);
    }
    sender.await?;
    for answer in replies {
        answer.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Entries as the frontend builds them, from validating `chains`.
pub fn entries_from_chains(
    chains: &PathBuf,
    roots: &PathBuf,
    max: usize,
) -> anyhow::Result<Vec<Entry>> {
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

pub async fn run(args: Args) -> anyhow::Result<()> {
    let key = Arc::new(LogKey::from_pem(&std::fs::read_to_string(&args.log_key)?)?);
    let samples = entries_from_chains(&args.chains, &args.roots, 2000)?;
    let mean_leaf = mean_tile_leaf(&samples);
    let batches: Vec<Vec<Entry>> = (0..args.entries)
        .map(|i| samples[i % samples.len()].clone())
        .collect::<Vec<_>>()
        .chunks(args.batch)
        .map(<[Entry]>::to_vec)
        .collect();
    let config = LogConfig {
        name: "seqbench".into(),
        origin: "127.0.0.1/seqbench".into(),
        key,
        period: Duration::from_millis(args.period_ms),
        pool_size: args.pool_size,
        claim_wait: Some(Duration::ZERO),
        create: true,
    };
    let store = Arc::new(MemoryStore::new());
    let (handle, task) = ct_sequencer::start(config, store, Arc::new(MemoryLock::new())).await?;
    let cpu0 = procstat::cpu_seconds(std::process::id());
    let start = Instant::now();
    sequence_all(&handle, batches).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = procstat::cpu_seconds(std::process::id())
        .zip(cpu0)
        .map(|(b, a)| b - a);
    drop(handle);
    task.await?;
    let rate = args.entries as f64 / elapsed;
    let result = json!({
        "entries": args.entries,
        "mean_tile_leaf_bytes": mean_leaf,
        "period_ms": args.period_ms,
        "seconds": elapsed,
        "entries_per_s": rate,
        "cpu_s": cpu,
        "entries_per_cpu_s": cpu.map(|c| args.entries as f64 / c),
    });
    println!(
        "sequencer alone (in-memory store): {} entries (~{mean_leaf} B TileLeaf) in {elapsed:.2} s = {rate:.0} entries/s wall, {:.0} entries per CPU-second",
        args.entries,
        cpu.map_or(0.0, |c| args.entries as f64 / c)
    );
    println!("RESULT-JSON {result}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(())
}
