//! Cosigned checkpoints against the real binary: keys made by `ct-log
//! keygen`, a log serving with them, and every checkpoint it publishes
//! verified by code ct-log did not write: signed_note parses the note and
//! matches key IDs, static_ct_api checks the RFC 6962 line, ed25519-dalek
//! and RustCrypto's ml-dsa check the cosignatures (ct_testkit::cosign
//! rebuilds their signed messages from the c2sp.org/tlog-cosignature spec).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{add, get, http_client, monitoring_url, submission_url};
use ct_testkit::cosign::CosignatureVerifier;
use ct_testkit::pki::{LeafKind, TestPki};
use ct_testkit::server::{write_config, LogHandle, LogSpec, Server};
use ct_testkit::verify::parse_checkpoint;
use ct_testkit::window::{mid_window, LIMIT, START};
use signed_note::{Note, Verifier, VerifierList};
use static_ct_api::RFC6962Verifier;

const NAME: &str = "cosigned";
const ORIGIN: &str = "ct.test/cosigned";

fn ct_log(args: &[&str]) -> Output {
    Command::new(CT_LOG)
        .args(args)
        .output()
        .expect("run ct-log")
}

/// Runs `ct-log keygen --type <kind>` into `dir`; returns the verifier key
/// it printed.
fn keygen(dir: &Path, kind: &str, file: &str) -> String {
    let out_path = dir.join(file);
    let out = ct_log(&[
        "keygen",
        "--type",
        kind,
        "--out",
        out_path.to_str().unwrap(),
        "--name",
        ORIGIN,
    ]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let (_, vkey) = printed
        .trim_end()
        .split_once("verifier key: ")
        .unwrap_or_else(|| panic!("no verifier key in {printed:?}"));
    vkey.to_string()
}

/// A log whose config names both cosigning keys, and its test PKI.
fn cosigned_log(dir: &Path) -> (LogSpec, TestPki) {
    let pki = TestPki::new(NAME);
    fs::write(dir.join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = format!("http://{ORIGIN}");
    let mut log = LogSpec::new(NAME, &prefix, &prefix, "roots.pem", &START, &LIMIT);
    log.extra = vec![
        "ed25519_key = \"ed25519.pem\"".into(),
        "mldsa44_key = \"mldsa44.pem\"".into(),
    ];
    (log, pki)
}

/// Fetches the checkpoint until its tree holds `size` entries.
async fn checkpoint_of_size(base: &str, log: &LogHandle, size: u64) -> Vec<u8> {
    let http = http_client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(&http, &monitoring_url(base, log, "checkpoint")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        if parse_checkpoint(log, &r.body).size >= size {
            return r.body.to_vec();
        }
        assert!(Instant::now() < deadline, "no checkpoint of size {size}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits the chain of a new leaf (`serial`) and waits for its SCT.
async fn submit(server: &Server, log: &LogHandle, pki: &TestPki, serial: u64) {
    let leaf = pki.leaf(serial, LeafKind::Final, mid_window());
    let chain = [leaf, pki.intermediate_der.clone()];
    add(&http_client(), &server.base_url, log, &chain, false)
        .await
        .unwrap();
}

/// Verifies `note` with the RFC 6962 key and both cosigners, each exactly
/// once, and returns the cosignatures' timestamps (seconds).
fn verify_all(note: &[u8], log: &LogHandle, vkeys: &[String]) -> Vec<u64> {
    let rfc6962 = RFC6962Verifier::new(ORIGIN, &log.verifying_key).unwrap();
    let mut verifiers: Vec<Box<dyn Verifier>> = vec![Box::new(rfc6962)];
    for vkey in vkeys {
        verifiers.push(Box::new(
            CosignatureVerifier::from_verifier_key(vkey).unwrap(),
        ));
    }
    let parsed = Note::from_bytes(note).expect("a signed note");
    let (verified, unknown) = parsed
        .verify(&VerifierList::new(verifiers))
        .unwrap_or_else(|e| panic!("{e:?}\n{}", String::from_utf8_lossy(note)));
    assert!(unknown.is_empty(), "signatures from unknown keys");
    assert_eq!(verified.len(), 1 + vkeys.len(), "every signer signed once");
    verified[1..]
        .iter()
        .map(|sig| CosignatureVerifier::timestamp(sig.signature()).unwrap())
        .collect()
}

#[tokio::test]
async fn every_checkpoint_carries_cosignatures_that_outside_verifiers_accept() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pki) = cosigned_log(dir.path());
    let vkeys = vec![
        keygen(dir.path(), "ed25519", "ed25519.pem"),
        keygen(dir.path(), "mldsa44", "mldsa44.pem"),
    ];
    let config = write_config(dir.path(), &[&log]);
    let handle = log.handle(dir.path());
    let check = ct_log(&["check-config", "--config", config.to_str().unwrap()]);
    assert!(check.status.success(), "{check:?}");
    let server = Server::start(CT_LOG, &config, "cosign");
    let http = http_client();

    // The first checkpoint (size 0) and one after a submission.
    let empty = checkpoint_of_size(&server.base_url, &handle, 0).await;
    verify_all(&empty, &handle, &vkeys);
    submit(&server, &handle, &pki, 1).await;
    let note = checkpoint_of_size(&server.base_url, &handle, 1).await;
    let info = parse_checkpoint(&handle, &note);
    let times = verify_all(&note, &handle, &vkeys);
    // Cosigned at the RFC 6962 signature's instant, in seconds.
    assert_eq!(times, vec![info.timestamp / 1000; 2]);

    // The RFC 6962 line stays first (parse_checkpoint checks the layout),
    // and get-sth still answers with its signature.
    let sth = get(
        &http,
        &submission_url(&server.base_url, &handle, "ct/v1/get-sth"),
    )
    .await;
    assert_eq!(sth.status, 200, "{}", sth.text());

    // A changed byte in a cosignature is caught.
    let mut text = String::from_utf8(note.clone()).unwrap();
    let last = text.trim_end().rsplit_once(' ').unwrap().1.to_string();
    let mut bytes = base64::Engine::decode(&base64::prelude::BASE64_STANDARD, &last).unwrap();
    bytes[40] ^= 1;
    text = text.replace(
        &last,
        &base64::Engine::encode(&base64::prelude::BASE64_STANDARD, bytes),
    );
    let tampered = Note::from_bytes(text.as_bytes()).unwrap();
    let verifier = CosignatureVerifier::from_verifier_key(&vkeys[1]).unwrap();
    assert!(tampered
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .is_err());

    // log.v3.json and the home page publish the verifier keys.
    let metadata = get(
        &http,
        &submission_url(&server.base_url, &handle, "log.v3.json"),
    )
    .await;
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.body).unwrap();
    assert_eq!(
        metadata["cosignature_verifier_keys"]["ed25519"],
        vkeys[0].as_str()
    );
    assert_eq!(
        metadata["cosignature_verifier_keys"]["mldsa44"],
        vkeys[1].as_str()
    );
    let home = get(&http, &format!("{}/", server.base_url)).await.text();
    for vkey in &vkeys {
        assert!(home.contains(vkey.as_str()), "home page lacks {vkey}");
    }

    // After a restart (recovery reads the cosigned checkpoint back from
    // the lock), the next round is cosigned too.
    drop(server);
    let server = Server::start(CT_LOG, &config, "cosign-again");
    submit(&server, &handle, &pki, 2).await;
    verify_all(
        &checkpoint_of_size(&server.base_url, &handle, 2).await,
        &handle,
        &vkeys,
    );
}

#[test]
fn a_wrong_cosigning_key_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _pki) = cosigned_log(dir.path());
    keygen(dir.path(), "mldsa44", "mldsa44.pem");
    // An Ed25519 slot holding an ML-DSA-44 key.
    fs::copy(
        dir.path().join("mldsa44.pem"),
        dir.path().join("ed25519.pem"),
    )
    .unwrap();
    let config = write_config(dir.path(), &[&log]);
    let check = ct_log(&["check-config", "--config", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{check:?}");
    assert!(
        stdout.contains("ed25519.pem") && stdout.contains("not an Ed25519"),
        "{stdout}"
    );
    let serve = ct_log(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--create-missing",
    ]);
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success(), "{serve:?}");
    assert!(stderr.contains("not an Ed25519"), "{stderr}");

    // keygen will not make a cosigning key it cannot name.
    let out = ct_log(&[
        "keygen",
        "--type",
        "ed25519",
        "--out",
        "/nonexistent/never.pem",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name"));
}
