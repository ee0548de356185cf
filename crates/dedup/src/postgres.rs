//! Layer 2 across machines: a persistent dedup store in PostgreSQL, shared
//! by every frontend and sequencer machine of every log.
//!
//! One table for all logs (created if missing, under an advisory lock so
//! that processes starting together do not race on the catalog):
//!
//! ```sql
//! ct_dedup (log TEXT NOT NULL, key BYTEA NOT NULL, leaf_index BIGINT NOT NULL,
//!           timestamp BIGINT NOT NULL, PRIMARY KEY (log, key))
//! ct_leaf_hashes (log TEXT NOT NULL, hash BYTEA NOT NULL, leaf_index BIGINT NOT NULL,
//!                 PRIMARY KEY (log, hash))
//! ```
//!
//! The second is the leaf-hash index that the RFC 6962 read API's
//! get-proof-by-hash reads, on any machine (stateless frontends included).
//!
//! A lookup is one `SELECT … WHERE log = $1 AND key = ANY($2)` and an insert
//! one `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO NOTHING`, whatever the
//! number of keys: a batch costs one round trip, not one per key. A key
//! already present keeps its first location, as in SQLite. Machines do not
//! share their in-flight keys, so two machines given the same entry at the
//! same moment may both log it; the table then keeps whichever location was
//! recorded first. That is a duplicate entry, never a wrong SCT.
//!
//! The connection is a [`ct_db::PgClient`]: plain TCP without TLS, replaced
//! after a failure, connecting and every statement bounded by
//! [`ct_db::STATEMENT_TIMEOUT`]. A failed call only costs dedup hits (the
//! batcher treats its keys as new), never correctness.

use std::collections::{HashMap, HashSet};

use ct_db::{column, PgClient};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

use crate::{DedupError, Key, Location, Record};

/// The advisory key differs from the storage crate's, so creating this
/// table never waits on (or for) creating the lock tables.
const SCHEMA: &str = "
    BEGIN;
    SELECT pg_advisory_xact_lock(7243591000002);
    CREATE TABLE IF NOT EXISTS ct_dedup (
        log TEXT NOT NULL,
        key BYTEA NOT NULL,
        leaf_index BIGINT NOT NULL,
        timestamp BIGINT NOT NULL,
        PRIMARY KEY (log, key)
    );
    CREATE TABLE IF NOT EXISTS ct_leaf_hashes (
        log TEXT NOT NULL,
        hash BYTEA NOT NULL,
        leaf_index BIGINT NOT NULL,
        PRIMARY KEY (log, hash)
    );
    COMMIT;";

/// The `application_name` of our connections unless the URL sets one, so
/// that an operator can tell them apart in `pg_stat_activity`.
const APPLICATION_NAME: &str = "ct-log-dedup";

/// The persistent dedup store of one log in a PostgreSQL database; cheap to
/// clone (clones share the connection).
#[derive(Clone, Debug)]
pub struct PostgresDedup {
    db: PgClient,
    log: String,
}

/// The first record of each key, in their order: which of two locations
/// given in one call wins must not depend on the order in which the server
/// happens to insert `UNNEST`'s rows. (A repeated key would not make the
/// statement fail: checked on PostgreSQL 15, `DO NOTHING` skips the second
/// row; only `DO UPDATE` refuses to affect a row twice.)
fn first_of_each_key(mut records: Vec<Record>) -> Vec<Record> {
    let mut seen = HashSet::with_capacity(records.len());
    records.retain(|record| seen.insert(record.key));
    records
}

/// A `(key, location)` row of `ct_dedup`.
fn record(row: &Row) -> Result<(Key, Location), DedupError> {
    let key: &[u8] = column(row, 0)?;
    let key = Key::try_from(key)
        .map_err(|_| DedupError(format!("a {}-byte key in ct_dedup", key.len())))?;
    let leaf_index: i64 = column(row, 1)?;
    let timestamp: i64 = column(row, 2)?;
    let location = Location {
        leaf_index: leaf_index as u64,
        timestamp: timestamp as u64,
    };
    Ok((key, location))
}

