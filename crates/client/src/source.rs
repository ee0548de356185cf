//! Where a log's objects come from: an `http(s)://` prefix or a local
//! directory (`file://` URL or plain path), behind one bounded `get`.
//!
//! HTTP requests have timeouts and a bounded number of retries (transport
//! errors, 429 and 5xx only); every body is read under a size cap, so a
//! hostile or broken server can neither hang nor exhaust the client.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{CONTENT_ENCODING, CONTENT_LENGTH, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use crate::{Error, Result};

/// Timeout of one whole HTTP request, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per request, the first included.
const ATTEMPTS: u32 = 4;
/// First retry delay; doubles after each attempt.
const BACKOFF: Duration = Duration::from_millis(250);
/// A `Retry-After` longer than this is cut short: the retries stay bounded.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// A fetched object. `gzip` is true when the server said
/// `Content-Encoding: gzip`; the bytes are still compressed.
pub struct Object {
    pub bytes: Vec<u8>,
    pub gzip: bool,
}

/// A log's root location.
#[derive(Clone, Debug)]
pub enum Source {
    Http {
        client: reqwest::Client,
        base: String,
    },
    Dir(PathBuf),
}

impl Source {
    /// `https://host/prefix`, `file:///path` or a plain path.
    pub fn parse(location: &str) -> Result<Source> {
        if location.starts_with("http://") || location.starts_with("https://") {
            let client = reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .user_agent(concat!("ct-client/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| Error::Usage(format!("HTTP client: {e}")))?;
            let base = location.trim_end_matches('/').to_string();
            return Ok(Source::Http { client, base });
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        if path.is_empty() {
            return Err(Error::Usage("empty log location".into()));
        }
        Ok(Source::Dir(PathBuf::from(path)))
    }

    /// The full URL or file path of `path`, for messages.
    pub fn describe(&self, path: &str) -> String {
        match self {
            Source::Http { base, .. } => format!("{base}/{path}"),
            Source::Dir(dir) => dir.join(path).display().to_string(),
        }
    }

    /// Reads `path` (relative, no leading slash). `Ok(None)` when it does not
    /// exist; [`Error::TooLarge`] beyond `limit` bytes.
    pub async fn get(&self, path: &str, limit: u64) -> Result<Option<Object>> {
        match self {
            Source::Http { client, base } => {
                let url = format!("{base}/{path}");
                let response = send_with_retries(&url, || client.get(&url)).await?;
                if response.status() == StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                let response = ok_status(&url, response)?;
                let gzip = response
                    .headers()
                    .get(CONTENT_ENCODING)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
                let bytes = read_capped(&url, response, limit).await?;
                Ok(Some(Object { bytes, gzip }))
            }
            Source::Dir(dir) => read_file(dir.join(path), limit).await,
        }
    }

    /// POSTs a JSON body (HTTP only); returns the status and the capped body.
    /// A 503 is retried like a transport error, honouring `Retry-After`.
    pub async fn post_json(&self, path: &str, body: Vec<u8>, limit: u64) -> Result<(u16, Vec<u8>)> {
        let Source::Http { client, base } = self else {
            return Err(Error::Usage(
                "submissions need an http(s):// submission prefix".into(),
            ));
        };
        let url = format!("{base}/{path}");
        let response = send_with_retries(&url, || {
            client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await?;
        let status = response.status().as_u16();
        Ok((status, read_capped(&url, response, limit).await?))
    }
}

/// Sends the request built by `build`, retrying transport errors, 429 and
/// 5xx at most [`ATTEMPTS`] times in all. The last answer is returned as is.
async fn send_with_retries(
    url: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Response> {
    let mut delay = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let last = attempt == ATTEMPTS;
        match build().send().await {
            Ok(r) if last || !retryable(r.status()) => return Ok(r),
            Ok(r) => delay = retry_after(&r).unwrap_or(delay),
            Err(e) if last => {
                return Err(Error::Fetch {
                    object: url.to_string(),
                    reason: format!("{e} (after {ATTEMPTS} attempts)"),
                })
            }
            Err(_) => {}
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the last attempt always returns")
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds, capped at [`MAX_RETRY_AFTER`].
fn retry_after(r: &Response) -> Option<Duration> {
    let secs: u64 = r.headers().get(RETRY_AFTER)?.to_str().ok()?.parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

fn ok_status(url: &str, response: Response) -> Result<Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    Err(Error::Fetch {
        object: url.to_string(),
        reason: format!("HTTP {}", response.status()),
    })
}

/// Reads the body chunk by chunk and stops as soon as it passes `limit`.
async fn read_capped(url: &str, mut response: Response, limit: u64) -> Result<Vec<u8>> {
    let too_large = || Error::TooLarge {
        object: url.to_string(),
        limit,
    };
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| Error::Fetch {
            object: url.to_string(),
            reason: format!("reading body: {e}"),
        })?;
        let Some(chunk) = chunk else { return Ok(body) };
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
}

async fn read_file(path: PathBuf, limit: u64) -> Result<Option<Object>> {
    let io_error = |e: std::io::Error| Error::Fetch {
        object: path.display().to_string(),
        reason: e.to_string(),
    };
    let metadata = match tokio::fs::metadata(&path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    if metadata.len() > limit {
        return Err(Error::TooLarge {
            object: path.display().to_string(),
            limit,
        });
    }
    let bytes = tokio::fs::read(&path).await.map_err(io_error)?;
    Ok(Some(Object { bytes, gzip: false }))
}
