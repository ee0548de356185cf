//! The log's P-256 signing key: PEM loading, LogID, and RFC 5246
//! DigitallySigned signatures (ECDSA over SHA-256, deterministic per RFC 6979).

use std::sync::Arc;

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePrivateKey;
use p256::SecretKey;
use sha2::{Digest, Sha256};

use crate::codec::{put_prefixed, Reader};
use crate::fast_sign::AwsLcP256;
use crate::{FormatError, Hash};

/// DER SubjectPublicKeyInfo header for an uncompressed P-256 point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes) }.
/// The 65-byte SEC1 point follows. Fixed for the curve, so encoding cannot fail.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// RFC 5246 HashAlgorithm.sha256.
const HASH_SHA256: u8 = 4;
/// RFC 5246 SignatureAlgorithm.ecdsa.
const SIG_ECDSA: u8 = 3;

/// The log's signing key with its public identity computed once.
#[derive(Clone)]
pub struct LogKey {
    /// The secret in AWS-LC, which signs with the RFC 6979 nonce about 2.5
    /// times faster than `p256` (see `fast_sign`).
    aws_lc: Arc<AwsLcP256>,
    /// The same secret for `p256` 0.14: the input of the RFC 6979 nonce,
    /// and the signer when AWS-LC turns a nonce down (r or s zero), since
    /// only `p256` goes on to RFC 6979's next nonce. Both give the very
    /// same signature as `p256` 0.13 (checked in the tests).
    rfc6979_key: p256_014::ecdsa::SigningKey,
    verifying_key: VerifyingKey,
    spki_der: Vec<u8>,
    log_id: Hash,
}

impl std::fmt::Debug for LogKey {
    /// Shows only the public LogID, never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id: String = self.log_id.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("LogKey").field("log_id", &id).finish()
    }
}

impl LogKey {
    /// Accepts PKCS#8 ("PRIVATE KEY") and SEC1 ("EC PRIVATE KEY") PEM.
    /// Other blocks (such as the "EC PARAMETERS" that `openssl ecparam
    /// -genkey` prints first) are skipped; the first key block is used.
    /// Only P-256 keys are accepted.
    pub fn from_pem(pem: &str) -> Result<LogKey, FormatError> {
        for (label, block) in pem_blocks(pem) {
            let secret = match label {
                "PRIVATE KEY" => SecretKey::from_pkcs8_pem(block)
                    .map_err(|e| FormatError::Key(format!("PKCS#8 P-256 key: {e}")))?,
                "EC PRIVATE KEY" => SecretKey::from_sec1_pem(block)
                    .map_err(|e| FormatError::Key(format!("SEC1 P-256 key: {e}")))?,
                _ => continue,
            };
            return Ok(LogKey::from_signing_key(SigningKey::from(secret)));
        }
        Err(FormatError::Key(
            "no PRIVATE KEY or EC PRIVATE KEY PEM block".into(),
        ))
    }

