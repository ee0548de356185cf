//! The RFC 6962 read API of the real `ct-log` binary, checked like a
//! monitor would, with implementations the project did not write:
//! `tlog_tiles` (Go's tlog, ported by Cloudflare) verifies every Merkle
//! proof, `static_ct_api` rebuilds every entry from the submitted chains,
//! and the STH signature is checked with `p256` over bytes built here.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use base64::prelude::*;
use common::CT_LOG;
use ct_testkit::client::{get, http_client, submission_url, submit_all, Resp, Submission};
use ct_testkit::pki::TestPki;
use ct_testkit::server::{LogHandle, LogSpec, Server};
use ct_testkit::verify::{root_pool, verify_sct, IMMUTABLE};
use ct_testkit::window::{LIMIT, START};
use futures_util::{stream, StreamExt};
use p256::ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256};
use tlog_tiles::{check_record, check_tree, record_hash, stored_hashes, tree_hash, HashReader};

/// Requests in flight when checking many proofs.
const IN_FLIGHT: usize = 16;

/// A log `rfc` trusting `pki`, stored in a local folder.
fn setup(pki: &TestPki, extra: &[&str]) -> (tempfile::TempDir, PathBuf, LogHandle) {
    setup_on(pki, extra, None)
}

/// A log `rfc` trusting `pki`, with `extra` lines in its `[[log]]` table,
/// stored as `storage` says (a config `storage` table; `None` for a folder).
fn setup_on(
    pki: &TestPki,
    extra: &[&str],
    storage: Option<String>,
) -> (tempfile::TempDir, PathBuf, LogHandle) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
    let mut spec = LogSpec::new(
        "rfc",
        "http://ct.test/rfc",
        "http://ct.test/rfc",
        "roots.pem",
        &START,
        &LIMIT,
    );
    spec.period_ms = 100;
    spec.storage = storage;
    spec.extra = extra.iter().map(|line| line.to_string()).collect();
    let config = ct_testkit::server::write_config(dir.path(), &[&spec]);
    let handle = spec.handle(dir.path());
    (dir, config, handle)
}

/// An RFC 6962 client of one log.
struct Monitor {
    http: reqwest::Client,
    base: String,
    log: LogHandle,
}

/// A signed tree head, its signature verified.
#[derive(Clone, Copy, Debug)]
struct Sth {
    size: u64,
    timestamp: u64,
    root: [u8; 32],
}

fn b64(value: &serde_json::Value) -> Vec<u8> {
    BASE64_STANDARD
        .decode(value.as_str().expect("a base64 string"))
        .expect("base64")
}

fn hashes(value: &serde_json::Value) -> Vec<tlog_tiles::Hash> {
    value
        .as_array()
        .expect("an array of hashes")
        .iter()
        .map(|h| tlog_tiles::Hash(b64(h).try_into().expect("32-byte hash")))
        .collect()
}

impl Monitor {
    async fn get(&self, endpoint: &str) -> Resp {
        get(
            &self.http,
            &submission_url(&self.base, &self.log, &format!("ct/v1/{endpoint}")),
        )
        .await
    }

    /// GETs `endpoint`, which must answer 200 with JSON.
    async fn json(&self, endpoint: &str) -> (serde_json::Value, Resp) {
        let r = self.get(endpoint).await;
        assert_eq!(r.status, 200, "{endpoint}: {}", r.text());
        assert_eq!(r.header("content-type"), "application/json", "{endpoint}");
        let value = serde_json::from_slice(&r.body).expect("JSON");
        (value, r)
    }

