//! ct-client against third-party vectors in ../shared/vectors (skipped
//! loudly when absent): the transparency-dev Merkle proof vectors, with the
//! proofs recomputed from a tile directory, and the real navigli2025h2
//! production tiles audited as a local-directory log from trusted roots.

use std::path::{Path, PathBuf};

use base64::prelude::{Engine, BASE64_STANDARD};
use ct_client::{audit_trusted, AuditOptions, AuditState, LogClient, Scope, TrustedHead};
use ct_formats::{leaf_hash, root_of, verify_consistency, verify_inclusion, Hash};
use serde_json::Value;
use sha2::{Digest, Sha256};

const ROOT_778: &str = "+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=";
const ROOT_1024: &str = "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=";

fn vectors_dir(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!("SKIPPED: {} is absent", dir.display());
    None
}

fn b64(s: &str) -> Vec<u8> {
    BASE64_STANDARD.decode(s).unwrap()
}

fn hash(s: &str) -> Hash {
    b64(s).try_into().unwrap()
}

/// The leaves of the RFC 6962 test tree the transparency-dev vectors use.
const TEST_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// A directory holding the test tree as a log that published every size
/// from 1 to 8 would: one partial level-0 tile per size.
fn test_tree_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hashes: Vec<u8> = TEST_LEAVES
        .iter()
        .flat_map(|l| leaf_hash(&hex::decode(l).unwrap()))
        .collect();
    std::fs::create_dir_all(dir.path().join("tile/0/000.p")).unwrap();
    for width in 1..=8 {
        let path = dir.path().join(format!("tile/0/000.p/{width}"));
        std::fs::write(path, &hashes[..width * 32]).unwrap();
    }
    dir
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// A value that must be a 32-byte hash; None when it is not one.
fn node(v: &Value) -> Option<Hash> {
    b64(v.as_str()?).try_into().ok()
}

/// Roots are only compared for equality; one positive vector uses equal
/// 12-byte "don't care" roots, so other lengths map to a stand-in hash.
fn root(v: &Value) -> Hash {
    let bytes = b64(v.as_str().unwrap());
    bytes
        .clone()
        .try_into()
        .unwrap_or_else(|_| Sha256::digest([b"stand-in".as_slice(), &bytes].concat()).into())
}

/// Whether the client accepts a vector: the proof it computes from the tiles
/// for the vector's sizes is the vector's proof, and that proof verifies
/// with the vector's leaf hash and roots.
async fn client_accepts(client: &LogClient, v: &Value) -> bool {
    let proof: Option<Vec<Hash>> = v["proof"]
        .as_array()
        .map_or(Some(vec![]), |a| a.iter().map(node).collect());
    let Some(proof) = proof else { return false };
    if let Some(index) = v["leafIdx"].as_u64() {
        let size = v["treeSize"].as_u64().unwrap();
        let Some(leaf) = node(&v["leafHash"]) else {
            return false;
        };
        let computed = client.prove_inclusion(index, size).await;
        computed.is_ok_and(|c| c == proof)
            && verify_inclusion(&leaf, index, size, &proof, &root(&v["root"])).is_ok()
    } else {
        let (size1, size2) = (v["size1"].as_u64().unwrap(), v["size2"].as_u64().unwrap());
        let computed = client.prove_consistency(size1, size2).await;
        computed.is_ok_and(|c| c == proof)
            && verify_consistency(size1, size2, &proof, &root(&v["root1"]), &root(&v["root2"]))
                .is_ok()
    }
}

#[tokio::test]
async fn merkle_vectors_from_tiles() {
    let Some(dir) = vectors_dir("merkle") else {
        return;
    };
    let tree = test_tree_dir();
    let client = LogClient::new(tree.path().to_str().unwrap()).unwrap();
    let leaves: Vec<Hash> = TEST_LEAVES
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).unwrap()))
        .collect();
    assert_eq!(
        root_of(&leaves),
        hash("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
    );
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    assert!(files.len() > 150, "only {} vector files", files.len());
    let (mut positive, mut negative) = (0, 0);
    for path in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(
            client_accepts(&client, &v).await,
            !want_err,
            "{}",
            path.display()
        );
        *(if want_err {
            &mut negative
        } else {
            &mut positive
        }) += 1;
    }
    eprintln!("{positive} positive and {negative} negative Merkle vectors passed from tiles");
}

/// Copies the navigli tiles into a temporary directory to modify them.
fn navigli_copy(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(src, dir.path());
    dir
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn leaves_only() -> AuditOptions {
    AuditOptions {
        scope: Scope::Leaves,
        ..AuditOptions::default()
    }
}

fn head(size: u64, root: &str) -> TrustedHead {
    TrustedHead {
        size,
        root: hash(root),
        timestamp: None,
    }
}

/// The real tiles: every entry parses and hashes to its level-0 hash, and
/// the roots published in vectors/README.md come out, at 1024 in one go and
/// at 778 (through the partial tiles) then 1024 from the saved state, with
/// a consistency proof between the two.
#[tokio::test]
async fn navigli_audit_from_trusted_roots() {
    let Some(dir) = vectors_dir("navigli2025h2") else {
        return;
    };
    let client = LogClient::new(dir.to_str().unwrap()).unwrap();

    let (report, _) = audit_trusted(&client, head(1024, ROOT_1024), None, &leaves_only())
        .await
        .unwrap();
    assert_eq!((report.entries, report.data_tiles), (1024, 4));

    let (report, state) = audit_trusted(&client, head(778, ROOT_778), None, &leaves_only())
        .await
        .unwrap();
    assert_eq!((report.entries, report.data_tiles), (778, 4));
    let state_file = tempfile::tempdir().unwrap();
    let state_path = state_file.path().join("state.json");
    state.save(&state_path).unwrap();
    let state = AuditState::load(&state_path).unwrap().unwrap();
    let (report, state) =
        audit_trusted(&client, head(1024, ROOT_1024), Some(&state), &leaves_only())
            .await
            .unwrap();
    assert_eq!(
        (report.from_size, report.entries, report.data_tiles),
        (778, 246, 1)
    );
    assert!(report.consistency_proof.is_some_and(|n| n > 0));
    assert_eq!(state.size, 1024);

    let err = audit_trusted(&client, head(1024, ROOT_778), None, &leaves_only())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "checkpoint root {ROOT_778} differs from the root {ROOT_1024} computed from the tiles"
        )
    );
}

/// Without the partial tiles the client falls back to the full ones, and
/// data tiles stored gzip-compressed (without any header to say so) are
/// read the same.
#[tokio::test]
async fn navigli_partial_fallback_and_gzip() {
    let Some(dir) = vectors_dir("navigli2025h2") else {
        return;
    };
    let copy = navigli_copy(&dir);
    std::fs::remove_dir_all(copy.path().join("tile/0/003.p")).unwrap();
    std::fs::remove_dir_all(copy.path().join("tile/data/003.p")).unwrap();
    for n in 0..4 {
        let path = copy.path().join(format!("tile/data/{n:03}"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &std::fs::read(&path).unwrap()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
    }
    let url = format!("file://{}", copy.path().display());
    let client = LogClient::new(&url).unwrap();
    let (report, _) = audit_trusted(&client, head(778, ROOT_778), None, &leaves_only())
        .await
        .unwrap();
    assert_eq!(report.entries, 778);
    let leaves = client
        .data_tile(ct_formats::TileId {
            kind: ct_formats::TileKind::Data,
            index: 3,
            width: 10,
        })
        .await
        .unwrap();
    assert_eq!(leaves.len(), 10);
}
