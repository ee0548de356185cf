//! Every submitted certificate that signs another must be a CA
//! (basicConstraints cA = TRUE); a configured root need not be. rcgen makes
//! the v3 PKIs; v1 certificates and odd basicConstraints encodings are
//! built byte by byte and signed with Ed25519, since rcgen writes neither.

mod common;

use common::*;
use ct_validate::{validate_chain, Endpoint, Rejection, Roots};
use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

fn add_chain(chain: &[Vec<u8>], roots: &Roots) -> Result<Vec<Vec<u8>>, Rejection> {
    validate_chain(chain, roots, &policy(), Endpoint::AddChain).map(|ok| ok.issuers)
}

fn not_ca(index: usize, problem: &'static str) -> Rejection {
    Rejection::IssuerNotCa { index, problem }
}

/// An intermediate signed by `parent`, with the given basicConstraints.
fn issuer_with(name: &str, is_ca: IsCa, parent: &Ca) -> Ca {
    let mut params = ca_params(name);
    params.is_ca = is_ca;
    intermediate_with(params, key(P256), parent)
}

#[test]
fn rejects_an_issuer_without_basic_constraints() {
    let root = root("BC Root", P256);
    let issuer = issuer_with("No BC", IsCa::NoCa, &root);
    let err = add_chain(&[leaf(&issuer), der(&issuer)], &roots(&[&root])).unwrap_err();
    assert_eq!(err, not_ca(1, "no basicConstraints extension"));
    assert_eq!(
        err.to_string(),
        "chain[1] is not a CA certificate (no basicConstraints extension)"
    );
    assert_eq!(err.reason(), "issuer_not_ca");
}

#[test]
fn rejects_an_issuer_with_ca_false() {
    let root = root("BC Root", P256);
    let issuer = issuer_with("CA false", IsCa::ExplicitNoCa, &root);
    let err = add_chain(&[leaf(&issuer), der(&issuer)], &roots(&[&root])).unwrap_err();
    assert_eq!(err, not_ca(1, "basicConstraints cA is not true"));
}

#[test]
fn names_the_first_non_ca_issuer_up_the_path() {
    let root = root("BC Root", P256);
    let good = intermediate("Good CA", P256, &root);
    let bad = issuer_with("Leaf-like", IsCa::NoCa, &good);
    let below = intermediate("Below", P256, &bad);
    let chain = [leaf(&below), der(&below), der(&bad), der(&good)];
    let err = add_chain(&chain, &roots(&[&root])).unwrap_err();
    assert_eq!(err, not_ca(2, "no basicConstraints extension"));
}

#[test]
fn rejects_a_precertificate_issued_by_a_non_ca() {
    let root = root("BC Root", P256);
    let issuer = issuer_with("No BC", IsCa::NoCa, &root);
    let precert = sign(&precert_params(), &key(P256), &issuer);
    let err = validate_chain(
        &[precert, der(&issuer)],
        &roots(&[&root]),
        &policy(),
        Endpoint::AddPreChain,
    )
    .unwrap_err();
    assert_eq!(err, not_ca(1, "no basicConstraints extension"));
}

/// Path length and key usage are not a log's business (SPEC.md), and Go
/// ignores keyUsage on issuers too.
#[test]
fn ignores_path_length_and_key_usage() {
    let root = root("BC Root", P256);
    let mut params = ca_params("pathLen 0, no keyCertSign");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let first = intermediate_with(params, key(P256), &root);
    let second = intermediate("Below pathLen 0", P256, &first);
    let chain = [leaf(&second), der(&second), der(&first)];
    assert!(add_chain(&chain, &roots(&[&root])).is_ok());
}

/// The operator chose the root; whether it calls itself a CA is not
/// checked, as Go does not check its roots either.
#[test]
fn accepts_a_configured_root_that_is_not_a_ca() {
    let mut params = ca_params("Non-CA Root");
    params.is_ca = IsCa::ExplicitNoCa;
    let root = rcgen::CertifiedIssuer::self_signed(params, key(P256)).unwrap();
    let inter = intermediate("Under a non-CA root", P256, &root);
    let roots = roots(&[&root]);
    assert_eq!(
        add_chain(&[leaf(&inter), der(&inter)], &roots).unwrap(),
        vec![der(&inter), der(&root)]
    );
    // A submitted copy of the root is found through the roots, unchecked.
    assert!(add_chain(&[leaf(&root), der(&root)], &roots).is_ok());
}

// --- Hand-built certificates -------------------------------------------