    /// get-sth, with its TreeHeadSignature checked over the RFC 6962 §3.5
    /// input built here.
    async fn sth(&self) -> Sth {
        let (v, r) = self.json("get-sth").await;
        assert_eq!(r.header("cache-control"), "no-store");
        let sth = Sth {
            size: v["tree_size"].as_u64().expect("tree_size"),
            timestamp: v["timestamp"].as_u64().expect("timestamp"),
            root: b64(&v["sha256_root_hash"]).try_into().expect("32 bytes"),
        };
        let mut input = vec![0u8, 1];
        input.extend(sth.timestamp.to_be_bytes());
        input.extend(sth.size.to_be_bytes());
        input.extend(sth.root);
        let sig = b64(&v["tree_head_signature"]);
        assert_eq!(sig[..2], [4, 3], "DigitallySigned: SHA-256, ECDSA");
        assert_eq!(
            usize::from(u16::from_be_bytes([sig[2], sig[3]])),
            sig.len() - 4
        );
        let der = p256::ecdsa::Signature::from_der(&sig[4..]).expect("DER ECDSA");
        self.log
            .verifying_key
            .verify(&input, &der)
            .expect("tree_head_signature verifies");
        sth
    }

    /// get-proof-by-hash of the entry with `leaf_input` in the tree of
    /// `size`: its index and audit path, or None on a 404.
    async fn proof_by_hash(
        &self,
        leaf_input: &[u8],
        size: u64,
    ) -> Option<(u64, Vec<tlog_tiles::Hash>)> {
        // Standard base64 with '+' and '/' escaped, as careful clients send it.
        let hash = BASE64_STANDARD
            .encode(record_hash(leaf_input).0)
            .replace('+', "%2B")
            .replace('/', "%2F");
        let q = format!("get-proof-by-hash?hash={hash}&tree_size={size}");
        let r = self.get(&q).await;
        if r.status == 404 {
            return None;
        }
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        assert_eq!(r.header("cache-control"), IMMUTABLE, "{q}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        let index = v["leaf_index"].as_u64().expect("leaf_index");
        Some((index, hashes(&v["audit_path"])))
    }

    /// Every entry below `size`, paging through get-entries as monitors do
    /// (asking for all that is left each time). Each answer is at most one
    /// tile's worth and ends at a tile boundary or the tree's end.
    async fn all_entries(&self, size: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries = Vec::new();
        while (entries.len() as u64) < size {
            let start = entries.len() as u64;
            let (v, r) = self
                .json(&format!("get-entries?start={start}&end={}", size + 1000))
                .await;
            let page = v["entries"].as_array().expect("entries");
            let end = start + page.len() as u64;
            assert!(
                !page.is_empty() && page.len() <= 256,
                "{} entries",
                page.len()
            );
            assert!(
                end.is_multiple_of(256) || end == size,
                "page {start}..{end} of {size}"
            );
            let cache = r.header("cache-control");
            assert_eq!(
                cache == IMMUTABLE,
                end.is_multiple_of(256),
                "{start}..{end}: {cache}"
            );
            entries.extend(
                page.iter()
                    .map(|e| (b64(&e["leaf_input"]), b64(&e["extra_data"]))),
            );
        }
        entries
    }
}

/// A u24-length-prefixed vector.
fn u24(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend(bytes);
    out
}

/// What get-entries must answer for each submission, by index: the oracle's
/// MerkleTreeLeaf, and the stored chain (the submitted issuers, plus the
/// root when it was left out) as RFC 6962 §4.6 extra_data.
fn expected_entries(
    log: &LogHandle,
    pki: &TestPki,
    subs: &[Submission],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let pool = root_pool(log);
    let ders: HashMap<[u8; 32], &[u8]> = [&pki.intermediate_der, &pki.root_der]
        .into_iter()
        .map(|der| (Sha256::digest(der).into(), &der[..]))
        .collect();
    let mut entries: Vec<(u64, Vec<u8>, Vec<u8>)> = subs
        .iter()
        .map(|sub| {
            let entry = verify_sct(log, &pool, sub);
            let chain: Vec<u8> = entry
                .chain_fingerprints
                .iter()
                .flat_map(|fp| u24(ders[fp]))
                .collect();
            let mut extra = if entry.is_precert {
                u24(&entry.pre_certificate)
            } else {
                Vec::new()
            };
            extra.extend(u24(&chain));
            (entry.leaf_index, entry.merkle_tree_leaf(), extra)
        })
        .collect();
    entries.sort();
    for (i, (index, ..)) in entries.iter().enumerate() {
        assert_eq!(*index, i as u64, "indexes are consecutive from 0");
    }
    entries.into_iter().map(|(_, l, e)| (l, e)).collect()
}

/// The hashes tlog stores for a tree, built with `tlog_tiles` alone.
struct Stored(Vec<tlog_tiles::Hash>);

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

/// The root of every tree size `0..=leaves.len()`, by `tlog_tiles`.
fn roots_by_size(leaf_inputs: &[&[u8]]) -> Vec<tlog_tiles::Hash> {
    let mut stored = Stored(Vec::new());
    let mut roots = vec![tree_hash(0, &stored).unwrap()];
    for (n, leaf) in leaf_inputs.iter().enumerate() {
        let new = stored_hashes(n as u64, leaf, &stored).unwrap();
        stored.0.extend(new);
        roots.push(tree_hash(n as u64 + 1, &stored).unwrap());
    }
    roots
}

/// Runs `check` on every item, `IN_FLIGHT` at a time.
async fn check_all<T, F: std::future::Future<Output = ()>>(
    items: impl IntoIterator<Item = T>,
    check: impl Fn(T) -> F,
) {
    stream::iter(items)
        .map(check)
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
}

/// Entries submitted in uneven rounds, so that published sizes (and their
/// partial tiles) fall on, before and after tile boundaries, and the tree
/// has a level-1 tile. Returns the submissions and every STH seen.
async fn grow(monitor: &Monitor, pki: &TestPki) -> (Vec<Submission>, Vec<Sth>) {
    let (mut subs, mut sths) = (Vec::new(), vec![monitor.sth().await]);
    let mut next = 0;
    for round in [1u64, 2, 61, 192, 1, 255, 88] {
        let items = pki.mixed_chains(next..next + round, &START, &LIMIT);
        next += round;
        subs.extend(submit_all(&monitor.http, &monitor.base, &monitor.log, items, 48).await);
        // An SCT comes only after its checkpoint is published, but this
        // process may learn of it a period later.
        let mut sth = monitor.sth().await;
        for _ in 0..50 {
            if sth.size == next {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            sth = monitor.sth().await;
        }
        assert_eq!(sth.size, next, "get-sth after {next} entries");
        sths.push(sth);
    }
    (subs, sths)
}

/// Every proof the API gives for a 600-entry tree (consistency between all
/// sizes up to 260, across the first tile boundary, and between random
/// sizes up to 600; inclusion of every leaf at the final size, by index and
/// by leaf hash, and at a size never published) verifies with
/// `tlog_tiles` against roots `tlog_tiles` computed from the entries that
/// get-entries returned, which are byte-identical to the submissions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_proof_verifies_with_tlog_tiles() {
    every_proof(None, 260).await;
}

/// The same on S3-compatible storage (a real SeaweedFS), with consistency
/// between all sizes up to 40 only (besides the random pairs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_proof_on_s3_verifies_with_tlog_tiles() {
    let Some(weed) = ct_testkit::Weed::start().await else {
        return;
    };
    every_proof(Some(ct_testkit::server::s3_storage(&weed, "rfc")), 40).await;
}

