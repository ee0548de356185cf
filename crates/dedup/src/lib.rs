//! Deduplication: remembering where each entry already is in the log, so a
//! resubmission gets the same index, timestamp and therefore the same SCT
//! instead of a second entry.
//!
//! Keys are the full 32-byte SHA-256 dedup key of an entry (never truncated:
//! a short key would let a colliding submission receive another entry's
//! SCT). Values are `(leaf_index, timestamp)`. Two layers:
//! - [`MemoryCache`]: bounded, in memory, owned by one batcher (no locks);
//! - [`PersistentDedup`]: persistent, read on a layer-1 miss and written in
//!   group commits by a [`DedupWriter`] task. It is one of three stores:
//!   - [`SqliteDedup`]: one SQLite file per log, local to its machine; for a
//!     log whose batchers all run on one machine;
//!   - [`LsmDedup`]: the same, in an LSM tree (a directory per log), whose
//!     cost per entry stays flat as the log grows (for large logs);
//!   - [`PostgresDedup`]: one PostgreSQL table shared by every log and every
//!     machine, for a log whose frontends or sequencers run on several
//!     machines (each machine then sees the others' records).
//!
//! In every store a key already recorded keeps its first location.
//!
//! The same stores keep the log's leaf-hash index: each entry's RFC 6962
//! leaf hash and its index, written with its dedup record, for the read
//! API's get-proof-by-hash (`ct-log reindex` rebuilds both from the data
//! tiles).
//!
//! This crate never decides what is logged; losing a dedup record can only
//! cause a duplicate entry, never a wrong SCT, and losing a leaf hash only a
//! 404 from get-proof-by-hash until the log is reindexed.

mod lsm;
mod memory;
mod persistent;
mod postgres;
mod sqlite;

pub use lsm::LsmDedup;
pub use memory::MemoryCache;
pub use persistent::{spawn_writer, DedupEngine, DedupWriter, PersistentDedup};
pub use postgres::PostgresDedup;
pub use sqlite::SqliteDedup;

/// A full SHA-256 dedup key.
pub type Key = [u8; 32];

/// Where an entry sits in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub leaf_index: u64,
    pub timestamp: u64,
}

/// What is recorded for each new entry once its round is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: Key,
    pub location: Location,
    /// The entry's RFC 6962 leaf hash, SHA-256(0x00 ‖ MerkleTreeLeaf).
    pub leaf_hash: [u8; 32],
}

/// A failure of the persistent dedup store.
#[derive(Debug, thiserror::Error)]
#[error("dedup database: {0}")]
pub struct DedupError(String);

fn db_err(e: impl std::fmt::Display) -> DedupError {
    DedupError(e.to_string())
}

impl From<ct_db::DbError> for DedupError {
    fn from(e: ct_db::DbError) -> DedupError {
        db_err(e)
    }
}
