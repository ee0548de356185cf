//! Test support shared by the storage integration tests: the trait contract
//! every `ObjectStore` must keep, and a scripted fake S3 endpoint (with fast
//! retry options) for retry and timeout tests. The real SeaweedFS (`weed
//! mini`) the tests also run against comes from `ct_testkit::Weed`.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ct_storage::{
    ObjectStore, PutIf, S3Config, S3Credentials, S3Options, StorageError, WriteCondition,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------
// The ObjectStore contract.

/// A real gzip stream (`gzip -n` of "data tile bytes " × 8).
pub const GZIP_TILE: &[u8] = &[
    31, 139, 8, 0, 0, 0, 0, 0, 2, 255, 75, 73, 44, 73, 84, 40, 201, 204, 73, 85, 72, 170, 44, 73,
    45, 86, 72, 161, 51, 31, 0, 12, 232, 143, 206, 128, 0, 0, 0,
];

/// Conditional writes (what keeps the checkpoint from going backwards) and
/// prefix listing, on a store that holds tiles but no `cond/` object.
async fn exercise_conditional_writes(store: &dyn ObjectStore) {
    let key = "cond/checkpoint";
    assert_eq!(store.get_versioned(key).await.unwrap(), None);
    let absent = WriteCondition::Absent;
    let PutIf::Written(v1) = store
        .put_if(key, Bytes::from_static(b"1"), absent)
        .await
        .unwrap()
    else {
        panic!("a conditional create of a missing key succeeds");
    };
    let refused = store
        .put_if(key, Bytes::from_static(b"x"), absent)
        .await
        .unwrap();
    assert!(
        matches!(refused, PutIf::ConditionFailed { .. }),
        "{refused:?}"
    );
    let (data, version) = store.get_versioned(key).await.unwrap().unwrap();
    assert_eq!((data, &version), (Bytes::from_static(b"1"), &v1));
    let next = WriteCondition::Matches(&version);
    let PutIf::Written(v2) = store
        .put_if(key, Bytes::from_static(b"2"), next)
        .await
        .unwrap()
    else {
        panic!("a replace at the current version succeeds");
    };
    assert_ne!(v1, v2);
    let stale = store
        .put_if(key, Bytes::from_static(b"y"), next)
        .await
        .unwrap();
    assert!(matches!(stale, PutIf::ConditionFailed { .. }), "{stale:?}");
    assert_eq!(store.get(key).await.unwrap().unwrap(), "2");
    assert!(store.any_under("cond/").await.unwrap());
    assert!(store.any_under("tile/").await.unwrap());
    store
        .put("cond/a.p/1", Bytes::from_static(b"p"))
        .await
        .unwrap();
    store
        .put("cond/a.p/20", Bytes::from_static(b"p"))
        .await
        .unwrap();
    store
        .put("cond/a", Bytes::from_static(b"full"))
        .await
        .unwrap();
    assert_eq!(
        store.list("cond/a.p/", 10).await.unwrap(),
        ["cond/a.p/1", "cond/a.p/20"]
    );
    assert_eq!(store.list("cond/a.p/", 1).await.unwrap(), ["cond/a.p/1"]);
    assert_eq!(store.list("cond/", 10).await.unwrap().len(), 4);
    for key in ["cond/a.p/1", "cond/a.p/20", "cond/a"] {
        store.delete(key).await.unwrap();
    }
    assert!(store.list("cond/a.p/", 10).await.unwrap().is_empty());
    assert!(!store.any_under("nothing/").await.unwrap());
    store.delete(key).await.unwrap();
    assert!(!store.any_under("cond/").await.unwrap());
}

