//! A log as its sequencer holds it: the fixed parts and backends that
//! rounds and recovery share, and the committed tree.

use std::sync::Arc;

use ct_formats::{Cosigner, LogKey, SignedCheckpoint};
use ct_storage::{LockBackend, ObjectStore};

use crate::edge::RightEdge;
use crate::handle::LogConfig;
use crate::worker::RoundWorker;

/// A log's fixed parts and its backends.
pub(crate) struct Log {
    pub name: String,
    pub origin: String,
    pub key: Arc<LogKey>,
    pub cosigners: Arc<[Cosigner]>,
    pub store: Arc<dyn ObjectStore>,
    pub lock: Arc<dyn LockBackend>,
    /// The log's row in the lock backend: its log ID in hex.
    pub lock_id: String,
    /// Where rounds do their CPU work.
    pub worker: RoundWorker,
    /// Where rounds sign SCTs ahead, with the CPU nothing else wants;
    /// `None` where they do not (`LogConfig::sign_ahead`).
    pub presigner: Option<RoundWorker>,
}

impl Log {
    pub fn new(
        config: &LogConfig,
        store: Arc<dyn ObjectStore>,
        lock: Arc<dyn LockBackend>,
    ) -> std::io::Result<Log> {
        Ok(Log {
            name: config.name.clone(),
            origin: config.origin.clone(),
            key: config.key.clone(),
            cosigners: config.cosigners.clone(),
            store,
            lock,
            lock_id: hex::encode(config.key.log_id()),
            worker: RoundWorker::spawn(&config.name)?,
            presigner: config
                .sign_ahead
                .then(|| RoundWorker::spawn_idle(&config.name))
                .transpose()?,
        })
    }
}

/// The committed tree: its right edge and the checkpoint the lock holds.
pub(crate) struct Tree {
    pub edge: RightEdge,
    pub checkpoint: SignedCheckpoint,
}
