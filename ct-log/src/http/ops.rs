//! The operator's side of the HTTP server: Prometheus metrics, the health
//! check, a plain-HTML home page, and each log's `log.v3.json` metadata.
//!
//! All of it reads shared state (each log's latest published checkpoint and
//! its static info); none of it can change a log.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use ct_storage::LockBackend;

use crate::acme::Certificates;
use crate::log::Log;

/// The maximum merge delay log.v3.json announces. SCTs are only handed out
/// for entries already in a published checkpoint (a zero merge delay), and a
/// checkpoint is signed every round, so a minute is a wide margin.
const MMD_SECONDS: u64 = 60;

/// What the operator endpoints read.
pub struct Ops {
    pub logs: Vec<Arc<Log>>,
    pub metrics: PrometheusHandle,
    /// The lock backend, when this process may sequence: it knows whether
    /// this machine's clock is fit to.
    pub lock: Option<Arc<dyn LockBackend>>,
    /// The HTTPS certificate from an ACME CA, if `acme` is configured.
    pub acme: Option<Arc<Certificates>>,
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How old a log's latest published checkpoint is.
fn checkpoint_age(log: &Log) -> Duration {
    let published = log.published.borrow().as_ref().map(|c| c.timestamp);
    // No checkpoint yet (a new log another process has not created): as
    // stale as can be.
    published.map_or(Duration::MAX, |t| {
        Duration::from_millis(now_millis().saturating_sub(t))
    })
}

/// A log is healthy while its checkpoint is at most a few periods old.
fn is_fresh(log: &Log) -> bool {
    checkpoint_age(log) <= log.info.period * 5 + Duration::from_secs(5)
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    for log in &ops.logs {
        let age = checkpoint_age(log).as_secs_f64();
        metrics::gauge!("ct_checkpoint_age_seconds", "log" => log.info.name.clone()).set(age);
    }
    let body = ops.metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `GET /health`: 200 when every log published a checkpoint within a few
/// periods and nothing needs an operator; else 503 naming each problem (a
/// stale log, a clock unfit to sign with, no valid ACME certificate).
pub async fn health(State(ops): State<Arc<Ops>>) -> Response {
    let stale: Vec<String> = ops
        .logs
        .iter()
        .filter(|log| !is_fresh(log))
        .map(|log| match checkpoint_age(log) {
            Duration::MAX => format!("{} (no checkpoint yet)", log.info.name),
            age => format!("{} (checkpoint {}s old)", log.info.name, age.as_secs()),
        })
        .collect();
    let mut problems: Vec<String> = ops
        .logs
        .iter()
        .filter_map(|log| {
            let trouble = log.sequencing.active_here()?.sequencer.trouble()?;
            Some(format!("{}: {trouble}", log.info.name))
        })
        .collect();
    problems.extend(ops.lock.as_ref().and_then(|lock| lock.clock_problem()));
    problems.extend(ops.acme.as_ref().and_then(|acme| acme.problem()));
    problems.extend(ops.logs.iter().filter_map(|log| {
        let problem = log.roots.fetch_problem()?;
        Some(format!("{}: {problem}", log.info.name))
    }));
    if !stale.is_empty() {
        problems.insert(0, format!("stale: {}", stale.join(", ")));
    }
    if problems.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", problems.join("; ")),
        )
            .into_response()
    }
}

fn rfc3339(unix_seconds: u64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn status(log: &Log) -> &'static str {
    let now = now_millis() / 1000;
    match (log.is_read_only(now), is_fresh(log)) {
        (true, _) => "read-only",
        (false, true) => "accepting",
        (false, false) => "stale",
    }
}

/// `GET <submission prefix>/log.v3.json`: the log's entry for a CT log list,
/// with both APIs: `submission_url` and `monitoring_url` as a tiled
/// (static CT) log, and `url` as an RFC 6962 log, whose read API is served
/// under the submission prefix.
pub async fn log_metadata(State(log): State<Arc<Log>>) -> Json<serde_json::Value> {
    let info = &log.info;
    let origin = ct_formats::origin_from_prefix(&info.submission_prefix);
    Json(json!({
        "description": info.description,
        "log_id": B64.encode(log.key.log_id()),
        "key": B64.encode(log.key.spki_der()),
        "note_verifier_key": ct_formats::note_verifier_key(&origin, &log.key),
        "cosignature_verifier_keys": log
            .cosigners
            .iter()
            .map(|c| (c.algorithm().to_string(), json!(c.verifier_key())))
            .collect::<serde_json::Map<_, _>>(),
        "mmd": MMD_SECONDS,
        "url": with_slash(&info.submission_prefix),
        "submission_url": with_slash(&info.submission_prefix),
        "monitoring_url": with_slash(&info.monitoring_prefix),
        "temporal_interval": {
            "start_inclusive": rfc3339(info.not_after_start),
            "end_exclusive": rfc3339(info.not_after_limit),
        },
        "state": status(&log),
    }))
}

