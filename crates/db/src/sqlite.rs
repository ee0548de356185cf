//! Opening a SQLite database the way every store of this project does.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::{error_chain, DbError};

/// How long a statement waits for another connection's write lock before
/// failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's `synchronous` setting: what a power cut may lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is on disk before it returns (`FULL`): for records that
    /// must never be lost, such as a committed checkpoint.
    Full,
    /// The last commits may be lost, the database never corrupted
    /// (`NORMAL`, in WAL mode): for records whose loss costs only work.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// SQLite's errors in their own words, causes included: they already say
/// which file or statement failed.
fn sqlite_err(e: &(dyn std::error::Error + 'static)) -> DbError {
    DbError::message(error_chain(e))
}

/// Opens (creating it, and its folder, if missing) the database at `path` in
/// WAL mode with `synchronous` durability and a 5 s busy timeout, and runs
/// `schema` (its `CREATE TABLE IF NOT EXISTS` statements).
pub fn open_sqlite(
    path: &Path,
    synchronous: Synchronous,
    schema: &str,
) -> Result<Connection, DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| sqlite_err(&e))?;
    }
    let conn = Connection::open(path).map_err(|e| sqlite_err(&e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite_err(&e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| sqlite_err(&e))?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())
        .map_err(|e| sqlite_err(&e))?;
    conn.execute_batch(schema).map_err(|e| sqlite_err(&e))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(conn: &Connection, name: &str) -> String {
        conn.pragma_query_value(None, name, |row| {
            Ok(row
                .get_ref(0)?
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| row.get::<_, i64>(0).unwrap().to_string()))
        })
        .unwrap()
    }

    #[test]
    fn opens_in_a_new_folder_with_the_settings_and_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/test.db");
        let schema = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)";
        for (synchronous, level) in [(Synchronous::Full, "2"), (Synchronous::Normal, "1")] {
            let conn = open_sqlite(&path, synchronous, schema).unwrap();
            assert_eq!(pragma(&conn, "journal_mode"), "wal");
            assert_eq!(pragma(&conn, "synchronous"), level);
            assert_eq!(pragma(&conn, "busy_timeout"), "5000");
            conn.execute("INSERT OR IGNORE INTO t (k) VALUES (1)", [])
                .unwrap();
        }
    }

    #[test]
    fn a_path_that_cannot_be_a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err = open_sqlite(&file.join("x.db"), Synchronous::Full, "").unwrap_err();
        let io = std::fs::create_dir_all(&file).unwrap_err();
        assert_eq!(err.to_string(), io.to_string(), "in the system's own words");
    }
}
