//! A cluster harness: one log served by several `ct-log` processes on
//! loopback, sequencers (`serve --role sequencer`, one active, the others
//! standing by for the lease) and stateless frontends (`serve --role
//! frontend`) that forward entries to the active sequencer over the internal
//! API. Every process shares a real PostgreSQL (lock with a 2 s lease, and
//! dedup) and a real SeaweedFS S3 bucket (storage); [`Cluster::setup`]
//! prints why and returns `None` when either is unavailable.
//!
//! A test starts a cluster, its processes and a [`Load`] (clients
//! submitting through every frontend, and a monitor reading every
//! frontend's checkpoint) in a few lines, disturbs it, and ends with
//! [`check_run`]: every SCT a client received must verify and name its own
//! entry, at its index with its timestamp, in the final log; the log must
//! pass `ct_client::audit`; and no two checkpoints of one size, as read from
//! any frontend at any time, may differ.
//!
//! Clusters run one at a time per test binary (see [`Cluster::setup`]), so
//! that timing bounds stay meaningful on a small machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ct_client::{audit, AuditOptions, AuditReport, LogClient};

use crate::client::{
    add, add_error_status, http_client, http_client_with_timeout, leaf_index, log_metric,
    monitoring_url, try_get, Submission,
};
use crate::pki::TestPki;
use crate::server::{
    cluster_table, free_port, postgres_dedup, postgres_lock, s3_storage, write_config_with,
    LogHandle, LogSpec, Server, TopLevel,
};
use crate::verify::{decoded_body, parse_checkpoint, verify_log, CheckpointInfo};
use crate::window::{LIMIT, START};
use crate::{Postgres, Weed};

/// The sequencing lease of every cluster's log.
pub const LEASE_TTL_MS: u64 = 2000;
/// The internal API's bearer secret.
pub const SECRET: &str = "cluster-test-secret-0123456789";
/// Frontends in [`Cluster::run_under_load`].
pub const FRONTENDS: usize = 3;
/// Concurrent submitting clients of a [`Load`].
const CLIENTS: usize = 12;
/// How long a client keeps retrying one submission.
const ITEM_DEADLINE: Duration = Duration::from_secs(60);
/// The series that says whether a process sequences the log (1) or stands
/// by (0).
pub const ACTIVE: &str = "ct_sequencer_active";

/// Each cluster runs several processes and two backends on a small machine:
/// one cluster at a time in a test binary, so the timing bounds stay
/// meaningful. (An async mutex: it works across the tests' runtimes, and a
/// failed test does not poison it.)
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `(chain, precert)`: one submission.
pub type Item = (Vec<Vec<u8>>, bool);

/// The shared backends and the config every process of a test runs on.
/// Declare it before the processes of a test, so it outlives them.
pub struct Cluster {
    /// The `ct-log` binary.
    bin: PathBuf,
    pub config: PathBuf,
    pub log: LogHandle,
    pub pki: TestPki,
    /// `127.0.0.1:PORT` of each sequencer.
    pub sequencer_listen: Vec<String>,
    /// `127.0.0.1:PORT` of each sequencer's own internal API listener, when
    /// it has one; then these, not `sequencer_listen`, are in `[cluster]
    /// sequencers`.
    pub internal_listen: Vec<String>,
    _postgres: Postgres,
    _weed: Weed,
    _dir: tempfile::TempDir,
    /// Held until the backends above are gone.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// Where a cluster keeps its lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterLock {
    /// Rows in the PostgreSQL server (which also holds the shared dedup).
    Postgres,
    /// Objects in the SeaweedFS bucket, beside the log's own.
    S3,
}

/// How a cluster is set up.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub period_ms: u64,
    /// Sequencer processes (one active, the others standing by).
    pub sequencers: usize,
    /// Each sequencer serves the internal API on a listener of its own.
    pub internal: bool,
    pub lock: ClusterLock,
    /// The internal listeners speak HTTPS, with a certificate of a private
    /// CA that the frontends are told to trust (needs `internal`).
    pub tls: bool,
}

