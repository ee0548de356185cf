//! `ct-log keygen`: make a new log key and print what CT programs and
//! monitors need to know about it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ct_formats::{note_verifier_key, LogKey};
use p256::pkcs8::{EncodePrivateKey, LineEnding};

/// Write a new ECDSA P-256 log key (PKCS#8 PEM, mode 0600).
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the private key; an existing file is never overwritten.
    #[arg(long)]
    out: PathBuf,
    /// The log's origin (submission prefix without scheme), to print its
    /// note verifier key.
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let secret = random_secret_key()?;
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the key")?;
    write_new_private_file(&args.out, pem.as_bytes())?;
    // Describe the key as the server will load it, from the file written.
    let written = std::fs::read_to_string(&args.out)?;
    let key = LogKey::from_pem(&written).context("reading back the new key")?;
    print!("{}", describe(&key, args.name.as_deref()));
    Ok(())
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
