//! One running log as the frontend sees it: its identity, validation policy,
//! accepted roots, storage handle, issuer cache, batchers and the latest
//! published checkpoint — wired from its config.
//!
//! The frontend owns nothing of the tree; it validates, makes sure issuers
//! are stored, hands entries to the batchers and signs SCTs for the indexes
//! that come back.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use ct_batcher::{BatcherConfig, Batchers};
use ct_dedup::SqliteDedup;
use ct_formats::{Hash, LogKey, SignedCheckpoint};
use ct_storage::{
    FsStore, LeaseOptions, LockBackend, ObjectStore, PostgresLock, S3Lock, S3Store, SqliteLock,
    StorageError,
};
use ct_validate::{Policy, Roots};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::config::{Config, LockConfig, LogConfig, StorageConfig};

/// Where the effective roots (every root ever accepted) are kept.
const ROOTS_KEY: &str = "_roots.pem";

/// What the operator pages and metadata show about a log.
pub struct LogInfo {
    pub name: String,
    pub description: String,
    pub submission_prefix: String,
    pub monitoring_prefix: String,
    /// The accepted leaf NotAfter window, Unix seconds, `[start, limit)`.
    pub not_after_start: u64,
    pub not_after_limit: u64,
    pub period: Duration,
    /// From this Unix time on the log refuses submissions (410).
    pub read_only_after: u64,
}

