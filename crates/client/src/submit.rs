//! Submitting a chain the way a CA does, and checking everything the log
//! answers: the SCT's log ID, signature and `leaf_index`, then a checkpoint
//! covering that index and the entry's inclusion proof from the tiles.

use std::time::{Duration, Instant};

use base64::prelude::{Engine, BASE64_STANDARD};
use ct_formats::{
    leaf_hash, log_id_of, parse_leaf_index_extension, verify_digitally_signed, Entry, EntryKind,
    Hash, Sct, SignedCheckpoint,
};
use ct_validate::{validate_chain, Endpoint, Policy, Roots};
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::EncodePublicKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{Error, LogClient, Result, Source};

/// get-roots answers and SCTs are small; a cap keeps a hostile log honest.
const RESPONSE_LIMIT: u64 = 4 << 20;
/// How often to look for a checkpoint covering the new entry.
const POLL: Duration = Duration::from_millis(500);

/// Where and how to submit.
pub struct SubmitOptions<'a> {
    /// The submission prefix (`https://…`).
    pub submission: &'a Source,
    /// The log's monitoring side, for the checkpoint and the tiles.
    pub monitor: &'a LogClient,
    pub key: &'a VerifyingKey,
    /// Checkpoint origin; None: the checkpoint's own (see [`LogClient::checkpoint`]).
    pub origin: Option<&'a str>,
    /// How long to wait for a checkpoint that covers the entry.
    pub wait: Duration,
}

/// A verified submission.
#[derive(Clone, Debug)]
pub struct Submission {
    pub sct: Sct,
    pub leaf_index: u64,
    /// The checkpoint that covers the entry, and the entry's proof in it.
    pub checkpoint: SignedCheckpoint,
    pub inclusion_proof: Vec<Hash>,
}

impl Submission {
    /// The SCT as add-chain returns it (RFC 6962 §4.1 JSON).
    pub fn sct_json(&self) -> Value {
        json!({
            "sct_version": 0,
            "id": BASE64_STANDARD.encode(self.sct.log_id),
            "timestamp": self.sct.timestamp,
            "extensions": BASE64_STANDARD.encode(&self.sct.extensions),
            "signature": BASE64_STANDARD.encode(&self.sct.signature),
        })
    }

    /// Base64 of the serialized SCT (as in an SCT list).
    pub fn sct_base64(&self) -> String {
        BASE64_STANDARD.encode(self.sct.serialize())
    }
}

/// The DER certificates of a PEM chain file, leaf first.
pub fn read_chain_pem(text: &str) -> Result<Vec<Vec<u8>>> {
    let chain: Vec<Vec<u8>> = pem::parse_many(text)
        .map_err(|e| Error::Usage(format!("chain: {e}")))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if chain.is_empty() {
        return Err(Error::Usage("chain: no CERTIFICATE block".into()));
    }
    Ok(chain)
}

/// Submits `chain` to add-chain (or add-pre-chain) and verifies the answer
/// all the way to an inclusion proof under a signed checkpoint.
pub async fn submit(
    options: &SubmitOptions<'_>,
    chain: &[Vec<u8>],
    precert: bool,
) -> Result<Submission> {
    let entry = expected_entry(options.submission, chain, precert).await?;
    let endpoint = if precert {
        "ct/v1/add-pre-chain"
    } else {
        "ct/v1/add-chain"
    };
    let certs: Vec<String> = chain.iter().map(|c| BASE64_STANDARD.encode(c)).collect();
    let body = serde_json::to_vec(&json!({ "chain": certs })).expect("JSON");
    let (status, answer) = options
        .submission
        .post_json(endpoint, body, RESPONSE_LIMIT)
        .await?;
    let url = options.submission.describe(endpoint);
    if status != 200 {
        let body = String::from_utf8_lossy(&answer).trim().to_string();
        return Err(Error::Rejected { url, status, body });
    }
    let sct = parse_sct(&url, &answer)?;
    let leaf_index = check_sct(options.key, &entry, &sct)?;
    let checkpoint = wait_for_checkpoint(options, leaf_index).await?;
    if sct.timestamp > checkpoint.timestamp {
        return Err(Error::Inconsistent(format!(
            "SCT timestamp {} is after the timestamp {} of the checkpoint covering it",
            sct.timestamp, checkpoint.timestamp
        )));
    }
    let merkle_leaf = entry.merkle_tree_leaf(sct.timestamp, leaf_index);
    let inclusion_proof = options
        .monitor
        .check_inclusion(&leaf_hash(&merkle_leaf), leaf_index, &checkpoint)
        .await?;
    Ok(Submission {
        sct,
        leaf_index,
        checkpoint,
        inclusion_proof,
    })
}

