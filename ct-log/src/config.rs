//! The operator's TOML file: what logs to run and where their parts live.
//!
//! Relative paths are resolved against the config file's folder, so a config
//! and its keys can move together. Unknown fields are errors: a typo in a
//! production config must not silently fall back to a default.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
pub use ct_dedup::DedupEngine;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// One HTTP listener for every log.
    pub listen: SocketAddr,
    /// The SQLite lock database (created if missing): the default lock
    /// backend, for one machine.
    pub lock_db: Option<PathBuf>,
    /// A shared lock backend instead of `lock_db`.
    pub lock: Option<LockConfig>,
    /// How long a shared lock's lease outlives its holder's last renewal:
    /// the longest a standby sequencer waits after the active one dies.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// A dedup store shared by every log and machine, in place of each
    /// log's SQLite `dedup_db`.
    pub dedup: Option<DedupConfig>,
    /// How the processes of a log spread over several machines talk.
    pub cluster: Option<ClusterConfig>,
    /// HTTPS on `listen` with this certificate; plain HTTP without it, e.g.
    /// behind a TLS-terminating proxy.
    pub tls: Option<TlsConfig>,
    /// HTTPS on `listen` with certificates obtained and renewed from an
    /// ACME CA (in place of `tls`).
    pub acme: Option<AcmeConfig>,
    /// A second listener, plain HTTP, serving the same as `listen`: for a
    /// TLS-terminating proxy or a local scraper when `listen` is HTTPS.
    pub plain_listen: Option<SocketAddr>,
    /// Client connections open at once (both listeners together); past it
    /// a connection gets a quick 503. Default: what the file limit leaves
    /// after a reserve for storage, the lock and the databases.
    pub max_connections: Option<usize>,
    /// How long a full tile stays published before its partial versions
    /// are deleted (monitors may still read older checkpoints' right
    /// edges meanwhile).
    #[serde(default = "default_partial_tile_grace_s")]
    pub partial_tile_grace_s: u64,
    /// Partial tiles deleted per second, at most, per log.
    #[serde(default = "default_partial_tile_deletes_per_s")]
    pub partial_tile_deletes_per_s: u32,
    /// Submissions parsed and validated at once, across every log; past
    /// it, 503 before any parsing (default 4 per core, at least 8).
    #[serde(default = "crate::admission::default_working")]
    pub max_working_submissions: usize,
    #[serde(rename = "log")]
    pub logs: Vec<LogConfig>,
}

