//! Each log's request metrics, `ct_http_requests_total{log,endpoint,status}`
//! and `ct_http_request_seconds{log,endpoint}`, counted on every request.
//!
//! They are counted through handles kept here, each registered on first
//! use: the `counter!` macro with labels allocates the label strings and
//! looks the series up in the recorder's registry on every call. With the
//! cap's and admission's handles that came to about 1.3 µs of the 32 µs a
//! refused submission cost (BENCHMARKS.md, "Landed: metrics handles").

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};

/// Route suffixes and the endpoint label each is counted under; any other
/// route is `other`.
const ENDPOINTS: [(&str, &str); 12] = [
    ("/ct/v1/add-chain", "add-chain"),
    ("/ct/v1/add-pre-chain", "add-pre-chain"),
    ("/ct/v1/get-roots", "get-roots"),
    ("/ct/v1/get-sth", "get-sth"),
    ("/ct/v1/get-sth-consistency", "get-sth-consistency"),
    ("/ct/v1/get-proof-by-hash", "get-proof-by-hash"),
    ("/ct/v1/get-entries", "get-entries"),
    ("/ct/v1/get-entry-and-proof", "get-entry-and-proof"),
    ("/log.v3.json", "log.v3.json"),
    ("/checkpoint", "checkpoint"),
    ("/tile/{*path}", "tile"),
    ("/issuer/{fingerprint}", "issuer"),
];
const OTHER: usize = ENDPOINTS.len();

/// The statuses ct-log answers with, whose counters are kept; a request
/// answered with another status is counted through the registry.
const STATUSES: [u16; 12] = [200, 400, 401, 404, 405, 408, 410, 413, 415, 421, 422, 503];

/// One log's request metrics.
pub struct RequestMeters {
    log: Arc<str>,
    /// By index in `ENDPOINTS`, then `other`.
    endpoints: [EndpointMeters; OTHER + 1],
}

#[derive(Default)]
struct EndpointMeters {
    seconds: OnceLock<Histogram>,
    /// By index in `STATUSES`.
    answers: [OnceLock<Counter>; STATUSES.len()],
}

impl RequestMeters {
    pub fn new(log: &str) -> RequestMeters {
        RequestMeters {
            log: log.into(),
            endpoints: Default::default(),
        }
    }

    fn count(&self, endpoint: usize, status: StatusCode, took: Duration) {
        let meters = &self.endpoints[endpoint];
        let label = ENDPOINTS.get(endpoint).map_or("other", |(_, label)| label);
        let seconds = meters.seconds.get_or_init(|| {
            metrics::histogram!("ct_http_request_seconds", "log" => self.log.to_string(), "endpoint" => label)
        });
        seconds.record(took);
        match STATUSES.iter().position(|s| *s == status.as_u16()) {
            Some(i) => meters.answers[i]
                .get_or_init(|| self.answers(label, status))
                .increment(1),
            None => self.answers(label, status).increment(1),
        }
    }

    fn answers(&self, endpoint: &'static str, status: StatusCode) -> Counter {
        metrics::counter!(
            "ct_http_requests_total",
            "log" => self.log.to_string(),
            "endpoint" => endpoint,
            "status" => status.as_u16().to_string()
        )
    }
}

/// Middleware counting every request of a log by endpoint and status, and
/// timing it.
pub async fn track(
    State(meters): State<Arc<RequestMeters>>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(OTHER, |p| endpoint_index(p.as_str()));
    let started = Instant::now();
    let response = next.run(request).await;
    meters.count(endpoint, response.status(), started.elapsed());
    response
}

/// The index in `ENDPOINTS` of a matched route pattern, or `OTHER`.
fn endpoint_index(route: &str) -> usize {
    ENDPOINTS
        .iter()
        .position(|(suffix, _)| route.ends_with(suffix))
        .unwrap_or(OTHER)
}
