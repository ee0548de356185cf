//! The log's cosignatures: extra checkpoint signature lines, after the
//! RFC 6962 one, in the two c2sp.org/tlog-cosignature formats (Ed25519
//! `cosignature/v1` and ML-DSA-44 `subtree/v1`), with the log's origin as
//! the cosigner name. Witnesses and monitors that verify modern signatures
//! (or want one that survives a quantum computer) check these; CT clients
//! keep checking the RFC 6962 line. Keys live in AWS-LC, already in the
//! tree for SCT signing.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, PqdsaKeyPair, ML_DSA_44_SIGNING};
use base64::prelude::{Engine, BASE64_STANDARD};
use sha2::{Digest, Sha256};

use crate::key::pem_blocks;
use crate::{Checkpoint, FormatError};

/// Signed-note signature type of an Ed25519 cosignature/v1.
const SIG_TYPE_ED25519_COSIGNATURE: u8 = 0x04;
/// Signed-note signature type of an ML-DSA-44 subtree/v1 cosignature.
const SIG_TYPE_MLDSA44_COSIGNATURE: u8 = 0x06;
/// The domain separation label of the ML-DSA-44 signed message.
const SUBTREE_LABEL: &[u8; 12] = b"subtree/v1\n\0";

/// The private half of a cosigner.
enum Secret {
    Ed25519(Ed25519KeyPair),
    MlDsa44(PqdsaKeyPair),
}

/// One extra checkpoint signer: its key, name and key ID.
pub struct Cosigner {
    name: String,
    secret: Secret,
    public_key: Vec<u8>,
    key_id: [u8; 4],
}

impl std::fmt::Debug for Cosigner {
    /// Shows only the public verifier key, never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Cosigner")
            .field(&self.verifier_key())
            .finish()
    }
}

