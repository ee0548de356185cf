//! End-to-end tests of the `ct-log` binary: a real server process on
//! 127.0.0.1, driven over HTTP like a CA (RFC 6962 add-chain/add-pre-chain)
//! and a monitor (static-ct-api read path), and checked with independent
//! oracle crates (Cloudflare's static_ct_api / tlog_tiles / signed_note),
//! never with the project's own crates.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::prelude::*;
use common::CT_LOG;
use ct_testkit::client::{
    self, add_endpoint, chain_body, get, http_client, post, submission_url, submit_all,
    submit_all_results, Submission,
};
use ct_testkit::pki::{ts, LeafKind, TestPki};
use ct_testkit::server::{KeyFormat, LogHandle, LogSpec, Server};
use ct_testkit::verify::{self, fetch_checkpoint, verify_log, verify_sct};
use ct_testkit::window::{LIMIT, START};

/// Concurrent submissions in flight.
const IN_FLIGHT: usize = 48;

/// Leaf `serial`'s kind in the standard mix: half final certificates, half
/// precertificates (half of those with an extension after the poison).
fn kind_for(serial: u64) -> LeafKind {
    match serial % 4 {
        0 | 2 => LeafKind::Final,
        1 => LeafKind::Precert,
        _ => LeafKind::PrecertWithTrailingExt,
    }
}

/// NotAfter of leaf `serial`, inside [START, LIMIT): serial 0 is exactly
/// START (inclusive bound), serial 1 is one second before LIMIT.
fn not_after_for(serial: u64) -> time::OffsetDateTime {
    match serial {
        0 => ts(&START),
        1 => ts(&LIMIT) - time::Duration::seconds(1),
        s => {
            ts(&START)
                + time::Duration::hours(((s * 37) % 8700) as i64)
                + time::Duration::seconds((s % 3600) as i64)
        }
    }
}

/// Chains for leaves `serials`: leaf + intermediate, plus the root for every
/// third one. Returns `(chain, is_precert)` items for `submit_all`.
fn make_items(pki: &TestPki, serials: std::ops::Range<u64>) -> Vec<(Vec<Vec<u8>>, bool)> {
    serials
        .map(|s| {
            let kind = kind_for(s);
            let mut chain = vec![
                pki.leaf(s, kind, not_after_for(s)),
                pki.intermediate_der.clone(),
            ];
            if s % 3 == 0 {
                chain.push(pki.root_der.clone());
            }
            (chain, kind.is_precert())
        })
        .collect()
}

/// Writes `pki`'s root as `<dir>/<file>`.
fn write_roots(dir: &Path, file: &str, pkis: &[&TestPki]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(
        &path,
        pkis.iter().map(|p| p.root_pem.clone()).collect::<String>(),
    )
    .unwrap();
    path
}

/// One temp dir + one `e2e` log (prefix http://ct.test/e2e) trusting `pki`,
/// stored in `storage` (a config `storage` table; `None` for a local dir).
fn single_log_setup(
    pki: &TestPki,
    period_ms: u64,
    storage: Option<String>,
) -> (tempfile::TempDir, PathBuf, LogHandle) {
    let dir = tempfile::tempdir().unwrap();
    write_roots(dir.path(), "roots.pem", &[pki]);
    let mut spec = LogSpec::new(
        "e2e",
        "http://ct.test/e2e",
        "http://ct.test/e2e",
        "roots.pem",
        &START,
        &LIMIT,
    );
    spec.period_ms = period_ms;
    spec.storage = storage;
    let config = ct_testkit::server::write_config(dir.path(), &[&spec]);
    let handle = spec.handle(dir.path());
    (dir, config, handle)
}

/// The SCT of every submission is already covered by the published
/// checkpoint (an SCT is answered only after publication).
async fn assert_published(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    subs: &[Submission],
) -> verify::CheckpointInfo {
    let cp = fetch_checkpoint(http, base, log).await;
    let pool = verify::root_pool(log);
    for s in subs {
        let e = verify_sct(log, &pool, s);
        assert!(
            e.leaf_index < cp.size,
            "SCT for index {} returned before a checkpoint covering it was published (checkpoint size {})",
            e.leaf_index,
            cp.size
        );
        assert!(
            e.timestamp <= cp.timestamp,
            "SCT timestamp {} after checkpoint timestamp {}",
            e.timestamp,
            cp.timestamp
        );
    }
    cp
}

