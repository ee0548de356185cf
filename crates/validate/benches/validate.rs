//! Chain validation per entry, and the crypto floor beside it.
//!
//! `validate_chain/*`: the whole `validate_chain` call for `[leaf,
//! intermediate]` chains, intermediate ECDSA P-256 or RSA-2048, root ECDSA
//! P-256 (as ct-loadgen generates them).
//! `crypto_floor/*`: what no implementation can skip per entry: one ring
//! verification of the leaf's signature plus one SCT signature (p256 RFC
//! 6979, `Sct::sign`).
//!
//! Run: `cargo bench -p ct-validate --bench validate`.

use aws_lc_rs::signature as aws;
use criterion::{criterion_group, criterion_main, Criterion};
use ct_formats::{Entry, EntryKind, LogKey, Sct};
use ct_testkit::pki::ca_params;
use ct_validate::{validate_chain, Endpoint, Policy, Roots};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair};
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::prelude::{FromDer, X509Certificate};

const RSA_KEY: &str = include_str!("../tests/data/rsa2048-test-key.pem");
const LOG_KEY: &str = include_str!("../../../testdata/dev/log-key.pem");

struct Fixture {
    roots: Roots,
    /// (name, chains of `[leaf, intermediate]`)
    chains: Vec<(&'static str, Vec<Vec<Vec<u8>>>)>,
}

fn fixture() -> Fixture {
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params("bench root");
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut chains = Vec::new();
    let keys = [
        ("p256", KeyPair::generate().unwrap()),
        (
            "rsa2048",
            KeyPair::from_pem_and_sign_algo(RSA_KEY, &rcgen::PKCS_RSA_SHA256).unwrap(),
        ),
    ];
    for (name, key) in keys {
        let params = ca_params(&format!("bench {name} intermediate"));
        let der = params.signed_by(&key, &root_issuer).unwrap().der().to_vec();
        let issuer = Issuer::new(params, key);
        let list = (0..64u64)
            .map(|i| {
                let mut p = CertificateParams::new(vec![format!("l{i}.bench.invalid")]).unwrap();
                p.not_before = rcgen::date_time_ymd(2025, 12, 1);
                p.not_after = rcgen::date_time_ymd(2026, 6, 1);
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                let leaf = p.signed_by(&leaf_key, &issuer).unwrap();
                vec![leaf.der().to_vec(), der.clone()]
            })
            .collect();
        chains.push((name, list));
    }
    Fixture {
        roots: Roots::from_ders(vec![root.der().to_vec()]).unwrap(),
        chains,
    }
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let policy = Policy {
        not_after_start: 0,
        not_after_limit: u64::MAX,
        max_chain_length: 10,
    };
    let key = LogKey::from_pem(LOG_KEY).unwrap();
    let mut group = c.benchmark_group("validate_chain");
    for (name, chains) in &f.chains {
        let mut i = 0;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i += 1;
                validate_chain(
                    &chains[i % chains.len()],
                    &f.roots,
                    &policy,
                    Endpoint::AddChain,
                )
                .unwrap()
            })
        });
    }
    group.finish();

    let links: Vec<(&str, Vec<Leaf>)> = f
        .chains
        .iter()
        .map(|(name, chains)| (*name, chains.iter().map(|c| leaf(name, c)).collect()))
        .collect();
    let mut group = c.benchmark_group("leaf_verify");
    for (name, leaves) in &links {
        let mut i = 0;
        group.bench_function(format!("ring/{name}"), |b| {
            b.iter(|| {
                i += 1;
                let l = &leaves[i % leaves.len()];
                UnparsedPublicKey::new(l.ring, &l.key)
                    .verify(&l.tbs, &l.signature)
                    .unwrap()
            })
        });
        group.bench_function(format!("aws_lc_rs/{name}"), |b| {
            b.iter(|| {
                i += 1;
                let l = &leaves[i % leaves.len()];
                aws::UnparsedPublicKey::new(l.aws_lc, &l.key)
                    .verify(&l.tbs, &l.signature)
                    .unwrap()
            })
        });
        let parsed: Vec<_> = leaves
            .iter()
            .map(|l| aws::ParsedPublicKey::new(l.aws_lc, &l.key).unwrap())
            .collect();
        group.bench_function(format!("aws_lc_rs_parsed_key/{name}"), |b| {
            b.iter(|| {
                i += 1;
                let l = &leaves[i % leaves.len()];
                parsed[i % leaves.len()]
                    .verify_sig(&l.tbs, &l.signature)
                    .unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("crypto_floor");
    for (name, leaves) in &links {
        let mut i = 0u64;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i += 1;
                let l = &leaves[i as usize % leaves.len()];
                UnparsedPublicKey::new(l.ring, &l.key)
                    .verify(&l.tbs, &l.signature)
                    .unwrap();
                Sct::sign(&key, &l.entry, 1_795_000_000_000, i)
            })
        });
    }
    group.finish();
}

/// What the verification of a leaf's signature needs.
struct Leaf {
    ring: &'static dyn VerificationAlgorithm,
    aws_lc: &'static dyn aws::VerificationAlgorithm,
    key: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    entry: Entry,
}

fn leaf(name: &str, chain: &[Vec<u8>]) -> Leaf {
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let (_, issuer) = X509Certificate::from_der(&chain[1]).unwrap();
    let (ring, aws_lc): (
        &'static dyn VerificationAlgorithm,
        &'static dyn aws::VerificationAlgorithm,
    ) = if name == "p256" {
        (&sig::ECDSA_P256_SHA256_ASN1, &aws::ECDSA_P256_SHA256_ASN1)
    } else {
        (
            &sig::RSA_PKCS1_2048_8192_SHA256,
            &aws::RSA_PKCS1_2048_8192_SHA256,
        )
    };
    Leaf {
        ring,
        aws_lc,
        key: issuer
            .tbs_certificate
            .subject_pki
            .subject_public_key
            .data
            .to_vec(),
        tbs: leaf.tbs_certificate.as_ref().to_vec(),
        signature: leaf.signature_value.data.to_vec(),
        entry: Entry {
            kind: EntryKind::X509 {
                certificate: chain[0].clone(),
            },
            chain_fingerprints: vec![[1; 32], [2; 32]],
        },
    }
}

criterion_group!(validate, benches);
criterion_main!(validate);
