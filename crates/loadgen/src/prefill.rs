//! Grows a stopped log's tree through its real batchers (dedup included)
//! and sequencer, without HTTP or validation: the scale test's pre-fill.
//! Entries are synthetic x509 entries of random bytes (never valid
//! certificates), so the tree, the tiles and the dedup database grow as
//! under real load, at the sequencer's speed instead of the frontend's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ct_batcher::{BatcherConfig, Batchers, Priority};
use ct_dedup::{DedupEngine, PersistentDedup};
use ct_formats::{Entry, EntryKind, LogKey};
use ct_sequencer::LogConfig;
use ct_storage::{FsStore, SqliteLock};
use serde::Deserialize;

#[derive(clap::Args)]
pub struct Args {
    /// The log's storage folder (storage = { type = "fs", path = ... }).
    #[arg(long)]
    fs: PathBuf,
    /// The lock database (lock_db).
    #[arg(long)]
    lock_db: PathBuf,
    /// The log's dedup store (dedup_db).
    #[arg(long)]
    dedup_db: PathBuf,
    /// What keeps the dedup store (dedup_engine).
    #[arg(long, value_parser = engine, default_value = "lsm")]
    dedup_engine: DedupEngine,
    /// The log's private key.
    #[arg(long)]
    log_key: PathBuf,
    /// The checkpoint origin (submission prefix without scheme), e.g. 127.0.0.1:8090/bench.
    #[arg(long)]
    origin: String,
    /// The log's name (for metrics labels only).
    #[arg(long, default_value = "bench")]
    name: String,
    /// Entries to add.
    #[arg(long)]
    entries: u64,
    /// Certificate bytes per synthetic entry.
    #[arg(long, default_value_t = 400)]
    entry_bytes: usize,
    /// Round period in milliseconds.
    #[arg(long, default_value_t = 250)]
    period_ms: u64,
    /// Entries submitted and awaited together.
    #[arg(long, default_value_t = 50_000)]
    wave: u64,
}

/// A `dedup_engine` as the config spells it ("lsm", "sqlite").
fn engine(name: &str) -> Result<DedupEngine, String> {
    use serde::de::IntoDeserializer;
    DedupEngine::deserialize(name.into_deserializer())
        .map_err(|e: serde::de::value::Error| e.to_string())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let key = Arc::new(LogKey::from_pem(&std::fs::read_to_string(&args.log_key)?)?);
    let store = Arc::new(FsStore::open(&args.fs)?);
    let lock = Arc::new(SqliteLock::open(&args.lock_db)?);
    let pool_size = (args.wave as usize) * 2;
    let config = LogConfig {
        name: args.name.clone(),
        origin: args.origin.clone(),
        key,
        period: Duration::from_millis(args.period_ms),
        pool_size,
        cosigners: Default::default(),
        claim_wait: Some(Duration::ZERO),
        create: true,
        cleanup: None,
        sign_ahead: false,
    };
    let log_id = hex::encode(config.key.log_id());
    let (sequencer, task) = ct_sequencer::start(config, store, lock).await?;
    let start_size = sequencer.published().borrow().checkpoint.size;
    let dedup = PersistentDedup::open_local(args.dedup_engine, &args.dedup_db, &log_id)?;
    let (writer, writer_task) = ct_dedup::spawn_writer(dedup.clone());
    let batchers = Batchers::spawn(
        BatcherConfig {
            log: args.name.clone(),
            batchers: 2,
            max_batch: 256,
            max_wait: Duration::from_millis(10),
            pool_size,
            memory_entries: 10_000,
        },
        sequencer,
        dedup,
        writer,
    );
    let started = Instant::now();
    let mut rng = fastrand::Rng::new();
    let mut done = 0u64;
    let mut report = Instant::now();
    while done < args.entries {
        let n = args.wave.min(args.entries - done);
        let mut waiting = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let mut certificate = vec![0u8; args.entry_bytes];
            rng.fill(&mut certificate);
            let entry = Entry {
                kind: EntryKind::X509 { certificate },
                chain_fingerprints: vec![[1; 32], [2; 32]],
            };
            waiting.push(
                batchers
                    .submit(entry, Priority::Normal)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
        }
        for w in waiting {
            w.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        done += n;
        if report.elapsed() > Duration::from_secs(10) || done == args.entries {
            report = Instant::now();
            let s = started.elapsed().as_secs_f64();
            println!(
                "prefill: {done}/{} entries in {s:.0} s ({:.0}/s), tree size {}",
                args.entries,
                done as f64 / s,
                start_size + done
            );
        }
    }
    drop(batchers);
    writer_task.await?;
    task.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--dedup-engine` takes the config's spellings, and names a typo.
    #[test]
    fn engines_are_spelled_as_in_the_config() {
        assert_eq!(engine("lsm"), Ok(DedupEngine::Lsm));
        assert_eq!(engine("sqlite"), Ok(DedupEngine::Sqlite));
        let err = engine("rocks").unwrap_err();
        assert!(err.contains("unknown variant `rocks`"), "{err}");
    }
}
