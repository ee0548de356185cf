//! One PostgreSQL connection, shared by the clones of a [`PgClient`] and
//! replaced after a failure.
//!
//! **No TLS**: the connection is plain TCP (`NoTls`), fine on loopback and
//! in the tests. In production reach the server over a trusted network or
//! through a TLS-terminating proxy (stunnel, PgBouncer with TLS to the
//! server); TLS support is future work.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Row};

use crate::{error_chain, DbError};

/// Bound on connecting and on each statement.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL database reached through one connection; cheap to clone
/// (clones share the connection).
///
/// Every call is bounded by [`STATEMENT_TIMEOUT`]. A call finds the
/// connection closed, or one a statement failed on, replaced by a fresh one.
#[derive(Clone)]
pub struct PgClient {
    config: Arc<Config>,
    /// The live connection; `None` after a failed statement.
    live: Arc<Mutex<Option<Arc<Client>>>>,
}

impl std::fmt::Debug for PgClient {
    // The config holds the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgClient")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("application_name", &self.config.get_application_name())
            .finish_non_exhaustive()
    }
}

fn pg_err(e: &tokio_postgres::Error) -> DbError {
    DbError::new("postgres", e)
}

/// Runs `future` within [`STATEMENT_TIMEOUT`].
async fn bounded<T>(
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DbError> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, future).await {
        Ok(result) => result.map_err(|e| pg_err(&e)),
        Err(_) => Err(DbError::message(format!(
            "postgres: no answer within {} s",
            STATEMENT_TIMEOUT.as_secs()
        ))),
    }
}

/// A new connection, its I/O task spawned on the runtime.
async fn open(config: &Config) -> Result<Client, DbError> {
    let (client, connection) = bounded(config.connect(NoTls)).await?;
    let name = config.get_application_name().unwrap_or_default().to_owned();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %error_chain(&e), application_name = name, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

impl PgClient {
    /// Connects to `url` (`postgresql://user:password@host:port/db` or
    /// `host=… port=… user=… dbname=…`). Unless the URL says otherwise,
    /// connecting is bounded by [`STATEMENT_TIMEOUT`] and the connection is
    /// named `application_name`, so that an operator can tell ours apart in
    /// `pg_stat_activity`.
    pub async fn connect(url: &str, application_name: &str) -> Result<PgClient, DbError> {
        let mut config: Config = url.parse().map_err(|e| pg_err(&e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(STATEMENT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(application_name);
        }
        let client = open(&config).await?;
        Ok(PgClient {
            config: Arc::new(config),
            live: Arc::new(Mutex::new(Some(Arc::new(client)))),
        })
    }

    /// The live connection, connecting if there is none or it closed.
    async fn client(&self) -> Result<Arc<Client>, DbError> {
        let current = self.live.lock().unwrap().clone();
        if let Some(client) = current.filter(|client| !client.is_closed()) {
            return Ok(client);
        }
        let fresh = Arc::new(open(&self.config).await?);
        *self.live.lock().unwrap() = Some(fresh.clone());
        Ok(fresh)
    }

    /// Passes `result` on, and after a failure drops `used` as the live
    /// connection, unless another call has already replaced it.
    ///
    /// The next call then starts on a fresh connection: the failure may have
    /// ended the session (a FATAL error, a closed socket) before the
    /// connection task noticed, or left a timed-out statement running on it.
    /// Waiting for `is_closed` alone would fail one more call.
    fn forget_on_error<T>(
        &self,
        used: &Arc<Client>,
        result: Result<T, DbError>,
    ) -> Result<T, DbError> {
        if result.is_err() {
            let mut live = self.live.lock().unwrap();
            if live.as_ref().is_some_and(|c| Arc::ptr_eq(c, used)) {
                *live = None;
            }
        }
        result
    }

    /// Runs `sql`, one or more statements without parameters.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), DbError> {
        let client = self.client().await?;
        self.forget_on_error(&client, bounded(client.batch_execute(sql)).await)
    }

    /// Runs a statement; the number of rows it changed.
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, DbError> {
        let client = self.client().await?;
        self.forget_on_error(&client, bounded(client.execute(sql, params)).await)
    }

    /// Runs a query expected to return at most one row.
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, DbError> {
        let client = self.client().await?;
        self.forget_on_error(&client, bounded(client.query_opt(sql, params)).await)
    }

    /// Runs one statement with explicitly typed parameters: no separate
    /// prepare, so one round trip.
    pub async fn query_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, DbError> {
        let client = self.client().await?;
        self.forget_on_error(&client, bounded(client.query_typed(sql, params)).await)
    }
}

/// Column `index` of `row` as a `T`.
pub fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
) -> Result<T, DbError> {
    row.try_get(index).map_err(|e| pg_err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_is_not_there_is_one_line_naming_postgres() {
        // Port 1 on loopback: nothing listens there, so connecting is refused.
        let url = "host=127.0.0.1 port=1 user=nobody dbname=none";
        let err = PgClient::connect(url, "ct-db-test").await.unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("postgres: "), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[tokio::test]
    async fn a_malformed_url_is_refused_before_connecting() {
        let err = PgClient::connect("postgresql://[", "ct-db-test")
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("postgres: "), "{err}");
    }
}
