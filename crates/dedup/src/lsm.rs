//! Layer 2 on one machine, the default engine: a persistent dedup store
//! per log in an LSM tree (`fjall`), which also holds the log's leaf-hash
//! index.
//!
//! Why not SQLite alone: keys are hashes, so in SQLite's B-trees every
//! record dirties a random page of each table, which the WAL and then its
//! checkpoint write out whole; the cost per entry grows with the log until
//! the tables no longer fit any cache. An LSM tree appends each batch to
//! its journal and writes sorted files in the background, and looks up a
//! missing key (every new entry) through a Bloom filter: 20-23% less server
//! CPU per entry at 3.6 M and 10 M entries, the same on an empty log
//! (BENCHMARKS.md).
//!
//! All work runs on the blocking pool. Durability matches the SQLite store's
//! `synchronous = NORMAL`: a write reaches the operating system before it
//! returns (it survives a crash of the process), and a power cut may lose
//! the last ones, which only makes a later resubmission a new entry.
//!
//! The store is bound to one log ID, kept in it when it is created, and
//! refuses any other log, as the SQLite store does.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::{db_err, DedupError, Key, Location, Record};

/// The block cache of each log's store, as the SQLite store's page cache.
const CACHE_BYTES: u64 = 64 << 20;
/// Background threads (flushes, compactions) of each log's store: the
/// writes come once per round, and the server's cores are for submissions.
const WORKER_THREADS: usize = 1;
/// The key under which the store names its log.
const BOUND_TO: &str = "log_id";

/// The LSM dedup store of one log; cheap to clone.
#[derive(Clone)]
pub struct LsmDedup(Arc<Store>);

struct Store {
    db: Database,
    dedup: Keyspace,
    leaf_hashes: Keyspace,
    bound_to: Keyspace,
}

/// The stores this process has open, by directory: an LSM store is opened
/// once per process (a second open is refused as locked), so the batchers
/// and the read API share one.
static OPEN: Mutex<Option<HashMap<PathBuf, Weak<Store>>>> = Mutex::new(None);

impl std::fmt::Debug for LsmDedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmDedup").finish_non_exhaustive()
    }
}

impl Store {
    fn open(dir: &Path) -> fjall::Result<Store> {
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .worker_threads(WORKER_THREADS)
            .open()?;
        let keyspace = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        Ok(Store {
            dedup: keyspace("dedup")?,
            leaf_hashes: keyspace("leaf_hashes")?,
            bound_to: keyspace("bound_to")?,
            db: db.clone(),
        })
    }
}

impl LsmDedup {
    /// Opens (creating if missing) the store in the directory `path` as the
    /// store of the log `log_id` (hex), or shares it where this process has
    /// it open. Refuses a store of another log, and a path that is a file
    /// (a SQLite dedup database, say).
    pub fn open(path: &Path, log_id: &str) -> Result<LsmDedup, DedupError> {
        let at = |e: &dyn std::fmt::Display| DedupError(format!("{}: {e}", path.display()));
        if path.is_file() {
            return Err(at(&"a file, not an LSM store's directory: a SQLite dedup store? set \
                 dedup_engine = \"sqlite\" to keep it, or point dedup_db at a new path (`ct-log reindex` fills it)"));
        }
        std::fs::create_dir_all(path).map_err(|e| at(&e))?;
        let dir = std::fs::canonicalize(path).map_err(|e| at(&e))?;
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let open = open.get_or_insert_with(HashMap::new);
        let store = match open.get(&dir).and_then(Weak::upgrade) {
            Some(store) => store,
            None => {
                let store = Arc::new(Store::open(&dir).map_err(|e| at(&why(e)))?);
                open.insert(dir, Arc::downgrade(&store));
                store
            }
        };
        bind(&store, log_id).map_err(|e| at(&e))?;
        Ok(LsmDedup(store))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, DedupError> + Send + 'static,
    ) -> Result<T, DedupError> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(db_err)?
    }

    /// Looks up every key, in order.
    pub async fn lookup(&self, keys: Vec<Key>) -> Result<Vec<Option<Location>>, DedupError> {
        self.blocking(move |store| {
            keys.iter()
                .map(|key| match store.dedup.get(key).map_err(db_err)? {
                    Some(value) => decode_location(&value).map(Some),
                    None => Ok(None),
                })
                .collect()
        })
        .await
    }

    /// Records every dedup record and leaf hash in one atomic batch; a key
    /// already present, or earlier in `records`, keeps its first location.
    pub async fn insert(&self, records: Vec<Record>) -> Result<(), DedupError> {
        self.blocking(move |store| {
            let mut batch = store.db.batch().durability(Some(PersistMode::Buffer));
            let mut keys = HashSet::with_capacity(records.len());
            let mut hashes = HashSet::with_capacity(records.len());
            for record in &records {
                let index = record.location.leaf_index.to_be_bytes();
                if keys.insert(record.key)
                    && !store.dedup.contains_key(record.key).map_err(db_err)?
                {
                    batch.insert(&store.dedup, record.key, encode_location(record.location));
                }
                let hash = record.leaf_hash;
                if hashes.insert(hash) && !store.leaf_hashes.contains_key(hash).map_err(db_err)? {
                    batch.insert(&store.leaf_hashes, hash, index);
                }
            }
            batch.commit().map_err(db_err)
        })
        .await
    }

    /// The index of the entry whose leaf hash is `leaf_hash`, if recorded.
    pub async fn leaf_index(&self, leaf_hash: [u8; 32]) -> Result<Option<u64>, DedupError> {
        self.blocking(
            move |store| match store.leaf_hashes.get(leaf_hash).map_err(db_err)? {
                Some(value) => decode_u64(&value).map(Some),
                None => Ok(None),
            },
        )
        .await
    }
}

