//! `ct-log keygen`: make a new log key (the ECDSA signing key, or an
//! Ed25519 or ML-DSA-44 cosigning key) and print what CT programs,
//! monitors and witnesses need to know about it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ct_formats::{note_verifier_key, Cosigner, LogKey};
use p256::pkcs8::{EncodePrivateKey, LineEnding};

/// Write a new private key (PKCS#8 PEM, mode 0600): by default the log's
/// ECDSA P-256 key (`key`), or a cosigning key (`ed25519_key`,
/// `mldsa44_key`).
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the private key; an existing file is never overwritten.
    #[arg(long)]
    out: PathBuf,
    /// The log's origin (submission prefix without scheme), to print the
    /// note verifier key. Required for the cosigning types.
    #[arg(long)]
    name: Option<String>,
    /// Which key to make.
    #[arg(long = "type", value_enum, default_value_t = KeyType::P256)]
    kind: KeyType,
}

/// The kinds of key a log uses.
#[derive(Clone, Copy, clap::ValueEnum)]
enum KeyType {
    /// ECDSA P-256: signs SCTs and the RFC 6962 checkpoint signature.
    P256,
    /// Ed25519: an Ed25519 cosignature/v1 on every checkpoint.
    Ed25519,
    /// ML-DSA-44: an ML-DSA-44 cosignature on every checkpoint.
    Mldsa44,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cosigner_name = match (args.kind, &args.name) {
        (KeyType::P256, _) => None,
        (_, Some(name)) => Some(name.as_str()),
        (_, None) => anyhow::bail!("a cosigning key needs --name (the log's origin)"),
    };
    let pem = match args.kind {
        KeyType::P256 => p256_pem()?,
        KeyType::Ed25519 => Cosigner::new_ed25519_pem()?,
        KeyType::Mldsa44 => Cosigner::new_mldsa44_pem()?,
    };
    write_new_private_file(&args.out, pem.as_bytes())?;
    // Describe the key as the server will load it, from the file written.
    let written = std::fs::read_to_string(&args.out)?;
    let reading_back = "reading back the new key";
    let description = match (args.kind, cosigner_name) {
        (KeyType::Ed25519, Some(name)) => {
            describe_cosigner(&Cosigner::ed25519_from_pem(name, &written).context(reading_back)?)
        }
        (KeyType::Mldsa44, Some(name)) => {
            describe_cosigner(&Cosigner::mldsa44_from_pem(name, &written).context(reading_back)?)
        }
        _ => describe(
            &LogKey::from_pem(&written).context(reading_back)?,
            args.name.as_deref(),
        ),
    };
    print!("{description}");
    Ok(())
}

fn p256_pem() -> anyhow::Result<String> {
    let pem = random_secret_key()?
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the key")?;
    Ok(pem.to_string())
}

/// What witnesses and monitors configure to verify a cosignature.
fn describe_cosigner(cosigner: &Cosigner) -> String {
    format!(
        "{} verifier key: {}\n",
        cosigner.description(),
        cosigner.verifier_key()
    )
}

/// A uniformly random P-256 scalar from the OS generator.
fn random_secret_key() -> anyhow::Result<p256::SecretKey> {
    let rng = ring::rand::SystemRandom::new();
    // A random 32-byte string is a valid scalar except with probability
    // ~2^-32; a few tries bound the loop.
    for _ in 0..8 {
        let bytes: [u8; 32] = ring::rand::generate(&rng)
            .map_err(|_| anyhow::anyhow!("OS random generator failed"))?
            .expose();
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            return Ok(secret);
        }
    }
    anyhow::bail!("could not draw a valid P-256 scalar")
}

/// Creates `path` with mode 0600, refusing to replace an existing file.
fn write_new_private_file(path: &PathBuf, data: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(data)?;
    file.sync_all()?;
    Ok(())
}

/// The log ID, public key and (given the origin) note verifier key.
pub fn describe(key: &LogKey, origin: Option<&str>) -> String {
    let mut out = format!(
        "log ID (base64): {}\npublic key (base64 SPKI): {}\n{}",
        B64.encode(key.log_id()),
        B64.encode(key.spki_der()),
        key.public_key_pem(),
    );
    if let Some(origin) = origin {
        out += &format!("note verifier key: {}\n", note_verifier_key(origin, key));
    }
    out
}
