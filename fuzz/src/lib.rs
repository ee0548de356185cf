//! Shared fixtures and invariant checks of the ct-log fuzz targets.
//!
//! Everything here panics (so libFuzzer reports a crash) when an invariant
//! does not hold; the targets call it with inputs the fuzzer chose.

use std::sync::OnceLock;

use ct_formats::{parse_tile_leaves, Entry, EntryKind};
use ct_validate::{validate_chain, Endpoint, Policy, Roots, ValidatedChain, ValidatedLeaf};
use ring::signature::{Ed25519KeyPair, KeyPair};
use x509_parser::certificate::{TbsCertificate, TbsCertificateParser, X509CertificateParser};
use x509_parser::extensions::X509Extension;
use x509_parser::nom::Parser;

/// DER contents of the poison OID 1.3.6.1.4.1.11129.2.4.3.
pub const POISON_OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
/// DER contents of OID 1.3.101.112 (Ed25519).
pub const ED25519_OID: [u8; 3] = [0x2b, 0x65, 0x70];

/// 2026-01-01T00:00:00Z and 2027-01-01T00:00:00Z.
pub const NOT_AFTER_START: u64 = 1_767_225_600;
pub const NOT_AFTER_LIMIT: u64 = 1_798_761_600;

/// The policy the server uses (max chain length 10) with the 2026 window.
pub fn policy() -> Policy {
    Policy {
        not_after_start: NOT_AFTER_START,
        not_after_limit: NOT_AFTER_LIMIT,
        max_chain_length: 10,
    }
}

/// A policy that accepts any leaf NotAfter, so real certificates of any
/// age get past the window check and into chain building.
pub fn wide_policy() -> Policy {
    Policy {
        not_after_start: 0,
        not_after_limit: u64::MAX,
        max_chain_length: 10,
    }
}

/// One DER element with a minimal length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The project's dev root (testdata/dev/roots.pem) plus, when the shared
/// third-party vectors are present next to the project, their roots.
pub fn real_roots() -> &'static Roots {
    static ROOTS: OnceLock<Roots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut pem = include_bytes!("../../testdata/dev/roots.pem").to_vec();
        let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/");
        for file in ["test-roots.pem", "mmd_monitor_root.crt"] {
            if let Ok(extra) = std::fs::read(format!("{vectors}{file}")) {
                pem.push(b'\n');
                pem.extend_from_slice(&extra);
            }
        }
        Roots::from_pem(&pem).expect("fuzz roots")
    })
}

/// A fixed Ed25519 root: its key signs any TBS the fuzzer makes, so the
/// fuzzer can reach everything after the signature check.
pub struct FuzzRoot {
    key: Ed25519KeyPair,
    pub der: Vec<u8>,
    /// DER Name of the root (issuer of every signed TBS).
    pub subject: Vec<u8>,
    /// DER SubjectPublicKeyInfo of the root key (reused for leaves).
    pub spki: Vec<u8>,
    pub roots: Roots,
}

pub fn fuzz_root() -> &'static FuzzRoot {
    static ROOT: OnceLock<FuzzRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let key = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).expect("ed25519 seed");
        let subject = name("ct-log fuzz root");
        let spki = tlv(
            0x30,
            &[
                tlv(0x30, &tlv(0x06, &ED25519_OID)),
                tlv(0x03, &[&[0u8][..], key.public_key().as_ref()].concat()),
            ]
            .concat(),
        );
        // basicConstraints CA:TRUE, critical.
        let bc = tlv(
            0x30,
            &[
                tlv(0x06, &[0x55, 0x1d, 0x13]),
                tlv(0x01, &[0xff]),
                tlv(0x04, &tlv(0x30, &tlv(0x01, &[0xff]))),
            ]
            .concat(),
        );
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa0, &tlv(0x02, &[2])),
                tlv(0x02, &[1]),
                tlv(0x30, &tlv(0x06, &ED25519_OID)),
                subject.clone(),
                validity(b"200101000000Z", b"400101000000Z"),
                subject.clone(),
                spki.clone(),
                tlv(0xa3, &tlv(0x30, &bc)),
            ]
            .concat(),
        );
        let der = sign_with(&key, &tbs);
        let roots = Roots::from_ders(vec![der.clone()]).expect("fuzz root");
        FuzzRoot {
            key,
            der,
            subject,
            spki,
            roots,
        }
    })
}

impl FuzzRoot {
    /// A certificate over `tbs` (any bytes) signed by the root.
    pub fn sign(&self, tbs: &[u8]) -> Vec<u8> {
        sign_with(&self.key, tbs)
    }
}

