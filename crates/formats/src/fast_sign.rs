//! Deterministic ECDSA P-256 (RFC 6979) with AWS-LC's arithmetic.
//!
//! A resubmission must get a byte-identical SCT, so the nonce must be the
//! RFC 6979 one. No OpenSSL-class library offers that: aws-lc-rs (like ring)
//! draws a fresh random nonce for every signature, and OpenSSL gained
//! deterministic ECDSA only in 3.2. RustCrypto's `p256` 0.14 signs the RFC
//! 6979 way but about 2.5 times slower than AWS-LC, and signing is one of
//! the two costly steps of every accepted entry (BENCHMARKS.md).
//!
//! So the two halves are split: the nonce comes from RustCrypto's `rfc6979`
//! crate (the very `KGenerator` `p256` 0.14 calls), and the signature from
//! AWS-LC's own constant-time ECDSA core, through the one entry point that
//! takes the nonce from the caller. AWS-LC names it
//! `..._leak_private_key_for_testing` because a *caller-chosen* nonce that
//! repeats or is guessable gives the key away; an RFC 6979 nonce is secret
//! and unique per (key, message) by construction, which is exactly RFC
//! 6979's argument. The result is checked byte for byte against `p256` in
//! the tests. Should AWS-LC ever drop the function the build fails to link;
//! it cannot silently change an SCT.

use std::ptr::NonNull;

use aws_lc_sys as lc;
use rfc6979::bigint::U256;

/// The order of the P-256 group (FIPS 186-4, D.1.2.3).
const ORDER: U256 =
    U256::from_be_hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");

/// A P-256 private key held by AWS-LC, for signing with a given nonce.
pub(crate) struct AwsLcP256 {
    key: NonNull<lc::EC_KEY>,
}

// AWS-LC's EC_KEY may be used from several threads at once by functions
// taking a const pointer; signing is one of them, and nothing mutates it
// after construction.
unsafe impl Send for AwsLcP256 {}
unsafe impl Sync for AwsLcP256 {}

impl Drop for AwsLcP256 {
    fn drop(&mut self) {
        // SAFETY: `key` came from EC_KEY_new_by_curve_name and is freed once.
        unsafe { lc::EC_KEY_free(self.key.as_ptr()) }
    }
}

impl AwsLcP256 {
    /// Loads the big-endian secret scalar; `None` if AWS-LC refuses it.
    pub(crate) fn new(secret: &[u8; 32]) -> Option<AwsLcP256> {
        // SAFETY: every pointer is checked before use, and each object
        // AWS-LC allocates here is freed on every path (the EC_KEY by Drop).
        unsafe {
            let key = AwsLcP256 {
                key: NonNull::new(lc::EC_KEY_new_by_curve_name(lc::NID_X9_62_prime256v1))?,
            };
            let scalar = lc::BN_bin2bn(secret.as_ptr(), secret.len(), std::ptr::null_mut());
            if scalar.is_null() {
                return None;
            }
            let set = lc::EC_KEY_set_private_key(key.key.as_ptr(), scalar);
            lc::BN_clear_free(scalar);
            (set == 1).then_some(key)
        }
    }

    /// Signs the SHA-256 `digest` with the RFC 6979 nonce of (`secret`,
    /// `digest`) and returns (r, s) big-endian, as `p256` 0.14 would.
    /// `None` in the cases where RFC 6979 moves on to its next nonce (r or
    /// s zero: probability about 2^-256), which the caller leaves to `p256`.
    pub(crate) fn sign_rfc6979(
        &self,
        secret: &[u8; 32],
        digest: &[u8; 32],
    ) -> Option<([u8; 32], [u8; 32])> {
        let mut nonce = [0u8; 32];
        rfc6979::KGenerator::<sha2_011::Sha256, U256>::new(secret, digest, &[], &ORDER)
            .fill_next_k(&mut nonce);
        // SAFETY: the buffers are 32 bytes as passed; the signature object
        // is freed before returning; `self.key` is a valid P-256 key.
        unsafe {
            let sig = lc::ECDSA_sign_with_nonce_and_leak_private_key_for_testing(
                digest.as_ptr(),
                digest.len(),
                self.key.as_ptr(),
                nonce.as_ptr(),
                nonce.len(),
            );
            if sig.is_null() {
                return None;
            }
            let (mut r, mut s) = ([0u8; 32], [0u8; 32]);
            let ok = lc::BN_bn2bin_padded(r.as_mut_ptr(), 32, lc::ECDSA_SIG_get0_r(sig)) == 1
                && lc::BN_bn2bin_padded(s.as_mut_ptr(), 32, lc::ECDSA_SIG_get0_s(sig)) == 1;
            lc::ECDSA_SIG_free(sig);
            ok.then_some((r, s))
        }
    }
}
