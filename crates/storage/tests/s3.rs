//! `S3Store` against a real S3 server (SeaweedFS `weed mini`, one per test;
//! SKIPPED without `weed` unless CI is set) and against a scripted fake
//! endpoint for retries and timeouts.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ct_storage::{ObjectStore, S3Config, S3Credentials, S3Options, S3Store, StorageError};
use ct_testkit::Weed;
use support::{exercise_store, fast_options, FakeS3, Reply, GZIP_TILE};

fn message(err: &StorageError) -> String {
    let text = err.to_string();
    assert!(
        !text.contains('\n'),
        "error messages are one line: {text:?}"
    );
    text
}

// ---------------------------------------------------------------------------
// A real server.

#[tokio::test]
async fn s3_store_keeps_the_contract_under_a_prefix() {
    let Some(weed) = Weed::start().await else {
        return;
    };
    // Leading, trailing and doubled slashes are normalised away.
    let store = weed.store("/logs//2026h1/").await;
    exercise_store(&store).await;
    assert_eq!(store.object_key("checkpoint"), "logs/2026h1/checkpoint");

    // Every object really is under the prefix, path-style on the endpoint.
    let listed = store
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&"logs/2026h1/checkpoint"), "{keys:?}");
    assert!(keys.contains(&"logs/2026h1/tile/data/000.p/3"), "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("logs/2026h1/")),
        "{keys:?}"
    );

    // A store without a prefix shares the bucket but not the objects.
    let root = weed.store("").await;
    assert_eq!(root.get("checkpoint").await.unwrap(), None);
    root.put("checkpoint", Bytes::from_static(b"root\n"))
        .await
        .unwrap();
    assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "two\n");
    assert_eq!(root.get("checkpoint").await.unwrap().unwrap(), "root\n");
    root.delete("checkpoint").await.unwrap();
    assert_eq!(root.get("checkpoint").await.unwrap(), None);
    assert_eq!(store.retries() + root.retries(), 0);
}

/// SeaweedFS honours conditional writes, so the probe the server runs
/// before trusting a bucket passes, and its clock agrees with ours; a
/// server that ignores the conditions is refused.
#[tokio::test]
async fn the_conditional_write_probe_tells_honest_servers_from_careless_ones() {
    let Some(weed) = Weed::start().await else {
        return;
    };
    let store = weed.store("probe").await;
    ct_storage::probe_conditional_writes(&store, "_probe/x")
        .await
        .unwrap();
    assert_eq!(store.get("_probe/x").await.unwrap(), None, "cleaned up");
    let reading = store.clock_reading().await.unwrap();
    assert_eq!(reading.problem(), None, "{reading:?}");

    let careless = ct_testkit::careless_s3::CarelessS3::start().await;
    let config = S3Config {
        bucket: "careless".into(),
        endpoint: Some(careless.endpoint.clone()),
        region: "us-east-1".into(),
        prefix: String::new(),
        force_path_style: true,
    };
    let store = S3Store::open_with(config, fast_options(2)).await.unwrap();
    let err = ct_storage::probe_conditional_writes(&store, "_probe/x")
        .await
        .unwrap_err();
    assert!(message(&err).contains("ignores If-None-Match"), "{err}");
}

