//! Loading the log's public key.

use ct_formats::LogKey;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;

use crate::{Error, Result};

/// Reads a P-256 `PUBLIC KEY` PEM. A private key PEM (PKCS#8 or SEC1, as the
/// server's config names it) is accepted too, for operators who only have
/// that file at hand; only its public half is used.
pub fn load_verifying_key(pem: &str) -> Result<VerifyingKey> {
    if pem.contains("-----BEGIN PUBLIC KEY-----") {
        return VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| Error::Usage(format!("log key: not a P-256 public key: {e}")));
    }
    LogKey::from_pem(pem)
        .map(|key| *key.verifying_key())
        .map_err(|e| Error::Usage(format!("log key: {e}")))
}
