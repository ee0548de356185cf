//! Wiring one log into this process: load its key, open its storage and
//! roots, and, by the process's role, claim it and start its sequencer,
//! batchers and dedup writer, or stand by for its lease in the background,
//! or forward its entries to the processes that sequence it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ct_batcher::{BatcherConfig, Batchers};
use ct_dedup::{DedupEngine, PersistentDedup, PostgresDedup};
use ct_formats::{Cosigner, LogKey};
use ct_sequencer::LoadError;
use ct_storage::{
    probe_conditional_writes, FsStore, LeaseOptions, LockBackend, LockError, ObjectStore,
    PostgresLock, S3Lock, S3Store, SqliteLock,
};
use ct_validate::Policy;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::admission::{Admission, WorkQueue};
use crate::config::{Config, DedupConfig, LockConfig, LogConfig, StorageConfig};
use crate::forward::{Forwarder, Peers};
use crate::keys::{load_cosigners, load_key};
use crate::log::{Log, LogInfo};
use crate::object_cache::ObjectCache;
use crate::published::Follower;
use crate::roots::RootSet;
use crate::sequencing::{Local, Sequencing};

/// A batch goes to the sequencer once it holds this many entries: one
/// full data tile, so a busy round is a few large messages, not many small.
const BATCH_ENTRIES: usize = 256;
/// ...or this long after its first entry: a small share of the period
/// (1/20), capped so that a batch never waits long at a slow period (and
/// the batcher sends it sooner when the next round starts sooner).
fn batch_wait(period_ms: u64) -> Duration {
    Duration::from_millis((period_ms / 20).clamp(1, 25))
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
    /// The shared dedup store; `None` uses each log's own `dedup_db`.
    pub dedup: Option<String>,
    /// How to reach the other processes that may sequence.
    pub cluster: Option<Peers>,
    /// Create any log that neither its lock nor its storage knows
    /// (`serve --create-missing`, for development).
    pub create_missing: bool,
    /// Submissions being parsed and validated, shared by every log.
    pub work: Arc<WorkQueue>,
    /// How full tiles' partial versions are cleaned up.
    pub cleanup: ct_sequencer::Cleanup,
}

/// Loads the log's key and roots, opens its storage, and (unless this
/// process is a frontend) claims the log and starts its sequencer,
/// batchers and dedup writer — or, when another process holds a shared
/// lease, stands by for it in the background. Returns the background
/// tasks so shutdown can wait for the last round and dedup records.
pub async fn start_log(
    config: &LogConfig,
    wiring: &Wiring,
) -> anyhow::Result<(Log, Vec<JoinHandle<()>>)> {
    let key = Arc::new(load_key(config)?);
    let cosigners: Arc<[Cosigner]> = load_cosigners(config)?.into();
    let info = log_info(config)?;
    let store = open_store(config).await?;
    let roots = Arc::new(RootSet::open(config, store.clone()).await?);
    if let Some(url) = &config.roots_url {
        let every = Duration::from_secs(config.roots_refresh_s);
        tokio::spawn(roots.clone().follow(url.clone(), every));
    }
    // A connection of its own for the read API's lookups, apart from the
    // batchers' (none at all on a frontend).
    let leaf_hashes = DedupChoice::of(config, wiring.dedup.as_ref())
        .open(key.log_id())
        .await?;
    let (local, tasks) = start_sequencing(config, &key, &cosigners, &store, wiring).await?;
    let remote = match &wiring.cluster {
        Some(peers) => Some(Forwarder::new(peers, &config.name, &key)?),
        None => None,
    };
    let follower = Follower {
        store: store.clone(),
        origin: config.origin(),
        key: key.clone(),
        local: local.clone(),
        refreshed: Default::default(),
    };
    let (published_tx, published) = watch::channel(follower.newest().await);
    tokio::spawn(follower.clone().follow(info.period, published_tx));
    let log = Log {
        policy: Arc::new(Policy {
            not_after_start: info.not_after_start,
            not_after_limit: info.not_after_limit,
            max_chain_length: config.max_chain_length,
        }),
        info,
        key,
        cosigners,
        roots,
        store,
        in_flight: Arc::new(Semaphore::new(config.max_in_flight_submissions)),
        admission: Admission::new(
            wiring.work.clone(),
            Duration::from_millis(config.period_ms),
            config.latency_budget(),
            &config.name,
        ),
        reads: Arc::new(Semaphore::new(config.max_in_flight_reads)),
        published,
        follower,
        leaf_hashes,
        sequencing: Sequencing::new(local, remote),
        read_cache: ObjectCache::default(),
        stored_issuers: Default::default(),
    };
    Ok((log, tasks))
}