fn leaf_index(s: &Submission) -> u64 {
    static_ct_api::Extensions::from_bytes(&s.sct.extensions)
        .expect("leaf_index")
        .leaf_index
}

/// Checks a 4xx-style rejection: the status, and a body of exactly one
/// non-empty line (a trailing newline is allowed).
fn check_rejected(status: u16, body: &[u8], want: u16, what: &str) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    if status != want {
        return Err(format!(
            "{what}: expected {want}, got {status} with body {text:?}"
        ));
    }
    let line = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if line.trim().is_empty() || line.contains('\n') {
        return Err(format!(
            "{what}: {status} body must be one non-empty line, got {text:?}"
        ));
    }
    Ok(())
}

/// Asserts [`check_rejected`].
fn assert_rejected(status: u16, body: &[u8], want: u16, what: &str) {
    if let Err(e) = check_rejected(status, body, want, what) {
        panic!("{e}");
    }
}

/// GET get-roots and check it lists exactly `roots` (as a set).
async fn assert_get_roots(http: &reqwest::Client, base: &str, log: &LogHandle, roots: &[&[u8]]) {
    let r = get(http, &submission_url(base, log, "ct/v1/get-roots")).await;
    assert_eq!(r.status, 200, "get-roots: {}", r.text());
    assert!(
        r.header("content-type")
            .to_ascii_lowercase()
            .starts_with("application/json"),
        "get-roots Content-Type {:?}",
        r.header("content-type")
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("get-roots JSON");
    let got: BTreeSet<Vec<u8>> = v["certificates"]
        .as_array()
        .expect("certificates array")
        .iter()
        .map(|c| {
            BASE64_STANDARD
                .decode(c.as_str().expect("string"))
                .expect("base64")
        })
        .collect();
    let want: BTreeSet<Vec<u8>> = roots.iter().map(|r| r.to_vec()).collect();
    assert_eq!(got, want, "get-roots certificates");
}

/// 1. Hundreds of entries (final certs and precerts, chains with and without
/// the root) submitted concurrently over several rounds; every SCT verified;
/// the whole tree verified through the read path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_many_entries() {
    many_entries(None).await;
}

/// 1b. The same on S3-compatible storage (a real SeaweedFS).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_many_entries_on_s3() {
    let Some(weed) = ct_testkit::Weed::start().await else {
        return;
    };
    many_entries(Some(ct_testkit::server::s3_storage(&weed, "many"))).await;
}

async fn many_entries(storage: Option<String>) {
    let pki = TestPki::new("Many");
    let (dir, config, log) = single_log_setup(&pki, 200, storage);
    let server = Server::start(CT_LOG, &config, "server");
    let http = http_client();
    let base = server.base_url.clone();

    assert_get_roots(&http, &base, &log, &[&pki.root_der]).await;

    // An empty log already has a valid checkpoint.
    let cp0 = fetch_checkpoint(&http, &base, &log).await;
    assert_eq!(cp0.size, 0, "fresh log");
    assert_eq!(cp0.root, verify::mth(&[]), "empty tree root");

    const TOTAL: u64 = 640;
    let mut subs: Vec<Submission> = Vec::new();
    let mut last_cp = cp0;
    for wave in [0..200u64, 200..420, 420..TOTAL] {
        let items = make_items(&pki, wave);
        let got = submit_all(&http, &base, &log, items, IN_FLIGHT).await;
        let cp = assert_published(&http, &base, &log, &got).await;
        assert!(
            cp.size >= last_cp.size && cp.timestamp >= last_cp.timestamp,
            "checkpoint went backwards"
        );
        last_cp = cp;
        subs.extend(got);
    }

    let tree = verify_log(&http, &base, &log, &subs).await;
    assert_eq!(
        tree.checkpoint.size, TOTAL,
        "tree size = number of accepted submissions"
    );
    let idx: BTreeSet<u64> = subs.iter().map(leaf_index).collect();
    assert_eq!(
        idx,
        (0..TOTAL).collect(),
        "leaf indexes are exactly 0..{TOTAL}"
    );
    tree.assert_extends(&last_cp);

    // Checkpoints keep being signed and never go backwards.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = fetch_checkpoint(&http, &base, &log).await;
    assert_eq!(later.size, TOTAL);
    assert_eq!(later.root, tree.checkpoint.root);
    assert!(
        later.timestamp >= tree.checkpoint.timestamp,
        "checkpoint timestamp went backwards"
    );
    drop(server);
    drop(dir);
}