#[tokio::test]
async fn objects_carry_the_headers_monitors_need() {
    let Some(weed) = Weed::start().await else {
        return;
    };
    let store = weed.store("h").await;
    let issuer = format!("issuer/{}", "0f".repeat(32));
    let cases = [
        (
            "checkpoint",
            &b"origin\n1\nroot\n"[..],
            "text/plain; charset=utf-8",
            None,
            "no-store",
        ),
        (
            "tile/data/000.p/3",
            GZIP_TILE,
            "application/octet-stream",
            Some("gzip"),
            "public, max-age=604800, immutable",
        ),
        (
            "tile/0/000.p/3",
            &[7u8; 96][..],
            "application/octet-stream",
            None,
            "public, max-age=604800, immutable",
        ),
        (
            issuer.as_str(),
            b"\x30\x03\x02\x01\x01",
            "application/pkix-cert",
            None,
            "public, max-age=604800, immutable",
        ),
        (
            "staging/3-abcd",
            b"bundle",
            "application/octet-stream",
            None,
            "no-store",
        ),
    ];
    for (key, body, content_type, encoding, cache) in cases {
        store.put(key, Bytes::copy_from_slice(body)).await.unwrap();
        let object = store
            .client()
            .get_object()
            .bucket(store.bucket())
            .key(store.object_key(key))
            .send()
            .await
            .unwrap();
        assert_eq!(object.content_type(), Some(content_type), "{key}");
        assert_eq!(object.content_encoding(), encoding, "{key}");
        assert_eq!(object.cache_control(), Some(cache), "{key}");
        let stored = object.body.collect().await.unwrap().into_bytes();
        assert_eq!(
            stored, body,
            "{key}: bytes unchanged (gzip is not re-encoded)"
        );
        assert_eq!(store.get(key).await.unwrap().unwrap(), body, "{key}");
    }
}

#[tokio::test]
async fn open_fails_clearly_on_misconfiguration() {
    let Some(weed) = Weed::start().await else {
        return;
    };

    let missing = S3Store::open_with(
        S3Config::new("no-such-bucket", Some(weed.endpoint.clone())),
        weed.options(),
    )
    .await
    .unwrap_err();
    let text = message(&missing);
    assert!(
        text.contains("no-such-bucket") && text.contains("does not exist"),
        "{text}"
    );
    assert!(text.contains(&weed.endpoint), "{text}");

    let wrong_keys = S3Options {
        credentials: Some(S3Credentials::new(
            ct_testkit::ACCESS_KEY,
            "wrong-secret",
            None,
            None,
            "test",
        )),
        ..weed.options()
    };
    let denied = S3Store::open_with(weed.config(""), wrong_keys)
        .await
        .unwrap_err();
    let text = message(&denied);
    assert!(
        text.contains("403") && text.contains("credentials"),
        "{text}"
    );

    // Nothing listens on the endpoint: retried, then a clear failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let started = Instant::now();
    let refused = S3Store::open_with(
        S3Config::new(ct_testkit::BUCKET, Some(endpoint)),
        fast_options(3),
    )
    .await
    .unwrap_err();
    let text = message(&refused);
    assert!(text.contains("gave up after 3 attempts"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The right configuration works, path-style on a custom endpoint.
    let store = weed.store("").await;
    assert!(weed.config("").force_path_style);
    store
        .put("checkpoint", Bytes::from_static(b"ok"))
        .await
        .unwrap();
    assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "ok");
}

// ---------------------------------------------------------------------------
// A scripted endpoint: retries and timeouts.

#[tokio::test]
async fn transient_failures_are_retried_and_counted() {
    let fake = FakeS3::start(|method, _path, n| match (method, n) {
        ("PUT", 0 | 1) => Reply::Error(503, "SlowDown"),
        ("GET", 0) => Reply::Error(500, "InternalError"),
        ("GET", 1) => Reply::Error(429, "TooManyRequests"),
        ("GET", _) => Reply::Body(Bytes::from_static(b"tile bytes")),
        _ => Reply::Ok,
    })
    .await;
    let store = S3Store::open_with(fake.config("b1"), fast_options(4))
        .await
        .unwrap();
    assert_eq!(store.retries(), 0);
    store
        .put("tile/0/000", Bytes::from_static(b"tile bytes"))
        .await
        .unwrap();
    assert_eq!(store.retries(), 2);
    assert_eq!(fake.count("PUT"), 3);
    assert_eq!(
        store.get("tile/0/000").await.unwrap().unwrap(),
        "tile bytes"
    );
    assert_eq!(store.retries(), 4);
    assert_eq!(fake.count("GET"), 3);

    // Path-style: the bucket is the first path segment, and the body and
    // headers went out as given.
    let put = fake.seen().into_iter().find(|s| s.method == "PUT").unwrap();
    assert_eq!(put.path, "/b1/tile/0/000");
    assert_eq!(put.body, b"tile bytes");
    let header = |name: &str| {
        put.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header("cache-control"),
        Some("public, max-age=604800, immutable")
    );
    assert_eq!(header("content-type"), Some("application/octet-stream"));
    assert!(header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")));
    // The signature covers the payload's SHA-256 (integrity without the
    // optional checksum headers).
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"tile bytes"));
    assert_eq!(header("x-amz-content-sha256"), Some(digest.as_str()));
}

