//! HTTP helpers: raw GET/POST against the server, add-(pre-)chain submission
//! and SCT parsing, and concurrent bulk submission.

use std::sync::Arc;
use std::time::Duration;

use base64::prelude::*;
use reqwest::header::HeaderMap;

use crate::server::LogHandle;

/// An HTTP client for 127.0.0.1: no proxy, no decompression, 60 s timeout.
pub fn http_client() -> reqwest::Client {
    http_client_with_timeout(Duration::from_secs(60))
}

/// [`http_client`] with another whole-request timeout (e.g. a short one for
/// polling servers that may be paused).
pub fn http_client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .pool_max_idle_per_host(64)
        .build()
        .expect("reqwest client")
}

/// An HTTP client that opens a fresh connection for every request: for
/// hostile requests after which the server may close the connection it
/// answered on (a body refused before it was read), which a pooled client
/// could otherwise reuse as it closes.
pub fn unpooled_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()
        .expect("reqwest client")
}

/// The value of one series of a Prometheus text exposition, given exactly as
/// it is printed before the value, e.g. `ct_tree_size{log="x"}`.
pub fn series_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| match line.rsplit_once(' ') {
            Some((s, value)) if s.trim_end() == series => value.parse().ok(),
            _ => None,
        })
}

/// GETs `<base>/metrics` and returns the value of `<name>{log="<log>"}`;
/// Err when the server does not answer 200, None when the series is absent.
pub async fn log_metric(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    log: &str,
) -> Result<Option<f64>, String> {
    let r = try_get(http, &format!("{base}/metrics")).await?;
    if r.status != 200 {
        return Err(format!("GET {base}/metrics: status {}", r.status));
    }
    Ok(series_value(&r.text(), &format!("{name}{{log=\"{log}\"}}")))
}

/// A fully read HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// A header as a string (empty if absent).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("<non-ascii>").to_string())
            .unwrap_or_default()
    }

    /// The body as (lossy) text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn try_finish(r: Result<reqwest::Response, reqwest::Error>) -> Result<Resp, String> {
    let r = r.map_err(|e| format!("request failed: {e:?}"))?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .bytes()
        .await
        .map_err(|e| format!("reading body failed: {e:?}"))?
        .to_vec();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

async fn finish(what: &str, r: Result<reqwest::Response, reqwest::Error>) -> Resp {
    try_finish(r)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// GET `url`.
pub async fn get(http: &reqwest::Client, url: &str) -> Resp {
    finish(&format!("GET {url}"), http.get(url).send().await).await
}

/// GET `url`; Err (instead of a panic) when no complete response arrives,
/// e.g. because the server was killed.
pub async fn try_get(http: &reqwest::Client, url: &str) -> Result<Resp, String> {
    try_finish(http.get(url).send().await)
        .await
        .map_err(|e| format!("GET {url}: {e}"))
}

/// POST `body` to `url` with `Content-Type: application/json`.
pub async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Resp {
    finish(
        &format!("POST {url}"),
        http.post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await,
    )
    .await
}

/// `{"chain":["<b64>",...]}`
pub fn chain_body(chain: &[Vec<u8>]) -> Vec<u8> {
    let certs: Vec<String> = chain.iter().map(|c| BASE64_STANDARD.encode(c)).collect();
    serde_json::to_vec(&serde_json::json!({ "chain": certs })).unwrap()
}

/// URL of an endpoint under the log's submission prefix, e.g. `ct/v1/add-chain`.
pub fn submission_url(base: &str, log: &LogHandle, endpoint: &str) -> String {
    format!("{base}{}/{endpoint}", log.submission_path)
}

/// URL of an object under the log's monitoring prefix, e.g. `checkpoint`.
pub fn monitoring_url(base: &str, log: &LogHandle, object: &str) -> String {
    format!("{base}{}/{object}", log.monitoring_path)
}

/// The add-(pre-)chain endpoint for a kind of entry.
pub fn add_endpoint(precert: bool) -> &'static str {
    if precert {
        "ct/v1/add-pre-chain"
    } else {
        "ct/v1/add-chain"
    }
}

/// The fields of an add-(pre-)chain response, base64-decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sct {
    pub id: Vec<u8>,
    pub timestamp: u64,
    pub extensions: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Parses an add-(pre-)chain 200 body strictly: `sct_version` 0, all four
