//! Deduplication and storage faults seen from a CA, against the real binary:
//! identical submissions get byte-identical SCTs for one entry, also after a
//! restart; a failed issuer upload fails only that request.

mod common;

use std::fs;

use common::CT_LOG;
use ct_testkit::client::{add, http_client, Submission};
use ct_testkit::pki::{LeafKind, TestPki};
use ct_testkit::server::{write_config, LogSpec, Server};
use ct_testkit::verify::verify_log;
use ct_testkit::window::{mid_window, LIMIT, START};

fn setup(name: &str) -> (tempfile::TempDir, std::path::PathBuf, LogSpec, TestPki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(name);
    fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = format!("http://ct.test/{name}");
    let mut spec = LogSpec::new(name, &prefix, &prefix, "roots.pem", &START, &LIMIT);
    spec.period_ms = 200;
    let config = write_config(dir.path(), &[&spec]);
    (dir, config, spec, pki)
}

/// A newly issued leaf (each call signs a new certificate) and its
/// intermediate.
fn chain(pki: &TestPki, serial: u64) -> Vec<Vec<u8>> {
    let leaf = pki.leaf(serial, LeafKind::Final, mid_window());
    vec![leaf, pki.intermediate_der.clone()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_identical_submissions_get_one_entry_and_one_sct() {
    let (dir, config, spec, pki) = setup("dup");
    let log = spec.handle(dir.path());
    let mut server = Server::start(CT_LOG, &config, "first");
    let http = http_client();
    let same = chain(&pki, 7);
    let requests: Vec<_> = (0..1000)
        .map(|_| {
            let (http, log, base, chain) = (
                http.clone(),
                log.clone(),
                server.base_url.clone(),
                same.clone(),
            );
            tokio::spawn(async move { add(&http, &base, &log, &chain, false).await })
        })
        .collect();
    let mut scts = Vec::new();
    for request in requests {
        scts.push(request.await.unwrap().expect("every duplicate gets an SCT"));
    }
    assert!(
        scts.iter().all(|s| s.sct == scts[0].sct),
        "1,000 byte-identical SCTs"
    );
    // The same leaf under another chain (with the root) is the same entry.
    let with_root = [same.clone(), vec![pki.root_der.clone()]].concat();
    let other_chain = add(&http, &server.base_url, &log, &with_root, false)
        .await
        .unwrap();
    assert_eq!(other_chain.sct, scts[0].sct);
    let tree = verify_log(&http, &server.base_url, &log, &scts[..1]).await;
    assert_eq!(tree.checkpoint.size, 1, "one log entry");

    // After a restart (empty memory), the persistent layer answers.
    server.kill();
    let server = Server::start(CT_LOG, &config, "second");
    let again = add(&http, &server.base_url, &log, &same, false)
        .await
        .unwrap();
    assert_eq!(again.sct, scts[0].sct, "the same SCT after a restart");
    let tree = verify_log(&http, &server.base_url, &log, &[again]).await;
    assert_eq!(tree.checkpoint.size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_issuer_upload_fails_only_that_request() {
    let (dir, config, spec, pki) = setup("iss");
    let log = spec.handle(dir.path());
    let server = Server::start(CT_LOG, &config, "serve");
    let http = http_client();
    let first: Submission = add(&http, &server.base_url, &log, &chain(&pki, 1), false)
        .await
        .unwrap();

    // A second CA whose intermediate is not stored yet, while issuer
    // uploads fail (the issuer folder is replaced by a file).
    let other = TestPki::new("iss-other");
    fs::write(
        dir.path().join("roots.pem"),
        format!("{}{}", pki.root_pem, other.root_pem),
    )
    .unwrap();
    let log = spec.handle(dir.path());
    drop(server);
    let server = Server::start(CT_LOG, &config, "restarted");
    let issuers = dir.path().join("iss-data/issuer");
    let saved = dir.path().join("issuer-saved");
    fs::rename(&issuers, &saved).unwrap();
    fs::write(&issuers, "not a directory").unwrap();
    let other_chain = chain(&other, 2);
    let refused = add(&http, &server.base_url, &log, &other_chain, false)
        .await
        .unwrap_err();
    assert!(
        refused.contains("status 500") && refused.contains("storing issuers"),
        "{refused}"
    );

    // Storage heals: the same submission now succeeds, and nothing logged
    // refers to an issuer that is not served.
    fs::remove_file(&issuers).unwrap();
    fs::rename(&saved, &issuers).unwrap();
    let second = add(&http, &server.base_url, &log, &other_chain, false)
        .await
        .unwrap();
    let tree = verify_log(&http, &server.base_url, &log, &[first, second]).await;
    assert_eq!(tree.checkpoint.size, 2, "the failed request added no entry");
}