/// Grows a log on `storage` and checks its entries and every proof, with
/// consistency proofs between all sizes up to `all_pairs_to`.
async fn every_proof(storage: Option<String>, all_pairs_to: u64) {
    let pki = TestPki::new("Rfc");
    let (_dir, config, log) = setup_on(&pki, &[], storage);
    let server = Server::start(CT_LOG, &config, "server");
    let monitor = Monitor {
        http: http_client(),
        base: server.base_url.clone(),
        log: log.clone(),
    };
    let (subs, sths) = grow(&monitor, &pki).await;
    let size = sths.last().unwrap().size;

    let entries = monitor.all_entries(size).await;
    let want = expected_entries(&log, &pki, &subs);
    assert_eq!(entries.len(), want.len());
    for (i, (got, want)) in entries.iter().zip(&want).enumerate() {
        assert!(got == want, "entry {i} differs from the submission");
    }
    let leaf_inputs: Vec<&[u8]> = entries.iter().map(|(l, _)| &l[..]).collect();
    let roots = roots_by_size(&leaf_inputs);
    for sth in &sths {
        assert_eq!(
            roots[sth.size as usize].0, sth.root,
            "root at size {}",
            sth.size
        );
    }

    let pairs =
        (1..=all_pairs_to).flat_map(|second| (1..=second).map(move |first| (first, second)));
    let random = (0..300u64).map(|i| {
        let second = 1 + (i * 7919 + 13) % size;
        (1 + (i * 104_729) % second, second)
    });
    check_all(pairs.chain(random), |(first, second)| {
        let (monitor, roots) = (&monitor, &roots);
        async move {
            let q = format!("get-sth-consistency?first={first}&second={second}");
            let (v, r) = monitor.json(&q).await;
            assert_eq!(r.header("cache-control"), IMMUTABLE, "{q}");
            let proof = hashes(&v["consistency"]);
            let (old, new) = (roots[first as usize], roots[second as usize]);
            check_tree(&proof, second, new, first, old).unwrap_or_else(|e| panic!("{q}: {e:?}"));
        }
    })
    .await;

    // 555 was never a published size: its proofs come from wider tiles.
    let leaves = [size, 555]
        .into_iter()
        .flat_map(|tree| (0..tree).map(move |index| (index, tree)));
    check_all(leaves, |(index, tree)| {
        let (monitor, roots, entries) = (&monitor, &roots, &entries);
        async move {
            let q = format!("get-entry-and-proof?leaf_index={index}&tree_size={tree}");
            let (v, _) = monitor.json(&q).await;
            let (leaf_input, extra_data) = &entries[index as usize];
            assert_eq!(&b64(&v["leaf_input"]), leaf_input, "{q}");
            assert_eq!(&b64(&v["extra_data"]), extra_data, "{q}");
            let proof = hashes(&v["audit_path"]);
            check_record(
                &proof,
                tree,
                roots[tree as usize],
                index,
                record_hash(leaf_input),
            )
            .unwrap_or_else(|e| panic!("{q}: {e:?}"));
        }
    })
    .await;

    // The same proofs by leaf hash, once the batchers have recorded them.
    let newest = &entries[size as usize - 1].0;
    for _ in 0..100 {
        if monitor.proof_by_hash(newest, size).await.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    check_all(0..size, |index| {
        let (monitor, roots, entries) = (&monitor, &roots, &entries);
        async move {
            let leaf_input = &entries[index as usize].0;
            let what = format!("get-proof-by-hash of entry {index}");
            let (got, proof) = monitor
                .proof_by_hash(leaf_input, size)
                .await
                .unwrap_or_else(|| panic!("{what}: 404"));
            assert_eq!(got, index, "{what}");
            let (root, hash) = (roots[size as usize], record_hash(leaf_input));
            check_record(&proof, size, root, index, hash)
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        }
    })
    .await;
    drop(server);
}

/// Bad parameters, start > end, sizes and indexes beyond the tree and
/// huge ranges: each gets a 400 with one line, and is not cached; a huge
/// but valid range gets one tile's worth at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_one_line_4xx() {
    let pki = TestPki::new("Bad");
    let (_dir, config, log) = setup(&pki, &[]);
    let server = Server::start(CT_LOG, &config, "server");
    let monitor = Monitor {
        http: http_client(),
        base: server.base_url.clone(),
        log,
    };
    let items = pki.mixed_chains(0..3, &START, &LIMIT);
    submit_all(&monitor.http, &monitor.base, &monitor.log, items, 3).await;
    while monitor.sth().await.size < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let too_big = "18446744073709551616";
    let bad = [
        "get-sth-consistency",
        "get-sth-consistency?first=1",
        "get-sth-consistency?first=x&second=2",
        "get-sth-consistency?first=-1&second=2",
        "get-sth-consistency?first=0&second=2",
        "get-sth-consistency?first=3&second=2",
        "get-sth-consistency?first=1&second=4",
        &format!("get-sth-consistency?first=1&second={too_big}"),
        "get-sth-consistency?first=1&second=18446744073709551615",
        "get-entries?end=2",
        "get-entries?start=2",
        "get-entries?start=2&end=1",
        "get-entries?start=3&end=3",
        "get-entries?start=18446744073709551615&end=18446744073709551615",
        "get-entries?start=0x1&end=2",
        "get-entries?start=1.0&end=2",
        &format!("get-entries?start=0&end={too_big}"),
        "get-entry-and-proof?leaf_index=0",
        "get-entry-and-proof?leaf_index=3&tree_size=3",
        "get-entry-and-proof?leaf_index=0&tree_size=0",
        "get-entry-and-proof?leaf_index=0&tree_size=4",
        "get-entry-and-proof?leaf_index=%ff&tree_size=1",
        "get-proof-by-hash?tree_size=1",
        &format!("get-proof-by-hash?hash={}", BASE64_STANDARD.encode([0; 32])),
        "get-proof-by-hash?hash=not-base64!&tree_size=1",
        &format!(
            "get-proof-by-hash?hash={}&tree_size=1",
            BASE64_STANDARD.encode([0; 31])
        ),
        &format!(
            "get-proof-by-hash?hash={}&tree_size=4",
            BASE64_STANDARD.encode([0; 32])
        ),
    ];
    for endpoint in bad {
        let r = monitor.get(endpoint).await;
        let text = r.text();
        assert_eq!(r.status, 400, "{endpoint}: {text}");
        let line = text.strip_suffix('\n').unwrap_or(&text);
        assert!(
            !line.is_empty() && !line.contains('\n'),
            "{endpoint}: {text:?}"
        );
        assert_eq!(r.header("cache-control"), "no-store", "{endpoint}");
    }
    let (v, r) = monitor
        .json("get-entries?start=0&end=18446744073709551615")
        .await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 3);
    assert_eq!(r.header("cache-control"), "public, max-age=1");
    let (v, r) = monitor.json("get-entries?start=1&end=1").await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(r.header("cache-control"), IMMUTABLE, "a final answer");
    let (v, _) = monitor.json("get-sth-consistency?first=3&second=3").await;
    assert_eq!(v["consistency"], serde_json::json!([]));
    // A hash the log does not hold, and one it holds beyond the tree asked
    // about, are not found (404, one line, not cached).
    let (v, _) = monitor.json("get-entries?start=2&end=2").await;
    let third = b64(&v["entries"][0]["leaf_input"]);
    while monitor.proof_by_hash(&third, 3).await.is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let unknown = BASE64_STANDARD.encode([7; 32]);
    let third = BASE64_STANDARD
        .encode(record_hash(&third).0)
        .replace('+', "%2B")
        .replace('/', "%2F");
    // '+' sent unescaped reads as a space; the log reads it as the '+'.
    let raw_plus = BASE64_STANDARD.encode([0xfb; 32]);
    assert!(raw_plus.contains('+'));
    for endpoint in [
        format!("get-proof-by-hash?hash={unknown}&tree_size=3"),
        format!("get-proof-by-hash?hash={raw_plus}&tree_size=3"),
        format!("get-proof-by-hash?hash={third}&tree_size=2"),
    ] {
        let r = monitor.get(&endpoint).await;
        assert_eq!(r.status, 404, "{endpoint}: {}", r.text());
        assert_eq!(r.text().lines().count(), 1, "{endpoint}");
        assert_eq!(r.header("cache-control"), "no-store", "{endpoint}");
    }
    let post = monitor
        .http
        .post(submission_url(&monitor.base, &monitor.log, "ct/v1/get-sth"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    drop(server);
}

/// The certspotter binary (`$CERTSPOTTER_BIN`, else on PATH), or None
/// after saying SKIPPED; under CI, where every test must really run, its
/// absence fails the test. `scripts/certspotter.sh` installs it.
fn certspotter() -> Option<PathBuf> {
    let from_env = std::env::var_os("CERTSPOTTER_BIN").map(PathBuf::from);
    let on_path = || {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join("certspotter"))
            .find(|candidate| candidate.is_file())
    };
    if let Some(bin) = from_env.filter(|b| b.is_file()).or_else(on_path) {
        return Some(bin);
    }
    ct_testkit::missing(
        "certspotter not found: set CERTSPOTTER_BIN=$(scripts/certspotter.sh | tail -n 1)",
    );
    None
}

