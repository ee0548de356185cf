//! Real submissions and real precertificates from /work/shared/vectors.
//! Skipped (loudly) when the folder is absent.

use std::path::PathBuf;
use std::time::Instant;

use base64::Engine;
use ct_validate::{
    validate_chain, Endpoint, Policy, Rejection, Roots, ValidatedChain, ValidatedLeaf,
};

fn vectors() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: test vectors not found at {}", dir.display());
        None
    }
}

fn read(dir: &std::path::Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

/// The `chain` of an add-(pre-)chain JSON body.
fn request_chain(dir: &std::path::Path, name: &str) -> Vec<Vec<u8>> {
    let body: serde_json::Value = serde_json::from_slice(&read(dir, name)).unwrap();
    body["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            base64::engine::general_purpose::STANDARD
                .decode(c.as_str().unwrap())
                .unwrap()
        })
        .collect()
}

fn pem_chain(dir: &std::path::Path, name: &str) -> Vec<Vec<u8>> {
    pem::parse_many(read(dir, name))
        .unwrap()
        .into_iter()
        .map(pem::Pem::into_contents)
        .collect()
}

/// unix seconds of midnight UTC on the first of a month.
fn month(year: i64, month: i64) -> u64 {
    // Days from civil, for the few dates these tests need.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    ((era * 146_097 + doe - 719_468) * 86_400) as u64
}

fn window(from: (i64, i64), to: (i64, i64)) -> Policy {
    Policy {
        not_after_start: month(from.0, from.1),
        not_after_limit: month(to.0, to.1),
        max_chain_length: 10,
    }
}

fn mmd_roots(dir: &std::path::Path) -> Roots {
    Roots::from_pem(&read(dir, "mmd_monitor_root.crt")).unwrap()
}

#[test]
fn month_helper_is_right() {
    assert_eq!(month(1970, 1), 0);
    assert_eq!(month(2026, 1), 1_767_225_600);
    assert_eq!(month(2024, 3), 1_709_251_200);
}

#[test]
fn accepts_the_merge_delay_monitor_submissions() {
    let Some(dir) = vectors() else { return };
    let roots = mmd_roots(&dir);
    let policy = window((2025, 1), (2026, 1));
    let root_der = roots.certificates()[0].clone();

    let chain = request_chain(&dir, "add-chain.json");
    let ok = validate_chain(&chain, &roots, &policy, Endpoint::AddChain).unwrap();
    assert_eq!(
        ok.leaf,
        ValidatedLeaf::X509 {
            certificate: chain[0].clone()
        }
    );
    assert_eq!(ok.issuers, chain[1..].to_vec());
    assert_eq!(ok.issuers.last(), Some(&root_der));

    let chain = request_chain(&dir, "add-pre-chain.json");
    let ok = validate_chain(&chain, &roots, &policy, Endpoint::AddPreChain).unwrap();
    assert_eq!(ok.issuers, chain[1..].to_vec());
    check_against_oracle(&ok, &chain, &roots, &policy);
}

#[test]
fn accepts_the_merge_delay_monitor_chains_without_their_root() {
    let Some(dir) = vectors() else { return };
    let roots = mmd_roots(&dir);
    let policy = window((2025, 1), (2026, 1));
    for (file, endpoint) in [
        ("add-chain.json", Endpoint::AddChain),
        ("add-pre-chain.json", Endpoint::AddPreChain),
    ] {
        let chain = request_chain(&dir, file);
        let ok = validate_chain(&chain[..2], &roots, &policy, endpoint).unwrap();
        assert_eq!(ok.issuers, chain[1..].to_vec(), "{file}");
    }
}

#[test]
fn rejects_the_merge_delay_monitor_submissions_out_of_window_or_misrouted() {
    let Some(dir) = vectors() else { return };
    let roots = mmd_roots(&dir);
    let covering = window((2025, 1), (2026, 1));
    let later = window((2026, 1), (2027, 1));
    let earlier = window((2024, 1), (2025, 1));
    for (file, endpoint, wrong) in [
        ("add-chain.json", Endpoint::AddChain, Endpoint::AddPreChain),
        (
            "add-pre-chain.json",
            Endpoint::AddPreChain,
            Endpoint::AddChain,
        ),
    ] {
        let chain = request_chain(&dir, file);
        let err = validate_chain(&chain, &roots, &later, endpoint).unwrap_err();
        assert!(
            matches!(err, Rejection::NotAfterTooEarly { .. }),
            "{file}: {err}"
        );
        let err = validate_chain(&chain, &roots, &earlier, endpoint).unwrap_err();
        assert!(
            matches!(err, Rejection::NotAfterTooLate { .. }),
            "{file}: {err}"
        );
        let err = validate_chain(&chain, &roots, &covering, wrong).unwrap_err();
        assert!(
            matches!(
                err,
                Rejection::PrecertToAddChain | Rejection::FinalCertToAddPreChain
            ),
            "{file}: {err}"
        );
        // Without the MMD root configured, nothing chains.
        let other_roots = Roots::from_pem(&read(&dir, "real-precert-intermediate.pem")).unwrap();
        let err = validate_chain(&chain, &other_roots, &covering, endpoint).unwrap_err();
        assert!(
            matches!(err, Rejection::NoAcceptedRoot { index: 2, .. }),
            "{file}: {err}"
        );
    }
}

