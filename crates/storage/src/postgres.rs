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
//! the server's clock alone (`clock_timestamp()`), so no machine judges a
//! lease by its own wall clock. Each machine still compares its clock with
//! the server's before claiming and after each renewal.
//!
//! The connection is a [`ct_db::PgClient`]: plain TCP without TLS, replaced
//! after a failure, every statement bounded by [`ct_db::STATEMENT_TIMEOUT`].
//! A swap that timed out is reported as a backend error (it may have
//! happened), which the sequencer treats as fatal and answers by reloading.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ct_db::{column, PgClient};

use crate::clock::{ClockReading, ClockStatus};
use crate::lease::{self, held_by, LeaseOptions, LeaseRecords};
use crate::lock::{Claim, LockBackend, LockError};

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

/// The `application_name` of our connections unless the URL sets one.
const APPLICATION_NAME: &str = "ct-log";

/// A lock backend in a PostgreSQL database; cheap to clone.
#[derive(Clone, Debug)]
pub struct PostgresLock {
    db: PgClient,
    lease: LeaseOptions,
    clock: Arc<ClockStatus>,
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
        let db = PgClient::connect(url, APPLICATION_NAME).await?;
        db.batch_execute(SCHEMA).await?;
        Ok(PostgresLock {
            db,
            lease,
            clock: Arc::default(),
        })
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
        let row = self.db.query_opt(sql, &[&log]).await?;
        Ok(row.map(|r| column(&r, 0)).transpose()?)
    }

    async fn create(&self, log: &str, checkpoint: &[u8]) -> Result<(), LockError> {
        let sql = "INSERT INTO ct_log_checkpoints (log_id, body) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING";
        one_row(
            self.db.execute(sql, &[&log, &checkpoint]).await?,
            LockError::Lost,
        )
    }

    async fn replace(&self, log: &str, old: &[u8], new: &[u8]) -> Result<(), LockError> {
        let sql = "UPDATE ct_log_checkpoints SET body = $3 WHERE log_id = $1 AND body = $2";
        one_row(
            self.db.execute(sql, &[&log, &old, &new]).await?,
            LockError::Lost,
        )
    }

    async fn claim(&self, log: &str) -> Result<Claim, LockError> {
        lease::claim(Arc::new(self.clone()), log, self.lease).await
    }

    fn clock_problem(&self) -> Option<String> {
        self.clock.problem()
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
        if self.db.execute(sql, &[&log, &holder, &ttl]).await? == 1 {
            return Ok(());
        }
        let sql = "SELECT holder, (extract(epoch FROM expires) * 1000)::int8
                   FROM ct_log_leases WHERE log_id = $1";
        let Some(row) = self.db.query_opt(sql, &[&log]).await? else {
            return Err(LockError::Claimed(
                "the lease changed hands meanwhile".into(),
            ));
        };
        let holder: &str = column(&row, 0)?;
        Err(held_by(holder, column(&row, 1)?))
    }

    async fn renew(&self, log: &str, holder: &str, _: &(), ttl: Duration) -> Result<(), LockError> {
        let sql = "UPDATE ct_log_leases
                   SET expires = clock_timestamp() + $3::float8 * interval '1 second'
                   WHERE log_id = $1 AND holder = $2";
        let ttl = ttl.as_secs_f64();
        one_row(
            self.db.execute(sql, &[&log, &holder, &ttl]).await?,
            LockError::Lost,
        )
    }

    async fn clock_reading(&self) -> Result<ClockReading, LockError> {
        let sql = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8";
        let sent = std::time::SystemTime::now();
        let row = self.db.query_opt(sql, &[]).await?;
        let received = std::time::SystemTime::now();
        let millis: i64 = column(
            &row.ok_or_else(|| LockError::Backend("no clock".into()))?,
            0,
        )?;
        let server = std::time::UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
        Ok(ClockReading::from_exchange(
            sent,
            received,
            server,
            Duration::ZERO,
        ))
    }

    fn clock_status(&self) -> &ClockStatus {
        &self.clock
    }

    async fn release(&self, log: &str, holder: &str, _: &()) -> Result<(), LockError> {
        let sql = "UPDATE ct_log_leases SET expires = clock_timestamp()
                   WHERE log_id = $1 AND holder = $2";
        one_row(
            self.db.execute(sql, &[&log, &holder]).await?,
            LockError::Lost,
        )
    }
}
