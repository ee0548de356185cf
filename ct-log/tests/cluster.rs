//! One log served by several `ct-log` processes on loopback: sequencers
//! (`serve --role sequencer`, one active, the others standing by for the
//! lease) and stateless frontends (`serve --role frontend`) that forward
//! entries to the active sequencer over the internal API. Every process
//! shares a real PostgreSQL (lock with a 2 s lease, and dedup) and a real
//! SeaweedFS S3 bucket (storage), both started through `ct_testkit`; a test
//! prints why and returns when either is unavailable.
//!
//! - `failover_after_kill_9`: the active sequencer is SIGKILLed under load;
//!   the standby takes over within a few lease periods.
//! - `paused_sequencer_steps_down`: the active sequencer is SIGSTOPped past
//!   its lease; the standby takes over; once resumed, the old one steps down
//!   and publishes nothing.
//! - `dedup_across_frontends`: one chain through different frontends, in
//!   turn and concurrently, is one entry with one SCT; the internal API
//!   refuses requests without the cluster secret.
//!
//! After a run under load, every SCT a client received must verify and name
//! its own entry, at its index with its timestamp, in the final log
//! ([`verify_log`]); the log must pass `ct_client::audit`; and no two
//! checkpoints of one size, as read from any frontend at any time, may
//! differ.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ct_client::{audit, AuditOptions, AuditReport, LogClient};

use common::CT_LOG;
use ct_testkit::client::{
    add, add_error_status, http_client, http_client_with_timeout, leaf_index, log_metric,
    monitoring_url, submit_all, try_get, Submission,
};
use ct_testkit::pki::{ts, LeafKind, TestPki};
use ct_testkit::server::{
    cluster_table, free_port, postgres_dedup, postgres_lock, s3_storage, write_config_with,
    LogHandle, LogSpec, Server, TopLevel,
};
use ct_testkit::verify::{
    decoded_body, fetch_checkpoint, parse_checkpoint, verify_log, CheckpointInfo,
};

const START: &str = "2026-01-01T00:00:00Z";
const LIMIT: &str = "2027-01-01T00:00:00Z";
/// The sequencing lease of every test log.
const LEASE_TTL_MS: u64 = 2000;
/// The internal API's bearer secret.
const SECRET: &str = "cluster-test-secret-0123456789";
/// Frontends per test.
const FRONTENDS: usize = 3;
/// Concurrent submitting clients under load.
const CLIENTS: usize = 12;
/// Distinct chains generated for a run under load (more than it can use).
const CHAINS: u64 = 2000;
/// How long a client keeps retrying one submission.
const ITEM_DEADLINE: Duration = Duration::from_secs(60);
/// The longest acceptable failover: from the active sequencer's death (or
/// stop) until the standby reports itself active (after a kill, also until
/// the first SCT for a submission sent after it).
const FAILOVER_LIMIT: Duration = Duration::from_secs(15);
/// Series names.
const ACTIVE: &str = "ct_sequencer_active";
const ROUNDS: &str = "ct_round_seconds_count";
/// What a sequencer that lost its lease says on stderr.
const STEPPED_DOWN: &str = "lost the sequencing lease";

