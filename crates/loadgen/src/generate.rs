//! Pre-generates distinct, valid chains from a throw-away PKI: one ECDSA
//! P-256 root, two intermediates under it (ECDSA P-256 and RSA-2048, the
//! latter with the checked-in test key), and leaves issued alternately by
//! each, half of them precertificates. Chains are `[leaf, intermediate]`,
//! as CAs usually submit them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use ct_testkit::pki::{ca_params_with_organization, POISON_OID};
use rcgen::{
    CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};

use crate::chains;

/// The subject organization of the generated CAs, saying what they are.
const ORGANIZATION: &str = "ct-loadgen NOT FOR PRODUCTION";

#[derive(clap::Args)]
pub struct Args {
    /// Output folder: chains.bin and roots.pem are written there.
    #[arg(long)]
    out: PathBuf,
    /// Number of distinct chains.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// The RSA-2048 key (PKCS#8 PEM) of the RSA intermediate.
    #[arg(
        long,
        default_value = "testdata/bench/rsa2048-intermediate-NOT-FOR-PRODUCTION.pem"
    )]
    rsa_key: PathBuf,
    /// Leaves' NotAfter year (it must fall inside the log's window).
    /// Default: the current UTC year, the window of the bench scripts' logs
    /// (a log is read-only once its window has ended, so a fixed year would
    /// make the chains useless once it passed).
    #[arg(long, default_value_t = time::OffsetDateTime::now_utc().year())]
    not_after_year: i32,
    /// Precertificates among the chains, in percent.
    #[arg(long, default_value_t = 50)]
    precert_percent: u64,
}

struct Pki {
    /// (issuer, its DER)
    intermediates: Vec<(Issuer<'static, KeyPair>, Vec<u8>)>,
    leaf_key: KeyPair,
    root_pem: String,
    not_after_year: i32,
    precert_percent: u64,
    run_id: u64,
    not_before: time::OffsetDateTime,
}

impl Pki {
    fn new(rsa_pem: &str, not_after_year: i32, precert_percent: u64) -> anyhow::Result<Pki> {
        let run_id = fastrand::u64(..);
        let root_key = KeyPair::generate()?;
        let mut root_params =
            ca_params_with_organization(ORGANIZATION, &format!("ct-loadgen Root {run_id:016x}"));
        // A self-signed root has no issuer to name.
        root_params.use_authority_key_identifier_extension = false;
        let root = root_params.self_signed(&root_key)?;
        let root_issuer = Issuer::new(root_params, root_key);
        let mut intermediates = Vec::new();
        let ec_key = KeyPair::generate()?;
        let rsa_key = KeyPair::from_pem_and_sign_algo(rsa_pem, &rcgen::PKCS_RSA_SHA256)
            .context("loading the RSA intermediate key")?;
        for (name, key) in [("ECDSA P-256", ec_key), ("RSA-2048", rsa_key)] {
            let params = ca_params_with_organization(
                ORGANIZATION,
                &format!("ct-loadgen {name} Intermediate {run_id:016x}"),
            );
            let cert = params.signed_by(&key, &root_issuer)?;
            intermediates.push((Issuer::new(params, key), cert.der().to_vec()));
        }
        Ok(Pki {
            intermediates,
            leaf_key: KeyPair::generate()?,
            root_pem: root.pem(),
            not_after_year,
            precert_percent,
            run_id,
            not_before: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
        })
    }

    /// Chain `i`: its intermediate alternates, its kind follows the
    /// precertificate share.
    fn chain(&self, i: u64) -> anyhow::Result<(bool, Vec<u8>)> {
        let (issuer, issuer_der) = &self.intermediates[(i % 2) as usize];
        let precert = (i / 2).wrapping_mul(37) % 100 < self.precert_percent;
        let name = format!("leaf-{i}-{:08x}.bench.invalid", self.run_id as u32);
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, name.clone());
        p.subject_alt_names = vec![SanType::DnsName(name.try_into()?)];
        let mut serial = i.to_be_bytes().to_vec();
        serial.splice(0..0, (self.run_id as u32).to_be_bytes());
        serial.insert(0, 0x01);
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        // Fresh, as when a CA logs at issuance: the log gives precerts whose
        // NotBefore is over 48 hours old a lower priority.
        p.not_before = self.not_before;
        let day = 1 + (i % 28) as u8;
        let month = 1 + ((i / 28) % 12) as u8;
        p.not_after = rcgen::date_time_ymd(self.not_after_year, month, day);
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if precert {
            let mut poison = CustomExtension::from_oid_content(POISON_OID, vec![5, 0]);
            poison.set_criticality(true);
            p.custom_extensions.push(poison);
        }
        let leaf = p.signed_by(&self.leaf_key, issuer)?;
        Ok((
            precert,
            chains::body_of(&[leaf.der().to_vec(), issuer_der.clone()]),
        ))
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let rsa_pem = std::fs::read_to_string(&args.rsa_key)
        .with_context(|| format!("reading {}", args.rsa_key.display()))?;
    let pki = Pki::new(&rsa_pem, args.not_after_year, args.precert_percent)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let count = args.count as u64;
    let parts: Vec<Vec<(bool, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let pki = &pki;
                s.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| pki.chain(i))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator thread"))
            .collect::<anyhow::Result<_>>()
    })?;
    // Interleave back into index order so the mix is even over time.
    let mut iters: Vec<_> = parts.into_iter().map(Vec::into_iter).collect();
    let mut all = Vec::with_capacity(args.count);
    'outer: loop {
        for it in iters.iter_mut() {
            match it.next() {
                Some(c) => all.push(c),
                None => break 'outer,
            }
        }
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("chains.bin"), chains::encode(&all))?;
    std::fs::write(args.out.join("roots.pem"), &pki.root_pem)?;
    let precerts = all.iter().filter(|(p, _)| *p).count();
    println!(
        "generated {} chains ({} precertificates; intermediates ECDSA P-256 / RSA-2048 alternating) into {} in {:.1} s",
        all.len(),
        precerts,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