/// Why the store did not open, in an operator's words where the engine's
/// are terse.
fn why(e: fjall::Error) -> String {
    match e {
        fjall::Error::Locked => {
            "open in another process: another `ct-log` (serve or reindex) is using \
            this log's dedup store, and one process at a time opens an LSM store; stop it first"
                .into()
        }
        e => e.to_string(),
    }
}

/// A location as stored: the index, then the timestamp, big-endian.
fn encode_location(location: Location) -> [u8; 16] {
    let mut value = [0; 16];
    value[..8].copy_from_slice(&location.leaf_index.to_be_bytes());
    value[8..].copy_from_slice(&location.timestamp.to_be_bytes());
    value
}

fn decode_location(value: &[u8]) -> Result<Location, DedupError> {
    let (index, timestamp) = value.split_at_checked(8).ok_or_else(|| corrupt(value))?;
    Ok(Location {
        leaf_index: decode_u64(index)?,
        timestamp: decode_u64(timestamp)?,
    })
}

fn decode_u64(value: &[u8]) -> Result<u64, DedupError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| corrupt(value))?;
    Ok(u64::from_be_bytes(bytes))
}

fn corrupt(value: &[u8]) -> DedupError {
    DedupError(format!(
        "a stored value of {} bytes is not a location; the store is corrupt (move it aside and run `ct-log reindex`)",
        value.len()
    ))
}

/// Binds a new store to `log_id`, or checks that an existing one is bound
/// to it. The binding is written, and persisted, before any record.
fn bind(store: &Store, log_id: &str) -> Result<(), String> {
    let bound = store.bound_to.get(BOUND_TO).map_err(|e| e.to_string())?;
    match bound {
        Some(bound) if *bound == *log_id.as_bytes() => return Ok(()),
        Some(bound) => {
            return Err(format!(
                "this dedup store belongs to log {}, not to this log ({log_id}); point dedup_db at this log's own store (or a new path)",
                String::from_utf8_lossy(&bound)
            ))
        }
        None => {}
    }
    if !store.dedup.is_empty().map_err(|e| e.to_string())? {
        return Err("this dedup store holds records but names no log, so they cannot be trusted for this one; move it aside to start a fresh one (resubmissions of older entries then become new entries, never wrong SCTs)".into());
    }
    store
        .bound_to
        .insert(BOUND_TO, log_id)
        .map_err(|e| e.to_string())?;
    store
        .db
        .persist(PersistMode::SyncAll)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u8, location: Location) -> Record {
        Record {
            key: [i; 32],
            location,
            leaf_hash: [i ^ 0xff; 32],
        }
    }

    fn at(leaf_index: u64, timestamp: u64) -> Location {
        Location {
            leaf_index,
            timestamp,
        }
    }

    /// The read API and the batchers open the same store: one process
    /// shares one handle (fjall refuses a second as locked), and checks
    /// the log of each open.
    #[tokio::test]
    async fn one_process_shares_one_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dedup.lsm");
        let batchers = LsmDedup::open(&path, "aa").unwrap();
        let reads = LsmDedup::open(&dir.path().join("./dedup.lsm"), "aa").unwrap();
        batchers.insert(vec![record(1, at(5, 50))]).await.unwrap();
        assert_eq!(reads.leaf_index([1 ^ 0xff; 32]).await.unwrap(), Some(5));
        let err = LsmDedup::open(&path, "bb").unwrap_err().to_string();
        assert!(err.contains("belongs to log aa"), "{err}");
    }

    /// Pointed at a SQLite dedup database (an engine switched in the config
    /// but not the path), the store refuses instead of failing obscurely.
    #[test]
    fn a_file_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-dedup.db");
        std::fs::write(&path, b"SQLite format 3\0").unwrap();
        let err = LsmDedup::open(&path, "aa").unwrap_err().to_string();
        assert!(
            err.contains("a file, not an LSM store's directory"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn a_short_value_is_corruption_not_a_location() {
        assert!(decode_location(&[0; 15]).is_err());
        assert!(decode_location(&[0; 17]).is_err());
        assert_eq!(
            decode_location(&encode_location(at(5, 6))).unwrap(),
            at(5, 6)
        );
    }
}