const ED25519: [u8; 3] = [0x2b, 0x65, 0x70];
const BASIC_CONSTRAINTS: [u8; 3] = [0x55, 0x1d, 0x13];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    assert!(content.len() < 0x1_0000);
    let mut out = vec![tag];
    match content.len() {
        len @ 0..=0x7f => out.push(len as u8),
        len @ 0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        len => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn name(cn: &str) -> Vec<u8> {
    let atv = tlv(
        0x30,
        &[tlv(0x06, &[0x55, 0x04, 0x03]), tlv(0x0c, cn.as_bytes())].concat(),
    );
    tlv(0x30, &tlv(0x31, &atv))
}

/// A basicConstraints extension whose SEQUENCE holds `content`.
fn basic_constraints(content: &[u8]) -> Vec<u8> {
    let value = tlv(0x30, content);
    tlv(
        0x30,
        &[
            tlv(0x06, &BASIC_CONSTRAINTS),
            tlv(0x01, &[0xff]),
            tlv(0x04, &value),
        ]
        .concat(),
    )
}

fn ca_true() -> Vec<u8> {
    basic_constraints(&tlv(0x01, &[0xff]))
}

/// A named Ed25519 key that issues hand-built certificates.
struct Signer {
    name: Vec<u8>,
    key: Ed25519KeyPair,
}

impl Signer {
    fn new(cn: &str, seed: u8) -> Signer {
        Signer {
            name: name(cn),
            key: Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap(),
        }
    }

    fn spki(&self) -> Vec<u8> {
        let key = [&[0u8][..], self.key.public_key().as_ref()].concat();
        tlv(
            0x30,
            &[tlv(0x30, &tlv(0x06, &ED25519)), tlv(0x03, &key)].concat(),
        )
    }

    /// A certificate for `subject` signed by `self`: X.509 v1 when
    /// `extensions` is None, else v3 with those extensions. NotAfter
    /// 2025-06-01, inside the test policy window, so it may be a leaf.
    fn issue(&self, subject: &Signer, extensions: Option<&[Vec<u8>]>) -> Vec<u8> {
        let mut fields = Vec::new();
        if extensions.is_some() {
            fields.push(tlv(0xa0, &tlv(0x02, &[2])));
        }
        fields.push(tlv(0x02, &[0x01]));
        fields.push(tlv(0x30, &tlv(0x06, &ED25519)));
        fields.push(self.name.clone());
        fields.push(tlv(
            0x30,
            &[tlv(0x17, b"250101000000Z"), tlv(0x17, b"250601000000Z")].concat(),
        ));
        fields.push(subject.name.clone());
        fields.push(subject.spki());
        if let Some(extensions) = extensions.filter(|e| !e.is_empty()) {
            fields.push(tlv(0xa3, &tlv(0x30, &extensions.concat())));
        }
        let tbs = tlv(0x30, &fields.concat());
        let signature = [&[0u8][..], self.key.sign(&tbs).as_ref()].concat();
        tlv(
            0x30,
            &[tbs, tlv(0x30, &tlv(0x06, &ED25519)), tlv(0x03, &signature)].concat(),
        )
    }
}

fn der_roots(ders: &[&[u8]]) -> Roots {
    Roots::from_ders(ders.iter().map(|d| d.to_vec()).collect()).unwrap()
}

/// RFC 5280 §6.1 allows v1 trust anchors, and old roots are v1.
#[test]
fn accepts_a_v1_configured_root() {
    let root = Signer::new("v1 Root", 1);
    let inter = Signer::new("v3 CA under v1 root", 2);
    let leaf = Signer::new("leaf", 3);
    let root_der = root.issue(&root, None);
    let inter_der = root.issue(&inter, Some(&[ca_true()]));
    let roots = der_roots(&[&root_der]);
    let chain = [inter.issue(&leaf, Some(&[])), inter_der.clone()];
    assert_eq!(
        add_chain(&chain, &roots).unwrap(),
        vec![inter_der, root_der.clone()]
    );
    assert!(add_chain(&[root.issue(&leaf, None)], &roots).is_ok());
}

/// A v1 intermediate cannot say it is a CA; Go rejects it too.
#[test]
fn rejects_a_v1_intermediate() {
    let root = Signer::new("v3 Root", 1);
    let inter = Signer::new("v1 Intermediate", 2);
    let leaf = Signer::new("leaf", 3);
    let roots = der_roots(&[&root.issue(&root, Some(&[ca_true()]))]);
    let chain = [inter.issue(&leaf, Some(&[])), root.issue(&inter, None)];
    let err = add_chain(&chain, &roots).unwrap_err();
    assert_eq!(
        err,
        not_ca(
            1,
            "X.509 v1 or v2 certificate; only a configured root may be one"
        )
    );
}

#[test]
fn reads_the_basic_constraints_encodings() {
    let root = Signer::new("v3 Root", 1);
    let inter = Signer::new("Intermediate", 2);
    let leaf = Signer::new("leaf", 3);
    let roots = der_roots(&[&root.issue(&root, Some(&[ca_true()]))]);
    let check = |extensions: &[Vec<u8>]| {
        let chain = [
            inter.issue(&leaf, Some(&[])),
            root.issue(&inter, Some(extensions)),
        ];
        add_chain(&chain, &roots).map(|_| ())
    };
    let malformed = Err(Rejection::MalformedExtension {
        index: 1,
        extension: "BasicConstraints",
    });
    let is_false = Err(not_ca(1, "basicConstraints cA is not true"));

    let path_len_0 = tlv(0x02, &[0]);
    assert_eq!(check(&[ca_true()]), Ok(()));
    let ca_and_path_len = [tlv(0x01, &[0xff]), path_len_0.clone()].concat();
    assert_eq!(check(&[basic_constraints(&ca_and_path_len)]), Ok(()));
    assert_eq!(check(&[basic_constraints(&[])]), is_false);
    assert_eq!(check(&[basic_constraints(&path_len_0)]), is_false);
    assert_eq!(check(&[basic_constraints(&tlv(0x01, &[0]))]), is_false);
    // BER's "any non-zero is TRUE" is not DER, and Go refuses it too.
    assert_eq!(check(&[basic_constraints(&tlv(0x01, &[1]))]), malformed);
    assert_eq!(check(&[basic_constraints(&tlv(0x0c, b"yes"))]), malformed);
    assert_eq!(check(&[ca_true(), ca_true()]), malformed);
}
