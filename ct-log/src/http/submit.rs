//! The RFC 6962 write endpoints: add-chain, add-pre-chain, get-roots.
//!
//! A submission is parsed, validated off the async workers, its issuers are
//! stored, then it waits in a batcher and the sequencer for its index. The
//! SCT is signed only once the entry is in a published checkpoint.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ct_formats::{Entry, EntryKind, Sct};
use ct_validate::{validate_chain, Endpoint, ValidatedLeaf};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::ApiError;
use crate::log::Log;

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
    let span = tracing::debug_span!("add-chain", log = %log.name);
    submit(log, body, Endpoint::AddChain).instrument(span).await
}

pub async fn add_pre_chain(
    State(log): State<Arc<Log>>,
    body: Bytes,
) -> Result<Json<SctResponse>, ApiError> {
    let span = tracing::debug_span!("add-pre-chain", log = %log.name);
    submit(log, body, Endpoint::AddPreChain)
        .instrument(span)
        .await
}

pub async fn get_roots(State(log): State<Arc<Log>>) -> Json<RootsResponse> {
    Json(RootsResponse {
        certificates: log
            .roots
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
    let chain = parse_chain(&body)?;
    let (roots, policy) = (log.roots.clone(), log.policy.clone());
    let validated =
        tokio::task::spawn_blocking(move || validate_chain(&chain, &roots, &policy, endpoint))
            .await
            .map_err(|e| ApiError::Internal(format!("validation task failed: {e}")))?
            .map_err(|rejection| ApiError::BadRequest(rejection.to_string()))?;
    let chain_fingerprints = log
        .store_issuers(&validated.issuers)
        .await
        .map_err(|e| ApiError::Internal(format!("storing issuers: {e}")))?;
    let entry = Entry {
        kind: entry_kind(validated.leaf),
        chain_fingerprints,
    };
    let waiting = log
        .batchers
        .submit(entry.clone())
        .map_err(|e| ApiError::Busy(e.to_string()))?;
    let sequenced = waiting
        .await
        .map_err(|_| ApiError::Internal("the log stopped before sequencing the entry".into()))?
        .map_err(|e| ApiError::Internal(format!("sequencing failed: {e}")))?;
    let sct = Sct::sign(&log.key, &entry, sequenced.timestamp, sequenced.first_index);
    Ok(Json(SctResponse {
        sct_version: 0,
        id: B64.encode(sct.log_id),
        timestamp: sct.timestamp,
        extensions: B64.encode(&sct.extensions),
        signature: B64.encode(&sct.signature),
    }))
}

/// Decodes `{"chain": ["<base64 DER>", ...]}`; unknown fields are ignored.
fn parse_chain(body: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
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

fn entry_kind(leaf: ValidatedLeaf) -> EntryKind {
    match leaf {
        ValidatedLeaf::X509 { certificate } => EntryKind::X509 { certificate },
        ValidatedLeaf::Precert {
            issuer_key_hash,
            tbs,
            precertificate,
        } => EntryKind::Precert {
            issuer_key_hash,
            tbs,
            precertificate,
        },
    }
}