/// The entry the log must log for this chain, worked out the way the log
/// does it (ct-validate, with the log's own roots and an open NotAfter
/// window), so the SCT signature can be checked, precertificates included.
async fn expected_entry(submission: &Source, chain: &[Vec<u8>], precert: bool) -> Result<Entry> {
    let path = "ct/v1/get-roots";
    let object = submission
        .get(path, RESPONSE_LIMIT)
        .await?
        .ok_or_else(|| Error::NotFound {
            object: submission.describe(path),
        })?;
    let roots = parse_roots(&object.bytes).ok_or_else(|| {
        Error::Inconsistent(format!(
            "{}: not a list of certificates",
            submission.describe(path)
        ))
    })?;
    let policy = Policy {
        not_after_start: 0,
        not_after_limit: u64::MAX,
        max_chain_length: 16,
    };
    let endpoint = if precert {
        Endpoint::AddPreChain
    } else {
        Endpoint::AddChain
    };
    let validated = validate_chain(chain, &roots, &policy, endpoint)
        .map_err(|e| Error::Usage(format!("the log would reject this chain: {e}")))?;
    let kind: EntryKind = validated.leaf.into();
    let chain_fingerprints = validated
        .issuers
        .iter()
        .map(|der| Sha256::digest(der).into())
        .collect();
    Ok(Entry {
        kind,
        chain_fingerprints,
    })
}

fn parse_roots(body: &[u8]) -> Option<Roots> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let ders = value["certificates"]
        .as_array()?
        .iter()
        .map(|c| BASE64_STANDARD.decode(c.as_str()?).ok())
        .collect::<Option<Vec<_>>>()?;
    Roots::from_ders(ders).ok()
}

/// Reads the add-chain JSON answer; unknown fields are ignored.
fn parse_sct(url: &str, body: &[u8]) -> Result<Sct> {
    let bad = |what: &str| Error::Inconsistent(format!("{url}: SCT {what}"));
    let value: Value = serde_json::from_slice(body).map_err(|_| bad("is not JSON"))?;
    if value["sct_version"].as_u64() != Some(0) {
        return Err(bad("version is not 0"));
    }
    let b64 = |field: &str| {
        value[field]
            .as_str()
            .and_then(|s| BASE64_STANDARD.decode(s).ok())
            .ok_or_else(|| bad(&format!("field {field:?} is not base64")))
    };
    Ok(Sct {
        log_id: Hash::try_from(b64("id")?).map_err(|_| bad("id is not 32 bytes"))?,
        timestamp: value["timestamp"]
            .as_u64()
            .ok_or_else(|| bad("timestamp is not a number"))?,
        extensions: b64("extensions")?,
        signature: b64("signature")?,
    })
}

/// Checks the log ID and the signature over the entry at the SCT's
/// `leaf_index`; returns that index.
fn check_sct(key: &VerifyingKey, entry: &Entry, sct: &Sct) -> Result<u64> {
    let spki = key.to_public_key_der().expect("a P-256 key encodes");
    if sct.log_id != log_id_of(spki.as_bytes()) {
        return Err(Error::Inconsistent(
            "SCT log ID is not the SHA-256 of the log's key".into(),
        ));
    }
    let leaf_index =
        parse_leaf_index_extension(&sct.extensions).map_err(|e| Error::format("SCT", e))?;
    let signed = entry.merkle_tree_leaf(sct.timestamp, leaf_index);
    verify_digitally_signed(key, &signed, &sct.signature).map_err(|e| Error::format("SCT", e))?;
    Ok(leaf_index)
}

/// Polls the checkpoint until it covers `leaf_index` or `wait` runs out.
async fn wait_for_checkpoint(
    options: &SubmitOptions<'_>,
    leaf_index: u64,
) -> Result<SignedCheckpoint> {
    let deadline = Instant::now() + options.wait;
    loop {
        let checkpoint = options
            .monitor
            .checkpoint(options.key, options.origin)
            .await?;
        if checkpoint.checkpoint.size > leaf_index {
            return Ok(checkpoint);
        }
        if Instant::now() >= deadline {
            return Err(Error::Inconsistent(format!(
                "no checkpoint covers leaf index {leaf_index} after {:?} (size {})",
                options.wait, checkpoint.checkpoint.size
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