/// A log's frontend state, shared by its request handlers.
pub struct Log {
    pub info: LogInfo,
    pub key: Arc<LogKey>,
    /// Replaced whole on SIGHUP; read by cloning the `Arc`.
    roots: RwLock<Arc<Roots>>,
    roots_file: PathBuf,
    pub policy: Arc<Policy>,
    pub store: Arc<dyn ObjectStore>,
    pub batchers: Batchers,
    /// Caps the submissions handled at once.
    pub in_flight: Arc<Semaphore>,
    /// The latest checkpoint the sequencer published.
    pub published: watch::Receiver<SignedCheckpoint>,
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
        claim_wait: Duration,
    ) -> anyhow::Result<(Log, Vec<JoinHandle<()>>)> {
        let pem = std::fs::read_to_string(&config.key)
            .with_context(|| format!("reading key {}", config.key.display()))?;
        let key = Arc::new(
            LogKey::from_pem(&pem)
                .with_context(|| format!("loading key {}", config.key.display()))?,
        );
        let (not_after_start, not_after_limit) = config.not_after_window()?;
        let policy = Policy {
            not_after_start,
            not_after_limit,
            max_chain_length: config.max_chain_length,
        };
        let store = open_store(config).await?;
        let roots = accumulate_roots(&store, load_roots(config)?).await?;
        let sequencer_config = ct_sequencer::LogConfig {
            name: config.name.clone(),
            origin: config.origin(),
            key: key.clone(),
            period: Duration::from_millis(config.period_ms),
            pool_size: config.pool_size,
            claim_wait,
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
            log: config.name.clone(),
            batchers: config.batchers,
            max_batch: 256,
            max_wait: Duration::from_millis((config.period_ms / 20).clamp(1, 25)),
            pool_size: config.pool_size,
            memory_entries: config.dedup_memory_entries,
        };
        let info = LogInfo {
            name: config.name.clone(),
            description: config
                .description
                .clone()
                .unwrap_or_else(|| config.origin()),
            submission_prefix: config.submission_prefix.clone(),
            monitoring_prefix: config.monitoring_prefix.clone(),
            not_after_start,
            not_after_limit,
            period: Duration::from_millis(config.period_ms),
            read_only_after: not_after_limit.saturating_add(config.sunset_grace_days * 86_400),
        };
        let log = Log {
            info,
            key,
            roots: RwLock::new(Arc::new(roots)),
            roots_file: config.roots.clone(),
            policy: Arc::new(policy),
            store,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight_submissions)),
            published: sequencer.published(),
            batchers: Batchers::spawn(batcher_config, sequencer, dedup, writer),
            stored_issuers: Mutex::default(),
        };
        Ok((log, vec![sequencer_task, writer_task]))
    }

    /// The roots accepted now.
    pub fn roots(&self) -> Arc<Roots> {
        self.roots.read().unwrap().clone()
    }

    /// Re-reads the roots file and adds any new root. Roots only
    /// accumulate: one missing from the file stays accepted (and is
    /// logged), since entries chaining to it are already in the log.
    pub async fn reload_roots(&self) -> anyhow::Result<()> {
        let pem = std::fs::read(&self.roots_file)
            .with_context(|| format!("reading roots {}", self.roots_file.display()))?;
        let from_file = Roots::from_pem(&pem)
            .with_context(|| format!("loading roots {}", self.roots_file.display()))?;
        let merged = accumulate_roots(&self.store, from_file).await?;
        let (before, after) = (self.roots().len(), merged.len());
        *self.roots.write().unwrap() = Arc::new(merged);
        tracing::info!(log = %self.info.name, before, after, "roots reloaded");
        Ok(())
    }

    /// Whether the log has passed its sunset and is read-only.
    pub fn is_read_only(&self, now: u64) -> bool {
        now >= self.info.read_only_after
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

/// How long a starting log waits for a previous holder's claim: a shared
/// lock's lease outlives a crashed holder by up to its TTL (10 s).
pub fn claim_wait(config: &Config) -> Duration {
    if config.lock.is_some() {
        LeaseOptions::default().ttl * 2
    } else {
        Duration::ZERO
    }
}

/// Opens the lock backend the config names: the SQLite `lock_db`, or a
/// shared PostgreSQL or S3 lock.
pub async fn open_lock(config: &Config) -> anyhow::Result<Arc<dyn LockBackend>> {
    Ok(match (&config.lock_db, &config.lock) {
        (Some(path), _) => {
            Arc::new(SqliteLock::open(path).with_context(|| format!("opening {}", path.display()))?)
        }
        (None, Some(LockConfig::Postgres { url })) => Arc::new(
            PostgresLock::connect(url)
                .await
                .context("connecting to the PostgreSQL lock")?,
        ),
        (None, Some(LockConfig::S3(location))) => {
            let store = S3Store::open(location.s3_config())
                .await
                .context("opening the S3 lock")?;
            Arc::new(S3Lock::new(Arc::new(store)))
        }
        (None, None) => anyhow::bail!("no lock backend configured (lock_db or lock)"),
    })
}

/// Opens the log's object store as its config describes.
pub async fn open_store(config: &LogConfig) -> anyhow::Result<Arc<dyn ObjectStore>> {
    Ok(match &config.storage {
        StorageConfig::Fs { path } => Arc::new(FsStore::open(path)?),
        StorageConfig::S3(location) => Arc::new(S3Store::open(location.s3_config()).await?),
    })
}

/// The union of the stored effective roots and `from_file`, stored back
/// when it grew. Roots absent from the file are kept and logged.
async fn accumulate_roots(store: &Arc<dyn ObjectStore>, from_file: Roots) -> anyhow::Result<Roots> {
    let stored = match store.get(ROOTS_KEY).await? {
        Some(pem) => Roots::from_pem(&pem)
            .context("reading the stored effective roots")?
            .certificates()
            .to_vec(),
        None => Vec::new(),
    };
    let dropped = stored
        .iter()
        .filter(|der| !from_file.certificates().contains(der))
        .count();
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "roots missing from the roots file stay accepted (roots only accumulate)"
        );
    }
    let merged = Roots::from_ders(
        stored
            .iter()
            .chain(from_file.certificates())
            .cloned()
            .collect(),
    )?;
    if merged.len() != stored.len() {
        let blocks: Vec<pem::Pem> = merged
            .certificates()
            .iter()
            .map(|der| pem::Pem::new("CERTIFICATE", der.clone()))
            .collect();
        store
            .put(ROOTS_KEY, Bytes::from(pem::encode_many(&blocks)))
            .await?;
    }
    Ok(merged)
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