/// 2. Entries survive a SIGKILL: indexes continue after a restart (no reuse,
/// no gap), earlier SCTs stay at their index, the tree only grows; also with
/// submissions in flight at the time of the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_continues_tree() {
    restart_continues(None).await;
}

/// 2b. The same on S3-compatible storage (a real SeaweedFS).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_continues_tree_on_s3() {
    let Some(weed) = ct_testkit::Weed::start().await else {
        return;
    };
    restart_continues(Some(ct_testkit::server::s3_storage(&weed, "restart"))).await;
}

async fn restart_continues(storage: Option<String>) {
    let pki = TestPki::new("Restart");
    let (dir, config, log) = single_log_setup(&pki, 150, storage);
    let http = http_client();

    // Phase A: 300 entries, all confirmed, then SIGKILL.
    let mut server = Server::start(CT_LOG, &config, "server-1");
    let subs_a = submit_all(
        &http,
        &server.base_url,
        &log,
        make_items(&pki, 0..300),
        IN_FLIGHT,
    )
    .await;
    let tree_a = verify_log(&http, &server.base_url, &log, &subs_a).await;
    assert_eq!(tree_a.checkpoint.size, 300);
    server.kill();

    // Phase B: restart; the same tree is served; more entries; then kill
    // while 120 submissions are in flight.
    let mut server = Server::start(CT_LOG, &config, "server-2");
    let again = verify_log(&http, &server.base_url, &log, &subs_a).await;
    assert_eq!(
        again.checkpoint.size, 300,
        "after a restart with no new submissions the tree has the same size"
    );
    again.assert_extends(&tree_a.checkpoint);
    assert!(
        again.entries == tree_a.entries,
        "entries changed across a restart"
    );

    let subs_b = submit_all(
        &http,
        &server.base_url,
        &log,
        make_items(&pki, 300..450),
        IN_FLIGHT,
    )
    .await;
    for s in &subs_b {
        let i = leaf_index(s);
        assert!(
            (300..450).contains(&i),
            "index {i} after restart: expected to continue at 300 (no reuse, no gap)"
        );
    }
    let tree_b = verify_log(
        &http,
        &server.base_url,
        &log,
        &[subs_a.clone(), subs_b.clone()].concat(),
    )
    .await;
    assert_eq!(tree_b.checkpoint.size, 450);
    tree_b.assert_extends(&tree_a.checkpoint);
    // Size 300's partial tiles (tile/0/001.p/44, tile/1/000.p/1, data) survive
    // the restart and later growth unchanged.
    verify::assert_partial_tiles_kept(&http, &server.base_url, &log, &tree_a, 450).await;

    let base_b = server.base_url.clone();
    let log_b = log.clone();
    let http_b = http.clone();
    let items_c = make_items(&pki, 450..570);
    let leaves_c: Vec<Vec<u8>> = items_c.iter().map(|(c, _)| c[0].clone()).collect();
    let inflight =
        tokio::spawn(
            async move { submit_all_results(&http_b, &base_b, &log_b, items_c, 24).await },
        );
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.kill();
    let results_c = tokio::time::timeout(Duration::from_secs(90), inflight)
        .await
        .expect("in-flight submissions did not finish after the kill")
        .unwrap();
    let subs_c: Vec<Submission> = results_c.into_iter().filter_map(Result::ok).collect();
    eprintln!(
        "{} of 120 in-flight submissions got an SCT before the kill",
        subs_c.len()
    );

    // Phase C: restart again, submit more, verify everything.
    let server = Server::start(CT_LOG, &config, "server-3");
    let cp_restart = fetch_checkpoint(&http, &server.base_url, &log).await;
    assert!(
        cp_restart.size >= 450 + subs_c.len() as u64,
        "restart lost published entries: size {}",
        cp_restart.size
    );
    assert!(
        cp_restart.timestamp >= tree_b.checkpoint.timestamp,
        "checkpoint timestamp went backwards across a restart"
    );
    let subs_d = submit_all(
        &http,
        &server.base_url,
        &log,
        make_items(&pki, 570..700),
        IN_FLIGHT,
    )
    .await;
    for s in &subs_d {
        let i = leaf_index(s);
        assert!(
            i >= cp_restart.size,
            "index {i} reused after restart (tree size at restart {})",
            cp_restart.size
        );
    }
    let all: Vec<Submission> = [subs_a, subs_b, subs_c, subs_d].concat();
    let tree = verify_log(&http, &server.base_url, &log, &all).await;
    tree.assert_extends(&tree_b.checkpoint);
    tree.assert_extends(&cp_restart);
    // No gap: every entry is one of ours, each leaf at most once, and every
    // index is either an SCT'd submission or one in flight during the kill.
    let submitted: BTreeSet<Vec<u8>> = all
        .iter()
        .map(|s| s.chain[0].clone())
        .chain(leaves_c.iter().cloned())
        .collect();
    let mut seen = BTreeSet::new();
    let sct_index: BTreeSet<u64> = all.iter().map(leaf_index).collect();
    for e in &tree.entries {
        let leaf = if e.is_precert {
            e.pre_certificate.clone()
        } else {
            e.certificate.clone()
        };
        assert!(
            submitted.contains(&leaf),
            "entry {} holds a certificate nobody submitted",
            e.leaf_index
        );
        assert!(
            seen.insert(leaf),
            "entry {} duplicates an earlier entry",
            e.leaf_index
        );
        if !sct_index.contains(&e.leaf_index) {
            assert!(
                leaves_c.contains(&if e.is_precert {
                    e.pre_certificate.clone()
                } else {
                    e.certificate.clone()
                }),
                "entry {} has no SCT and was not in flight during the kill",
                e.leaf_index
            );
        }
    }
    assert_eq!(tree.checkpoint.size, tree.entries.len() as u64);
    assert!(tree.checkpoint.size >= 450 + 130, "tree lost entries");
    drop(server);
    drop(dir);
}

