//! `ct-log create`: creates a new log, explicitly. `serve` never creates a
//! log on its own except on its inception day (or with `--create-missing`,
//! for development): an empty volume or a wrong bucket must never look
//! like a new log. Creation refuses when the lock knows the log, or
//! storage holds a checkpoint, a tile, an issuer or a staged round.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::config::{Config, LogConfig, LogsArgs};
use crate::keys::{load_cosigners, load_key};
use crate::wiring::{open_lock, open_store};

/// Create the logs of a config file (or one of them).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    logs: LogsArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(&args.logs.config)?;
    let logs = args.logs.select(&config)?;
    let lock = open_lock(&config).await?;
    for log in logs {
        create(log, lock.clone())
            .await
            .with_context(|| format!("log {:?}", log.name))?;
    }
    Ok(())
}

async fn create(config: &LogConfig, lock: Arc<dyn ct_storage::LockBackend>) -> anyhow::Result<()> {
    let key = Arc::new(load_key(config)?);
    let store = open_store(config).await?;
    let sequencer = ct_sequencer::LogConfig {
        name: config.name.clone(),
        origin: config.origin(),
        key: key.clone(),
        cosigners: load_cosigners(config)?.into(),
        period: Duration::from_millis(config.period_ms),
        pool_size: config.pool_size,
        claim_wait: Some(Duration::ZERO),
        create: true,
        cleanup: None,
        sign_ahead: false,
    };
    let checkpoint = ct_sequencer::create(&sequencer, store, lock).await?;
    println!(
        "created log {:?}: origin {}, log ID {}, first checkpoint at {} ms",
        config.name,
        config.origin(),
        B64.encode(key.log_id()),
        checkpoint.timestamp
    );
    Ok(())
}
