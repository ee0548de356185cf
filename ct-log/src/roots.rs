//! A log's accepted roots: read from its roots file at start and on
//! SIGHUP, and kept beside the log in storage (`_roots.pem`) as the
//! effective set. Roots only accumulate: one missing from the file stays
//! accepted (and is logged), since entries chaining to it are already in
//! the log.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use bytes::Bytes;
use ct_storage::ObjectStore;
use ct_validate::Roots;

use crate::config::LogConfig;

/// Where the effective roots (every root ever accepted) are kept.
const ROOTS_KEY: &str = "_roots.pem";

/// The roots a log accepts now, and where more come from.
pub struct RootSet {
    /// Replaced whole on reload; read by cloning the `Arc`.
    current: RwLock<Arc<Roots>>,
    file: PathBuf,
    store: Arc<dyn ObjectStore>,
    log: String,
}

impl RootSet {
    /// The union of the roots file and the stored effective roots.
    pub async fn open(config: &LogConfig, store: Arc<dyn ObjectStore>) -> anyhow::Result<RootSet> {
        let roots = accumulate(&store, load_roots(config)?, &[]).await?;
        Ok(RootSet {
            current: RwLock::new(Arc::new(roots)),
            file: config.roots.clone(),
            store,
            log: config.name.clone(),
        })
    }

    /// The roots accepted now.
    pub fn current(&self) -> Arc<Roots> {
        self.current.read().unwrap().clone()
    }

    /// Re-reads the roots file and adds any new root. What this process
    /// accepts now is kept too: another process reloading at the same
    /// moment may have stored a set that lacks one of ours.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let from_file = read_file(&self.file)?;
        let accepted = self.current();
        let merged = accumulate(&self.store, from_file, accepted.certificates()).await?;
        let (before, after) = (self.current().len(), merged.len());
        *self.current.write().unwrap() = Arc::new(merged);
        tracing::info!(log = %self.log, before, after, "roots reloaded");
        Ok(())
    }
}

fn read_file(path: &PathBuf) -> anyhow::Result<Roots> {
    let pem = std::fs::read(path).with_context(|| format!("reading roots {}", path.display()))?;
    Roots::from_pem(&pem).with_context(|| format!("loading roots {}", path.display()))
}

/// The roots file of a log, which must name at least one root.
pub fn load_roots(config: &LogConfig) -> anyhow::Result<Roots> {
    let roots = read_file(&config.roots)?;
    anyhow::ensure!(
        !roots.is_empty(),
        "roots file {} holds no certificates",
        config.roots.display()
    );
    Ok(roots)
}

/// The union of the stored effective roots, the roots `accepted` already
/// and `from_file`, stored back when it holds more than the stored set.
/// Roots absent from the file are kept and logged.
async fn accumulate(
    store: &Arc<dyn ObjectStore>,
    from_file: Roots,
    accepted: &[Vec<u8>],
) -> anyhow::Result<Roots> {
    let stored = match store.get(ROOTS_KEY).await? {
        Some(pem) => Roots::from_pem(&pem)
            .context("reading the stored effective roots")?
            .certificates()
            .to_vec(),
        None => Vec::new(),
    };
    let merged = Roots::from_ders(
        stored
            .iter()
            .chain(accepted)
            .chain(from_file.certificates())
            .cloned()
            .collect(),
    )?;
    let dropped = merged
        .certificates()
        .iter()
        .filter(|der| !from_file.certificates().contains(der))
        .count();
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "roots missing from the roots file stay accepted (roots only accumulate)"
        );
    }
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
