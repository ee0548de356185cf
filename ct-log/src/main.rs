//! `ct-log`: a Certificate Transparency log server for the static CT API.
//!
//! This file only wires things together: parse the command line and run
//! the chosen subcommand, each of which lives in its own module.

mod config;
mod http;
mod log;
mod serve;

use clap::{Parser, Subcommand};

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
    Serve(serve::Args),
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
        Command::Serve(args) => runtime.block_on(serve::run(args)),
    }
}

