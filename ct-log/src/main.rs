//! `ct-log`: a Certificate Transparency log server for the static CT API.
//!
//! This file only wires things together: parse the command line and run
//! the chosen subcommand, each of which lives in its own module of the
//! library (`lib.rs`).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ct_log::{audit, check_config, create, keygen, reindex, serve, submit};

/// mimalloc instead of glibc's malloc: every request allocates its body,
/// chain, entry and response, and glibc's malloc and free were about a
/// sixth of the server's CPU per accepted entry (BENCHMARKS.md, Profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "A Certificate Transparency log server (static CT API)"
)]
struct Cli {
    /// Log line format on stderr: `text` (human-readable) or `json`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run every log in the config file.
    Serve(serve::Args),
    /// Create a new log (or every log of the file) explicitly.
    Create(create::Args),
    /// Audit a static-CT log (any, not only this one) end to end.
    Audit(audit::Args),
    /// Submit a chain, verify the SCT and prove its inclusion.
    Submit(submit::Args),
    /// Write a new log key and print its log ID and public key.
    Keygen(keygen::Args),
    /// Check a config file (keys, roots, window, prefixes, storage) without serving.
    CheckConfig(check_config::Args),
    /// Rebuild the leaf-hash index (and dedup records) from the data tiles.
    Reindex(reindex::Args),
}

fn main() -> ExitCode {
    ct_alloc::tune();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole cause chain on one line, for operators and scripts.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`, but only
/// warnings from the LSM dedup store's engine, whose info lines narrate
/// every open, flush and compaction).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,fjall=warn,lsm_tree=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Serve(_) = cli.command {
        ignore_hangups();
    }
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(args) => {
            let front = front_runtime()?;
            let served = runtime.block_on(serve::run(args, front.handle().clone()));
            // Its listeners have finished their requests by now.
            front.shutdown_timeout(Duration::from_secs(1));
            served
        }
        Command::Create(args) => runtime.block_on(create::run(args)),
        Command::Audit(args) => runtime.block_on(audit::run(args)),
        Command::Submit(args) => runtime.block_on(submit::run(args)),
        Command::Keygen(args) => keygen::run(args),
        Command::CheckConfig(args) => runtime.block_on(check_config::run(args)),
        Command::Reindex(args) => runtime.block_on(reindex::run(args)),
    }
}

/// The runtime that serves HTTP: it reads every request and refuses the
/// surplus, so that a flood queues there and not in front of the rounds
/// and the submissions the logs have admitted.
fn front_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("front")
        .on_thread_start(batch_scheduling)
        .enable_all()
        .build()
}

/// The calling thread (a front worker) under `SCHED_BATCH`: woken, it no
/// longer preempts the thread running. Every answer the log runtime hands
/// back wakes the front; preempting, that was a context switch per answer,
/// and the front parked again after taking one. The log runtime keeps the
/// default policy, so rounds and admitted submissions still preempt the
/// flood. Measured (BENCHMARKS.md): 4 times fewer context switches, about
/// 5% less server CPU per accepted entry, overload latency unchanged.
fn batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain system call on this thread, with a valid parameter.
    let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if set != 0 {
        let why = std::io::Error::last_os_error();
        tracing::warn!("SCHED_BATCH not available to the front, keeping the default: {why}");
    }
}

/// A SIGHUP (the roots reload) must never kill a server, not even before
/// `serve` has installed its handler: until then it is ignored, which loses
/// nothing, since starting reads the roots file anyway.
fn ignore_hangups() {
    // SAFETY: called before the runtime starts any other thread; SIG_IGN
    // runs no code in the signal context.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}