/// Each test runs several processes and two backends on a small machine:
/// one test at a time in this binary, so the timing bounds stay meaningful.
/// (An async mutex: it works across the tests' runtimes, and a failed test
/// does not poison it.)
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The shared backends and the config every process of a test runs on.
/// Declared before the processes of a test, so it outlives them.
struct Cluster {
    config: PathBuf,
    log: LogHandle,
    pki: TestPki,
    /// `127.0.0.1:PORT` of each sequencer.
    sequencer_listen: Vec<String>,
    /// `127.0.0.1:PORT` of each sequencer's own internal API listener, when
    /// it has one; then these, not `sequencer_listen`, are in `[cluster]
    /// sequencers`.
    internal_listen: Vec<String>,
    _postgres: ct_testkit::Postgres,
    _weed: ct_testkit::Weed,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts PostgreSQL and SeaweedFS and writes the config of log `name`
    /// (period `period_ms`) with `sequencers` sequencer URLs, each on an
    /// internal listener of its own if `internal`; None (after saying why)
    /// when a backend is not installed.
    async fn setup(
        name: &str,
        period_ms: u64,
        sequencers: usize,
        internal: bool,
    ) -> Option<Cluster> {
        let Some(postgres) = ct_testkit::Postgres::start().await else {
            eprintln!("{name}: not run, PostgreSQL is not available");
            return None;
        };
        let Some(weed) = ct_testkit::Weed::start().await else {
            eprintln!("{name}: not run, SeaweedFS is not available");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(name);
        std::fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
        let prefix = format!("http://ct.test/{name}");
        let mut spec = LogSpec::new(name, &prefix, &prefix, "roots.pem", START, LIMIT);
        spec.period_ms = period_ms;
        spec.storage = Some(s3_storage(&weed, name));
        let listeners = if internal { 2 * sequencers } else { sequencers };
        let mut ports = BTreeSet::new();
        while ports.len() < listeners {
            ports.insert(free_port());
        }
        let mut sequencer_listen: Vec<String> =
            ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let internal_listen = sequencer_listen.split_off(sequencers);
        let urls: Vec<String> = if internal {
            &internal_listen
        } else {
            &sequencer_listen
        }
        .iter()
        .map(|l| format!("http://{l}"))
        .collect();
        let top = TopLevel {
            lock: Some(postgres_lock(&postgres.url())),
            lease_ttl_ms: Some(LEASE_TTL_MS),
            dedup: Some(postgres_dedup(&postgres.url())),
            cluster: cluster_table(SECRET, &urls),
        };
        let config = write_config_with(dir.path(), &top, &[&spec]);
        Some(Cluster {
            config,
            log: spec.handle(dir.path()),
            pki,
            sequencer_listen,
            internal_listen,
            _postgres: postgres,
            _weed: weed,
            _dir: dir,
        })
    }

    /// The log's name (also its metrics label).
    fn name(&self) -> &str {
        self.log.submission_path.trim_start_matches('/')
    }

    /// Starts sequencer `i` on its configured port.
    fn sequencer(&self, i: usize, tag: &str) -> Server {
        let listen = &self.sequencer_listen[i];
        let server = match self.internal_listen.get(i) {
            Some(internal) => Server::start_role_with(
                CT_LOG,
                &self.config,
                tag,
                "sequencer",
                listen,
                &["--internal-listen", internal],
            ),
            None => Server::start_role(CT_LOG, &self.config, tag, "sequencer", listen),
        };
        assert_eq!(
            server.base_url,
            format!("http://{listen}"),
            "{tag} must listen where --listen says"
        );
        server
    }

    /// Starts `n` frontends on free ports.
    fn frontends(&self, n: usize) -> Vec<Server> {
        (0..n)
            .map(|i| {
                Server::start_role(
                    CT_LOG,
                    &self.config,
                    &format!("frontend-{i}"),
                    "frontend",
                    "127.0.0.1:0",
                )
            })
            .collect()
    }

    /// `(chain, precert)` items for leaves `serials` (the standard mix).
    fn items(&self, serials: std::ops::Range<u64>) -> Vec<Item> {
        self.pki.mixed_chains(serials, START, LIMIT)
    }

    /// `<name>{log="…"}` on `server`; None when it does not answer or has
    /// no such series.
    async fn metric(&self, http: &reqwest::Client, server: &Server, name: &str) -> Option<f64> {
        log_metric(http, &server.base_url, name, self.name())
            .await
            .ok()
            .flatten()
    }

    /// Waits (at most `limit`) until `server` reports `ct_sequencer_active`
    /// = `want`; returns how long it took.
    async fn wait_active(
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
    async fn assert_standby(&self, http: &reqwest::Client, server: &Server, who: &str) {
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

/// Polls `check` every 50 ms until it holds, for at most `limit`; returns
/// how long it took.
/// Sequencer A active, sequencer B standing by, the frontends up and the
/// load running with `scts` SCTs handed out.
struct Running {
    a: Server,
    b: Server,
    frontends: Vec<Server>,
    load: Load,
}

impl Cluster {
    async fn run_under_load(
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

async fn wait_until(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

type Item = (Vec<Vec<u8>>, bool);

/// Everything the clients of a run observed.
#[derive(Default)]
struct Observed {
    /// Every SCT received, with when its (successful) request was sent.
    scts: Vec<(Instant, Submission)>,
    /// Leaves of chains one of whose submissions got no SCT.
    unanswered: BTreeSet<Vec<u8>>,
    /// Failed attempts by kind, for the summary.
    failures: BTreeMap<String, usize>,
    /// Answers no client should get.
    anomalies: Vec<String>,
    /// `(frontend, checkpoint)`, every checkpoint read, in order.
    checkpoints: Vec<(usize, CheckpointInfo)>,
}

type Shared = Arc<Mutex<Observed>>;

/// Clients submitting distinct chains round-robin across frontends, and a
/// monitor reading every frontend's checkpoint every ~100 ms.
struct Load {
    obs: Shared,
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
    queue: Arc<Mutex<VecDeque<Item>>>,
}

impl Load {
    fn start(frontends: &[Server], log: &LogHandle, items: Vec<Item>) -> Load {
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
    fn scts_sent_after(&self, t: Instant) -> usize {
        let obs = self.obs.lock().unwrap();
        obs.scts.iter().filter(|(sent, _)| *sent > t).count()
    }

    /// The largest checkpoint size read so far.
    fn largest_checkpoint(&self) -> u64 {
        let obs = self.obs.lock().unwrap();
        obs.checkpoints
            .iter()
            .map(|(_, c)| c.size)
            .max()
            .unwrap_or(0)
    }

    /// Waits (at most `limit`) for `n` SCTs of requests sent after `t`.
    async fn wait_scts_after(&self, t: Instant, n: usize, limit: Duration, what: &str) {
        let what = format!("{n} SCTs {what}");
        wait_until(limit, &what, async || self.scts_sent_after(t) >= n).await;
    }

    /// Stops the clients (each finishes the submission it is on) and the
    /// monitor, and returns what they observed.
    async fn finish(mut self) -> Observed {
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
///   checkpoint smaller than one it served before, and the final tree is
///   consistent with every checkpoint read;
/// - `ct_client::audit` of the final log passes.
async fn check_run(base: &str, log: &LogHandle, obs: &Observed, submitted: &BTreeSet<Vec<u8>>) {
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
            "entries {indexes:?} hold a certificate no client submitted"
        );
        let orphans: Vec<&u64> = indexes.iter().filter(|i| !with_sct.contains(i)).collect();
        assert!(
            orphans.is_empty() || obs.unanswered.contains(*cert),
            "entries {orphans:?} have no SCT, but no submission of their certificate failed"
        );
    }
    let duplicates = tree.entries.len() - copies.len();

    let mut by_size: BTreeMap<u64, (usize, CheckpointInfo)> = BTreeMap::new();
    let mut last_size: BTreeMap<usize, u64> = BTreeMap::new();
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
        let last = last_size.entry(*frontend).or_insert(cp.size);
        assert!(
            cp.size >= *last,
            "frontend {frontend} served a checkpoint of size {} after one of size {last}",
            cp.size
        );
        *last = cp.size;
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
fn leaves_of(items: &[Item]) -> BTreeSet<Vec<u8>> {
    items.iter().map(|(chain, _)| chain[0].clone()).collect()
}

/// "Kill -9 the active sequencer under load; the standby takes over within a
/// few lease periods, and nothing any client was promised is lost."
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_after_kill_9() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = Cluster::setup("failover", 250, 2, false).await else {
        return;
    };
    let items = cluster.items(0..CHAINS);
    let submitted = leaves_of(&items);
    let http = http_client_with_timeout(Duration::from_secs(10));
    let Running {
        mut a,
        b,
        frontends,
        load,
    } = cluster
        .run_under_load(&http, items, 100, "before the kill")
        .await;

    a.kill();
    let killed = Instant::now();
    eprintln!("killed sequencer A (-9) under load");
    let took = wait_until(
        Duration::from_secs(45),
        "sequencer B active and a submission sent after the kill answered",
        async || {
            load.scts_sent_after(killed) > 0 && cluster.metric(&http, &b, ACTIVE).await == Some(1.0)
        },
    )
    .await;
    eprintln!("sequencer B took over {took:?} after the kill");
    assert!(
        took <= FAILOVER_LIMIT,
        "failover took {took:?}: more than {FAILOVER_LIMIT:?} from the kill to B active and a new SCT (lease {LEASE_TTL_MS} ms)"
    );
    let resumed = Instant::now();
    load.wait_scts_after(resumed, 100, Duration::from_secs(30), "after the failover")
        .await;
    let obs = load.finish().await;

    let b_rounds = cluster.metric(&http, &b, ROUNDS).await.unwrap_or(0.0);
    assert!(
        b_rounds > 0.0,
        "sequencer B published no round ({ROUNDS} {b_rounds})"
    );
    check_run(&frontends[0].base_url, &cluster.log, &obs, &submitted).await;
}

/// "SIGSTOP the active sequencer past its lease: the standby takes over;
/// resumed, the old one steps down without publishing anything."
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_sequencer_steps_down() {
    let _serial = SERIAL.lock().await;
    let period_ms = 500;
    let Some(cluster) = Cluster::setup("paused", period_ms, 2, false).await else {
        return;
    };
    let items = cluster.items(0..CHAINS);
    let mut submitted = leaves_of(&items);
    let http = http_client_with_timeout(Duration::from_secs(10));
    let Running {
        mut a,
        b,
        frontends,
        load,
    } = cluster
        .run_under_load(&http, items, 50, "before the pause")
        .await;

    // Stop A right after it published a round, so that no round of A's can
    // complete between reading its count and the stop.
    let before = cluster.metric(&http, &a, ROUNDS).await;
    let mut rounds_before = before;
    let fast = http_client_with_timeout(Duration::from_secs(2));
    wait_until(
        Duration::from_secs(10),
        "sequencer A publishes a round",
        async || {
            rounds_before = cluster.metric(&fast, &a, ROUNDS).await;
            rounds_before != before
        },
    )
    .await;
    a.signal("STOP");
    let stopped = Instant::now();
    let rounds_before = rounds_before.expect("A's round count");
    // A stopped process writes nothing: what A says after this offset, it
    // says after its resume.
    let stderr_a = a.stderr_path().to_path_buf();
    let said_before_stop = std::fs::read(&stderr_a).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&said_before_stop).contains(STEPPED_DOWN),
        "sequencer A lost its lease before it was stopped"
    );
    let size_at_stop = fetch_checkpoint(&http, &frontends[0].base_url, &cluster.log)
        .await
        .size;
    eprintln!("stopped sequencer A after {rounds_before} rounds, at tree size {size_at_stop}");

    let limit = Duration::from_secs(30);
    cluster
        .wait_active(&http, &b, 1.0, limit, "sequencer B after A's stop")
        .await;
    let took = stopped.elapsed();
    eprintln!("sequencer B active {took:?} after the stop");
    assert!(
        took <= FAILOVER_LIMIT,
        "sequencer B became active {took:?} after A's stop: more than {FAILOVER_LIMIT:?} (lease {LEASE_TTL_MS} ms)"
    );
    wait_until(
        limit,
        "sequencer B publishing entries past the size at the stop, with new SCTs",
        async || load.largest_checkpoint() > size_at_stop && load.scts_sent_after(stopped) > 0,
    )
    .await;
    eprintln!(
        "new SCTs and a larger tree {:?} after the stop",
        stopped.elapsed()
    );
    let pause = Duration::from_millis(3 * LEASE_TTL_MS);
    if let Some(rest) = pause.checked_sub(stopped.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let b_rounds = cluster.metric(&http, &b, ROUNDS).await.unwrap_or(0.0);
    assert!(
        b_rounds > 0.0,
        "sequencer B published no round while A was stopped"
    );
    a.signal("CONT");
    let resumed = Instant::now();
    eprintln!("resumed sequencer A after {:?}", resumed - stopped);

    let said_since = || {
        let all = std::fs::read(&stderr_a).unwrap_or_default();
        String::from_utf8_lossy(&all[said_before_stop.len().min(all.len())..]).into_owned()
    };
    wait_until(
        Duration::from_secs(15),
        &format!("sequencer A says {STEPPED_DOWN:?} after the resume"),
        async || said_since().contains(STEPPED_DOWN),
    )
    .await;
    // Load on, for a few of A's periods after its resume.
    load.wait_scts_after(resumed, 50, Duration::from_secs(30), "after the resume")
        .await;
    tokio::time::sleep(Duration::from_millis(4 * period_ms)).await;
    let mut obs = load.finish().await;
    // A new frontend tries the sequencers in their configured order, A
    // first: A, standing by, must turn its entries away to B.
    let late = Server::start_role(
        CT_LOG,
        &cluster.config,
        "frontend-late",
        "frontend",
        "127.0.0.1:0",
    );
    let late_items = cluster.items(CHAINS..CHAINS + 30);
    submitted.extend(leaves_of(&late_items));
    let sent = Instant::now();
    let late_subs = submit_all(&http, &late.base_url, &cluster.log, late_items, 10).await;
    eprintln!(
        "a frontend started after the resume: 30 SCTs in {:?}",
        sent.elapsed()
    );
    obs.scts
        .extend(late_subs.into_iter().map(|sub| (sent, sub)));
    let since = said_since();
    let lines: Vec<&str> = since.lines().collect();
    eprintln!(
        "sequencer A after its resume ({} lines, first ones):\n{}",
        lines.len(),
        lines[..lines.len().min(12)].join("\n")
    );

    let a_active = cluster.metric(&http, &a, ACTIVE).await;
    assert_eq!(
        a_active,
        Some(0.0),
        "sequencer A, resumed after losing its lease, must stand by ({ACTIVE})"
    );
    let a_rounds = cluster.metric(&http, &a, ROUNDS).await;
    assert_eq!(
        a_rounds,
        Some(rounds_before),
        "sequencer A must publish no round after it was stopped ({ROUNDS} before the stop: {rounds_before})"
    );
    let b_active = cluster.metric(&http, &b, ACTIVE).await;
    assert_eq!(b_active, Some(1.0), "sequencer B must still sequence");
    check_run(&frontends[1].base_url, &cluster.log, &obs, &submitted).await;

    // A stepped-down sequencer still shuts down cleanly on SIGTERM.
    a.signal("TERM");
    assert!(
        a.wait_exit(Duration::from_secs(20)),
        "the stepped-down sequencer exited with an error after SIGTERM\n{}",
        a.stderr_tail(30)
    );
}

/// "The same chain through different frontends, one after the other or all
/// at once, is one entry with one SCT; the internal API wants the secret."
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dedup_across_frontends() {
    let _serial = SERIAL.lock().await;
    let period_ms = 250;
    let Some(cluster) = Cluster::setup("dedup", period_ms, 1, true).await else {
        return;
    };
    let http = http_client();
    let sequencer = cluster.sequencer(0, "sequencer");
    cluster
        .wait_active(
            &http,
            &sequencer,
            1.0,
            Duration::from_secs(30),
            "the sequencer",
        )
        .await;
    let frontends = cluster.frontends(FRONTENDS);
    let log = &cluster.log;
    let not_after = ts("2026-06-01T00:00:00Z");
    let chain = |serial: u64, kind: LeafKind| {
        vec![
            cluster.pki.leaf(serial, kind, not_after),
            cluster.pki.intermediate_der.clone(),
        ]
    };

    // One after the other, through two frontends.
    let first = chain(1, LeafKind::Final);
    let one = add(&http, &frontends[0].base_url, log, &first, false)
        .await
        .unwrap_or_else(|e| panic!("through frontend 0: {e}"));
    let again = add(&http, &frontends[1].base_url, log, &first, false)
        .await
        .unwrap_or_else(|e| panic!("through frontend 1: {e}"));
    assert_eq!(
        one.sct, again.sct,
        "one chain through frontends 0 and 1 must get byte-identical SCTs"
    );
    assert_eq!(leaf_index(&one), 0, "the first entry of a new log");
    let size = fetch_checkpoint(&http, &frontends[2].base_url, log)
        .await
        .size;
    assert_eq!(size, 1, "one chain submitted twice is one entry");

    // All at once, spread over the three frontends.
    let second = chain(2, LeafKind::Precert);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (http, base, log, chain) = (
            http.clone(),
            frontends[i % FRONTENDS].base_url.clone(),
            log.clone(),
            second.clone(),
        );
        tasks.spawn(async move { (i, add(&http, &base, &log, &chain, true).await) });
    }
    let mut scts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("submission task");
        scts.push(result.unwrap_or_else(|e| panic!("concurrent submission #{i}: {e}")));
    }
    for (i, sub) in scts.iter().enumerate() {
        assert_eq!(
            sub.sct, scts[0].sct,
            "concurrent submissions of one precertificate: SCT #{i} differs from the first"
        );
    }
    assert_eq!(leaf_index(&scts[0]), 1, "the second entry");
    // A few rounds, for any stray duplicate to be sequenced.
    tokio::time::sleep(Duration::from_millis(4 * period_ms)).await;
    for f in &frontends {
        let size = fetch_checkpoint(&http, &f.base_url, log).await.size;
        assert_eq!(
            size, 2,
            "30 concurrent submissions of one chain grew the tree by one"
        );
    }
    let tree = verify_log(&http, &frontends[0].base_url, log, &[one, scts[0].clone()]).await;
    assert_eq!(tree.checkpoint.size, 2);

    // The frontends reached the sequencer on its internal listener; the
    // public one does not serve the internal API...
    let path = format!("/internal/v1/{}/entries", cluster.name());
    let public = http
        .post(format!("{}{path}", sequencer.base_url))
        .header("authorization", format!("Bearer {SECRET}"))
        .body("{}")
        .send()
        .await
        .expect("POST to the public listener");
    assert_eq!(
        public.status().as_u16(),
        404,
        "the internal API must not be on the public listener when it has its own"
    );
    // ...and the internal one refuses requests without the cluster secret.
    let internal = format!("http://{}{path}", cluster.internal_listen[0]);
    for (what, token) in [
        ("no", None),
        ("a wrong", Some("Bearer not-the-cluster-secret-at-all")),
    ] {
        let mut request = http
            .post(&internal)
            .header("content-type", "application/json")
            .body("{}");
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let r = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {internal}: {e}"));
        assert_eq!(
            r.status().as_u16(),
            401,
            "POST {internal} with {what} bearer token"
        );
    }
    // A sequencer takes no public submission.
    let third = chain(3, LeafKind::Final);
    let refused = add(&http, &sequencer.base_url, log, &third, false).await;
    assert!(
        refused.is_err(),
        "a sequencer must not accept add-chain: {refused:?}"
    );
}
