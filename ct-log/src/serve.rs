//! `ct-log serve`: load the config, start every log, serve HTTP until
//! SIGTERM or Ctrl-C, then let each log finish its last round.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use ct_storage::{LockBackend, SqliteLock};

use crate::config::Config;
use crate::http::{self, Mounted};
use crate::log;

/// Run every log in the config file.
#[derive(clap::Args)]
pub struct Args {
    /// The TOML config file.
    #[arg(long)]
    config: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let lock: Arc<dyn LockBackend> = Arc::new(
        SqliteLock::open(&config.lock_db)
            .with_context(|| format!("opening {}", config.lock_db.display()))?,
    );
    let mut mounted = Vec::new();
    let mut tasks = Vec::new();
    for log_config in &config.logs {
        let (log, log_tasks) = log::Log::start(log_config, lock.clone()).await?;
        mounted.push(Mounted::new(
            log,
            &log_config.submission_prefix,
            &log_config.monitoring_prefix,
        )?);
        tasks.extend(log_tasks);
    }
    let app = http::router(&mounted);
    drop(mounted);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    // Tests and scripts wait for this exact line on stdout.
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // The router, and with it every log's batchers, is gone: each sequencer
    // runs a last round for what is queued and the dedup writers drain.
    for task in tasks {
        task.await?;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests and the current round");
}