fn log_info(config: &LogConfig) -> anyhow::Result<LogInfo> {
    let (not_after_start, not_after_limit) = config.not_after_window()?;
    Ok(LogInfo {
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
    })
}

/// Where this process sequences the log: its sequencer once started (at
/// once, or after standing by), never for a frontend.
async fn start_sequencing(
    config: &LogConfig,
    key: &Arc<LogKey>,
    cosigners: &Arc<[Cosigner]>,
    store: &Arc<dyn ObjectStore>,
    wiring: &Wiring,
) -> anyhow::Result<(watch::Receiver<Option<Arc<Local>>>, Vec<JoinHandle<()>>)> {
    let (local_tx, local) = watch::channel(None);
    let mut tasks = Vec::new();
    let Some(lock) = &wiring.lock else {
        return Ok((local, tasks));
    };
    let signers = (key.clone(), cosigners.clone());
    let starter = Starter::new(config, signers, store.clone(), lock.clone(), wiring);
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
    Ok((local, tasks))
}

/// Whether `e` says another process holds the log's claim, or this one
/// may not claim it yet (its clock is off): a standby waits for either.
fn is_claimed(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<LoadError>(),
        Some(LoadError::Lock(
            LockError::Claimed(_) | LockError::ClockSkew(_)
        ))
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

/// Which persistent dedup store (and leaf-hash index) a log uses.
pub enum DedupChoice {
    /// The log's own store, on this machine.
    Local(DedupEngine, PathBuf),
    Postgres(String),
}

impl DedupChoice {
    /// The shared store at `shared` (a PostgreSQL URL), else the log's own
    /// `dedup_db`, kept by its `dedup_engine`.
    pub fn of(config: &LogConfig, shared: Option<&String>) -> DedupChoice {
        match shared {
            Some(url) => DedupChoice::Postgres(url.clone()),
            None => DedupChoice::Local(
                config.dedup_engine(),
                config.dedup_db.clone().expect("resolved by Config::load"),
            ),
        }
    }

    /// Opens the store for the log whose ID is `log_id`.
    pub async fn open(&self, log_id: &[u8; 32]) -> anyhow::Result<PersistentDedup> {
        Ok(match self {
            DedupChoice::Local(engine, path) => {
                PersistentDedup::open_local(*engine, path, &hex::encode(log_id))
                    .with_context(|| format!("opening {}", path.display()))?
            }
            // Keyed by log ID, like the lock: two logs named alike (a
            // staging and a production log, a log re-created with a new
            // key) must never answer for each other.
            DedupChoice::Postgres(url) => PersistentDedup::Postgres(
                PostgresDedup::connect(url, &hex::encode(log_id))
                    .await
                    .context("connecting to the PostgreSQL dedup store")?,
            ),
        })
    }
}

impl Starter {
    fn new(
        config: &LogConfig,
        (key, cosigners): (Arc<LogKey>, Arc<[Cosigner]>),
        store: Arc<dyn ObjectStore>,
        lock: Arc<dyn LockBackend>,
        wiring: &Wiring,
    ) -> Starter {
        let dedup = DedupChoice::of(config, wiring.dedup.as_ref());
        Starter {
            sequencer: ct_sequencer::LogConfig {
                name: config.name.clone(),
                origin: config.origin(),
                key,
                cosigners,
                period: Duration::from_millis(config.period_ms),
                pool_size: config.pool_size,
                claim_wait: None,
                create: wiring.create_missing || config.is_inception_day(),
                cleanup: Some(wiring.cleanup),
                sign_ahead: true,
            },
            batchers: BatcherConfig {
                log: config.name.clone(),
                batchers: config.batchers,
                max_batch: BATCH_ENTRIES,
                max_wait: batch_wait(config.period_ms),
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
        let dedup = self.dedup.open(self.sequencer.key.log_id()).await?;
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
            probe_conditional_writes(&store, &format!("lock/_probe/{:016x}", fastrand::u64(..)))
                .await
                .context("the S3 lock's bucket")?;
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
        StorageConfig::S3(location) => {
            let store = S3Store::open(location.s3_config()).await?;
            // The checkpoint is published with conditional writes.
            probe_conditional_writes(&store, &format!("_probe/{:016x}", fastrand::u64(..)))
                .await
                .with_context(|| format!("log {:?}: storage", config.name))?;
            Arc::new(store)
        }
    })
}
