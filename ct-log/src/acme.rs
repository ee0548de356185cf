//! Certificates from an ACME CA (RFC 8555) for the HTTPS listener
//! (`acme = {…}`): the account and the certificate kept in `cache_dir`,
//! the TLS-ALPN-01 challenge (RFC 8737) answered in the handshakes of that
//! listener itself, renewal before expiry with retries and backoff, and
//! the live swap of the certificate new handshakes get.
//!
//! A failed renewal never replaces a working certificate, and nothing here
//! touches a log.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use crate::config::AcmeConfig;

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// The wait after a failed attempt, doubled after each failure in a row up
/// to `LAST_RETRY`.
const FIRST_RETRY: Duration = Duration::from_secs(10);
const LAST_RETRY: Duration = Duration::from_secs(3600);
/// One whole attempt: account, order, validation, certificate.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the CA may take to validate, and then to issue.
const POLL_TIMEOUT: Duration = Duration::from_secs(120);
/// One request to the CA.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest sleep before the time to renew is worked out again: the
/// wall clock may step, or the machine sleep.
const MAX_SLEEP: Duration = Duration::from_secs(600);
/// In `cache_dir`: the account (JSON), and the certificate's private key
/// followed by its chain (PEM), each replaced whole.
const ACCOUNT_FILE: &str = "account.json";
const CERTIFICATE_FILE: &str = "certificate.pem";

/// A certificate the listener serves.
#[derive(Debug)]
struct Served {
    key: Arc<CertifiedKey>,
    /// Its validity, Unix seconds.
    not_before: i64,
    not_after: i64,
}

impl Served {
    /// The certificate of a PEM file holding a private key and a chain,
    /// if it names every domain.
    fn from_pem(pem: &[u8], domains: &[String], provider: &CryptoProvider) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .context("reading the certificate chain")?;
        let leaf = chain.first().context("no certificate")?;
        let key = PrivateKeyDer::from_pem_slice(pem).context("reading the private key")?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(leaf).context("parsing the certificate")?;
        let names: Vec<String> = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::DNSName(n) => {
                            Some(n.to_ascii_lowercase())
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(missing) = domains
            .iter()
            .find(|d| !names.contains(&d.to_ascii_lowercase()))
        {
            bail!("the certificate does not name {missing}");
        }
        let validity = cert.validity();
        let (not_before, not_after) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        let key = CertifiedKey::from_der(chain, key, provider)
            .context("the private key does not match the certificate")?;
        Ok(Served {
            key: Arc::new(key),
            not_before,
            not_after,
        })
    }

    /// When to renew it (Unix seconds): `before` seconds ahead of expiry,
    /// by default when a third of its lifetime is left, and never before
    /// half of it has passed (a margin as long as the CA's lifetimes would
    /// renew without end).
    fn renew_at(&self, before: Option<u64>) -> i64 {
        let lifetime = self.not_after - self.not_before;
        let margin = before.map_or(lifetime / 3, |s| (s as i64).min(lifetime / 2));
        self.not_after - margin
    }

    /// Seconds until it is due for renewal (0 or less: now).
    fn due_in(&self, before: Option<u64>) -> i64 {
        self.renew_at(before) - unix_now()
    }
}

/// What the HTTPS listener's handshakes get: the certificate of the moment,
/// swapped whole on renewal (open connections keep theirs), and during
/// validation the challenge certificates for the CA.
#[derive(Debug, Default)]
pub struct Certificates {
    current: RwLock<Option<Arc<Served>>>,
    /// Lower-case domain → its TLS-ALPN-01 certificate.
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// Why the last attempt failed, until one succeeds.
    last_error: Mutex<Option<String>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // The CA's validation offers acme-tls/1 and nothing else.
        let validation = hello.alpn().is_some_and(|mut offered| {
            offered.next() == Some(ACME_TLS_ALPN) && offered.next().is_none()
        });
        if validation {
            let name = hello.server_name()?.to_ascii_lowercase();
            return locked(&self.challenges).get(&name).cloned();
        }
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.as_ref().map(|served| served.key.clone())
    }
}