/// Location of the read-only third-party vectors, if present.
fn vectors_dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors"));
    p.join("mmd_monitor_root.crt")
        .exists()
        .then(|| p.canonicalize().unwrap())
}

/// 3. The real requests of Google's Merge Delay Monitor (intermediate expired
/// in 2019) are accepted by the right endpoints and refused by the wrong ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mmd_monitor_submissions() {
    let Some(vectors) = vectors_dir() else {
        eprintln!(
            "SKIPPED: real_mmd_monitor_submissions: {}/../../shared/vectors not found",
            env!("CARGO_MANIFEST_DIR")
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut spec = LogSpec::new(
        "mmd",
        "http://ct.test/mmd",
        "http://ct.test/mmd",
        vectors.join("mmd_monitor_root.crt"),
        "2025-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
    );
    // The window holds the real chains' NotAfter (2025), so it is fixed and
    // has passed: a century of grace keeps the log writable.
    spec.sunset_grace_days = 36_500;
    spec.period_ms = 150;
    let config = ct_testkit::server::write_config(dir.path(), &[&spec]);
    let log = spec.handle(dir.path());
    let server = Server::start(CT_LOG, &config, "server");
    let http = http_client();
    let base = server.base_url.clone();

    let chain_of = |body: &[u8]| -> Vec<Vec<u8>> {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| BASE64_STANDARD.decode(c.as_str().unwrap()).unwrap())
            .collect()
    };
    let final_body = std::fs::read(vectors.join("add-chain.json")).unwrap();
    let pre_body = std::fs::read(vectors.join("add-pre-chain.json")).unwrap();

    // Wrong endpoints first: nothing may be logged by them.
    let r = post(
        &http,
        &submission_url(&base, &log, "ct/v1/add-pre-chain"),
        final_body.clone(),
    )
    .await;
    assert_rejected(r.status, &r.body, 400, "final MMD chain to add-pre-chain");
    let r = post(
        &http,
        &submission_url(&base, &log, "ct/v1/add-chain"),
        pre_body.clone(),
    )
    .await;
    assert_rejected(r.status, &r.body, 400, "MMD precert chain to add-chain");

    let mut subs = Vec::new();
    for (body, precert) in [(&final_body, false), (&pre_body, true)] {
        let r = post(
            &http,
            &submission_url(&base, &log, add_endpoint(precert)),
            body.clone(),
        )
        .await;
        assert_eq!(
            r.status,
            200,
            "MMD {} submission: {}",
            add_endpoint(precert),
            r.text()
        );
        let sct = client::parse_sct(&r.body).unwrap();
        subs.push(Submission {
            chain: chain_of(body),
            precert,
            sct,
        });
    }
    let tree = verify_log(&http, &base, &log, &subs).await;
    assert_eq!(
        tree.checkpoint.size, 2,
        "only the two right-endpoint submissions are logged"
    );
    drop(server);
    drop(dir);
}

