//! One running log as this process sees it: its identity, validation
//! policy, accepted roots, storage handle, issuer cache, the way its entries
//! get sequenced, and the latest published checkpoint — wired from its
//! config and the process's role.
//!
//! The frontend owns nothing of the tree; it validates, makes sure issuers
//! are stored, hands entries to the sequencing side (`sequencing`) and signs
//! SCTs for the indexes that come back.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use ct_batcher::{BatcherConfig, Batchers};
use ct_dedup::{PersistentDedup, PostgresDedup, SqliteDedup};
use ct_formats::{open_checkpoint, Hash, LogKey, SignedCheckpoint};
use ct_sequencer::LoadError;
use ct_storage::{
    FsStore, LeaseOptions, LockBackend, LockError, ObjectStore, PostgresLock, S3Lock, S3Store,
    SqliteLock, StorageError,
};
use ct_validate::{Policy, Roots};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::cluster::Forwarder;
use crate::config::{Config, DedupConfig, LockConfig, LogConfig, StorageConfig};
use crate::sequencing::{Local, Sequencing};

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

/// A log's state in this process, shared by its request handlers.
pub struct Log {
    pub info: LogInfo,
    pub key: Arc<LogKey>,
    /// Replaced whole on SIGHUP; read by cloning the `Arc`.
    roots: RwLock<Arc<Roots>>,
    roots_file: PathBuf,
    pub policy: Arc<Policy>,
    pub store: Arc<dyn ObjectStore>,
    pub sequencing: Sequencing,
    /// Caps the submissions handled at once.
    pub in_flight: Arc<Semaphore>,
    /// The newest checkpoint known published (none before the log exists).
    pub published: watch::Receiver<Option<SignedCheckpoint>>,
    /// Issuers known to be stored, so each is uploaded once per process.
    stored_issuers: Mutex<HashSet<Hash>>,
}

/// The processes that may sequence a clustered log.
pub struct Peers {
    pub sequencers: Vec<String>,
    pub secret: String,
    /// The lock's lease: how long a paused sequencer may keep it.
    pub lease_ttl: Duration,
}

/// What a process brings to each of its logs, by role.
pub struct Wiring {
    /// The lock backend, when this process may sequence (not frontends).
    pub lock: Option<Arc<dyn LockBackend>>,
    /// Whether a log claimed by another process makes this one stand by
    /// for its lease instead of refusing to start: for sequencer processes,
    /// and processes that can forward submissions meanwhile.
    pub standby: bool,
    /// How long a start waits for another holder's claim to lapse before
    /// standing by or refusing.
    pub claim_wait: Duration,
    /// The shared dedup store; `None` uses each log's SQLite `dedup_db`.
    pub dedup: Option<String>,
    /// How to reach the other processes that may sequence.
    pub cluster: Option<Peers>,
}

impl Log {
    /// Loads the log's key and roots, opens its storage, and (unless this
    /// process is a frontend) claims the log and starts its sequencer,
    /// batchers and dedup writer — or, when another process holds a shared
    /// lease, stands by for it in the background. Returns the background
    /// tasks so shutdown can wait for the last round and dedup records.
    pub async fn start(
        config: &LogConfig,
        wiring: &Wiring,
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
        let (local_tx, local) = watch::channel(None);
        let mut tasks = Vec::new();
        if let Some(lock) = &wiring.lock {
            let starter = Starter::new(config, key.clone(), store.clone(), lock.clone(), wiring);
            match starter.start(Some(wiring.claim_wait)).await {
                Ok((started, started_tasks)) => {
                    local_tx.send_replace(Some(Arc::new(started)));
                    tasks.extend(started_tasks);
                }
                Err(e) if wiring.standby && is_claimed(&e) => {
                    tracing::info!(log = %config.name, "another process sequences this log; standing by");
                    ct_sequencer::report_active(&config.name, false);
                    tasks.push(tokio::spawn(stand_by(starter, local_tx)));
                }
                Err(e) => return Err(e),
            }
        }
        let remote = match &wiring.cluster {
            Some(peers) => Some(Forwarder::new(peers, &config.name, &key)?),
            None => None,
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
        let follower = Follower {
            store: store.clone(),
            origin: config.origin(),
            key: key.clone(),
            local: local.clone(),
        };
        let (published_tx, published) = watch::channel(follower.newest().await);
        tokio::spawn(follower.follow(info.period, published_tx));
        let log = Log {
            info,
            key,
            roots: RwLock::new(Arc::new(roots)),
            roots_file: config.roots.clone(),
            policy: Arc::new(policy),
            store,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight_submissions)),
            published,
            sequencing: Sequencing::new(local, remote),
            stored_issuers: Mutex::default(),
        };
        Ok((log, tasks))
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

/// Whether `e` says another process holds the log's claim.
fn is_claimed(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<LoadError>(),
        Some(LoadError::Lock(LockError::Claimed(_)))
    )
}

