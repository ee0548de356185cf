//! Layer 2 across machines: a persistent dedup store in PostgreSQL, shared
//! by every frontend and sequencer machine of every log.
//!
//! One table for all logs (created if missing, under an advisory lock so
//! that processes starting together do not race on the catalog):
//!
//! ```sql
//! ct_dedup (log TEXT NOT NULL, key BYTEA NOT NULL, leaf_index BIGINT NOT NULL,
//!           timestamp BIGINT NOT NULL, PRIMARY KEY (log, key))
//! ```
//!
//! A lookup is one `SELECT … WHERE log = $1 AND key = ANY($2)` and an insert
//! one `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO NOTHING`, whatever the
//! number of keys: a batch costs one round trip, not one per key. A key
//! already present keeps its first location, as in SQLite. Machines do not
//! share their in-flight keys, so two machines given the same entry at the
//! same moment may both log it; the table then keeps whichever location was
//! recorded first. That is a duplicate entry, never a wrong SCT.
//!
//! **No TLS**: the connection is plain TCP (`NoTls`), fine on loopback and
//! in the tests. In production reach the server over a trusted network or
//! through a TLS-terminating proxy (stunnel, PgBouncer with TLS to the
//! server); TLS support in this crate is future work.
//!
//! A dropped connection, or one a statement failed on, is replaced on the
//! next call. Connecting and every statement are bounded by
//! [`STATEMENT_TIMEOUT`]; a failed call only costs dedup hits (the batcher
//! treats its keys as new), never correctness.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Row};

use crate::{DedupError, Key, Location};

/// Bound on connecting and on each statement.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

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
    COMMIT;";

/// The `application_name` of our connections unless the URL sets one, so
/// that an operator can tell them apart in `pg_stat_activity`.
const APPLICATION_NAME: &str = "ct-log-dedup";

/// The persistent dedup store of one log in a PostgreSQL database; cheap to
/// clone (clones share the connection).
#[derive(Clone)]
pub struct PostgresDedup {
    config: Arc<Config>,
    /// The live connection; `None` after a failed statement.
    client: Arc<Mutex<Option<Arc<Client>>>>,
    log: String,
}

impl std::fmt::Debug for PostgresDedup {
    // The config holds the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDedup")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// `e` and its causes on one line: tokio-postgres's own message names only
/// the kind of failure ("db error"); the server's words are in the source.
fn pg_err(e: &(dyn std::error::Error + 'static)) -> DedupError {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        parts.push(cause.to_string());
        next = cause.source();
    }
    let text = parts.join(": ");
    DedupError(format!(
        "postgres: {}",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    ))
}

/// Runs `future` within [`STATEMENT_TIMEOUT`].
async fn bounded<T>(
    future: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DedupError> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, future).await {
        Ok(result) => result.map_err(|e| pg_err(&e)),
        Err(_) => Err(DedupError(format!(
            "postgres: no answer within {} s",
            STATEMENT_TIMEOUT.as_secs()
        ))),
    }
}

async fn connect(config: &Config) -> Result<Client, DedupError> {
    let (client, connection) = bounded(config.connect(NoTls)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %pg_err(&e), "PostgreSQL dedup connection closed");
        }
    });
    Ok(client)
}

/// The first record of each key, in their order: which of two locations
/// given in one call wins must not depend on the order in which the server
/// happens to insert `UNNEST`'s rows. (A repeated key would not make the
/// statement fail: checked on PostgreSQL 15, `DO NOTHING` skips the second
/// row; only `DO UPDATE` refuses to affect a row twice.)
fn first_of_each_key(mut records: Vec<(Key, Location)>) -> Vec<(Key, Location)> {
    let mut seen = HashSet::with_capacity(records.len());
    records.retain(|(key, _)| seen.insert(*key));
    records
}

