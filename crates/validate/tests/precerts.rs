//! Precertificate rules and the defanged TBS, on rcgen-generated PKIs.

mod common;

use common::*;
use ct_validate::{validate_chain, Endpoint, Rejection, Roots, ValidatedChain, ValidatedLeaf};
use rcgen::{CertificateParams, CustomExtension, ExtendedKeyUsagePurpose};

fn add_pre_chain(chain: &[Vec<u8>], roots: &Roots) -> Result<ValidatedChain, Rejection> {
    validate_chain(chain, roots, &policy(), Endpoint::AddPreChain)
}

fn precert_parts(ok: ValidatedChain) -> ([u8; 32], Vec<u8>, Vec<u8>) {
    match ok.leaf {
        ValidatedLeaf::Precert {
            issuer_key_hash,
            tbs,
            precertificate,
        } => (issuer_key_hash, tbs, precertificate),
        other => panic!("expected a precert entry, got {other:?}"),
    }
}

fn custom(last_arc: u64, content: Vec<u8>) -> CustomExtension {
    CustomExtension::from_oid_content(&[1, 2, 3, 4, last_arc], content)
}

#[test]
fn accepts_a_precert_and_strips_only_the_poison() {
    let root = root("Test Root", P256);
    let inter = intermediate("Test Intermediate", P256, &root);
    let key = key(P256);

    // Poison between two other extensions, so order preservation shows.
    let mut without = leaf_params();
    without.custom_extensions = vec![
        custom(1, vec![0x05, 0x00]),
        custom(2, vec![0x04, 0x01, 0x07]),
    ];
    let mut with = without.clone();
    with.custom_extensions
        .insert(1, poison(true, vec![0x05, 0x00]));
    let precert = sign(&with, &key, &inter);
    let final_cert = sign(&without, &key, &inter);

    let ok = add_pre_chain(&[precert.clone(), der(&inter)], &roots(&[&root])).unwrap();
    assert_eq!(ok.issuers, vec![der(&inter), der(&root)]);
    let (issuer_key_hash, tbs, precertificate) = precert_parts(ok);
    assert_eq!(issuer_key_hash, spki_sha256(&inter));
    assert_eq!(tbs, tbs_of(&final_cert));
    assert_ne!(tbs, tbs_of(&precert));
    assert_eq!(precertificate, precert);
}

#[test]
fn drops_the_extensions_field_when_the_poison_was_the_only_extension() {
    let root = root("Test Root", ED25519);
    let key = key(ED25519);
    let mut without = leaf_params();
    without.subject_alt_names.clear();
    without.extended_key_usages.clear();
    let mut with = without.clone();
    with.custom_extensions.push(poison(true, vec![0x05, 0x00]));
    let precert = sign(&with, &key, &root);
    let final_cert = sign(&without, &key, &root);

    let ok = add_pre_chain(&[precert], &roots(&[&root])).unwrap();
    let (issuer_key_hash, tbs, _) = precert_parts(ok);
    // Submitted alone: the appended root is the issuer.
    assert_eq!(issuer_key_hash, spki_sha256(&root));
    assert_eq!(tbs, tbs_of(&final_cert));
    assert!(!tbs.windows(2).any(|w| w == [0xa3, 0x00]));
}

#[test]
fn agrees_with_the_static_ct_api_oracle_on_precerts() {
    let root = root("Test Root", P256);
    let inter = intermediate("Test Intermediate", P256, &root);
    let precert = sign(&precert_params(), &key(P256), &inter);
    let chain = vec![precert.clone(), der(&inter)];

    let ours = add_pre_chain(&chain, &roots(&[&root])).unwrap();
    let pool =
        static_ct_api::CertPool::new(static_ct_api::load_pem_chain(root.pem().as_bytes()).unwrap())
            .unwrap();
    let theirs = static_ct_api::validate_chain(
        &chain,
        &pool,
        Some(START * 1000),
        Some(LIMIT * 1000),
        true,
        true,
    )
    .unwrap();
    assert_eq!(ours.issuers, theirs.issuers);
    let (issuer_key_hash, tbs, precertificate) = precert_parts(ours);
    assert_eq!(issuer_key_hash, theirs.issuer_key_hash);
    assert_eq!(tbs, theirs.certificate);
    assert_eq!(precertificate, theirs.pre_certificate);
}

