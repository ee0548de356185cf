//! One running log as this process sees it: its identity, validation
//! policy, accepted roots, storage handle, caches, the way its entries get
//! sequenced, and the latest published checkpoint. `wiring` builds it from
//! the config and the process's role.
//!
//! The frontend owns nothing of the tree; it validates, makes sure issuers
//! are stored, hands entries to the sequencing side (`sequencing`) and signs
//! SCTs for the indexes that come back.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ct_dedup::PersistentDedup;
use ct_formats::{Cosigner, Hash, LogKey, SignedCheckpoint};
use ct_storage::{ObjectStore, StorageError};
use ct_validate::{Policy, Roots};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Semaphore};

use crate::admission::Admission;
use crate::object_cache::ObjectCache;
use crate::published::Follower;
use crate::roots::RootSet;
use crate::sequencing::Sequencing;

/// What the operator pages and metadata show about a log.
pub struct LogInfo {
    pub name: String,
    pub description: String,
    pub submission_prefix: String,
    pub monitoring_prefix: String,
    /// The accepted leaf NotAfter window, Unix seconds, `[start, limit)`.
    pub not_after_start: u64,
    pub not_after_limit: u64,
    pub period: Duration,
    /// From this Unix time on the log refuses submissions (410).
    pub read_only_after: u64,
}

/// A log's state in this process, shared by its request handlers.
pub struct Log {
    pub info: LogInfo,
    pub key: Arc<LogKey>,
    /// Extra checkpoint signers, whose verifier keys the log publishes.
    pub cosigners: Arc<[Cosigner]>,
    pub roots: Arc<RootSet>,
    pub policy: Arc<Policy>,
    pub store: Arc<dyn ObjectStore>,
    pub sequencing: Sequencing,
    /// Caps the submissions handled at once.
    pub in_flight: Arc<Semaphore>,
    /// Whether one more submission can be answered in time.
    pub admission: Admission,
    /// Caps the RFC 6962 reads handled at once, apart from submissions, so
    /// that a burst of one never takes the other's room.
    pub reads: Arc<Semaphore>,
    /// The newest checkpoint known published (none before the log exists).
    pub published: watch::Receiver<Option<SignedCheckpoint>>,
    /// Where `published` comes from, for a request naming a newer tree.
    pub follower: Follower,
    /// The log's dedup store, read for its leaf-hash index: the index of an
    /// entry by its leaf hash (get-proof-by-hash).
    pub leaf_hashes: PersistentDedup,
    /// Tiles and issuers served lately.
    pub read_cache: ObjectCache,
    /// Issuers known to be stored, so each is uploaded once per process.
    pub(crate) stored_issuers: Mutex<HashSet<Hash>>,
}

impl Log {
    /// The roots accepted now.
    pub fn roots(&self) -> Arc<Roots> {
        self.roots.current()
    }

    /// Whether the log has passed its sunset and is read-only.
    pub fn is_read_only(&self, now: u64) -> bool {
        now >= self.info.read_only_after
    }

    /// Reads the object `key` from storage, through the cache of immutable
    /// objects. `Ok(None)` when it does not exist.
    pub async fn read_object(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        if let Some(data) = self.read_cache.get(key) {
            return Ok(Some(data));
        }
        let data = self.store.get(key).await?;
        if let Some(data) = &data {
            self.read_cache.offer(key, data);
        }
        Ok(data)
    }

    /// Makes sure every issuer is served under `issuer/<hex>` before any
    /// tile can reference it. Returns their fingerprints in chain order.
    pub async fn store_issuers(&self, issuers: &[Vec<u8>]) -> Result<Vec<Hash>, StorageError> {
        let mut fingerprints = Vec::with_capacity(issuers.len());
        for der in issuers {
            let fingerprint: Hash = Sha256::digest(der).into();
            if !self.stored_issuers.lock().unwrap().contains(&fingerprint) {
                let key = format!("issuer/{}", hex::encode(fingerprint));
                self.store.put(&key, Bytes::copy_from_slice(der)).await?;
                self.stored_issuers.lock().unwrap().insert(fingerprint);
            }
            fingerprints.push(fingerprint);
        }
        Ok(fingerprints)
    }
}