/// One `[[log]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Short unique name, used in logs and metrics.
    pub name: String,
    /// Where CAs submit, e.g. `https://ct.example.org/2026h1`. Without the
    /// scheme and trailing slash it is the checkpoint origin.
    pub submission_prefix: String,
    /// Where monitors read tiles; may equal the submission prefix.
    pub monitoring_prefix: String,
    /// ECDSA P-256 private key, PKCS#8 or SEC1 PEM.
    pub key: PathBuf,
    /// Ed25519 private key (PKCS#8 PEM): adds an Ed25519 cosignature/v1
    /// line (c2sp.org/tlog-cosignature) to every checkpoint.
    pub ed25519_key: Option<PathBuf>,
    /// ML-DSA-44 private key (PKCS#8 PEM): adds an ML-DSA-44 cosignature
    /// line to every checkpoint.
    pub mldsa44_key: Option<PathBuf>,
    /// PEM bundle of accepted roots.
    pub roots: PathBuf,
    /// Where more roots come from, fetched at start and every
    /// `roots_refresh_s`: a PEM bundle, or the CCADB's CSV report.
    pub roots_url: Option<String>,
    #[serde(default = "default_roots_refresh_s")]
    pub roots_refresh_s: u64,
    /// Accepted leaf NotAfter window, `[start, limit)`, RFC 3339.
    pub not_after_start: String,
    pub not_after_limit: String,
    #[serde(default = "default_period_ms")]
    pub period_ms: u64,
    /// Entries one round may hold; beyond it submitters get 503.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Batcher tasks for this log.
    #[serde(default = "default_batchers")]
    pub batchers: usize,
    /// Submissions one log handles at once; beyond it, 503.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight_submissions: usize,
    /// The longest a submission should wait for its SCT: when the period
    /// plus the time rounds take lately exceeds it, submissions get 503
    /// at once (default: the period plus one second).
    pub latency_budget_ms: Option<u64>,
    /// RFC 6962 reads (get-sth, proofs, get-entries) one log handles at
    /// once, counted apart from submissions; beyond it, 503.
    #[serde(default = "default_max_in_flight_reads")]
    pub max_in_flight_reads: usize,
    /// Longest chain a submitter may send (leaf included).
    #[serde(default = "default_max_chain_length")]
    pub max_chain_length: usize,
    /// Shown on the home page and in log.v3.json (default: the origin).
    pub description: Option<String>,
    /// The day (`YYYY-MM-DD`, UTC) the log is created: on that day, and
    /// only then, `serve` creates it when neither its lock nor its storage
    /// knows it. Any other day a missing log is refused (`ct-log create`
    /// makes one explicitly).
    pub inception: Option<String>,
    /// Days after not_after_limit until submissions get 410 (default 7).
    #[serde(default = "default_sunset_grace_days")]
    pub sunset_grace_days: u64,
    /// Persistent dedup store of this log: a directory (an LSM tree), or
    /// with `dedup_engine = "sqlite"` a file. Default: `<name>-dedup.lsm`
    /// (`<name>-dedup.db`) beside the lock database.
    pub dedup_db: Option<PathBuf>,
    /// What keeps `dedup_db`: "lsm" (the default), whose cost per entry
    /// stays flat as the log grows, or "sqlite". Read it through
    /// [`LogConfig::dedup_engine`].
    dedup_engine: Option<DedupEngine>,
    /// Recently logged entries remembered in memory for deduplication.
    #[serde(default = "default_dedup_memory_entries")]
    pub dedup_memory_entries: usize,
    pub storage: StorageConfig,
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsConfig {
    fn resolve(&mut self, base: &Path) {
        self.cert = base.join(&self.cert);
        self.key = base.join(&self.key);
    }
}

/// `acme = { … }`: the certificate of `listen`, obtained and renewed from
/// an ACME CA (RFC 8555) with the TLS-ALPN-01 challenge, answered on
/// `listen` itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's directory URL, e.g.
    /// `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory: String,
    /// The account's contact address, if any (`mailto:` is added).
    pub email: Option<String>,
    /// The names the certificate is for; `listen` must be reachable on
    /// port 443 of each of them.
    pub domains: Vec<String>,
    /// Where the account key and the certificate are kept (created 0700),
    /// so that a restart reuses them instead of ordering again.
    pub cache_dir: PathBuf,
    /// CA certificates (PEM) to trust for the directory's HTTPS, besides
    /// the system's: for a private or test CA (Pebble).
    pub ca: Option<PathBuf>,
    /// Renew when less than this is left of the certificate (default: a
    /// third of its lifetime, as certbot and Caddy do).
    pub renew_before_s: Option<u64>,
}

impl AcmeConfig {
    fn resolve(&mut self, base: &Path) {
        self.cache_dir = base.join(&self.cache_dir);
        self.ca = self.ca.take().map(|ca| base.join(ca));
    }

    /// Problems in the table's values (the files are checked elsewhere).
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match reqwest::Url::parse(&self.directory) {
            Ok(url) if url.scheme() == "https" && url.host().is_some() => {}
            Ok(_) => problems.push(format!(
                "acme: directory {:?} must be an https:// URL",
                self.directory
            )),
            Err(e) => problems.push(format!("acme: directory {:?}: {e}", self.directory)),
        }
        if self.domains.is_empty() {
            problems.push("acme: domains lists no name".into());
        }
        for domain in &self.domains {
            if !is_dns_name(domain) {
                problems.push(format!(
                    "acme: {domain:?} is not a DNS name (TLS-ALPN-01 allows no wildcard or IP address)"
                ));
            }
        }
        if let Some(email) = &self.email {
            let address = email.strip_prefix("mailto:").unwrap_or(email);
            if !address.contains('@') || address.contains([' ', ',']) {
                problems.push(format!("acme: email {email:?} is not an address"));
            }
        }
        if self.renew_before_s == Some(0) {
            problems.push("acme: renew_before_s must be positive".into());
        }
        problems
    }
}