    pub fn from_signing_key(key: SigningKey) -> LogKey {
        let verifying_key = *key.verifying_key();
        let spki_der = spki_der_of(&verifying_key);
        let secret: [u8; 32] = key.to_bytes().into();
        let rfc6979_key = p256_014::ecdsa::SigningKey::from_slice(&secret)
            .expect("a valid P-256 secret scalar is valid for both versions");
        let aws_lc = AwsLcP256::new(&secret).expect("a valid P-256 secret is valid for AWS-LC");
        LogKey {
            log_id: log_id_of(&spki_der),
            aws_lc: Arc::new(aws_lc),
            rfc6979_key,
            verifying_key,
            spki_der,
        }
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn log_id(&self) -> &Hash {
        &self.log_id
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying_key
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`, the SPKI).
    pub fn public_key_pem(&self) -> String {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        self.verifying_key
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 public key always encodes")
    }

    /// RFC 5246 DigitallySigned: 0x04 (sha256) | 0x03 (ecdsa) | u16 len |
    /// DER ECDSA signature over SHA-256(msg). Deterministic (RFC 6979), so a
    /// resubmission gets byte-identical SCTs.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        use sha2_011::Digest as _;
        let digest: [u8; 32] = sha2_011::Sha256::digest(msg).into();
        let secret: [u8; 32] = self.rfc6979_key.to_bytes().into();
        let signature = match self.aws_lc.sign_rfc6979(&secret, &digest) {
            Some((r, s)) => Signature::from_scalars(r, s)
                .expect("AWS-LC returns r and s in range, as p256 wants them"),
            None => self.sign_digest_with_p256(&digest),
        };
        let der = signature.to_der();
        let mut out = Vec::with_capacity(4 + der.as_bytes().len());
        out.extend_from_slice(&[HASH_SHA256, SIG_ECDSA]);
        put_prefixed(&mut out, 2, der.as_bytes());
        out
    }

    /// The RFC 6979 signature of a SHA-256 digest, all in `p256` 0.14.
    fn sign_digest_with_p256(&self, digest: &[u8; 32]) -> Signature {
        use p256_014::ecdsa::signature::hazmat::PrehashSigner as _;
        let reference: p256_014::ecdsa::Signature = self
            .rfc6979_key
            .sign_prehash(digest)
            .expect("a 32-byte prehash is accepted");
        Signature::from_slice(&reference.to_bytes())
            .expect("r and s are in range for both versions")
    }
}

/// LogID: SHA-256 of the DER SubjectPublicKeyInfo.
pub fn log_id_of(spki_der: &[u8]) -> Hash {
    Sha256::digest(spki_der).into()
}

/// Checks a DigitallySigned (must be sha256/ecdsa, length must match) over msg.
pub fn verify_digitally_signed(
    key: &VerifyingKey,
    msg: &[u8],
    digitally_signed: &[u8],
) -> Result<(), FormatError> {
    let mut r = Reader::new(digitally_signed, "DigitallySigned");
    if r.u8()? != HASH_SHA256 || r.u8()? != SIG_ECDSA {
        return Err(FormatError::Signature("algorithm is not sha256/ecdsa"));
    }
    let der = r.prefixed(2)?;
    r.finish()?;
    let signature =
        Signature::from_der(der).map_err(|_| FormatError::Signature("malformed DER ECDSA"))?;
    key.verify(msg, &signature)
        .map_err(|_| FormatError::Signature("does not verify"))
}

/// DER SubjectPublicKeyInfo of a P-256 public key.
pub(crate) fn spki_der_of(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    [&P256_SPKI_PREFIX[..], point.as_bytes()].concat()
}

/// Splits PEM text into (label, whole block text) pairs, in order.
/// Text outside blocks is ignored; an unterminated block ends the scan.
pub(crate) fn pem_blocks(pem: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = pem;
    std::iter::from_fn(move || {
        let start = rest.find("-----BEGIN ")?;
        let after = &rest[start + "-----BEGIN ".len()..];
        let label = &after[..after.find("-----")?];
        let end_marker = format!("-----END {label}-----");
        let end = rest[start..].find(&end_marker)? + start + end_marker.len();
        let block = &rest[start..end];
        rest = &rest[end..];
        Some((label, block))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;

    fn digitally_signed(signature: &Signature) -> Vec<u8> {
        let mut out = vec![HASH_SHA256, SIG_ECDSA];
        put_prefixed(&mut out, 2, signature.to_der().as_bytes());
        out
    }

    /// AWS-LC with the RFC 6979 nonce gives exactly the signature of
    /// `p256` 0.13 (the signer of every SCT before) and of `p256` 0.14's
    /// own RFC 6979 path, for many keys and message lengths, and each
    /// verifies with the verification code monitors' tools use.
    #[test]
    fn aws_lc_signing_matches_p256() {
        for k in 1..=8u8 {
            let reference_key = SigningKey::from_slice(&[k; 32]).unwrap();
            let key = LogKey::from_signing_key(reference_key.clone());
            for i in 0..32u32 {
                let msg = [
                    i.to_be_bytes().as_slice(),
                    &[k ^ 0xab; 300][..i as usize * 9],
                ]
                .concat();
                let reference: Signature = reference_key.sign(&msg);
                let expected = digitally_signed(&reference);
                assert_eq!(key.sign(&msg), expected, "key {k}, message {i}");
                let digest: [u8; 32] = Sha256::digest(&msg).into();
                assert_eq!(
                    key.sign_digest_with_p256(&digest),
                    reference,
                    "key {k}, message {i}"
                );
                verify_digitally_signed(key.verifying_key(), &msg, &expected).unwrap();
            }
        }
    }

    /// RFC 6979 appendix A.2.5: P-256, SHA-256, messages "sample" and "test".
    #[test]
    fn rfc6979_vectors() {
        let secret =
            hex::decode("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
                .unwrap();
        let key = LogKey::from_signing_key(SigningKey::from_slice(&secret).unwrap());
        let vectors = [
            (
                "sample",
                "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
                "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
            ),
            (
                "test",
                "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
                "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
            ),
        ];
        for (msg, r, s) in vectors {
            let signature = Signature::from_scalars(
                <[u8; 32]>::try_from(hex::decode(r).unwrap()).unwrap(),
                <[u8; 32]>::try_from(hex::decode(s).unwrap()).unwrap(),
            )
            .unwrap();
            assert_eq!(
                key.sign(msg.as_bytes()),
                digitally_signed(&signature),
                "{msg}"
            );
        }
    }
}
