//! Crash test of the `ct-log` binary: the real server under concurrent load
//! is SIGKILLed at random moments, many times, and restarted on the same
//! config, lock and storage each time. Afterwards the whole log is verified
//! with the independent oracle crates (through `ct_testkit::verify`), and
//! everything any client was served before a crash is checked against it.
//!
//! The random delays and tile choices come from a seeded xorshift; the seed
//! is printed at the start and can be replayed with `CT_KILL_SEED=<seed>`
//! (timing still varies from run to run, so a replay is likely, not certain,
//! to hit the same interleaving).

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{add, add_error_status, http_client, monitoring_url, try_get, Submission};
use ct_testkit::pki::TestPki;
use ct_testkit::server::{stderr_tail_of, LogHandle, LogSpec, Server};
use ct_testkit::verify::{
    decoded_body, fetch_checkpoint, parse_checkpoint, path_of, tiles_for, verify_log,
    CheckpointInfo,
};
use ct_testkit::window::{LIMIT, START};

/// Used unless `CT_KILL_SEED` is set (decimal or 0x-hex).
const DEFAULT_SEED: u64 = 0x6b69_6c6c_2d39_0001;
/// Number of SIGKILLs (one per server run).
const KILLS: usize = 24;
/// Concurrent submitters per run.
const IN_FLIGHT: usize = 24;
/// Sequencing period of the log.
const PERIOD_MS: u64 = 60;
/// Distinct chains generated up front (submitters idle once all are logged).
const CHAINS: u64 = 6000;
/// Each run is killed this long (uniformly random) after it announced its port.
const MIN_UP_MS: u64 = 50;
const MAX_UP_MS: u64 = 1000;
/// The test fails if fewer SCTs than this came back over all runs.
const MIN_SCTS: usize = 300;
/// How long the clients of a killed run may take to notice the kill.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// xorshift64* (no `rand` crate here).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15).max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `[lo, hi]`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("CT_KILL_SEED") {
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|e| panic!("CT_KILL_SEED={s:?}: {e}"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

type Item = (Vec<Vec<u8>>, bool);
/// `(level, n, width, is data tile)`
type TileKey = (u8, u64, u32, bool);

/// A tile body as served during a run.
struct SeenTile {
    run: usize,
    /// Size of the checkpoint the tile was fetched for.
    for_size: u64,
    /// Decoded (gunzipped) body.
    body: Vec<u8>,
}

/// Everything the clients observed, over all runs.
#[derive(Default)]
struct Observed {
    /// `(run, submission)` for every 200 + SCT.
    scts: Vec<(usize, Submission)>,
    /// Every verified checkpoint, in observation order (one reader at a time).
    checkpoints: Vec<(usize, CheckpointInfo)>,
    /// Distinct bodies served for each tile.
    tiles: BTreeMap<TileKey, Vec<SeenTile>>,
    /// Partial tiles of a published size answered 404: `(key, size, run)`.
    partial_404: Vec<(TileKey, u64, usize)>,
    /// Answers no client should ever get from a live server.
    anomalies: Vec<String>,
    /// Leaves of every submission that got no SCT at least once.
    unanswered: BTreeSet<Vec<u8>>,
    /// Counts of failed submissions by kind, for the summary.
    failures: BTreeMap<String, usize>,
}

type Shared = Arc<Mutex<Observed>>;

/// Prints the replay information, the stderr of the last runs, and keeps the
/// data directory when the test fails.
struct OnFailure {
    seed: u64,
    run: String,
    dir: Option<tempfile::TempDir>,
    stderr_files: Vec<PathBuf>,
}

impl Drop for OnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!(
            "\n===== kill test FAILED: seed {:#x} (replay with CT_KILL_SEED={:#x}), during {} =====",
            self.seed, self.seed, self.run
        );
        let n = self.stderr_files.len();
        for p in &self.stderr_files[n.saturating_sub(2)..] {
            eprintln!("{}", stderr_tail_of(p, 40));
        }
        if let Some(dir) = self.dir.take() {
            eprintln!("log data kept in {}", dir.keep().display());
        }
    }
}

