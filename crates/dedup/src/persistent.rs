//! Layer 2 as the batchers see it: the choice of persistent store
//! ([`PersistentDedup`]), and the writer task that batches its inserts into
//! one write per burst of rounds. The read API looks leaf hashes up in the
//! same store.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{DedupError, Key, Location, PostgresDedup, Record, SqliteDedup};

/// The persistent dedup store of one log, whichever the configuration
/// chose; cheap to clone.
///
/// An enum rather than a trait object: there are exactly two stores, both
/// known to this crate, so a `match` per call is simpler than an
/// `async-trait` object (no boxing, no extra dependency) and keeps `Clone`
/// derivable.
#[derive(Clone, Debug)]
pub enum PersistentDedup {
    /// One SQLite file per log, local to this machine.
    Sqlite(SqliteDedup),
    /// One PostgreSQL table shared by every machine.
    Postgres(PostgresDedup),
}

impl PersistentDedup {
    /// Looks up every key; one answer per key, in order.
    pub async fn lookup(&self, keys: Vec<Key>) -> Result<Vec<Option<Location>>, DedupError> {
        match self {
            PersistentDedup::Sqlite(db) => db.lookup(keys).await,
            PersistentDedup::Postgres(db) => db.lookup(keys).await,
        }
    }

    /// Records every dedup record and leaf hash in one write; a key already
    /// present keeps its first location.
    pub async fn insert(&self, records: Vec<Record>) -> Result<(), DedupError> {
        match self {
            PersistentDedup::Sqlite(db) => db.insert(records).await,
            PersistentDedup::Postgres(db) => db.insert(records).await,
        }
    }

    /// The index of the entry whose leaf hash is `leaf_hash`, if recorded.
    pub async fn leaf_index(&self, leaf_hash: [u8; 32]) -> Result<Option<u64>, DedupError> {
        match self {
            PersistentDedup::Sqlite(db) => db.leaf_index(leaf_hash).await,
            PersistentDedup::Postgres(db) => db.leaf_index(leaf_hash).await,
        }
    }
}

/// Queues dedup records for the writer task; cheap and never blocks.
#[derive(Clone, Debug)]
pub struct DedupWriter {
    records: mpsc::UnboundedSender<Vec<Record>>,
}

impl DedupWriter {
    pub fn record(&self, records: Vec<Record>) {
        if self.records.send(records).is_err() {
            tracing::warn!("dedup writer has stopped; records dropped");
        }
    }
}

/// Starts the writer task of `db`: it takes every queued record and writes
/// them in one insert, repeatedly, and ends once every `DedupWriter` is
/// dropped and the queue is written.
pub fn spawn_writer(db: PersistentDedup) -> (DedupWriter, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Record>>();
    let task = tokio::spawn(async move {
        while let Some(mut records) = rx.recv().await {
            while let Ok(more) = rx.try_recv() {
                records.extend(more);
            }
            if let Err(e) = db.insert(records).await {
                tracing::warn!(error = %e, "writing dedup records failed; resubmissions of them may become new entries");
            }
        }
    });
    (DedupWriter { records: tx }, task)
}
