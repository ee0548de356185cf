//! `ct-log submit`: submits a chain like a CA, checks the SCT (log ID,
//! signature, leaf index), waits for a checkpoint covering the entry and
//! proves its inclusion from the tiles, with `ct-client`. Prints the SCT as
//! JSON and as base64 of its serialized form.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ct_client::{load_verifying_key, read_chain_pem, submit, LogClient, Source, SubmitOptions};

#[derive(clap::Args)]
pub struct Args {
    /// The log's submission prefix (http(s)://…).
    #[arg(long)]
    url: String,
    /// The log's monitoring prefix (default: the submission prefix).
    #[arg(long)]
    monitoring_url: Option<String>,
    /// The log's public key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// Expected checkpoint origin (default: the checkpoint's own).
    #[arg(long)]
    origin: Option<String>,
    /// PEM chain, leaf first; the root is optional.
    chain: PathBuf,
    /// Submit a precertificate (add-pre-chain).
    #[arg(long)]
    precert: bool,
    /// Seconds to wait for a checkpoint covering the entry.
    #[arg(long, default_value_t = 60)]
    wait: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let key = load_verifying_key(&read(&args.key)?)?;
    let chain = read_chain_pem(&read(&args.chain)?)?;
    let submission = Source::parse(&args.url)?;
    let monitor = LogClient::new(args.monitoring_url.as_deref().unwrap_or(&args.url))?;
    let options = SubmitOptions {
        submission: &submission,
        monitor: &monitor,
        key: &key,
        origin: args.origin.as_deref(),
        wait: Duration::from_secs(args.wait),
    };
    let submitted = submit(&options, &chain, args.precert).await?;
    println!("{}", submitted.sct_json());
    println!("{}", submitted.sct_base64());
    let head = &submitted.checkpoint;
    eprintln!(
        "SCT verified: leaf index {}, timestamp {}; included in checkpoint {} size {} (proof of {} hashes)",
        submitted.leaf_index,
        submitted.sct.timestamp,
        head.checkpoint.origin,
        head.checkpoint.size,
        submitted.inclusion_proof.len()
    );
    Ok(())
}
