//! A log's accepted roots: read from its roots file at start and on
//! SIGHUP, fetched from its `roots_url` (a PEM bundle, or the CCADB's CSV
//! report with a column of PEMs) at start and every `roots_refresh_s`, and
//! kept beside the log in storage (`_roots.pem`) as the effective set.
//! Roots only accumulate: one missing from the file or the download stays
//! accepted (and is logged), since entries chaining to it are already in
//! the log. A download that is not wholly valid changes nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use ct_storage::ObjectStore;
use ct_validate::Roots;

use crate::config::LogConfig;

/// A roots download larger than this is refused (the whole CCADB report is
/// a few megabytes).
const MAX_DOWNLOAD_BYTES: usize = 64 << 20;
/// ...as is one with more certificates than this.
const MAX_DOWNLOAD_ROOTS: usize = 20_000;
/// How long one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the effective roots (every root ever accepted) are kept.
const ROOTS_KEY: &str = "_roots.pem";

/// The roots a log accepts now, and where more come from.
pub struct RootSet {
    /// Replaced whole on reload; read by cloning the `Arc`.
    current: RwLock<Arc<Roots>>,
    file: PathBuf,
    store: Arc<dyn ObjectStore>,
    log: String,
    /// When the roots URL was last fetched and merged, and the last error.
    fetched: Mutex<Fetched>,
}

/// What `/health` knows of a roots URL.
#[derive(Default)]
struct Fetched {
    refresh: Option<Duration>,
    last: Option<SystemTime>,
    error: Option<String>,
}

impl RootSet {
    /// The union of the roots file and the stored effective roots.
    pub async fn open(config: &LogConfig, store: Arc<dyn ObjectStore>) -> anyhow::Result<RootSet> {
        let roots = accumulate(&store, load_roots(config)?.certificates(), &[]).await?;
        Ok(RootSet {
            current: RwLock::new(Arc::new(roots)),
            file: config.roots.clone(),
            store,
            log: config.name.clone(),
            fetched: Mutex::default(),
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
        let merged = self.merge(from_file.certificates()).await?;
        let dropped = merged
            .certificates()
            .iter()
            .filter(|der| !from_file.certificates().contains(der))
            .count();
        if dropped > 0 {
            tracing::warn!(
                log = %self.log,
                dropped,
                "roots missing from the roots file stay accepted (roots only accumulate)"
            );
        }
        Ok(())
    }

    /// Adds `new` roots to what this process accepts and what is stored.
    async fn merge(&self, new: &[Vec<u8>]) -> anyhow::Result<Arc<Roots>> {
        let accepted = self.current();
        let merged = Arc::new(accumulate(&self.store, new, accepted.certificates()).await?);
        let (before, after) = (accepted.len(), merged.len());
        *self.current.write().unwrap() = merged.clone();
        metrics::gauge!("ct_roots", "log" => self.log.clone()).set(after as f64);
        tracing::info!(log = %self.log, before, after, "roots merged");
        Ok(merged)
    }

    /// Fetches `url` now and every `every`, merging each wholly valid
    /// download. Ends when the log is gone.
    pub async fn follow(self: Arc<Self>, url: String, every: Duration) {
        self.fetched.lock().unwrap().refresh = Some(every);
        loop {
            match download(&url).await {
                Ok(roots) => match self.merge(&roots).await {
                    Ok(_) => self.fetched(),
                    Err(e) => self.fetch_failed(&format!("{e:#}")),
                },
                Err(e) => self.fetch_failed(&e),
            }
            if Arc::strong_count(&self) == 1 {
                return;
            }
            tokio::time::sleep(every).await;
        }
    }

    fn fetched(&self) {
        let now = SystemTime::now();
        let mut fetched = self.fetched.lock().unwrap();
        (fetched.last, fetched.error) = (Some(now), None);
        let unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("ct_roots_fetched_timestamp_seconds", "log" => self.log.clone()).set(unix);
    }

    fn fetch_failed(&self, why: &str) {
        self.fetched.lock().unwrap().error = Some(why.to_string());
        tracing::warn!(log = %self.log, error = %why, "fetching roots_url failed; the roots stay as they are");
        metrics::counter!("ct_roots_fetch_failures_total", "log" => self.log.clone()).increment(1);
    }

    /// When the roots URL was last fetched and merged, if ever.
    pub fn last_fetched(&self) -> Option<SystemTime> {
        self.fetched.lock().unwrap().last
    }

    /// Why the roots URL needs an operator: its last download failed, and
    /// none succeeded for three refresh periods (or ever).
    pub fn fetch_problem(&self) -> Option<String> {
        let fetched = self.fetched.lock().unwrap();
        let (refresh, error) = (fetched.refresh?, fetched.error.as_ref()?);
        let age = fetched.last.and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age < refresh * 3) {
            return None;
        }
        Some(match age {
            Some(age) => format!("roots_url not fetched for {} s: {error}", age.as_secs()),
            None => format!("roots_url never fetched: {error}"),
        })
    }
}

/// The certificates of a roots download: a PEM bundle, or a CSV report
/// whose fields hold PEMs (the CCADB's). Refused whole when any block is
/// not a certificate, when it holds none, or when it is too large.
pub async fn download(url: &str) -> Result<Vec<Vec<u8>>, String> {
    let http = reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}"));
    }
    if response.content_length().unwrap_or(0) > MAX_DOWNLOAD_BYTES as u64 {
        return Err(format!("{url}: larger than {MAX_DOWNLOAD_BYTES} bytes"));
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOWNLOAD_BYTES {
            return Err(format!("{url}: larger than {MAX_DOWNLOAD_BYTES} bytes"));
        }
    }
    parse_download(&body).map_err(|e| format!("{url}: {e}"))
}

