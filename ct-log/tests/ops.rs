//! Operator commands and endpoints against the real binary: `keygen` output
//! serves, `check-config` catches each listed mistake.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::prelude::*;
use common::client::http_client;
use common::server::{write_config, LogSpec, Server};
use common::verify::fetch_checkpoint;
use p256::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

fn ct_log(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ct-log"))
        .args(args)
        .output()
        .expect("run ct-log")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A one-log test config in `dir` whose roots are a fresh test PKI's.
fn spec(dir: &Path, name: &str) -> LogSpec {
    let pki = common::pki::TestPki::new(name);
    fs::write(dir.join("roots.pem"), &pki.root_pem).unwrap();
    let prefix = format!("http://ct.test/{name}");
    LogSpec::new(
        name,
        &prefix,
        &prefix,
        "roots.pem",
        "2026-01-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
    )
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
    let server = Server::start(&config, "serve");
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
            good.replace("2027-01-01", "2025-06-01"),
            "not_after_start must be before not_after_limit",
        ),
        (
            good.replace("2027-01-01", "2028-01-01"),
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
        (
            good.replace("2026-01-01T00:00:00Z", "yesterday"),
            "RFC 3339",
        ),
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
    let server = Server::start(&config, "serve");
    fetch_checkpoint(&http_client(), &server.base_url, &log.handle(dir.path())).await;
    drop(server);
    let mut other = spec(dir.path(), "chk");
    other.key = common::server::fresh_key("another key");
    let other_config = write_config(dir.path(), &[&other]);
    let out = ct_log(&["check-config", "--config", other_config.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("does not verify with this key"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn a_second_process_on_the_same_log_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = spec(dir.path(), "twice");
    let config = write_config(dir.path(), &[&log]);
    let _first = Server::start(&config, "first");
    let second = Command::new(env!("CARGO_BIN_EXE_ct-log"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .expect("run ct-log");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another process is already sequencing this log"),
        "{stderr}"
    );
}
