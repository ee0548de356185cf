//! The RFC 6962 read API (§4.3–4.8) under the submission prefix, served
//! from the tiles (`tree`): get-sth, get-sth-consistency,
//! get-proof-by-hash, get-entries and get-entry-and-proof. With it, one
//! log is both a static-CT log and an RFC 6962 log for monitors that speak
//! only the classic API.
//!
//! Every answer is about the newest published checkpoint or an older tree
//! inside it; a size or index beyond it is the client's error (400), and a
//! hash the log does not hold is 404. An answer about fixed sizes never
//! changes, so it is cacheable as the immutable tiles are; get-sth and
//! get-entries cut short by the tree's size are not.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ct_formats::{Hash, SignedCheckpoint};
use ct_storage::IMMUTABLE_CACHE_CONTROL;
use serde::Serialize;
use tracing::Instrument;

use super::error::ApiError;
use super::limits::{guard_reads, Cap};
use crate::log::Log;
use crate::tree::{self, EntryRange, RawEntry};

/// What may change with the next checkpoint is kept this long at most.
const SHORT_LIVED: &str = "public, max-age=1";

/// The read routes of one log under its submission `prefix`, behind its
/// read cap.
pub fn routes(log: &Log, prefix: &str) -> Router<Arc<Log>> {
    let cap = Cap::new(log.reads.clone(), &log.info.name, "read");
    let at = |path: &str| format!("{prefix}{path}");
    Router::new()
        .route(&at("/ct/v1/get-sth"), get(get_sth))
        .route(&at("/ct/v1/get-sth-consistency"), get(get_sth_consistency))
        .route(&at("/ct/v1/get-proof-by-hash"), get(get_proof_by_hash))
        .route(&at("/ct/v1/get-entries"), get(get_entries))
        .route(&at("/ct/v1/get-entry-and-proof"), get(get_entry_and_proof))
        .layer(map_response(not_cached_unless_said))
        .layer(from_fn_with_state(cap, guard_reads))
}

/// An answer that says nothing about caching (an error) must not be
/// cached: a hash not yet in the log, or a size beyond the tree, may be
/// there a second later.
async fn not_cached_unless_said(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A JSON answer with its `Cache-Control`.
fn answer(body: impl Serialize, cache_control: &'static str) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

/// The query string as axum hands it over, for [`Params::parse`].
type QueryParams = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The query parameters, each a decimal or base64 value.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(query: QueryParams) -> Result<Params, ApiError> {
        let Query(params) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?;
        Ok(Params(params))
    }

    fn value(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::BadRequest(format!("missing parameter {name}")))
    }

    /// A base64 SHA-256 hash. A `+` that arrived unescaped was decoded as a
    /// space; it is read as the `+` it was.
    fn hash(&self, name: &str) -> Result<Hash, ApiError> {
        let value = self.value(name)?.replace(' ', "+");
        B64.decode(&value)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes).ok())
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{name} must be the base64 of 32 bytes, not {value:?}"
                ))
            })
    }

    /// A non-negative decimal integer.
    fn number(&self, name: &str) -> Result<u64, ApiError> {
        let value = self.value(name)?;
        value.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be a non-negative decimal integer, not {value:?}"
            ))
        })
    }
}

/// The newest published tree, read afresh when `size` is beyond the one
/// this process follows (a client may have seen a newer checkpoint first).
async fn newest(log: &Log, size: u64) -> Result<SignedCheckpoint, ApiError> {
    let known = log.published.borrow().clone();
    if let Some(known) = known.as_ref().filter(|k| k.checkpoint.size >= size) {
        return Ok(known.clone());
    }
    let fresh = log.follower.refresh().await;
    [known, fresh]
        .into_iter()
        .flatten()
        .max_by_key(|c| c.timestamp)
        .ok_or_else(|| ApiError::Busy("the log has published no checkpoint yet".into()))
}

