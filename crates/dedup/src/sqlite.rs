//! Layer 2 on one machine: a persistent SQLite dedup store per log, which
//! also holds the log's leaf-hash index (table `leaf_hashes`).
//!
//! All SQLite work runs on the blocking pool. Durability is relaxed
//! (`synchronous = NORMAL`): a record lost in a power cut only means a later
//! resubmission becomes a new entry, which is allowed.
//!
//! Keys are hashes, so every record lands on a random page of each table:
//! a round of N entries reads and dirties about 2N pages. With SQLite's
//! default 2 MiB page cache, a log of 3 M entries spent 28% of its server
//! CPU here, half of it re-reading pages and spilling dirty ones before
//! the commit; the store keeps [`CACHE_KIB`] of pages (the tables' inner
//! pages and the recent leaves) and checkpoints its WAL less often
//! ([`WAL_CHECKPOINT_PAGES`]), so a page dirtied again before the next
//! checkpoint is written back once (BENCHMARKS.md).
//!
//! The database is bound to one log ID, stored in it when it is created:
//! opened for another log (a log re-created under the same name with a new
//! key, a copied file) it refuses, since its locations belong to another
//! tree and an SCT signed from them would name the wrong certificate.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ct_db::{open_sqlite, Synchronous};
use rusqlite::{params, Connection, OptionalExtension};

use crate::{db_err, DedupError, Key, Location, Record};

/// The page cache of each log's store, in KiB (SQLite's default is 2 MiB).
const CACHE_KIB: u32 = 64 * 1024;
/// WAL pages after which a commit checkpoints (SQLite's default is 1,000):
/// a 64 MiB WAL at 4 KiB pages.
const WAL_CHECKPOINT_PAGES: u32 = 16_384;

/// The persistent dedup store of one log.
#[derive(Clone, Debug)]
pub struct SqliteDedup {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteDedup {
    /// Opens (creating if missing) the database at `path` as the store of
    /// the log `log_id` (hex), with relaxed durability (`synchronous =
    /// NORMAL`, see above). Refuses a database of another log.
    pub fn open(path: &Path, log_id: &str) -> Result<SqliteDedup, DedupError> {
        let schema = "CREATE TABLE IF NOT EXISTS dedup (
                          key BLOB PRIMARY KEY,
                          leaf_index INTEGER NOT NULL,
                          timestamp INTEGER NOT NULL
                      ) WITHOUT ROWID;
                      CREATE TABLE IF NOT EXISTS leaf_hashes (
                          hash BLOB PRIMARY KEY,
                          leaf_index INTEGER NOT NULL
                      ) WITHOUT ROWID;
                      CREATE TABLE IF NOT EXISTS bound_to (log_id TEXT NOT NULL)";
        let mut conn = open_sqlite(path, Synchronous::Normal, schema)?;
        // A negative cache_size is in KiB.
        conn.execute_batch(&format!(
            "PRAGMA cache_size = -{CACHE_KIB}; PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES};"
        ))
        .map_err(db_err)?;
        bind(&mut conn, log_id).map_err(|e| DedupError(format!("{}: {e}", path.display())))?;
        Ok(SqliteDedup {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DedupError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap()).map_err(db_err))
            .await
            .map_err(db_err)?
    }

    /// Looks up every key, in order.
    pub async fn lookup(&self, keys: Vec<Key>) -> Result<Vec<Option<Location>>, DedupError> {
        self.blocking(move |conn| {
            let mut statement =
                conn.prepare_cached("SELECT leaf_index, timestamp FROM dedup WHERE key = ?1")?;
            keys.iter()
                .map(|key| {
                    statement
                        .query_row([&key[..]], |row| {
                            Ok(Location {
                                leaf_index: row.get::<_, i64>(0)? as u64,
                                timestamp: row.get::<_, i64>(1)? as u64,
                            })
                        })
                        .optional()
                })
                .collect()
        })
        .await
    }

    /// Records every dedup record and leaf hash in one transaction; a key
    /// already present keeps its first location.
    pub async fn insert(&self, records: Vec<Record>) -> Result<(), DedupError> {
        self.blocking(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut dedup = tx.prepare_cached(
                    "INSERT OR IGNORE INTO dedup (key, leaf_index, timestamp) VALUES (?1, ?2, ?3)",
                )?;
                let mut leaves = tx.prepare_cached(
                    "INSERT OR IGNORE INTO leaf_hashes (hash, leaf_index) VALUES (?1, ?2)",
                )?;
                for Record {
                    key,
                    location,
                    leaf_hash,
                } in &records
                {
                    // Indexes are < 2^40 and timestamps < 2^63: both fit SQLite's i64.
                    let index = location.leaf_index as i64;
                    dedup.execute(params![&key[..], index, location.timestamp as i64])?;
                    leaves.execute(params![&leaf_hash[..], index])?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// The index of the entry whose leaf hash is `leaf_hash`, if recorded.
    pub async fn leaf_index(&self, leaf_hash: [u8; 32]) -> Result<Option<u64>, DedupError> {
        self.blocking(move |conn| {
            conn.prepare_cached("SELECT leaf_index FROM leaf_hashes WHERE hash = ?1")?
                .query_row([&leaf_hash[..]], |row| row.get::<_, i64>(0))
                .optional()
        })
        .await
        .map(|index| index.map(|i| i as u64))
    }
}

/// Binds a new database to `log_id`, or checks that an existing one is
/// bound to it.
fn bind(conn: &mut Connection, log_id: &str) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let bound: Option<String> = tx
        .query_row("SELECT log_id FROM bound_to", [], |row| row.get(0))
        .optional()
        .map_err(|e| e.to_string())?;
    match bound {
        Some(bound) if bound == log_id => return Ok(()),
        Some(bound) => {
            return Err(format!(
                "this dedup database belongs to log {bound}, not to this log ({log_id}); point dedup_db at this log's own database (or a new path)"
            ))
        }
        None => {}
    }
    let records: i64 = tx
        .query_row("SELECT count(*) FROM dedup", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if records > 0 {
        return Err(format!(
            "this dedup database holds {records} records but names no log, so they cannot be trusted for this one; move it aside to start a fresh one (resubmissions of older entries then become new entries, never wrong SCTs)"
        ));
    }
    tx.execute("INSERT INTO bound_to (log_id) VALUES (?1)", [log_id])
        .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's page cache and checkpoint interval are its own, not
    /// SQLite's defaults (2 MiB, 1,000 pages).
    #[test]
    fn the_store_sizes_its_cache_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDedup::open(&dir.path().join("dedup.db"), "aa").unwrap();
        let conn = db.conn.lock().unwrap();
        let pragma = |name: &str| -> i64 {
            conn.pragma_query_value(None, name, |row| row.get(0))
                .unwrap()
        };
        assert_eq!(pragma("cache_size"), -i64::from(CACHE_KIB));
        assert_eq!(
            pragma("wal_autocheckpoint"),
            i64::from(WAL_CHECKPOINT_PAGES)
        );
    }

    /// A database from before the binding, with records: refused.
    #[test]
    fn a_database_that_names_no_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        let conn = open_sqlite(&old, Synchronous::Normal, "CREATE TABLE dedup (key BLOB PRIMARY KEY, leaf_index INTEGER NOT NULL, timestamp INTEGER NOT NULL) WITHOUT ROWID").unwrap();
        conn.execute("INSERT INTO dedup VALUES (x'00', 1, 2)", [])
            .unwrap();
        drop(conn);
        let err = SqliteDedup::open(&old, "aa").unwrap_err().to_string();
        assert!(err.contains("names no log"), "{err}");
    }
}