/// A host name: dot-separated labels of letters, digits and inner hyphens,
/// not all digits (no IP address).
fn is_dns_name(name: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253
        && name.split('.').all(label_ok)
        && !name
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// Where a log's tiles, issuers and checkpoint are stored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    /// A local directory.
    Fs { path: PathBuf },
    /// An S3-compatible bucket.
    S3(S3Location),
}

/// A bucket (and key prefix) on S3-compatible storage. Credentials come
/// from the standard AWS environment variables or profile files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Location {
    pub bucket: String,
    /// Custom endpoint (MinIO, Ceph, R2, SeaweedFS, …); absent for AWS.
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix inside the bucket, e.g. `logs/2026h1`.
    #[serde(default)]
    pub prefix: String,
    /// Path-style URLs; default: on when an endpoint is given.
    pub force_path_style: Option<bool>,
}

impl S3Location {
    pub fn s3_config(&self) -> ct_storage::S3Config {
        ct_storage::S3Config {
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            prefix: self.prefix.clone(),
            force_path_style: self.force_path_style.unwrap_or(self.endpoint.is_some()),
        }
    }
}

/// A lock backend shared by several machines, in place of `lock_db`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LockConfig {
    /// Rows in a PostgreSQL database, e.g. `postgres://ct@db.internal/ct`.
    Postgres { url: String },
    /// Objects updated with conditional writes in an S3-compatible bucket.
    S3(S3Location),
}

/// A log whose engine is left to the default, lsm, while the old default's
/// SQLite store sits where it always did: the LSM store would start empty
/// beside it, and every resubmission of an older entry become a new entry.
/// The operator chooses instead.
fn refuse_a_hidden_sqlite_store(log: &LogConfig, dedup_dir: &Path) -> anyhow::Result<()> {
    let sqlite = dedup_dir.join(default_dedup_name(DedupEngine::Sqlite, &log.name));
    if sqlite.exists() {
        bail!(
            "log {:?}: {} is a SQLite dedup store, and the default dedup_engine is \"lsm\": set dedup_engine = \"sqlite\" to keep it, or \"lsm\" to start an LSM store (`ct-log reindex` fills it from the tiles)",
            log.name,
            sqlite.display()
        );
    }
    Ok(())
}

/// The default name of a log's dedup store, beside the lock database.
fn default_dedup_name(engine: DedupEngine, log: &str) -> String {
    match engine {
        DedupEngine::Sqlite => format!("{log}-dedup.db"),
        DedupEngine::Lsm => format!("{log}-dedup.lsm"),
    }
}

/// The long-term dedup store shared by several machines.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum DedupConfig {
    /// The `ct_dedup` table of a PostgreSQL database (may be the lock's).
    Postgres { url: String },
}

/// The internal API between frontends and sequencers (`[cluster]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The shared secret every process presents, inline...
    pub secret: Option<String>,
    /// ...or the name of the environment variable that holds it.
    pub secret_env: Option<String>,
    /// Base URLs (`http://host:port`) of the processes that may sequence
    /// the logs; frontends try them in turn.
    pub sequencers: Vec<String>,
    /// A listener of its own for the internal API (say, on a private
    /// network); by default it shares `listen`.
    pub internal_listen: Option<SocketAddr>,
    /// CA certificates (PEM) to trust for `https` sequencer URLs, besides
    /// the system's: for sequencers with certificates of a private CA.
    pub ca: Option<PathBuf>,
    /// HTTPS on `internal_listen` with this certificate (the internal API
    /// on the public listener uses the top-level `tls`).
    pub tls: Option<TlsConfig>,
}

/// A process's part in running the logs (`serve --role`): one config file
/// serves every role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Public API, batchers and sequencer in one process.
    All,
    /// Public API; entries go to a sequencer process (needs `[cluster]`).
    Frontend,
    /// Batchers and sequencer, the internal API, reads and metrics.
    Sequencer,
}

/// Shorter secrets are refused: the internal API trusts whoever knows it.
const MIN_SECRET_LEN: usize = 16;