/// The newest tree's size, once the tree size `size` that the request
/// names `name` is checked to be within it.
async fn newest_covering(log: &Log, name: &str, size: u64) -> Result<u64, ApiError> {
    let current = newest(log, size).await?.checkpoint.size;
    if size > current {
        return Err(ApiError::BadRequest(format!(
            "{name} {size} is beyond the tree of size {current}"
        )));
    }
    Ok(current)
}

fn span(log: &Log, endpoint: &'static str) -> tracing::Span {
    tracing::debug_span!("rfc6962", log = %log.info.name, endpoint)
}

fn b64_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

#[derive(Serialize)]
struct Sth {
    tree_size: u64,
    timestamp: u64,
    sha256_root_hash: String,
    tree_head_signature: String,
}

/// `GET get-sth` (§4.3): the newest checkpoint as a signed tree head. Its
/// RFC6962NoteSignature is a TreeHeadSignature, so nothing is signed here.
async fn get_sth(State(log): State<Arc<Log>>) -> Result<Response, ApiError> {
    let checkpoint = newest(&log, 0).await?;
    let signature = checkpoint
        .tree_head_signature(log.key.log_id())
        .map_err(|e| ApiError::Internal(format!("the published checkpoint: {e}")))?;
    let sth = Sth {
        tree_size: checkpoint.checkpoint.size,
        timestamp: checkpoint.timestamp,
        sha256_root_hash: B64.encode(checkpoint.checkpoint.root),
        tree_head_signature: B64.encode(signature),
    };
    Ok(answer(sth, "no-store"))
}

#[derive(Serialize)]
struct Consistency {
    consistency: Vec<String>,
}

/// `GET get-sth-consistency?first=&second=` (§4.4), for
/// `0 < first <= second <= tree size`.
async fn get_sth_consistency(
    State(log): State<Arc<Log>>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = Params::parse(query)?;
    let (first, second) = (params.number("first")?, params.number("second")?);
    let current = newest_covering(&log, "second", second).await?;
    if first == 0 || first > second {
        return Err(ApiError::BadRequest(format!(
            "no consistency proof from size {first} to size {second}: first must be in 1..=second"
        )));
    }
    let proof = tree::consistency_proof(&log, first, second, current)
        .instrument(span(&log, "get-sth-consistency"))
        .await?;
    let body = Consistency {
        consistency: b64_all(&proof),
    };
    Ok(answer(body, IMMUTABLE_CACHE_CONTROL))
}

#[derive(Serialize)]
struct InclusionProof {
    leaf_index: u64,
    audit_path: Vec<String>,
}

/// `GET get-proof-by-hash?hash=&tree_size=` (§4.5): the index of the leaf
/// from the leaf-hash index, and its audit path in the tree of that size.
async fn get_proof_by_hash(
    State(log): State<Arc<Log>>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = Params::parse(query)?;
    let (leaf_hash, size) = (params.hash("hash")?, params.number("tree_size")?);
    let current = newest_covering(&log, "tree_size", size).await?;
    let work = async {
        let index = tree::find_leaf(&log, leaf_hash, size, current).await?;
        let proof = tree::inclusion_proof(&log, index, size, current).await?;
        Ok::<_, tree::TreeError>((index, proof))
    };
    let (index, proof) = work.instrument(span(&log, "get-proof-by-hash")).await?;
    let body = InclusionProof {
        leaf_index: index,
        audit_path: b64_all(&proof),
    };
    Ok(answer(body, IMMUTABLE_CACHE_CONTROL))
}

