//! Signature checks: maps a certificate's signature AlgorithmIdentifier and
//! an issuer's SubjectPublicKeyInfo to a verification algorithm of
//! aws-lc-rs (RSA) or `ring` (ECDSA, Ed25519).
//!
//! Each library is used where it is the faster one, measured in one
//! criterion run (`leaf_verify/*` in `benches/validate.rs`): AWS-LC verifies
//! RSA-2048 about 1.6 times faster than `ring`; on ECDSA P-256 the two tie
//! (both run OpenSSL's P-256 assembly), so ECDSA stays with `ring`, whose
//! strict key and signature parsing the tests already pin down.
//!
//! Supported: RSA PKCS#1 v1.5 with SHA-1 (legacy, still on the Merge Delay
//! Monitor's chain), SHA-256/384/512; RSASSA-PSS with SHA-256/384/512
//! (MGF1 with the same hash, salt length equal to the hash length); ECDSA
//! on P-256/P-384 with SHA-256/384; Ed25519. RSA keys must be 2048-8192 bits.

use aws_lc_rs::signature as aws;
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::asn1_rs::{oid, Oid};
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::keys::RsaKeys;

const SHA1_RSA: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .5);
const SHA256_RSA: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .11);
const SHA384_RSA: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .12);
const SHA512_RSA: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .13);
const RSASSA_PSS: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .10);
const MGF1: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .8);
const ECDSA_SHA256: Oid<'static> = oid!(1.2.840 .10045 .4 .3 .2);
const ECDSA_SHA384: Oid<'static> = oid!(1.2.840 .10045 .4 .3 .3);
const ED25519: Oid<'static> = oid!(1.3.101 .112);
const SHA256: Oid<'static> = oid!(2.16.840 .1 .101 .3 .4 .2 .1);
const SHA384: Oid<'static> = oid!(2.16.840 .1 .101 .3 .4 .2 .2);
const SHA512: Oid<'static> = oid!(2.16.840 .1 .101 .3 .4 .2 .3);

const RSA_KEY: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .1);
const EC_KEY: Oid<'static> = oid!(1.2.840 .10045 .2 .1);
const P256: Oid<'static> = oid!(1.2.840 .10045 .3 .1 .7);
const P384: Oid<'static> = oid!(1.3.132 .0 .34);

/// A certificate's signature algorithm, resolved once per certificate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SigAlg {
    pub name: &'static str,
    scheme: Scheme,
}

#[derive(Clone, Copy, Debug)]
enum Scheme {
    Rsa(&'static aws::RsaParameters),
    EcdsaSha256,
    EcdsaSha384,
    Ed25519,
}

/// Why a signature AlgorithmIdentifier cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AlgError {
    Unsupported(String),
    BadPssParameters(&'static str),
}

/// The kind of an issuer's public key, as far as verification is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 => "ECDSA P-256",
            KeyKind::P384 => "ECDSA P-384",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

/// A public key in the form `ring` and aws-lc-rs want: the RSAPublicKey DER for RSA,
/// the uncompressed point for ECDSA, the 32 raw bytes for Ed25519 (in each
/// case the contents of the SPKI's BIT STRING).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PublicKey<'a> {
    pub kind: KeyKind,
    pub bytes: &'a [u8],
}

/// Why a signature did not verify.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VerifyError {
    /// The algorithm is for another kind of key (e.g. ECDSA with an RSA key).
    KeyMismatch,
    BadSignature,
}