fn sign_with(key: &Ed25519KeyPair, tbs: &[u8]) -> Vec<u8> {
    let sig = key.sign(tbs);
    tlv(
        0x30,
        &[
            tbs,
            &tlv(0x30, &tlv(0x06, &ED25519_OID)),
            &tlv(0x03, &[&[0u8][..], sig.as_ref()].concat()),
        ]
        .concat(),
    )
}

/// Name with one CN (UTF8String).
pub fn name(cn: &str) -> Vec<u8> {
    let atv = tlv(
        0x30,
        &[tlv(0x06, &[0x55, 0x04, 0x03]), tlv(0x0c, cn.as_bytes())].concat(),
    );
    tlv(0x30, &tlv(0x31, &atv))
}

/// Validity with two UTCTimes (given as their content bytes).
pub fn validity(not_before: &[u8], not_after: &[u8]) -> Vec<u8> {
    tlv(0x30, &[tlv(0x17, not_before), tlv(0x17, not_after)].concat())
}

/// Validates `chain` on both endpoints and checks every invariant of an
/// accepted chain. Returns how many endpoints accepted it.
pub fn validate_both(chain: &[Vec<u8>], roots: &Roots, policy: &Policy) -> usize {
    let mut accepted = 0;
    for endpoint in [Endpoint::AddChain, Endpoint::AddPreChain] {
        match validate_chain(chain, roots, policy, endpoint) {
            Ok(v) => {
                check_accepted(chain, roots, policy, endpoint, &v);
                accepted += 1;
            }
            Err(rejection) => {
                let reason = rejection.to_string();
                assert!(
                    !reason.is_empty() && !reason.contains('\n') && !reason.contains('\r'),
                    "rejection reason is not one line: {reason:?}"
                );
                assert!(reason.len() < 2048, "rejection reason is huge: {}", reason.len());
            }
        }
    }
    assert!(accepted <= 1, "a chain was accepted by both endpoints");
    accepted
}

/// What must hold for every chain `validate_chain` accepts.
pub fn check_accepted(
    chain: &[Vec<u8>],
    roots: &Roots,
    policy: &Policy,
    endpoint: Endpoint,
    v: &ValidatedChain,
) {
    // Deterministic: the same chain re-validates identically.
    let again = validate_chain(chain, roots, policy, endpoint).expect("re-validation failed");
    assert_eq!(again.leaf, v.leaf, "re-validation: leaf differs");
    assert_eq!(again.issuers, v.issuers, "re-validation: issuers differ");
    assert_eq!(again.not_before, v.not_before);
    assert_eq!(again.has_embedded_scts, v.has_embedded_scts);

    // The stored chain: the submitted issuers, then exactly one root.
    let (root, submitted) = v.issuers.split_last().expect("no root in the stored chain");
    assert!(
        roots.certificates().contains(root),
        "stored chain does not end with a configured root"
    );
    assert!(submitted.len() < chain.len());
    assert_eq!(submitted, &chain[1..=submitted.len()], "stored issuers differ");

    // Every certificate used is a well-formed X.509 v1/v2/v3 certificate
    // (RFC 5280 §4.1.2.1: extensions require v3).
    for der in chain.iter().take(submitted.len() + 1) {
        let (rest, cert) = X509CertificateParser::new()
            .with_deep_parse_extensions(false)
            .parse(der)
            .expect("accepted certificate does not parse");
        assert!(rest.is_empty());
        let version = cert.tbs_certificate.version.0;
        assert!(version <= 2, "accepted an X.509 certificate with version field {version}");
        assert!(
            cert.tbs_certificate.extensions().is_empty() || version == 2,
            "accepted a v{} certificate with extensions",
            version + 1
        );
    }

    let leaf = parse_tbs_of(&chain[0]);
    let poisons = leaf.extensions().iter().filter(|e| is_poison(e)).count();
    let kind = match (&v.leaf, endpoint) {
        (ValidatedLeaf::X509 { certificate }, Endpoint::AddChain) => {
            assert_eq!(certificate, &chain[0]);
            assert_eq!(poisons, 0, "add-chain accepted a poisoned certificate");
            EntryKind::X509 {
                certificate: certificate.clone(),
            }
        }
        (
            ValidatedLeaf::Precert {
                issuer_key_hash,
                tbs,
                precertificate,
            },
            Endpoint::AddPreChain,
        ) => {
            assert_eq!(precertificate, &chain[0]);
            assert_eq!(poisons, 1, "add-pre-chain accepted {poisons} poison extensions");
            check_defanged(&chain[0], tbs);
            EntryKind::Precert {
                issuer_key_hash: *issuer_key_hash,
                tbs: tbs.clone(),
                precertificate: precertificate.clone(),
            }
        }
        (leaf, endpoint) => panic!("{endpoint:?} accepted a {leaf:?}"),
    };

    // What the log would store round-trips through the data tile format.
    let fingerprints = v
        .issuers
        .iter()
        .map(|c| {
            use sha2::Digest;
            sha2::Sha256::digest(c).into()
        })
        .collect();
    let entry = Entry {
        kind,
        chain_fingerprints: fingerprints,
    };
    let mut tile = Vec::new();
    entry.write_tile_leaf(1_700_000_000_000, 12345, &mut tile);
    let parsed = parse_tile_leaves(&tile).expect("own tile leaf does not parse");
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].entry, entry);
    assert_eq!(parsed[0].leaf_index(), Ok(12345));
}

