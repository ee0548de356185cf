//! The lock backend: the single source of truth for each log's latest
//! checkpoint. Only compare-and-swap may change it, which is what makes two
//! sequencers on one log unable to fork it: the loser's swap fails.

use async_trait::async_trait;

use crate::clock::BootInstant;

/// Errors from a lock backend.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The stored checkpoint was not the expected one (or already existed on
    /// create): another writer got there first.
    #[error("lock lost: the stored checkpoint is not the one this sequencer expected")]
    Lost,
    /// Another live process is the sequencer of this log.
    #[error("another process is already sequencing this log ({0})")]
    Claimed(String),
    /// This machine's clock is too far from the lock store's to sequence.
    #[error("{0}")]
    ClockSkew(String),
    #[error("lock backend: {0}")]
    Backend(String),
}

impl From<ct_db::DbError> for LockError {
    fn from(e: ct_db::DbError) -> LockError {
        LockError::Backend(e.to_string())
    }
}

/// Proof that this process is the only sequencer of one log. Dropping it
/// (or the process dying) lets another process claim the log.
///
/// A claim held as an OS lock ([`Claim::new`]) lasts as long as its holder.
/// A lease in a remote backend ([`Claim::revocable`]) can be lost while held
/// — renewals failed until it expired, or another process took it over —
/// and its owner must then stop sequencing: [`Claim::is_lost`] and
/// [`Claim::lost`] tell it so.
pub struct Claim {
    _held: Box<dyn Send + Sync>,
    /// `true` once lost; `None` for claims that cannot be lost.
    lost: Option<tokio::sync::watch::Receiver<bool>>,
    /// When a lease runs out unless renewed, by this machine's boot-time
    /// clock ([`Claim::with_expiry`]).
    expires: Option<tokio::sync::watch::Receiver<BootInstant>>,
}

impl Claim {
    /// A claim that lasts until dropped: `held` releases it on drop.
    pub fn new(held: impl Send + Sync + 'static) -> Claim {
        Claim {
            _held: Box::new(held),
            lost: None,
            expires: None,
        }
    }

    /// A claim that may be lost while held: `lost` turns `true` when it is.
    /// A closed channel (its sender dropped) also counts as lost, because
    /// nothing keeps the claim alive any more.
    pub fn revocable(
        held: impl Send + Sync + 'static,
        lost: tokio::sync::watch::Receiver<bool>,
    ) -> Claim {
        Claim {
            _held: Box::new(held),
            lost: Some(lost),
            expires: None,
        }
    }

    /// Also counts the claim lost once the boot-time clock passes the
    /// latest instant sent on `expires`. A process that was paused (SIGSTOP,
    /// a host stalled on I/O or swap, a suspended VM) learns it at once this
    /// way, before its renewal task has even run again.
    pub fn with_expiry(mut self, expires: tokio::sync::watch::Receiver<BootInstant>) -> Claim {
        self.expires = Some(expires);
        self
    }

    /// Whether the claim has been lost (never, for [`Claim::new`] claims).
    pub fn is_lost(&self) -> bool {
        let flagged = self
            .lost
            .as_ref()
            .is_some_and(|rx| *rx.borrow() || rx.has_changed().is_err());
        let expired = self
            .expires
            .as_ref()
            .is_some_and(|rx| BootInstant::now() >= *rx.borrow());
        flagged || expired
    }

    /// How long until the lease runs out unless renewed; `None` for claims
    /// that do not expire.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.expires.as_ref().map(|rx| rx.borrow().remaining())
    }

    /// Resolves once the claim is lost; never, for [`Claim::new`] claims.
    pub async fn lost(&self) {
        match &self.lost {
            Some(rx) => {
                // An error means the sender is gone: lost as well.
                let _ = rx.clone().wait_for(|lost| *lost).await;
            }
            None => std::future::pending().await,
        }
    }
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
    /// Claims the right to sequence `log`, failing with `Claimed` while
    /// another holder lives. A refusal before any work, where the swap would
    /// only catch a second sequencer at its first commit. Remote backends
    /// return a lease ([`Claim::revocable`]) that the holder must watch.
    async fn claim(&self, log: &str) -> Result<Claim, LockError>;
    /// Why this machine's clock is unfit to sequence, as last measured
    /// against the lock store's; `None` when it is fine, or when the lock
    /// is local and this machine's clock is the only one (SQLite).
    fn clock_problem(&self) -> Option<String> {
        None
    }
}

/// An in-memory lock backend for tests, with injectable swap failures.
#[derive(Debug, Default)]
pub struct MemoryLock {
    rows: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// Pending faults for `replace`, oldest first.
    faults: std::sync::Mutex<std::collections::VecDeque<crate::Fault>>,
    /// Logs currently claimed.
    claims: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Releases a `MemoryLock` claim when dropped.
struct MemoryClaim {
    log: String,
    claims: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Drop for MemoryClaim {
    fn drop(&mut self) {
        self.claims.lock().unwrap().remove(&self.log);
    }
}

impl MemoryLock {
    pub fn new() -> MemoryLock {
        MemoryLock::default()
    }

    /// Makes the next `replace` fail: without swapping (`NotWritten`) or
    /// after swapping (`WrittenAnyway`).
    pub fn inject(&self, fault: crate::Fault) {
        self.faults.lock().unwrap().push_back(fault);
    }
}

#[async_trait]
impl LockBackend for MemoryLock {
    async fn fetch(&self, log: &str) -> Result<Option<Vec<u8>>, LockError> {
        Ok(self.rows.lock().unwrap().get(log).cloned())
    }

    async fn create(&self, log: &str, checkpoint: &[u8]) -> Result<(), LockError> {
        let mut rows = self.rows.lock().unwrap();
        if rows.contains_key(log) {
            return Err(LockError::Lost);
        }
        rows.insert(log.to_string(), checkpoint.to_vec());
        Ok(())
    }

    async fn replace(&self, log: &str, old: &[u8], new: &[u8]) -> Result<(), LockError> {
        let fault = self.faults.lock().unwrap().pop_front();
        if fault == Some(crate::Fault::NotWritten) {
            return Err(LockError::Backend("injected fault".into()));
        }
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(log) {
            Some(body) if body == old => *body = new.to_vec(),
            _ => return Err(LockError::Lost),
        }
        match fault {
            Some(_) => Err(LockError::Backend("injected fault after the swap".into())),
            None => Ok(()),
        }
    }

    async fn claim(&self, log: &str) -> Result<Claim, LockError> {
        if !self.claims.lock().unwrap().insert(log.to_string()) {
            return Err(LockError::Claimed("claimed in this memory lock".into()));
        }
        Ok(Claim::new(MemoryClaim {
            log: log.to_string(),
            claims: self.claims.clone(),
        }))
    }
}
