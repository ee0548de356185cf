//! `ct-log audit` and `ct-log submit` against a real run of the server.
//!
//! One log is built once (a few thousand submissions through the HTTP API
//! and the `submit` command), audited over HTTP from scratch and then
//! incrementally with `--state`, and audited as a local directory. Then the
//! directory is tampered with, one object at a time, and each audit must
//! fail with the precise message for that tampering.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::prelude::{Engine, BASE64_STANDARD};
use ct_client::{audit, AuditOptions, AuditState, LogClient};
use ct_formats::{open_checkpoint, parse_tile_leaves, Checkpoint, LogKey, SignedCheckpoint};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

use common::CT_LOG;
use ct_testkit::client::{http_client, submit_all};
use ct_testkit::pki::{ts, LeafKind, TestPki};
use ct_testkit::server::{fresh_key, write_config, LogSpec, Server};
use ct_testkit::window::{LIMIT, START};

const ORIGIN: &str = "ct.test/e2e";
const IN_FLIGHT: usize = 64;

/// Runs the `ct-log` binary with `args`.
fn ct_log(args: &[&str]) -> Output {
    Command::new(CT_LOG)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ct-log")
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ct-log failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Runs `ct-log audit --json` and returns its one-line summary.
fn audit_json(url: &str, key: &Path, state: &Path) -> serde_json::Value {
    let out = ct_log(&[
        "audit",
        "--url",
        url,
        "--key",
        key.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--json",
    ]);
    let stdout = stdout_of(&out);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    eprintln!("ct-log audit --json: {stdout}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    summary
}

fn pem_chain(chain: &[Vec<u8>]) -> String {
    chain
        .iter()
        .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())))
        .collect()
}