#[test]
fn real_gts_precert_chains_only_to_its_own_issuer() {
    let Some(dir) = vectors() else { return };
    // A real GTS precertificate (NotAfter 2020-06-21) and GTS CA 1D2, which
    // chains to GlobalSign Root R2 - not in test-roots.pem (the MMD root).
    let precert = pem_chain(&dir, "real-precert-with-eku.pem").remove(0);
    let issuer = pem_chain(&dir, "real-precert-intermediate.pem").remove(0);
    let chain = vec![precert.clone(), issuer.clone()];
    let policy = window((2020, 1), (2021, 1));

    let test_roots = Roots::from_pem(&read(&dir, "test-roots.pem")).unwrap();
    let err = validate_chain(&chain, &test_roots, &policy, Endpoint::AddPreChain).unwrap_err();
    assert!(
        matches!(err, Rejection::NoAcceptedRoot { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("GlobalSign"), "{err}");

    // Trusting the intermediate itself, the precert is accepted, both
    // submitted alone and with its issuer.
    let roots = Roots::from_ders(vec![issuer.clone()]).unwrap();
    for submitted in [vec![precert.clone()], chain.clone()] {
        let ok = validate_chain(&submitted, &roots, &policy, Endpoint::AddPreChain).unwrap();
        assert_eq!(ok.issuers, vec![issuer.clone()]);
        // The oracle needs the precert alone: it would insist on a root
        // above the intermediate when given both.
        check_against_oracle(&ok, &chain[..1], &roots, &policy);
    }
    let err = validate_chain(&chain, &roots, &policy, Endpoint::AddChain).unwrap_err();
    assert_eq!(err, Rejection::PrecertToAddChain);
}

#[test]
fn rejects_the_real_precert_signing_certificate_chain() {
    let Some(dir) = vectors() else { return };
    let chain = pem_chain(&dir, "preissuer-chain.pem");
    let roots = Roots::from_pem(&read(&dir, "test-roots.pem")).unwrap();
    let anywhen = Policy {
        not_after_start: 0,
        not_after_limit: u64::MAX,
        max_chain_length: 10,
    };
    let err = validate_chain(&chain, &roots, &anywhen, Endpoint::AddPreChain).unwrap_err();
    assert_eq!(err, Rejection::PrecertSigningCertificate);
}

#[test]
fn test_roots_bundle_loads() {
    let Some(dir) = vectors() else { return };
    let roots = Roots::from_pem(&read(&dir, "test-roots.pem")).unwrap();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots.certificates(), mmd_roots(&dir).certificates());
}

/// Compares a precert entry with static_ct_api's validate_chain.
fn check_against_oracle(ours: &ValidatedChain, chain: &[Vec<u8>], roots: &Roots, policy: &Policy) {
    let pem: String = roots
        .certificates()
        .iter()
        .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())))
        .collect();
    let pool = static_ct_api::CertPool::new(static_ct_api::load_pem_chain(pem.as_bytes()).unwrap())
        .unwrap();
    let theirs = static_ct_api::validate_chain(
        chain,
        &pool,
        Some(policy.not_after_start * 1000),
        Some(policy.not_after_limit * 1000),
        true,
        true,
    )
    .unwrap();
    let ValidatedLeaf::Precert {
        issuer_key_hash,
        tbs,
        precertificate,
    } = &ours.leaf
    else {
        panic!("expected a precert entry");
    };
    assert_eq!(*issuer_key_hash, theirs.issuer_key_hash);
    assert_eq!(*tbs, theirs.certificate);
    assert_eq!(*precertificate, theirs.pre_certificate);
}

/// `cargo test --release -p ct-validate --test vectors -- --ignored --nocapture`
#[test]
#[ignore]
fn timing_on_the_real_add_chain() {
    let Some(dir) = vectors() else { return };
    let roots = mmd_roots(&dir);
    let policy = window((2025, 1), (2026, 1));
    for (file, endpoint) in [
        ("add-chain.json", Endpoint::AddChain),
        ("add-pre-chain.json", Endpoint::AddPreChain),
    ] {
        let chain = request_chain(&dir, file);
        let rounds = 2_000;
        let started = Instant::now();
        for _ in 0..rounds {
            validate_chain(&chain, &roots, &policy, endpoint).unwrap();
        }
        let each = started.elapsed() / rounds;
        eprintln!(
            "{file}: {each:?} per validate_chain ({:.0}/s)",
            1.0 / each.as_secs_f64()
        );
    }
}
