//! tlog-checkpoint signed notes signed with the static-ct-api
//! RFC6962NoteSignature (a TreeHeadSignature, not a signature over the text).

use base64::prelude::{Engine, BASE64_STANDARD};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::codec::parse_canonical;
use crate::key::spki_der_of;
use crate::{log_id_of, verify_digitally_signed, Cosigner, FormatError, Hash, LogKey};

/// Signed-note signature type of RFC6962NoteSignature.
const SIG_TYPE_RFC6962: u8 = 0x05;

/// The signed content of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// A checkpoint with the timestamp of its tree head signature and the full
/// note bytes (what gets published).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub timestamp: u64,
    pub note: Vec<u8>,
}

/// `https://ct.example.org/2026h1/` → `ct.example.org/2026h1`: strip the scheme
/// and trailing slashes.
pub fn origin_from_prefix(prefix: &str) -> String {
    let no_scheme = prefix.split_once("://").map_or(prefix, |(_, rest)| rest);
    no_scheme.trim_end_matches('/').to_string()
}

/// First 4 bytes of SHA-256(origin | 0x0A | 0x05 | LogID).
pub fn key_id_rfc6962(origin: &str, log_id: &Hash) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update([b'\n', SIG_TYPE_RFC6962]);
    h.update(log_id);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The signed-note verifier key of a log's checkpoints, as monitors and the
/// static CT API name it: `<origin>+<hex key ID>+<base64(0x05 ‖ SPKI)>`.
pub fn note_verifier_key(origin: &str, key: &LogKey) -> String {
    let key_id: String = key_id_rfc6962(origin, key.log_id())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let material = [&[SIG_TYPE_RFC6962][..], key.spki_der()].concat();
    format!("{origin}+{key_id}+{}", BASE64_STANDARD.encode(material))
}

/// RFC 6962 TreeHeadSignature input: v1 (0) | tree_hash (1) | u64 ts | u64 size | root.
pub fn tree_head_signature_input(timestamp: u64, size: u64, root: &Hash) -> [u8; 50] {
    let mut out = [0u8; 50];
    out[1] = 1;
    out[2..10].copy_from_slice(&timestamp.to_be_bytes());
    out[10..18].copy_from_slice(&size.to_be_bytes());
    out[18..].copy_from_slice(root);
    out
}

impl Checkpoint {
    /// `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        let root = BASE64_STANDARD.encode(self.root);
        format!("{}\n{}\n{root}\n", self.origin, self.size)
    }

    /// The full note: body, blank line, and one signature line
    /// `— <origin> <base64(keyID | u64 ts | DigitallySigned)>\n`.
    pub fn sign(&self, key: &LogKey, timestamp: u64) -> SignedCheckpoint {
        let input = tree_head_signature_input(timestamp, self.size, &self.root);
        let mut sig = key_id_rfc6962(&self.origin, key.log_id()).to_vec();
        sig.extend_from_slice(&timestamp.to_be_bytes());
        sig.extend_from_slice(&key.sign(&input));
        let note = format!(
            "{}\n\u{2014} {} {}\n",
            self.body(),
            self.origin,
            BASE64_STANDARD.encode(sig)
        );
        SignedCheckpoint {
            checkpoint: self.clone(),
            timestamp,
            note: note.into_bytes(),
        }
    }
}

impl Checkpoint {
    /// [`Checkpoint::sign`], then one cosignature line per cosigner after
    /// the RFC 6962 line, timestamped with the same instant in seconds
    /// (rounded down, so never later than the RFC 6962 timestamp).
    pub fn sign_with(
        &self,
        key: &LogKey,
        cosigners: &[Cosigner],
        timestamp: u64,
    ) -> Result<SignedCheckpoint, FormatError> {
        let mut signed = self.sign(key, timestamp);
        for cosigner in cosigners {
            let line = cosigner.signature_line(self, timestamp / 1000)?;
            signed.note.extend_from_slice(line.as_bytes());
        }
        Ok(signed)
    }
}

impl SignedCheckpoint {
    /// The RFC 6962 TreeHeadSignature (a DigitallySigned over
    /// [`tree_head_signature_input`]) that this note's RFC6962NoteSignature
    /// from the log `log_id` carries: what RFC 6962 `get-sth` answers as
    /// `tree_head_signature`, with no new signing. Not verified here: the
    /// note was verified when it was opened or signed.
    pub fn tree_head_signature(&self, log_id: &Hash) -> Result<Vec<u8>, FormatError> {
        let text =
            std::str::from_utf8(&self.note).map_err(|_| FormatError::Checkpoint("not UTF-8"))?;
        let split = text.rfind("\n\n").ok_or(FormatError::Checkpoint(
            "no blank line before the signatures",
        ))?;
        let origin = &self.checkpoint.origin;
        let key_id = key_id_rfc6962(origin, log_id);
        let payload = find_signature(&text[split + 2..], origin, &key_id)?;
        match payload.split_first_chunk::<8>() {
            Some((ts, digitally_signed)) if u64::from_be_bytes(*ts) == self.timestamp => {
                Ok(digitally_signed.to_vec())
            }
            Some(_) => Err(FormatError::Checkpoint(
                "the RFC6962NoteSignature timestamp is not the checkpoint's",
            )),
            None => Err(FormatError::Truncated("RFC6962NoteSignature")),
        }
    }
}