impl SigAlg {
    /// Resolves a certificate's outer signature AlgorithmIdentifier.
    pub(crate) fn from_identifier(alg: &AlgorithmIdentifier) -> Result<SigAlg, AlgError> {
        let oid = &alg.algorithm;
        let (name, scheme) = if *oid == SHA256_RSA {
            (
                "sha256WithRSAEncryption",
                Scheme::Rsa(&aws::RSA_PKCS1_2048_8192_SHA256),
            )
        } else if *oid == SHA384_RSA {
            (
                "sha384WithRSAEncryption",
                Scheme::Rsa(&aws::RSA_PKCS1_2048_8192_SHA384),
            )
        } else if *oid == SHA512_RSA {
            (
                "sha512WithRSAEncryption",
                Scheme::Rsa(&aws::RSA_PKCS1_2048_8192_SHA512),
            )
        } else if *oid == SHA1_RSA {
            (
                "sha1WithRSAEncryption",
                Scheme::Rsa(&aws::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY),
            )
        } else if *oid == ECDSA_SHA256 {
            ("ecdsa-with-SHA256", Scheme::EcdsaSha256)
        } else if *oid == ECDSA_SHA384 {
            ("ecdsa-with-SHA384", Scheme::EcdsaSha384)
        } else if *oid == ED25519 {
            ("Ed25519", Scheme::Ed25519)
        } else if *oid == RSASSA_PSS {
            pss(alg)?
        } else {
            return Err(AlgError::Unsupported(oid.to_id_string()));
        };
        Ok(SigAlg { name, scheme })
    }

    /// Verifies `signature` over `message` with `key`; an RSA key is parsed
    /// once and kept in `rsa_keys`.
    pub(crate) fn verify(
        &self,
        key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
        rsa_keys: &RsaKeys,
    ) -> Result<(), VerifyError> {
        let algorithm: &'static dyn VerificationAlgorithm = match (self.scheme, key.kind) {
            (Scheme::Rsa(params), KeyKind::Rsa) => {
                // A key aws-lc-rs rejects (wrong size, bad DER) verifies
                // nothing, as when it is parsed for each signature.
                let parsed = rsa_keys.get(self.name, params, key.bytes);
                return parsed
                    .ok_or(VerifyError::BadSignature)?
                    .verify_sig(message, signature)
                    .map_err(|_| VerifyError::BadSignature);
            }
            (Scheme::EcdsaSha256, KeyKind::P256) => &sig::ECDSA_P256_SHA256_ASN1,
            (Scheme::EcdsaSha256, KeyKind::P384) => &sig::ECDSA_P384_SHA256_ASN1,
            (Scheme::EcdsaSha384, KeyKind::P256) => &sig::ECDSA_P256_SHA384_ASN1,
            (Scheme::EcdsaSha384, KeyKind::P384) => &sig::ECDSA_P384_SHA384_ASN1,
            (Scheme::Ed25519, KeyKind::Ed25519) => &sig::ED25519,
            _ => return Err(VerifyError::KeyMismatch),
        };
        UnparsedPublicKey::new(algorithm, key.bytes)
            .verify(message, signature)
            .map_err(|_| VerifyError::BadSignature)
    }
}

/// Resolves RSASSA-PSS parameters. aws-lc-rs (like `ring`) supports exactly MGF1 with the
/// message hash and a salt as long as the hash, so anything else (including
/// the SHA-1 defaults of an absent field) is refused rather than guessed.
fn pss(alg: &AlgorithmIdentifier) -> Result<(&'static str, Scheme), AlgError> {
    let any = alg
        .parameters
        .as_ref()
        .ok_or(AlgError::BadPssParameters("parameters are missing"))?;
    let params = RsaSsaPssParams::try_from(any)
        .map_err(|_| AlgError::BadPssParameters("parameters do not parse"))?;
    let hash = params.hash_algorithm_oid();
    let (name, rsa_params, salt): (_, &'static aws::RsaParameters, _) = if *hash == SHA256 {
        (
            "RSASSA-PSS with SHA-256",
            &aws::RSA_PSS_2048_8192_SHA256,
            32,
        )
    } else if *hash == SHA384 {
        (
            "RSASSA-PSS with SHA-384",
            &aws::RSA_PSS_2048_8192_SHA384,
            48,
        )
    } else if *hash == SHA512 {
        (
            "RSASSA-PSS with SHA-512",
            &aws::RSA_PSS_2048_8192_SHA512,
            64,
        )
    } else {
        return Err(AlgError::BadPssParameters("hash is not SHA-256/384/512"));
    };
    let mgf = params
        .mask_gen_algorithm()
        .map_err(|_| AlgError::BadPssParameters("mask generation function does not parse"))?;
    if mgf.mgf != MGF1 || mgf.hash != *hash {
        return Err(AlgError::BadPssParameters(
            "mask generation is not MGF1 with the message hash",
        ));
    }
    if params.salt_length() != salt {
        return Err(AlgError::BadPssParameters(
            "salt length differs from the hash length",
        ));
    }
    if params.trailer_field() != 1 {
        return Err(AlgError::BadPssParameters("trailer field is not 1"));
    }
    Ok((name, Scheme::Rsa(rsa_params)))
}

