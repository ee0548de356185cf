//! The server side of the internal API (`internal_api` has the wire
//! format): a sequencer process locates entries posted by frontends with its
//! own batchers and sequencer. Every call must carry the shared secret.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::error::{method_not_allowed, ApiError};
use super::limits::bounded;
use crate::internal_api::{
    decode_entry, entries_path, parse_priority, Secret, MAX_ENTRY_BYTES, PRIORITY_HEADER,
};
use crate::log::Log;
use crate::refused::Refused;

/// The logs the internal API serves, and the secret its calls and answers
/// are authenticated with.
struct Internal {
    logs: Vec<Arc<Log>>,
    secret: Secret,
}

/// The internal API behind the shared secret; without a fallback, so that
/// it merges into the public router.
pub fn router(logs: Vec<Arc<Log>>, secret: &str) -> Router {
    let secret = Secret::new(secret);
    let state = Arc::new(Internal {
        logs,
        secret: secret.clone(),
    });
    Router::new()
        .route(&entries_path("{log}"), post(sequence_entry))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_ENTRY_BYTES))
        .layer(from_fn(bounded))
        .layer(from_fn_with_state(secret, authenticate))
}

/// Refuses internal requests without the shared secret (401).
async fn authenticate(State(secret): State<Secret>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION);
    if secret.admits(authorization.and_then(|v| v.to_str().ok())) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "missing or wrong cluster secret\n",
        )
            .into_response()
    }
}

/// `POST /internal/v1/<log>/entries`: locates one entry with this
/// process's own batchers and sequencer.
async fn sequence_entry(
    State(internal): State<Arc<Internal>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let log = internal
        .logs
        .iter()
        .find(|log| log.info.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no log named {name:?} here")))?;
    // Entries from every frontend count against the log's own cap.
    let Ok(_permit) = log.in_flight.try_acquire() else {
        return Err(ApiError::Busy(
            "too many submissions in flight; retry later".into(),
        ));
    };
    let entry = decode_entry(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let priority = parse_priority(headers.get(PRIORITY_HEADER).map(|v| v.as_bytes()));
    let key = entry.dedup_key();
    match log.sequencing.locate_here(entry, priority).await {
        Ok(placed) => {
            let log_id = hex::encode(log.key.log_id());
            let located = internal.secret.answer(&log_id, &key, placed.location);
            Ok(Json(located).into_response())
        }
        Err(Refused::StandingBy) => Ok((
            StatusCode::MISDIRECTED_REQUEST,
            "this process is standing by for the log's sequencing lease\n",
        )
            .into_response()),
        Err(refused) => Err(refused.into()),
    }
}
