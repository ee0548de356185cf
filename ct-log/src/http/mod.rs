//! The HTTP frontend: one axum router for every log, with each log's
//! submission endpoints under its submission path and its static read path
//! under its monitoring path.
//!
//! Every error is a status code and one human-readable line; a 500 means our
//! own failure, never the client's input.

mod ops;
mod read;
mod submit;

use std::sync::Arc;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use crate::cluster;
use crate::config::prefix_path;
use crate::log::Log;
use crate::serve::Role;

/// Submissions larger than this are refused with 413 before being read.
const MAX_BODY_BYTES: usize = 128 * 1024;
/// The longest a submission may take, from its first body byte to its SCT.
const SUBMISSION_TIMEOUT: Duration = Duration::from_secs(30);

/// A log together with the URL paths it is served under.
pub struct Mounted {
    pub log: Arc<Log>,
    pub submission_path: String,
    pub monitoring_path: String,
}

impl Mounted {
    pub fn new(
        log: Log,
        submission_prefix: &str,
        monitoring_prefix: &str,
    ) -> anyhow::Result<Mounted> {
        Ok(Mounted {
            log: Arc::new(log),
            submission_path: prefix_path(submission_prefix)?,
            monitoring_path: prefix_path(monitoring_prefix)?,
        })
    }
}

/// Builds the router serving every log, plus the operator endpoints
/// (`/`, `/health`, `/metrics`) at the root. A `sequencer` process takes no
/// public submissions.
pub fn router(logs: &[Mounted], metrics: PrometheusHandle, role: Role) -> Router {
    let ops = Arc::new(ops::Ops {
        logs: logs.iter().map(|m| m.log.clone()).collect(),
        metrics,
    });
    let mut app = Router::new()
        .route("/", get(ops::home))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .with_state(ops.clone());
    for mounted in logs {
        let mut submission = Router::new()
            .route("/ct/v1/get-roots", get(submit::get_roots))
            .route("/log.v3.json", get(ops::log_metadata));
        if role != Role::Sequencer {
            submission = submission
                .route("/ct/v1/add-chain", post(submit::add_chain))
                .route("/ct/v1/add-pre-chain", post(submit::add_pre_chain));
        }
        // Layers wrap only the routes added before them.
        let submission = submission
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(from_fn_with_state(
                mounted.log.in_flight.clone(),
                guard_submissions,
            ));
        let monitoring = Router::new()
            .route("/checkpoint", get(read::checkpoint))
            .route("/tile/{*path}", get(read::tile))
            .route("/issuer/{fingerprint}", get(read::issuer))
            .method_not_allowed_fallback(method_not_allowed);
        let (sub, mon) = (&mounted.submission_path, &mounted.monitoring_path);
        let log = mounted.log.clone();
        let track = from_fn_with_state(Arc::<str>::from(log.info.name.as_str()), ops::track);
        if sub == mon {
            let routes = submission.merge(monitoring).with_state(log).layer(track);
            app = mount(app, sub, routes);
        } else {
            app = mount(
                app,
                sub,
                submission.with_state(log.clone()).layer(track.clone()),
            );
            app = mount(app, mon, monitoring.with_state(log).layer(track));
        }
    }
    not_found_elsewhere(app)
}

/// Answers 404 on every path `app` does not route.
pub fn not_found_elsewhere(app: Router) -> Router {
    app.fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
}

/// The internal API (see `cluster`), behind the shared secret; without a
/// fallback, so that it merges into the public router.
pub fn internal_router(logs: &[Mounted], secret: &str) -> Router {
    let logs: Vec<Arc<Log>> = logs.iter().map(|m| m.log.clone()).collect();
    Router::new()
        .route("/internal/v1/{log}/entries", post(cluster::sequence_entry))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::new(logs))
        .layer(DefaultBodyLimit::max(cluster::MAX_ENTRY_BYTES))
        .layer(axum::middleware::from_fn(bounded))
        .layer(from_fn_with_state(
            cluster::Secret::new(secret),
            cluster::authenticate,
        ))
}

/// Bounds one log's submissions: at most its `in_flight` permits at once
/// (503 beyond), each finished within `SUBMISSION_TIMEOUT` including the
/// time to receive its body (408), so slow or piled-up clients cannot
/// exhaust the server.
async fn guard_submissions(
    State(in_flight): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    if declared_length(&request).is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        // Refuse before reading: the client may never send what it declared.
        return ApiError::TooLarge.into_response();
    }
    let Ok(_permit) = in_flight.try_acquire() else {
        return ApiError::Busy("too many submissions in flight; retry later".into())
            .into_response();
    };
    bounded(request, next).await
}

/// Answers 408 when a request takes longer than `SUBMISSION_TIMEOUT`.
async fn bounded(request: Request, next: Next) -> Response {
    match tokio::time::timeout(SUBMISSION_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
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

/// Applies to every route: a known path asked with the wrong method.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Nests `routes` at `path`, or merges them when the path is the root.
fn mount(app: Router, path: &str, routes: Router) -> Router {
    if path.is_empty() {
        app.merge(routes)
    } else {
        app.nest(path, routes)
    }
}

/// A failed request: the status says whose fault, the text says what.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    MethodNotAllowed,
    /// The request took longer than `SUBMISSION_TIMEOUT`.
    Timeout,
    /// The body is over `MAX_BODY_BYTES`.
    TooLarge,
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
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {MAX_BODY_BYTES} bytes"),
            ),
            ApiError::Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request took longer than {} s",
                    SUBMISSION_TIMEOUT.as_secs()
                ),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed for this endpoint".into(),
            ),
            ApiError::Busy(r) => (StatusCode::SERVICE_UNAVAILABLE, r),
            ApiError::Internal(r) => (StatusCode::INTERNAL_SERVER_ERROR, r),
        };
        if status.is_server_error() {
            tracing::warn!(%status, reason, "request failed");
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
