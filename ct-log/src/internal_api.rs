//! The internal API's wire format, shared by its client (`forward`, in
//! frontends) and its server (`http::internal`, in sequencer processes), for
//! logs spread over several machines (`[cluster]` in the config).
//!
//! A frontend has validated the chain, stored the issuers and built the
//! entry; it POSTs the entry to `/internal/v1/<log>/entries` of a sequencer
//! process, which puts it through its batchers (dedup, then a round) and
//! answers with the entry's location; the frontend signs the SCT. The
//! sequencer trusts the entry as given, so every call carries the shared
//! secret as a bearer token. The frontend in turn signs an SCT for whatever
//! location comes back, so every answer carries a MAC keyed from the same
//! secret over the log ID, the entry's dedup key, its index and timestamp:
//! anyone on the path (or a process posing as a sequencer) cannot choose
//! the index or timestamp a frontend signs.
//!
//! Answers: 200 [`Located`]; 421 when that process is standing by (the
//! frontend tries the next one); 503 when the active sequencer's pool is
//! full (the frontend passes it on); 500 when the round failed (the frontend
//! tries again, elsewhere if need be).
//!
//! An entry travels as its TileLeaf encoding with zero timestamp and index:
//! an existing, fuzzed format that carries every byte of the entry.

use bytes::Bytes;
use ct_batcher::Priority;
use ct_dedup::{Key, Location};
use ct_formats::{parse_tile_leaves, Entry};
use ring::hmac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest entry body a sequencer reads: a precertificate entry holds
/// the TBS and the precertificate, each under the 128 KiB submission cap.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// The request header naming an entry's [`Priority`].
pub const PRIORITY_HEADER: &str = "ct-priority";

/// The path of the internal API's one endpoint, for the log `name`.
pub fn entries_path(name: &str) -> String {
    format!("/internal/v1/{name}/entries")
}

/// The answer for a located entry. The log ID lets the frontend check that
/// the location is in the log it signs SCTs for; the MAC, that a process
/// holding the shared secret gave it for this very entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct Located {
    pub log_id: String,
    pub leaf_index: u64,
    pub timestamp: u64,
    /// Hex HMAC-SHA256, see [`Secret::answer_mac`].
    pub mac: String,
}

/// The value of [`PRIORITY_HEADER`] for `priority`.
pub fn priority_value(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
    }
}

/// The priority a header value names; anything but `low` is normal.
pub fn parse_priority(value: Option<&[u8]>) -> Priority {
    match value {
        Some(b"low") => Priority::Low,
        _ => Priority::Normal,
    }
}

/// What the shared secret proves: a caller's right to post entries (kept
/// as the secret's digest, so that comparing it takes the same time
/// whatever a caller sends) and an answer's origin (a MAC key derived from
/// the secret, never sent anywhere).
#[derive(Clone)]
pub struct Secret {
    digest: [u8; 32],
    answers: hmac::Key,
}

/// Separates the answer key from any other use of the secret.
const ANSWER_KEY_LABEL: &[u8] = b"ct-log internal API answers v1";

impl Secret {
    pub fn new(secret: &str) -> Secret {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let answer_key = hmac::sign(&derive, ANSWER_KEY_LABEL);
        Secret {
            digest: Sha256::digest(secret.as_bytes()).into(),
            answers: hmac::Key::new(hmac::HMAC_SHA256, answer_key.as_ref()),
        }
    }

    /// Whether an `Authorization` header value carries the secret.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        digest == self.digest
    }

    /// The answer locating the entry with dedup key `key` in the log
    /// `log_id` (hex).
    pub fn answer(&self, log_id: &str, key: &Key, location: Location) -> Located {
        let mac = hmac::sign(&self.answers, &answer_bytes(log_id, key, location));
        Located {
            log_id: log_id.to_string(),
            leaf_index: location.leaf_index,
            timestamp: location.timestamp,
            mac: hex::encode(mac.as_ref()),
        }
    }

    /// The location an answer gives for the entry with dedup key `key`, if
    /// its MAC is right.
    pub fn verify(&self, key: &Key, located: &Located) -> Option<Location> {
        let location = Location {
            leaf_index: located.leaf_index,
            timestamp: located.timestamp,
        };
        let mac = hex::decode(&located.mac).ok()?;
        let signed = answer_bytes(&located.log_id, key, location);
        hmac::verify(&self.answers, &signed, &mac).ok()?;
        Some(location)
    }
}

