//! A connection flood against the real binary under a low file limit
//! (`prlimit --nofile=1024:1024`): 1,500 concurrent submitters, 300 idle
//! connections and 50 that trickle their headers a byte at a time. Client
//! connections must never starve storage, the lock or the dedup database of
//! file descriptors: no submission may get a 500, the checkpoint must keep
//! advancing throughout, and every SCT handed out must be in the audited
//! tree afterwards. And the front runtime, which takes the flood, must not
//! preempt the log runtime's work.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{add, add_error_status, http_client_with_timeout, Submission};
use ct_testkit::pki::{LeafKind, TestPki};
use ct_testkit::server::{write_config, LogSpec, Server};
use ct_testkit::verify::{parse_checkpoint, verify_log};
use ct_testkit::window::{mid_window, LIMIT, START};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SUBMITTERS: usize = 1_500;
const PER_SUBMITTER: usize = 1;
const IDLE: usize = 300;
const TRICKLING: usize = 50;
/// The most a submission keeps retrying 503s.
const PATIENCE: Duration = Duration::from_secs(240);
/// The oldest the published checkpoint may get during the flood.
const MAX_CHECKPOINT_AGE: Duration = Duration::from_secs(5);

/// The server, killed when dropped.
struct Limited(Child);

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ct-log serve` under a 1,024-file limit; its base URL.
fn start_limited(config: &std::path::Path) -> (Limited, String) {
    let mut child = Command::new("prlimit")
        .args([
            "--nofile=1024:1024",
            "--",
            CT_LOG,
            "serve",
            "--create-missing",
            "--config",
        ])
        .arg(config)
        .current_dir(config.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(config.with_extension("stderr")).unwrap())
        .spawn()
        .expect("prlimit (util-linux) runs ct-log");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("ct-log did not start: {line:?}"))
        .to_string();
    (Limited(child), base)
}

/// What the submitters saw.
#[derive(Default)]
struct Tally {
    scts: Mutex<Vec<Submission>>,
    refused_503: AtomicU64,
    transport_errors: AtomicU64,
    other: Mutex<Vec<String>>,
}

async fn submit_until_logged(
    http: reqwest::Client,
    base: String,
    log: ct_testkit::server::LogHandle,
    chain: Vec<Vec<u8>>,
    tally: Arc<Tally>,
) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        match add(&http, &base, &log, &chain, false).await {
            Ok(sub) => return tally.scts.lock().unwrap().push(sub),
            Err(e) => match add_error_status(&e) {
                Some(503) => tally.refused_503.fetch_add(1, Ordering::Relaxed),
                None => tally.transport_errors.fetch_add(1, Ordering::Relaxed),
                Some(_) => return tally.other.lock().unwrap().push(e),
            },
        };
        let jitter = fastrand::u64(100..400);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
    }
    tally
        .other
        .lock()
        .unwrap()
        .push("gave up after 503s".into());
}

/// Connections that send nothing, or one header byte every 200 ms, until
/// the server closes them or `stop` is set.
fn hog_connections(addr: &str, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    let idle = (0..IDLE).map(|_| {
        let (addr, stop) = (addr.to_string(), stop.clone());
        tokio::spawn(async move {
            if let Ok(stream) = TcpStream::connect(&addr).await {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                drop(stream);
            }
        })
    });
    let trickling = (0..TRICKLING).map(|_| {
        let (addr, stop) = (addr.to_string(), stop.clone());
        tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(&addr).await else {
                return;
            };
            let head = b"POST /flood/ct/v1/add-chain HTTP/1.1\r\nHost: x\r\n".repeat(20);
            for byte in head {
                if stop.load(Ordering::Relaxed) || stream.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    });
    idle.chain(trickling).collect()
}

/// Reads the published checkpoint from storage every 250 ms until `stop`;
/// the oldest it ever was, and the sizes seen.
async fn watch_checkpoint(
    path: std::path::PathBuf,
    log: ct_testkit::server::LogHandle,
    stop: Arc<AtomicBool>,
) -> (Duration, Vec<u64>) {
    let (mut oldest, mut sizes) = (Duration::ZERO, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        if let Ok(note) = fs::read(&path) {
            let cp = parse_checkpoint(&log, &note);
            let age = ct_testkit::verify::now_ms().saturating_sub(cp.timestamp);
            oldest = oldest.max(Duration::from_millis(age));
            sizes.push(cp.size);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (oldest, sizes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_flood_is_shed_and_sequencing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new("flood");
    fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = "http://ct.test/flood";
    let mut spec = LogSpec::new("flood", prefix, prefix, "roots.pem", &START, &LIMIT);
    spec.period_ms = 500;
    let config = write_config(dir.path(), &[&spec]);
    let log = spec.handle(dir.path());
    let chains: Vec<Vec<Vec<u8>>> = (0..(SUBMITTERS * PER_SUBMITTER) as u64)
        .map(|serial| {
            let not_after = mid_window();
            vec![
                pki.leaf(serial, LeafKind::Final, not_after),
                pki.intermediate_der.clone(),
            ]
        })
        .collect();
    let (_server, base) = start_limited(&config);
    let addr = base.trim_start_matches("http://").to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let hogs = hog_connections(&addr, &stop);
    let watcher = tokio::spawn(watch_checkpoint(
        dir.path().join("flood-data/checkpoint"),
        log.clone(),
        stop.clone(),
    ));
    let (http, tally) = (
        http_client_with_timeout(Duration::from_secs(60)),
        Arc::new(Tally::default()),
    );
    let mut submitters = Vec::new();
    for per in chains.chunks(PER_SUBMITTER) {
        let (http, base, log, tally, per) = (
            http.clone(),
            base.clone(),
            log.clone(),
            tally.clone(),
            per.to_vec(),
        );
        submitters.push(tokio::spawn(async move {
            for chain in per {
                submit_until_logged(
                    http.clone(),
                    base.clone(),
                    log.clone(),
                    chain,
                    tally.clone(),
                )
                .await;
            }
        }));
    }
    for submitter in submitters {
        submitter.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for hog in hogs {
        hog.await.unwrap();
    }
    let (oldest, sizes) = watcher.await.unwrap();

    let other = tally.other.lock().unwrap().clone();
    assert!(
        other.is_empty(),
        "{} answers other than 200 and 503, e.g. {:?}",
        other.len(),
        &other[..other.len().min(3)]
    );
    let scts = tally.scts.lock().unwrap().clone();
    eprintln!(
        "flood: {} SCTs, {} 503s, {} transport errors, checkpoint at most {oldest:?} old, sizes {:?}..{:?}",
        scts.len(),
        tally.refused_503.load(Ordering::Relaxed),
        tally.transport_errors.load(Ordering::Relaxed),
        sizes.first(),
        sizes.last()
    );
    assert_eq!(scts.len(), SUBMITTERS * PER_SUBMITTER);
    assert!(
        oldest <= MAX_CHECKPOINT_AGE,
        "the checkpoint went {oldest:?} without a round"
    );
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "the size never goes back"
    );
    let verified = verify_log(&http, &base, &log, &scts).await;
    assert_eq!(verified.checkpoint.size as usize, scts.len());
}

/// The scheduling policy of each thread of process `pid`, by thread name
/// (field 41 of `/proc/PID/task/TID/stat`).
fn thread_policies(pid: u32) -> Vec<(String, i32)> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| {
            let task = task.ok()?.path();
            let name = fs::read_to_string(task.join("comm")).ok()?;
            let stat = fs::read_to_string(task.join("stat")).ok()?;
            // Fields after the name (which may hold spaces) start at 3.
            let after_name = &stat[stat.rfind(')')? + 2..];
            let policy = after_name.split(' ').nth(41 - 3)?.parse().ok()?;
            Some((name.trim().to_string(), policy))
        })
        .collect()
}

/// The front runtime, woken for every answer the log runtime hands back,
/// must not preempt the thread running (`SCHED_BATCH`); the log runtime
/// keeps the default policy, so rounds and admitted work still preempt a
/// flood.
#[test]
fn only_the_front_runtime_waits_for_a_time_slice() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new("sched");
    fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = "http://ct.test/sched";
    let spec = LogSpec::new("sched", prefix, prefix, "roots.pem", &START, &LIMIT);
    let config = write_config(dir.path(), &[&spec]);
    let server = Server::start(CT_LOG, &config, "sched");
    let policies = thread_policies(server.pid());
    let of = |name: &str| -> Vec<i32> {
        let matching = policies.iter().filter(|(n, _)| n == name);
        matching.map(|(_, policy)| *policy).collect()
    };
    assert!(!of("front").is_empty(), "front threads: {policies:?}");
    assert!(
        of("front").iter().all(|&p| p == libc::SCHED_BATCH),
        "{policies:?}"
    );
    assert!(!of("tokio-rt-worker").is_empty(), "{policies:?}");
    let log_runtime = of("tokio-rt-worker");
    assert!(
        log_runtime.iter().all(|&p| p == libc::SCHED_OTHER),
        "{policies:?}"
    );
}