impl ClusterConfig {
    /// The shared secret, from the config or the environment.
    pub fn secret(&self) -> anyhow::Result<String> {
        let secret = match (&self.secret, &self.secret_env) {
            (Some(secret), None) => secret.clone(),
            (None, Some(var)) => std::env::var(var)
                .with_context(|| format!("[cluster] secret_env: ${var} is not set"))?,
            _ => bail!("[cluster] needs exactly one of secret and secret_env"),
        };
        if secret.len() < MIN_SECRET_LEN {
            bail!("[cluster] secret must be at least {MIN_SECRET_LEN} characters");
        }
        // It travels as an HTTP header value, which trims spaces and
        // cannot carry control or non-ASCII bytes.
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("[cluster] secret must be printable ASCII without spaces");
        }
        Ok(secret)
    }

    /// The `ca` file's contents, if set.
    pub fn ca_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.ca
            .as_ref()
            .map(|path| {
                std::fs::read(path)
                    .with_context(|| format!("[cluster] ca: reading {}", path.display()))
            })
            .transpose()
    }

    fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .secret()
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect();
        if self.sequencers.is_empty() {
            problems.push("[cluster] sequencers lists no URL".into());
        }
        for url in &self.sequencers {
            if !matches!(prefix_path(url).as_deref(), Ok("")) {
                problems.push(format!(
                    "[cluster] sequencer {url:?} must be http(s)://host:port without a path"
                ));
            }
        }
        problems
    }
}

fn default_roots_refresh_s() -> u64 {
    3600
}

fn default_partial_tile_grace_s() -> u64 {
    3600
}

fn default_partial_tile_deletes_per_s() -> u32 {
    100
}

fn default_lease_ttl_ms() -> u64 {
    10_000
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_period_ms() -> u64 {
    1000
}

fn default_pool_size() -> usize {
    10_000
}

fn default_max_in_flight() -> usize {
    20_000
}

/// Each get-entries answer holds up to about a megabyte while it is built.
fn default_max_in_flight_reads() -> usize {
    128
}

fn default_max_chain_length() -> usize {
    10
}

fn default_sunset_grace_days() -> u64 {
    7
}

/// About a minute at 3,000 new entries/s, in roughly 20 MiB.
fn default_dedup_memory_entries() -> usize {
    200_000
}

fn default_batchers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// `--config FILE [--log NAME]`: the logs of a config file that a command
/// (create, reindex) works on.
#[derive(clap::Args)]
pub struct LogsArgs {
    /// The TOML config file.
    #[arg(long)]
    pub config: PathBuf,
    /// Only the log of this name (default: every log in the file).
    #[arg(long)]
    pub log: Option<String>,
}

impl LogsArgs {
    /// The logs of `config` these arguments name; an error when `--log`
    /// names none.
    pub fn select<'a>(&self, config: &'a Config) -> anyhow::Result<Vec<&'a LogConfig>> {
        let logs: Vec<&LogConfig> = config
            .logs
            .iter()
            .filter(|log| self.log.as_ref().is_none_or(|name| &log.name == name))
            .collect();
        if let Some(name) = self.log.as_ref().filter(|_| logs.is_empty()) {
            bail!("no log named {name:?} in {}", self.config.display());
        }
        Ok(logs)
    }
}

impl Config {
    /// How full tiles' partial versions are cleaned up.
    pub fn cleanup(&self) -> ct_sequencer::Cleanup {
        ct_sequencer::Cleanup {
            grace: std::time::Duration::from_secs(self.partial_tile_grace_s),
            deletes_per_s: self.partial_tile_deletes_per_s,
        }
    }