/// Checks the behaviour every object store must have. `store` must be empty.
pub async fn exercise_store(store: &dyn ObjectStore) {
    // Missing objects.
    assert_eq!(store.get("checkpoint").await.unwrap(), None);
    assert_eq!(store.get("tile/0/000").await.unwrap(), None);
    store.delete("checkpoint").await.unwrap();
    store.delete("tile/data/123").await.unwrap();

    // The checkpoint is mutable.
    store
        .put("checkpoint", Bytes::from_static(b"one\n"))
        .await
        .unwrap();
    assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "one\n");
    store
        .put("checkpoint", Bytes::from_static(b"two\n"))
        .await
        .unwrap();
    assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "two\n");

    // Tiles and issuers; a byte-identical rewrite is allowed.
    let hashes = Bytes::from((0..=255u8).cycle().take(32 * 256).collect::<Vec<u8>>());
    store.put("tile/0/000", hashes.clone()).await.unwrap();
    store.put("tile/0/000", hashes.clone()).await.unwrap();
    assert_eq!(store.get("tile/0/000").await.unwrap().unwrap(), hashes);
    store
        .put("tile/data/000.p/3", Bytes::from_static(GZIP_TILE))
        .await
        .unwrap();
    assert_eq!(
        store.get("tile/data/000.p/3").await.unwrap().unwrap(),
        GZIP_TILE,
        "data tiles come back as the gzip bytes stored"
    );
    let issuer = format!("issuer/{}", "ab".repeat(32));
    store
        .put(&issuer, Bytes::from_static(b"\x30\x82\x01\x00der"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&issuer).await.unwrap().unwrap(),
        &b"\x30\x82\x01\x00der"[..]
    );

    // Empty and larger objects.
    store.put("staging/0-empty", Bytes::new()).await.unwrap();
    assert_eq!(store.get("staging/0-empty").await.unwrap().unwrap(), "");
    let big: Bytes = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    store.put("staging/1-big", big.clone()).await.unwrap();
    assert_eq!(store.get("staging/1-big").await.unwrap().unwrap(), big);

    // Concurrent writes of distinct keys.
    let (a, b, c) = tokio::join!(
        store.put("tile/1/000.p/1", Bytes::from_static(b"a")),
        store.put("tile/1/001.p/1", Bytes::from_static(b"b")),
        store.put("tile/2/000.p/1", Bytes::from_static(b"c")),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(store.get("tile/1/001.p/1").await.unwrap().unwrap(), "b");

    exercise_conditional_writes(store).await;

    // Delete, twice.
    store.delete("staging/1-big").await.unwrap();
    store.delete("staging/1-big").await.unwrap();
    assert_eq!(store.get("staging/1-big").await.unwrap(), None);
    assert_eq!(store.get("tile/0/000").await.unwrap().unwrap(), hashes);

    // Keys that could escape or name a folder.
    for bad in ["../x", "/checkpoint", "tile//0", "tile/", ""] {
        assert!(
            matches!(store.get(bad).await, Err(StorageError::InvalidKey(_))),
            "get {bad:?}"
        );
        assert!(
            matches!(
                store.put(bad, Bytes::new()).await,
                Err(StorageError::InvalidKey(_))
            ),
            "put {bad:?}"
        );
        assert!(
            matches!(store.delete(bad).await, Err(StorageError::InvalidKey(_))),
            "delete {bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// A scripted fake S3 endpoint.

/// What the fake answers to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// An empty success (200 for GET/PUT/HEAD, 204 for DELETE).
    Ok,
    /// A 200 with this body.
    Body(Bytes),
    /// An S3 error document with this status and code.
    Error(u16, &'static str),
    /// Accept, read the request and never answer.
    Hang,
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

type Script = dyn Fn(&str, &str, usize) -> Reply + Send + Sync;

/// A loopback HTTP server that answers S3 requests from a script:
/// `script(method, path, n)` where `n` counts the requests with that method,
/// from 0. Stops on drop.
pub struct FakeS3 {
    pub endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeS3 {
    pub async fn start(
        script: impl Fn(&str, &str, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeS3 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                // Dropping the set (when the task is aborted) ends every
                // connection, hung ones included.
                let mut connections = tokio::task::JoinSet::new();
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    connections.spawn(serve(socket, script.clone(), seen.clone()));
                }
            }
        });
        FakeS3 {
            endpoint,
            seen,
            task,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests had `method`.
    pub fn count(&self, method: &str) -> usize {
        self.seen().iter().filter(|s| s.method == method).count()
    }

    /// A path-style configuration for bucket `bucket` on this endpoint.
    pub fn config(&self, bucket: &str) -> S3Config {
        S3Config::new(bucket, Some(self.endpoint.clone()))
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Fast test policy: short backoff, fixed credentials.
pub fn fast_options(max_attempts: u32) -> S3Options {
    S3Options {
        max_attempts,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(10),
        credentials: Some(S3Credentials::new("fake", "fake", None, None, "test")),
        ..S3Options::default()
    }
}

async fn serve(
    mut socket: tokio::net::TcpStream,
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    // Header block.
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_string();
    let target = request_line.next().unwrap_or("");
    // Without the query (`?x-id=PutObject`).
    let path = target.split('?').next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let _ = socket.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }
    let mut body = buffer[end..].to_vec();
    while body.len() < length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let n = {
        let mut seen = seen.lock().unwrap();
        let n = seen.iter().filter(|s| s.method == method).count();
        seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            headers: headers.clone(),
            body,
        });
        n
    };
    let (status, payload) = match script(&method, &path, n) {
        Reply::Hang => {
            std::future::pending::<()>().await;
            return;
        }
        Reply::Ok if method == "DELETE" => (204, Vec::new()),
        Reply::Ok => (200, Vec::new()),
        Reply::Body(bytes) => (200, bytes.to_vec()),
        Reply::Error(status, code) => (
            status,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>scripted {code}</Message><RequestId>fake</RequestId></Error>"
            )
            .into_bytes(),
        ),
    };
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    };
    let content_length = if method == "HEAD" { 0 } else { payload.len() };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {content_length}\r\nContent-Type: application/xml\r\nETag: \"fake\"\r\nx-amz-request-id: fake\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    if method != "HEAD" && status != 204 {
        response.extend_from_slice(&payload);
    }
    let _ = socket.write_all(&response).await;
    let _ = socket.shutdown().await;
}
