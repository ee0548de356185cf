//! An S3-compatible server that ignores conditional writes, as some real
//! ones do (`If-Match`, `If-None-Match`): every PUT lands. Just enough of
//! S3 for `ct_storage::S3Store` (path-style HeadBucket, PutObject,
//! GetObject, DeleteObject, ListObjectsV2 with `max-keys`), over plain HTTP
//! on loopback, objects in memory, signatures not checked. The log must
//! refuse such a store rather than trust its compare-and-swap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::http1::{serve, Request, Response};

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
        let task = serve(listener, move |request| {
            let answer = answer(&request, &objects);
            async move { answer }
        });
        CarelessS3 { endpoint, task }
    }
}

fn etag(data: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(data)[..16]))
}

/// The answer to `request`.
fn answer(request: &Request, objects: &Objects) -> Response {
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
        ("HEAD", None) => Response::new(200, ""),
        ("GET", None) => {
            Response::new(200, list(&objects, query)).header("Content-Type", "application/xml")
        }
        ("PUT", Some(key)) => {
            let tag = etag(&request.body);
            objects.insert(key, request.body.clone());
            Response::new(200, "").header("ETag", tag)
        }
        ("GET", Some(key)) => match objects.get(&key) {
            Some(data) => Response::new(200, data.clone()).header("ETag", etag(data)),
            None => Response::s3_error(404, "NoSuchKey", "no such key"),
        },
        ("DELETE", Some(key)) => {
            objects.remove(&key);
            Response::new(204, "")
        }
        _ => Response::new(405, ""),
    }
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
