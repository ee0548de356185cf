//! Every lock backend keeps the same contract (`ct_testkit::locks`):
//! memory, SQLite, S3 on a real SeaweedFS `weed mini`, and PostgreSQL on a
//! real server (those two print SKIPPED without their server unless CI is
//! set). The lease checks run on the backends whose claims are leases.
//! The S3 lock's answers to each kind of lost condition, and to a retried
//! write that had landed, are checked against a scripted endpoint.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use ct_storage::{
    LeaseOptions, LockBackend, LockError, MemoryLock, ObjectStore, S3Lock, S3Store, SqliteLock,
};
use ct_testkit::locks::{check_lease, check_lock};
use ct_testkit::{Postgres, Weed};
use support::{fast_options, FakeS3, Reply};

/// A lease record no live holder will replace for an hour.
fn intruder_record() -> Bytes {
    Bytes::from_static(b"intruder\n0\n3600000\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_lock_conforms() {
    let lock: Arc<dyn LockBackend> = Arc::new(MemoryLock::new());
    check_lock(|| {
        let lock = lock.clone();
        async move { lock }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lock_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock.db");
    check_lock(|| {
        let lock = SqliteLock::open(&path).unwrap();
        async move { Arc::new(lock) as Arc<dyn LockBackend> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_lock_conforms() {
    let Some(weed) = Weed::start().await else {
        return;
    };
    let weed = &weed;
    let store = |lease| async move {
        let store = Arc::new(weed.store("locks").await);
        Arc::new(S3Lock::with_lease(store, lease)) as Arc<dyn LockBackend>
    };
    check_lock(|| store(LeaseOptions::default())).await;
    let raw: S3Store = weed.store("locks").await;
    check_lease(store, |log| {
        let raw = &raw;
        async move {
            let key = format!("lock/{log}/lease");
            raw.put(&key, intruder_record()).await.unwrap();
        }
    })
    .await;

    check_unseen_renewal(&raw, weed).await;

    // The documented key layout, under the store's prefix.
    let checkpoint = raw.get("lock/cas-a/checkpoint").await.unwrap().unwrap();
    assert_eq!(checkpoint, (0..=255u8).collect::<Vec<u8>>());
    let lease = raw.get("lock/leased/lease").await.unwrap().unwrap();
    assert!(lease.ends_with(b"\n0\n"), "released: {lease:?}");
}

/// A renewal that landed although its answer was lost changes the lease's
/// ETag behind its holder's back; the holder must carry on, not give up.
async fn check_unseen_renewal(raw: &S3Store, weed: &Weed) {
    let lease = LeaseOptions::new(std::time::Duration::from_secs(2));
    let lock = S3Lock::with_lease(Arc::new(weed.store("locks").await), lease);
    let claim = lock.claim("unseen").await.unwrap();
    let key = "lock/unseen/lease";
    let record = raw.get(key).await.unwrap().unwrap();
    let holder = std::str::from_utf8(&record)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let landed = format!("{holder}\n1000\n2000\n");
    raw.put(key, Bytes::from(landed.clone())).await.unwrap();
    tokio::time::sleep(lease.ttl * 2).await;
    assert!(!claim.is_lost());
    let renewed = raw.get(key).await.unwrap().unwrap();
    assert!(
        renewed.starts_with(holder.as_bytes()) && renewed != landed,
        "{renewed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_conforms() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let postgres = &postgres;
    let open = |lease| async move { Arc::new(postgres.lock(lease).await) as Arc<dyn LockBackend> };
    check_lock(|| open(LeaseOptions::default())).await;
    let (client, connection) = tokio_postgres::connect(&postgres.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    check_lease(open, |log| {
        let client = &client;
        async move {
            let sql = "UPDATE ct_log_leases SET holder = 'intruder',
                       expires = clock_timestamp() + interval '1 hour' WHERE log_id = $1";
            assert_eq!(client.execute(sql, &[&log]).await.unwrap(), 1);
        }
    })
    .await;

    // The documented tables.
    let sql = "SELECT body FROM ct_log_checkpoints WHERE log_id = 'cas-a'";
    let body: Vec<u8> = client.query_one(sql, &[]).await.unwrap().get(0);
    assert_eq!(body, (0..=255u8).collect::<Vec<u8>>());
    let sql = "SELECT expires <= clock_timestamp() FROM ct_log_leases WHERE log_id = 'leased'";
    let released: bool = client.query_one(sql, &[]).await.unwrap().get(0);
    assert!(released);
}

/// An S3 lock on a scripted endpoint (see `FakeS3`), and the endpoint.
async fn scripted_lock(
    script: impl Fn(&str, &str, usize) -> Reply + Send + Sync + 'static,
) -> (S3Lock, FakeS3) {
    let fake = FakeS3::start(script).await;
    let store = S3Store::open_with(fake.config("bucket"), fast_options(3))
        .await
        .unwrap();
    (S3Lock::new(Arc::new(store)), fake)
}

/// Header `name` of the first `method` request the endpoint saw.
fn header(fake: &FakeS3, method: &str, name: &str) -> Option<String> {
    let request = fake.seen().into_iter().find(|s| s.method == method)?;
    let found = request.headers.into_iter().find(|(k, _)| k == name);
    found.map(|(_, v)| v)
}

#[tokio::test]
async fn s3_lock_swaps_with_if_match_and_recognises_its_own_retried_write() {
    // The first PUT's answer is lost (503); its retry then finds the
    // condition gone (412) because the first one landed: reading back shows
    // the new checkpoint, so the swap succeeded.
    let (lock, fake) = scripted_lock(|method, _, n| match (method, n) {
        ("GET", 0) => Reply::Body(Bytes::from_static(b"old")),
        ("PUT", 0) => Reply::Error(503, "SlowDown"),
        ("PUT", _) => Reply::Error(412, "PreconditionFailed"),
        ("GET", _) => Reply::Body(Bytes::from_static(b"new")),
        _ => Reply::Ok,
    })
    .await;
    lock.replace("log", b"old", b"new").await.unwrap();
    assert_eq!(
        header(&fake, "PUT", "if-match").as_deref(),
        Some("\"fake\"")
    );
    assert_eq!(header(&fake, "PUT", "if-none-match"), None);
    assert_eq!(fake.count("PUT"), 2);

    // The same, but another writer's checkpoint is there: lost.
    let (lock, _fake) = scripted_lock(|method, _, n| match (method, n) {
        ("GET", 0) => Reply::Body(Bytes::from_static(b"old")),
        ("PUT", 0) => Reply::Error(503, "SlowDown"),
        ("PUT", _) => Reply::Error(412, "PreconditionFailed"),
        ("GET", _) => Reply::Body(Bytes::from_static(b"theirs")),
        _ => Reply::Ok,
    })
    .await;
    let swap = lock.replace("log", b"old", b"new").await;
    assert!(matches!(swap, Err(LockError::Lost)), "{swap:?}");
}

#[tokio::test]
async fn s3_lock_treats_409_412_and_a_missing_key_as_lost() {
    for (status, code) in [
        (412, "PreconditionFailed"),
        (409, "ConditionalRequestConflict"),
        (404, "NoSuchKey"),
    ] {
        let (lock, fake) = scripted_lock(move |method, _, _| match method {
            "GET" => Reply::Body(Bytes::from_static(b"old")),
            "PUT" => Reply::Error(status, code),
            _ => Reply::Ok,
        })
        .await;
        let swap = lock.replace("log", b"old", b"new").await;
        assert!(matches!(swap, Err(LockError::Lost)), "{code}: {swap:?}");
        assert_eq!(fake.count("PUT"), 1, "{code}: not retried");
    }
    // Creating sends If-None-Match: *; a 409 there is lost too.
    let (lock, fake) = scripted_lock(|method, _, _| match method {
        "PUT" => Reply::Error(409, "ConditionalRequestConflict"),
        _ => Reply::Ok,
    })
    .await;
    let create = lock.create("log", b"first").await;
    assert!(matches!(create, Err(LockError::Lost)), "{create:?}");
    assert_eq!(header(&fake, "PUT", "if-none-match").as_deref(), Some("*"));
    // A missing bucket is not a lost race.
    let (lock, _fake) = scripted_lock(|method, _, _| match method {
        "GET" => Reply::Body(Bytes::from_static(b"old")),
        "PUT" => Reply::Error(404, "NoSuchBucket"),
        _ => Reply::Ok,
    })
    .await;
    let swap = lock.replace("log", b"old", b"new").await;
    assert!(matches!(swap, Err(LockError::Backend(_))), "{swap:?}");
}
