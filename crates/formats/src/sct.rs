//! RFC 6962 §3.2 SignedCertificateTimestamp with the static-ct-api
//! leaf_index extension.

use crate::codec::put_prefixed;
use crate::{leaf_index_extension, Entry, Hash, LogKey};

/// A signed certificate timestamp, v1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sct {
    pub log_id: Hash,
    pub timestamp: u64,
    pub extensions: Vec<u8>,
    /// RFC 5246 DigitallySigned.
    pub signature: Vec<u8>,
}

impl Sct {
    /// Signs `entry` as sequenced at `leaf_index` with `timestamp`. The signed
    /// input is the entry's MerkleTreeLeaf, and signing is deterministic.
    pub fn sign(key: &LogKey, entry: &Entry, timestamp: u64, leaf_index: u64) -> Sct {
        let signature = Sct::signature(key, entry, timestamp, leaf_index);
        Sct::with_signature(key, timestamp, leaf_index, signature)
    }

    /// The DigitallySigned of [`Sct::sign`] alone: the same bytes whoever
    /// makes it, so it can be made ahead of the answer.
    pub fn signature(key: &LogKey, entry: &Entry, timestamp: u64, leaf_index: u64) -> Vec<u8> {
        key.sign(&entry.merkle_tree_leaf(timestamp, leaf_index))
    }

    /// The SCT around a `signature` made by [`Sct::signature`] for the same
    /// key, timestamp and index.
    pub fn with_signature(
        key: &LogKey,
        timestamp: u64,
        leaf_index: u64,
        signature: Vec<u8>,
    ) -> Sct {
        Sct {
            log_id: *key.log_id(),
            timestamp,
            extensions: leaf_index_extension(leaf_index).to_vec(),
            signature,
        }
    }

    /// u8 version 0 | log_id | u64 ts | u16 ext_len | ext | signature.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 32 + 8 + 2 + self.extensions.len() + 80);
        out.push(0);
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        put_prefixed(&mut out, 2, &self.extensions);
        out.extend_from_slice(&self.signature);
        out
    }
}