    /// Reads and checks the file; fails with every problem found.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let config = Config::parse(path)?;
        let problems = config.problems();
        if !problems.is_empty() {
            bail!("{}: {}", path.display(), problems.join("; "));
        }
        Ok(config)
    }

    /// Reads and parses the file, resolving relative paths, without
    /// checking its values.
    pub fn parse(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.lock_db = config.lock_db.map(|db| base.join(db));
        if let Some(cluster) = &mut config.cluster {
            cluster.ca = cluster.ca.take().map(|ca| base.join(ca));
            if let Some(tls) = &mut cluster.tls {
                tls.resolve(base);
            }
        }
        if let Some(tls) = &mut config.tls {
            tls.resolve(base);
        }
        if let Some(acme) = &mut config.acme {
            acme.resolve(base);
        }
        // Dedup databases default to the lock database's folder.
        let dedup_dir = config
            .lock_db
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(base)
            .to_path_buf();
        for log in &mut config.logs {
            if log.dedup_engine.is_none() && log.dedup_db.is_none() {
                refuse_a_hidden_sqlite_store(log, &base.join(&dedup_dir))?;
            }
            let dedup_db = log.dedup_db.take().unwrap_or_else(|| {
                dedup_dir.join(default_dedup_name(log.dedup_engine(), &log.name))
            });
            log.dedup_db = Some(base.join(dedup_db));
            log.key = base.join(&log.key);
            for path in [&mut log.ed25519_key, &mut log.mldsa44_key]
                .into_iter()
                .flatten()
            {
                *path = base.join(&*path);
            }
            log.roots = base.join(&log.roots);
            if let StorageConfig::Fs { path } = &mut log.storage {
                *path = base.join(&*path);
            }
        }
        Ok(config)
    }

    /// Every problem in the file's values, one line each (empty if none).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match (&self.lock_db, &self.lock) {
            (None, None) => {
                problems.push("set lock_db (SQLite) or lock (a shared lock backend)".into())
            }
            (Some(_), Some(_)) => problems.push("set only one of lock_db and lock".into()),
            _ => {}
        }
        if self.partial_tile_deletes_per_s == 0 {
            problems.push("partial_tile_deletes_per_s must be positive".into());
        }
        if self.max_working_submissions == 0 {
            problems.push("max_working_submissions must be positive".into());
        }
        if self.lease_ttl_ms < 300 {
            problems.push("lease_ttl_ms must be at least 300".into());
        }
        if let Some(acme) = &self.acme {
            if self.tls.is_some() {
                problems.push("set only one of tls and acme".into());
            }
            problems.extend(acme.problems());
        }
        if self
            .plain_listen
            .is_some_and(|plain| plain == self.listen && plain.port() != 0)
        {
            problems.push("plain_listen must differ from listen".into());
        }
        if let Some(cluster) = &self.cluster {
            problems.extend(cluster.problems());
            if self.lock.is_none() {
                problems.push("[cluster] needs a shared lock (lock), not lock_db".into());
            }
            if self.dedup.is_none() {
                problems.push("[cluster] needs a shared dedup store (dedup)".into());
            }
        }
        if self.logs.is_empty() {
            problems.push("the config lists no [[log]]".to_string());
        }
        let mut seen = HashSet::new();
        for log in &self.logs {
            let in_log = |p: String| format!("log {:?}: {p}", log.name);
            problems.extend(log.problems().into_iter().map(in_log));
            let mut unique = vec![
                format!("name {}", log.name),
                format!("origin {}", log.origin()),
            ];
            for prefix in [&log.submission_prefix, &log.monitoring_prefix] {
                match prefix_path(prefix) {
                    Ok(path) => unique.push(format!("path {path}")),
                    Err(e) => problems.push(in_log(e.to_string())),
                }
            }
            unique.dedup(); // the submission and monitoring paths may be one
            for what in unique {
                if !seen.insert(what.clone()) {
                    problems.push(format!("two logs share the {what}"));
                }
            }
        }
        problems
    }
}