/// Extracts the key of an issuer from its SubjectPublicKeyInfo; the error
/// names what is unsupported.
pub(crate) fn public_key<'a>(spki: &'a SubjectPublicKeyInfo<'_>) -> Result<PublicKey<'a>, String> {
    let oid = &spki.algorithm.algorithm;
    let kind = if *oid == RSA_KEY || *oid == RSASSA_PSS {
        KeyKind::Rsa
    } else if *oid == ED25519 {
        KeyKind::Ed25519
    } else if *oid == EC_KEY {
        ec_curve(spki.algorithm.parameters.as_ref())?
    } else {
        return Err(format!("key algorithm {}", oid.to_id_string()));
    };
    Ok(PublicKey {
        kind,
        bytes: &spki.subject_public_key.data,
    })
}

fn ec_curve(params: Option<&x509_parser::asn1_rs::Any<'_>>) -> Result<KeyKind, String> {
    let curve = params
        .and_then(|p| p.as_oid().ok())
        .ok_or_else(|| "EC key without a named curve".to_string())?;
    if curve == P256 {
        Ok(KeyKind::P256)
    } else if curve == P384 {
        Ok(KeyKind::P384)
    } else {
        Err(format!("EC curve {}", curve.to_id_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::write_tlv;
    use ring::rand::SystemRandom;
    use ring::signature::RsaKeyPair;
    use x509_parser::prelude::FromDer;

    const MESSAGE: &[u8] = b"to be signed";

    fn rsa_key() -> RsaKeyPair {
        let pem = pem::parse(include_str!("../tests/data/rsa2048-test-key.pem")).unwrap();
        RsaKeyPair::from_pkcs8(pem.contents()).unwrap()
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_tlv(&mut out, tag, content);
        out
    }

    /// AlgorithmIdentifier { hash OID, NULL }.
    fn hash_id(hash: &Oid) -> Vec<u8> {
        tlv(
            0x30,
            &[tlv(0x06, hash.as_bytes()), vec![0x05, 0x00]].concat(),
        )
    }

    /// The DER of an RSASSA-PSS AlgorithmIdentifier with explicit fields.
    fn pss_identifier(hash: &Oid, mgf_hash: &Oid, salt: u8) -> Vec<u8> {
        let mgf = tlv(
            0x30,
            &[tlv(0x06, MGF1.as_bytes()), hash_id(mgf_hash)].concat(),
        );
        let params = [
            tlv(0xa0, &hash_id(hash)),
            tlv(0xa1, &mgf),
            tlv(0xa2, &tlv(0x02, &[salt])),
        ]
        .concat();
        tlv(
            0x30,
            &[tlv(0x06, RSASSA_PSS.as_bytes()), tlv(0x30, &params)].concat(),
        )
    }

    fn resolve(identifier: &[u8]) -> Result<SigAlg, AlgError> {
        let (_, alg) = AlgorithmIdentifier::from_der(identifier).unwrap();
        SigAlg::from_identifier(&alg)
    }

    fn sign_pss(key: &RsaKeyPair) -> Vec<u8> {
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &sig::RSA_PSS_SHA256,
            &SystemRandom::new(),
            MESSAGE,
            &mut signature,
        )
        .unwrap();
        signature
    }

    #[test]
    fn verifies_rsa_pss_with_matching_parameters() {
        let key = rsa_key();
        let signature = sign_pss(&key);
        let public = PublicKey {
            kind: KeyKind::Rsa,
            bytes: key.public().as_ref(),
        };
        let alg = resolve(&pss_identifier(&SHA256, &SHA256, 32)).unwrap();
        // One memory of parsed keys: the kept key still refuses a forgery.
        let rsa_keys = RsaKeys::default();
        assert_eq!(alg.verify(public, MESSAGE, &signature, &rsa_keys), Ok(()));
        assert_eq!(
            alg.verify(public, b"something else", &signature, &rsa_keys),
            Err(VerifyError::BadSignature)
        );
        let ed = PublicKey {
            kind: KeyKind::Ed25519,
            bytes: &[0; 32],
        };
        assert_eq!(
            alg.verify(ed, MESSAGE, &signature, &RsaKeys::default()),
            Err(VerifyError::KeyMismatch)
        );
    }

    /// PKCS#1 v1.5 signatures made by `ring` (the verifier before)
    /// verify with aws-lc-rs, for each hash, and nothing else does.
    #[test]
    fn verifies_rsa_pkcs1_signed_by_ring() {
        let key = rsa_key();
        let public = PublicKey {
            kind: KeyKind::Rsa,
            bytes: key.public().as_ref(),
        };
        let cases: [(Oid, &dyn sig::RsaEncoding); 4] = [
            (SHA1_RSA, &sig::RSA_PKCS1_SHA256),
            (SHA256_RSA, &sig::RSA_PKCS1_SHA256),
            (SHA384_RSA, &sig::RSA_PKCS1_SHA384),
            (SHA512_RSA, &sig::RSA_PKCS1_SHA512),
        ];
        for (oid, encoding) in cases {
            let mut signature = vec![0; key.public().modulus_len()];
            key.sign(encoding, &SystemRandom::new(), MESSAGE, &mut signature)
                .unwrap();
            let alg = resolve(&tlv(
                0x30,
                &[tlv(0x06, oid.as_bytes()), vec![5, 0]].concat(),
            ))
            .unwrap();
            let verified = alg.verify(public, MESSAGE, &signature, &RsaKeys::default());
            // The SHA-1 identifier with a SHA-256 signature must fail.
            let expected = if oid == SHA1_RSA {
                Err(VerifyError::BadSignature)
            } else {
                Ok(())
            };
            assert_eq!(verified, expected, "{}", alg.name);
            signature[10] ^= 1;
            assert_eq!(
                alg.verify(public, MESSAGE, &signature, &RsaKeys::default()),
                Err(VerifyError::BadSignature)
            );
        }
    }

    #[test]
    fn refuses_unsupported_pss_parameters() {
        let bad = |identifier: Vec<u8>| match resolve(&identifier) {
            Err(AlgError::BadPssParameters(reason)) => reason,
            other => panic!("expected bad PSS parameters, got {other:?}"),
        };
        assert_eq!(
            bad(pss_identifier(&SHA256, &SHA256, 20)),
            "salt length differs from the hash length"
        );
        assert_eq!(
            bad(pss_identifier(&SHA256, &SHA384, 32)),
            "mask generation is not MGF1 with the message hash"
        );
        assert_eq!(
            bad(pss_identifier(&SHA1_RSA, &SHA1_RSA, 20)),
            "hash is not SHA-256/384/512"
        );
        // Absent parameters, and an empty SEQUENCE (all SHA-1 defaults).
        let bare = tlv(0x30, &tlv(0x06, RSASSA_PSS.as_bytes()));
        assert_eq!(bad(bare), "parameters are missing");
        let defaults = tlv(
            0x30,
            &[tlv(0x06, RSASSA_PSS.as_bytes()), tlv(0x30, &[])].concat(),
        );
        assert_eq!(bad(defaults), "hash is not SHA-256/384/512");
    }

    #[test]
    fn names_unsupported_algorithms() {
        let md5 = tlv(
            0x30,
            &[
                tlv(0x06, oid!(1.2.840 .113549 .1 .1 .4).as_bytes()),
                vec![0x05, 0x00],
            ]
            .concat(),
        );
        assert_eq!(
            resolve(&md5).unwrap_err(),
            AlgError::Unsupported("1.2.840.113549.1.1.4".to_string())
        );
    }
}
