//! The certificate the HTTPS listener serves (`acme = {…}`): the one of
//! the moment, swapped whole on renewal, and during validation the
//! TLS-ALPN-01 answers (RFC 8737) for the CA's handshakes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// A certificate the listener serves.
#[derive(Debug)]
pub(super) struct Served {
    key: Arc<CertifiedKey>,
    /// Its validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

impl Served {
    /// The certificate of a PEM file holding a private key and a chain,
    /// if it names every domain.
    pub fn from_pem(
        pem: &[u8],
        domains: &[String],
        provider: &CryptoProvider,
    ) -> anyhow::Result<Self> {
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
    pub fn due_in(&self, before: Option<u64>) -> i64 {
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
    pub(super) challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// Why the last attempt failed, until one succeeds.
    pub(super) last_error: Mutex<Option<String>>,
}

pub(super) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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
    pub(super) fn current(&self) -> Option<Arc<Served>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn install(&self, served: Served) {
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

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The self-signed certificate that answers a TLS-ALPN-01 challenge: the
/// domain, and the digest of the key authorization in a critical
/// acmeIdentifier extension.
pub(super) fn challenge_certificate(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `domains`, valid `days` from now, with
    /// its key first (PEM).
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
