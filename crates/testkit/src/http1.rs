//! Just enough HTTP/1.1 for the test kit's small servers (the careless S3
//! server, the fake instance metadata service, the credential gate): one
//! request at a time on each keep-alive connection, answers with a
//! `Content-Length`, loopback only, every loop bounded.

use std::collections::BTreeMap;
use std::future::Future;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request: method, path and query as sent, headers (lowercase names),
/// body.
pub(crate) struct Request {
    pub method: String,
    pub target: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// One answer: status, extra headers, body.
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// An S3-style XML error.
    pub fn s3_error(status: u16, code: &str, message: &str) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        Response::new(status, body).header("Content-Type", "application/xml")
    }
}

/// Accepts connections on `listener` until the returned task is aborted, and
/// answers each request with `answer`.
pub(crate) fn serve<F, Fut>(listener: TcpListener, answer: F) -> JoinHandle<()>
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, answer.clone()));
        }
    })
}

async fn connection<F, Fut>(stream: TcpStream, answer: F)
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let mut stream = BufReader::new(stream);
    // Keep-alive, one request at a time, until the client closes.
    for _ in 0..100_000 {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        let head_only = request.method == "HEAD";
        let response = answer(request).await;
        if write_response(stream.get_mut(), response, head_only)
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn write_response(
    out: &mut TcpStream,
    response: Response,
    head_only: bool,
) -> std::io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status");
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nDate: {date}\r\nContent-Length: {}\r\n",
        response.status,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes()).await?;
    if !head_only {
        out.write_all(&response.body).await?;
    }
    Ok(())
}

async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    stream.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = BTreeMap::new();
    for _ in 0..200 {
        let mut header = String::new();
        stream.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    if headers
        .get("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        stream
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .ok()?;
    }
    let length: usize = headers
        .get("content-length")
        .map_or(Some(0), |l| l.parse().ok())?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}