/// other fields present with the right JSON types and valid base64.
pub fn parse_sct(body: &[u8]) -> Result<Sct, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("SCT response is not JSON: {e}"))?;
    if v.get("sct_version").and_then(|x| x.as_u64()) != Some(0) {
        return Err(format!("sct_version is not the number 0 in {v}"));
    }
    let b64 = |k: &str| -> Result<Vec<u8>, String> {
        let s = v
            .get(k)
            .and_then(|x| x.as_str())
            .ok_or_else(|| format!("missing string field {k:?} in {v}"))?;
        BASE64_STANDARD
            .decode(s)
            .map_err(|e| format!("field {k:?} is not base64: {e}"))
    };
    Ok(Sct {
        id: b64("id")?,
        timestamp: v
            .get("timestamp")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| format!("missing numeric timestamp in {v}"))?,
        extensions: b64("extensions")?,
        signature: b64("signature")?,
    })
}

/// A successful submission and the SCT the log returned for it.
#[derive(Clone, Debug)]
pub struct Submission {
    /// The chain exactly as submitted (leaf first).
    pub chain: Vec<Vec<u8>>,
    pub precert: bool,
    pub sct: Sct,
}

/// Submits `chain` to add-chain (or add-pre-chain). Ok only on 200 with an
/// `application/json` well-formed SCT; Err describes the status and body.
pub async fn add(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    chain: &[Vec<u8>],
    precert: bool,
) -> Result<Submission, String> {
    let url = submission_url(base, log, add_endpoint(precert));
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body(chain_body(chain))
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e:?}"))?;
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let body = r
        .bytes()
        .await
        .map_err(|e| format!("POST {url}: body: {e:?}"))?;
    if status != 200 {
        return Err(format!(
            "POST {url}: status {status}, body {:?}",
            String::from_utf8_lossy(&body)
        ));
    }
    if !ctype.to_ascii_lowercase().starts_with("application/json") {
        return Err(format!(
            "POST {url}: 200 with Content-Type {ctype:?}, expected application/json"
        ));
    }
    let sct = parse_sct(&body).map_err(|e| format!("POST {url}: {e}"))?;
    Ok(Submission {
        chain: chain.to_vec(),
        precert,
        sct,
    })
}

/// The leaf index an SCT names (its leaf_index extension: type 0, length
/// 5, 40-bit big-endian index).
pub fn leaf_index(sub: &Submission) -> u64 {
    match sub.sct.extensions[..] {
        [0, 0, 5, ref index @ ..] if index.len() == 5 => {
            index.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        }
        ref other => panic!("SCT extensions {other:02x?} are not one leaf_index extension"),
    }
}

/// The HTTP status in an error returned by [`add`], or None when the
/// server gave no (complete) answer (transport error, e.g. a killed server).
pub fn add_error_status(err: &str) -> Option<u16> {
    let rest = err.split_once(": status ")?.1;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Submits every `(chain, precert)` with at most `in_flight` requests at a
/// time; returns each outcome in input order (Err = status/body or
/// transport error).
pub async fn submit_all_results(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    items: Vec<(Vec<Vec<u8>>, bool)>,
    in_flight: usize,
) -> Vec<Result<Submission, String>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    let n = items.len();
    for (i, (chain, precert)) in items.into_iter().enumerate() {
        let (http, base, log, sem) = (http.clone(), base.to_string(), log.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            (i, add(&http, &base, &log, &chain, precert).await)
        });
    }
    let mut out: Vec<Option<Result<Submission, String>>> = vec![None; n];
    while let Some(joined) = tasks.join_next().await {
        let (i, r) = joined.expect("submission task panicked");
        out[i] = Some(r);
    }
    out.into_iter().map(Option::unwrap).collect()
}

/// Like [`submit_all_results`], but panics listing the failures if any
/// submission does not get a 200 + SCT.
pub async fn submit_all(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    items: Vec<(Vec<Vec<u8>>, bool)>,
    in_flight: usize,
) -> Vec<Submission> {
    let n = items.len();
    let results = submit_all_results(http, base, log, items, in_flight).await;
    let errors: Vec<String> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| format!("#{i}: {e}")))
        .collect();
    if !errors.is_empty() {
        panic!(
            "{} of {n} submissions failed; first ones:\n{}",
            errors.len(),
            errors
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    results.into_iter().map(Result::unwrap).collect()
}