/// See [`download`].
fn parse_download(body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    // A CSV field quotes its PEM; quotes never occur inside PEM itself.
    let text: Vec<u8> = body
        .iter()
        .map(|&b| if b == b'"' || b == b'\'' { b'\n' } else { b })
        .collect();
    let blocks = pem::parse_many(&text).map_err(|e| format!("not PEM: {e}"))?;
    if let Some(other) = blocks.iter().find(|b| b.tag() != "CERTIFICATE") {
        return Err(format!("a {} block among the roots", other.tag()));
    }
    let truncated = String::from_utf8_lossy(body).matches("-----BEGIN").count() != blocks.len();
    if truncated {
        return Err("a PEM block is cut short".into());
    }
    let ders: Vec<Vec<u8>> = blocks.into_iter().map(pem::Pem::into_contents).collect();
    match ders.len() {
        0 => Err("no certificate".into()),
        n if n > MAX_DOWNLOAD_ROOTS => {
            Err(format!("{n} certificates, more than {MAX_DOWNLOAD_ROOTS}"))
        }
        _ => Roots::from_ders(ders.clone())
            .map(|_| ders)
            .map_err(|e| e.to_string()),
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
/// and `new`, stored back when it holds more than the stored set.
async fn accumulate(
    store: &Arc<dyn ObjectStore>,
    new: &[Vec<u8>],
    accepted: &[Vec<u8>],
) -> anyhow::Result<Roots> {
    let stored = match store.get(ROOTS_KEY).await? {
        Some(pem) => Roots::from_pem(&pem)
            .context("reading the stored effective roots")?
            .certificates()
            .to_vec(),
        None => Vec::new(),
    };
    let merged = Roots::from_ders(stored.iter().chain(accepted).chain(new).cloned().collect())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_taken_whole_or_not_at_all() {
        let cert = |cn: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
            params.self_signed(&key).unwrap().pem()
        };
        let (a, b) = (cert("a.test"), cert("b.test"));
        assert_eq!(
            parse_download(format!("{a}{b}").as_bytes()).unwrap().len(),
            2
        );
        let csv = format!("\"Name\",\"PEM Info\"\n\"A\",\"{a}\"\n\"B\",\"'{b}'\"\n");
        assert_eq!(
            parse_download(csv.as_bytes()).unwrap().len(),
            2,
            "the CCADB's CSV"
        );
        let cut = &b[..b.len() / 2];
        for bad in [
            format!("{a}{cut}"),
            String::new(),
            "garbage".into(),
            format!("{a}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            a.replace("MII", "XXX"),
        ] {
            assert!(parse_download(bad.as_bytes()).is_err(), "{bad:.80}");
        }
    }
}