impl PostgresDedup {
    /// Connects to `url` (`postgresql://user:password@host:port/db` or
    /// `host=… port=… user=… dbname=…`) as the store of `log`, and creates
    /// the table if missing.
    pub async fn connect(url: &str, log: &str) -> Result<PostgresDedup, DedupError> {
        let db = PgClient::connect(url, APPLICATION_NAME).await?;
        db.batch_execute(SCHEMA).await?;
        Ok(PostgresDedup {
            db,
            log: log.to_owned(),
        })
    }

    /// Looks up every key in one statement; one answer per key, in order.
    pub async fn lookup(&self, keys: Vec<Key>) -> Result<Vec<Option<Location>>, DedupError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = "SELECT key, leaf_index, timestamp FROM ct_dedup
                   WHERE log = $1 AND key = ANY($2)";
        let wanted: Vec<&[u8]> = keys.iter().map(|key| &key[..]).collect();
        let rows = self
            .db
            .query_typed(
                sql,
                &[(&self.log, Type::TEXT), (&wanted, Type::BYTEA_ARRAY)],
            )
            .await?;
        let found: HashMap<Key, Location> = rows.iter().map(record).collect::<Result<_, _>>()?;
        Ok(keys.iter().map(|key| found.get(key).copied()).collect())
    }

    /// Records every dedup record and leaf hash in one statement; a key
    /// already present, or repeated earlier in `records`, keeps its first
    /// location (every leaf hash is kept: each names an entry of the log).
    pub async fn insert(&self, records: Vec<Record>) -> Result<(), DedupError> {
        if records.is_empty() {
            return Ok(());
        }
        // Both tables in one round trip: a data-modifying CTE.
        let sql = "WITH dedup AS (
                       INSERT INTO ct_dedup (log, key, leaf_index, timestamp)
                       SELECT $1, k, i, t FROM UNNEST($2::bytea[], $3::int8[], $4::int8[]) AS r(k, i, t)
                       ON CONFLICT DO NOTHING)
                   INSERT INTO ct_leaf_hashes (log, hash, leaf_index)
                   SELECT $1, h, i FROM UNNEST($5::bytea[], $6::int8[]) AS r(h, i)
                   ON CONFLICT DO NOTHING";
        let hashes: Vec<&[u8]> = records.iter().map(|r| &r.leaf_hash[..]).collect();
        // Indexes are < 2^40 and timestamps < 2^63: both fit BIGINT.
        let all_indexes: Vec<i64> = records
            .iter()
            .map(|r| r.location.leaf_index as i64)
            .collect();
        let firsts = first_of_each_key(records.clone());
        let keys: Vec<&[u8]> = firsts.iter().map(|r| &r.key[..]).collect();
        let indexes: Vec<i64> = firsts
            .iter()
            .map(|r| r.location.leaf_index as i64)
            .collect();
        let timestamps: Vec<i64> = firsts.iter().map(|r| r.location.timestamp as i64).collect();
        let params: [(&(dyn ToSql + Sync), Type); 6] = [
            (&self.log, Type::TEXT),
            (&keys, Type::BYTEA_ARRAY),
            (&indexes, Type::INT8_ARRAY),
            (&timestamps, Type::INT8_ARRAY),
            (&hashes, Type::BYTEA_ARRAY),
            (&all_indexes, Type::INT8_ARRAY),
        ];
        self.db.query_typed(sql, &params).await?;
        Ok(())
    }

    /// The index of the entry whose leaf hash is `leaf_hash`, if recorded.
    pub async fn leaf_index(&self, leaf_hash: [u8; 32]) -> Result<Option<u64>, DedupError> {
        let sql = "SELECT leaf_index FROM ct_leaf_hashes WHERE log = $1 AND hash = $2";
        let hash = &leaf_hash[..];
        let rows = self
            .db
            .query_typed(sql, &[(&self.log, Type::TEXT), (&hash, Type::BYTEA)])
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(column::<i64>(row, 0)? as u64)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_of_each_key_keeps_the_first_location_in_order() {
        let at = |key: u8, i| Record {
            key: [key; 32],
            location: Location {
                leaf_index: i,
                timestamp: i,
            },
            leaf_hash: [i as u8; 32],
        };
        let records = vec![at(1, 1), at(2, 2), at(1, 3)];
        assert_eq!(first_of_each_key(records), vec![at(1, 1), at(2, 2)]);
    }
}