/// certspotter 0.16 (an RFC 6962-only monitor) watching `.e2e.test` in one
/// log. It checks each pass's get-sth signature and rebuilds the tree from
/// get-entries up to every STH it saw, failing on any mismatch. A pass runs
/// only every 5 minutes, so the test runs one pass per process, keeping
/// its state directory between them, as a restarted daemon would.
struct Spotter {
    bin: PathBuf,
    dir: PathBuf,
    passes: usize,
}

/// What one pass reported: each watched DNS name with its entry's index.
type Found = Vec<(String, u64)>;

impl Spotter {
    /// Writes the log list (from the log's own log.v3.json) and watchlist.
    async fn new(bin: PathBuf, dir: PathBuf, monitor: &Monitor) -> Spotter {
        let meta = get(
            &monitor.http,
            &submission_url(&monitor.base, &monitor.log, "log.v3.json"),
        )
        .await;
        let meta: serde_json::Value = serde_json::from_slice(&meta.body).unwrap();
        // The log's `url` (its RFC 6962 API), on this test's listener.
        let url = meta["url"].as_str().unwrap().replace(
            &monitor.log.origin,
            &format!("{}{}", &monitor.base[7..], monitor.log.submission_path),
        );
        let list = serde_json::json!({"version": "1", "operators": [{
            "name": "test", "email": ["test@example.org"],
            "logs": [{"description": "ct-log under test", "log_id": meta["log_id"],
                      "key": meta["key"], "url": url, "mmd": 86400,
                      "state": {"usable": {"timestamp": "2026-01-01T00:00:00Z"}}}]}]});
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("logs.json"), list.to_string()).unwrap();
        std::fs::write(dir.join("watchlist"), ".e2e.test\n").unwrap();
        Spotter {
            bin,
            dir,
            passes: 0,
        }
    }

    /// The command line of one pass; `start_at_end` skips what the log
    /// already holds (certspotter then rebuilds the tree's edge with
    /// get-entries and get-proof-by-hash).
    fn command(&self, state: &str, start_at_end: bool) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.arg("-logs")
            .arg(self.dir.join("logs.json"))
            .arg("-watchlist")
            .arg(self.dir.join("watchlist"))
            .arg("-state_dir")
            .arg(self.dir.join(state))
            .args(["-stdout", "-verbose"])
            .env("HOME", &self.dir);
        if start_at_end {
            cmd.arg("-start_at_end");
        }
        cmd
    }

    /// Runs one monitoring pass with the state in `state`; returns what it
    /// reported. Fails on any error certspotter records.
    async fn pass(&mut self, state: &str, start_at_end: bool) -> Found {
        self.passes += 1;
        let out = self.dir.join(format!("pass-{}.out", self.passes));
        let err = self.dir.join(format!("pass-{}.err", self.passes));
        let mut child = self
            .command(state, start_at_end)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("run certspotter");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let log = loop {
            let log = std::fs::read_to_string(&err).unwrap_or_default();
            if log.contains("saving state in defer") || std::time::Instant::now() > deadline {
                break log;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("certspotter exited with {status}:\n{log}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            log.contains("saving state in defer"),
            "pass {} never ended:\n{log}",
            self.passes
        );
        let errors: Vec<&str> = log
            .lines()
            .filter(|line| line.to_ascii_lowercase().contains("error"))
            .collect();
        assert!(
            errors.is_empty(),
            "certspotter pass {}:\n{log}",
            self.passes
        );
        parse_found(&std::fs::read_to_string(&out).unwrap())
    }
}

/// The `DNS Name = …` lines of each certspotter report, with the report's
/// `Log Entry = <index> @ <url>`.
fn parse_found(stdout: &str) -> Found {
    let (mut found, mut names) = (Vec::new(), Vec::new());
    for line in stdout.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("DNS Name = ") {
            names.push(name.to_string());
        } else if let Some(entry) = line.strip_prefix("Log Entry = ") {
            let index: u64 = entry.split(' ').next().unwrap().parse().unwrap();
            found.extend(names.drain(..).map(|name| (name, index)));
        }
    }
    found
}