impl Settings {
    /// `sequencers` sequencers on a PostgreSQL lock, plain HTTP.
    pub fn new(period_ms: u64, sequencers: usize, internal: bool) -> Settings {
        Settings {
            period_ms,
            sequencers,
            internal,
            lock: ClusterLock::Postgres,
            tls: false,
        }
    }
}

impl Cluster {
    /// [`Cluster::setup_with`] the [`Settings::new`] defaults.
    pub async fn setup(
        bin: impl Into<PathBuf>,
        name: &str,
        period_ms: u64,
        sequencers: usize,
        internal: bool,
    ) -> Option<Cluster> {
        let settings = Settings::new(period_ms, sequencers, internal);
        Cluster::setup_with(bin, name, settings).await
    }

    /// Waits for the previous cluster of this test binary to end, starts
    /// PostgreSQL and SeaweedFS, and writes the config of log `name` as
    /// `settings` say. The processes run `bin`, the `ct-log` binary. None
    /// (after saying why) when a backend is not installed.
    pub async fn setup_with(
        bin: impl Into<PathBuf>,
        name: &str,
        settings: Settings,
    ) -> Option<Cluster> {
        let serial = SERIAL.lock().await;
        let Some(postgres) = Postgres::start().await else {
            eprintln!("{name}: not run, PostgreSQL is not available");
            return None;
        };
        let Some(weed) = Weed::start().await else {
            eprintln!("{name}: not run, SeaweedFS is not available");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(name);
        std::fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
        let prefix = format!("http://ct.test/{name}");
        let mut spec = LogSpec::new(name, &prefix, &prefix, "roots.pem", &START, &LIMIT);
        spec.period_ms = settings.period_ms;
        spec.storage = Some(s3_storage(&weed, name));
        let (sequencer_listen, internal_listen) = listen_addresses(&settings);
        let scheme = if settings.tls { "https" } else { "http" };
        let urls: Vec<String> = if settings.internal {
            &internal_listen
        } else {
            &sequencer_listen
        }
        .iter()
        .map(|l| format!("{scheme}://{l}"))
        .collect();
        let lock = match settings.lock {
            ClusterLock::Postgres => postgres_lock(&postgres.url()),
            ClusterLock::S3 => s3_storage(&weed, &format!("{name}-lock")),
        };
        let mut cluster = cluster_table(SECRET, &urls);
        if settings.tls {
            cluster.extend(tls_files(dir.path(), name));
        }
        let top = TopLevel {
            lock: Some(lock),
            lease_ttl_ms: Some(LEASE_TTL_MS),
            dedup: Some(postgres_dedup(&postgres.url())),
            cluster,
            extra: Vec::new(),
        };
        let config = write_config_with(dir.path(), &top, &[&spec]);
        Some(Cluster {
            bin: bin.into(),
            config,
            log: spec.handle(dir.path()),
            pki,
            sequencer_listen,
            internal_listen,
            _postgres: postgres,
            _weed: weed,
            _dir: dir,
            _serial: serial,
        })
    }

    /// The log's name (also its metrics label).
    pub fn name(&self) -> &str {
        self.log.submission_path.trim_start_matches('/')
    }

    /// Starts sequencer `i` on its configured port.
    pub fn sequencer(&self, i: usize, tag: &str) -> Server {
        self.sequencer_under(&[], i, tag)
    }

    /// [`Cluster::sequencer`], run by the command `wrapper` (e.g.
    /// `faketime -f +30s`).
    pub fn sequencer_under(&self, wrapper: &[&str], i: usize, tag: &str) -> Server {
        let listen = &self.sequencer_listen[i];
        let internal: Vec<&str> = match self.internal_listen.get(i) {
            Some(internal) => vec!["--internal-listen", internal],
            None => vec![],
        };
        let server = Server::start_role_under(
            wrapper,
            &self.bin,
            &self.config,
            tag,
            "sequencer",
            listen,
            &internal,
        );
        assert_eq!(
            server.base_url,
            format!("http://{listen}"),
            "{tag} must listen where --listen says"
        );
        server
    }

    /// Starts a frontend on a free port.
    pub fn frontend(&self, tag: &str) -> Server {
        Server::start_role(&self.bin, &self.config, tag, "frontend", "127.0.0.1:0")
    }

    /// Starts `n` frontends (`frontend-<i>`) on free ports.
    pub fn frontends(&self, n: usize) -> Vec<Server> {
        (0..n)
            .map(|i| self.frontend(&format!("frontend-{i}")))
            .collect()
    }

    /// `(chain, precert)` items for leaves `serials` (the standard mix).
    pub fn items(&self, serials: std::ops::Range<u64>) -> Vec<Item> {
        self.pki.mixed_chains(serials, &START, &LIMIT)
    }

    /// `<name>{log="…"}` on `server`; None when it does not answer or has
    /// no such series.
    pub async fn metric(&self, http: &reqwest::Client, server: &Server, name: &str) -> Option<f64> {
        log_metric(http, &server.base_url, name, self.name())
            .await
            .ok()
            .flatten()
    }

    /// Waits (at most `limit`) until `server` reports `ct_sequencer_active`
    /// = `want`; returns how long it took.
    pub async fn wait_active(
        &self,
        http: &reqwest::Client,
        server: &Server,
        want: f64,
        limit: Duration,
        who: &str,
    ) -> Duration {
        let started = Instant::now();
        loop {
            if self.metric(http, server, ACTIVE).await == Some(want) {
                return started.elapsed();
            }
            if started.elapsed() > limit {
                let text = try_get(http, &format!("{}/metrics", server.base_url))
                    .await
                    .map(|r| r.text())
                    .unwrap_or_else(|e| e);
                let ours: Vec<&str> = text
                    .lines()
                    .filter(|l| l.starts_with("ct_sequencer") || l.starts_with("ct_tree"))
                    .collect();
                panic!(
                    "{who}: {ACTIVE}{{log=\"{}\"}} is not {want} after {limit:?}; its metrics say:\n{}",
                    self.name(),
                    ours.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts that sequencer `server` stands by: it announced its port
    /// while another process holds the lease, and reports
    /// `ct_sequencer_active` 0 (checked twice, a lease period apart).
    pub async fn assert_standby(&self, http: &reqwest::Client, server: &Server, who: &str) {
        for _ in 0..2 {
            let value = self.metric(http, server, ACTIVE).await;
            assert_eq!(
                value,
                Some(0.0),
                "{who} must stand by while the other sequencer holds the lease: {ACTIVE}{{log=\"{}\"}}",
                self.name()
            );
            tokio::time::sleep(Duration::from_millis(LEASE_TTL_MS)).await;
        }
    }
}

/// `127.0.0.1:PORT` of each sequencer's listener, and of its internal
/// listener when `settings.internal`.
fn listen_addresses(settings: &Settings) -> (Vec<String>, Vec<String>) {
    let listeners = settings.sequencers * if settings.internal { 2 } else { 1 };
    let mut ports = BTreeSet::new();
    while ports.len() < listeners {
        ports.insert(free_port());
    }
    let mut listen: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let internal = listen.split_off(settings.sequencers);
    (listen, internal)
}

/// Writes a private CA and a loopback server certificate into `dir`; the
/// `[cluster]` lines that serve the internal API with it and trust it.
fn tls_files(dir: &std::path::Path, name: &str) -> Vec<String> {
    let (ca, cert, key) = crate::pki::loopback_tls(name);
    for (file, pem) in [
        ("internal-ca.pem", ca),
        ("internal.pem", cert),
        ("internal-key.pem", key),
    ] {
        std::fs::write(dir.join(file), pem).unwrap();
    }
    vec![
        "ca = \"internal-ca.pem\"".to_string(),
        "tls = { cert = \"internal.pem\", key = \"internal-key.pem\" }".to_string(),
    ]
}

/// Sequencer A active, sequencer B standing by, the frontends up and the
/// load running with `scts` SCTs handed out.
pub struct Running {
    pub a: Server,
    pub b: Server,
    pub frontends: Vec<Server>,
    pub load: Load,
}

impl Cluster {
    /// Starts sequencer A and waits until it is active, then sequencer B
    /// and checks that it stands by, then [`FRONTENDS`] frontends and a
    /// [`Load`] submitting `items`; returns once `scts` SCTs were handed out
    /// (`what` names that moment in a failure).
    pub async fn run_under_load(
        &self,
        http: &reqwest::Client,
        items: Vec<Item>,
        scts: usize,
        what: &str,
    ) -> Running {
        let a = self.sequencer(0, "sequencer-a");
        self.wait_active(http, &a, 1.0, Duration::from_secs(30), "sequencer A")
            .await;
        let b = self.sequencer(1, "sequencer-b");
        self.assert_standby(http, &b, "sequencer B").await;
        let frontends = self.frontends(FRONTENDS);
        let started = Instant::now();
        let load = Load::start(&frontends, &self.log, items);
        load.wait_scts_after(started, scts, Duration::from_secs(30), what)
            .await;
        Running {
            a,
            b,
            frontends,
            load,
        }
    }
}

/// Polls `check` every 50 ms until it holds, for at most `limit`; returns
/// how long it took.
pub async fn wait_until(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Everything the clients of a run observed.
#[derive(Default)]
pub struct Observed {
    /// Every SCT received, with when its (successful) request was sent.
    pub scts: Vec<(Instant, Submission)>,
    /// Leaves of chains one of whose submissions got no SCT.
    pub unanswered: BTreeSet<Vec<u8>>,
    /// Failed attempts by kind, for the summary.
    pub failures: BTreeMap<String, usize>,
    /// Answers no client should get.
    pub anomalies: Vec<String>,
    /// `(frontend, checkpoint)`, every checkpoint read, in order.
    pub checkpoints: Vec<(usize, CheckpointInfo)>,
}

type Shared = Arc<Mutex<Observed>>;

/// Clients submitting distinct chains round-robin across frontends, and a
/// monitor reading every frontend's checkpoint every ~100 ms.
pub struct Load {
    obs: Shared,
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
    queue: Arc<Mutex<VecDeque<Item>>>,
}

impl Load {
    /// Starts the clients, which take `items` in turn, and the monitor.
    pub fn start(frontends: &[Server], log: &LogHandle, items: Vec<Item>) -> Load {
        let bases: Vec<String> = frontends.iter().map(|f| f.base_url.clone()).collect();
        let mut load = Load {
            obs: Shared::default(),
            stop: Arc::new(AtomicBool::new(false)),
            tasks: tokio::task::JoinSet::new(),
            queue: Arc::new(Mutex::new(items.into())),
        };
        let http = http_client();
        for client in 0..CLIENTS {
            load.tasks.spawn(submitter(
                http.clone(),
                bases.clone(),
                log.clone(),
                load.queue.clone(),
                load.obs.clone(),
                load.stop.clone(),
                client,
            ));
        }
        load.tasks.spawn(monitor(
            bases,
            log.clone(),
            load.obs.clone(),
            load.stop.clone(),
        ));
        load
    }

    /// SCTs received for requests sent after `t`.
    pub fn scts_sent_after(&self, t: Instant) -> usize {
        let obs = self.obs.lock().unwrap();
        obs.scts.iter().filter(|(sent, _)| *sent > t).count()
    }

    /// The largest checkpoint size read so far.
    pub fn largest_checkpoint(&self) -> u64 {
        let obs = self.obs.lock().unwrap();
        obs.checkpoints
            .iter()
            .map(|(_, c)| c.size)
            .max()
            .unwrap_or(0)
    }

    /// Waits (at most `limit`) for `n` SCTs of requests sent after `t`.
    pub async fn wait_scts_after(&self, t: Instant, n: usize, limit: Duration, what: &str) {
        let what = format!("{n} SCTs {what}");
        wait_until(limit, &what, async || self.scts_sent_after(t) >= n).await;
    }

    /// Stops the clients (each finishes the submission it is on) and the
    /// monitor, and returns what they observed.
    pub async fn finish(mut self) -> Observed {
        self.stop.store(true, Ordering::SeqCst);
        let drain = ITEM_DEADLINE + Duration::from_secs(30);
        let all_done = async {
            // Tasks are never aborted, so a join error is a client's panic.
            while let Some(joined) = self.tasks.join_next().await {
                joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            }
        };
        tokio::time::timeout(drain, all_done)
            .await
            .unwrap_or_else(|_| panic!("clients still busy {drain:?} after the stop"));
        let obs = std::mem::take(&mut *self.obs.lock().unwrap());
        eprintln!(
            "load: {} SCTs, {} chains not submitted, failed attempts {:?}, {} checkpoints read",
            obs.scts.len(),
            self.queue.lock().unwrap().len(),
            obs.failures,
            obs.checkpoints.len()
        );
        obs
    }
}

/// Submits queued chains until `stop`, starting at frontend `first` and
/// moving to the next frontend on every attempt. A submission is retried
/// (for at most [`ITEM_DEADLINE`]) on 408, 429, 5xx and transport errors;
/// any other refusal of a valid chain is an anomaly.
async fn submitter(
    http: reqwest::Client,
    frontends: Vec<String>,
    log: LogHandle,
    queue: Arc<Mutex<VecDeque<Item>>>,
    obs: Shared,
    stop: Arc<AtomicBool>,
    first: usize,
) {
    let mut turn = first;
    while !stop.load(Ordering::SeqCst) {
        let next = queue.lock().unwrap().pop_front();
        let Some((chain, precert)) = next else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let deadline = Instant::now() + ITEM_DEADLINE;
        loop {
            let base = &frontends[turn % frontends.len()];
            turn += 1;
            let sent = Instant::now();
            let err = match add(&http, base, &log, &chain, precert).await {
                Ok(sub) => {
                    obs.lock().unwrap().scts.push((sent, sub));
                    break;
                }
                Err(e) => e,
            };
            let status = add_error_status(&err);
            let retry = status.is_none_or(|s| s == 408 || s == 429 || s >= 500);
            {
                let mut o = obs.lock().unwrap();
                let kind = status.map_or("no answer".to_string(), |s| format!("HTTP {s}"));
                *o.failures.entry(kind).or_default() += 1;
                o.unanswered.insert(chain[0].clone());
                if !retry {
                    o.anomalies
                        .push(format!("a valid chain was refused: {err}"));
                } else if Instant::now() > deadline {
                    o.anomalies
                        .push(format!("no SCT within {ITEM_DEADLINE:?}; last: {err}"));
                }
            }
            if !retry || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Reads every frontend's checkpoint every ~100 ms until `stop`. Every
/// answer must be a 200 with a checkpoint that verifies (frontends keep
/// serving reads whatever happens to the sequencers).
async fn monitor(frontends: Vec<String>, log: LogHandle, obs: Shared, stop: Arc<AtomicBool>) {
    let http = http_client_with_timeout(Duration::from_secs(10));
    while !stop.load(Ordering::SeqCst) {
        for (i, base) in frontends.iter().enumerate() {
            let url = monitoring_url(base, &log, "checkpoint");
            let cp = match try_get(&http, &url).await {
                Ok(r) if r.status == 200 => Ok(parse_checkpoint(&log, &decoded_body(&r, &url))),
                Ok(r) => Err(format!("GET {url}: {} {}", r.status, r.text())),
                Err(e) => Err(e),
            };
            let mut o = obs.lock().unwrap();
            match cp {
                Ok(cp) => o.checkpoints.push((i, cp)),
                Err(e) => o.anomalies.push(e),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `ct_client::audit` of the log over `base`'s read path, from scratch.
async fn audit_over_http(base: &str, log: &LogHandle) -> AuditReport {
    let url = format!("{base}{}", log.monitoring_path);
    let client = LogClient::new(&url).unwrap_or_else(|e| panic!("LogClient {url}: {e}"));
    let options = AuditOptions::default();
    let (report, _state) = audit(
        &client,
        &log.verifying_key,
        Some(&log.origin),
        None,
        &options,
    )
    .await
    .unwrap_or_else(|e| panic!("audit of {url} failed: {e}"));
    report
}

/// The checks after a run under load, through frontend `base`:
/// - no client saw an anomaly (a refused valid chain, a submission without
///   SCT after a minute of retries, a frontend failing a checkpoint read);
/// - every SCT verifies and names its own entry at its index with its
///   timestamp, with an inclusion proof ([`verify_log`], which also checks
///   the tiles, the root and the issuers);
/// - every entry is a chain a client submitted, and an entry nobody holds an
///   SCT for is one whose submission failed at least once;
/// - no two checkpoints of one size differ, no frontend ever served a
///   checkpoint smaller or older than one it served before, and the final
///   tree is consistent with every checkpoint read;
/// - `ct_client::audit` of the final log passes.
pub async fn check_run(base: &str, log: &LogHandle, obs: &Observed, submitted: &BTreeSet<Vec<u8>>) {
    assert!(
        obs.anomalies.is_empty(),
        "{} unexpected answers; first ones:\n{}",
        obs.anomalies.len(),
        obs.anomalies[..obs.anomalies.len().min(10)].join("\n")
    );
    let http = http_client();
    let subs: Vec<Submission> = obs.scts.iter().map(|(_, s)| s.clone()).collect();
    let tree = verify_log(&http, base, log, &subs).await;
    let size = tree.checkpoint.size;

    // Entries by submitted certificate (precertificate for a precert entry).
    let mut copies: BTreeMap<&[u8], Vec<u64>> = BTreeMap::new();
    for e in &tree.entries {
        let cert = match e.is_precert {
            true => &e.pre_certificate,
            false => &e.certificate,
        };
        copies.entry(cert).or_default().push(e.leaf_index);
    }
    let with_sct: BTreeSet<u64> = subs.iter().map(leaf_index).collect();
    for (cert, indexes) in &copies {
        assert!(
            submitted.contains(*cert),
            "entries {indexes:?} hold a certificate no client submitted: {}",
            describe_entries(&tree.entries, indexes)
        );
        let orphans: Vec<&u64> = indexes.iter().filter(|i| !with_sct.contains(i)).collect();
        assert!(
            orphans.is_empty() || obs.unanswered.contains(*cert),
            "entries {orphans:?} have no SCT, but no submission of their certificate failed"
        );
    }
    let duplicates = tree.entries.len() - copies.len();

    let mut by_size: BTreeMap<u64, (usize, CheckpointInfo)> = BTreeMap::new();
    let mut last_seen: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for (frontend, cp) in &obs.checkpoints {
        let (first, seen) = by_size.entry(cp.size).or_insert((*frontend, cp.clone()));
        assert_eq!(
            seen.root, cp.root,
            "two checkpoints of size {} with different roots (read from frontends {first} and {frontend})",
            cp.size
        );
        if cp.timestamp > seen.timestamp {
            seen.timestamp = cp.timestamp;
        }
        let last = last_seen
            .entry(*frontend)
            .or_insert((cp.size, cp.timestamp));
        assert!(
            cp.size >= last.0 && cp.timestamp >= last.1,
            "frontend {frontend} served a checkpoint of size {} (timestamp {}) after one of size {} (timestamp {})",
            cp.size,
            cp.timestamp,
            last.0,
            last.1
        );
        *last = (cp.size, cp.timestamp);
    }
    for (_, cp) in by_size.values() {
        tree.assert_extends(cp);
    }

    let report = audit_over_http(base, log).await;
    assert!(
        report.size >= size,
        "the audit saw size {}, below the verified {size}",
        report.size
    );
    eprintln!(
        "verified: final size {size}, {} SCTs, {duplicates} re-logged duplicates, {} distinct checkpoints read; audit: size {}, {} entries",
        subs.len(),
        by_size.len(),
        report.size,
        report.entries
    );
}

/// The leaves of `items`.
fn describe_entries(entries: &[static_ct_api::LogEntry], indexes: &[u64]) -> String {
    indexes
        .iter()
        .map(|&i| {
            let e = &entries[i as usize];
            let cn = String::from_utf8_lossy(&e.certificate)
                .split(|c: char| !c.is_ascii_graphic())
                .filter(|w| w.contains(".test"))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                "#{i} ({cn}): precert {}, ts {}, cert {} bytes, precert {} bytes, chain {}",
                e.is_precert,
                e.timestamp,
                e.certificate.len(),
                e.pre_certificate.len(),
                e.chain_fingerprints.len()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn leaves_of(items: &[Item]) -> BTreeSet<Vec<u8>> {
    items.iter().map(|(chain, _)| chain[0].clone()).collect()
}
