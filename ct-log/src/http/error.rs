//! The one error type of every endpoint, and the conversions into it: the
//! status says whose fault, the text (one line) says what. A 500 means our
//! own failure, never the client's input.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use std::time::Duration;

use crate::refused::Refused;
use crate::tree::TreeError;

/// A failed request: the status says whose fault, the text says what.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    MethodNotAllowed,
    /// The request took longer than this.
    Timeout(Duration),
    /// The body is over this many bytes.
    TooLarge(usize),
    /// The log is past its sunset and read-only.
    Gone(String),
    /// The log cannot take more work now; retry after a second.
    Busy(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, reason) = match self {
            ApiError::BadRequest(r) => (StatusCode::BAD_REQUEST, r),
            ApiError::NotFound(r) => (StatusCode::NOT_FOUND, r),
            ApiError::Gone(r) => (StatusCode::GONE, r),
            ApiError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes"),
            ),
            ApiError::Timeout(limit) => (
                StatusCode::REQUEST_TIMEOUT,
                format!("the request took longer than {} s", limit.as_secs()),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed for this endpoint".into(),
            ),
            ApiError::Busy(r) => (StatusCode::SERVICE_UNAVAILABLE, r),
            ApiError::Internal(r) => (StatusCode::INTERNAL_SERVER_ERROR, r),
        };
        // A 503 is the log shedding load, counted in `ct_http_requests_total`
        // (and by reason in `ct_admission_refused_total`); a line for each
        // would flood the log and cost the flood as much CPU again as
        // refusing it (BENCHMARKS.md, 2026-12-06). A 500 is a bug.
        match status {
            StatusCode::SERVICE_UNAVAILABLE => tracing::debug!(%status, reason, "request refused"),
            s if s.is_server_error() => tracing::warn!(%status, reason, "request failed"),
            _ => {}
        }
        let one_line = reason.replace(['\n', '\r'], " ");
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            one_line + "\n",
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

/// Applies to every route: a known path asked with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> ApiError {
        match refused {
            Refused::Busy(why) => ApiError::Busy(why),
            Refused::StandingBy => {
                ApiError::Busy(ct_sequencer::SequencingError::StandingBy.to_string())
            }
            Refused::Failed(why) => ApiError::Internal(format!("sequencing failed: {why}")),
        }
    }
}

impl From<TreeError> for ApiError {
    fn from(e: TreeError) -> ApiError {
        match e {
            TreeError::Beyond(why) => ApiError::BadRequest(why),
            TreeError::NotFound(why) => ApiError::NotFound(why),
            TreeError::Index(e) => ApiError::Internal(format!("reading the leaf-hash index: {e}")),
            TreeError::Storage(e) => ApiError::Internal(format!("reading the tree: {e}")),
            TreeError::Damaged(why) | TreeError::Task(why) => {
                ApiError::Internal(format!("reading the tree: {why}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The log lines at `WARN` and above that answering `error` writes.
    fn warnings(error: ApiError) -> String {
        let lines = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || drop(error.into_response()));
        let bytes = lines.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Shedding a flood writes no line per refusal; a bug does.
    #[test]
    fn only_a_bug_is_logged_as_a_warning() {
        let shed = warnings(ApiError::Busy("the log is busy; retry later".into()));
        assert_eq!(shed, "", "a 503 is counted, not logged");
        let bug = warnings(ApiError::Internal("reading the tree: gone".into()));
        assert!(
            bug.contains("WARN") && bug.contains("reading the tree: gone"),
            "{bug}"
        );
    }
}