/// What an answer's MAC covers, each field fixed-length or last.
fn answer_bytes(log_id: &str, key: &Key, location: Location) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(48 + log_id.len());
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(&location.leaf_index.to_be_bytes());
    bytes.extend_from_slice(&location.timestamp.to_be_bytes());
    bytes.extend_from_slice(log_id.as_bytes());
    bytes
}

/// Why an internal request body is not one entry.
#[derive(Debug, thiserror::Error)]
#[error("invalid internal entry: {0}")]
pub struct BadEntry(String);

/// Reads the one entry a request body carries.
pub fn decode_entry(body: &[u8]) -> Result<Entry, BadEntry> {
    let mut leaves = parse_tile_leaves(body).map_err(|e| BadEntry(e.to_string()))?;
    match (leaves.pop(), leaves.is_empty()) {
        (Some(leaf), true) => Ok(leaf.entry),
        _ => Err(BadEntry("expected exactly one entry".into())),
    }
}

/// The request body carrying `entry`.
pub fn encode_entry(entry: &Entry) -> Bytes {
    let mut out = Vec::new();
    entry.write_tile_leaf(0, 0, &mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_formats::EntryKind;

    #[test]
    fn entries_travel_unchanged_and_alone() {
        let entries = [
            Entry {
                kind: EntryKind::X509 {
                    certificate: b"leaf".to_vec(),
                },
                chain_fingerprints: vec![[1; 32], [2; 32]],
            },
            Entry {
                kind: EntryKind::Precert {
                    issuer_key_hash: [3; 32],
                    tbs: b"tbs".to_vec(),
                    precertificate: b"pre".to_vec(),
                },
                chain_fingerprints: vec![[4; 32]],
            },
        ];
        for entry in &entries {
            assert_eq!(&decode_entry(&encode_entry(entry)).unwrap(), entry);
        }
        let two = [encode_entry(&entries[0]), encode_entry(&entries[1])].concat();
        assert!(decode_entry(&two).is_err());
        assert!(decode_entry(b"").is_err());
        assert!(decode_entry(&encode_entry(&entries[0])[..20]).is_err());
    }

    #[test]
    fn only_the_exact_bearer_secret_is_admitted() {
        let secret = Secret::new("correct horse battery staple");
        assert!(secret.admits(Some("Bearer correct horse battery staple")));
        for wrong in [
            "Bearer correct horse battery stapl",
            "Bearer correct horse battery staple ",
            "bearer correct horse battery staple",
            "correct horse battery staple",
            "Bearer ",
        ] {
            assert!(!secret.admits(Some(wrong)), "{wrong:?}");
        }
        assert!(!secret.admits(None));
    }

    #[test]
    fn answers_verify_only_for_their_entry_and_location_under_the_secret() {
        let secret = Secret::new("correct horse battery staple");
        let key = [7u8; 32];
        let at = |leaf_index, timestamp| Location {
            leaf_index,
            timestamp,
        };
        let answer = secret.answer("ab12", &key, at(5, 1000));
        assert_eq!(secret.verify(&key, &answer), Some(at(5, 1000)));
        assert_eq!(secret.verify(&[8u8; 32], &answer), None, "another entry");
        let moved = Located {
            leaf_index: 6,
            ..secret.answer("ab12", &key, at(5, 1000))
        };
        assert_eq!(secret.verify(&key, &moved), None, "another index");
        let later = Located {
            timestamp: 1001,
            ..secret.answer("ab12", &key, at(5, 1000))
        };
        assert_eq!(secret.verify(&key, &later), None, "another timestamp");
        let other_log = Located {
            log_id: "ab13".into(),
            ..secret.answer("ab12", &key, at(5, 1000))
        };
        assert_eq!(secret.verify(&key, &other_log), None, "another log");
        let impostor = Secret::new("another secret of sixteen+");
        assert_eq!(impostor.verify(&key, &answer), None, "another secret");
        let garbled = Located {
            mac: "zz".into(),
            ..secret.answer("ab12", &key, at(5, 1000))
        };
        assert_eq!(secret.verify(&key, &garbled), None);
    }

    #[test]
    fn priorities_round_trip() {
        for priority in [Priority::Low, Priority::Normal] {
            let value = priority_value(priority).as_bytes();
            assert_eq!(parse_priority(Some(value)), priority);
        }
        assert_eq!(parse_priority(None), Priority::Normal);
    }
}
