//! `ct-log`: a Certificate Transparency log server for the static CT API.
//!
//! This file only wires things together: parse the command line, load the
//! config, start each log, serve HTTP until asked to stop.

mod config;
mod http;
mod log;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ct_storage::{LockBackend, SqliteLock};

use crate::config::Config;
use crate::http::Mounted;

#[derive(Parser)]
#[command(
    version,
    about = "A Certificate Transparency log server (static CT API)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every log in the config file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve { config } => runtime.block_on(serve(&config)),
    }
}

async fn serve(config_path: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
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
