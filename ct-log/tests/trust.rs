//! What a log promises off the happy path, against the real binary: it is
//! created only on purpose, it never answers from another log's dedup
//! database, and an early SIGHUP does not kill it.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{add, http_client};
use ct_testkit::pki::{LeafKind, TestPki};
use ct_testkit::server::{write_config, LogSpec, Server};
use ct_testkit::window::{mid_window, LIMIT, START};

/// A one-log config in `dir`, with a fresh test PKI as its roots.
fn spec(dir: &Path, name: &str) -> (LogSpec, TestPki) {
    let pki = TestPki::new(name);
    fs::write(dir.join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = format!("http://ct.test/{name}");
    (
        LogSpec::new(name, &prefix, &prefix, "roots.pem", &START, &LIMIT),
        pki,
    )
}

fn ct_log(args: &[&str]) -> Output {
    Command::new(CT_LOG)
        .args(args)
        .output()
        .expect("run ct-log")
}

/// Runs `serve` without `--create-missing` until it exits (it must).
fn serve_refused(config: &Path) -> String {
    let out = ct_log(&["serve", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success(), "serve must refuse");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stderr.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{stderr}");
    last
}

fn chain(pki: &TestPki, serial: u64) -> Vec<Vec<u8>> {
    let not_after = mid_window();
    vec![
        pki.leaf(serial, LeafKind::Final, not_after),
        pki.intermediate_der.clone(),
    ]
}

#[tokio::test]
async fn a_log_is_created_only_on_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = spec(dir.path(), "born");
    let config = write_config(dir.path(), &[&log]);
    let path = config.to_str().unwrap();

    // An empty lock and storage are no log: serve refuses, with one line.
    let refused = serve_refused(&config);
    assert!(refused.contains("this log does not exist"), "{refused}");

    // Nor is storage that holds some log's tiles.
    let stray = dir.path().join("born-data/tile/0/000");
    fs::create_dir_all(stray.parent().unwrap()).unwrap();
    fs::write(&stray, [0u8; 32]).unwrap();
    let out = ct_log(&["create", "--config", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("storage already holds objects under tile/"),
        "{stderr}"
    );
    fs::remove_file(&stray).unwrap();

    let out = ct_log(&["create", "--config", path, "--log", "born"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created log \"born\""));
    let again = ct_log(&["create", "--config", path]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    // Now it exists, serve loads it without being told to create anything.
    let (mut serve, line) = serve_without_creating(&config);
    let _ = serve.kill();
    assert!(line.starts_with("listening on "), "{line:?}");
}

#[tokio::test]
async fn serve_creates_a_log_on_its_inception_day_only() {
    let dir = tempfile::tempdir().unwrap();
    let day = |offset: i64| {
        let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(offset);
        format!("inception = \"{date}\"")
    };
    let (mut log, _) = spec(dir.path(), "dated");
    log.extra.push(day(-1));
    let config = write_config(dir.path(), &[&log]);
    let refused = serve_refused(&config);
    assert!(refused.contains("this log does not exist"), "{refused}");

    log.extra = vec![day(0)];
    let config = write_config(dir.path(), &[&log]);
    let (mut serve, line) = serve_without_creating(&config);
    let _ = serve.kill();
    assert!(line.starts_with("listening on "), "{line:?}");
}

/// `serve` (no `--create-missing`) and its first stdout line.
fn serve_without_creating(config: &Path) -> (std::process::Child, String) {
    let mut serve = Command::new(CT_LOG)
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = first_line(&mut serve);
    (serve, line)
}

/// The first stdout line of `child`.
fn first_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    line
}

/// A log re-created under the same name with a new key, its lock and
/// storage gone but its dedup database left behind: that database's
/// locations name another tree's certificates, so serve refuses it.
#[tokio::test]
async fn a_recreated_log_refuses_the_old_logs_dedup_database() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pki) = spec(dir.path(), "again");
    let config = write_config(dir.path(), &[&log]);
    let server = Server::start(CT_LOG, &config, "first");
    let handle = log.handle(dir.path());
    add(
        &http_client(),
        &server.base_url,
        &handle,
        &chain(&pki, 1),
        false,
    )
    .await
    .unwrap();
    drop(server);
    fs::remove_file(dir.path().join("lock.db")).unwrap();
    fs::remove_dir_all(dir.path().join("again-data")).unwrap();
    assert!(dir.path().join("again-dedup.lsm").exists());

    let (fresh, _) = spec(dir.path(), "again"); // same name, new key
    let config = write_config(dir.path(), &[&fresh]);
    let out = ct_log(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--create-missing",
    ]);
    assert!(!out.status.success(), "serve must refuse the old database");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("again-dedup.lsm") && last.contains("belongs to log"),
        "{last}"
    );
}

/// SIGHUP reloads the roots; sent while the process is still starting (a
/// config management run racing a restart), it must not kill it.
#[tokio::test]
async fn an_early_sighup_does_not_kill_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<LogSpec> = (0..4)
        .map(|i| spec(dir.path(), &format!("hup{i}")).0)
        .collect();
    let config = write_config(dir.path(), &logs.iter().collect::<Vec<_>>());
    let mut serve = Command::new(CT_LOG)
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--create-missing",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = serve.id().to_string();
    let started = Instant::now();
    // From just after exec until long after it listens: bounded.
    std::thread::sleep(Duration::from_millis(15));
    let sender = std::thread::spawn(move || {
        for _ in 0..100 {
            let _ = Command::new("kill").args(["-HUP", &pid]).status();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let line = first_line(&mut serve);
    sender.join().unwrap();
    assert!(
        line.starts_with("listening on "),
        "{line:?} after {:?}",
        started.elapsed()
    );
    assert!(
        serve.try_wait().unwrap().is_none(),
        "still running after the hangups"
    );
    let _ = serve.kill();
}

/// An S3-compatible server that ignores `If-Match` / `If-None-Match` would
/// make every compare-and-swap last-writer-wins: serve refuses it, as the
/// log's storage and as its lock, before creating or sequencing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_that_ignores_conditional_writes_is_refused() {
    let careless = ct_testkit::careless_s3::CarelessS3::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = spec(dir.path(), "careless");
    let s3 = |prefix: &str| {
        format!(
            "{{ type = \"s3\", bucket = \"careless-bucket\", endpoint = \"{}\", prefix = \"{prefix}\" }}",
            careless.endpoint
        )
    };
    log.storage = Some(s3("log"));
    let config = write_config(dir.path(), &[&log]);
    let serve = |config: &Path| {
        let out = Command::new(CT_LOG)
            .args([
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--create-missing",
            ])
            .env("AWS_ACCESS_KEY_ID", "careless")
            .env("AWS_SECRET_ACCESS_KEY", "careless")
            .output()
            .unwrap();
        assert!(!out.status.success(), "serve must refuse");
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    };
    let refused = serve(&config);
    assert!(
        refused.contains("storage") && refused.contains("ignores If-None-Match"),
        "{refused}"
    );

    let top = ct_testkit::server::TopLevel {
        lock: Some(s3("locks")),
        ..Default::default()
    };
    log.storage = None;
    let config = ct_testkit::server::write_config_with(dir.path(), &top, &[&log]);
    let refused = serve(&config);
    assert!(
        refused.contains("S3 lock") && refused.contains("ignores If-None-Match"),
        "{refused}"
    );
}
