//! Test support shared by the storage integration tests: the trait contract
//! every `ObjectStore` must keep, a real SeaweedFS (`weed mini`) per test, and
//! a scripted fake S3 endpoint for retry and timeout tests.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ct_storage::{ObjectStore, S3Config, S3Credentials, S3Options, S3Store, StorageError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------
// The ObjectStore contract.

/// A real gzip stream (`gzip -n` of "data tile bytes " × 8).
pub const GZIP_TILE: &[u8] = &[
    31, 139, 8, 0, 0, 0, 0, 0, 2, 255, 75, 73, 44, 73, 84, 40, 201, 204, 73, 85, 72, 170, 44, 73,
    45, 86, 72, 161, 51, 31, 0, 12, 232, 143, 206, 128, 0, 0, 0,
];

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
// Free loopback ports.

/// Ports handed out by this process, so two servers never get the same one.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// `count` free loopback ports whose +10000 (SeaweedFS gRPC) is free too.
fn free_port_pairs(count: usize) -> Vec<u16> {
    let mut taken = TAKEN.lock().unwrap();
    let taken = taken.get_or_insert_with(HashSet::new);
    let mut ports = Vec::new();
    for _ in 0..1000 {
        if ports.len() == count {
            break;
        }
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let Some(grpc) = port.checked_add(10_000) else {
            continue;
        };
        if taken.contains(&port) || taken.contains(&grpc) {
            continue;
        }
        if StdListener::bind(("127.0.0.1", grpc)).is_err() {
            continue;
        }
        taken.insert(port);
        taken.insert(grpc);
        ports.push(port);
    }
    assert_eq!(ports.len(), count, "could not find free port pairs");
    ports
}

// ---------------------------------------------------------------------------
// A real S3 server: SeaweedFS `weed mini`.

pub const ACCESS_KEY: &str = "ct-log-test-key";
pub const SECRET_KEY: &str = "ct-log-test-secret";
pub const BUCKET: &str = "ct-log-test";

/// The `weed` binary: `$WEED_BIN`, else `weed` on PATH.
fn weed_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("WEED_BIN").filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(bin));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("weed"))
        .find(|candidate| candidate.is_file())
}

/// A running `weed mini` with one bucket, killed (SIGKILL) on drop.
pub struct Weed {
    child: Child,
    ports: Vec<u16>,
    dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Weed {
    /// Starts a server, or returns `None` (after printing SKIPPED) when
    /// `weed` is not installed. Under CI a missing `weed` fails the test.
    pub async fn start() -> Option<Weed> {
        let Some(binary) = weed_binary() else {
            if std::env::var_os("CI").is_some() {
                panic!("weed not found (WEED_BIN or PATH): run scripts/seaweedfs.sh to install SeaweedFS");
            }
            eprintln!(
                "SKIPPED: weed not found (WEED_BIN or PATH); run scripts/seaweedfs.sh to install SeaweedFS"
            );
            return None;
        };
        let mut last_error = String::new();
        // A port taken between choosing and binding makes weed exit: retry.
        for _ in 0..3 {
            match Weed::try_start(&binary).await {
                Ok(weed) => return Some(weed),
                Err(e) => last_error = e,
            }
        }
        panic!("weed mini did not start: {last_error}");
    }

    async fn try_start(binary: &PathBuf) -> Result<Weed, String> {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_port_pairs(5);
        let [master, volume, filer, s3, admin] = ports[..] else {
            unreachable!()
        };
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let child = Command::new(binary)
            .arg("mini")
            .arg(format!("-dir={}", dir.path().join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-admin.port={admin}"))
            .args([
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            .arg(format!("-bucket={BUCKET}"))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let mut weed = Weed {
            child,
            ports,
            dir,
            endpoint: format!("http://127.0.0.1:{s3}"),
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = weed.child.try_wait() {
                return Err(format!("exited with {status}: {}", weed.log_tail()));
            }
            let probe = S3Options {
                max_attempts: 1,
                attempt_timeout: Duration::from_secs(2),
                ..weed.options()
            };
            match S3Store::open_with(weed.config(""), probe).await {
                Ok(_) => return Ok(weed),
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("not ready after 30 s: {e}: {}", weed.log_tail()))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// A configuration for the test bucket with `prefix`.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            prefix: prefix.to_string(),
            ..S3Config::new(BUCKET, Some(self.endpoint.clone()))
        }
    }

    /// Options with the server's credentials and short test timeouts.
    pub fn options(&self) -> S3Options {
        S3Options {
            credentials: Some(S3Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "test",
            )),
            ..S3Options::default()
        }
    }

    /// Opens a store on the test bucket under `prefix`.
    pub async fn store(&self, prefix: &str) -> S3Store {
        S3Store::open_with(self.config(prefix), self.options())
            .await
            .unwrap()
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        // SIGTERM takes 5–12 s; nothing here needs a clean shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // weed leaves /tmp/seaweedfs-<component>[-grpc]-<port>.sock behind.
        let ours: HashSet<String> = self
            .ports
            .iter()
            .flat_map(|&p| [p, p + 10_000])
            .map(|p| p.to_string())
            .collect();
        if let Ok(entries) = std::fs::read_dir("/tmp") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let port = name
                    .strip_prefix("seaweedfs-")
                    .and_then(|n| n.strip_suffix(".sock"))
                    .and_then(|n| n.rsplit('-').next());
                if port.is_some_and(|p| ours.contains(p)) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
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