fn with_slash(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How old a log's checkpoint is, in words: `12 s`, or `–` before the first.
fn age_text(log: &Log) -> String {
    match checkpoint_age(log) {
        Duration::MAX => "–".to_string(),
        age => format!("{} s", age.as_secs()),
    }
}

/// The tree size of a log's latest checkpoint, in words.
fn size_text(log: &Log) -> String {
    let published = log.published.borrow();
    published
        .as_ref()
        .map_or("none yet".into(), |c| c.checkpoint.size.to_string())
}

/// One row of the home page's overview table.
fn summary_row(log: &Log) -> String {
    let info = &log.info;
    format!(
        "<tr><td><a href=\"#{anchor}\">{name}</a></td><td>{description}</td><td>{size}</td>\
         <td>{age}</td><td>{status}</td></tr>\n",
        anchor = escape(&info.name),
        name = escape(&info.name),
        description = escape(&info.description),
        size = size_text(log),
        age = age_text(log),
        status = status(log),
    )
}

/// What a monitor operator or a log-list reviewer needs of one log: its
/// identity and key, its promises, its latest round and where to read it.
fn log_section(log: &Log) -> String {
    let info = &log.info;
    let origin = ct_formats::origin_from_prefix(&info.submission_prefix);
    let sub = escape(&with_slash(&info.submission_prefix));
    let mon = escape(&with_slash(&info.monitoring_prefix));
    format!(
        "<section id=\"{name}\">\n<h2>{name}</h2>\n<dl>\n\
         <dt>Description</dt><dd>{description}</dd>\n\
         <dt>Log ID (base64)</dt><dd><code>{id_b64}</code></dd>\n\
         <dt>Log ID (hex)</dt><dd><code>{id_hex}</code></dd>\n\
         <dt>State</dt><dd>{status}</dd>\n\
         <dt>Maximum merge delay (MMD)</dt><dd>{mmd} s</dd>\n\
         <dt>Temporal interval (leaf NotAfter)</dt><dd>{start} (inclusive) to {limit} (exclusive)</dd>\n\
         <dt>Last round</dt><dd>tree size {size}, checkpoint age {age}</dd>\n\
         <dt>Submission URL</dt><dd><a href=\"{sub}\">{sub}</a></dd>\n\
         <dt>Monitoring URL (static CT API)</dt><dd><a href=\"{mon}\">{mon}</a></dd>\n\
         <dt>RFC 6962 API</dt><dd><a href=\"{sub}ct/v1/get-sth\">{sub}ct/v1/</a></dd>\n\
         <dt>Read</dt><dd><a href=\"{mon}checkpoint\">checkpoint</a> · \
         <a href=\"{sub}log.v3.json\">log.v3.json</a> · \
         <a href=\"{sub}ct/v1/get-roots\">get-roots</a></dd>\n\
         <dt>Accepted roots</dt><dd>{roots}</dd>\n\
         <dt>Note verifier key</dt><dd><code>{vkey}</code></dd>\n\
         {cosigners}<dt>Public key</dt><dd><pre>{pem}</pre></dd>\n</dl>\n</section>\n",
        name = escape(&info.name),
        description = escape(&info.description),
        id_b64 = B64.encode(log.key.log_id()),
        id_hex = hex::encode(log.key.log_id()),
        status = status(log),
        mmd = MMD_SECONDS,
        start = rfc3339(info.not_after_start),
        limit = rfc3339(info.not_after_limit),
        size = size_text(log),
        age = age_text(log),
        roots = log.roots().len(),
        vkey = escape(&ct_formats::note_verifier_key(&origin, &log.key)),
        cosigners = cosigner_rows(log),
        pem = escape(log.key.public_key_pem().trim_end()),
    )
}

/// The verifier keys of the log's cosignatures, one `<dt>`/`<dd>` each.
fn cosigner_rows(log: &Log) -> String {
    log.cosigners
        .iter()
        .map(|c| {
            format!(
                "<dt>{} verifier key</dt><dd><code>{}</code></dd>\n",
                c.description(),
                escape(&c.verifier_key())
            )
        })
        .collect()
}

/// `GET /`: every log at a glance, then each in full, as plain HTML that
/// reads the same without JavaScript (it has none).
pub async fn home(State(ops): State<Arc<Ops>>) -> Html<String> {
    let rows: String = ops.logs.iter().map(|log| summary_row(log)).collect();
    let sections: String = ops.logs.iter().map(|log| log_section(log)).collect();
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ct-log</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:70em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}\
         dt{{font-weight:bold;margin-top:.5em}}code,pre{{overflow-wrap:anywhere;white-space:pre-wrap}}\
         pre{{user-select:all;background:#f4f4f4;padding:.5em;display:inline-block}}</style></head>\n\
         <body><h1>Certificate Transparency logs</h1>\n<table>\n<tr><th>log</th><th>description</th>\
         <th>tree size</th><th>checkpoint age</th><th>state</th></tr>\n{rows}</table>\n{sections}\
         <p>ct-log {version} · <a href=\"/metrics\">metrics</a> · <a href=\"/health\">health</a></p>\
         </body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    ))
}
