//! The RFC 6962 write endpoints: add-chain, add-pre-chain, get-roots.
//!
//! A submission is parsed, validated off the async workers, its issuers are
//! stored, then it waits in a batcher and the sequencer for its index. The
//! SCT is answered only once the entry is in a published checkpoint, with
//! the signature its round made ahead while waiting on storage, or else one
//! made here.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ct_batcher::{Placed, Priority};
use ct_dedup::Location;
use ct_formats::{Entry, Sct};
use ct_sequencer::{now_millis, PresignedSct};
use ct_validate::{validate_chain, Endpoint, ValidatedChain, ValidatedLeaf};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::error::ApiError;
use crate::admission::Working;
use crate::log::Log;

/// Chains up to this long are validated on the async worker itself.
const INLINE_VALIDATION_MAX_CERTS: usize = 3;

#[derive(Deserialize)]
struct ChainRequest {
    chain: Vec<String>,
}

/// The RFC 6962 `add-chain` / `add-pre-chain` response.
#[derive(Serialize)]
pub struct SctResponse {
    sct_version: u8,
    id: String,
    timestamp: u64,
    extensions: String,
    signature: String,
}

#[derive(Serialize)]
pub struct RootsResponse {
    certificates: Vec<String>,
}

pub async fn add_chain(
    State(log): State<Arc<Log>>,
    body: Bytes,
) -> Result<Json<SctResponse>, ApiError> {
    let span = tracing::debug_span!("add-chain", log = %log.info.name);
    submit(log, body, Endpoint::AddChain).instrument(span).await
}

pub async fn add_pre_chain(
    State(log): State<Arc<Log>>,
    body: Bytes,
) -> Result<Json<SctResponse>, ApiError> {
    let span = tracing::debug_span!("add-pre-chain", log = %log.info.name);
    submit(log, body, Endpoint::AddPreChain)
        .instrument(span)
        .await
}

pub async fn get_roots(State(log): State<Arc<Log>>) -> Json<RootsResponse> {
    Json(RootsResponse {
        certificates: log
            .roots()
            .certificates()
            .iter()
            .map(|c| B64.encode(c))
            .collect(),
    })
}

async fn submit(
    log: Arc<Log>,
    body: Bytes,
    endpoint: Endpoint,
) -> Result<Json<SctResponse>, ApiError> {
    if log.is_read_only(unix_now()) {
        return Err(ApiError::Gone(format!(
            "this log is read-only: it stopped accepting submissions {} days after its not_after_limit",
            (log.info.read_only_after - log.info.not_after_limit) / 86_400
        )));
    }
    let arrived_ms = now_millis();
    let working = log.admission.admit(&log.sequencing).await?;
    let runtime = working.runtime().clone();
    runtime
        .spawn(answer(log, body, endpoint, working, arrived_ms).in_current_span())
        .await
        .map_err(|e| ApiError::Internal(format!("submission task failed: {e}")))?
}

/// Validates an admitted submission, waits for its entry's index and signs
/// its SCT, on the log runtime.
async fn answer(
    log: Arc<Log>,
    body: Bytes,
    endpoint: Endpoint,
    working: Working,
    arrived_ms: u64,
) -> Result<Json<SctResponse>, ApiError> {
    let chain = parse_chain(&body).inspect_err(|_| count_rejection(&log, "bad_request_body"))?;
    let (roots, policy) = (log.roots(), log.policy.clone());
    // A usual chain (leaf, intermediate, maybe the root) validates in tens
    // of microseconds, its CA links already verified and cached: cheaper
    // inline than the two thread switches of the blocking pool (measured
    // 249 -> 181 µs of server CPU per accepted entry, see BENCHMARKS.md).
    // Longer chains, which may carry several costly signatures, still go
    // to the blocking pool so that no request stalls a worker for long.
    let validated = if chain.len() <= INLINE_VALIDATION_MAX_CERTS {
        validate_chain(&chain, &roots, &policy, endpoint)
    } else {
        tokio::task::spawn_blocking(move || validate_chain(&chain, &roots, &policy, endpoint))
            .await
            .map_err(|e| ApiError::Internal(format!("validation task failed: {e}")))?
    };
    let validated = validated.map_err(|rejection| {
        count_rejection(&log, rejection.reason());
        ApiError::BadRequest(rejection.to_string())
    })?;
    let chain_fingerprints = log
        .store_issuers(&validated.issuers)
        .await
        .map_err(|e| ApiError::Internal(format!("storing issuers: {e}")))?;
    let priority = priority(&validated);
    let entry = Entry {
        kind: validated.leaf.into(),
        chain_fingerprints,
    };
    // The CPU work is done; what remains is waiting for the round.
    drop(working);
    let placed = log.sequencing.locate(entry.clone(), priority).await?;
    let location = placed.location;
    refuse_future(&log, location.timestamp)?;
    let sct = sign(&log, &entry, &placed);
    // A round that started after this submission arrived sequenced it here
    // (a known entry keeps its first, older timestamp).
    if location.timestamp >= arrived_ms && log.sequencing.active_here().is_some() {
        log.admission.answered(location.timestamp, now_millis());
    }
    Ok(Json(SctResponse {
        sct_version: 0,
        id: B64.encode(sct.log_id),
        timestamp: sct.timestamp,
        extensions: B64.encode(&sct.extensions),
        signature: B64.encode(&sct.signature),
    }))
}