/// The DNS name of each submission's leaf (`TestPki` names leaf `serial`
/// `leaf-<serial>.<pki>.e2e.test`; serials here are positions), with its
/// SCT's index.
fn submitted_names(pki: &str, subs: &[Submission]) -> Vec<(String, u64)> {
    let mut names: Vec<(String, u64)> = subs
        .iter()
        .enumerate()
        .map(|(serial, sub)| {
            let name = format!("leaf-{serial}.{pki}.e2e.test");
            (name, ct_testkit::client::leaf_index(sub))
        })
        .collect();
    names.sort();
    names
}

/// certspotter follows a live log from size 0 while CAs keep submitting,
/// and reports every watched certificate and precertificate once, at its
/// index, with no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certspotter_follows_a_live_log() {
    let Some(bin) = certspotter() else {
        return;
    };
    let pki = TestPki::new("Spotter");
    let (dir, config, log) = setup(&pki, &[]);
    let server = Server::start(CT_LOG, &config, "server");
    let monitor = Monitor {
        http: http_client(),
        base: server.base_url.clone(),
        log: log.clone(),
    };
    let mut spotter = Spotter::new(bin, dir.path().join("certspotter"), &monitor).await;
    assert!(
        spotter.pass("state", false).await.is_empty(),
        "an empty log"
    );

    // Submissions go on in the background, over many rounds and past a
    // tile boundary, while certspotter passes follow.
    let ca = {
        let (http, base, log) = (monitor.http.clone(), monitor.base.clone(), log.clone());
        let batches: Vec<_> = (0..10u64)
            .map(|b| pki.mixed_chains(b * 30..b * 30 + 30, &START, &LIMIT))
            .collect();
        tokio::spawn(async move {
            let mut subs = Vec::new();
            for items in batches {
                subs.extend(submit_all(&http, &base, &log, items, 30).await);
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            }
            subs
        })
    };
    let mut found = Found::new();
    while !ca.is_finished() {
        found.extend(spotter.pass("state", false).await);
    }
    let want = submitted_names("spotter", &ca.await.unwrap());
    for _ in 0..20 {
        if found.len() >= want.len() {
            break;
        }
        found.extend(spotter.pass("state", false).await);
    }
    found.sort();
    assert_eq!(found, want, "what certspotter reported");
    assert!(
        spotter.passes > 3,
        "certspotter followed the log in {} passes",
        spotter.passes
    );

    // A monitor starting at the end rebuilds the tree's right edge from the
    // newest entry and its get-proof-by-hash audit path (once the newest
    // leaf hash is indexed, just after its round), then follows from there.
    let size = monitor.sth().await.size;
    let (v, _) = monitor
        .json(&format!("get-entries?start={}&end={}", size - 1, size - 1))
        .await;
    let newest = b64(&v["entries"][0]["leaf_input"]);
    while monitor.proof_by_hash(&newest, size).await.is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(spotter.pass("from-end", true).await.is_empty());
    let items = pki.mixed_chains(1000..1005, &START, &LIMIT);
    let late = submit_all(&monitor.http, &monitor.base, &monitor.log, items, 5).await;
    while monitor.sth().await.size < size + 5 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut found = spotter.pass("from-end", false).await;
    found.sort();
    let mut want: Vec<(String, u64)> = late
        .iter()
        .zip(1000..)
        .map(|(sub, serial)| {
            let index = ct_testkit::client::leaf_index(sub);
            (format!("leaf-{serial}.spotter.e2e.test"), index)
        })
        .collect();
    want.sort();
    assert_eq!(found, want, "certspotter started at the end");
    drop(server);
}