impl LogConfig {
    /// What keeps this log's `dedup_db`: lsm unless the file says sqlite.
    pub fn dedup_engine(&self) -> DedupEngine {
        self.dedup_engine.unwrap_or(DedupEngine::Lsm)
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            problems.push("name must be non-empty ASCII letters, digits, '-', '_' or '.'".into());
        }
        if let Err(e) = self.inception_date() {
            problems.push(e.to_string());
        }
        if let Some(url) = &self.roots_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(format!("roots_url {url:?} must be an http(s) URL"));
            }
            if self.roots_refresh_s == 0 {
                problems.push("roots_refresh_s must be positive".into());
            }
        }
        match self.not_after_window() {
            Ok((start, limit)) if start >= limit => {
                problems.push("not_after_start must be before not_after_limit".into())
            }
            Ok(_) => {}
            Err(e) => problems.push(e.to_string()),
        }
        let sizes = [
            self.period_ms as usize,
            self.pool_size,
            self.batchers,
            self.max_in_flight_submissions,
            self.max_in_flight_reads,
        ];
        if sizes.contains(&0) || self.max_chain_length < 1 {
            problems.push(
                "period_ms, pool_size, batchers, max_in_flight_submissions, max_in_flight_reads and max_chain_length must be positive"
                    .into(),
            );
        }
        problems
    }

    /// The longest a submission should wait for its SCT.
    pub fn latency_budget(&self) -> Duration {
        Duration::from_millis(self.latency_budget_ms.unwrap_or(self.period_ms + 1000))
    }

    /// Whether today (UTC) is the log's inception day.
    pub fn is_inception_day(&self) -> bool {
        let today = OffsetDateTime::now_utc().date();
        self.inception_date().ok().flatten() == Some(today)
    }

    fn inception_date(&self) -> anyhow::Result<Option<time::Date>> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        self.inception
            .as_deref()
            .map(|day| {
                time::Date::parse(day, format)
                    .with_context(|| format!("inception {day:?} is not a YYYY-MM-DD date"))
            })
            .transpose()
    }

    /// The checkpoint origin: the submission prefix without scheme and
    /// trailing slash.
    pub fn origin(&self) -> String {
        ct_formats::origin_from_prefix(&self.submission_prefix)
    }

    /// `[not_after_start, not_after_limit)` in Unix seconds.
    pub fn not_after_window(&self) -> anyhow::Result<(u64, u64)> {
        Ok((
            unix_seconds(&self.not_after_start)?,
            unix_seconds(&self.not_after_limit)?,
        ))
    }
}

fn unix_seconds(rfc3339: &str) -> anyhow::Result<u64> {
    let t = OffsetDateTime::parse(rfc3339, &Rfc3339)
        .with_context(|| format!("{rfc3339:?} is not an RFC 3339 time"))?;
    u64::try_from(t.unix_timestamp()).with_context(|| format!("{rfc3339:?} is before 1970"))
}

