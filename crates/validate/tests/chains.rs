//! Chain building and leaf policy on rcgen-generated PKIs.

mod common;

use common::*;
use ct_validate::{validate_chain, Endpoint, Rejection, ValidatedLeaf};
use rcgen::{date_time_ymd, ExtendedKeyUsagePurpose};

fn add_chain(
    chain: &[Vec<u8>],
    roots: &ct_validate::Roots,
) -> Result<ct_validate::ValidatedChain, Rejection> {
    validate_chain(chain, roots, &policy(), Endpoint::AddChain)
}

/// root -> intermediate -> leaf, all with keys of `alg`.
fn pki(alg: &'static rcgen::SignatureAlgorithm) -> (Ca, Ca, Vec<u8>) {
    let root = root("Test Root", alg);
    let inter = intermediate("Test Intermediate", alg, &root);
    let leaf = sign(&leaf_params(), &key(alg), &inter);
    (root, inter, leaf)
}

#[test]
fn accepts_good_chains_with_and_without_the_root() {
    for alg in [P256, ED25519, P384] {
        let (root, inter, leaf) = pki(alg);
        let roots = roots(&[&root]);
        for chain in [
            vec![leaf.clone(), der(&inter)],
            vec![leaf.clone(), der(&inter), der(&root)],
        ] {
            let ok = add_chain(&chain, &roots).unwrap();
            assert_eq!(
                ok.leaf,
                ValidatedLeaf::X509 {
                    certificate: leaf.clone()
                }
            );
            assert_eq!(ok.issuers, vec![der(&inter), der(&root)]);
            assert_eq!(
                ok.not_before,
                date_time_ymd(2025, 3, 1).unix_timestamp() as u64
            );
            assert!(!ok.has_embedded_scts);
        }
    }
}

#[test]
fn accepts_mixed_algorithms_including_rsa() {
    let root = root("Mixed Root", ED25519);
    let rsa = intermediate_with(ca_params("RSA Intermediate"), rsa_key(), &root);
    let p384 = intermediate("P-384 Intermediate", P384, &rsa);
    let leaf = leaf(&p384);
    let chain = vec![leaf, der(&p384), der(&rsa)];
    let ok = add_chain(&chain, &roots(&[&root])).unwrap();
    assert_eq!(ok.issuers, vec![der(&p384), der(&rsa), der(&root)]);
}

#[test]
fn drops_whatever_follows_the_root() {
    let (root, inter, leaf) = pki(P256);
    let stranger = root_der("Unrelated");
    let chain = vec![leaf, der(&inter), der(&root), stranger];
    let ok = add_chain(&chain, &roots(&[&root])).unwrap();
    assert_eq!(ok.issuers, vec![der(&inter), der(&root)]);
}

#[test]
fn appends_the_root_to_a_leaf_submitted_alone() {
    let root = root("Test Root", P256);
    let leaf = leaf(&root);
    let ok = add_chain(&[leaf], &roots(&[&root])).unwrap();
    assert_eq!(ok.issuers, vec![der(&root)]);
}

#[test]
fn stops_at_an_intermediate_that_is_itself_a_root() {
    let (root, inter, leaf) = pki(P256);
    let ok = add_chain(&[leaf, der(&inter), der(&root)], &roots(&[&inter])).unwrap();
    assert_eq!(ok.issuers, vec![der(&inter)]);
}

#[test]
fn tries_every_root_with_the_issuer_name() {
    let (root, inter, leaf) = pki(P256);
    let twin = common::root("Test Root", P256);
    let roots = roots(&[&twin, &root]);
    let ok = add_chain(&[leaf, der(&inter)], &roots).unwrap();
    assert_eq!(ok.issuers, vec![der(&inter), der(&root)]);
}

#[test]
fn rejects_an_intermediate_with_the_right_name_but_another_key() {
    let (root, _, _) = pki(P256);
    let inter = intermediate("Test Intermediate", P256, &root);
    let impostor = intermediate("Test Intermediate", P256, &root);
    let leaf = leaf(&inter);
    let err = add_chain(&[leaf, der(&impostor)], &roots(&[&root])).unwrap_err();
    assert_eq!(err, Rejection::BadSignature { index: 0 });
    assert_eq!(
        err.to_string(),
        "chain[0]: signature does not verify with chain[1]'s key"
    );
}

#[test]
fn rejects_a_submitted_root_copy_whose_key_did_not_sign() {
    let (_root, inter, leaf) = pki(P256);
    let twin = common::root("Test Root", P256);
    let err = add_chain(&[leaf, der(&inter), der(&twin)], &roots(&[&twin])).unwrap_err();
    assert_eq!(err, Rejection::BadSignature { index: 1 });
}

