//! The PostgreSQL lock backend: each log's checkpoint and lease as rows of
//! two tables, changed only by compare-and-swap statements whose changed-row
//! count says who won. Any number of sequencer machines can share it, and
//! a PostgreSQL with a standby survives losing a machine.
//!
//! Tables (created if missing, under an advisory lock so that processes
//! starting together do not race on the catalog):
//!
//! ```sql
//! ct_log_checkpoints (log_id TEXT PRIMARY KEY, body BYTEA NOT NULL)
//! ct_log_leases (log_id TEXT PRIMARY KEY, holder TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL)
//! ```
//!
//! A swap is one `UPDATE … WHERE log_id = $1 AND body = $2`: under READ
//! COMMITTED a concurrent swap waits for the row, re-checks the condition
//! against the winner's body and changes nothing. Lease expiry is judged by
//! the server's clock alone (`clock_timestamp()`), so the sequencers' clocks
//! need not agree.
//!
//! **No TLS**: the connection is plain TCP (`NoTls`), fine on loopback and
//! in the tests. In production reach the server over a trusted network or
//! through a TLS-terminating proxy (stunnel, PgBouncer with TLS to the
//! server); TLS support in this crate is future work.
//!
//! A dropped connection is replaced on the next call. Every statement is
//! bounded by [`STATEMENT_TIMEOUT`]; a swap that timed out is reported as a
//! backend error (it may have happened), which the sequencer treats as fatal
//! and answers by reloading.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row};

use crate::lease::{self, held_by, LeaseOptions, LeaseRecords};
use crate::lock::{Claim, LockBackend, LockError};
use crate::s3::chain;

/// Bound on connecting and on each statement.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
    BEGIN;
    SELECT pg_advisory_xact_lock(7243591000001);
    CREATE TABLE IF NOT EXISTS ct_log_checkpoints (
        log_id TEXT PRIMARY KEY,
        body BYTEA NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ct_log_leases (
        log_id TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires TIMESTAMPTZ NOT NULL
    );
    COMMIT;";

/// A lock backend in a PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct PostgresLock {
    config: Arc<Config>,
    /// `None` after a failed statement: the next call connects afresh.
    client: Arc<Mutex<Option<Arc<Client>>>>,
    lease: LeaseOptions,
}

impl std::fmt::Debug for PostgresLock {
    // The config holds the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLock")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

fn backend(e: &(dyn std::error::Error + 'static)) -> LockError {
    LockError::Backend(format!("postgres: {}", chain(e)))
}

/// Runs `future` within [`STATEMENT_TIMEOUT`].
async fn bounded<T>(
    future: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, LockError> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, future).await {
        Ok(result) => result.map_err(|e| backend(&e)),
        Err(_) => Err(LockError::Backend(format!(
            "postgres: no answer within {} s",
            STATEMENT_TIMEOUT.as_secs()
        ))),
    }
}

async fn connect(config: &Config) -> Result<Client, LockError> {
    let (client, connection) = bounded(config.connect(NoTls)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %chain(&e), "PostgreSQL lock connection closed");
        }
    });
    Ok(client)
}

impl PostgresLock {
    /// Connects to `url` (`postgresql://user:password@host:port/db` or
    /// `host=… port=… user=… dbname=…`) with the default lease (10 s) and
    /// creates the tables if missing.
    pub async fn connect(url: &str) -> Result<PostgresLock, LockError> {
        PostgresLock::connect_with_lease(url, LeaseOptions::default()).await
    }