impl Certificates {
    fn current(&self) -> Option<Arc<Served>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn install(&self, served: Served) {
        metrics::gauge!("ct_acme_certificate_expiry_seconds").set(served.not_after as f64);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(served));
        *locked(&self.last_error) = None;
    }

    /// Why HTTPS cannot work now, if so: no certificate yet, or an expired
    /// one. (An early failed renewal is no problem yet: it is retried.)
    pub fn problem(&self) -> Option<String> {
        let error = locked(&self.last_error)
            .as_ref()
            .map(|e| format!(" (last attempt: {e})"))
            .unwrap_or_default();
        match self.current() {
            None => Some(format!("acme: no certificate yet{error}")),
            Some(served) if served.not_after <= unix_now() => Some(format!(
                "acme: the certificate expired at {}{error}",
                served.not_after
            )),
            Some(_) => None,
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The ACME client of one process: it keeps [`Certificates`] current.
pub struct Acme {
    config: AcmeConfig,
    certificates: Arc<Certificates>,
    provider: Arc<CryptoProvider>,
    http: reqwest::Client,
}

impl Acme {
    /// Prepares `cache_dir` (created 0700) and the client for the
    /// directory, and serves the cached certificate at once if it still
    /// names every domain and has not expired. Orders nothing yet.
    pub async fn start(config: &AcmeConfig) -> anyhow::Result<Acme> {
        let mut http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(path) = &config.ca {
            http = http.tls_certs_merge(read_ca(path)?);
        }
        let acme = Acme {
            config: config.clone(),
            certificates: Arc::default(),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            http: http.build().context("acme: building the HTTP client")?,
        };
        let dir = config.cache_dir.clone();
        tokio::task::spawn_blocking(move || make_cache_dir(&dir)).await??;
        match acme.cached().await {
            Ok(Some(served)) if served.not_after > unix_now() => {
                tracing::info!(
                    not_after = served.not_after,
                    "acme: serving the cached certificate"
                );
                acme.certificates.install(served);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "acme: ignoring the cached certificate")
            }
        }
        Ok(acme)
    }

    /// What the HTTPS listener resolves its certificate with.
    pub fn certificates(&self) -> Arc<Certificates> {
        self.certificates.clone()
    }

    /// Keeps the certificate current, forever: obtains one when there is
    /// none, renews it when due, and after a failure retries with backoff.
    /// Call it once the HTTPS listener is bound: validation connects to it.
    pub async fn run(self) {
        let mut retry = FIRST_RETRY;
        loop {
            let before = self.config.renew_before_s;
            let due = (self.certificates.current()).map_or(0, |served| served.due_in(before));
            if due > 0 {
                tokio::time::sleep(Duration::from_secs(due as u64).min(MAX_SLEEP)).await;
                continue;
            }
            let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, self.renew()).await;
            // An attempt cut short leaves its challenges behind.
            locked(&self.certificates.challenges).clear();
            let outcome = attempt
                .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {ATTEMPT_TIMEOUT:?}")))
                .and_then(|()| match self.certificates.current() {
                    // Ordering again at once would never end.
                    Some(served) if served.due_in(before) <= 0 => Err(anyhow::anyhow!(
                        "the new certificate (valid {} to {}) is already due for renewal: check this machine's clock",
                        served.not_before,
                        served.not_after
                    )),
                    _ => Ok(()),
                });
            match outcome {
                Ok(()) => {
                    metrics::counter!("ct_acme_renewals_total", "result" => "ok").increment(1);
                    retry = FIRST_RETRY;
                }
                Err(e) => {
                    metrics::counter!("ct_acme_renewals_total", "result" => "failed").increment(1);
                    let error = format!("{e:#}");
                    tracing::error!(error = %error, retry_in_s = retry.as_secs(), domains = ?self.config.domains, "acme: obtaining a certificate failed; keeping the current one, if any");
                    *locked(&self.certificates.last_error) = Some(error);
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(LAST_RETRY);
                }
            }
        }
    }

    /// Obtains a certificate, serves it, then keeps it in the cache.
    async fn renew(&self) -> anyhow::Result<()> {
        let account = self.account().await?;
        let pem = self.obtain(&account).await?;
        let served = Served::from_pem(pem.as_bytes(), &self.config.domains, &self.provider)
            .context("the CA's certificate")?;
        tracing::info!(
            domains = ?self.config.domains,
            not_after = served.not_after,
            "acme: serving a new certificate"
        );
        self.certificates.install(served);
        // Served even if it cannot be kept: a restart would order again.
        let path = self.config.cache_dir.join(CERTIFICATE_FILE);
        if let Err(e) = write_private(path, pem.into_bytes()).await {
            tracing::warn!(error = %format!("{e:#}"), "acme: could not cache the certificate");
        }
        Ok(())
    }

    /// The cached certificate, if any.
    async fn cached(&self) -> anyhow::Result<Option<Served>> {
        let path = self.config.cache_dir.join(CERTIFICATE_FILE);
        let Some(pem) = read_optional(&path).await? else {
            return Ok(None);
        };
        let served = Served::from_pem(&pem, &self.config.domains, &self.provider)
            .with_context(|| path.display().to_string())?;
        Ok(Some(served))
    }

    /// The cached account if it is this directory's, else a new one
    /// (cached at once).
    async fn account(&self) -> anyhow::Result<Account> {
        let path = self.config.cache_dir.join(ACCOUNT_FILE);
        let builder = || Account::builder_with_http(Box::new(AcmeHttp(self.http.clone())));
        if let Some(json) = read_optional(&path).await? {
            let cached: CachedAccount = serde_json::from_slice(&json)
                .with_context(|| format!("reading {}", path.display()))?;
            if cached.directory == self.config.directory {
                return builder()
                    .from_credentials(cached.credentials)
                    .await
                    .context("restoring the ACME account");
            }
            tracing::warn!("acme: the cached account is another directory's; creating one");
        }
        let contact = self
            .config
            .email
            .as_ref()
            .map(|email| match email.starts_with("mailto:") {
                true => email.clone(),
                false => format!("mailto:{email}"),
            });
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let new = NewAccount {
            contact: &contact,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, credentials) = builder()
            .create(&new, self.config.directory.clone(), None)
            .await
            .with_context(|| format!("creating an account at {}", self.config.directory))?;
        tracing::info!(account = account.id(), "acme: account created");
        let cached = CachedAccount {
            directory: self.config.directory.clone(),
            credentials,
        };
        write_private(path, serde_json::to_vec_pretty(&cached)?).await?;
        Ok(account)
    }

    /// Orders a certificate for the domains: the private key (PEM) and
    /// the chain (PEM), in one string.
    async fn obtain(&self, account: &Account) -> anyhow::Result<String> {
        let identifiers: Vec<Identifier> = self
            .config
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .context("placing the order")?;
        let validated = match self.answer_challenges(&mut order).await {
            Ok(()) => order
                .poll_ready(&RetryPolicy::new().timeout(POLL_TIMEOUT))
                .await
                .context("waiting for validation"),
            Err(e) => Err(e),
        };
        locked(&self.certificates.challenges).clear();
        match validated? {
            OrderStatus::Ready => {}
            status => bail!("the order is {status:?} after validation"),
        }
        let domains = self.config.domains.clone();
        let (csr, key_pem) = tokio::task::spawn_blocking(move || request(domains)).await??;
        order
            .finalize_csr(&csr)
            .await
            .context("finalizing the order")?;
        let chain = order
            .poll_certificate(&RetryPolicy::new().timeout(POLL_TIMEOUT))
            .await
            .context("waiting for the certificate")?;
        Ok(format!("{key_pem}{chain}"))
    }

    /// Sets up a TLS-ALPN-01 answer for each pending authorization of the
    /// order and tells the CA to validate it.
    async fn answer_challenges(&self, order: &mut Order) -> anyhow::Result<()> {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.context("fetching an authorization")?;
            let domain = authorization.identifier().to_string();
            match authorization.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                status => bail!("the authorization for {domain} is {status:?}"),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .with_context(|| format!("the CA offers no tls-alpn-01 challenge for {domain}"))?;
            let digest = challenge.key_authorization().digest();
            let answer = challenge_certificate(&domain, digest.as_ref(), &self.provider)?;
            locked(&self.certificates.challenges).insert(domain.to_ascii_lowercase(), answer);
            challenge
                .set_ready()
                .await
                .with_context(|| format!("asking the CA to validate {domain}"))?;
        }
        Ok(())
    }
}

