//! The SQLite lock backend: one row per log in a local database file.
//!
//! Each swap runs in an IMMEDIATE transaction (take the write lock first,
//! then read and update), so concurrent writers — threads or processes —
//! serialize instead of failing with "database is locked", and a lost race
//! shows up as zero rows changed.
//!
//! A log is claimed by an exclusive OS file lock on `<database>.<log>.claim`:
//! the kernel releases it the moment its process dies, so a restart after a
//! crash claims at once, while a second live process is refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ct_db::{open_sqlite, Synchronous};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::lock::{Claim, LockBackend, LockError};

/// A lock database file shared by every log of a process.
#[derive(Clone, Debug)]
pub struct SqliteLock {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn backend(e: impl std::fmt::Display) -> LockError {
    LockError::Backend(e.to_string())
}

impl SqliteLock {
    /// Opens (creating if missing) the database at `path`. Every commit is
    /// durable (`synchronous = FULL`): a committed checkpoint must survive a
    /// power cut.
    pub fn open(path: &Path) -> Result<SqliteLock, LockError> {
        let schema = "CREATE TABLE IF NOT EXISTS checkpoints (
                          log_id TEXT PRIMARY KEY,
                          body BLOB NOT NULL
                      )";
        let conn = open_sqlite(path, Synchronous::Full, schema)?;
        Ok(SqliteLock {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, LockError> + Send + 'static,
    ) -> Result<T, LockError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap()))
            .await
            .map_err(backend)?
    }
}

#[async_trait]
impl LockBackend for SqliteLock {
    async fn fetch(&self, log: &str) -> Result<Option<Vec<u8>>, LockError> {
        let log = log.to_string();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT body FROM checkpoints WHERE log_id = ?1",
                [log],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn create(&self, log: &str, checkpoint: &[u8]) -> Result<(), LockError> {
        let (log, checkpoint) = (log.to_string(), checkpoint.to_vec());
        self.with_conn(move |conn| {
            let changed = conn
                .execute(
                    "INSERT INTO checkpoints (log_id, body) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![log, checkpoint],
                )
                .map_err(backend)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(LockError::Lost)
            }
        })
        .await
    }

    async fn replace(&self, log: &str, old: &[u8], new: &[u8]) -> Result<(), LockError> {
        let (log, old, new) = (log.to_string(), old.to_vec(), new.to_vec());
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let changed = tx
                .execute(
                    "UPDATE checkpoints SET body = ?1 WHERE log_id = ?2 AND body = ?3",
                    params![new, log, old],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(LockError::Lost)
            }
        })
        .await
    }

    async fn claim(&self, log: &str) -> Result<Claim, LockError> {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{log}.claim"));
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(backend)?;
        match file.try_lock() {
            Ok(()) => Ok(Claim::new(file)),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(LockError::Claimed(format!("{} is locked", path.display())))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(backend(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn compare_and_swap_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let lock = SqliteLock::open(&dir.path().join("sub/lock.db")).unwrap();
        assert_eq!(lock.fetch("a").await.unwrap(), None);
        lock.create("a", b"one").await.unwrap();
        assert!(matches!(
            lock.create("a", b"other").await,
            Err(LockError::Lost)
        ));
        assert!(matches!(
            lock.replace("a", b"wrong", b"two").await,
            Err(LockError::Lost)
        ));
        assert!(matches!(
            lock.replace("b", b"one", b"two").await,
            Err(LockError::Lost)
        ));
        lock.replace("a", b"one", b"two").await.unwrap();
        assert_eq!(lock.fetch("a").await.unwrap().unwrap(), b"two");
        assert_eq!(lock.fetch("b").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_log_has_one_claimant_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock.db");
        let (first, second) = (
            SqliteLock::open(&path).unwrap(),
            SqliteLock::open(&path).unwrap(),
        );
        let claim = first.claim("log").await.unwrap();
        assert!(matches!(
            second.claim("log").await,
            Err(LockError::Claimed(_))
        ));
        assert!(
            second.claim("other-log").await.is_ok(),
            "claims are per log"
        );
        drop(claim);
        assert!(second.claim("log").await.is_ok(), "released on drop");
    }

    #[tokio::test]
    async fn two_handles_on_one_file_cannot_both_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock.db");
        let first = SqliteLock::open(&path).unwrap();
        let second = SqliteLock::open(&path).unwrap();
        first.create("log", b"0").await.unwrap();
        for round in 0..50u32 {
            let old = first.fetch("log").await.unwrap().unwrap();
            let (new_a, new_b) = (format!("a{round}"), format!("b{round}"));
            let (a, b) = tokio::join!(
                first.replace("log", &old, new_a.as_bytes()),
                second.replace("log", &old, new_b.as_bytes()),
            );
            assert!(
                a.is_ok() != b.is_ok(),
                "round {round}: exactly one swap must win: {a:?} {b:?}"
            );
            let stored = first.fetch("log").await.unwrap().unwrap();
            let winner = if a.is_ok() { &new_a } else { &new_b };
            assert_eq!(stored, winner.as_bytes());
        }
    }
}
