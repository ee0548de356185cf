//! The contract every `LockBackend` must keep, written once and run on each
//! backend by crates/storage/tests/locks.rs:
//!
//! - [`check_lock`] (all backends): create/fetch/replace semantics;
//!   concurrent writers on separate handles, exactly one winning each round;
//!   claims exclusive across handles, per log, released on drop.
//! - [`check_lease`] (backends whose claims are leases): a refusal names the
//!   holder and the expiry; renewals keep a lease alive past its TTL; a
//!   holder that stops renewing loses the lease after one TTL and is told;
//!   a holder whose lease is taken from under it is told.
//!
//! Each check uses its own log ids, so one backend can run them all.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ct_storage::{Claim, LeaseOptions, LockBackend, LockError};

/// Concurrent writers, and rounds each of them races in.
const WRITERS: usize = 8;
const ROUNDS: usize = 20;

/// Runs every backend-independent check. `open` opens a new handle on the
/// same backend each time it is called, as another process would.
pub async fn check_lock<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn LockBackend>>,
{
    check_compare_and_swap(&*open().await).await;
    let mut handles = Vec::new();
    for _ in 0..WRITERS {
        handles.push(open().await);
    }
    check_concurrent_writers(&handles).await;
    check_claims(&*handles[0], &*handles[1]).await;
}

async fn check_compare_and_swap(lock: &dyn LockBackend) {
    assert_eq!(lock.fetch("cas-a").await.unwrap(), None);
    lock.create("cas-a", b"one").await.unwrap();
    assert_eq!(lock.fetch("cas-a").await.unwrap().unwrap(), b"one");
    let lost = |r: Result<(), LockError>| matches!(r, Err(LockError::Lost));
    assert!(lost(lock.create("cas-a", b"other").await), "create twice");
    assert!(
        lost(lock.replace("cas-a", b"wrong", b"two").await),
        "stale old"
    );
    assert!(
        lost(lock.replace("cas-b", b"one", b"two").await),
        "missing log"
    );
    lock.replace("cas-a", b"one", b"two").await.unwrap();
    assert_eq!(lock.fetch("cas-a").await.unwrap().unwrap(), b"two");
    assert!(
        lost(lock.replace("cas-a", b"one", b"three").await),
        "replayed swap"
    );
    assert_eq!(lock.fetch("cas-a").await.unwrap().unwrap(), b"two");
    assert_eq!(lock.fetch("cas-b").await.unwrap(), None);
    // Empty and binary checkpoints are stored as given.
    let binary: Vec<u8> = (0..=255u8).collect();
    lock.replace("cas-a", b"two", &binary).await.unwrap();
    assert_eq!(lock.fetch("cas-a").await.unwrap().unwrap(), binary);
}