    /// [`PostgresLock::connect`] whose claims are leases of `lease`.
    pub async fn connect_with_lease(
        url: &str,
        lease: LeaseOptions,
    ) -> Result<PostgresLock, LockError> {
        let mut config: Config = url.parse().map_err(|e| backend(&e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(STATEMENT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("ct-log");
        }
        let client = connect(&config).await?;
        bounded(client.batch_execute(SCHEMA)).await?;
        Ok(PostgresLock {
            config: Arc::new(config),
            client: Arc::new(Mutex::new(Some(Arc::new(client)))),
            lease,
        })
    }

    /// The live connection, reconnecting if the last one closed or failed.
    async fn client(&self) -> Result<Arc<Client>, LockError> {
        let current = self.client.lock().unwrap().clone();
        if let Some(client) = current.filter(|c| !c.is_closed()) {
            return Ok(client);
        }
        let fresh = Arc::new(connect(&self.config).await?);
        *self.client.lock().unwrap() = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets the connection after a failed statement. A dropped socket
    /// is reported to the statement before `is_closed` knows it, and a
    /// timed-out statement may still be running: either way, start afresh.
    fn forget<T>(&self, result: Result<T, LockError>) -> Result<T, LockError> {
        if result.is_err() {
            *self.client.lock().unwrap() = None;
        }
        result
    }

    /// Runs a statement; the number of rows it changed.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, LockError> {
        let client = self.client().await?;
        self.forget(bounded(client.execute(sql, params)).await)
    }

    /// Runs a query expected to return at most one row.
    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, LockError> {
        let client = self.client().await?;
        self.forget(bounded(client.query_opt(sql, params)).await)
    }
}

/// `Ok` when exactly one row changed, else `otherwise`.
fn one_row(changed: u64, otherwise: LockError) -> Result<(), LockError> {
    if changed == 1 {
        Ok(())
    } else {
        Err(otherwise)
    }
}

#[async_trait]
impl LockBackend for PostgresLock {
    async fn fetch(&self, log: &str) -> Result<Option<Vec<u8>>, LockError> {
        let sql = "SELECT body FROM ct_log_checkpoints WHERE log_id = $1";
        let row = self.query_opt(sql, &[&log]).await?;
        row.map(|r| r.try_get(0).map_err(|e| backend(&e)))
            .transpose()
    }

    async fn create(&self, log: &str, checkpoint: &[u8]) -> Result<(), LockError> {
        let sql = "INSERT INTO ct_log_checkpoints (log_id, body) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING";
        one_row(
            self.execute(sql, &[&log, &checkpoint]).await?,
            LockError::Lost,
        )
    }

    async fn replace(&self, log: &str, old: &[u8], new: &[u8]) -> Result<(), LockError> {
        let sql = "UPDATE ct_log_checkpoints SET body = $3 WHERE log_id = $1 AND body = $2";
        one_row(
            self.execute(sql, &[&log, &old, &new]).await?,
            LockError::Lost,
        )
    }

    async fn claim(&self, log: &str) -> Result<Claim, LockError> {
        lease::claim(Arc::new(self.clone()), log, self.lease).await
    }
}

#[async_trait]
impl LeaseRecords for PostgresLock {
    /// The holder id alone identifies the lease: ids are fresh per claim.
    type Version = ();

    async fn take(&self, log: &str, holder: &str, ttl: Duration) -> Result<(), LockError> {
        let sql = "INSERT INTO ct_log_leases AS l (log_id, holder, expires)
                   VALUES ($1, $2, clock_timestamp() + $3::float8 * interval '1 second')
                   ON CONFLICT (log_id) DO UPDATE
                   SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
                   WHERE l.expires <= clock_timestamp()";
        let ttl = ttl.as_secs_f64();
        if self.execute(sql, &[&log, &holder, &ttl]).await? == 1 {
            return Ok(());
        }
        let sql = "SELECT holder, (extract(epoch FROM expires) * 1000)::int8
                   FROM ct_log_leases WHERE log_id = $1";
        let Some(row) = self.query_opt(sql, &[&log]).await? else {
            return Err(LockError::Claimed(
                "the lease changed hands meanwhile".into(),
            ));
        };
        let holder: &str = row.try_get(0).map_err(|e| backend(&e))?;
        Err(held_by(holder, row.try_get(1).map_err(|e| backend(&e))?))
    }

    async fn renew(&self, log: &str, holder: &str, _: &(), ttl: Duration) -> Result<(), LockError> {
        let sql = "UPDATE ct_log_leases
                   SET expires = clock_timestamp() + $3::float8 * interval '1 second'
                   WHERE log_id = $1 AND holder = $2";
        let ttl = ttl.as_secs_f64();
        one_row(
            self.execute(sql, &[&log, &holder, &ttl]).await?,
            LockError::Lost,
        )
    }

    async fn release(&self, log: &str, holder: &str, _: &()) -> Result<(), LockError> {
        let sql = "UPDATE ct_log_leases SET expires = clock_timestamp()
                   WHERE log_id = $1 AND holder = $2";
        one_row(self.execute(sql, &[&log, &holder]).await?, LockError::Lost)
    }
}
