//! Staging bundles: every object of one round, written as a single object
//! before the round's checkpoint is committed to the lock.
//!
//! The bundle is keyed by the tree size and root it produces, so after a
//! crash between the lock commit and the tile uploads, recovery finds exactly
//! the bytes that were committed and re-applies them. Without it a restarted
//! sequencer could write different bytes to an immutable tile path.
//!
//! Every round uploads its tiles by applying its own bundle ([`apply`]),
//! the same code recovery runs after a crash, so the recovery path runs
//! every second instead of only on the day it is needed.
//!
//! Layout, repeated: `u16 key_len | key | u32 data_len | data`.

use std::sync::Arc;

use bytes::Bytes;
use ct_formats::Hash;
use ct_storage::{ObjectStore, StorageError};
use tokio::task::JoinSet;

use crate::upload::put_counted;

/// The staging key of the round producing a tree of `size` with `root`.
pub fn staging_key(size: u64, root: &Hash) -> String {
    format!("staging/{size}-{}", hex::encode(root))
}

/// Errors decoding a staging bundle.
#[derive(Debug, thiserror::Error)]
#[error("corrupt staging bundle at byte {0}")]
pub struct CorruptBundle(usize);

/// Encodes `(key, bytes)` objects into one bundle.
pub fn encode(objects: &[(String, Bytes)]) -> Vec<u8> {
    let len = objects.iter().map(|(k, d)| 6 + k.len() + d.len()).sum();
    let mut out = Vec::with_capacity(len);
    for (key, data) in objects {
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// Decodes a bundle written by `encode`.
pub fn decode(bundle: &Bytes) -> Result<Vec<(String, Bytes)>, CorruptBundle> {
    let mut objects = Vec::new();
    let mut at = 0;
    while at < bundle.len() {
        let (key, next) = take(bundle, at, 2)?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| CorruptBundle(at))?;
        let (data, next) = take(bundle, next, 4)?;
        objects.push((key, data));
        at = next;
    }
    Ok(objects)
}

/// Why a bundle could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Corrupt(#[from] CorruptBundle),
    #[error("{0}")]
    Storage(#[from] StorageError),
}

/// Writes every object of `bundle` to `store`, in parallel; the first
/// error wins. Rewriting objects already in place is harmless: they are
/// immutable and the bundle holds the same bytes.
pub(crate) async fn apply(
    store: &Arc<dyn ObjectStore>,
    log: &str,
    bundle: &Bytes,
) -> Result<(), ApplyError> {
    let mut puts = JoinSet::new();
    for (key, data) in decode(bundle)? {
        let (store, log) = (store.clone(), log.to_string());
        puts.spawn(async move { put_counted(&store, &log, &key, data).await });
    }
    while let Some(result) = puts.join_next().await {
        result.map_err(|e| StorageError::Task(e.to_string()))??;
    }
    Ok(())
}

/// Reads a length-prefixed field of `len_bytes` length bytes at `at`.
fn take(bundle: &Bytes, at: usize, len_bytes: usize) -> Result<(Bytes, usize), CorruptBundle> {
    let start = at + len_bytes;
    let prefix = bundle.get(at..start).ok_or(CorruptBundle(at))?;
    let len = prefix.iter().fold(0usize, |n, b| n << 8 | *b as usize);
    let end = start
        .checked_add(len)
        .filter(|end| *end <= bundle.len())
        .ok_or(CorruptBundle(at))?;
    Ok((bundle.slice(start..end), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let objects = vec![
            ("tile/0/000.p/2".to_string(), Bytes::from(vec![7u8; 64])),
            ("tile/data/000.p/2".to_string(), Bytes::new()),
        ];
        let bundle = Bytes::from(encode(&objects));
        assert_eq!(decode(&bundle).unwrap(), objects);
        assert_eq!(&bundle[..2], &[0, 14]);
        for cut in [1, 5, 20, bundle.len() - 1] {
            assert!(decode(&bundle.slice(..cut)).is_err(), "cut at {cut}");
        }
        assert!(decode(&Bytes::new()).unwrap().is_empty());
        assert_eq!(
            staging_key(5, &[0xab; 32]),
            format!("staging/5-{}", "ab".repeat(32))
        );
    }
}