/// 5. Two logs in one process (one with a monitoring prefix different from
/// its submission prefix, a trailing slash, and a SEC1 key) are independent:
/// own roots, keys, origins, trees.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_logs_are_independent() {
    let pki_a = TestPki::new("Alpha");
    let pki_b = TestPki::new("Beta");
    let dir = tempfile::tempdir().unwrap();
    write_roots(dir.path(), "roots-a.pem", &[&pki_a]);
    write_roots(dir.path(), "roots-b.pem", &[&pki_b]);
    let spec_a = LogSpec::new(
        "alpha",
        "http://ct.test/alpha/",
        "http://ct.test/alpha/",
        "roots-a.pem",
        &START,
        &LIMIT,
    );
    let mut spec_b = LogSpec::new(
        "beta",
        "http://ct.test/sub2",
        "http://ct.test/mon2",
        "roots-b.pem",
        &START,
        &LIMIT,
    );
    spec_b.key_format = KeyFormat::Sec1;
    spec_b.period_ms = 100;
    let config = ct_testkit::server::write_config(dir.path(), &[&spec_a, &spec_b]);
    let (log_a, log_b) = (spec_a.handle(dir.path()), spec_b.handle(dir.path()));
    assert_eq!(log_a.origin, "ct.test/alpha");
    assert_eq!(
        (
            log_b.origin.as_str(),
            log_b.submission_path.as_str(),
            log_b.monitoring_path.as_str()
        ),
        ("ct.test/sub2", "/sub2", "/mon2")
    );
    let server = Server::start(CT_LOG, &config, "server");
    let http = http_client();
    let base = server.base_url.clone();

    assert_get_roots(&http, &base, &log_a, &[&pki_a.root_der]).await;
    assert_get_roots(&http, &base, &log_b, &[&pki_b.root_der]).await;

    // Cross submissions are refused (each log has its own roots).
    let cross = make_items(&pki_a, 1000..1001).remove(0);
    let r = post(
        &http,
        &submission_url(&base, &log_b, add_endpoint(cross.1)),
        chain_body(&cross.0),
    )
    .await;
    assert_rejected(r.status, &r.body, 400, "Alpha chain to the Beta log");

    let (subs_a, subs_b) = tokio::join!(
        submit_all(&http, &base, &log_a, make_items(&pki_a, 0..20), 16),
        submit_all(&http, &base, &log_b, make_items(&pki_b, 0..33), 16)
    );
    let tree_a = verify_log(&http, &base, &log_a, &subs_a).await;
    let tree_b = verify_log(&http, &base, &log_b, &subs_b).await;
    assert_eq!(tree_a.checkpoint.size, 20);
    assert_eq!(tree_b.checkpoint.size, 33);
    assert_ne!(log_a.log_id, log_b.log_id);
    drop(server);
    drop(dir);
}
