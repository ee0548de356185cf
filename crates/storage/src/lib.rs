//! Where a log's bytes live: the object store (tiles, issuers, checkpoint,
//! staging bundles) and the lock backend (the latest checkpoint, updated only
//! by compare-and-swap).
//!
//! This crate owns the storage seams as small traits so the sequencer can be
//! tested against in-memory fakes and moved to other backends later. It must
//! never interpret what it stores (no Merkle or certificate logic here), and
//! never hold a lock across an `.await`: blocking work (file system, SQLite)
//! runs on the blocking thread pool.
//!
//! Object stores: [`FsStore`] (a local directory), [`S3Store`] (an S3 bucket
//! on AWS or any S3-compatible server, with counted retries and bounded
//! timeouts) and [`MemoryStore`] (tests, with fault injection).
//!
//! Lock backends: [`SqliteLock`] (the default: a local database file, claims
//! as OS file locks), [`S3Lock`] (conditional writes in a bucket) and
//! [`PostgresLock`] (rows in PostgreSQL), whose claims are leases that a
//! standby takes over when the holder stops renewing ([`LeaseOptions`]), and
//! [`MemoryLock`] (tests).

mod clock;
mod fs;
mod headers;
mod lease;
mod lock;
mod memory;
mod postgres;
mod probe;
mod s3;
mod s3clock;
mod s3lock;
mod sqlite;

/// Fixed S3 credentials, for [`S3Options::credentials`].
pub use aws_credential_types::Credentials as S3Credentials;
pub use clock::{BootInstant, ClockReading, ClockStatus, MAX_CLOCK_SKEW};
pub use fs::FsStore;
pub use headers::{is_immutable, ObjectHeaders, IMMUTABLE_CACHE_CONTROL};
pub use lease::LeaseOptions;
pub use lock::{Claim, LockBackend, LockError, MemoryLock};
pub use memory::{Fault, MemoryStore};
pub use postgres::PostgresLock;
pub use probe::probe_conditional_writes;
pub use s3::{S3Config, S3Options, S3Store};
pub use s3lock::S3Lock;
pub use sqlite::SqliteLock;

use async_trait::async_trait;
use bytes::Bytes;

/// Errors from an object store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    #[error("immutable object {0} rewritten with different bytes")]
    ImmutableRewrite(String),
    #[error("{op} {key}: {source}")]
    Io {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage task failed: {0}")]
    Task(String),
    /// The store cannot be trusted with the log (one line saying why).
    #[error("{0}")]
    Unsafe(String),
    /// An S3 call failed for good (after any retries); `message` is one line.
    #[error("s3 {op} {key}: {message}")]
    S3 {
        op: &'static str,
        key: String,
        message: String,
    },
}

/// The condition of an [`ObjectStore::put_if`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteCondition<'a> {
    /// Only if no object has the key (`If-None-Match: *`).
    Absent,
    /// Only if the object is at this version (`If-Match` its ETag).
    Matches(&'a str),
}

/// What an [`ObjectStore::put_if`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutIf {
    /// Written; the new object's version.
    Written(String),
    /// Not written: the condition did not hold. With `after_retry`, an
    /// earlier attempt whose answer was lost may have written the object
    /// (then its bytes are the ones given).
    ConditionFailed { after_retry: bool },
}

/// A flat key → bytes store. Keys are relative paths such as `checkpoint`,
/// `tile/0/000.p/3` or `issuer/<hex>`.
///
/// Everything under `tile/` and `issuer/` is immutable once written: writing
/// it again is allowed only with identical bytes (a retry), which is why the
/// sequencer stages tiles before committing a tree size.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes `data` under `key`, atomically: a reader sees the old object or
    /// the whole new one, never a torn write. Returns once the write is durable.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError>;
    /// Reads `key`; `Ok(None)` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError>;
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Reads `key` with its version, for a later [`ObjectStore::put_if`];
    /// `Ok(None)` when it does not exist.
    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, String)>, StorageError>;
    /// Writes `data` under `key` only if `condition` holds, atomically with
    /// respect to every other conditional write of the key, from any
    /// process. This is what keeps the mutable `checkpoint` from going
    /// backwards.
    async fn put_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition<'_>,
    ) -> Result<PutIf, StorageError>;
    /// Up to `limit` keys that start with `prefix`, in order.
    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError>;
    /// Whether any object's key starts with `prefix`.
    async fn any_under(&self, prefix: &str) -> Result<bool, StorageError> {
        Ok(!self.list(prefix, 1).await?.is_empty())
    }
}

/// The version of `data` for stores that have no native one: its SHA-256.
pub(crate) fn content_version(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

/// Rejects keys that could escape the store's root or name a directory.
pub(crate) fn check_key(key: &str) -> Result<(), StorageError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.ends_with('/')
        || key.contains('\\')
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == ".." || part.starts_with('.'));
    if bad {
        return Err(StorageError::InvalidKey(key.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_cannot_escape_the_root() {
        for good in [
            "checkpoint",
            "tile/0/000.p/3",
            "issuer/abcd",
            "staging/5-ab",
        ] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "tile/../x",
            "tile//0",
            "a/./b",
            "tile/",
            ".tmp",
            "a\\b",
            "x/.hidden",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
