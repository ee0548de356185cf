//! Partial-tile cleanup against the real binary: after thousands of
//! entries across many rounds and the grace period (1 s here), storage
//! holds only full tiles and the current right edge's partials, and a full
//! audit of the log still passes.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::CT_LOG;
use ct_testkit::client::{http_client, submit_all};
use ct_testkit::pki::TestPki;
use ct_testkit::server::{write_config_with, LogSpec, Server, TopLevel};
use ct_testkit::window::{LIMIT, START};
use p256::pkcs8::{EncodePublicKey, LineEnding};

/// Every `.p/` file under `dir`, as a path relative to it.
fn partial_tiles(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let key = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if key.contains(".p/") {
                    found.push(key);
                }
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_full_tiles_and_the_right_edge_remain() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new("partials");
    fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = "http://ct.test/partials";
    let mut spec = LogSpec::new("partials", prefix, prefix, "roots.pem", &START, &LIMIT);
    spec.period_ms = 100;
    let top = TopLevel {
        extra: vec!["partial_tile_grace_s = 1".into()],
        ..TopLevel::default()
    };
    let config = write_config_with(dir.path(), &top, &[&spec]);
    let server = Server::start(CT_LOG, &config, "serve");
    let (http, log) = (http_client(), spec.handle(dir.path()));
    let items = pki.mixed_chains(0..1_200, &START, &LIMIT);
    for chunk in items.chunks(97) {
        submit_all(&http, &server.base_url, &log, chunk.to_vec(), 32).await;
    }
    let data = dir.path().join("partials-data");
    let before = partial_tiles(&data);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = partial_tiles(&data);
    let mut edge: Vec<String> = ct_formats::right_edge_tiles(items.len() as u64)
        .iter()
        .filter(|t| !t.is_full())
        .map(|t| t.path())
        .collect();
    edge.sort();
    assert!(
        before.len() > edge.len(),
        "rounds left partials behind: {before:?}"
    );
    assert_eq!(after, edge, "only the right edge's partials remain");

    let key = dir.path().join("public.pem");
    let pem = log.verifying_key.to_public_key_pem(LineEnding::LF).unwrap();
    fs::write(&key, pem).unwrap();
    let out = Command::new(CT_LOG)
        .args([
            "audit",
            "--url",
            data.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .args(["--origin", &log.origin])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
