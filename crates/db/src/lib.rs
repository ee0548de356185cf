//! How the lock backends and the dedup stores reach their databases, written
//! once: a PostgreSQL client that bounds every statement and replaces a
//! failed connection ([`PgClient`]), the SQLite opener with the project's
//! settings ([`open_sqlite`]), and the one-line error text both report
//! ([`DbError`], [`error_chain`]).
//!
//! It owns connecting, timeouts and reconnection, never a schema or a query:
//! each caller passes its own tables and statements, and maps [`DbError`]
//! into its own error type.

mod error;
mod postgres;
mod sqlite;

pub use error::{error_chain, one_line, DbError};
pub use postgres::{column, PgClient, STATEMENT_TIMEOUT};
pub use sqlite::{open_sqlite, Synchronous};
