//! The lock backend: the single source of truth for each log's latest
//! checkpoint. Only compare-and-swap may change it, which is what makes two
//! sequencers on one log unable to fork it: the loser's swap fails.

use async_trait::async_trait;

/// Errors from a lock backend.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The stored checkpoint was not the expected one (or already existed on
    /// create): another writer got there first.
    #[error("lock lost: the stored checkpoint is not the one this sequencer expected")]
    Lost,
    #[error("lock backend: {0}")]
    Backend(String),
}

/// Stores one checkpoint per log, keyed by the log ID.
#[async_trait]
pub trait LockBackend: Send + Sync + 'static {
    /// The current checkpoint of `log`, if the log exists.
    async fn fetch(&self, log: &str) -> Result<Option<Vec<u8>>, LockError>;
    /// Records the first checkpoint of a new log; `Lost` if one exists.
    async fn create(&self, log: &str, checkpoint: &[u8]) -> Result<(), LockError>;
    /// Replaces `old` by `new`; `Lost` unless the stored value equals `old`.
    async fn replace(&self, log: &str, old: &[u8], new: &[u8]) -> Result<(), LockError>;
}
