//! The HTTP frontend: one axum router for every log, with each log's
//! submission endpoints under its submission path and its static read path
//! under its monitoring path.
//!
//! Every error is a status code and one human-readable line (`error`).

mod error;
mod internal;
mod limits;
mod meters;
mod ops;
mod read;
mod rfc6962;
mod submit;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use ct_storage::LockBackend;
use metrics_exporter_prometheus::PrometheusHandle;

use error::method_not_allowed;
pub use error::ApiError;
pub use internal::router as internal_router;
use limits::{guard_submissions, Cap, MAX_BODY_BYTES};
use meters::RequestMeters;

use crate::acme::Certificates;
use crate::config::{prefix_path, Role};
use crate::log::Log;

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
pub fn router(
    logs: &[Mounted],
    metrics: PrometheusHandle,
    role: Role,
    lock: Option<Arc<dyn LockBackend>>,
    acme: Option<Arc<Certificates>>,
) -> Router {
    let ops = Arc::new(ops::Ops {
        logs: logs.iter().map(|m| m.log.clone()).collect(),
        metrics,
        lock,
        acme,
    });
    let mut app = Router::new()
        .route("/", get(ops::home))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .with_state(ops.clone());
    for mounted in logs {
        let (sub, mon) = (&mounted.submission_path, &mounted.monitoring_path);
        let mut submission = Router::new()
            .route(&at(sub, "/ct/v1/get-roots"), get(submit::get_roots))
            .route(&at(sub, "/log.v3.json"), get(ops::log_metadata));
        if role != Role::Sequencer {
            submission = submission
                .route(&at(sub, "/ct/v1/add-chain"), post(submit::add_chain))
                .route(
                    &at(sub, "/ct/v1/add-pre-chain"),
                    post(submit::add_pre_chain),
                );
        }
        let submissions = Cap::new(
            mounted.log.in_flight.clone(),
            &mounted.log.info.name,
            "submission",
        );
        // Layers wrap only the routes added before them: the RFC 6962 reads
        // come after, with a cap of their own.
        let submission = submission
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(from_fn_with_state(submissions, guard_submissions))
            .merge(rfc6962::routes(&mounted.log, sub))
            .method_not_allowed_fallback(method_not_allowed);
        let monitoring = Router::new()
            .route(&at(mon, "/checkpoint"), get(read::checkpoint))
            .route(&at(mon, "/tile/{*path}"), get(read::tile))
            .route(&at(mon, "/issuer/{fingerprint}"), get(read::issuer))
            .method_not_allowed_fallback(method_not_allowed);
        let log = mounted.log.clone();
        let meters = Arc::new(RequestMeters::new(&log.info.name));
        let track = from_fn_with_state(meters, meters::track);
        app = app
            .merge(submission.with_state(log.clone()).layer(track.clone()))
            .merge(monitoring.with_state(log).layer(track));
    }
    not_found_elsewhere(app)
}

/// Answers 404 on every path `app` does not route.
pub fn not_found_elsewhere(app: Router) -> Router {
    app.fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
}

/// The route `path` under a log's `prefix` ("" or "/name"). Each route is
/// registered whole rather than nested under the prefix, so no request has
/// its URI rebuilt on the way in (5-8% of a refused request's CPU).
fn at(prefix: &str, path: &str) -> String {
    format!("{prefix}{path}")
}