/// Runs `ct-log reindex --config <config> --log rfc [more]`; returns stdout.
fn reindex(config: &std::path::Path, more: &[&str]) -> String {
    let out = std::process::Command::new(CT_LOG)
        .args(["reindex", "--config"])
        .arg(config)
        .args(["--log", "rfc"])
        .args(more)
        .output()
        .expect("run ct-log reindex");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ct-log reindex: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Removes the log's dedup store (an LSM store's directory, the default).
fn lose_the_index(dir: &std::path::Path) {
    let store = dir.join("rfc-dedup.lsm");
    assert!(store.is_dir(), "no dedup store at {}", store.display());
    std::fs::remove_dir_all(store).unwrap();
}

/// A lost leaf-hash index: `ct-log reindex` rebuilds it from the data
/// tiles, from a given entry or from the first, dedup records included; a
/// process starting on a log whose newest entries are not indexed (as
/// after a crash) indexes them again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_rebuilds_a_lost_index() {
    let pki = TestPki::new("Reindex");
    let (dir, config, log) = setup(&pki, &[]);
    let mut server = Server::start(CT_LOG, &config, "server-1");
    let mut monitor = Monitor {
        http: http_client(),
        base: server.base_url.clone(),
        log,
    };
    let items = pki.mixed_chains(0..300, &START, &LIMIT);
    let subs = submit_all(&monitor.http, &monitor.base, &monitor.log, items, 48).await;
    while monitor.sth().await.size < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let entries = monitor.all_entries(300).await;
    let indexed = |monitor: &Monitor, index: usize| {
        let leaf = entries[index].0.clone();
        let monitor = Monitor {
            http: monitor.http.clone(),
            base: monitor.base.clone(),
            log: monitor.log.clone(),
        };
        async move { monitor.proof_by_hash(&leaf, 300).await.is_some() }
    };
    while !indexed(&monitor, 299).await {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.kill();
    lose_the_index(dir.path());

    // From entry 256: the second data tile only.
    assert_eq!(
        reindex(&config, &["--start", "260"]),
        "rfc: indexed 44 entries\n"
    );
    server = Server::start(CT_LOG, &config, "server-2");
    monitor.base = server.base_url.clone();
    assert!(indexed(&monitor, 280).await && !indexed(&monitor, 10).await);
    server.kill();

    // From the first entry; resubmissions find their dedup records again.
    assert_eq!(reindex(&config, &[]), "rfc: indexed 300 entries\n");
    server = Server::start(CT_LOG, &config, "server-3");
    monitor.base = server.base_url.clone();
    assert!(indexed(&monitor, 10).await);
    let again = ct_testkit::client::add(
        &monitor.http,
        &monitor.base,
        &monitor.log,
        &subs[10].chain,
        subs[10].precert,
    )
    .await
    .unwrap();
    assert_eq!(again.sct, subs[10].sct, "a resubmission's SCT");
    server.kill();

    // No reindex: the starting process indexes the newest tiles again.
    lose_the_index(dir.path());
    server = Server::start(CT_LOG, &config, "server-4");
    monitor.base = server.base_url.clone();
    for _ in 0..100 {
        if indexed(&monitor, 0).await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(indexed(&monitor, 0).await && indexed(&monitor, 299).await);
    let stderr = std::fs::read_to_string(server.stderr_path()).unwrap();
    assert!(
        stderr.contains("indexed the newest entries again"),
        "{stderr}"
    );

    // The LSM store serves one process: reindexing a served log is
    // refused in one line, and the server goes on.
    let out = std::process::Command::new(CT_LOG)
        .args(["reindex", "--config"])
        .arg(&config)
        .output()
        .expect("run ct-log reindex");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(!out.status.success(), "reindex beside a server: {stderr}");
    assert!(last.contains("open in another process"), "{last}");
    assert!(indexed(&monitor, 299).await);
}
