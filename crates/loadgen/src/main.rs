//! `ct-loadgen`: a load generator and benchmark driver for ct-log.
//!
//! - `generate`: pre-generates N distinct valid chains (ECDSA P-256 and
//!   RSA-2048 intermediates, certificates and precertificates) from a
//!   throw-away PKI into a file, plus the roots PEM for the log's config.
//! - `run`: replays them against a log at a fixed concurrency or a target
//!   rate for a fixed duration and prints accepted/s, errors by status,
//!   latency percentiles and, from /proc, the server's CPU and peak RSS.
//! - `floor`: the crypto floor per entry on this machine (one chain
//!   signature verification plus one SCT signature), single-threaded.
//! - `sequencer`: the sequencer alone, integrating entries into tiles on an
//!   in-memory store.
//! - `prefill`: grows a stopped log's tree through the real batchers and
//!   sequencer (no HTTP, no validation), to measure at scale.
//!
//! Everything is bounded in time and count and talks to 127.0.0.1 only.
//! Nothing here is for production; the PKI it makes is public.

mod chains;
mod floor;
mod generate;
mod prefill;
mod procstat;
mod run;
mod seq;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load generator and benchmark driver for ct-log (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pre-generate distinct valid chains and the roots PEM.
    Generate(generate::Args),
    /// Replay chains against a running log and print the figures.
    Run(run::Args),
    /// Measure the crypto floor per entry (verify + SCT sign), one thread.
    Floor(floor::Args),
    /// Measure the sequencer alone on an in-memory store.
    Sequencer(seq::Args),
    /// Grow a stopped log through its batchers and sequencer.
    Prefill(prefill::Args),
}

/// The server's allocator (see ct-log's main.rs), tuned as the server
/// tunes it, so that the sequencer and prefill are measured as they run
/// in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    ct_alloc::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Floor(args) => floor::run(args),
        Command::Run(args) => runtime(args.threads)?.block_on(run::run(args)),
        Command::Sequencer(args) => runtime(0)?.block_on(seq::run(args)),
        Command::Prefill(args) => runtime(0)?.block_on(prefill::run(args)),
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    Ok(builder.enable_all().build()?)
}
