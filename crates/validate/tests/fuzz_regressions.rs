//! Inputs found by the fuzz targets in /fuzz (scripts/fuzz.sh), kept as
//! plain tests. Certificates are built byte by byte and signed by a fixed
//! Ed25519 root, as the `precert_tbs` target does, so only the odd field
//! differs from an acceptable submission.

use ct_testkit::der::tlv;
use ct_validate::{validate_chain, Endpoint, Policy, Rejection, Roots, ValidatedLeaf};
use ring::signature::{Ed25519KeyPair, KeyPair};

const ED25519: [u8; 3] = [0x2b, 0x65, 0x70];
const POISON: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
const SERVER_AUTH: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

fn name(cn: &str) -> Vec<u8> {
    let atv = tlv(
        0x30,
        &[tlv(0x06, &[0x55, 0x04, 0x03]), tlv(0x0c, cn.as_bytes())].concat(),
    );
    tlv(0x30, &tlv(0x31, &atv))
}

fn validity(not_after: &[u8]) -> Vec<u8> {
    tlv(
        0x30,
        &[tlv(0x17, b"250601000000Z"), tlv(0x17, not_after)].concat(),
    )
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let critical = if critical {
        tlv(0x01, &[0xff])
    } else {
        Vec::new()
    };
    tlv(0x30, &[tlv(0x06, oid), critical, tlv(0x04, value)].concat())
}

struct Root {
    key: Ed25519KeyPair,
    der: Vec<u8>,
    subject: Vec<u8>,
    spki: Vec<u8>,
}

impl Root {
    fn new() -> Root {
        let key = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let subject = name("fuzz regression root");
        let spki = tlv(
            0x30,
            &[
                tlv(0x30, &tlv(0x06, &ED25519)),
                tlv(0x03, &[&[0u8][..], key.public_key().as_ref()].concat()),
            ]
            .concat(),
        );
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa0, &tlv(0x02, &[2])),
                tlv(0x02, &[1]),
                tlv(0x30, &tlv(0x06, &ED25519)),
                subject.clone(),
                validity(b"400101000000Z"),
                subject.clone(),
                spki.clone(),
            ]
            .concat(),
        );
        let mut root = Root {
            key,
            der: Vec::new(),
            subject,
            spki,
        };
        root.der = root.sign(&tbs);
        root
    }

    fn sign(&self, tbs: &[u8]) -> Vec<u8> {
        let sig = self.key.sign(tbs);
        tlv(
            0x30,
            &[
                tbs,
                &tlv(0x30, &tlv(0x06, &ED25519)),
                &tlv(0x03, &[&[0u8][..], sig.as_ref()].concat()),
            ]
            .concat(),
        )
    }

    /// A leaf issued by the root with the given raw version field (None:
    /// omitted, i.e. v1) and extensions.
    fn leaf(&self, version: Option<&[u8]>, extensions: &[Vec<u8>]) -> Vec<u8> {
        let mut fields = Vec::new();
        if let Some(v) = version {
            fields.push(tlv(0xa0, &tlv(0x02, v)));
        }
        fields.push(tlv(0x02, &[0x42]));
        fields.push(tlv(0x30, &tlv(0x06, &ED25519)));
        fields.push(self.subject.clone());
        fields.push(validity(b"260601000000Z"));
        fields.push(name("leaf.fuzz.test"));
        fields.push(self.spki.clone());
        if !extensions.is_empty() {
            fields.push(tlv(0xa3, &tlv(0x30, &extensions.concat())));
        }
        self.sign(&tlv(0x30, &fields.concat()))
    }
}

fn policy() -> Policy {
    Policy {
        not_after_start: 1_767_225_600, // 2026-01-01
        not_after_limit: 1_798_761_600, // 2027-01-01
        max_chain_length: 10,
    }
}

fn validate(root: &Root, leaf: Vec<u8>, endpoint: Endpoint) -> Result<ValidatedLeaf, Rejection> {
    let roots = Roots::from_ders(vec![root.der.clone()]).unwrap();
    validate_chain(&[leaf], &roots, &policy(), endpoint).map(|v| v.leaf)
}

fn server_auth() -> Vec<u8> {
    extension(
        &[0x55, 0x1d, 0x25],
        false,
        &tlv(0x30, &tlv(0x06, &SERVER_AUTH)),
    )
}

fn poison() -> Vec<u8> {
    extension(&POISON, true, &[0x05, 0x00])
}

fn assert_malformed_version(r: Result<ValidatedLeaf, Rejection>) {
    match r {
        Err(Rejection::Malformed { index: 0, reason }) => {
            assert!(reason.contains("version"), "{reason}")
        }
        other => panic!("expected a malformed-version rejection, got {other:?}"),
    }
}

/// The fixtures themselves are fine: v3 with extensions, v1 without.
#[test]
fn fixtures_are_accepted() {
    let root = Root::new();
    assert!(matches!(
        validate(
            &root,
            root.leaf(Some(&[2]), &[server_auth()]),
            Endpoint::AddChain
        ),
        Ok(ValidatedLeaf::X509 { .. })
    ));
    assert!(matches!(
        validate(
            &root,
            root.leaf(Some(&[2]), &[poison()]),
            Endpoint::AddPreChain
        ),
        Ok(ValidatedLeaf::Precert { .. })
    ));
    assert!(matches!(
        validate(&root, root.leaf(None, &[]), Endpoint::AddChain),
        Ok(ValidatedLeaf::X509 { .. })
    ));
}

/// precert_tbs crash (fuzz/corpus/precert_tbs/regression-version-37): a
/// signed certificate with version field 37 was accepted and logged.
#[test]
fn refuses_version_fields_above_v3() {
    let root = Root::new();
    for v in [&[3u8][..], &[37], &[0x7f], &[0x01, 0x00]] {
        assert_malformed_version(validate(
            &root,
            root.leaf(Some(v), &[server_auth()]),
            Endpoint::AddChain,
        ));
        assert_malformed_version(validate(&root, root.leaf(Some(v), &[]), Endpoint::AddChain));
    }
}

/// Extensions need v3: a v1 or v2 "precertificate" is not one (Go's parser
/// ignores the extensions of such a certificate).
#[test]
fn refuses_extensions_before_v3() {
    let root = Root::new();
    for version in [None, Some(&[0u8][..]), Some(&[1])] {
        assert_malformed_version(validate(
            &root,
            root.leaf(version, &[poison()]),
            Endpoint::AddPreChain,
        ));
        assert_malformed_version(validate(
            &root,
            root.leaf(version, &[server_auth()]),
            Endpoint::AddChain,
        ));
    }
}