/// The entry's SCT, with the signature its round made ahead if it did.
/// Otherwise signed here; for a known entry that is the same bytes as the
/// first time (the full-hash dedup key pins the leaf, and signing is
/// deterministic), so the SCT is byte-identical.
fn sign(log: &Log, entry: &Entry, placed: &Placed) -> Sct {
    let Location {
        leaf_index,
        timestamp,
    } = placed.location;
    match placed.presigned.as_ref().and_then(PresignedSct::get) {
        Some(signature) => Sct::with_signature(&log.key, timestamp, leaf_index, signature.to_vec()),
        None => Sct::sign(&log.key, entry, timestamp, leaf_index),
    }
}

/// Never sign an SCT for a timestamp further ahead of this machine's clock
/// than a sequencer may sign (its clock, or this one, is wrong): CAs and
/// browsers judge SCTs by their clocks, and a log whose SCTs come from the
/// future is distrusted.
fn refuse_future(log: &Log, timestamp: u64) -> Result<(), ApiError> {
    let now = now_millis();
    if timestamp <= now + ct_sequencer::MAX_AHEAD_MS {
        return Ok(());
    }
    let ahead = (timestamp - now) as f64 / 1000.0;
    tracing::error!(log = %log.info.name, ahead_s = ahead, "refusing to sign an SCT ahead of this machine's clock");
    Err(ApiError::Busy(format!(
        "the entry's timestamp is {ahead:.1} s ahead of this server's clock; retry later"
    )))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn count_rejection(log: &Log, reason: &'static str) {
    let labels = [
        ("log", log.info.name.clone()),
        ("reason", reason.to_string()),
    ];
    metrics::counter!("ct_rejections_total", &labels).increment(1);
}

/// Decodes `{"chain": ["<base64 DER>", ...]}`; unknown fields are ignored.
fn parse_chain(body: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
    // serde would also read the struct from a JSON array; only an object is
    // a well-formed request.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "invalid request body: expected a JSON object".into(),
        ));
    }
    let request: ChainRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))?;
    request
        .chain
        .iter()
        .enumerate()
        .map(|(i, b64)| {
            B64.decode(b64)
                .map_err(|e| ApiError::BadRequest(format!("chain[{i}] is not valid base64: {e}")))
        })
        .collect()
}

/// Entries a CA needs least give way first when the pool fills: a
/// precertificate whose NotBefore is over 48 hours old is likely a retry of
/// one already issued, and a final certificate with embedded SCTs is
/// already trusted without this log.
fn priority(chain: &ValidatedChain) -> Priority {
    const STALE_SECONDS: u64 = 48 * 3600;
    let now = unix_now();
    let stale = match chain.leaf {
        ValidatedLeaf::Precert { .. } => chain.not_before.saturating_add(STALE_SECONDS) < now,
        ValidatedLeaf::X509 { .. } => chain.has_embedded_scts,
    };
    if stale {
        Priority::Low
    } else {
        Priority::Normal
    }
}
