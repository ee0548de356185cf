//! Limits every submission (and internal API call) is held to: a body cap
//! refused before reading, a cap on how many run at once, and a time bound
//! from the first body byte to the answer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::error::ApiError;

/// Submissions larger than this are refused with 413 before being read.
pub const MAX_BODY_BYTES: usize = 128 * 1024;
/// The longest a submission may take, from its first body byte to its SCT.
pub const SUBMISSION_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds one log's submissions: at most its `in_flight` permits at once
/// (503 beyond), each finished within `SUBMISSION_TIMEOUT` including the
/// time to receive its body (408), so slow or piled-up clients cannot
/// exhaust the server.
pub async fn guard_submissions(
    State(in_flight): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    if declared_length(&request).is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        // Refuse before reading: the client may never send what it declared.
        return ApiError::TooLarge(MAX_BODY_BYTES).into_response();
    }
    let Ok(_permit) = in_flight.try_acquire() else {
        return ApiError::Busy("too many submissions in flight; retry later".into())
            .into_response();
    };
    bounded(request, next).await
}

/// Answers 408 when a request takes longer than `SUBMISSION_TIMEOUT`.
pub async fn bounded(request: Request, next: Next) -> Response {
    match tokio::time::timeout(SUBMISSION_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(SUBMISSION_TIMEOUT).into_response(),
    }
}

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