#[tokio::test]
async fn retries_are_bounded() {
    let fake = FakeS3::start(|method, _path, _| match method {
        "PUT" => Reply::Error(503, "ServiceUnavailable"),
        _ => Reply::Ok,
    })
    .await;
    let store = S3Store::open_with(fake.config("bucket"), fast_options(3))
        .await
        .unwrap();
    let err = store
        .put("checkpoint", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    let text = message(&err);
    assert!(matches!(err, StorageError::S3 { op: "put", .. }), "{err:?}");
    assert!(
        text.contains("checkpoint") && text.contains("503"),
        "{text}"
    );
    assert!(text.contains("gave up after 3 attempts"), "{text}");
    assert_eq!(fake.count("PUT"), 3);
    assert_eq!(store.retries(), 2);

    // Once the bound is spent, the next call starts afresh.
    store
        .put("checkpoint", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(fake.count("PUT"), 6);
    assert_eq!(store.retries(), 4);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = FakeS3::start(|method, path, _| match (method, path) {
        ("PUT", _) => Reply::Error(403, "AccessDenied"),
        ("GET", "/bucket/checkpoint") => Reply::Error(404, "NoSuchKey"),
        ("GET", _) => Reply::Error(400, "InvalidRequest"),
        ("DELETE", _) => Reply::Error(404, "NoSuchKey"),
        _ => Reply::Ok,
    })
    .await;
    let store = S3Store::open_with(fake.config("bucket"), fast_options(5))
        .await
        .unwrap();
    let err = store
        .put("tile/0/000", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    let text = message(&err);
    assert!(text.contains("403 AccessDenied"), "{text}");
    assert_eq!(store.get("checkpoint").await.unwrap(), None);
    let err = store.get("tile/0/000").await.unwrap_err();
    assert!(message(&err).contains("400 InvalidRequest"), "{err}");
    store.delete("checkpoint").await.unwrap();
    assert_eq!(
        (fake.count("PUT"), fake.count("GET"), fake.count("DELETE")),
        (1, 2, 1)
    );
    assert_eq!(store.retries(), 0);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_bound() {
    let fake = FakeS3::start(|method, _path, _| match method {
        "HEAD" => Reply::Ok,
        _ => Reply::Hang,
    })
    .await;
    let options = S3Options {
        attempt_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_secs(1),
        max_attempts: 10,
        ..fast_options(10)
    };
    let store = S3Store::open_with(fake.config("bucket"), options)
        .await
        .unwrap();
    let started = Instant::now();
    let err = store
        .put("checkpoint", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let text = message(&err);
    assert!(text.contains("timed out"), "{text}");
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_millis(2500),
        "gave up after {elapsed:?}"
    );
    // Timeouts are transient: at least one retry, and no more attempts than
    // fit in the total bound.
    let puts = fake.count("PUT");
    assert!((2..=5).contains(&puts), "{puts} attempts");
    assert_eq!(store.retries(), puts as u64 - 1);

    // The same bound holds for reads.
    let started = Instant::now();
    let err = store.get("checkpoint").await.unwrap_err();
    assert!(message(&err).contains("timed out"));
    assert!(started.elapsed() < Duration::from_millis(2500));
}
