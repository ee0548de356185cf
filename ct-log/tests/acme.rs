//! HTTPS with a certificate from a real ACME CA (Pebble): `ct-log` obtains
//! one through TLS-ALPN-01 on its own listener, serves submissions over
//! it, renews it without a restart, and after a restart serves the cached
//! one instead of ordering again. Plain HTTP stays on `plain_listen`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{add, get, series_value};
use ct_testkit::pebble::Pebble;
use ct_testkit::pki::{LeafKind, TestPki};
use ct_testkit::server::{free_port, stderr_tail_of, write_config_with, LogSpec, TopLevel};
use ct_testkit::verify::{root_pool, verify_sct};
use ct_testkit::window::{mid_window, LIMIT, START};

/// The name the certificate is for; Pebble resolves every name to
/// 127.0.0.1.
const DOMAIN: &str = "ct.acme.test";
/// Pebble's certificates live this long; ct-log renews with a third left.
const VALIDITY_S: u64 = 45;

/// `ct-log serve` with an HTTPS `listen` and a `plain_listen`, SIGKILLed
/// on drop.
struct Https {
    child: Child,
    /// `http://127.0.0.1:PORT` of `plain_listen`.
    plain: String,
    stderr: std::path::PathBuf,
}

impl Https {
    /// Starts the server and waits for both its `listening on` lines.
    fn start(config: &Path, port: u16, tag: &str) -> Https {
        let dir = config.parent().unwrap();
        let stderr = dir.join(format!("{tag}.stderr"));
        let mut child = Command::new(CT_LOG)
            .args(["serve", "--create-missing", "--config"])
            .arg(config)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn ct-log");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let wait = Duration::from_secs(60);
        let next = || {
            lines.recv_timeout(wait).unwrap_or_else(|_| {
                panic!("no `listening on` line\n{}", stderr_tail_of(&stderr, 40))
            })
        };
        assert_eq!(next(), format!("listening on https://127.0.0.1:{port}"));
        let plain = next()
            .strip_prefix("plain HTTP listening on ")
            .expect("the plain listener's line")
            .to_string();
        Https {
            child,
            plain,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, and a clean exit within 30 s.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "ct-log exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ct-log did not stop within 30 s");
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", stderr_tail_of(&self.stderr, 60));
        }
    }
}

/// A client that trusts only `root` and finds `DOMAIN` on 127.0.0.1:`port`,
/// with a new connection (so a new handshake) for every request.
fn https_client(root: &str, port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).unwrap()])
        .resolve(DOMAIN, ([127, 0, 0, 1], port).into())
        .pool_max_idle_per_host(0)
        .tls_info(true)
        .build()
        .unwrap()
}

