//! A log's keys, read from the files its `[[log]]` table names: the
//! ECDSA key that signs SCTs and the RFC 6962 checkpoint signature, and
//! the optional cosigners that add Ed25519 and ML-DSA-44 lines.

use std::path::Path;

use anyhow::Context;
use ct_formats::{Cosigner, FormatError, LogKey};

use crate::config::LogConfig;

/// The log's ECDSA P-256 signing key.
pub fn load_key(config: &LogConfig) -> anyhow::Result<LogKey> {
    read_key(&config.key, LogKey::from_pem)
}

/// The log's cosigners, Ed25519 first, each named by the log's origin.
pub fn load_cosigners(config: &LogConfig) -> anyhow::Result<Vec<Cosigner>> {
    let origin = config.origin();
    let mut cosigners = Vec::new();
    if let Some(path) = &config.ed25519_key {
        cosigners.push(read_key(path, |pem| {
            Cosigner::ed25519_from_pem(&origin, pem)
        })?);
    }
    if let Some(path) = &config.mldsa44_key {
        cosigners.push(read_key(path, |pem| {
            Cosigner::mldsa44_from_pem(&origin, pem)
        })?);
    }
    Ok(cosigners)
}

fn read_key<K>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<K, FormatError>,
) -> anyhow::Result<K> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    parse(&pem).with_context(|| format!("loading key {}", path.display()))
}