/// Parses a checkpoint note and verifies the RFC6962NoteSignature of the log
/// named `origin` with `key`. Signature lines of other names or key IDs are
/// ignored; extension lines in the body are allowed and ignored.
pub fn open_checkpoint(
    note: &[u8],
    origin: &str,
    key: &VerifyingKey,
) -> Result<SignedCheckpoint, FormatError> {
    let text = std::str::from_utf8(note).map_err(|_| FormatError::Checkpoint("not UTF-8"))?;
    let split = text.rfind("\n\n").ok_or(FormatError::Checkpoint(
        "no blank line before the signatures",
    ))?;
    let checkpoint = parse_body(&text[..split + 1])?;
    if checkpoint.origin != origin {
        return Err(FormatError::Checkpoint("origin does not match"));
    }
    let key_id = key_id_rfc6962(origin, &log_id_of(&spki_der_of(key)));
    let payload = find_signature(&text[split + 2..], origin, &key_id)?;
    let timestamp = verify_payload(&checkpoint, &payload, key)?;
    Ok(SignedCheckpoint {
        checkpoint,
        timestamp,
        note: note.to_vec(),
    })
}

/// Parses `<origin>\n<size>\n<base64 root>\n[extension lines\n]`.
fn parse_body(body: &str) -> Result<Checkpoint, FormatError> {
    let lines: Vec<&str> = body
        .strip_suffix('\n')
        .ok_or(FormatError::Checkpoint("body does not end with a newline"))?
        .split('\n')
        .collect();
    let [origin, size, root, extensions @ ..] = lines.as_slice() else {
        return Err(FormatError::Checkpoint("body has fewer than three lines"));
    };
    if origin.is_empty() || extensions.iter().any(|line| line.is_empty()) {
        return Err(FormatError::Checkpoint("empty line in body"));
    }
    let size =
        parse_canonical(size).ok_or(FormatError::Checkpoint("size is not canonical decimal"))?;
    let root = BASE64_STANDARD
        .decode(root)
        .ok()
        .and_then(|bytes| Hash::try_from(bytes).ok())
        .ok_or(FormatError::Checkpoint("root is not base64 of 32 bytes"))?;
    Ok(Checkpoint {
        origin: origin.to_string(),
        size,
        root,
    })
}

/// Returns the payload (after the key ID) of the first signature line with
/// this name and key ID. Every line must be well formed.
fn find_signature(sigs: &str, origin: &str, key_id: &[u8; 4]) -> Result<Vec<u8>, FormatError> {
    let lines = sigs.strip_suffix('\n').ok_or(FormatError::Checkpoint(
        "signatures do not end with a newline",
    ))?;
    let mut found = None;
    for line in lines.split('\n') {
        let (name, sig) = parse_signature_line(line)?;
        if found.is_none() && name == origin && sig[..4] == key_id[..] {
            found = Some(sig[4..].to_vec());
        }
    }
    found.ok_or(FormatError::Checkpoint("no signature line from this log"))
}

/// Parses "— <name> <base64(keyID | signature)>".
fn parse_signature_line(line: &str) -> Result<(&str, Vec<u8>), FormatError> {
    let malformed = FormatError::Checkpoint("malformed signature line");
    let rest = line.strip_prefix("\u{2014} ").ok_or(malformed.clone())?;
    let (name, sig) = rest.split_once(' ').ok_or(malformed.clone())?;
    if name.is_empty() || sig.contains(' ') {
        return Err(malformed);
    }
    let sig = BASE64_STANDARD
        .decode(sig)
        .map_err(|_| FormatError::Checkpoint("signature is not base64"))?;
    if sig.len() < 5 {
        return Err(FormatError::Checkpoint("signature is shorter than 5 bytes"));
    }
    Ok((name, sig))
}

/// Verifies RFC6962NoteSignature payload `u64 timestamp | DigitallySigned`;
/// returns the timestamp.
fn verify_payload(
    checkpoint: &Checkpoint,
    payload: &[u8],
    key: &VerifyingKey,
) -> Result<u64, FormatError> {
    let (ts, digitally_signed) = payload
        .split_first_chunk::<8>()
        .ok_or(FormatError::Truncated("RFC6962NoteSignature"))?;
    let timestamp = u64::from_be_bytes(*ts);
    let input = tree_head_signature_input(timestamp, checkpoint.size, &checkpoint.root);
    verify_digitally_signed(key, &input, digitally_signed)?;
    Ok(timestamp)
}
