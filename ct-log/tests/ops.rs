//! Operator commands and endpoints against the real binary: `keygen` output
//! serves, `check-config` catches each listed mistake, metrics count,
//! health flips when sequencing stalls, sunset gives 410, SIGHUP adds roots,
//! SIGTERM finishes the round, and the metadata and home pages describe the
//! log.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::prelude::*;
use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{add, add_error_status, get, http_client, monitoring_url, submission_url};
use ct_testkit::pki::{ts, LeafKind, TestPki};
use ct_testkit::server::{write_config, LogSpec, Server};
use ct_testkit::verify::fetch_checkpoint;
use ct_testkit::window::{mid_window, rfc3339, LIMIT, START};
use p256::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

/// Runs `ct-log` with the test S3 server's credentials in its environment.
fn ct_log(args: &[&str]) -> Output {
    Command::new(CT_LOG)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ct_testkit::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", ct_testkit::SECRET_KEY)
        .output()
        .expect("run ct-log")
}
fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A one-log test config in `dir` whose roots are a fresh test PKI's.
fn spec(dir: &Path, name: &str) -> LogSpec {
    spec_with_pki(dir, name).0
}

/// [`spec`], also returning the PKI its roots file trusts.
fn spec_with_pki(dir: &Path, name: &str) -> (LogSpec, TestPki) {
    let pki = TestPki::new(name);
    fs::write(dir.join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = format!("http://ct.test/{name}");
    let spec = LogSpec::new(name, &prefix, &prefix, "roots.pem", &START, &LIMIT);
    (spec, pki)
}

/// A chain (leaf, intermediate) from `pki` whose NotAfter is in the window.
fn chain(pki: &TestPki, serial: u64) -> Vec<Vec<u8>> {
    let leaf = pki.leaf(serial, LeafKind::Final, mid_window());
    vec![leaf, pki.intermediate_der.clone()]
}

/// Polls `check` every 100 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the sample `name{labels…}` in Prometheus text, if present.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches = metric == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test]
async fn keygen_writes_a_private_key_that_serves() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("new.pem");
    let key_arg = key_path.to_str().unwrap();
    let out = ct_log(&["keygen", "--out", key_arg, "--name", "ct.test/ops"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // What it printed matches the key it wrote.
    let key =
        p256::ecdsa::SigningKey::from_pkcs8_pem(&fs::read_to_string(&key_path).unwrap()).unwrap();
    let spki = p256::pkcs8::EncodePublicKey::to_public_key_der(key.verifying_key()).unwrap();
    let log_id = Sha256::digest(spki.as_bytes());
    let printed = stdout(&out);
    assert!(
        printed.contains(&format!(
            "log ID (base64): {}",
            BASE64_STANDARD.encode(log_id)
        )),
        "{printed}"
    );
    assert!(printed.contains("-----BEGIN PUBLIC KEY-----"), "{printed}");
    let key_id = &Sha256::digest([b"ct.test/ops\n\x05".as_slice(), &log_id].concat())[..4];
    let vkey = format!("ct.test/ops+{}+", hex::encode(key_id));
    assert!(printed.contains(&vkey), "verifier key {vkey}… in {printed}");

    // Never overwrites.
    let again = ct_log(&["keygen", "--out", key_arg]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("must not exist"),
        "{again:?}"
    );

    // `serve` loads it: the checkpoint verifies with the printed key.
    let mut log = spec(dir.path(), "ops");
    log.key = key;
    let config = write_config(dir.path(), &[&log]);
    fs::copy(&key_path, dir.path().join("ops.pem")).unwrap();
    let server = Server::start(CT_LOG, &config, "serve");
    let checkpoint =
        fetch_checkpoint(&http_client(), &server.base_url, &log.handle(dir.path())).await;
    assert_eq!(checkpoint.size, 0);
}

#[tokio::test]
async fn check_config_reports_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let log = spec(dir.path(), "chk");
    let config = write_config(dir.path(), &[&log]);
    let good = fs::read_to_string(&config).unwrap();
    let check = |text: &str| {
        let path = dir.path().join("variant.toml");
        fs::write(&path, text).unwrap();
        ct_log(&["check-config", "--config", path.to_str().unwrap()])
    };
    let ok = check(&good);
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout(&ok).starts_with("ok: 1 log(s)"), "{ok:?}");

    fs::write(
        dir.path().join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let second_log =
        good[good.find("[[log]]").unwrap()..].replace("name = \"chk\"", "name = \"chk2\"");
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace("key = \"chk.pem\"", "key = \"missing.pem\""),
            "key ",
        ),
        (
            good.replace("key = \"chk.pem\"", "key = \"garbage.pem\""),
            "key ",
        ),
        (
            good.replace("roots = \"roots.pem\"", "roots = \"garbage.pem\""),
            "roots",
        ),
        (
            good.replace(&*LIMIT, &rfc3339(ts(&START) - time::Duration::days(214))),
            "not_after_start must be before not_after_limit",
        ),
        (
            good.replace(&*LIMIT, &rfc3339(ts(&LIMIT) + time::Duration::days(365))),
            "longer than one year",
        ),
        (
            good.replace("http://ct.test/chk\"", "ct.test/chk\""),
            "must start with http",
        ),
        (format!("{good}\n{second_log}"), "two logs share"),
        (good.replace("period_ms", "perod_ms"), "unknown field"),
        (
            good.replace("path = \"chk-data\"", "path = \"not-a-dir/x\""),
            "storage",
        ),
        (good.replace(&*START, "yesterday"), "RFC 3339"),
    ];
    for (text, want) in cases {
        let out = check(&text);
        assert!(!out.status.success(), "want failure for {want:?}");
        assert!(
            stdout(&out).contains(want),
            "want {want:?} in:\n{}",
            stdout(&out)
        );
    }

    // A key that does not match the existing log.
    let server = Server::start(CT_LOG, &config, "serve");
    fetch_checkpoint(&http_client(), &server.base_url, &log.handle(dir.path())).await;
    drop(server);
    let mut other = spec(dir.path(), "chk");
    other.key = ct_testkit::server::fresh_key("another key");
    let other_config = write_config(dir.path(), &[&other]);
    let out = ct_log(&["check-config", "--config", other_config.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("does not verify with this key"),
        "{}",
        stdout(&out)
    );
}