/// The URL path of a prefix, without trailing slash: `https://h/a/b/` →
/// `/a/b`, `https://h` → `` (the root).
pub fn prefix_path(prefix: &str) -> anyhow::Result<String> {
    let rest = prefix
        .strip_prefix("https://")
        .or_else(|| prefix.strip_prefix("http://"))
        .with_context(|| format!("prefix {prefix:?} must start with http:// or https://"))?;
    let path = rest
        .find('/')
        .map_or("", |i| &rest[i..])
        .trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or("");
    let clean = |s: &str| !s.is_empty() && !s.contains(['?', '#', ' ', '{', '}', '*']);
    if !clean(host) || path.split('/').skip(1).any(|seg| !clean(seg)) {
        bail!("prefix {prefix:?} is not a plain URL (host and /path segments only)");
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_paths() {
        assert_eq!(
            prefix_path("https://ct.example.org/2026h1/").unwrap(),
            "/2026h1"
        );
        assert_eq!(prefix_path("http://127.0.0.1:8080/a/b").unwrap(), "/a/b");
        assert_eq!(prefix_path("https://ct.example.org").unwrap(), "");
        for bad in [
            "ct.example.org/x",
            "ftp://x/y",
            "https://x/a//b",
            "https://x/a?b",
            "https:///a",
        ] {
            assert!(prefix_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loads_and_resolves_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ct.toml");
        std::fs::write(&file, EXAMPLE).unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(config.lock_db, Some(dir.path().join("data/lock.db")));
        let log = &config.logs[0];
        assert_eq!(log.key, dir.path().join("keys/dev.pem"));
        assert_eq!(log.origin(), "127.0.0.1:8080/dev2026");
        assert_eq!(log.not_after_window().unwrap(), (1767225600, 1798761600));
        assert_eq!((log.period_ms, log.pool_size), (1000, 10_000));
        assert_eq!(log.dedup_engine(), DedupEngine::Lsm);
        assert_eq!(
            log.dedup_db.as_deref(),
            Some(dir.path().join("data/dev2026-dedup.lsm").as_path())
        );
        let StorageConfig::Fs { path } = &log.storage else {
            panic!("fs storage")
        };
        assert_eq!(path, &dir.path().join("data/dev2026"));
    }

    /// Each engine's store has a name of its own, so that switching
    /// engines never opens the other's files; and a log left to the
    /// default engine beside a SQLite store of the old default is refused,
    /// not started with an empty store.
    #[test]
    fn the_engines_keep_apart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ct.toml");
        let with = |engine: &str| {
            let text = EXAMPLE.replace("period_ms = 1000", &format!("period_ms = 1000\n{engine}"));
            std::fs::write(&file, text).unwrap();
            Config::load(&file)
        };
        let sqlite = with("dedup_engine = \"sqlite\"").unwrap();
        assert_eq!(sqlite.logs[0].dedup_engine(), DedupEngine::Sqlite);
        let old = dir.path().join("data/dev2026-dedup.db");
        assert_eq!(sqlite.logs[0].dedup_db.as_deref(), Some(old.as_path()));

        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::write(&old, b"SQLite format 3\0").unwrap();
        let err = format!("{:#}", with("").unwrap_err());
        assert!(
            err.contains(
                "dev2026-dedup.db is a SQLite dedup store, and the default dedup_engine is \"lsm\""
            ),
            "{err}"
        );
        assert!(!err.contains('\n'));
        let lsm = with("dedup_engine = \"lsm\"").unwrap();
        assert_eq!(
            lsm.logs[0].dedup_db.as_deref(),
            Some(dir.path().join("data/dev2026-dedup.lsm").as_path())
        );
        let err = format!("{:#}", with("dedup_engine = \"rocks\"").unwrap_err());
        assert!(err.contains("unknown variant `rocks`"), "{err}");
    }

    #[test]
    fn rejects_bad_configs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ct.toml");
        let cases = [
            (EXAMPLE.replace("period_ms", "perod_ms"), "unknown field"),
            (
                EXAMPLE.replace("2027-01-01", "2025-01-01"),
                "before not_after_limit",
            ),
            (EXAMPLE.replace("\"fs\"", "\"s4\""), "unknown variant"),
            (
                format!(
                    "{EXAMPLE}\n{}",
                    &EXAMPLE[EXAMPLE.find("[[log]]").unwrap()..]
                ),
                "share",
            ),
            (
                EXAMPLE.replace(
                    "http://127.0.0.1:8080/dev2026\"\nmon",
                    "127.0.0.1/dev2026\"\nmon",
                ),
                "http://",
            ),
        ];
        let cluster = |table: &str| EXAMPLE.replace("[[log]]", &format!("{table}\n[[log]]"));
        let cases = cases.into_iter().chain([
            (
                cluster("[cluster]\nsecret = \"short\"\nsequencers = [\"http://10.0.0.1:80\"]"),
                "at least 16 characters",
            ),
            (
                cluster("[cluster]\nsecret = \"0123456789abcdef\"\nsequencers = [\"http://10.0.0.1:80/x\"]"),
                "without a path",
            ),
            (
                cluster("[cluster]\nsecret = \"0123456789abcdef\"\nsequencers = [\"http://10.0.0.1:80\"]"),
                "needs a shared lock",
            ),
            (
                cluster("[cluster]\nsecret_env = \"CT_TEST_NO_SUCH_VARIABLE\"\nsequencers = []"),
                "CT_TEST_NO_SUCH_VARIABLE is not set",
            ),
        ]);
        for (text, want) in cases {
            std::fs::write(&file, &text).unwrap();
            let err = format!("{:#}", Config::load(&file).unwrap_err());
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
    }

    const EXAMPLE: &str = r#"
listen = "127.0.0.1:8080"
lock_db = "data/lock.db"

[[log]]
name = "dev2026"
submission_prefix = "http://127.0.0.1:8080/dev2026"
monitoring_prefix = "http://127.0.0.1:8080/dev2026"
key = "keys/dev.pem"
roots = "roots.pem"
not_after_start = "2026-01-01T00:00:00Z"
not_after_limit = "2027-01-01T00:00:00Z"
period_ms = 1000
storage = { type = "fs", path = "data/dev2026" }
"#;
}
