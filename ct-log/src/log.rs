//! One running log as the frontend sees it: its identity, validation policy,
//! storage handle, issuer cache and batchers — wired from its config.
//!
//! The frontend owns nothing of the tree; it validates, makes sure issuers
//! are stored, hands entries to the batchers and signs SCTs for the indexes
//! that come back.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use ct_batcher::{BatcherConfig, Batchers};
use ct_dedup::SqliteDedup;
use ct_formats::{Hash, LogKey};
use ct_storage::{FsStore, LockBackend, ObjectStore, StorageError};
use ct_validate::{Policy, Roots};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::config::{LogConfig, StorageConfig};

/// Longest chain a submitter may send.
const MAX_CHAIN_LENGTH: usize = 10;

/// A log's frontend state, shared by its request handlers.
pub struct Log {
    pub name: String,
    pub key: Arc<LogKey>,
    pub roots: Arc<Roots>,
    pub policy: Arc<Policy>,
    pub store: Arc<dyn ObjectStore>,
    pub batchers: Batchers,
    /// Issuers known to be stored, so each is uploaded once per process.
    stored_issuers: Mutex<HashSet<Hash>>,
}

impl Log {
    /// Loads the log's key and roots, opens its storage and dedup database,
    /// and starts its sequencer, batchers and dedup writer. Returns the
    /// background tasks so shutdown can wait for the last round and the
    /// last dedup records.
    pub async fn start(
        config: &LogConfig,
        lock: Arc<dyn LockBackend>,
    ) -> anyhow::Result<(Log, Vec<JoinHandle<()>>)> {
        let pem = std::fs::read_to_string(&config.key)
            .with_context(|| format!("reading key {}", config.key.display()))?;
        let key = Arc::new(
            LogKey::from_pem(&pem)
                .with_context(|| format!("loading key {}", config.key.display()))?,
        );
        let roots = load_roots(config)?;
        let (not_after_start, not_after_limit) = config.not_after_window()?;
        let policy = Policy {
            not_after_start,
            not_after_limit,
            max_chain_length: MAX_CHAIN_LENGTH,
        };
        let store = open_store(config).await?;
        let sequencer_config = ct_sequencer::LogConfig {
            origin: config.origin(),
            key: key.clone(),
            period: Duration::from_millis(config.period_ms),
            pool_size: config.pool_size,
        };
        let (sequencer, sequencer_task) =
            ct_sequencer::start(sequencer_config, store.clone(), lock)
                .await
                .with_context(|| format!("opening log {:?}", config.name))?;
        let dedup_path = config
            .dedup_db
            .as_deref()
            .expect("resolved by Config::load");
        let dedup = SqliteDedup::open(dedup_path)
            .with_context(|| format!("opening {}", dedup_path.display()))?;
        let (writer, writer_task) = ct_dedup::spawn_writer(dedup.clone());
        let batcher_config = BatcherConfig {
            batchers: config.batchers,
            max_batch: 256,
            max_wait: Duration::from_millis((config.period_ms / 20).clamp(1, 25)),
            pool_size: config.pool_size,
            memory_entries: config.dedup_memory_entries,
        };
        let log = Log {
            name: config.name.clone(),
            key,
            roots: Arc::new(roots),
            policy: Arc::new(policy),
            store,
            batchers: Batchers::spawn(batcher_config, sequencer, dedup, writer),
            stored_issuers: Mutex::default(),
        };
        Ok((log, vec![sequencer_task, writer_task]))
    }

    /// Makes sure every issuer is served under `issuer/<hex>` before any
    /// tile can reference it. Returns their fingerprints in chain order.
    pub async fn store_issuers(&self, issuers: &[Vec<u8>]) -> Result<Vec<Hash>, StorageError> {
        let mut fingerprints = Vec::with_capacity(issuers.len());
        for der in issuers {
            let fingerprint: Hash = Sha256::digest(der).into();
            if !self.stored_issuers.lock().unwrap().contains(&fingerprint) {
                let key = format!("issuer/{}", hex::encode(fingerprint));
                self.store.put(&key, Bytes::copy_from_slice(der)).await?;
                self.stored_issuers.lock().unwrap().insert(fingerprint);
            }
            fingerprints.push(fingerprint);
        }
        Ok(fingerprints)
    }
}

/// Opens the log's object store as its config describes.
pub async fn open_store(config: &LogConfig) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let StorageConfig::Fs { path } = &config.storage;
    Ok(Arc::new(FsStore::open(path)?))
}

pub fn load_roots(config: &LogConfig) -> anyhow::Result<Roots> {
    let path = &config.roots;
    let pem = std::fs::read(path).with_context(|| format!("reading roots {}", path.display()))?;
    let roots =
        Roots::from_pem(&pem).with_context(|| format!("loading roots {}", path.display()))?;
    anyhow::ensure!(
        !roots.is_empty(),
        "roots file {} holds no certificates",
        path.display()
    );
    Ok(roots)
}