fn is_poison(e: &X509Extension) -> bool {
    e.oid.as_bytes() == POISON_OID
}

fn parse_tbs_of(cert: &[u8]) -> TbsCertificate<'_> {
    let (_, cert) = X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(cert)
        .expect("certificate parses");
    cert.tbs_certificate
}

/// The defanged TBS of `precert`: a DER TBSCertificate equal to the
/// precertificate's in every field, with the extensions in the same order
/// minus the poison, no `[3]` field if nothing is left, minimal lengths
/// wherever it was re-encoded.
pub fn check_defanged(precert: &[u8], defanged: &[u8]) {
    let original = parse_tbs_of(precert);
    let (rest, out) = TbsCertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(defanged)
        .unwrap_or_else(|e| panic!("defanged TBS does not parse: {e}"));
    assert!(rest.is_empty(), "bytes after the defanged TBS");
    assert_eq!(out.version, original.version);
    assert_eq!(out.raw_serial(), original.raw_serial());
    assert_eq!(out.signature, original.signature);
    assert_eq!(out.issuer.as_raw(), original.issuer.as_raw());
    assert_eq!(out.subject.as_raw(), original.subject.as_raw());
    assert_eq!(out.validity, original.validity);
    assert_eq!(out.subject_pki.raw, original.subject_pki.raw);
    assert_eq!(out.issuer_uid, original.issuer_uid);
    assert_eq!(out.subject_uid, original.subject_uid);
    assert!(
        !out.extensions().iter().any(is_poison),
        "defanged TBS still has the poison"
    );
    let want: Vec<_> = original
        .extensions()
        .iter()
        .filter(|e| !is_poison(e))
        .map(|e| (e.oid.clone(), e.critical, e.value))
        .collect();
    let got: Vec<_> = out
        .extensions()
        .iter()
        .map(|e| (e.oid.clone(), e.critical, e.value))
        .collect();
    assert_eq!(got, want, "defanged TBS extensions");
    if want.is_empty() {
        // Only the poison: the [3] field is dropped, not left empty.
        let (_, content) = split_tlv(defanged);
        assert!(
            !children(content).iter().any(|f| f[0] == 0xa3),
            "defanged TBS keeps an empty extensions field"
        );
    }
    // Re-encoded lengths are minimal: outer SEQUENCE, [3], its SEQUENCE.
    let (_, content) = split_tlv(defanged);
    assert_eq!(tlv(0x30, content), defanged, "outer length is not minimal");
    if let Some(field) = children(content).into_iter().find(|f| f[0] == 0xa3) {
        let (_, seq) = split_tlv(&field);
        assert_eq!(tlv(0xa3, seq), field, "[3] length is not minimal");
        let (_, list) = split_tlv(seq);
        assert_eq!(tlv(0x30, list), seq, "extensions length is not minimal");
    }
}

/// (tag, content) of a DER element that is known to be well formed.
fn split_tlv(der: &[u8]) -> (u8, &[u8]) {
    let first = der[1];
    let (h, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        let len = der[2..2 + n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + n, len)
    };
    (der[0], &der[h..h + len])
}

/// The whole elements concatenated in `content` (well formed).
fn children(mut content: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let first = content[1];
        let (h, len) = if first < 0x80 {
            (2, usize::from(first))
        } else {
            let n = usize::from(first & 0x7f);
            let len = content[2..2 + n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (2 + n, len)
        };
        out.push(content[..h + len].to_vec());
        content = &content[h + len..];
    }
    out
}

/// Splits fuzz input into chain elements: each a u16 big-endian length then
/// that many bytes (a short last element takes what is left).
pub fn split_chain(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let end = (2 + len).min(data.len());
        out.push(data[2..end].to_vec());
        data = &data[end..];
    }
    out
}