/// Whichever it finds held first, the log's claim (with a SQLite dedup
/// store) or its LSM dedup store (the default, opened before the claim),
/// a second process refuses to start, in one line that says why.
#[tokio::test]
async fn a_second_process_on_the_same_log_refuses_to_start() {
    let cases = [
        (
            "",
            "another `ct-log` (serve or reindex) is using this log's dedup store",
        ),
        (
            "dedup_engine = \"sqlite\"",
            "another process is already sequencing this log",
        ),
    ];
    for (engine, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        let log = spec(dir.path(), "twice");
        let config = write_config(dir.path(), &[&log]);
        let text = fs::read_to_string(&config).unwrap();
        let at = text.find("\nperiod_ms").expect("a period line");
        fs::write(&config, format!("{}\n{engine}{}", &text[..at], &text[at..])).unwrap();
        let _first = Server::start(CT_LOG, &config, "first");
        let second = Command::new(CT_LOG)
            .args(["serve", "--config", config.to_str().unwrap()])
            .output()
            .expect("run ct-log");
        assert!(!second.status.success());
        let stderr = String::from_utf8_lossy(&second.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.contains(why), "{engine}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_rounds_dedup_and_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pki) = spec_with_pki(dir.path(), "met");
    let config = write_config(dir.path(), &[&log]);
    let server = Server::start(CT_LOG, &config, "serve");
    let (http, handle) = (http_client(), log.handle(dir.path()));
    let good = chain(&pki, 1);
    add(&http, &server.base_url, &handle, &good, false)
        .await
        .unwrap();
    add(&http, &server.base_url, &handle, &good, false)
        .await
        .unwrap();
    let garbage = vec![b"not a certificate".to_vec()];
    assert!(add(&http, &server.base_url, &handle, &garbage, false)
        .await
        .is_err());
    let text = get(&http, &format!("{}/metrics", server.base_url))
        .await
        .text();
    let log_label = ("log", "met");
    let expect = |name: &str, labels: &[(&str, &str)], at_least: f64| {
        let value = sample(&text, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"));
        assert!(
            value >= at_least,
            "{name} {labels:?} = {value}, want ≥ {at_least}"
        );
    };
    expect(
        "ct_http_requests_total",
        &[log_label, ("endpoint", "add-chain"), ("status", "200")],
        2.0,
    );
    expect(
        "ct_http_requests_total",
        &[log_label, ("endpoint", "add-chain"), ("status", "400")],
        1.0,
    );
    expect(
        "ct_http_request_seconds_count",
        &[log_label, ("endpoint", "add-chain")],
        3.0,
    );
    expect(
        "ct_rejections_total",
        &[log_label, ("reason", "malformed_certificate")],
        1.0,
    );
    expect(
        "ct_dedup_hits_total",
        &[log_label, ("layer", "memory")],
        1.0,
    );
    expect("ct_tree_size", &[log_label], 1.0);
    expect("ct_round_entries_count", &[log_label], 1.0);
    expect(
        "ct_round_phase_seconds_count",
        &[log_label, ("phase", "commit")],
        1.0,
    );
    expect("ct_uploads_total", &[log_label, ("kind", "data_tile")], 1.0);
    expect(
        "ct_uploads_total",
        &[log_label, ("kind", "checkpoint")],
        1.0,
    );
    expect("ct_pool_entries", &[log_label], 0.0);
    // Counted through handles registered when the log starts: exported
    // from then on, at 0 until the first refusal.
    for kind in ["submission", "read"] {
        expect("ct_requests_in_flight", &[log_label, ("kind", kind)], 0.0);
        expect(
            "ct_requests_refused_total",
            &[log_label, ("kind", kind)],
            0.0,
        );
    }
    for reason in ["slow_rounds", "overloaded", "busy", "late"] {
        expect(
            "ct_admission_refused_total",
            &[log_label, ("reason", reason)],
            0.0,
        );
    }
    expect("ct_checkpoint_age_seconds", &[log_label], 0.0);
    expect("ct_build_info", &[], 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_when_sequencing_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = spec(dir.path(), "hlth");
    log.period_ms = 100;
    let config = write_config(dir.path(), &[&log]);
    let server = Server::start(CT_LOG, &config, "serve");
    let (http, health) = (http_client(), format!("{}/health", server.base_url));
    let ok = get(&http, &health).await;
    assert_eq!((ok.status, ok.text()), (200, "ok\n".to_string()));
    // Storage becomes unwritable: rounds still commit, but no checkpoint
    // can be published, so the published one ages.
    let data = dir.path().join("hlth-data");
    fs::remove_dir_all(&data).unwrap();
    fs::write(&data, "not a directory").unwrap();
    eventually(Duration::from_secs(15), "health 503", async || {
        get(&http, &health).await.status == 503
    })
    .await;
    assert!(
        get(&http, &health).await.text().contains("hlth"),
        "503 names the stale log"
    );
}

#[tokio::test]
async fn after_sunset_submissions_get_410_and_reads_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, pki) = spec_with_pki(dir.path(), "old");
    log.not_after_start = "2024-01-01T00:00:00Z".into();
    log.not_after_limit = "2025-01-01T00:00:00Z".into();
    log.sunset_grace_days = 7;
    let config = write_config(dir.path(), &[&log]);
    let server = Server::start(CT_LOG, &config, "serve");
    let (http, handle) = (http_client(), log.handle(dir.path()));
    let refused = add(&http, &server.base_url, &handle, &chain(&pki, 1), false)
        .await
        .unwrap_err();
    assert!(
        refused.contains("status 410") && refused.contains("read-only"),
        "{refused}"
    );
    assert_eq!(
        get(
            &http,
            &monitoring_url(&server.base_url, &handle, "checkpoint")
        )
        .await
        .status,
        200
    );
    let metadata = get(
        &http,
        &submission_url(&server.base_url, &handle, "log.v3.json"),
    )
    .await
    .text();
    assert!(metadata.contains("\"state\":\"read-only\""), "{metadata}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_roots_and_never_drops_one() {
    let dir = tempfile::tempdir().unwrap();
    let (log, first) = spec_with_pki(dir.path(), "hup");
    let config = write_config(dir.path(), &[&log]);
    let server = Server::start(CT_LOG, &config, "serve");
    let (http, handle) = (http_client(), log.handle(dir.path()));
    let second = TestPki::new("hup-second");
    assert!(
        add(&http, &server.base_url, &handle, &chain(&second, 1), false)
            .await
            .is_err()
    );

    let roots_count = async || {
        let body = get(
            &http,
            &submission_url(&server.base_url, &handle, "ct/v1/get-roots"),
        )
        .await
        .text();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["certificates"]
            .as_array()
            .unwrap()
            .len()
    };
    let hangup = || {
        assert!(Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .unwrap()
            .success())
    };
    fs::write(
        dir.path().join("roots.pem"),
        format!("{}{}", first.root_pem, second.root_pem),
    )
    .unwrap();
    hangup();
    eventually(Duration::from_secs(10), "second root added", async || {
        roots_count().await == 2
    })
    .await;
    add(&http, &server.base_url, &handle, &chain(&second, 2), false)
        .await
        .unwrap();

    // Removing a root from the file does not remove it from the log.
    fs::write(dir.path().join("roots.pem"), &second.root_pem).unwrap();
    hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(roots_count().await, 2);
    add(&http, &server.base_url, &handle, &chain(&first, 3), false)
        .await
        .unwrap();
    let stored_roots = dir.path().join("hup-data/_roots.pem");
    let stored = fs::read_to_string(&stored_roots).unwrap();
    assert_eq!(
        stored.matches("BEGIN CERTIFICATE").count(),
        2,
        "effective roots kept beside the log"
    );

    // Another process reloading at the same moment stored a set without the
    // first root: this process still accepts it, and stores it back.
    fs::write(&stored_roots, &second.root_pem).unwrap();
    hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(roots_count().await, 2);
    add(&http, &server.base_url, &handle, &chain(&first, 4), false)
        .await
        .unwrap();
    let stored = fs::read_to_string(&stored_roots).unwrap();
    assert_eq!(stored.matches("BEGIN CERTIFICATE").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_answers_waiting_requests_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, pki) = spec_with_pki(dir.path(), "term");
    log.period_ms = 1000;
    let config = write_config(dir.path(), &[&log]);
    let mut server = Server::start_with(CT_LOG, &config, "serve", &["--log-format", "json"]);
    let (http, handle) = (http_client(), log.handle(dir.path()));
    // Wait for a round to pass, so the requests below wait for the next one.
    add(&http, &server.base_url, &handle, &chain(&pki, 0), false)
        .await
        .unwrap();
    let waiting: Vec<_> = (1..=20)
        .map(|serial| {
            let (http, handle, base, chain) = (
                http.clone(),
                handle.clone(),
                server.base_url.clone(),
                chain(&pki, serial),
            );
            tokio::spawn(async move { add(&http, &base, &handle, &chain, false).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap()
        .success());
    for request in waiting {
        request
            .await
            .unwrap()
            .expect("a request in flight at SIGTERM is answered with an SCT");
    }
    assert!(
        server.wait_exit(Duration::from_secs(15)),
        "clean exit after SIGTERM"
    );
    let stderr = fs::read_to_string(server.stderr_path()).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("--log-format json: {e}: {line}"));
    }
}

#[tokio::test]
async fn metadata_and_home_page_describe_each_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, pki) = spec_with_pki(dir.path(), "meta");
    // Markup in the description must come out as text.
    log.extra
        .push(r#"description = "Meta <b>bold</b> & \"quoted\"""#.into());
    let config = write_config(dir.path(), &[&log]);
    let server = Server::start(CT_LOG, &config, "serve");
    let (http, handle) = (http_client(), log.handle(dir.path()));
    let body = get(
        &http,
        &submission_url(&server.base_url, &handle, "log.v3.json"),
    )
    .await
    .text();
    let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata["log_id"], BASE64_STANDARD.encode(handle.log_id));
    let spki = p256::pkcs8::EncodePublicKey::to_public_key_der(log.key.verifying_key()).unwrap();
    assert_eq!(metadata["key"], BASE64_STANDARD.encode(spki.as_bytes()));
    assert_eq!(metadata["submission_url"], "http://ct.test/meta/");
    assert_eq!(metadata["monitoring_url"], "http://ct.test/meta/");
    assert_eq!(metadata["url"], "http://ct.test/meta/", "the RFC 6962 API");
    assert_eq!(metadata["temporal_interval"]["start_inclusive"], *START);
    assert_eq!(metadata["temporal_interval"]["end_exclusive"], *LIMIT);
    assert_eq!(metadata["state"], "accepting");
    assert!(metadata["mmd"].is_u64());

    // One entry, so that the last round has a size.
    add(&http, &server.base_url, &handle, &chain(&pki, 1), false)
        .await
        .unwrap();
    let home_url = format!("{}/", server.base_url);
    let home = get(&http, &home_url).await;
    assert_eq!(home.status, 200);
    assert!(home.header("content-type").starts_with("text/html"));
    let page = home.text();
    assert!(!page.contains("<script"), "no JavaScript");
    assert!(!page.contains("<b>bold</b>"), "markup is escaped:\n{page}");
    for want in [
        r#"href="http://ct.test/meta/checkpoint""#,
        r#"href="http://ct.test/meta/log.v3.json""#,
        r#"href="http://ct.test/meta/ct/v1/get-roots""#,
        r#"href="http://ct.test/meta/ct/v1/get-sth""#,
    ] {
        assert!(page.contains(want), "home page lacks {want:?}:\n{page}");
    }

    // What a reader sees, rendered by a real browser.
    let Some(dom) = ct_testkit::browser::render(&home_url) else {
        return;
    };
    let seen = ct_testkit::browser::visible_text(&dom);
    let pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(
        log.key.verifying_key(),
        p256::pkcs8::LineEnding::LF,
    )
    .unwrap();
    let key_id = &Sha256::digest([b"ct.test/meta\n\x05".as_slice(), &handle.log_id].concat())[..4];
    let verifier_key = format!(
        "ct.test/meta+{}+{}",
        hex::encode(key_id),
        BASE64_STANDARD.encode([&[0x05], spki.as_bytes()].concat())
    );
    for want in [
        format!("Log ID (base64) {}", BASE64_STANDARD.encode(handle.log_id)),
        format!("Log ID (hex) {}", hex::encode(handle.log_id)),
        format!(
            "Public key {}",
            pem.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        format!("Note verifier key {verifier_key}"),
        "Meta <b>bold</b> & \"quoted\"".into(),
        "State accepting".into(),
        "Maximum merge delay (MMD) 60 s".into(),
        format!(
            "Temporal interval (leaf NotAfter) {} (inclusive) to {} (exclusive)",
            *START, *LIMIT
        ),
        "Last round tree size 1, checkpoint age".into(),
        "Read checkpoint · log.v3.json · get-roots Accepted roots 1".into(),
        "RFC 6962 API http://ct.test/meta/ct/v1/".into(),
    ] {
        assert!(
            seen.contains(&want),
            "the browser shows no {want:?}:\n{seen}"
        );
    }
    for link in ["checkpoint", "log.v3.json", "ct/v1/get-roots"] {
        let href = format!(r#"href="http://ct.test/meta/{link}""#);
        assert!(dom.contains(&href), "the rendered page links {href}");
    }
}

/// Serves a log whose lock lives in `lock_table` (a `lock = {…}` table) and
/// checks the tree grows and survives a restart on that lock: the new
/// process outwaits the killed one's lease, then takes over. (Were it to
/// come up as a standby, it would answer 503 meanwhile.)
async fn serve_on_shared_lock(name: &str, lock_table: String) {
    let dir = tempfile::tempdir().unwrap();
    let (log, pki) = spec_with_pki(dir.path(), name);
    let config = write_config(dir.path(), &[&log]);
    let text = fs::read_to_string(&config).unwrap().replace(
        "lock_db = \"lock.db\"",
        &format!("lock = {lock_table}\nlease_ttl_ms = 2000"),
    );
    fs::write(&config, text).unwrap();
    let checked = ct_log(&["check-config", "--config", config.to_str().unwrap()]);
    assert!(checked.status.success(), "{}", stdout(&checked));
    let (http, handle) = (http_client(), log.handle(dir.path()));
    let mut server = Server::start(CT_LOG, &config, "first");
    add(&http, &server.base_url, &handle, &chain(&pki, 1), false)
        .await
        .unwrap();
    server.kill();
    let server = Server::start(CT_LOG, &config, "second");
    let mut second = Err(String::new());
    for _ in 0..40 {
        second = add(&http, &server.base_url, &handle, &chain(&pki, 2), false).await;
        match &second {
            Err(e) if add_error_status(e) == Some(503) => {
                assert!(e.contains("standing by"), "{e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            _ => break,
        }
    }
    let second = second.unwrap();
    assert_eq!(
        second.sct.extensions,
        [0, 0, 5, 0, 0, 0, 0, 1],
        "index 1: the tree continued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_with_a_postgres_lock() {
    let Some(postgres) = ct_testkit::Postgres::start().await else {
        return;
    };
    serve_on_shared_lock(
        "pglock",
        format!("{{ type = \"postgres\", url = \"{}\" }}", postgres.url()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_with_an_s3_lock() {
    let Some(weed) = ct_testkit::Weed::start().await else {
        return;
    };
    let table = format!(
        "{{ type = \"s3\", bucket = \"{}\", endpoint = \"{}\", prefix = \"locks\" }}",
        ct_testkit::BUCKET,
        weed.endpoint
    );
    serve_on_shared_lock("s3lock", table).await;
}