#[test]
fn rejects_a_name_mismatch() {
    let (root, _, _) = pki(P256);
    let inter = intermediate("Test Intermediate", P256, &root);
    let other = intermediate("Other Intermediate", P256, &root);
    let err = add_chain(&[leaf(&inter), der(&other)], &roots(&[&root])).unwrap_err();
    assert!(
        matches!(err, Rejection::IssuerMismatch { index: 0, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "chain[0]: issuer CN=Test Intermediate does not match chain[1]'s subject CN=Other Intermediate"
    );
}

#[test]
fn rejects_an_unknown_root() {
    let (_, inter, leaf) = pki(P256);
    let other = common::root("Other Root", P256);
    let err = add_chain(&[leaf.clone(), der(&inter)], &roots(&[&other])).unwrap_err();
    assert!(
        matches!(err, Rejection::NoAcceptedRoot { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("CN=Test Root"), "{err}");

    // Same name as the real root, different key.
    let twin = common::root("Test Root", P256);
    let err = add_chain(&[leaf, der(&inter)], &roots(&[&twin])).unwrap_err();
    assert!(
        matches!(err, Rejection::RootSignatureMismatch { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn rejects_a_chain_ending_in_an_unconfigured_root() {
    let (root, inter, leaf) = pki(P256);
    let other = common::root("Other Root", P256);
    let err = add_chain(&[leaf, der(&inter), der(&root)], &roots(&[&other])).unwrap_err();
    assert!(
        matches!(err, Rejection::NoAcceptedRoot { index: 2, .. }),
        "{err}"
    );
}

#[test]
fn rejects_garbage_and_trailing_bytes() {
    let (root, inter, leaf) = pki(P256);
    let roots = roots(&[&root]);
    let err = add_chain(&[leaf.clone(), vec![0x30, 0x03, 0x01, 0x02]], &roots).unwrap_err();
    assert!(
        matches!(err, Rejection::Malformed { index: 1, .. }),
        "{err}"
    );
    assert!(add_chain(&[vec![]], &roots).is_err());

    let mut padded = leaf.clone();
    padded.extend_from_slice(&[0, 0, 0]);
    let err = add_chain(&[padded, der(&inter)], &roots).unwrap_err();
    assert_eq!(err, Rejection::TrailingBytes { index: 0, count: 3 });

    let mut truncated = der(&inter);
    truncated.pop();
    let err = add_chain(&[leaf, truncated], &roots).unwrap_err();
    assert!(
        matches!(err, Rejection::Malformed { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn rejects_empty_and_overlong_chains() {
    let (root, inter, leaf) = pki(P256);
    let roots = roots(&[&root]);
    assert_eq!(add_chain(&[], &roots).unwrap_err(), Rejection::EmptyChain);
    let mut chain = vec![leaf, der(&inter)];
    chain.extend(std::iter::repeat_n(der(&root), 9));
    let err = add_chain(&chain, &roots).unwrap_err();
    assert_eq!(err, Rejection::ChainTooLong { len: 11, max: 10 });
    chain.pop();
    assert!(add_chain(&chain, &roots).is_ok());
}

#[test]
fn enforces_the_not_after_window() {
    let root = root("Test Root", P256);
    let roots = roots(&[&root]);
    let key = key(P256);
    let with_not_after = |year, month, day| {
        let mut params = leaf_params();
        params.not_after = date_time_ymd(year, month, day);
        sign(&params, &key, &root)
    };

    // NotAfter == limit: the limit is exclusive.
    let err = add_chain(&[with_not_after(2026, 1, 1)], &roots).unwrap_err();
    assert_eq!(
        err.to_string(),
        "leaf NotAfter 2026-01-01T00:00:00Z is not before the log's not_after_limit 2026-01-01T00:00:00Z"
    );

    // NotAfter == start: the start is inclusive.
    let at_start = with_not_after(2025, 1, 1);
    assert!(add_chain(std::slice::from_ref(&at_start), &roots).is_ok());

    // One second before the start.
    let mut later = policy();
    later.not_after_start = START + 1;
    let err = validate_chain(&[at_start], &roots, &later, Endpoint::AddChain).unwrap_err();
    assert_eq!(
        err,
        Rejection::NotAfterTooEarly {
            not_after: START as i64,
            start: START + 1
        }
    );
}

#[test]
fn accepts_expired_leaves_and_intermediates() {
    let root = root("Old Root", P256);
    let mut params = ca_params("Expired Intermediate");
    params.not_before = date_time_ymd(2010, 1, 1);
    params.not_after = date_time_ymd(2019, 7, 16);
    let inter = intermediate_with(params, key(P256), &root);
    let mut leaf_params = leaf_params();
    leaf_params.not_before = date_time_ymd(2020, 1, 1);
    leaf_params.not_after = date_time_ymd(2020, 6, 1);
    let leaf = sign(&leaf_params, &key(P256), &inter);

    let mut window = policy();
    window.not_after_start = date_time_ymd(2020, 1, 1).unix_timestamp() as u64;
    window.not_after_limit = date_time_ymd(2021, 1, 1).unix_timestamp() as u64;
    let ok = validate_chain(
        &[leaf, der(&inter)],
        &roots(&[&root]),
        &window,
        Endpoint::AddChain,
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn requires_server_auth_when_eku_is_present() {
    let root = root("Test Root", P256);
    let roots = roots(&[&root]);
    let with_ekus = |ekus: Vec<ExtendedKeyUsagePurpose>| {
        let mut params = leaf_params();
        params.extended_key_usages = ekus;
        sign(&params, &key(P256), &root)
    };
    let err = add_chain(
        &[with_ekus(vec![ExtendedKeyUsagePurpose::ClientAuth])],
        &roots,
    )
    .unwrap_err();
    assert_eq!(err, Rejection::MissingServerAuth);
    for ok in [
        vec![],
        vec![ExtendedKeyUsagePurpose::Any],
        vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ],
    ] {
        assert!(add_chain(&[with_ekus(ok)], &roots).is_ok());
    }
}

#[test]
fn reports_embedded_scts() {
    let root = root("Test Root", P256);
    let mut params = leaf_params();
    // An (empty) SignedCertificateTimestampList: OCTET STRING containing a zero-length list.
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
            vec![0x04, 0x02, 0x00, 0x00],
        ));
    let leaf = sign(&params, &key(P256), &root);
    assert!(
        add_chain(&[leaf], &roots(&[&root]))
            .unwrap()
            .has_embedded_scts
    );
}

#[test]
fn agrees_with_the_static_ct_api_oracle() {
    let (root, inter, leaf) = pki(P256);
    let ours = add_chain(&[leaf.clone(), der(&inter)], &roots(&[&root])).unwrap();
    let pool =
        static_ct_api::CertPool::new(static_ct_api::load_pem_chain(root.pem().as_bytes()).unwrap())
            .unwrap();
    let theirs = static_ct_api::validate_chain(
        &[leaf.clone(), der(&inter)],
        &pool,
        Some(START * 1000),
        Some(LIMIT * 1000),
        false,
        true,
    )
    .unwrap();
    assert_eq!(theirs.certificate, leaf);
    assert_eq!(theirs.issuers, ours.issuers);
}

#[test]
fn roots_from_pem_collapse_duplicates_and_name_bad_blocks() {
    let a = root("Root A", P256);
    let b = root("Root B", ED25519);
    let key_block = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let bundle = format!("{}{key_block}{}{}", a.pem(), b.pem(), a.pem());
    let roots = ct_validate::Roots::from_pem(bundle.as_bytes()).unwrap();
    assert_eq!(roots.len(), 2);
    assert_eq!(roots.certificates(), &[der(&a), der(&b)]);

    let bad = format!(
        "{}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        a.pem()
    );
    let err = ct_validate::Roots::from_pem(bad.as_bytes()).unwrap_err();
    assert!(err.to_string().starts_with("PEM block 2 "), "{err}");
    assert!(ct_validate::Roots::from_ders(vec![vec![1, 2, 3]]).is_err());
    assert!(ct_validate::Roots::from_pem(b"").unwrap().is_empty());
}

fn root_der(name: &str) -> Vec<u8> {
    der(&common::root(name, P256))
}

/// Replaces the last occurrence of `from` (the outer signatureAlgorithm,
/// outside the signed TBS) with `to` of the same length.
fn replace_last(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = der.windows(from.len()).rposition(|w| w == from).unwrap();
    let mut out = der.to_vec();
    out[at..at + from.len()].copy_from_slice(to);
    out
}

const ECDSA_SHA256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const SHA256_RSA_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
];

#[test]
fn names_an_unsupported_signature_algorithm() {
    let (root, inter, leaf) = pki(P256);
    let mut sha512 = ECDSA_SHA256_OID;
    sha512[9] = 0x04;
    let leaf = replace_last(&leaf, &ECDSA_SHA256_OID, &sha512);
    let err = add_chain(&[leaf, der(&inter)], &roots(&[&root])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "chain[0]: unsupported signature algorithm 1.2.840.10045.4.3.4"
    );
}

#[test]
fn rejects_an_rsa_signature_under_a_changed_hash() {
    let root = root("Test Root", P256);
    let rsa = intermediate_with(ca_params("RSA Intermediate"), rsa_key(), &root);
    let leaf = leaf(&rsa);
    let roots = roots(&[&root]);
    assert!(add_chain(&[leaf.clone(), der(&rsa)], &roots).is_ok());
    let mut sha384 = SHA256_RSA_OID;
    sha384[10] = 0x0c;
    let tampered = replace_last(&leaf, &SHA256_RSA_OID, &sha384);
    let err = add_chain(&[tampered, der(&rsa)], &roots).unwrap_err();
    assert_eq!(err, Rejection::BadSignature { index: 0 });
}

#[test]
fn rejects_a_signature_algorithm_that_does_not_fit_the_issuer_key() {
    let root = root("Test Root", P256);
    let rsa = intermediate_with(ca_params("Test Intermediate"), rsa_key(), &root);
    let ec_impostor = intermediate("Test Intermediate", P256, &root);
    let err = add_chain(&[leaf(&rsa), der(&ec_impostor)], &roots(&[&root])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "chain[0]: signature algorithm sha256WithRSAEncryption does not fit chain[1]'s ECDSA P-256 key"
    );
}
