//! The crypto floor: the work no implementation of the log can skip per
//! entry, measured on this machine, single-threaded: one verification of
//! the leaf's signature by its issuer (ring, the same calls ct-validate
//! makes; the issuer→root link is the same for every entry of a CA, so it
//! is not part of the floor) plus one SCT signature (p256 RFC 6979, the
//! same `Sct::sign` the server calls). The mix of ECDSA P-256 and RSA-2048
//! issuers is the chains file's.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use ct_formats::{Entry, EntryKind, LogKey, Sct};
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::json;
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
    algorithm: &'static dyn VerificationAlgorithm,
    rsa: bool,
    key: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    entry: Entry,
}

fn link(ders: &[Vec<u8>]) -> anyhow::Result<Link> {
    let (_, leaf) = X509Certificate::from_der(&ders[0]).context("leaf")?;
    let (_, issuer) = X509Certificate::from_der(&ders[1]).context("issuer")?;
    let oid = leaf.signature_algorithm.algorithm.to_id_string();
    let (algorithm, rsa): (&'static dyn VerificationAlgorithm, bool) = match oid.as_str() {
        "1.2.840.10045.4.3.2" => (&sig::ECDSA_P256_SHA256_ASN1, false),
        "1.2.840.113549.1.1.11" => (&sig::RSA_PKCS1_2048_8192_SHA256, true),
        other => bail!("unexpected leaf signature algorithm {other}"),
    };
    Ok(Link {
        algorithm,
        rsa,
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
                certificate: ders[0].clone(),
            },
            chain_fingerprints: vec![[7; 32], [9; 32]],
        },
    })
}

/// Runs `op` over the links for `seconds`; returns operations per second.
fn rate(links: &[Link], seconds: f64, mut op: impl FnMut(&Link)) -> f64 {
    let start = Instant::now();
    let mut n = 0usize;
    loop {
        for l in links.iter().take(64) {
            op(l);
        }
        n += links.len().min(64);
        let mut i = 0;
        while i < links.len() && start.elapsed().as_secs_f64() < seconds {
            op(&links[i]);
            n += 1;
            i += 1;
        }
        if start.elapsed().as_secs_f64() >= seconds {
            return n as f64 / start.elapsed().as_secs_f64();
        }
    }
}

fn verify(l: &Link) {
    UnparsedPublicKey::new(l.algorithm, &l.key)
        .verify(&l.tbs, &l.signature)
        .expect("signature verifies");
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let key = LogKey::from_pem(&std::fs::read_to_string(&args.log_key)?)?;
    let links = chains::read(&args.chains)?
        .iter()
        .take(args.sample)
        .map(|c| link(&c.ders()?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (rsa, ec): (Vec<&Link>, Vec<&Link>) = links.iter().partition(|l| l.rsa);
    let own = |v: Vec<&Link>| -> Vec<Link> {
        v.into_iter()
            .map(|l| Link {
                algorithm: l.algorithm,
                rsa: l.rsa,
                key: l.key.clone(),
                tbs: l.tbs.clone(),
                signature: l.signature.clone(),
                entry: l.entry.clone(),
            })
            .collect()
    };
    let (rsa, ec) = (own(rsa), own(ec));
    let s = args.seconds;
    let p256_verify = rate(&ec, s, verify);
    let rsa_verify = if rsa.is_empty() {
        0.0
    } else {
        rate(&rsa, s, verify)
    };
    let mut index = 0u64;
    let sct_sign = rate(&links, s, |l| {
        index += 1;
        std::hint::black_box(Sct::sign(&key, &l.entry, 1_795_000_000_000, index));
    });
    let floor = rate(&links, s, |l| {
        verify(l);
        index += 1;
        std::hint::black_box(Sct::sign(&key, &l.entry, 1_795_000_000_000, index));
    });
    let rsa_share = rsa.len() as f64 / links.len() as f64;
    let result = json!({
        "p256_verify_per_s": p256_verify,
        "rsa2048_verify_per_s": rsa_verify,
        "sct_sign_per_s": sct_sign,
        "rsa_share": rsa_share,
        "floor_entries_per_s": floor,
        "floor_us_per_entry": 1e6 / floor,
    });
    println!(
        "crypto floor (one thread): P-256 verify {p256_verify:.0}/s, RSA-2048 verify {rsa_verify:.0}/s, \
         SCT sign {sct_sign:.0}/s; mix ({:.0}% RSA) verify+sign = {floor:.0} entries/s ({:.1} µs/entry)",
        rsa_share * 100.0,
        1e6 / floor
    );
    println!("RESULT-JSON {result}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(())
}
