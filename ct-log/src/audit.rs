//! `ct-log audit`: audits a static-CT log (this one or any other) from its
//! monitoring prefix or a local mirror of its bucket, with `ct-client`.
//! The first inconsistency ends the run with a non-zero exit and a one-line
//! message; a progress bar shows on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use ct_client::{audit, load_verifying_key, AuditOptions, AuditReport, AuditState, LogClient};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct Args {
    /// The log's monitoring prefix (http(s)://…), a file:// URL or a local directory.
    #[arg(long)]
    url: String,
    /// The log's public key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// Expected checkpoint origin (default: the state's, else the checkpoint's own).
    #[arg(long)]
    origin: Option<String>,
    /// State file: prove consistency with the last audit and fetch only what
    /// is new. Created on the first run, replaced atomically on success.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Print a one-line JSON summary instead of text, and no progress bar.
    #[arg(long)]
    json: bool,
    /// Tiles in flight (each a level-0 hash tile and its data tile).
    #[arg(long, default_value_t = 16)]
    jobs: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = audit_and_save(&args).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(report) if args.json => {
            let mut line = serde_json::to_value(report)?;
            line["ok"] = true.into();
            line["elapsed_ms"] = elapsed_ms.into();
            println!("{line}");
        }
        Ok(report) => println!("{}", summary(report, elapsed_ms)),
        Err(e) if args.json => {
            println!(
                "{}",
                serde_json::json!({ "ok": false, "error": format!("{e:#}") })
            );
        }
        Err(_) => {}
    }
    result.map(drop)
}

async fn audit_and_save(args: &Args) -> anyhow::Result<AuditReport> {
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let key = load_verifying_key(&pem)?;
    let client = LogClient::new(&args.url)?.with_in_flight(args.jobs);
    let previous = match &args.state {
        Some(path) => AuditState::load(path)?,
        None => None,
    };
    let bar = (!args.json && std::io::stderr().is_terminal()).then(progress_bar);
    let options = AuditOptions {
        progress: bar.clone().map(|bar| {
            Box::new(move |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            }) as ct_client::Progress
        }),
        ..AuditOptions::default()
    };
    let outcome = audit(
        &client,
        &key,
        args.origin.as_deref(),
        previous.as_ref(),
        &options,
    )
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (report, state) = outcome?;
    if let Some(path) = &args.state {
        state.save(path)?;
    }
    Ok(report)
}

pub(crate) fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} entries ({per_sec}, {eta} left)")
            .expect("static template"),
    );
    bar
}

/// One line: what was audited and what it proved.
fn summary(report: &AuditReport, elapsed_ms: u64) -> String {
    let origin = report.origin.as_deref().unwrap_or("log");
    let consistency = match report.consistency_proof {
        Some(n) => format!(
            "; consistent with size {} (proof of {n} hashes)",
            report.from_size
        ),
        None if report.from_size == report.size && report.from_size > 0 => {
            "; unchanged since the last audit".to_string()
        }
        None => String::new(),
    };
    format!(
        "audit OK: {origin} size {} root {}: {} new entries, {} data tiles, {} hash tiles, {} issuers checked{consistency} in {:.1} s",
        report.size,
        report.root,
        report.entries,
        report.data_tiles,
        report.hash_tiles,
        report.issuers,
        elapsed_ms as f64 / 1000.0
    )
}