/// Submits queued chains until `stop`; a chain that gets no SCT goes back
/// to the front of the queue, so it is retried first by the next run (a CA
/// retrying after the crash; if the entry was logged before the kill, the
/// retry logs it again, which CT allows).
async fn submitter(
    http: reqwest::Client,
    base: String,
    log: LogHandle,
    queue: Arc<Mutex<VecDeque<Item>>>,
    obs: Shared,
    stop: Arc<AtomicBool>,
    run: usize,
) {
    while !stop.load(Ordering::SeqCst) {
        let next = queue.lock().unwrap().pop_front();
        let Some(item) = next else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        match add(&http, &base, &log, &item.0, item.1).await {
            Ok(sub) => obs.lock().unwrap().scts.push((run, sub)),
            Err(e) => {
                let status = add_error_status(&e);
                {
                    let mut o = obs.lock().unwrap();
                    let kind = match status {
                        None => "no answer (killed)".to_string(),
                        Some(s) => format!("HTTP {s}"),
                    };
                    *o.failures.entry(kind).or_default() += 1;
                    o.unanswered.insert(item.0[0].clone());
                    if matches!(status, Some(s) if s < 500) {
                        o.anomalies
                            .push(format!("run {run}: a valid chain was refused: {e}"));
                    }
                }
                queue.lock().unwrap().push_front(item);
                if status.is_some() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// The tiles worth fetching for a tree of `size`: the right edge of level 0
/// (hash and data), the right edge of the top level, and one random tile.
fn pick_tiles(size: u64, rng: &mut Rng) -> BTreeSet<TileKey> {
    let all = tiles_for(size);
    let mut out = BTreeSet::new();
    let mut add = |(l, n, w): (u8, u64, u32)| {
        out.insert((l, n, w, false));
        if l == 0 {
            out.insert((l, n, w, true));
        }
    };
    if let Some(&t) = all.iter().rfind(|t| t.0 == 0) {
        add(t);
    }
    if let Some(&t) = all.last() {
        add(t);
    }
    if !all.is_empty() {
        add(all[(rng.next() % all.len() as u64) as usize]);
    }
    out
}

/// Reads the checkpoint every 20–60 ms until `stop`, and every other time
/// a few tiles of the size it names. Transport errors (the kill) are
/// ignored; anything a live server serves is recorded and must verify.
async fn monitor(
    http: reqwest::Client,
    base: String,
    log: LogHandle,
    obs: Shared,
    stop: Arc<AtomicBool>,
    run: usize,
    mut rng: Rng,
) {
    let mut reads = 0u64;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(rng.range(20, 60))).await;
        let Ok(r) = try_get(&http, &monitoring_url(&base, &log, "checkpoint")).await else {
            continue;
        };
        if r.status != 200 {
            obs.lock().unwrap().anomalies.push(format!(
                "run {run}: GET checkpoint answered {}: {}",
                r.status,
                r.text()
            ));
            continue;
        }
        let cp = parse_checkpoint(&log, &decoded_body(&r, "checkpoint"));
        let size = cp.size;
        obs.lock().unwrap().checkpoints.push((run, cp));
        reads += 1;
        if !reads.is_multiple_of(2) || size == 0 {
            continue;
        }
        for key @ (l, n, w, data) in pick_tiles(size, &mut rng) {
            let path = path_of(l, n, w, data);
            let Ok(r) = try_get(&http, &monitoring_url(&base, &log, &path)).await else {
                continue;
            };
            let mut o = obs.lock().unwrap();
            match r.status {
                200 => {
                    let body = decoded_body(&r, &path);
                    let seen = o.tiles.entry(key).or_default();
                    if !seen.iter().any(|s| s.body == body) {
                        seen.push(SeenTile {
                            run,
                            for_size: size,
                            body,
                        });
                    }
                }
                404 if w < 256 => o.partial_404.push((key, size, run)),
                s => o.anomalies.push(format!(
                    "run {run}: GET {path} of published size {size} answered {s}: {}",
                    r.text()
                )),
            }
        }
    }
}

/// Waits (bounded) for every task of a run; re-raises a task's panic.
async fn drain(tasks: &mut tokio::task::JoinSet<()>, run: usize) {
    tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
                panic!("run {run}: client task failed: {e}");
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("run {run}: clients still busy {DRAIN_TIMEOUT:?} after the kill"));
}

fn leaf_index(s: &Submission) -> u64 {
    static_ct_api::Extensions::from_bytes(&s.sct.extensions)
        .expect("leaf_index extension")
        .leaf_index
}

/// "Kill test: run the real binary under concurrent load, `kill -9` it at
/// random moments at least 20 times, restart each time; at the end every SCT
/// that any client received must point at its own certificate in the log,
/// the final tree must be consistent with every checkpoint seen, and nothing
/// may be served that a later checkpoint contradicts."
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_under_load_loses_nothing() {
    let seed = seed();
    eprintln!("kill test seed {seed:#x} (replay with CT_KILL_SEED={seed:#x})");
    let t_all = Instant::now();
    let mut rng = Rng::new(seed);

    let pki = TestPki::new("Kill");
    let (start, limit) = (START.as_str(), LIMIT.as_str());
    let t_gen = Instant::now();
    let half = CHAINS / 2;
    let items: Vec<Item> = std::thread::scope(|s| {
        let a = s.spawn(|| pki.mixed_chains(0..half, start, limit));
        let b = pki.mixed_chains(half..CHAINS, start, limit);
        let mut a = a.join().unwrap();
        a.extend(b);
        a
    });
    let all_leaves: BTreeSet<Vec<u8>> = items.iter().map(|(c, _)| c[0].clone()).collect();
    assert_eq!(
        all_leaves.len() as u64,
        CHAINS,
        "generated leaves are distinct"
    );
    eprintln!("generated {CHAINS} chains in {:?}", t_gen.elapsed());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
    let mut spec = LogSpec::new(
        "kill",
        "http://ct.test/kill",
        "http://ct.test/kill",
        "roots.pem",
        start,
        limit,
    );
    spec.period_ms = PERIOD_MS;
    let config = ct_testkit::server::write_config(dir.path(), &[&spec]);
    let log = spec.handle(dir.path());
    let mut guard = OnFailure {
        seed,
        run: "setup".into(),
        dir: Some(dir),
        stderr_files: Vec::new(),
    };

    let http = http_client();
    let queue: Arc<Mutex<VecDeque<Item>>> = Arc::new(Mutex::new(items.into()));
    let obs: Shared = Arc::default();
    let mut kills = 0usize;

    for run in 0..KILLS {
        guard.run = format!("run {run}");
        let t_start = Instant::now();
        let mut server = Server::start(CT_LOG, &config, &format!("run-{run:02}"));
        guard.stderr_files.push(server.stderr_path().to_path_buf());
        let startup = t_start.elapsed();
        let base = server.base_url.clone();

        // Right after a restart: every SCT handed out so far is covered by
        // the checkpoint (an SCT is only sent once its entry is published).
        let cp = fetch_checkpoint(&http, &base, &log).await;
        {
            let mut o = obs.lock().unwrap();
            if let Some((i, s)) = o
                .scts
                .iter()
                .map(|(r, s)| (leaf_index(s), r))
                .max()
                .filter(|(i, _)| *i >= cp.size)
            {
                panic!(
                    "run {run}: after the restart the checkpoint has size {} but an SCT for index {i} was sent in run {s}",
                    cp.size
                );
            }
            o.checkpoints.push((run, cp.clone()));
        }
        let (scts_before, size_at_start) = (obs.lock().unwrap().scts.len(), cp.size);

        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..IN_FLIGHT {
            tasks.spawn(submitter(
                http.clone(),
                base.clone(),
                log.clone(),
                queue.clone(),
                obs.clone(),
                stop.clone(),
                run,
            ));
        }
        tasks.spawn(monitor(
            http.clone(),
            base.clone(),
            log.clone(),
            obs.clone(),
            stop.clone(),
            run,
            Rng::new(rng.next()),
        ));

        let up_ms = rng.range(MIN_UP_MS, MAX_UP_MS);
        tokio::time::sleep(Duration::from_millis(up_ms)).await;
        server.kill();
        kills += 1;
        stop.store(true, Ordering::SeqCst);
        drain(&mut tasks, run).await;

        let o = obs.lock().unwrap();
        eprintln!(
            "run {run:2}: up after {:4} ms, killed after {up_ms:4} ms; size at start {size_at_start:5}; {:4} SCTs; last checkpoint seen {:5}",
            startup.as_millis(),
            o.scts.len() - scts_before,
            o.checkpoints.last().map_or(0, |c| c.1.size)
        );
    }

    // Final run: verify everything that was served before.
    guard.run = "final verification".into();
    let t_verify = Instant::now();
    let server = Server::start(CT_LOG, &config, "final");
    guard.stderr_files.push(server.stderr_path().to_path_buf());
    let base = server.base_url.clone();
    let obs = std::mem::take(&mut *obs.lock().unwrap());
    let subs: Vec<Submission> = obs.scts.iter().map(|(_, s)| s.clone()).collect();

    assert!(
        obs.anomalies.is_empty(),
        "{} unexpected answers from a live server; first ones:\n{}",
        obs.anomalies.len(),
        obs.anomalies[..obs.anomalies.len().min(10)].join("\n")
    );

    // Every SCT points at its own entry (with an inclusion proof), indexes
    // are unique, the tiles and the root agree, the issuers resolve.
    let tree = verify_log(&http, &base, &log, &subs).await;
    let size = tree.checkpoint.size;
    assert!(kills >= 20, "only {kills} kills");
    assert!(
        subs.len() >= MIN_SCTS,
        "only {} SCTs over {kills} runs (expected at least {MIN_SCTS}): failures {:?}",
        subs.len(),
        obs.failures
    );
    assert!(
        size >= subs.len() as u64,
        "final tree size {size} < {} SCTs received",
        subs.len()
    );

    // Every entry is a certificate we submitted, and an entry nobody got an
    // SCT for is one whose submission failed at least once (no gap, no
    // invented entry).
    let sct_indexes: BTreeSet<u64> = subs.iter().map(leaf_index).collect();
    let mut dups = 0usize;
    let mut seen_leaves = BTreeSet::new();
    for e in &tree.entries {
        let leaf = if e.is_precert {
            &e.pre_certificate
        } else {
            &e.certificate
        };
        assert!(
            all_leaves.contains(leaf),
            "entry {} holds a certificate nobody submitted",
            e.leaf_index
        );
        assert!(
            sct_indexes.contains(&e.leaf_index) || obs.unanswered.contains(leaf),
            "entry {} has no SCT, but its certificate's submissions never failed",
            e.leaf_index
        );
        if !seen_leaves.insert(leaf.clone()) {
            dups += 1; // logged, SCT lost in the kill, submitted again
        }
    }

    // Checkpoints, in the order they were seen (the final one last): the
    // timestamp and size never go back, one root per size, and the final
    // tree is consistent with each.
    let mut checkpoints = obs.checkpoints.clone();
    checkpoints.push((KILLS, tree.checkpoint.clone()));
    let mut roots: BTreeMap<u64, ([u8; 32], usize)> = BTreeMap::new();
    for w in checkpoints.windows(2) {
        let ((r0, a), (r1, b)) = (&w[0], &w[1]);
        assert!(
            b.timestamp >= a.timestamp,
            "checkpoint timestamp went backwards: {} (size {}, run {r0}) then {} (size {}, run {r1})",
            a.timestamp,
            a.size,
            b.timestamp,
            b.size
        );
        assert!(
            b.size >= a.size,
            "checkpoint size went backwards: {} (run {r0}) then {} (run {r1})",
            a.size,
            b.size
        );
    }
    let mut distinct: BTreeMap<(u64, [u8; 32]), CheckpointInfo> = BTreeMap::new();
    for (run, cp) in &checkpoints {
        let (root, first_run) = *roots.entry(cp.size).or_insert((cp.root, *run));
        assert_eq!(
            root, cp.root,
            "two checkpoints of size {} with different roots (runs {first_run} and {run})",
            cp.size
        );
        let d = distinct.entry((cp.size, cp.root)).or_insert(cp.clone());
        if cp.timestamp > d.timestamp {
            *d = cp.clone();
        }
    }
    for cp in distinct.values() {
        tree.assert_extends(cp);
    }

    // Tiles served during the runs: each body is what the final tree says
    // that tile holds, and is still served unchanged (a partial tile may
    // be gone only once its full tile exists).
    let full_exists = |l: u8, n: u64| (size >> (8 * u32::from(l))) >= (n + 1) * 256;
    let mut tile_bodies = 0usize;
    for (&(l, n, w, data), seen) in &obs.tiles {
        let path = path_of(l, n, w, data);
        let want = tree
            .expected_tile(l, n, w, data)
            .unwrap_or_else(|e| panic!("{path} was served but {e}"));
        for s in seen {
            tile_bodies += 1;
            assert!(
                s.body == want,
                "{path} served in run {} (for checkpoint size {}) contradicts the final tree of size {size}",
                s.run,
                s.for_size
            );
        }
        let r = ct_testkit::client::get(&http, &monitoring_url(&base, &log, &path)).await;
        if r.status == 404 && w < 256 && full_exists(l, n) {
            continue;
        }
        assert_eq!(
            r.status,
            200,
            "{path} was served earlier, now: {}",
            r.text()
        );
        assert!(
            decoded_body(&r, &path) == want,
            "{path} changed since it was served"
        );
    }
    for &((l, n, w, data), for_size, run) in &obs.partial_404 {
        assert!(
            full_exists(l, n),
            "run {run}: {} of published size {for_size} was 404 although its full tile does not exist even at size {size}",
            path_of(l, n, w, data)
        );
    }

    // Informational: how many restarts had to re-apply a staged round
    // (the kill fell between commit and upload).
    let recoveries = guard
        .stderr_files
        .iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .contains("re-applied the staged round")
        })
        .count();
    eprintln!(
        "SUMMARY seed {seed:#x}: {kills} kills; {} SCTs received ({} distinct chains of {CHAINS} still queued); final tree size {size} ({dups} re-submitted duplicates); {} checkpoints seen ({} distinct trees); {} tile bodies recorded on {} tiles; {} partial-tile 404s; {recoveries} restarts recovered a staged round; failed submissions {:?}; {:.1} s ({:.1} s final verification)",
        subs.len(),
        queue.lock().unwrap().len(),
        checkpoints.len(),
        distinct.len(),
        tile_bodies,
        obs.tiles.len(),
        obs.partial_404.len(),
        obs.failures,
        t_all.elapsed().as_secs_f64(),
        t_verify.elapsed().as_secs_f64()
    );
    drop(server);
    drop(guard);
}