#[test]
fn rejects_bad_poison() {
    let root = root("Test Root", P256);
    let roots = roots(&[&root]);
    let with_poison = |extensions: Vec<CustomExtension>| {
        let mut params = leaf_params();
        params.custom_extensions = extensions;
        sign(&params, &key(P256), &root)
    };
    let cases = [
        (
            vec![poison(false, vec![0x05, 0x00])],
            "precertificate poison extension is not critical",
        ),
        (
            vec![poison(true, vec![0x04, 0x00])],
            "precertificate poison extension value is not ASN.1 NULL",
        ),
        (
            vec![poison(true, vec![0x05, 0x00, 0x00])],
            "precertificate poison extension value is not ASN.1 NULL",
        ),
        (
            vec![
                poison(true, vec![0x05, 0x00]),
                poison(true, vec![0x05, 0x00]),
            ],
            "precertificate poison extension appears more than once",
        ),
    ];
    for (extensions, message) in cases {
        let cert = with_poison(extensions);
        for endpoint in [Endpoint::AddChain, Endpoint::AddPreChain] {
            let err = validate_chain(std::slice::from_ref(&cert), &roots, &policy(), endpoint)
                .unwrap_err();
            assert!(matches!(err, Rejection::BadPoison { .. }), "{err}");
            assert_eq!(err.to_string(), message);
        }
    }
}

#[test]
fn rejects_the_wrong_endpoint() {
    let root = root("Test Root", P256);
    let roots = roots(&[&root]);
    let precert = sign(&precert_params(), &key(P256), &root);
    let err = validate_chain(&[precert], &roots, &policy(), Endpoint::AddChain).unwrap_err();
    assert_eq!(err, Rejection::PrecertToAddChain);
    assert_eq!(
        err.to_string(),
        "add-chain got a precertificate; use add-pre-chain"
    );

    let final_cert = leaf(&root);
    let err = add_pre_chain(&[final_cert], &roots).unwrap_err();
    assert_eq!(err, Rejection::FinalCertToAddPreChain);
}

#[test]
fn rejects_a_precertificate_signing_certificate() {
    let root = root("Test Root", P256);
    let mut params: CertificateParams = ca_params("Precert Signing");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![
        1, 3, 6, 1, 4, 1, 11129, 2, 4, 4,
    ])];
    let signer = intermediate_with(params, key(P256), &root);
    let precert = sign(&precert_params(), &key(P256), &signer);
    let err = add_pre_chain(&[precert, der(&signer), der(&root)], &roots(&[&root])).unwrap_err();
    assert_eq!(err, Rejection::PrecertSigningCertificate);
    assert!(err
        .to_string()
        .contains("precertificate signing certificates are not supported"));
}

/// Every truncation and every single-byte corruption of a precert and of
/// its issuer is rejected, never a panic.
#[test]
fn survives_mutated_input() {
    let root = root("Test Root", P256);
    let inter = intermediate("Test Intermediate", P256, &root);
    let precert = sign(&precert_params(), &key(P256), &inter);
    let roots = roots(&[&root]);
    let mut accepted = 0;
    for original in [precert.clone(), der(&inter)] {
        let mut variants: Vec<Vec<u8>> = (0..original.len())
            .map(|n| original[..n].to_vec())
            .collect();
        variants.extend((0..original.len()).map(|i| {
            let mut v = original.clone();
            v[i] ^= 0xff;
            v
        }));
        for variant in variants {
            let chain = if original == precert {
                vec![variant, der(&inter)]
            } else {
                vec![precert.clone(), variant]
            };
            for endpoint in [Endpoint::AddChain, Endpoint::AddPreChain] {
                if validate_chain(&chain, &roots, &policy(), endpoint).is_ok() {
                    accepted += 1;
                }
            }
        }
    }
    // Every byte is covered by a signature check or a parse check.
    assert_eq!(accepted, 0, "corrupted chains were accepted");
}
