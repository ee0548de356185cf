//! Deduplication: remembering where each entry already is in the log, so a
//! resubmission gets the same index, timestamp and therefore the same SCT
//! instead of a second entry.
//!
//! Keys are the full 32-byte SHA-256 dedup key of an entry (never truncated:
//! a short key would let a colliding submission receive another entry's
//! SCT). Values are `(leaf_index, timestamp)`. Two layers:
//! - [`MemoryCache`]: bounded, in memory, owned by one batcher (no locks);
//! - [`SqliteDedup`]: persistent per log, read on a layer-1 miss and
//!   written in group commits by a [`DedupWriter`] task.
//!
//! This crate never decides what is logged; losing a dedup record can only
//! cause a duplicate entry, never a wrong SCT.

mod memory;
mod sqlite;

pub use memory::MemoryCache;
pub use sqlite::{spawn_writer, DedupError, DedupWriter, SqliteDedup};

/// A full SHA-256 dedup key.
pub type Key = [u8; 32];

/// Where an entry sits in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub leaf_index: u64,
    pub timestamp: u64,
}
