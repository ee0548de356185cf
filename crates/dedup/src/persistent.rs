//! Layer 2 as the batchers see it: the choice of persistent store
//! ([`PersistentDedup`]), and the writer task that batches its inserts into
//! one write per burst of rounds. The read API looks leaf hashes up in the
//! same store.

use std::path::Path;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{DedupError, Key, Location, LsmDedup, PostgresDedup, Record, SqliteDedup};

/// What keeps a log's own store, local to its machine (`dedup_engine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupEngine {
    /// A SQLite file: every record dirties a random page of each table,
    /// so its cost per entry grows with the log.
    Sqlite,
    /// An LSM tree, a directory: written sequentially.
    Lsm,
}

/// The persistent dedup store of one log, whichever the configuration
/// chose; cheap to clone.
///
/// An enum rather than a trait object: there are exactly three stores, all
/// known to this crate, so a `match` per call is simpler than an
/// `async-trait` object (no boxing, no extra dependency) and keeps `Clone`
/// derivable.
#[derive(Clone, Debug)]
pub enum PersistentDedup {
    /// One SQLite file per log, local to this machine.
    Sqlite(SqliteDedup),
    /// One LSM tree (a directory) per log, local to this machine.
    Lsm(LsmDedup),
    /// One PostgreSQL table shared by every machine.
    Postgres(PostgresDedup),
}

impl PersistentDedup {
    /// Opens (creating if missing) the log `log_id`'s own store at `path`,
    /// kept by `engine`; refuses another log's.
    pub fn open_local(
        engine: DedupEngine,
        path: &Path,
        log_id: &str,
    ) -> Result<PersistentDedup, DedupError> {
        Ok(match engine {
            DedupEngine::Sqlite => PersistentDedup::Sqlite(SqliteDedup::open(path, log_id)?),
            DedupEngine::Lsm => PersistentDedup::Lsm(LsmDedup::open(path, log_id)?),
        })
    }

    /// Looks up every key; one answer per key, in order.
    pub async fn lookup(&self, keys: Vec<Key>) -> Result<Vec<Option<Location>>, DedupError> {
        match self {
            PersistentDedup::Sqlite(db) => db.lookup(keys).await,
            PersistentDedup::Lsm(db) => db.lookup(keys).await,
            PersistentDedup::Postgres(db) => db.lookup(keys).await,
        }
    }

    /// Records every dedup record and leaf hash in one write; a key already
    /// present keeps its first location.
    pub async fn insert(&self, records: Vec<Record>) -> Result<(), DedupError> {
        match self {
            PersistentDedup::Sqlite(db) => db.insert(records).await,
            PersistentDedup::Lsm(db) => db.insert(records).await,
            PersistentDedup::Postgres(db) => db.insert(records).await,
        }
    }

    /// The index of the entry whose leaf hash is `leaf_hash`, if recorded.
    pub async fn leaf_index(&self, leaf_hash: [u8; 32]) -> Result<Option<u64>, DedupError> {
        match self {
            PersistentDedup::Sqlite(db) => db.leaf_index(leaf_hash).await,
            PersistentDedup::Lsm(db) => db.leaf_index(leaf_hash).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each engine of a store local to a machine.
    const LOCAL: [DedupEngine; 2] = [DedupEngine::Sqlite, DedupEngine::Lsm];

    fn open(engine: DedupEngine, path: &Path, log: &str) -> Result<PersistentDedup, DedupError> {
        PersistentDedup::open_local(engine, path, log)
    }

    fn record(i: u8, leaf_index: u64, timestamp: u64) -> Record {
        Record {
            key: [i; 32],
            location: Location {
                leaf_index,
                timestamp,
            },
            leaf_hash: [i ^ 0xff; 32],
        }
    }

    #[tokio::test]
    async fn records_survive_reopening_and_keep_the_first_location() {
        for engine in LOCAL {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("d/dedup");
            let (first, later) = (record(1, 7, 1000), record(1, 9, 2000));
            {
                let (writer, task) = spawn_writer(open(engine, &path, "aa").unwrap());
                writer.record(vec![first]);
                writer.record(vec![later, record(2, 9, 2000)]);
                drop(writer);
                task.await.unwrap();
            }
            let db = open(engine, &path, "aa").unwrap();
            let found = db.lookup(vec![[1; 32], [3; 32], [2; 32]]).await.unwrap();
            let at = |r: Record| Some(r.location);
            assert_eq!(found, vec![at(first), None, at(later)], "{engine:?}");
            assert_eq!(db.leaf_index([1 ^ 0xff; 32]).await.unwrap(), Some(7));
            assert_eq!(db.leaf_index([2 ^ 0xff; 32]).await.unwrap(), Some(9));
            assert_eq!(db.leaf_index([3 ^ 0xff; 32]).await.unwrap(), None);
        }
    }

    /// Within one write, as across writes, the first location wins.
    #[tokio::test]
    async fn the_first_of_one_write_wins() {
        for engine in LOCAL {
            let dir = tempfile::tempdir().unwrap();
            let db = open(engine, &dir.path().join("dedup"), "aa").unwrap();
            let (first, later) = (record(1, 3, 30), record(1, 4, 40));
            db.insert(vec![first, later]).await.unwrap();
            let found = db.lookup(vec![[1; 32]]).await.unwrap();
            assert_eq!(found, vec![Some(first.location)], "{engine:?}");
            assert_eq!(db.leaf_index([1 ^ 0xff; 32]).await.unwrap(), Some(3));
        }
    }

    #[tokio::test]
    async fn a_store_answers_only_for_the_log_it_was_made_for() {
        for engine in LOCAL {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("dedup");
            let db = open(engine, &path, "aa").unwrap();
            db.insert(vec![record(1, 1, 2)]).await.unwrap();
            drop(db);
            open(engine, &path, "aa").expect("its own log");
            let err = open(engine, &path, "bb").unwrap_err().to_string();
            assert!(
                err.contains("belongs to log aa, not to this log (bb)"),
                "{engine:?}: {err}"
            );
            assert!(!err.contains('\n'), "{engine:?}");
        }
    }
}
