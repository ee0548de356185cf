//! `ct-log check-config`: everything `serve` would check at start, and a
//! few policy checks it tolerates, without starting anything. One line per
//! problem; exits non-zero if there is any.

use std::path::PathBuf;

use ct_formats::{open_checkpoint, LogKey};
use ct_storage::LockBackend;

use crate::config::{Config, LogConfig};
use crate::keys::{load_cosigners, load_key};
use crate::roots::{download, load_roots};
use crate::wiring::{open_lock, open_store, shared_dedup};

/// Check a config file without starting the logs.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
}

/// CT programs expect temporal shards of at most a year.
const MAX_WINDOW_SECONDS: u64 = 366 * 24 * 3600;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = match Config::parse(&args.config) {
        Ok(config) => config,
        Err(e) => {
            println!("{e:#}");
            anyhow::bail!("the config could not be read");
        }
    };
    let mut problems = config.problems();
    if let Some(acme) = &config.acme {
        problems.extend(crate::acme::file_problems(acme));
    }
    // A missing SQLite lock database just means no log exists yet: do not
    // create one.
    let sqlite_missing = config.lock_db.as_ref().is_some_and(|db| !db.exists());
    let lock = if sqlite_missing || !problems.is_empty() {
        None
    } else {
        open_lock(&config)
            .await
            .map_err(|e| problems.push(format!("lock: {e:#}")))
            .ok()
    };
    if let (Some(url), true) = (shared_dedup(&config), problems.is_empty()) {
        if let Err(e) = ct_dedup::PostgresDedup::connect(&url, "").await {
            problems.push(format!("dedup: {e}"));
        }
    }
    for log in &config.logs {
        let found = check_log(log, lock.as_deref()).await;
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("log {:?}: {p}", log.name)),
        );
    }
    for problem in &problems {
        println!("{problem}");
    }
    anyhow::ensure!(
        problems.is_empty(),
        "{} problem(s) in {}",
        problems.len(),
        args.config.display()
    );
    println!(
        "ok: {} log(s) in {}",
        config.logs.len(),
        args.config.display()
    );
    Ok(())
}

async fn check_log(log: &LogConfig, lock: Option<&dyn LockBackend>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = load_roots(log) {
        problems.push(format!("{e:#}"));
    }
    if let Some(url) = &log.roots_url {
        if let Err(e) = download(url).await {
            problems.push(format!("roots_url: {e}"));
        }
    }
    if let Ok((start, limit)) = log.not_after_window() {
        if limit.saturating_sub(start) > MAX_WINDOW_SECONDS {
            problems.push("the not_after window is longer than one year".into());
        }
    }
    if let Err(e) = load_cosigners(log) {
        problems.push(format!("{e:#}"));
    }
    let key = match load_key(log) {
        Ok(key) => key,
        Err(e) => {
            problems.push(format!("{e:#}"));
            return problems;
        }
    };
    match open_store(log).await {
        Ok(store) => match (store.get("checkpoint").await, lock) {
            (Err(e), _) => problems.push(format!("storage: {e}")),
            (Ok(stored), Some(lock)) => {
                problems.extend(check_existing(log, &key, stored.as_deref(), lock).await)
            }
            (Ok(_), None) => {}
        },
        Err(e) => problems.push(format!("storage: {e:#}")),
    }
    problems
}

/// For a log that already exists: its checkpoints must be signed by this
/// key for this origin, and storage must not hold a log the lock lacks.
async fn check_existing(
    log: &LogConfig,
    key: &LogKey,
    stored: Option<&[u8]>,
    lock: &dyn LockBackend,
) -> Vec<String> {
    let mut problems = Vec::new();
    let locked = match lock.fetch(&hex::encode(key.log_id())).await {
        Ok(locked) => locked,
        Err(e) => return vec![format!("lock: {e}")],
    };
    for (what, note) in [("storage", stored), ("lock", locked.as_deref())] {
        if let Some(note) = note {
            if let Err(e) = open_checkpoint(note, &log.origin(), key.verifying_key()) {
                problems.push(format!(
                    "the {what} checkpoint does not verify with this key and origin: {e}"
                ));
            }
        }
    }
    if stored.is_some() && locked.is_none() {
        problems.push("storage holds a checkpoint but the lock database has none for this key; serve would refuse to start".into());
    }
    problems
}
