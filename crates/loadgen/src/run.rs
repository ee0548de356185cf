//! Replays pre-generated chains against a running log, at a fixed
//! concurrency (closed loop) or a target rate (open loop), for a fixed
//! duration, and prints accepted/s, errors by status, latency percentiles,
//! and the server's CPU seconds and peak RSS read from /proc.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ct_formats::{
    log_id_of, parse_leaf_index_extension, verify_digitally_signed, Entry, EntryKind,
};
use ct_validate::{validate_chain, Endpoint, Policy, Roots};
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::EncodePublicKey;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::chains::{self, Chain};
use crate::procstat;

#[derive(clap::Args)]
pub struct Args {
    /// The log's submission prefix, e.g. http://127.0.0.1:8090/bench (loopback only).
    #[arg(long)]
    url: String,
    /// The chains file written by `generate`.
    #[arg(long)]
    chains: PathBuf,
    /// Closed loop: this many requests in flight at all times.
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: start this many requests per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: requests in flight beyond this are not started (counted).
    #[arg(long, default_value_t = 20_000)]
    max_in_flight: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Seconds of load before measuring starts (not counted).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Use chains from this index on (chains are never sent twice).
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// The server's pid, for CPU seconds and RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The log's key (private or public PEM): verify sampled SCTs.
    #[arg(long, requires = "roots")]
    log_key: Option<PathBuf>,
    /// The log's roots PEM, to work out the expected entry of a sampled SCT.
    #[arg(long)]
    roots: Option<PathBuf>,
    /// Verify one SCT out of this many (signature, log ID, leaf_index).
    #[arg(long, default_value_t = 50)]
    verify_every: usize,
    /// Async worker threads of the load generator (0: one per core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// A label for the result line.
    #[arg(long, default_value = "run")]
    label: String,
    /// Also write the result as JSON here.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

struct Verifier {
    key: VerifyingKey,
    log_id: [u8; 32],
    roots: Roots,
}

#[derive(Default)]
struct Stats {
    /// Latencies (µs) of submissions accepted inside the measured window.
    latencies: Vec<u32>,
    /// Latencies (µs) of the 503 refusals inside the window: how quickly
    /// surplus load is shed.
    refused_latencies: Vec<u32>,
    /// Status (or "conn-error") of requests completed inside the window.
    statuses: BTreeMap<String, u64>,
    accepted: u64,
    /// Completed after the window closed (drained), by status.
    drained: BTreeMap<String, u64>,
    /// Why requests failed without an HTTP answer (inside the window or
    /// after it), by the error's chain of causes.
    conn_errors: BTreeMap<String, u64>,
    sct_checked: u64,
    sct_bad: Vec<String>,
}

struct Shared {
    client: reqwest::Client,
    base: String,
    chains: Vec<Chain>,
    next: AtomicUsize,
    exhausted: AtomicBool,
    measure_from: Instant,
    end: Instant,
    stats: Mutex<Stats>,
    verifier: Option<Verifier>,
    verify_every: usize,
    in_flight: AtomicUsize,
    not_started: AtomicUsize,
}

fn check_loopback(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("the URL must be http:// on the loopback")?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.find(']') {
        Some(end) if authority.starts_with('[') => &authority[..=end],
        _ => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if !(host == "localhost" || host == "[::1]" || host.starts_with("127.")) {
        bail!(
            "refusing {host}: ct-loadgen only targets the loopback (127.0.0.0/8, localhost, [::1])"
        );
    }
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    check_loopback(&args.url)?;
    let chains = chains::read(&args.chains)?;
    if args.offset >= chains.len() {
        bail!("offset {} is past the {} chains", args.offset, chains.len());
    }
    let verifier = load_verifier(&args)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let now = Instant::now();
    let measure_from = now + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let shared = Arc::new(Shared {
        client,
        base: args.url.trim_end_matches('/').to_string(),
        chains,
        next: AtomicUsize::new(args.offset),
        exhausted: AtomicBool::new(false),
        measure_from,
        end,
        stats: Mutex::default(),
        verifier,
        verify_every: args.verify_every.max(1),
        in_flight: AtomicUsize::new(0),
        not_started: AtomicUsize::new(0),
    });
    let sampler = tokio::spawn(sample_server(args.server_pid, measure_from, end));
    let (mode, cpu_start) = drive(&shared, &args).await?;
    let cpu_end = cpu_now(args.server_pid);
    // Let the requests still in flight finish (bounded), and count them apart.
    let drain_until = Instant::now() + Duration::from_secs(15);
    while shared.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (rss_peak, rss_samples) = sampler.await?;
    let figures = ProcessFigures {
        server_cpu: cpu_start.zip(cpu_end).map(|(a, b)| b - a),
        rss_peak,
        rss_samples,
        hwm: args
            .server_pid
            .and_then(|pid| procstat::status_mib(pid, "VmHWM:")),
        loadgen_cpu: procstat::cpu_seconds(std::process::id()),
    };
    let stats = std::mem::take(&mut *shared.stats.lock().unwrap());
    report(&args, &mode, &shared, stats, &figures)
}

/// The SCT checker, when the log's key and roots are given.
fn load_verifier(args: &Args) -> anyhow::Result<Option<Verifier>> {
    let (Some(key), Some(roots)) = (&args.log_key, &args.roots) else {
        return Ok(None);
    };
    let key = ct_client::load_verifying_key(&std::fs::read_to_string(key)?)?;
    let spki = key.to_public_key_der()?;
    Ok(Some(Verifier {
        key,
        log_id: log_id_of(spki.as_bytes()),
        roots: Roots::from_pem(&std::fs::read(roots)?)?,
    }))
}

/// Runs the load in the mode `args` asks for until the end of the window;
/// returns the mode's name and the server's CPU seconds when measuring
/// started.
async fn drive(shared: &Arc<Shared>, args: &Args) -> anyhow::Result<(String, Option<f64>)> {
    match (args.concurrency, args.rate) {
        (Some(c), _) => {
            let workers: Vec<_> = (0..c)
                .map(|_| tokio::spawn(closed_loop(shared.clone())))
                .collect();
            tokio::time::sleep_until(shared.measure_from.into()).await;
            let cpu_start = cpu_now(args.server_pid);
            for w in workers {
                w.await?;
            }
            Ok((format!("concurrency {c}"), cpu_start))
        }
        (None, Some(rate)) => {
            let cpu_start =
                open_loop(shared.clone(), rate, args.max_in_flight, args.server_pid).await;
            Ok((format!("rate {rate}/s"), cpu_start))
        }
        (None, None) => bail!("give --concurrency or --rate"),
    }
}

fn cpu_now(pid: Option<u32>) -> Option<f64> {
    pid.and_then(procstat::cpu_seconds)
}

/// Max VmRSS (MiB) of the server, sampled every 100 ms inside the window.
async fn sample_server(pid: Option<u32>, from: Instant, end: Instant) -> (Option<f64>, usize) {
    let Some(pid) = pid else {
        return (None, 0);
    };
    tokio::time::sleep_until(from.into()).await;
    let (mut peak, mut n) = (None::<f64>, 0);
    while Instant::now() < end {
        if let Some(rss) = procstat::status_mib(pid, "VmRSS:") {
            peak = Some(peak.map_or(rss, |p| p.max(rss)));
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (peak, n)
}

fn take_chain(shared: &Shared) -> Option<usize> {
    let i = shared.next.fetch_add(1, Ordering::AcqRel);
    if i >= shared.chains.len() {
        shared.exhausted.store(true, Ordering::Release);
        return None;
    }
    Some(i)
}

async fn closed_loop(shared: Arc<Shared>) {
    while Instant::now() < shared.end {
        let Some(i) = take_chain(&shared) else { return };
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if !one_request(&shared, i).await {
            // Back off like a CA would after a 503: for the second of
            // ct-log's `Retry-After: 1`, instead of retrying in a hot loop
            // that makes the load whatever the refusals' speed allows.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Starts requests at `rate` per second until the end; returns the
/// server's CPU seconds when measuring started.
async fn open_loop(
    shared: Arc<Shared>,
    rate: f64,
    max_in_flight: usize,
    pid: Option<u32>,
) -> Option<f64> {
    let started = Instant::now();
    let mut cpu_start = None;
    let mut measuring = false;
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < shared.end {
        tick.tick().await;
        if !measuring && Instant::now() >= shared.measure_from {
            measuring = true;
            cpu_start = cpu_now(pid);
        }
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            sent += 1;
            if shared.in_flight.load(Ordering::Acquire) >= max_in_flight {
                shared.not_started.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(i) = take_chain(&shared) else { break };
            shared.in_flight.fetch_add(1, Ordering::AcqRel);
            let shared = shared.clone();
            tokio::spawn(async move { one_request(&shared, i).await });
        }
    }
    cpu_start
}

/// Sends chain `i` and records the answer; true if it was accepted.
async fn one_request(shared: &Shared, i: usize) -> bool {
    let chain = &shared.chains[i];
    let url = format!("{}/{}", shared.base, chain.endpoint());
    let start = Instant::now();
    let result = shared
        .client
        .post(url)
        .header("content-type", "application/json")
        .body(chain.body.clone())
        .send()
        .await;
    let conn_error = |e: reqwest::Error| ("conn-error".to_string(), None, Some(cause(&e)));
    let (status, body, failure): (String, _, _) = match result {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(body) => (status.to_string(), Some((status, body)), None),
                Err(e) => conn_error(e),
            }
        }
        Err(e) if e.is_timeout() => ("timeout".to_string(), None, None),
        Err(e) => conn_error(e),
    };
    let done = Instant::now();
    let latency = done - start;
    let accepted = status == "200";
    let mut bad_sct = None;
    let mut checked = false;
    if let (Some(verifier), Some((200, body))) = (&shared.verifier, &body) {
        if i.is_multiple_of(shared.verify_every) {
            checked = true;
            if let Err(e) = check_sct(verifier, chain, body) {
                bad_sct = Some(format!("chain {i}: {e:#}"));
            }
        }
    }
    {
        let mut stats = shared.stats.lock().unwrap();
        // Throughput counts what completes inside the window, whenever it
        // started (in a steady state that is the offered rate).
        if done >= shared.measure_from && done <= shared.end {
            let micros = latency.as_micros().min(u32::MAX as u128) as u32;
            match status.as_str() {
                "200" => stats.latencies.push(micros),
                "503" => stats.refused_latencies.push(micros),
                _ => {}
            }
            *stats.statuses.entry(status.clone()).or_default() += 1;
            if status == "200" {
                stats.accepted += 1;
            }
        } else if done > shared.end {
            *stats.drained.entry(status).or_default() += 1;
        }
        if let Some(cause) = failure {
            *stats.conn_errors.entry(cause).or_default() += 1;
        }
        stats.sct_checked += u64::from(checked);
        stats.sct_bad.extend(bad_sct);
    }
    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    accepted
}

/// Checks an SCT the way a CA would: log ID, leaf_index extension, and the
/// signature over the entry the log must have logged for this chain.
fn check_sct(verifier: &Verifier, chain: &Chain, body: &[u8]) -> anyhow::Result<()> {
    let sct: serde_json::Value = serde_json::from_slice(body)?;
    let field = |name: &str| -> anyhow::Result<Vec<u8>> {
        Ok(B64.decode(sct[name].as_str().context("missing field")?)?)
    };
    if field("id")? != verifier.log_id {
        bail!("wrong log ID");
    }
    let timestamp = sct["timestamp"].as_u64().context("timestamp")?;
    let index = parse_leaf_index_extension(&field("extensions")?)?;
    let policy = Policy {
        not_after_start: 0,
        not_after_limit: u64::MAX,
        max_chain_length: 16,
    };
    let endpoint = if chain.precert {
        Endpoint::AddPreChain
    } else {
        Endpoint::AddChain
    };
    let validated = validate_chain(&chain.ders()?, &verifier.roots, &policy, endpoint)
        .map_err(|e| anyhow::anyhow!("chain does not validate locally: {e}"))?;
    let kind = EntryKind::from(validated.leaf);
    let entry = Entry {
        kind,
        chain_fingerprints: validated
            .issuers
            .iter()
            .map(|d| Sha256::digest(d).into())
            .collect(),
    };
    verify_digitally_signed(
        &verifier.key,
        &entry.merkle_tree_leaf(timestamp, index),
        &field("signature")?,
    )?;
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

/// What was measured of the processes, beside the answers.
struct ProcessFigures {
    /// The server's CPU seconds inside the window.
    server_cpu: Option<f64>,
    /// The server's peak VmRSS (MiB) sampled inside the window, and the
    /// number of samples.
    rss_peak: Option<f64>,
    rss_samples: usize,
    /// The server's VmHWM (MiB) at the end.
    hwm: Option<f64>,
    /// The load generator's own CPU seconds, in all.
    loadgen_cpu: Option<f64>,
}

/// Latency percentiles in seconds, from latencies (µs) sorted ascending.
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn json(&self) -> serde_json::Value {
        json!({ "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max })
    }

    fn of(sorted: &[u32]) -> Latency {
        Latency {
            p50: percentile(sorted, 50.0),
            p90: percentile(sorted, 90.0),
            p99: percentile(sorted, 99.0),
            max: sorted.last().map_or(0.0, |m| *m as f64 / 1e6),
        }
    }
}

/// Prints the result (and writes it as JSON if asked); an error if an SCT
/// did not verify or nothing was accepted.
fn report(
    args: &Args,
    mode: &str,
    shared: &Shared,
    mut stats: Stats,
    figures: &ProcessFigures,
) -> anyhow::Result<()> {
    stats.latencies.sort_unstable();
    stats.refused_latencies.sort_unstable();
    let latency = Latency::of(&stats.latencies);
    let result = result_json(args, mode, shared, &stats, &latency, figures);
    print_summary(args, mode, &stats, &latency, figures);
    println!("RESULT-JSON {result}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    }
    if !stats.sct_bad.is_empty() {
        bail!("{} SCTs did not verify", stats.sct_bad.len());
    }
    if stats.accepted == 0 {
        bail!("no submission was accepted");
    }
    Ok(())
}

/// Requests completed inside the measured window.
fn requests(stats: &Stats) -> u64 {
    stats.statuses.values().sum()
}

/// What went wrong under reqwest's own message (which names the URL): the
/// chain of causes, such as "connection closed before message completed"
/// or the OS error of a reset connection.
fn cause(error: &reqwest::Error) -> String {
    let causes: Vec<String> =
        std::iter::successors(std::error::Error::source(error), |inner| inner.source())
            .map(|inner| inner.to_string())
            .collect();
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

/// The result line's JSON (`RESULT-JSON`, and `--json-out`).
fn result_json(
    args: &Args,
    mode: &str,
    shared: &Shared,
    stats: &Stats,
    latency: &Latency,
    figures: &ProcessFigures,
) -> serde_json::Value {
    let window = args.duration;
    let server_cpu = figures.server_cpu;
    json!({
        "label": args.label,
        "mode": mode,
        "duration_s": window,
        "warmup_s": args.warmup,
        "requests": requests(stats),
        "accepted": stats.accepted,
        "accepted_per_s": stats.accepted as f64 / window,
        "statuses": stats.statuses,
        "drained_after_window": stats.drained,
        "conn_error_causes": stats.conn_errors,
        "not_started_client_saturated": shared.not_started.load(Ordering::Relaxed),
        "chains_exhausted": shared.exhausted.load(Ordering::Acquire),
        "latency_s": latency.json(),
        "refused_latency_s": Latency::of(&stats.refused_latencies).json(),
        "server_cpu_s": server_cpu,
        "server_cpu_utilization": server_cpu.map(|c| c / window),
        "server_cpu_per_accepted_us": server_cpu.map(|c| if stats.accepted > 0 { c * 1e6 / stats.accepted as f64 } else { 0.0 }),
        "server_rss_peak_mib": figures.rss_peak,
        "server_rss_samples": figures.rss_samples,
        "server_vmhwm_mib": figures.hwm,
        "loadgen_cpu_s_total": figures.loadgen_cpu,
        "sct_checked": stats.sct_checked,
        "sct_bad": stats.sct_bad.len(),
    })
}

/// The human-readable lines of the result.
fn print_summary(
    args: &Args,
    mode: &str,
    stats: &Stats,
    latency: &Latency,
    figures: &ProcessFigures,
) {
    let window = args.duration;
    let errors: BTreeMap<&String, &u64> = stats
        .statuses
        .iter()
        .filter(|(s, _)| s.as_str() != "200")
        .collect();
    println!(
        "{}: {mode}, {window:.0} s measured: {} requests, accepted {:.0}/s; errors {:?}",
        args.label,
        requests(stats),
        stats.accepted as f64 / window,
        errors
    );
    println!(
        "  accepted latency p50 {:.3} s, p90 {:.3} s, p99 {:.3} s, max {:.3} s",
        latency.p50, latency.p90, latency.p99, latency.max
    );
    let refused = Latency::of(&stats.refused_latencies);
    println!(
        "  503 latency p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        refused.p50, refused.p99, refused.max
    );
    if let Some(cpu) = figures.server_cpu {
        println!(
            "  server CPU {cpu:.1} s ({:.0} µs per accepted entry), peak RSS {:.1} MiB (VmHWM {:.1} MiB)",
            cpu * 1e6 / stats.accepted.max(1) as f64,
            figures.rss_peak.unwrap_or(0.0),
            figures.hwm.unwrap_or(0.0)
        );
    }
    println!(
        "  SCTs verified: {} ({} bad); drained after the window: {:?}",
        stats.sct_checked,
        stats.sct_bad.len(),
        stats.drained
    );
    if !stats.conn_errors.is_empty() {
        println!("  failed without an answer: {:?}", stats.conn_errors);
    }
    for bad in stats.sct_bad.iter().take(5) {
        println!("  BAD SCT: {bad}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed request is reported by its causes, not by reqwest's line
    /// naming the URL, so that equal failures count together.
    #[tokio::test]
    async fn a_refused_connection_is_named_by_its_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Nothing listens on the port once its listener is dropped.
        let url = format!("http://127.0.0.1:{port}/ct/v1/add-chain");
        let error = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(&url)
            .send()
            .await
            .unwrap_err();
        let cause = cause(&error);
        assert!(!cause.contains(&url), "{cause}");
        assert!(cause.to_lowercase().contains("refused"), "{cause}");
    }

    #[test]
    fn only_loopback_targets() {
        for ok in [
            "http://127.0.0.1:8080/log",
            "http://localhost:1/x",
            "http://[::1]:8080/log",
            "http://127.3.2.1/a",
            "http://[::1]/log",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080/log",
            "http://example.org/log",
            "https://127.0.0.1/log",
            "http://192.168.1.1:80/",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 10_000).collect();
        assert_eq!(percentile(&v, 50.0), 0.5);
        assert_eq!(percentile(&v, 99.0), 0.99);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