impl Cosigner {
    /// An Ed25519 cosigner named `name` from a PKCS#8 PEM key (v1, as
    /// `openssl genpkey -algorithm ed25519` writes, or v2).
    pub fn ed25519_from_pem(name: &str, pem: &str) -> Result<Cosigner, FormatError> {
        let der = pkcs8_der(pem)?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| FormatError::Key(format!("not an Ed25519 PKCS#8 key ({e})")))?;
        Cosigner::new(name, Secret::Ed25519(pair))
    }

    /// An ML-DSA-44 cosigner named `name` from a PKCS#8 PEM key (seed or
    /// expanded form, as OpenSSL 3.5 and `ct-log keygen` write).
    pub fn mldsa44_from_pem(name: &str, pem: &str) -> Result<Cosigner, FormatError> {
        let der = pkcs8_der(pem)?;
        let pair = PqdsaKeyPair::from_pkcs8(&ML_DSA_44_SIGNING, &der)
            .map_err(|e| FormatError::Key(format!("not an ML-DSA-44 PKCS#8 key ({e})")))?;
        Cosigner::new(name, Secret::MlDsa44(pair))
    }

    /// A new Ed25519 key as PKCS#8 v1 PEM (the form OpenSSL writes).
    pub fn new_ed25519_pem() -> Result<String, FormatError> {
        let random = aws_lc_rs::rand::SystemRandom::new();
        let der = Ed25519KeyPair::generate_pkcs8v1(&random)
            .map_err(|_| FormatError::Key("generating an Ed25519 key failed".into()))?;
        Ok(private_key_pem(der.as_ref()))
    }

    /// A new ML-DSA-44 key as PKCS#8 PEM (its seed).
    pub fn new_mldsa44_pem() -> Result<String, FormatError> {
        let failed = |_| FormatError::Key("generating an ML-DSA-44 key failed".into());
        let pair = PqdsaKeyPair::generate(&ML_DSA_44_SIGNING).map_err(failed)?;
        let der = pair.to_pkcs8v1().map_err(failed)?;
        Ok(private_key_pem(der.as_ref()))
    }

    fn new(name: &str, secret: Secret) -> Result<Cosigner, FormatError> {
        let valid = !name.is_empty()
            && name.len() < 256
            && !name.contains(|c: char| c == '+' || c.is_whitespace());
        if !valid {
            return Err(FormatError::Key(format!(
                "{name:?} cannot name a cosigner (1 to 255 bytes, no spaces or '+')"
            )));
        }
        let public_key = match &secret {
            Secret::Ed25519(pair) => pair.public_key().as_ref().to_vec(),
            Secret::MlDsa44(pair) => pair.public_key().as_ref().to_vec(),
        };
        let mut cosigner = Cosigner {
            name: name.to_string(),
            secret,
            public_key,
            key_id: [0; 4],
        };
        let digest = Sha256::new()
            .chain_update(name.as_bytes())
            .chain_update([b'\n'])
            .chain_update(cosigner.key_material())
            .finalize();
        cosigner.key_id.copy_from_slice(&digest[..4]);
        Ok(cosigner)
    }

    /// The signature algorithm, as the configuration names it: `ed25519`
    /// or `mldsa44`.
    pub fn algorithm(&self) -> &'static str {
        match self.secret {
            Secret::Ed25519(_) => "ed25519",
            Secret::MlDsa44(_) => "mldsa44",
        }
    }

    /// Which cosignature this signer makes, in words.
    pub fn description(&self) -> &'static str {
        match self.secret {
            Secret::Ed25519(_) => "Ed25519 cosignature/v1",
            Secret::MlDsa44(_) => "ML-DSA-44 cosignature (subtree/v1)",
        }
    }

    /// The signature type byte followed by the raw public key: what key IDs
    /// and verifier keys are made of.
    fn key_material(&self) -> Vec<u8> {
        let kind = match self.secret {
            Secret::Ed25519(_) => SIG_TYPE_ED25519_COSIGNATURE,
            Secret::MlDsa44(_) => SIG_TYPE_MLDSA44_COSIGNATURE,
        };
        [&[kind][..], &self.public_key].concat()
    }

    /// The signed-note verifier key witnesses and monitors configure:
    /// `<name>+<hex key ID>+<base64(type ‖ public key)>`.
    pub fn verifier_key(&self) -> String {
        let key_id: String = self.key_id.iter().map(|b| format!("{b:02x}")).collect();
        let material = BASE64_STANDARD.encode(self.key_material());
        format!("{}+{key_id}+{material}", self.name)
    }

    /// The note signature line cosigning `checkpoint` at `seconds` (POSIX
    /// time): `— <name> base64(key ID ‖ u64 timestamp ‖ signature)`.
    pub(crate) fn signature_line(
        &self,
        checkpoint: &Checkpoint,
        seconds: u64,
    ) -> Result<String, FormatError> {
        let signature = match &self.secret {
            Secret::Ed25519(pair) => pair
                .sign(&cosignature_v1_message(checkpoint, seconds))
                .as_ref()
                .to_vec(),
            Secret::MlDsa44(pair) => {
                sign_mldsa44(pair, &self.subtree_message(checkpoint, seconds)?)?
            }
        };
        let payload = [&self.key_id[..], &seconds.to_be_bytes(), &signature].concat();
        Ok(format!(
            "\u{2014} {} {}\n",
            self.name,
            BASE64_STANDARD.encode(payload)
        ))
    }

    /// The ML-DSA-44 signed message: a `cosigned_message` for the whole tree
    /// (start 0, end = size), committing to the cosigner's name.
    fn subtree_message(
        &self,
        checkpoint: &Checkpoint,
        seconds: u64,
    ) -> Result<Vec<u8>, FormatError> {
        let mut message = SUBTREE_LABEL.to_vec();
        push_short_string(&mut message, &self.name)?;
        message.extend_from_slice(&seconds.to_be_bytes());
        push_short_string(&mut message, &checkpoint.origin)?;
        message.extend_from_slice(&0u64.to_be_bytes());
        message.extend_from_slice(&checkpoint.size.to_be_bytes());
        message.extend_from_slice(&checkpoint.root);
        Ok(message)
    }
}

/// The Ed25519 signed message: `cosignature/v1`, `time <seconds>`, then
/// the checkpoint's note body.
fn cosignature_v1_message(checkpoint: &Checkpoint, seconds: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {seconds}\n{}", checkpoint.body()).into_bytes()
}

fn sign_mldsa44(pair: &PqdsaKeyPair, message: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut signature = vec![0; ML_DSA_44_SIGNING.signature_len()];
    let len = pair
        .sign(message, &mut signature)
        .map_err(|_| FormatError::Signature("ML-DSA-44 signing failed"))?;
    signature.truncate(len);
    Ok(signature)
}

/// Appends `opaque value<1..2^8-1>`.
fn push_short_string(out: &mut Vec<u8>, value: &str) -> Result<(), FormatError> {
    let len = u8::try_from(value.len()).map_err(|_| FormatError::TooLong("origin"))?;
    out.push(len);
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

/// The DER of the first "PRIVATE KEY" block of `pem`.
fn pkcs8_der(pem: &str) -> Result<Vec<u8>, FormatError> {
    let (_, block) = pem_blocks(pem)
        .find(|(label, _)| *label == "PRIVATE KEY")
        .ok_or_else(|| FormatError::Key("no PKCS#8 \"PRIVATE KEY\" PEM block".into()))?;
    let body: String = block
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    BASE64_STANDARD
        .decode(body.trim())
        .map_err(|_| FormatError::Key("the PEM block is not base64".into()))
}

/// `der` as a "PRIVATE KEY" PEM block, 64 base64 characters a line.
fn private_key_pem(der: &[u8]) -> String {
    let base64 = BASE64_STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem + "-----END PRIVATE KEY-----\n"
}
