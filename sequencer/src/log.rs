//! A log as its sequencer holds it: the fixed parts and backends that
//! rounds and recovery share, and the committed tree.

use std::sync::Arc;

use ct_formats::{LogKey, SignedCheckpoint};
use ct_storage::{LockBackend, ObjectStore};

use crate::edge::RightEdge;

/// A log's fixed parts and its backends.
pub(crate) struct Log {
    pub name: String,
    pub origin: String,
    pub key: Arc<LogKey>,
    pub store: Arc<dyn ObjectStore>,
    pub lock: Arc<dyn LockBackend>,
    /// The log's row in the lock backend: its log ID in hex.
    pub lock_id: String,
}

/// The committed tree: its right edge and the checkpoint the lock holds.
pub(crate) struct Tree {
    pub edge: RightEdge,
    pub checkpoint: SignedCheckpoint,
}