/// `ct-log submit` of one leaf: the SCT comes back as JSON and base64, with
/// the right log ID, and the entry is proven included.
fn submit_with_cli(dir: &Path, base: &str, key: &Path, pki: &TestPki, serial: u64, kind: LeafKind) {
    let leaf = pki.leaf(serial, kind, ts(&START) + time::Duration::days(30));
    let chain_path = dir.join(format!("chain-{serial}.pem"));
    std::fs::write(
        &chain_path,
        pem_chain(&[leaf, pki.intermediate_der.clone()]),
    )
    .unwrap();
    let url = format!("{base}/e2e");
    let mut args = vec![
        "submit",
        "--url",
        &url,
        "--key",
        key.to_str().unwrap(),
        chain_path.to_str().unwrap(),
    ];
    if kind.is_precert() {
        args.push("--precert");
    }
    let out = ct_log(&args);
    let stdout = stdout_of(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(json["sct_version"], 0);
    let serialized = BASE64_STANDARD.decode(lines[1]).unwrap();
    assert_eq!(serialized[0], 0, "SCT version byte");
    assert_eq!(
        BASE64_STANDARD.encode(&serialized[1..33]),
        json["id"].as_str().unwrap()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SCT verified: leaf index"), "{stderr}");
    eprintln!("ct-log submit:\n{stdout}{stderr}");
}

/// The audited log: its directory, key and public key file.
struct Fixture {
    data: PathBuf,
    key: SigningKey,
    public_pem: PathBuf,
}

impl Fixture {
    fn client(&self) -> LogClient {
        LogClient::new(&format!("file://{}", self.data.display())).unwrap()
    }

    fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// The library audit of the directory, with an optional state.
    async fn audit(&self, state: Option<&AuditState>) -> Result<AuditState, String> {
        let options = AuditOptions::default();
        audit(&self.client(), &self.verifying_key(), None, state, &options)
            .await
            .map(|(_, state)| state)
            .map_err(|e| e.to_string())
    }

    /// Asserts that the audit fails with exactly `want`.
    async fn assert_finding(&self, state: Option<&AuditState>, want: &str, what: &str) {
        match self.audit(state).await {
            Ok(_) => panic!("{what}: the audit passed"),
            Err(got) => assert_eq!(got, want, "{what}"),
        }
        eprintln!("detected {what}: {want}");
    }

    fn path(&self, object: &str) -> PathBuf {
        self.data.join(object)
    }

    fn checkpoint(&self) -> SignedCheckpoint {
        let note = std::fs::read(self.path("checkpoint")).unwrap();
        open_checkpoint(&note, ORIGIN, &self.verifying_key()).unwrap()
    }

    /// Writes a checkpoint signed with the log's own key.
    fn sign_checkpoint(&self, size: u64, root: [u8; 32], timestamp: u64) -> Vec<u8> {
        let checkpoint = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        };
        checkpoint
            .sign(&LogKey::from_signing_key(self.key.clone()), timestamp)
            .note
    }
}

/// Replaces a file's bytes for the life of the guard.
struct Tampered {
    path: PathBuf,
    original: Vec<u8>,
}

fn tamper(path: &Path, change: impl FnOnce(&mut Vec<u8>)) -> Tampered {
    let original = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut bytes = original.clone();
    change(&mut bytes);
    assert_ne!(
        bytes,
        original,
        "{}: tampering changed nothing",
        path.display()
    );
    std::fs::write(path, &bytes).unwrap();
    Tampered {
        path: path.to_path_buf(),
        original,
    }
}

impl Drop for Tampered {
    fn drop(&mut self) {
        std::fs::write(&self.path, &self.original).unwrap();
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap()
}

/// Tampers with the uncompressed content of a (gzip-stored) data tile.
fn tamper_data_tile(path: &Path, change: impl FnOnce(&mut Vec<u8>)) -> Tampered {
    tamper(path, |stored| {
        let mut content = gunzip(stored);
        change(&mut content);
        *stored = gzip(&content);
    })
}

/// Swaps the first two entries of a data tile, each keeping its bytes.
fn swap_first_entries(content: &mut Vec<u8>) {
    let leaves = parse_tile_leaves(content).unwrap();
    let encode = |i: usize| {
        let mut out = Vec::new();
        let leaf = &leaves[i];
        let index = leaf.leaf_index().unwrap();
        leaf.entry.write_tile_leaf(leaf.timestamp, index, &mut out);
        out
    };
    let (first, second) = (encode(0), encode(1));
    let rest = content[first.len() + second.len()..].to_vec();
    assert_eq!(
        content[..first.len()],
        first[..],
        "entries re-encode exactly"
    );
    *content = [second, first, rest].concat();
}

fn b64(hash: &[u8]) -> String {
    BASE64_STANDARD.encode(hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_real_run_and_tampering() {
    let pki = TestPki::new("Audit");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
    let mut spec = LogSpec::new(
        "e2e",
        "http://ct.test/e2e",
        "http://ct.test/e2e",
        "roots.pem",
        &START,
        &LIMIT,
    );
    spec.period_ms = 100;
    spec.key = fresh_key("audit");
    let config = write_config(dir.path(), &[&spec]);
    let log = spec.handle(dir.path());
    let mut server = Server::start(CT_LOG, &config, "server");
    let base = server.base_url.clone();
    let public_pem = dir.path().join("log.pub.pem");
    let pem = spec
        .key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    std::fs::write(&public_pem, pem).unwrap();
    let state_path = dir.path().join("audit-state.json");
    let monitoring = format!("{base}/e2e");

    // 1. The submit command, a certificate and a precertificate.
    submit_with_cli(
        dir.path(),
        &base,
        &public_pem,
        &pki,
        1_000_000,
        LeafKind::Final,
    );
    submit_with_cli(
        dir.path(),
        &base,
        &public_pem,
        &pki,
        1_000_001,
        LeafKind::Precert,
    );

    // 2. A thousand entries, then a full audit over HTTP that saves a state.
    let http = http_client();
    submit_all(
        &http,
        &base,
        &log,
        pki.mixed_chains(0..1000, &START, &LIMIT),
        IN_FLIGHT,
    )
    .await;
    let first = audit_json(&monitoring, &public_pem, &state_path);
    let first_size = first["size"].as_u64().unwrap();
    assert_eq!(first_size, 1002, "{first}");
    assert_eq!(first["origin"], ORIGIN);
    assert_eq!(
        (first["from_size"].as_u64(), first["entries"].as_u64()),
        (Some(0), Some(1002))
    );
    assert_eq!(first["data_tiles"], 4);
    assert_eq!(first["issuers"], 2, "intermediate and root");
    let first_state = AuditState::load(&state_path).unwrap().unwrap();

    // 3. Two thousand more, then an incremental audit: only the new tiles,
    // no issuer again, and a consistency proof from the first audit.
    submit_all(
        &http,
        &base,
        &log,
        pki.mixed_chains(1000..3000, &START, &LIMIT),
        IN_FLIGHT,
    )
    .await;
    let second = audit_json(&monitoring, &public_pem, &state_path);
    let size = second["size"].as_u64().unwrap();
    assert_eq!(size, 3002, "{second}");
    assert_eq!(second["from_size"].as_u64(), Some(first_size));
    assert_eq!(second["entries"].as_u64(), Some(size - first_size));
    assert_eq!(
        second["data_tiles"].as_u64(),
        Some(12 - 3),
        "from tile 3 (partial at 1002)"
    );
    assert_eq!(second["issuers"], 0);
    assert!(
        second["consistency_proof"].as_u64().unwrap() > 0,
        "{second}"
    );

    // 4. The same log as a local directory, from scratch, with the text output.
    server.kill();
    let fixture = Fixture {
        data: dir.path().join("e2e-data"),
        key: spec.key.clone(),
        public_pem: public_pem.clone(),
    };
    let text = stdout_of(&ct_log(&[
        "audit",
        "--url",
        fixture.data.to_str().unwrap(),
        "--key",
        fixture.public_pem.to_str().unwrap(),
    ]));
    eprint!("ct-log audit: {text}");
    assert!(
        text.starts_with(&format!("audit OK: {ORIGIN} size {size} root ")),
        "{text}"
    );
    let latest = fixture.audit(None).await.unwrap();
    let checkpoint = fixture.checkpoint();
    let root = checkpoint.checkpoint.root;
    assert_eq!(latest.size, size);
    assert_eq!(latest.root, root);

    // 5. Tampering, one object at a time.
    {
        // Byte 53 of an entry is inside its certificate or TBS.
        let _t = tamper_data_tile(&fixture.path("tile/data/001"), |c| c[53] ^= 1);
        let want =
            "tile/data/001: entry 0 (index 256) does not hash to its level-0 hash in tile/0/001";
        fixture
            .assert_finding(None, want, "a flipped byte in a data tile")
            .await;
    }
    {
        let _t = tamper_data_tile(&fixture.path("tile/data/000"), swap_first_entries);
        let want = "tile/data/000: entry 0 carries leaf_index 1, expected 0";
        fixture
            .assert_finding(None, want, "two swapped entries")
            .await;
    }
    {
        let _t = tamper(&fixture.path("tile/0/002"), |b| b[5 * 32] ^= 0x80);
        let want =
            "tile/data/002: entry 5 (index 517) does not hash to its level-0 hash in tile/0/002";
        fixture
            .assert_finding(None, want, "a flipped byte in a level-0 hash tile")
            .await;
    }
    {
        let level1 = format!("tile/1/000.p/{}", size / 256);
        let _t = tamper(&fixture.path(&level1), |b| b[32 + 7] ^= 1);
        let want = format!("{level1}: hash 1 is not the root of tile/0/001");
        fixture
            .assert_finding(None, &want, "a flipped byte in a level-1 hash tile")
            .await;
    }
    let intermediate = hex::encode(Sha256::digest(&pki.intermediate_der));
    {
        let issuer = format!("issuer/{intermediate}");
        let _t = tamper(&fixture.path(&issuer), |b| {
            let last = b.len() - 1;
            b[last] ^= 1;
        });
        let want = format!("{issuer}: content does not hash to its name");
        fixture
            .assert_finding(None, &want, "a flipped byte in an issuer")
            .await;
    }
    {
        let issuer = fixture.path(&format!("issuer/{intermediate}"));
        let original = std::fs::read(&issuer).unwrap();
        std::fs::remove_file(&issuer).unwrap();
        let want = format!("{}: not found", issuer.display());
        let result = fixture.audit(None).await;
        std::fs::write(&issuer, original).unwrap();
        assert_eq!(result.unwrap_err(), want, "a missing issuer");
    }
    let other_root = [7u8; 32];
    {
        let note = fixture.sign_checkpoint(size, other_root, checkpoint.timestamp + 1);
        let _t = tamper(&fixture.path("checkpoint"), |b| *b = note);
        let want = format!(
            "checkpoint root {} differs from the root {} computed from the tiles",
            b64(&other_root),
            b64(&root)
        );
        fixture
            .assert_finding(None, &want, "a checkpoint for a different root")
            .await;
        let want = format!(
            "checkpoint of size {size} has root {}, but the tree audited at that size has root {}: the log forked",
            b64(&other_root),
            b64(&root)
        );
        fixture
            .assert_finding(Some(&latest), &want, "a fork after an audit")
            .await;
    }
    {
        let stranger = LogKey::from_signing_key(fresh_key("stranger"));
        let note = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        }
        .sign(&stranger, checkpoint.timestamp)
        .note;
        let _t = tamper(&fixture.path("checkpoint"), |b| *b = note);
        let want = "checkpoint: bad checkpoint: no signature line from this log";
        fixture
            .assert_finding(None, want, "a checkpoint signed by another key")
            .await;
    }
    {
        let note = fixture.sign_checkpoint(size, root, 1);
        let _t = tamper(&fixture.path("checkpoint"), |b| *b = note);
        let leaves = parse_tile_leaves(&gunzip(
            &std::fs::read(fixture.path("tile/data/000")).unwrap(),
        ))
        .unwrap();
        let want = format!(
            "tile/data/000: entry 0 (index 0) has timestamp {}, after the checkpoint's 1",
            leaves[0].timestamp
        );
        fixture
            .assert_finding(None, &want, "entries newer than the checkpoint")
            .await;
    }
    {
        // The checkpoint of the first audit, served again after the second.
        let old = first_state.checkpoint.clone().unwrap().into_bytes();
        let _t = tamper(&fixture.path("checkpoint"), |b| *b = old);
        let want = format!(
            "checkpoint size {first_size} is smaller than the last audited size {size}: the log rolled back"
        );
        fixture
            .assert_finding(
                Some(&latest),
                &want,
                "an older checkpoint after a newer one",
            )
            .await;
        // The CLI says the same, exits non-zero and keeps its state.
        let before = std::fs::read(&state_path).unwrap();
        let out = ct_log(&[
            "audit",
            "--url",
            &format!("file://{}", fixture.data.display()),
            "--key",
            public_pem.to_str().unwrap(),
            "--state",
            state_path.to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("error: {want}")), "{stderr}");
        assert_eq!(std::fs::read(&state_path).unwrap(), before, "state kept");
    }
    {
        // A hash the first audit saw at the right edge, changed later.
        let edge_tile = format!("tile/0/{:03}", first_size / 256);
        let _t = tamper(&fixture.path(&edge_tile), |b| b[0] ^= 1);
        let want = format!("{edge_tile}: hash 0 differs from the tree audited at size {first_size}: the log forked");
        fixture
            .assert_finding(
                Some(&first_state),
                &want,
                "a rewritten hash below an audited size",
            )
            .await;
    }
    // Every tampering was undone: the log audits again.
    fixture.audit(Some(&first_state)).await.unwrap();
}