/// A `(key, location)` row of `ct_dedup`.
fn record(row: &Row) -> Result<(Key, Location), DedupError> {
    let key: &[u8] = row.try_get(0).map_err(|e| pg_err(&e))?;
    let key = Key::try_from(key)
        .map_err(|_| DedupError(format!("a {}-byte key in ct_dedup", key.len())))?;
    let leaf_index: i64 = row.try_get(1).map_err(|e| pg_err(&e))?;
    let timestamp: i64 = row.try_get(2).map_err(|e| pg_err(&e))?;
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
        let mut config: Config = url.parse().map_err(|e| pg_err(&e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(STATEMENT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        let client = connect(&config).await?;
        bounded(client.batch_execute(SCHEMA)).await?;
        Ok(PostgresDedup {
            config: Arc::new(config),
            client: Arc::new(Mutex::new(Some(Arc::new(client)))),
            log: log.to_owned(),
        })
    }

    /// The live connection, connecting if there is none or it closed.
    async fn client(&self) -> Result<Arc<Client>, DedupError> {
        let current = self.client.lock().unwrap().clone();
        if let Some(client) = current.filter(|client| !client.is_closed()) {
            return Ok(client);
        }
        let fresh = Arc::new(connect(&self.config).await?);
        *self.client.lock().unwrap() = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops `failed` as the live connection, unless another call has
    /// already replaced it.
    fn forget(&self, failed: &Arc<Client>) {
        let mut current = self.client.lock().unwrap();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            *current = None;
        }
    }

    /// Runs one statement with explicitly typed parameters: no separate
    /// prepare, so one round trip.
    ///
    /// After a failure the next call starts on a fresh connection: the
    /// failure may have ended the session (a FATAL error, a closed socket)
    /// before the connection task noticed, or left a timed-out statement
    /// running on it. Waiting for `is_closed` alone would fail one more call.
    async fn query(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, DedupError> {
        let client = self.client().await?;
        let result = bounded(client.query_typed(sql, params)).await;
        if result.is_err() {
            self.forget(&client);
        }
        result
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
            .query(
                sql,
                &[(&self.log, Type::TEXT), (&wanted, Type::BYTEA_ARRAY)],
            )
            .await?;
        let found: HashMap<Key, Location> = rows.iter().map(record).collect::<Result<_, _>>()?;
        Ok(keys.iter().map(|key| found.get(key).copied()).collect())
    }

    /// Records every `(key, location)` in one statement; a key already
    /// present, or repeated earlier in `records`, keeps its first location.
    pub async fn insert(&self, records: Vec<(Key, Location)>) -> Result<(), DedupError> {
        let records = first_of_each_key(records);
        if records.is_empty() {
            return Ok(());
        }
        let sql = "INSERT INTO ct_dedup (log, key, leaf_index, timestamp)
                   SELECT $1, k, i, t FROM UNNEST($2::bytea[], $3::int8[], $4::int8[]) AS r(k, i, t)
                   ON CONFLICT DO NOTHING";
        let keys: Vec<&[u8]> = records.iter().map(|(key, _)| &key[..]).collect();
        // Indexes are < 2^40 and timestamps < 2^63: both fit BIGINT.
        let indexes: Vec<i64> = records.iter().map(|(_, l)| l.leaf_index as i64).collect();
        let timestamps: Vec<i64> = records.iter().map(|(_, l)| l.timestamp as i64).collect();
        let params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&self.log, Type::TEXT),
            (&keys, Type::BYTEA_ARRAY),
            (&indexes, Type::INT8_ARRAY),
            (&timestamps, Type::INT8_ARRAY),
        ];
        self.query(sql, &params).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_of_each_key_keeps_the_first_location_in_order() {
        let at = |i| Location {
            leaf_index: i,
            timestamp: i,
        };
        let records = vec![([1; 32], at(1)), ([2; 32], at(2)), ([1; 32], at(3))];
        assert_eq!(
            first_of_each_key(records),
            vec![([1; 32], at(1)), ([2; 32], at(2))]
        );
    }
}
