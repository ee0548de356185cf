//! An S3-compatible server that ignores conditional writes, as some real
//! ones do (`If-Match`, `If-None-Match`): every PUT lands. Just enough of
//! S3 for `ct_storage::S3Store` (path-style HeadBucket, PutObject,
//! GetObject, DeleteObject, ListObjectsV2 with `max-keys`), over plain HTTP
//! on loopback, objects in memory, signatures not checked. The log must
//! refuse such a store rather than trust its compare-and-swap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

type Objects = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

/// A running careless S3 server; stops when dropped.
pub struct CarelessS3 {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CarelessS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CarelessS3 {
    pub async fn start() -> CarelessS3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let objects = Objects::default();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, objects.clone()));
            }
        });
        CarelessS3 { endpoint, task }
    }
}

/// One request: method, path and query, headers (lowercase names), body.
struct Request {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

async fn serve(stream: TcpStream, objects: Objects) {
    let mut stream = BufReader::new(stream);
    // Keep-alive, one request at a time, until the client closes.
    for _ in 0..100_000 {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        let (status, headers, body) = answer(&request, &objects);
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut head = format!(
            "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let out = stream.get_mut();
        if out.write_all(head.as_bytes()).await.is_err() || out.write_all(&body).await.is_err() {
            return;
        }
    }
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

fn etag(data: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(data)[..16]))
}

/// The status line's tail, extra headers and body for `request`.
fn answer(request: &Request, objects: &Objects) -> (&'static str, Vec<(String, String)>, Vec<u8>) {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let key = path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, key)| key.to_string())
        .filter(|key| !key.is_empty());
    let mut objects = objects.lock().unwrap();
    let _ = &request.headers; // conditions ignored: that is the point
    match (request.method.as_str(), key) {
        ("HEAD", None) => ("200 OK", vec![], vec![]),
        ("GET", None) => ("200 OK", xml(), list(&objects, query)),
        ("PUT", Some(key)) => {
            let tag = etag(&request.body);
            objects.insert(key, request.body.clone());
            ("200 OK", vec![("ETag".into(), tag)], vec![])
        }
        ("GET", Some(key)) => match objects.get(&key) {
            Some(data) => ("200 OK", vec![("ETag".into(), etag(data))], data.clone()),
            None => ("404 Not Found", xml(), no_such_key()),
        },
        ("DELETE", Some(key)) => {
            objects.remove(&key);
            ("204 No Content", vec![], vec![])
        }
        _ => ("405 Method Not Allowed", vec![], vec![]),
    }
}

fn xml() -> Vec<(String, String)> {
    vec![("Content-Type".into(), "application/xml".into())]
}

fn no_such_key() -> Vec<u8> {
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>".to_vec()
}

/// A ListObjectsV2 answer for `prefix=` in `query` (at most one key).
fn list(objects: &BTreeMap<String, Vec<u8>>, query: &str) -> Vec<u8> {
    let prefix = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("prefix="))
        .map(|p| p.replace("%2F", "/"))
        .unwrap_or_default();
    let found: Vec<&String> = objects
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .take(1)
        .collect();
    let contents: String = found
        .iter()
        .map(|k| format!("<Contents><Key>{k}</Key><Size>1</Size></Contents>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name><Prefix>{prefix}</Prefix><KeyCount>{}</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
        found.len()
    )
    .into_bytes()
}