/// The leaf certificate (DER) the server presents in a full handshake,
/// once `accept` takes it.
async fn served_certificate(
    root: &str,
    port: u16,
    limit: Duration,
    accept: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let base = format!("https://{DOMAIN}:{port}");
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        // A new client each time: a resumed TLS session would show the
        // certificate of the session it resumes.
        let http = https_client(root, port);
        match http.get(format!("{base}/health")).send().await {
            Ok(r) => {
                let info = r.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
                let leaf = info.peer_certificate().unwrap().to_vec();
                if accept(&leaf) {
                    return leaf;
                }
                last = "the same certificate".into();
            }
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no acceptable certificate on {base} within {limit:?}; last: {last}");
}

/// The certificate in ct-log's cache (key and chain in one PEM file).
fn cached_leaf(dir: &Path) -> Vec<u8> {
    let pem = std::fs::read_to_string(dir.join("acme-cache/certificate.pem")).unwrap();
    let block = pem::parse_many(pem)
        .unwrap()
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .expect("a certificate in the cache");
    block.contents().to_vec()
}

async fn metric(plain: &str, series: &str) -> f64 {
    let text = get(
        &ct_testkit::client::http_client(),
        &format!("{plain}/metrics"),
    )
    .await
    .text();
    series_value(&text, series).unwrap_or(0.0)
}

/// The config of one log (roots of `pki`) with `acme` pointing at
/// `directory`, a plain listener, and `listen` on `port`.
fn acme_config(
    dir: &Path,
    pki: &TestPki,
    port: u16,
    directory: &str,
) -> (std::path::PathBuf, LogSpec) {
    std::fs::write(dir.join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = format!("https://{DOMAIN}/acme");
    let spec = LogSpec::new("acme", &prefix, &prefix, "roots.pem", &START, &LIMIT);
    let top = TopLevel {
        extra: vec![
            "plain_listen = \"127.0.0.1:0\"".into(),
            format!(
                "acme = {{ directory = {directory:?}, email = \"ops@acme.test\", domains = [{DOMAIN:?}], cache_dir = \"acme-cache\", ca = \"pebble-ca.pem\" }}"
            ),
        ],
        ..TopLevel::default()
    };
    let config = write_config_with(dir, &top, &[&spec]);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "127.0.0.1:0\"\nlock_db",
        &format!("127.0.0.1:{port}\"\nlock_db"),
    );
    std::fs::write(&config, text).unwrap();
    (config, spec)
}

/// With no certificate to be had (nothing answers at the directory), the
/// server still comes up: the plain listener serves, `/health` says why
/// HTTPS cannot work yet, and the failures are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_certificate_the_plain_listener_serves_and_health_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = ct_testkit::pki::loopback_tls("Nobody");
    std::fs::write(dir.path().join("pebble-ca.pem"), ca).unwrap();
    let pki = TestPki::new("NoAcme");
    let port = free_port();
    let nowhere = format!("https://127.0.0.1:{}/dir", free_port());
    let (config, _) = acme_config(dir.path(), &pki, port, &nowhere);
    let server = Https::start(&config, port, "nowhere");
    let http = ct_testkit::client::http_client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = get(&http, &format!("{}/health", server.plain)).await;
        let text = health.text();
        if health.status == 503 && text.contains("acme: no certificate yet (last attempt:") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "health: {} {text}",
            health.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let checkpoint = get(&http, &format!("{}/acme/checkpoint", server.plain)).await;
    assert_eq!(checkpoint.status, 200);
    assert!(metric(&server.plain, "ct_acme_renewals_total{result=\"failed\"}").await >= 1.0);
    assert!(server
        .stderr()
        .contains("acme: obtaining a certificate failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_pebble_is_obtained_served_renewed_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(pebble) = Pebble::start(dir.path(), port, VALIDITY_S).await else {
        return;
    };
    let pki = TestPki::new("Acme");
    let (config, spec) = acme_config(dir.path(), &pki, port, &pebble.directory);
    let log = spec.handle(dir.path());

    // check-config accepts the table.
    let check = Command::new(CT_LOG)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let started = Instant::now();
    let server = Https::start(&config, port, "first");
    let root = pebble.root_pem().await;
    let http = https_client(&root, port);
    let base = format!("https://{DOMAIN}:{port}");
    // Obtained through TLS-ALPN-01 on the listener itself; the client
    // trusts nothing but Pebble's root.
    let first = served_certificate(&root, port, Duration::from_secs(60), |_| true).await;
    eprintln!("first certificate after {:?}", started.elapsed());

    // A submission over HTTPS gets a valid SCT.
    let not_after = mid_window();
    let chain = vec![
        pki.leaf(1, LeafKind::Final, not_after),
        pki.intermediate_der.clone(),
    ];
    let submission = add(&http, &base, &log, &chain, false)
        .await
        .expect("add-chain over HTTPS");
    verify_sct(&log, &root_pool(&log), &submission);
    // The plain listener serves the same.
    let plain = get(
        &ct_testkit::client::http_client(),
        &format!("{}/acme/checkpoint", server.plain),
    )
    .await;
    assert_eq!(plain.status, 200);

    // Renewed with a third of the lifetime left, without a restart.
    let renewed = served_certificate(&root, port, Duration::from_secs(VALIDITY_S + 30), |leaf| {
        leaf != first
    })
    .await;
    eprintln!("renewed after {:?}", started.elapsed());
    assert!(metric(&server.plain, "ct_acme_renewals_total{result=\"ok\"}").await >= 2.0);
    assert!(metric(&server.plain, "ct_acme_certificate_expiry_seconds").await > 0.0);
    let submission = add(
        &http,
        &base,
        &log,
        &[
            pki.leaf(2, LeafKind::Final, not_after),
            pki.intermediate_der.clone(),
        ],
        false,
    )
    .await
    .expect("add-chain over the renewed certificate");
    verify_sct(&log, &root_pool(&log), &submission);
    assert_eq!(
        cached_leaf(dir.path()),
        renewed,
        "the renewed certificate is cached"
    );
    assert_eq!(server.stderr().matches("account created").count(), 1);
    server.stop();

    // A restart serves the cached certificate at once: no new order.
    let server = Https::start(&config, port, "second");
    let served = served_certificate(&root, port, Duration::from_secs(10), |_| true).await;
    assert_eq!(
        served, renewed,
        "the restarted server serves the cached certificate"
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains("serving the cached certificate"),
        "{stderr}"
    );
    assert!(!stderr.contains("serving a new certificate"), "{stderr}");
    assert!(!stderr.contains("account created"), "{stderr}");
    drop(server);
    drop(pebble);
}
