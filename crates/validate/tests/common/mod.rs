//! Test PKIs built with rcgen, and the policy they are checked against.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use ct_testkit::der::header;
pub use ct_testkit::pki::{ca_params, Ca};
use ct_validate::{Policy, Roots};
use rcgen::{
    date_time_ymd, CertificateParams, CertifiedIssuer, CustomExtension, ExtendedKeyUsagePurpose,
    KeyPair, PublicKeyData, SerialNumber, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
};
use sha2::{Digest, Sha256};

pub const P256: &SignatureAlgorithm = &PKCS_ECDSA_P256_SHA256;
pub const P384: &SignatureAlgorithm = &PKCS_ECDSA_P384_SHA384;
pub const ED25519: &SignatureAlgorithm = &PKCS_ED25519;

/// 2025-01-01T00:00:00Z and 2026-01-01T00:00:00Z.
pub const START: u64 = 1_735_689_600;
pub const LIMIT: u64 = 1_767_225_600;

pub fn policy() -> Policy {
    Policy {
        not_after_start: START,
        not_after_limit: LIMIT,
        max_chain_length: 10,
    }
}

pub fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

/// The RSA-2048 test key (rcgen with ring cannot generate RSA keys).
pub fn rsa_key() -> KeyPair {
    KeyPair::from_pem(include_str!("../data/rsa2048-test-key.pem")).unwrap()
}

pub fn root(name: &str, alg: &'static SignatureAlgorithm) -> Ca {
    CertifiedIssuer::self_signed(ca_params(name), key(alg)).unwrap()
}

pub fn intermediate(name: &str, alg: &'static SignatureAlgorithm, parent: &Ca) -> Ca {
    intermediate_with(ca_params(name), key(alg), parent)
}

pub fn intermediate_with(params: CertificateParams, key: KeyPair, parent: &Ca) -> Ca {
    CertifiedIssuer::signed_by(params, key, parent).unwrap()
}

/// A server leaf: NotAfter 2025-06-01, serverAuth EKU, fixed serial, so
/// two leaves from the same params and key have identical TBS.
pub fn leaf_params() -> CertificateParams {
    let mut params = CertificateParams::new(vec!["example.com".to_string()]).unwrap();
    params.serial_number = Some(SerialNumber::from_slice(&[0x01, 0x02, 0x03]));
    params.not_before = date_time_ymd(2025, 3, 1);
    params.not_after = date_time_ymd(2025, 6, 1);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

pub fn sign(params: &CertificateParams, key: &KeyPair, parent: &Ca) -> Vec<u8> {
    params.signed_by(key, parent).unwrap().der().to_vec()
}

pub fn leaf(parent: &Ca) -> Vec<u8> {
    sign(&leaf_params(), &key(P256), parent)
}

pub fn poison(critical: bool, value: Vec<u8>) -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3], value);
    ext.set_criticality(critical);
    ext
}

pub fn precert_params() -> CertificateParams {
    let mut params = leaf_params();
    params
        .custom_extensions
        .push(poison(true, vec![0x05, 0x00]));
    params
}

pub fn der(ca: &Ca) -> Vec<u8> {
    ca.der().to_vec()
}

pub fn roots(cas: &[&Ca]) -> Roots {
    Roots::from_ders(cas.iter().map(|ca| der(ca)).collect()).unwrap()
}

pub fn spki_sha256(ca: &Ca) -> [u8; 32] {
    Sha256::digest(ca.key().subject_public_key_info()).into()
}

/// The TBSCertificate of a DER certificate, cut out by hand (the first
/// element inside the outer SEQUENCE), independently of the crate.
pub fn tbs_of(cert: &[u8]) -> Vec<u8> {
    let (outer_header, _) = header(cert);
    let inner = &cert[outer_header..];
    let (h, len) = header(inner);
    inner[..h + len].to_vec()
}
