//! Roots kept current from a URL (`roots_url`): a PEM bundle or the CCADB's
//! CSV report, served by a local HTTP server that a test switches between
//! good, truncated and hostile answers. Good downloads add roots; anything
//! else changes nothing and, if it lasts, says so on `/health`; roots only
//! accumulate.

mod common;

use std::fs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{get, http_client, submission_url};
use ct_testkit::pki::TestPki;
use ct_testkit::server::{write_config, LogSpec, Server};
use ct_testkit::window::{LIMIT, START};

/// Serves whatever `body` holds at `/roots`.
async fn roots_server(body: Arc<Mutex<(u16, Vec<u8>)>>) -> String {
    let app = axum::Router::new().route(
        "/roots",
        axum::routing::get(move || {
            let (status, body) = body.lock().unwrap().clone();
            async move { (axum::http::StatusCode::from_u16(status).unwrap(), body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/roots", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Polls `check` every 100 ms for at most 15 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_from_a_url_only_accumulate_and_bad_downloads_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (file_pki, url_pki, csv_pki) = (
        TestPki::new("file"),
        TestPki::new("url"),
        TestPki::new("csv"),
    );
    fs::write(dir.path().join("roots.pem"), &file_pki.root_pem).unwrap();
    let served = Arc::new(Mutex::new((200, url_pki.root_pem.clone().into_bytes())));
    let url = roots_server(served.clone()).await;
    let prefix = "http://ct.test/rooted";
    let mut spec = LogSpec::new("rooted", prefix, prefix, "roots.pem", &START, &LIMIT);
    spec.extra = vec![
        format!("roots_url = \"{url}\""),
        "roots_refresh_s = 1".into(),
    ];
    let config = write_config(dir.path(), &[&spec]);
    let server = Server::start(CT_LOG, &config, "serve");
    let (http, log) = (http_client(), spec.handle(dir.path()));
    let roots_url = submission_url(&server.base_url, &log, "ct/v1/get-roots");
    let count = async || {
        let body = get(&http, &roots_url).await.text();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        json["certificates"].as_array().unwrap().len()
    };
    let health = async || get(&http, &format!("{}/health", server.base_url)).await;
    eventually("the URL's root added", async || count().await == 2).await;
    assert_eq!(health().await.status, 200);

    // Truncated, hostile, failing: nothing changes, and /health says so
    // once it lasts three refresh periods.
    let cut = csv_pki.root_pem[..csv_pki.root_pem.len() / 2].to_string();
    let hostile = [
        (200, format!("{}{cut}", csv_pki.root_pem)),
        (
            200,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        ),
        (200, "<html>not roots</html>".into()),
        (500, String::new()),
    ];
    for (status, body) in hostile {
        *served.lock().unwrap() = (status, body.into_bytes());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(count().await, 2, "a bad download changed the roots");
    }
    eventually("/health names the roots URL", async || {
        let h = health().await;
        h.status == 503 && h.text().contains("roots_url")
    })
    .await;

    // The CCADB's CSV format, without the earlier roots: they stay.
    let csv = format!(
        "\"CA Owner\",\"PEM Info\"\n\"Test\",\"'{}'\"\n",
        csv_pki.root_pem
    );
    *served.lock().unwrap() = (200, csv.into_bytes());
    eventually("the CSV's root added", async || count().await == 3).await;
    eventually("healthy again", async || health().await.status == 200).await;
}
