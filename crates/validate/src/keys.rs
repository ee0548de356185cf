//! A bounded memory of parsed RSA issuer keys. Verifying with a key that
//! aws-lc-rs must parse first cost 2.8 µs more per RSA-2048 chain than
//! with one it parsed before (BENCHMARKS.md, "Landed: parsed RSA issuer
//! keys"), and the few RSA intermediates of real CAs sign nearly every
//! leaf a log sees.
//!
//! A key is remembered with the exact algorithm it was parsed for (hash,
//! padding and the 2048-8192-bit size check are part of the parse), under
//! its exact bytes: a hit is the very key the signature names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{ParsedPublicKey, RsaParameters};

/// Keys remembered before the memory is cleared and starts over (real
/// logs see a few hundred CAs; each key is under 2 KB parsed).
const CAPACITY: usize = 1024;

/// Parsed keys by RSAPublicKey DER, for one algorithm.
type ByDer = HashMap<Box<[u8]>, Arc<ParsedPublicKey>>;

/// Parsed keys by algorithm name, then DER.
#[derive(Default)]
pub(crate) struct RsaKeys {
    parsed: Mutex<HashMap<&'static str, ByDer>>,
}

impl std::fmt::Debug for RsaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .parsed
            .lock()
            .map_or(0, |p| p.values().map(HashMap::len).sum());
        f.debug_struct("RsaKeys").field("keys", &n).finish()
    }
}

impl RsaKeys {
    /// The key `bytes` parsed for `params` (named `name`), from memory or
    /// parsed now; `None` when aws-lc-rs rejects it for `params`.
    pub(crate) fn get(
        &self,
        name: &'static str,
        params: &'static RsaParameters,
        bytes: &[u8],
    ) -> Option<Arc<ParsedPublicKey>> {
        let known = self.parsed.lock().unwrap();
        if let Some(key) = known.get(name).and_then(|keys| keys.get(bytes)) {
            return Some(key.clone());
        }
        drop(known);
        let key = Arc::new(ParsedPublicKey::new(params, bytes).ok()?);
        let mut known = self.parsed.lock().unwrap();
        if known.values().map(HashMap::len).sum::<usize>() >= CAPACITY {
            known.clear();
        }
        let keys = known.entry(name).or_default();
        keys.insert(bytes.into(), key.clone());
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256};
    use ring::signature::{KeyPair, RsaKeyPair};

    fn public_key() -> Vec<u8> {
        let pem = pem::parse(include_str!("../tests/data/rsa2048-test-key.pem")).unwrap();
        let pair = RsaKeyPair::from_pkcs8(pem.contents()).unwrap();
        pair.public_key().as_ref().to_vec()
    }

    #[test]
    fn parses_each_key_once_per_algorithm() {
        let keys = RsaKeys::default();
        let der = public_key();
        let pkcs1 = "sha256WithRSAEncryption";
        let first = keys.get(pkcs1, &RSA_PKCS1_2048_8192_SHA256, &der).unwrap();
        let again = keys.get(pkcs1, &RSA_PKCS1_2048_8192_SHA256, &der).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the parsed key is kept");
        let pss = "RSASSA-PSS with SHA-256";
        let other = keys.get(pss, &RSA_PSS_2048_8192_SHA256, &der).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &other),
            "each algorithm parses its own"
        );
    }

    #[test]
    fn a_rejected_key_is_not_kept() {
        let keys = RsaKeys::default();
        let name = "sha256WithRSAEncryption";
        let der = public_key();
        assert!(keys
            .get(name, &RSA_PKCS1_2048_8192_SHA256, &der[..20])
            .is_none());
        assert!(keys.parsed.lock().unwrap().values().all(HashMap::is_empty));
    }
}