/// `{"entries":[{"leaf_input":"…","extra_data":"…"},…]}`, written
/// directly: base64 needs no JSON escaping, and an answer of up to a
/// megabyte is built in one buffer sized up front (the serde path spent
/// most of its time scanning strings and reallocating).
fn entries_json(entries: &[RawEntry]) -> Vec<u8> {
    let b64_len = |bytes: &[u8]| bytes.len().div_ceil(3) * 4;
    let capacity = entries
        .iter()
        .map(|e| b64_len(&e.leaf_input) + b64_len(&e.extra_data) + 36)
        .sum::<usize>()
        + 16;
    let mut json = String::with_capacity(capacity);
    json.push_str("{\"entries\":[");
    for (i, entry) in entries.iter().enumerate() {
        json.push_str(if i == 0 { "{" } else { ",{" });
        json.push_str("\"leaf_input\":\"");
        B64.encode_string(&entry.leaf_input, &mut json);
        json.push_str("\",\"extra_data\":\"");
        B64.encode_string(&entry.extra_data, &mut json);
        json.push_str("\"}");
    }
    json.push_str("]}");
    json.into_bytes()
}

#[derive(Serialize)]
struct EntryJson {
    leaf_input: String,
    extra_data: String,
}

impl From<&RawEntry> for EntryJson {
    fn from(entry: &RawEntry) -> EntryJson {
        EntryJson {
            leaf_input: B64.encode(&entry.leaf_input),
            extra_data: B64.encode(&entry.extra_data),
        }
    }
}

/// `GET get-entries?start=&end=` (§4.6): at most one data tile's worth
/// from `start` (RFC 6962 lets a log answer fewer than asked). An answer
/// the tree's size did not cut short is final, and cached as such.
async fn get_entries(
    State(log): State<Arc<Log>>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = Params::parse(query)?;
    let (start, end) = (params.number("start")?, params.number("end")?);
    let newest_tree = newest(&log, start.saturating_add(1)).await?;
    let current = newest_tree.checkpoint.size;
    let range = EntryRange::new(start, end, current)?;
    let entries = tree::entries(&log, range, current)
        .instrument(span(&log, "get-entries"))
        .await?;
    // Base64 and JSON of up to a megabyte: not on the async workers.
    let body = tree::off_the_workers(move || entries_json(&entries)).await?;
    let cache_control = if range.immutable {
        IMMUTABLE_CACHE_CONTROL
    } else {
        SHORT_LIVED
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, cache_control),
        ],
        body,
    )
        .into_response())
}

#[derive(Serialize)]
struct EntryAndProof {
    leaf_input: String,
    extra_data: String,
    audit_path: Vec<String>,
}

/// `GET get-entry-and-proof?leaf_index=&tree_size=` (§4.8).
async fn get_entry_and_proof(
    State(log): State<Arc<Log>>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = Params::parse(query)?;
    let (index, size) = (params.number("leaf_index")?, params.number("tree_size")?);
    let current = newest_covering(&log, "tree_size", size).await?;
    if index >= size {
        return Err(ApiError::BadRequest(format!(
            "leaf_index {index} is not in the tree of size {size}"
        )));
    }
    let work = async {
        let range = EntryRange::new(index, index, current)?;
        let entries = tree::entries(&log, range, current).await?;
        let proof = tree::inclusion_proof(&log, index, size, current).await?;
        Ok::<_, tree::TreeError>((entries, proof))
    };
    let (entries, proof) = work.instrument(span(&log, "get-entry-and-proof")).await?;
    let entry = entries
        .first()
        .map(EntryJson::from)
        .ok_or_else(|| ApiError::Internal(format!("no entry {index} in its data tile")))?;
    let body = EntryAndProof {
        leaf_input: entry.leaf_input,
        extra_data: entry.extra_data,
        audit_path: b64_all(&proof),
    };
    Ok(answer(body, IMMUTABLE_CACHE_CONTROL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_json_is_what_serde_would_write() {
        let entry = |n: u8| RawEntry {
            leaf_input: vec![n; usize::from(n)],
            extra_data: vec![0xfb; 7],
        };
        for entries in [vec![], vec![entry(1)], vec![entry(2), entry(5), entry(0)]] {
            let json: serde_json::Value = serde_json::from_slice(&entries_json(&entries)).unwrap();
            let want: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| serde_json::to_value(EntryJson::from(e)).unwrap())
                .collect();
            assert_eq!(json, serde_json::json!({ "entries": want }));
        }
    }
}