/// `account.json`: the account and the directory it belongs to.
#[derive(Serialize, Deserialize)]
struct CachedAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// The self-signed certificate that answers a TLS-ALPN-01 challenge: the
/// domain, and the digest of the key authorization in a critical
/// acmeIdentifier extension.
fn challenge_certificate(
    domain: &str,
    digest: &[u8],
    provider: &CryptoProvider,
) -> anyhow::Result<Arc<CertifiedKey>> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key)?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?;
    // Not `from_der`: webpki refuses the critical extension it does not
    // know, and the key is the one just made for this certificate.
    let signer = provider.key_provider.load_private_key(key_der)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// A fresh P-256 key (PEM) and a certificate request (DER) for `domains`.
fn request(domains: Vec<String>) -> anyhow::Result<(Vec<u8>, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(domains)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    Ok((csr.der().to_vec(), key.serialize_pem()))
}

/// The CA certificates of a PEM file, at least one.
fn read_ca(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem =
        std::fs::read(path).with_context(|| format!("acme: reading ca {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("acme: ca {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "acme: ca {} holds no certificate",
        path.display()
    );
    Ok(certs)
}

/// Creates `dir` (0700) if missing; refuses one that is not a writable
/// folder.
fn make_cache_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("acme: creating cache_dir {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(cache_dir = %dir.display(), "acme: cache_dir is open to other users; it holds private keys (chmod 700)");
    }
    anyhow::ensure!(
        writable(dir),
        "acme: cache_dir {} is not writable",
        dir.display()
    );
    Ok(())
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access only reads it.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// What `check-config` finds wrong with the table's files, without
/// creating anything: the `ca` file, and whether `cache_dir` (or the
/// folder it would be made in) is writable.
pub fn file_problems(config: &AcmeConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(path) = &config.ca {
        if let Err(e) = read_ca(path) {
            problems.push(format!("{e:#}"));
        }
    }
    let dir = &config.cache_dir;
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if existing == dir && !dir.is_dir() {
        problems.push(format!("acme: cache_dir {} is not a folder", dir.display()));
    } else if !writable(existing) {
        problems.push(format!(
            "acme: cache_dir {} cannot be written ({} is not writable)",
            dir.display(),
            existing.display()
        ));
    }
    problems
}

async fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Replaces `path` whole with `bytes`, readable by this user only.
async fn write_private(path: PathBuf, bytes: Vec<u8>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let temp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await?
    .context("writing to cache_dir")
}

/// instant-acme's requests through reqwest, which trusts the configured
/// `ca` and keeps to the process's aws-lc-rs provider.
struct AcmeHttp(reqwest::Client);

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let http = self.0.clone();
        Box::pin(async move {
            let other = |e: reqwest::Error| instant_acme::Error::Other(Box::new(e));
            let (parts, body) = request.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let response = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(other)?;
            let mut head = http::Response::new(());
            *head.status_mut() = response.status();
            *head.headers_mut() = response.headers().clone();
            let body = response.bytes().await.map_err(other)?;
            Ok(BytesResponse {
                parts: head.into_parts().0,
                body: Box::new(body),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_for(domains: &[&str], days: i64) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(
            domains.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now;
        params.not_after = now + time::Duration::days(days);
        let cert = params.self_signed(&key).unwrap();
        format!("{}{}", key.serialize_pem(), cert.pem())
    }

    #[test]
    fn a_cached_certificate_must_name_every_domain() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let pem = pem_for(&["ct.example.org", "b.example.org"], 90);
        let domains = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let served =
            Served::from_pem(pem.as_bytes(), &domains(&["CT.example.org"]), &provider).unwrap();
        assert_eq!(served.not_after - served.not_before, 90 * 86_400);
        // A third of the lifetime before expiry, or as configured.
        assert_eq!(served.renew_at(None), served.not_after - 30 * 86_400);
        assert_eq!(served.renew_at(Some(60)), served.not_after - 60);
        assert_eq!(
            served.renew_at(Some(100 * 86_400)),
            served.not_after - 45 * 86_400
        );
        let err =
            Served::from_pem(pem.as_bytes(), &domains(&["c.example.org"]), &provider).unwrap_err();
        assert!(err.to_string().contains("c.example.org"), "{err}");
    }

    #[test]
    fn no_certificate_is_a_health_problem() {
        let certificates = Certificates::default();
        assert!(certificates
            .problem()
            .unwrap()
            .contains("no certificate yet"));
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let pem = pem_for(&["ct.example.org"], 1);
        let served =
            Served::from_pem(pem.as_bytes(), &["ct.example.org".into()], &provider).unwrap();
        certificates.install(served);
        assert_eq!(certificates.problem(), None);
    }

    #[test]
    fn the_acme_table_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ct.toml");
        let config = |acme: &str, more: &str| {
            format!(
                "listen = \"127.0.0.1:443\"\nlock_db = \"lock.db\"\n{more}\nacme = {{ {acme} }}\n\n\
                 [[log]]\nname = \"a\"\nsubmission_prefix = \"https://ct.example.org/a\"\n\
                 monitoring_prefix = \"https://ct.example.org/a\"\nkey = \"k.pem\"\nroots = \"r.pem\"\n\
                 not_after_start = \"2026-01-01T00:00:00Z\"\nnot_after_limit = \"2027-01-01T00:00:00Z\"\n\
                 storage = {{ type = \"fs\", path = \"a\" }}\n"
            )
        };
        let good = "directory = \"https://acme.example.org/dir\", email = \"ops@example.org\", domains = [\"ct.example.org\"], cache_dir = \"acme\"";
        std::fs::write(&file, config(good, "")).unwrap();
        let loaded = crate::config::Config::load(&file).unwrap();
        assert_eq!(loaded.acme.unwrap().cache_dir, dir.path().join("acme"));
        let cases = [
            (
                config(good, "tls = { cert = \"c.pem\", key = \"k.pem\" }"),
                "only one of tls and acme",
            ),
            (
                config(&good.replace("https://acme", "http://acme"), ""),
                "must be an https:// URL",
            ),
            (
                config(&good.replace("[\"ct.example.org\"]", "[]"), ""),
                "lists no name",
            ),
            (
                config(&good.replace("ct.example.org", "*.example.org"), ""),
                "not a DNS name",
            ),
            (
                config(&good.replace("ops@example.org", "ops"), ""),
                "not an address",
            ),
            (
                config(&format!("{good}, renew_before_s = 0"), ""),
                "renew_before_s",
            ),
            (config(&format!("{good}, colour = 1"), ""), "unknown field"),
        ];
        for (text, want) in cases {
            std::fs::write(&file, &text).unwrap();
            let err = format!("{:#}", crate::config::Config::load(&file).unwrap_err());
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
    }

    #[test]
    fn check_config_finds_an_unusable_cache_dir_and_ca() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let config = |cache_dir: &str, ca: Option<&str>| AcmeConfig {
            directory: "https://acme.example.org/dir".into(),
            email: None,
            domains: vec!["ct.example.org".into()],
            cache_dir: dir.path().join(cache_dir),
            ca: ca.map(|ca| dir.path().join(ca)),
            renew_before_s: None,
        };
        assert!(file_problems(&config("new/acme", None)).is_empty());
        let problems = file_problems(&config("file", Some("missing.pem")));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("missing.pem"), "{problems:?}");
        assert!(problems[1].contains("not a folder"), "{problems:?}");
    }

    #[test]
    fn a_challenge_certificate_carries_the_digest() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let digest = [7u8; 32];
        let answer = challenge_certificate("ct.example.org", &digest, &provider).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&answer.cert[0]).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(ext.critical);
        assert_eq!(ext.value, [&[4u8, 32][..], &digest].concat());
    }
}