/// Waits for the log's lease as long as it takes, then starts sequencing
/// and hands the sequencer to the log; gives up when the log is gone
/// (shutdown). A failed takeover (the lock backend or storage failing, or
/// the old holder's last round racing the load) is retried: a standby
/// exists for exactly that moment.
async fn stand_by(starter: Starter, local: watch::Sender<Option<Arc<Local>>>) {
    let mut delay = Duration::from_secs(1);
    loop {
        let started = tokio::select! {
            started = starter.start(None) => started,
            () = local.closed() => return,
        };
        match started {
            Ok((started, tasks)) => {
                tracing::info!(log = %starter.sequencer.name, "took over sequencing");
                local.send_replace(Some(Arc::new(started)));
                // The log's handles alone keep the sequencer running now.
                drop(local);
                for task in tasks {
                    let _ = task.await;
                }
                return;
            }
            Err(e) => tracing::error!(
                log = %starter.sequencer.name,
                error = %format!("{e:#}"),
                retry_in = ?delay,
                "taking over the log failed; standing by again"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = local.closed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Everything needed to start sequencing one log in this process.
struct Starter {
    sequencer: ct_sequencer::LogConfig,
    batchers: BatcherConfig,
    store: Arc<dyn ObjectStore>,
    lock: Arc<dyn LockBackend>,
    dedup: DedupChoice,
}

/// Which persistent dedup store a log's batchers use.
enum DedupChoice {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Starter {
    fn new(
        config: &LogConfig,
        key: Arc<LogKey>,
        store: Arc<dyn ObjectStore>,
        lock: Arc<dyn LockBackend>,
        wiring: &Wiring,
    ) -> Starter {
        let dedup = match &wiring.dedup {
            Some(url) => DedupChoice::Postgres(url.clone()),
            None => DedupChoice::Sqlite(config.dedup_db.clone().expect("resolved by Config::load")),
        };
        Starter {
            sequencer: ct_sequencer::LogConfig {
                name: config.name.clone(),
                origin: config.origin(),
                key,
                period: Duration::from_millis(config.period_ms),
                pool_size: config.pool_size,
                claim_wait: None,
            },
            batchers: BatcherConfig {
                log: config.name.clone(),
                batchers: config.batchers,
                max_batch: 256,
                max_wait: Duration::from_millis((config.period_ms / 20).clamp(1, 25)),
                pool_size: config.pool_size,
                memory_entries: config.dedup_memory_entries,
            },
            store,
            lock,
            dedup,
        }
    }

    /// Claims the log (waiting up to `claim_wait`, `None` for ever), opens
    /// it and its dedup store, and starts its sequencer, batchers and
    /// dedup writer.
    async fn start(
        &self,
        claim_wait: Option<Duration>,
    ) -> anyhow::Result<(Local, Vec<JoinHandle<()>>)> {
        let name = &self.sequencer.name;
        // Before the claim: a failure after it would let the sequencer run
        // (and publish) one last round for nothing.
        let dedup = match &self.dedup {
            DedupChoice::Sqlite(path) => PersistentDedup::Sqlite(
                SqliteDedup::open(path).with_context(|| format!("opening {}", path.display()))?,
            ),
            // Keyed by log ID, like the lock: two logs named alike (a
            // staging and a production log, a log re-created with a new
            // key) must never answer for each other.
            DedupChoice::Postgres(url) => PersistentDedup::Postgres(
                PostgresDedup::connect(url, &hex::encode(self.sequencer.key.log_id()))
                    .await
                    .context("connecting to the PostgreSQL dedup store")?,
            ),
        };
        let config = ct_sequencer::LogConfig {
            claim_wait,
            ..self.sequencer.clone()
        };
        let (sequencer, sequencer_task) =
            ct_sequencer::start(config, self.store.clone(), self.lock.clone())
                .await
                .with_context(|| format!("opening log {name:?}"))?;
        let (writer, writer_task) = ct_dedup::spawn_writer(dedup.clone());
        let batchers = Batchers::spawn(self.batchers.clone(), sequencer.clone(), dedup, writer);
        Ok((
            Local {
                batchers,
                sequencer,
            },
            vec![sequencer_task, writer_task],
        ))
    }
}

/// Tracks the newest checkpoint published for a log, for health and
/// status pages: the local sequencer's while it is active, else the one in
/// storage, verified with the log's key.
struct Follower {
    store: Arc<dyn ObjectStore>,
    origin: String,
    key: Arc<LogKey>,
    local: watch::Receiver<Option<Arc<Local>>>,
}

impl Follower {
    async fn newest(&self) -> Option<SignedCheckpoint> {
        let local = self.local.borrow().clone();
        if let Some(local) = local.filter(|l| l.sequencer.is_active()) {
            return Some(local.sequencer.published().borrow().clone());
        }
        let note = self.store.get("checkpoint").await.ok()??;
        open_checkpoint(&note, &self.origin, self.key.verifying_key())
            .inspect_err(|e| tracing::warn!(error = %e, "the stored checkpoint does not verify"))
            .ok()
    }

    /// Updates `published` every `period` until the log is dropped.
    async fn follow(self, period: Duration, published: watch::Sender<Option<SignedCheckpoint>>) {
        loop {
            tokio::select! {
                () = published.closed() => return,
                () = tokio::time::sleep(period) => {}
            }
            if let Some(newest) = self.newest().await {
                published.send_if_modified(|known| {
                    let newer = known
                        .as_ref()
                        .is_none_or(|k| newest.timestamp > k.timestamp);
                    if newer {
                        *known = Some(newest);
                    }
                    newer
                });
            }
        }
    }
}

/// Opens the lock backend the config names: the SQLite `lock_db`, or a
/// shared PostgreSQL or S3 lock with leases of `lease_ttl_ms`.
pub async fn open_lock(config: &Config) -> anyhow::Result<Arc<dyn LockBackend>> {
    let lease = LeaseOptions::new(Duration::from_millis(config.lease_ttl_ms));
    Ok(match (&config.lock_db, &config.lock) {
        (Some(path), _) => {
            Arc::new(SqliteLock::open(path).with_context(|| format!("opening {}", path.display()))?)
        }
        (None, Some(LockConfig::Postgres { url })) => Arc::new(
            PostgresLock::connect_with_lease(url, lease)
                .await
                .context("connecting to the PostgreSQL lock")?,
        ),
        (None, Some(LockConfig::S3(location))) => {
            let store = S3Store::open(location.s3_config())
                .await
                .context("opening the S3 lock")?;
            Arc::new(S3Lock::with_lease(Arc::new(store), lease))
        }
        (None, None) => anyhow::bail!("no lock backend configured (lock_db or lock)"),
    })
}

/// The shared dedup store's URL, if the config names one.
pub fn shared_dedup(config: &Config) -> Option<String> {
    config
        .dedup
        .as_ref()
        .map(|DedupConfig::Postgres { url }| url.clone())
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
