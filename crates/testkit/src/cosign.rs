//! An independent check of checkpoint cosignatures (c2sp.org/tlog-cosignature):
//! a `signed_note::Verifier` made from a published verifier key, which
//! rebuilds the signed message from the spec and checks the signature with
//! ed25519-dalek (Ed25519 cosignature/v1) or RustCrypto's ml-dsa (ML-DSA-44
//! subtree/v1). Neither crate is what ct-log signs with (AWS-LC), and none
//! of this shares code with ct-log, so a test using it checks ct-log against
//! the spec, not against itself.

use base64::prelude::{Engine, BASE64_STANDARD};
use ml_dsa::{EncodedSignature, EncodedVerifyingKey, MlDsa44};

/// A verifier key's public key.
enum Public {
    Ed25519(ed25519_dalek::VerifyingKey),
    MlDsa44(Box<ml_dsa::VerifyingKey<MlDsa44>>),
}

/// Verifies one cosigner's lines in a note.
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    public: Public,
}

impl CosignatureVerifier {
    /// Parses `<name>+<hex key ID>+<base64(type ‖ key)>` for type 0x04
    /// (Ed25519) or 0x06 (ML-DSA-44), checking the key ID against the key.
    pub fn from_verifier_key(vkey: &str) -> Result<CosignatureVerifier, String> {
        // Names hold no '+'; base64 may.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("{vkey:?} is not name+id+key"));
        };
        let material = BASE64_STANDARD
            .decode(material)
            .map_err(|e| e.to_string())?;
        let key_id = u32::from_str_radix(id, 16).map_err(|e| e.to_string())?;
        if signed_note::key_id(name, &material) != key_id {
            return Err(format!("key ID {id} does not match the key"));
        }
        let public = match material.split_first() {
            Some((0x04, key)) => Public::Ed25519(
                ed25519_dalek::VerifyingKey::try_from(key).map_err(|e| e.to_string())?,
            ),
            Some((0x06, key)) => {
                let encoded = EncodedVerifyingKey::<MlDsa44>::try_from(key)
                    .map_err(|_| format!("an ML-DSA-44 key is 1312 bytes, not {}", key.len()))?;
                Public::MlDsa44(Box::new(ml_dsa::VerifyingKey::decode(&encoded)))
            }
            _ => return Err("not a cosignature key type (0x04 or 0x06)".into()),
        };
        Ok(CosignatureVerifier {
            name: name.to_string(),
            key_id,
            public,
        })
    }

    /// The timestamp (POSIX seconds) a cosignature payload carries.
    pub fn timestamp(signature: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(signature.get(..8)?.try_into().ok()?))
    }
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    /// `body` is the note text; `sig` is `u64 timestamp ‖ signature`.
    fn verify(&self, body: &[u8], sig: &[u8]) -> bool {
        let Some((time, signature)) = sig.split_first_chunk::<8>() else {
            return false;
        };
        let time = u64::from_be_bytes(*time);
        match &self.public {
            Public::Ed25519(key) => {
                let mut message = format!("cosignature/v1\ntime {time}\n").into_bytes();
                message.extend_from_slice(body);
                ed25519_dalek::Signature::from_slice(signature)
                    .is_ok_and(|s| key.verify_strict(&message, &s).is_ok())
            }
            Public::MlDsa44(key) => {
                let Some(message) = subtree_message(&self.name, time, body) else {
                    return false;
                };
                let Ok(encoded) = EncodedSignature::<MlDsa44>::try_from(signature) else {
                    return false;
                };
                ml_dsa::Signature::decode(&encoded)
                    .is_some_and(|s| key.verify_with_context(&message, &[], &s))
            }
        }
    }
}

/// The ML-DSA-44 `cosigned_message` for the checkpoint whose note text is
/// `body` (origin, size and root hash lines), as a whole tree: start 0.
fn subtree_message(name: &str, time: u64, body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut lines = text.lines();
    let (origin, size, root) = (lines.next()?, lines.next()?, lines.next()?);
    let size: u64 = size.parse().ok()?;
    let root = BASE64_STANDARD.decode(root).ok()?;
    let mut message = b"subtree/v1\n\0".to_vec();
    message.push(u8::try_from(name.len()).ok()?);
    message.extend_from_slice(name.as_bytes());
    message.extend_from_slice(&time.to_be_bytes());
    message.push(u8::try_from(origin.len()).ok()?);
    message.extend_from_slice(origin.as_bytes());
    message.extend_from_slice(&0u64.to_be_bytes());
    message.extend_from_slice(&size.to_be_bytes());
    message.extend_from_slice(&root);
    Some(message)
}
