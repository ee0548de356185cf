//! Certificates from an ACME CA (RFC 8555) for the HTTPS listener
//! (`acme = {…}`): the account and the certificate kept in `cache_dir`,
//! the TLS-ALPN-01 challenge (RFC 8737) answered in the handshakes of that
//! listener itself, renewal before expiry with retries and backoff, and
//! the live swap of the certificate new handshakes get.
//!
//! A failed renewal never replaces a working certificate, and nothing here
//! touches a log. `certificates` owns what handshakes get, `cache` the
//! files.

mod cache;
mod certificates;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use rustls::crypto::CryptoProvider;
use serde::{Deserialize, Serialize};

use crate::config::AcmeConfig;
pub use cache::file_problems;
use cache::{make_cache_dir, read_ca, read_optional, write_private};
use certificates::{challenge_certificate, locked, unix_now, Served};
pub use certificates::{Certificates, ACME_TLS_ALPN};

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

/// A fresh P-256 key (PEM) and a certificate request (DER) for `domains`.
fn request(domains: Vec<String>) -> anyhow::Result<(Vec<u8>, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(domains)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    Ok((csr.der().to_vec(), key.serialize_pem()))
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
}
