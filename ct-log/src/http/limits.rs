//! Limits every submission (and internal API call) is held to: a body cap
//! refused before reading, a cap on how many run at once, and a time bound
//! from the first body byte to the answer. RFC 6962 reads have a cap of
//! their own, so that neither kind of request can take the other's room.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Gauge};
use tokio::sync::Semaphore;

use super::error::ApiError;

/// Submissions larger than this are refused with 413 before being read.
pub const MAX_BODY_BYTES: usize = 128 * 1024;
/// The longest a submission may take, from its first body byte to its SCT.
pub const SUBMISSION_TIMEOUT: Duration = Duration::from_secs(30);

/// One of a log's caps on the requests it handles at once. Requests in
/// flight are counted in `ct_requests_in_flight{log,kind}`, and those
/// refused because the cap was reached in `ct_requests_refused_total`.
/// The metrics are counted through handles registered when the cap is made
/// (a labelled macro call costs label strings and a registry lookup per
/// request).
#[derive(Clone)]
pub struct Cap {
    permits: Arc<Semaphore>,
    /// `submission` or `read`.
    kind: &'static str,
    in_flight: Gauge,
    refused: Counter,
}

impl Cap {
    pub fn new(permits: Arc<Semaphore>, log: &str, kind: &'static str) -> Cap {
        let labels = [("log", log.to_string()), ("kind", kind.to_string())];
        Cap {
            permits,
            kind,
            in_flight: metrics::gauge!("ct_requests_in_flight", &labels),
            refused: metrics::counter!("ct_requests_refused_total", &labels),
        }
    }

    /// Runs the request if the cap has room (503 otherwise), within
    /// `SUBMISSION_TIMEOUT` (408 beyond).
    async fn run(&self, request: Request, next: Next) -> Response {
        let Ok(_permit) = self.permits.try_acquire() else {
            self.refused.increment(1);
            return ApiError::Busy(format!("too many {}s in flight; retry later", self.kind))
                .into_response();
        };
        let _counted = InFlight::enter(&self.in_flight);
        bounded(request, next).await
    }
}

/// Counts a request in flight until it is dropped: answered, or abandoned
/// by its client.
struct InFlight<'a>(&'a Gauge);

impl InFlight<'_> {
    fn enter(gauge: &Gauge) -> InFlight<'_> {
        gauge.increment(1);
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}

/// Bounds one log's submissions: at most its cap at once (503 beyond),
/// each finished within `SUBMISSION_TIMEOUT` including the time to receive
/// its body (408), so slow or piled-up clients cannot exhaust the server.
pub async fn guard_submissions(State(cap): State<Cap>, request: Request, next: Next) -> Response {
    if declared_length(&request).is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        // Refuse before reading: the client may never send what it declared.
        return ApiError::TooLarge(MAX_BODY_BYTES).into_response();
    }
    cap.run(request, next).await
}

/// Bounds one log's RFC 6962 reads the same way, under their own cap.
pub async fn guard_reads(State(cap): State<Cap>, request: Request, next: Next) -> Response {
    cap.run(request, next).await
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
