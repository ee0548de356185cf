//! The crypto floor: the work no implementation of the log can skip per
//! entry, measured on this machine per CPU-second of one thread, with
//! OpenSSL-class code only: one verification of the leaf's signature by its issuer (the
//! issuer→root link is the same for every entry of a CA, so it is not part
//! of the floor) plus one ECDSA P-256 signature. The mix of ECDSA P-256
//! and RSA-2048 issuers is the chains file's.
//!
//! Signing is aws-lc-rs's own ECDSA (AWS-LC, an OpenSSL descendant; random
//! nonce). Each verification is timed with aws-lc-rs (key parsed once, as
//! a server would cache it) and with ring (whose P-256 and RSA code is
//! also OpenSSL's), and the floor takes the faster of the two, so that it
//! is never the slower library's cost. The server's own RFC 6979 signer
//! (`Sct::sign`) is timed beside it but is not part of the floor: the
//! project's own crypto would flatter the server's ratio to it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as aws, EcdsaKeyPair, ParsedPublicKey, ECDSA_P256_SHA256_ASN1_SIGNING,
};
use ct_formats::{Entry, EntryKind, LogKey, Sct};
use ring::signature::{self as ring_sig, UnparsedPublicKey};
use serde_json::{json, Value};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::chains;

#[derive(clap::Args)]
pub struct Args {
    /// The chains file written by `generate`.
    #[arg(long)]
    chains: PathBuf,
    /// The log's private key (PEM), for the SCT signatures.
    #[arg(long, default_value = "testdata/dev/log-key.pem")]
    log_key: PathBuf,
    /// How long to measure each part, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// How many chains to use (cycled).
    #[arg(long, default_value_t = 2000)]
    sample: usize,
    /// Also write the result as JSON here.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

struct Link {
    rsa: bool,
    aws_lc: ParsedPublicKey,
    ring: UnparsedPublicKey<Vec<u8>>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    entry: Entry,
}

fn link(ders: &[Vec<u8>]) -> anyhow::Result<Link> {
    let (_, leaf) = X509Certificate::from_der(&ders[0]).context("leaf")?;
    let (_, issuer) = X509Certificate::from_der(&ders[1]).context("issuer")?;
    let oid = leaf.signature_algorithm.algorithm.to_id_string();
    type Algorithms = (
        &'static dyn aws::VerificationAlgorithm,
        &'static dyn ring_sig::VerificationAlgorithm,
        bool,
    );
    let (aws_alg, ring_alg, rsa): Algorithms = match oid.as_str() {
        "1.2.840.10045.4.3.2" => (
            &aws::ECDSA_P256_SHA256_ASN1,
            &ring_sig::ECDSA_P256_SHA256_ASN1,
            false,
        ),
        "1.2.840.113549.1.1.11" => (
            &aws::RSA_PKCS1_2048_8192_SHA256,
            &ring_sig::RSA_PKCS1_2048_8192_SHA256,
            true,
        ),
        other => bail!("unexpected leaf signature algorithm {other}"),
    };
    let key = issuer
        .tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    Ok(Link {
        rsa,
        aws_lc: ParsedPublicKey::new(aws_alg, &key)
            .map_err(|e| anyhow::anyhow!("issuer key: {e}"))?,
        ring: UnparsedPublicKey::new(ring_alg, key),
        tbs: leaf.tbs_certificate.as_ref().to_vec(),
        signature: leaf.signature_value.data.to_vec(),
        entry: Entry {
            kind: EntryKind::X509 {
                certificate: ders[0].clone(),
            },
            chain_fingerprints: vec![[7; 32], [9; 32]],
        },
    })
}

/// This thread's CPU time in seconds: on a machine shared with other work
/// the floor is per CPU-second, as the server's CPU per entry is.
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Runs `op` over the links for `seconds` of this thread's CPU time;
/// returns operations per CPU-second.
fn rate(links: &[&Link], seconds: f64, mut op: impl FnMut(&Link)) -> f64 {
    if links.is_empty() {
        return 0.0;
    }
    let start = thread_cpu_seconds();
    let mut n = 0usize;
    while thread_cpu_seconds() - start < seconds {
        for l in links.iter().take(64) {
            op(l);
        }
        n += links.len().min(64);
    }
    n as f64 / (thread_cpu_seconds() - start)
}

/// The faster of aws-lc-rs and ring verifying `links`: (per second, library).
fn best_verify(links: &[&Link], seconds: f64) -> (f64, &'static str) {
    let aws_lc = rate(links, seconds, |l| {
        l.aws_lc
            .verify_sig(&l.tbs, &l.signature)
            .expect("signature verifies")
    });
    let ring = rate(links, seconds, |l| {
        l.ring
            .verify(&l.tbs, &l.signature)
            .expect("signature verifies")
    });
    if aws_lc >= ring {
        (aws_lc, "aws-lc-rs")
    } else {
        (ring, "ring")
    }
}

/// Signing rates: aws-lc-rs's ECDSA (the floor's) and the server's SCT signer.
fn sign_rates(links: &[&Link], seconds: f64, key: &LogKey) -> anyhow::Result<(f64, f64)> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| anyhow::anyhow!("ECDSA key: {e}"))?;
    let floor_key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("ECDSA key: {e}"))?;
    let mut index = 0u64;
    let p256_sign = rate(links, seconds, |l| {
        index += 1;
        let message = l.entry.merkle_tree_leaf(1_795_000_000_000, index);
        std::hint::black_box(floor_key.sign(&rng, &message).expect("signing works"));
    });
    let sct_sign = rate(links, seconds, |l| {
        index += 1;
        std::hint::black_box(Sct::sign(key, &l.entry, 1_795_000_000_000, index));
    });
    Ok((p256_sign, sct_sign))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let key = LogKey::from_pem(&std::fs::read_to_string(&args.log_key)?)?;
    let links = chains::read(&args.chains)?
        .iter()
        .take(args.sample)
        .map(|c| link(&c.ders()?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let all: Vec<&Link> = links.iter().collect();
    let (rsa, ec): (Vec<&Link>, Vec<&Link>) = links.iter().partition(|l| l.rsa);
    let (p256_verify, p256_library) = best_verify(&ec, args.seconds);
    let (rsa_verify, rsa_library) = best_verify(&rsa, args.seconds);
    let (p256_sign, sct_sign) = sign_rates(&all, args.seconds, &key)?;
    let rsa_share = rsa.len() as f64 / links.len() as f64;
    let per_s = |rate: f64| if rate > 0.0 { 1e6 / rate } else { 0.0 };
    let floor_us =
        per_s(p256_sign) + rsa_share * per_s(rsa_verify) + (1.0 - rsa_share) * per_s(p256_verify);
    let result = json!({
        "library": format!(
            "sign aws-lc-rs; P-256 verify {p256_library}; RSA-2048 verify {rsa_library}"
        ),
        "p256_sign_per_s": p256_sign,
        "p256_verify_per_s": p256_verify,
        "rsa2048_verify_per_s": rsa_verify,
        "sct_sign_per_s": sct_sign,
        "rsa_share": rsa_share,
        "floor_entries_per_s": 1e6 / floor_us,
        "floor_us_per_entry": floor_us,
    });
    print(&result);
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(())
}

fn print(r: &Value) {
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    println!(
        "crypto floor (OpenSSL-class: {}; one thread): P-256 sign {:.0}/s, P-256 verify {:.0}/s, \
         RSA-2048 verify {:.0}/s; mix ({:.0}% RSA) = {:.0} entries/s ({:.1} µs/entry). \
         The server's RFC 6979 SCT signer: {:.0}/s",
        r["library"].as_str().unwrap_or("?"),
        f("p256_sign_per_s"),
        f("p256_verify_per_s"),
        f("rsa2048_verify_per_s"),
        f("rsa_share") * 100.0,
        f("floor_entries_per_s"),
        f("floor_us_per_entry"),
        f("sct_sign_per_s"),
    );
    println!("RESULT-JSON {r}");
}