/// Each handle tries the same operation at once; the results, in order.
async fn race<Op, Fut>(handles: &[Arc<dyn LockBackend>], op: Op) -> Vec<Result<(), LockError>>
where
    Op: Fn(Arc<dyn LockBackend>, usize) -> Fut,
    Fut: Future<Output = Result<(), LockError>> + Send + 'static,
{
    // The barrier lines the writers up so that their requests overlap.
    let start = Arc::new(tokio::sync::Barrier::new(handles.len()));
    let tasks: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(writer, lock)| {
            let (start, attempt) = (start.clone(), op(lock.clone(), writer));
            tokio::spawn(async move {
                start.wait().await;
                attempt.await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// The index of the only success; panics unless every other one is `Lost`.
fn sole_winner(results: &[Result<(), LockError>], what: &str) -> usize {
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "{what}: exactly one must win: {results:?}"
    );
    for result in results.iter().filter(|r| r.is_err()) {
        assert!(matches!(result, Err(LockError::Lost)), "{what}: {result:?}");
    }
    winners[0]
}

async fn check_concurrent_writers(handles: &[Arc<dyn LockBackend>]) {
    let value = |round: usize, writer: usize| format!("round {round} writer {writer}").into_bytes();
    let results = race(handles, |lock, writer| async move {
        lock.create("race", &value(0, writer)).await
    })
    .await;
    let mut current = value(0, sole_winner(&results, "create"));
    for round in 1..=ROUNDS {
        let old = Arc::new(current.clone());
        let results = race(handles, |lock, writer| {
            let old = old.clone();
            async move { lock.replace("race", &old, &value(round, writer)).await }
        })
        .await;
        current = value(round, sole_winner(&results, &format!("round {round}")));
        for lock in handles {
            assert_eq!(lock.fetch("race").await.unwrap().unwrap(), current);
        }
    }
}

/// Claims `log` on `lock` within `within`, retrying while it is `Claimed`.
async fn claim_within(lock: &dyn LockBackend, log: &str, within: Duration) -> Claim {
    let deadline = Instant::now() + within;
    loop {
        match lock.claim(log).await {
            Ok(claim) => return claim,
            Err(LockError::Claimed(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("claiming {log} within {within:?}: {e}"),
        }
    }
}

fn refusal(result: Result<Claim, LockError>) -> String {
    match result {
        Err(LockError::Claimed(message)) => message,
        Err(e) => panic!("expected Claimed, got {e}"),
        Ok(_) => panic!("expected Claimed, got a claim"),
    }
}

async fn check_claims(first: &dyn LockBackend, second: &dyn LockBackend) {
    let claim = first.claim("claimed").await.unwrap();
    assert!(!claim.is_lost());
    refusal(second.claim("claimed").await);
    refusal(first.claim("claimed").await);
    let other = second.claim("claimed-other").await.unwrap();
    drop(claim);
    // Well within the default lease TTL: released, not expired.
    let again = claim_within(second, "claimed", Duration::from_secs(5)).await;
    assert!(!again.is_lost() && !other.is_lost());
}

/// Runs the lease checks. `open(lease)` opens a new handle whose claims are
/// leases of `lease`; `steal(log)` overwrites the lease of `log` behind its
/// holder's back, as a process that misjudged the expiry would.
pub async fn check_lease<F, Fut, S, SFut>(open: F, steal: S)
where
    F: Fn(LeaseOptions) -> Fut,
    Fut: Future<Output = Arc<dyn LockBackend>>,
    S: FnOnce(&'static str) -> SFut,
    SFut: Future<Output = ()>,
{
    // Short for a quick test, long enough for renewals on a busy CI machine.
    let ttl = Duration::from_secs(2);
    let (a, b) = (
        open(LeaseOptions::new(ttl)).await,
        open(LeaseOptions::new(ttl)).await,
    );
    check_renewal(&*a, &*b, ttl).await;
    let stalled = LeaseOptions {
        ttl,
        renew_every: Duration::from_secs(3600),
    };
    check_expiry(&*open(stalled).await, &*b, ttl).await;
    let held = a.claim("stolen").await.unwrap();
    steal("stolen").await;
    tokio::time::timeout(2 * ttl, held.lost())
        .await
        .expect("a holder whose lease was taken must be told");
    assert!(held.is_lost());
}

async fn check_renewal(a: &dyn LockBackend, b: &dyn LockBackend, ttl: Duration) {
    let claim = a.claim("leased").await.unwrap();
    let message = refusal(b.claim("leased").await);
    assert!(message.starts_with("held by "), "{message}");
    tokio::time::sleep(ttl * 2).await;
    refusal(b.claim("leased").await);
    assert!(!claim.is_lost(), "renewals keep the lease");
    drop(claim);
    claim_within(b, "leased", ttl / 2).await;
}

/// A holder that stops renewing: the standby gets the lease after one TTL,
/// not before, and the holder learns that it lost it.
async fn check_expiry(stalled: &dyn LockBackend, standby: &dyn LockBackend, ttl: Duration) {
    let started = Instant::now();
    let claim = stalled.claim("expiring").await.unwrap();
    refusal(standby.claim("expiring").await);
    let _taken = claim_within(standby, "expiring", ttl * 3).await;
    let waited = started.elapsed();
    // Expiry is stored to the millisecond; allow for that and clock reads.
    assert!(
        waited + Duration::from_millis(20) >= ttl,
        "taken over after {waited:?}"
    );
    tokio::time::timeout(ttl, claim.lost())
        .await
        .expect("an expired holder must be told");
    assert!(claim.is_lost());
}
