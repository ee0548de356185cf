//! Tests for ct-formats. Expected values are hand-built bytes, published
//! vectors, or Cloudflare's Azul crates (static_ct_api, tlog_tiles,
//! signed_note) as an independent oracle, never the code under test.

mod checkpoint;
mod entry;
mod key_sct;
mod merkle;
mod tile;
mod vectors;

use base64::prelude::{Engine, BASE64_STANDARD};

pub fn b64(s: &str) -> Vec<u8> {
    BASE64_STANDARD.decode(s).expect("test base64")
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(s).expect("test hex")
}

/// The shared third-party vectors, or None (with a loud note) when absent.
pub fn vectors_dir(sub: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors"
    ))
    .join(sub);
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: test vectors {} not found", dir.display());
        None
    }
}
