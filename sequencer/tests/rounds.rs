//! The sequencer against the in-memory store and lock: trees it builds are
//! checked with an independent implementation (Cloudflare's `tlog_tiles` and
//! `static_ct_api`), and every step of the round is broken on purpose.
//!
//! Tests run on tokio's paused clock (all but one, which needs the round's
//! thread to sign while the round waits): a round starts only when every
//! task is idle, so a fault injected between two sends hits exactly the
//! next round.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use ct_formats::{Entry, EntryKind, LogKey, Sct};
use ct_sequencer::{Batch, LoadError, LogConfig, Sequenced, SequencerHandle, SequencingError};
use ct_storage::{
    BootInstant, Claim, Fault, LockBackend, LockError, MemoryLock, MemoryStore, ObjectStore,
    SqliteLock,
};
use p256::ecdsa::SigningKey;
use static_ct_api::{LogEntry, RFC6962Verifier, TileIterator};
use tlog_tiles::{record_hash, tree_hash, Hash as OracleHash, Tile, TileHashReader, TileReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ORIGIN: &str = "ct.example/test";

fn key() -> Arc<LogKey> {
    Arc::new(LogKey::from_signing_key(
        SigningKey::from_slice(&[7u8; 32]).unwrap(),
    ))
}

fn config(key: &Arc<LogKey>) -> LogConfig {
    LogConfig {
        name: "test".into(),
        origin: ORIGIN.into(),
        key: key.clone(),
        period: Duration::from_millis(50),
        pool_size: 100_000,
        cosigners: Default::default(),
        claim_wait: Some(Duration::ZERO),
        create: true,
        cleanup: None,
        sign_ahead: true,
    }
}

/// Entry `i`: alternately a final certificate and a precertificate, with
/// contents unique to `i` so every index can be checked.
fn entry(i: u64) -> Entry {
    let der = format!("certificate number {i}").into_bytes();
    let kind = if i % 3 == 2 {
        EntryKind::Precert {
            issuer_key_hash: [i as u8; 32],
            tbs: der.clone(),
            precertificate: [b"pre-", &der[..]].concat(),
        }
    } else {
        EntryKind::X509 { certificate: der }
    };
    Entry {
        kind,
        chain_fingerprints: vec![[1; 32], [(i % 7) as u8; 32]],
    }
}

struct Running {
    handle: SequencerHandle,
    task: JoinHandle<()>,
}

async fn start(store: &Arc<MemoryStore>, lock: Arc<dyn LockBackend>) -> Result<Running, LoadError> {
    let (handle, task) = ct_sequencer::start(config(&key()), store.clone(), lock).await?;
    Ok(Running { handle, task })
}

impl Running {
    /// Sends entries `range` as one batch and waits for the round's answer.
    async fn submit(&self, range: std::ops::Range<u64>) -> Result<Sequenced, SequencingError> {
        let (reply, answer) = oneshot::channel();
        let entries = range.map(entry).collect();
        assert!(
            self.handle.send(Batch { entries, reply }).await.is_ok(),
            "sequencer stopped"
        );
        answer.await.expect("sequencer answers every batch")
    }

    async fn stop(self) {
        drop(self.handle);
        self.task.await.unwrap();
    }
}

/// A synchronous copy of the store, readable by the oracle.
struct Snapshot(HashMap<String, Vec<u8>>);

async fn snapshot(store: &MemoryStore) -> Snapshot {
    let mut objects = HashMap::new();
    for key in store.keys() {
        objects.insert(
            key.clone(),
            store.get(&key).await.unwrap().unwrap().to_vec(),
        );
    }
    Snapshot(objects)
}

impl TileReader for Snapshot {
    fn height(&self) -> u8 {
        8
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        Ok(tiles
            .iter()
            .map(|t| self.0[&static_ct_api::tile_path(t)].clone())
            .collect())
    }
    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// Verifies the published log with the oracle and returns its entries.
fn verify_log(snapshot: &Snapshot) -> Vec<LogEntry> {
    let note = signed_note::Note::from_bytes(&snapshot.0["checkpoint"]).unwrap();
    let verifier = RFC6962Verifier::new(ORIGIN, key().verifying_key()).unwrap();
    note.verify(&signed_note::VerifierList::new(vec![Box::new(verifier)]))
        .expect("checkpoint signature");
    let text = String::from_utf8(note.text().to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let size: u64 = lines[1].parse().unwrap();
    let root = OracleHash(base64_decode(lines[2]).try_into().unwrap());
    let reader = TileHashReader::new(size, root, snapshot);
    assert_eq!(
        tree_hash(size, &reader).unwrap(),
        root,
        "root recomputed from the tiles"
    );
    let mut entries = Vec::new();
    for index in 0..size.div_ceil(256) {
        let width = (size - index * 256).min(256);
        let data_tile = Tile::new(8, 0, index, width as u32, true);
        let hash_tile = Tile::new(8, 0, index, width as u32, false);
        let mut data = Vec::new();
        let gzipped = &snapshot.0[&static_ct_api::tile_path(&data_tile)];
        flate2::read::GzDecoder::new(&gzipped[..])
            .read_to_end(&mut data)
            .unwrap();
        let hashes = &snapshot.0[&static_ct_api::tile_path(&hash_tile)];
        let mut consumed = 0;
        for (i, parsed) in TileIterator::new(data.clone(), width as usize).enumerate() {
            let entry = parsed.unwrap();
            assert_eq!(entry.leaf_index, index * 256 + i as u64);
            assert_eq!(
                record_hash(&entry.merkle_tree_leaf()).0,
                hashes[i * 32..i * 32 + 32]
            );
            consumed += entry.tile_leaf().len();
            entries.push(entry);
        }
        assert_eq!(consumed, data.len(), "data tile {index} has trailing bytes");
    }
    entries
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Asserts the log holds exactly `expected` (entry numbers, in order).
fn assert_entries(entries: &[LogEntry], expected: &[u64]) {
    let got: Vec<Vec<u8>> = entries.iter().map(|e| e.certificate.clone()).collect();
    let want: Vec<Vec<u8>> = expected
        .iter()
        .map(|i| match entry(*i).kind {
            EntryKind::X509 { certificate } => certificate,
            EntryKind::Precert { tbs, .. } => tbs,
        })
        .collect();
    assert_eq!(got.len(), want.len(), "log size");
    assert!(
        got == want,
        "log contents differ from the submitted entries"
    );
}

#[tokio::test(start_paused = true)]
async fn rounds_build_a_tree_the_oracle_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(SqliteLock::open(&dir.path().join("lock.db")).unwrap());
    let log = start(&store, lock).await.unwrap();
    let mut next = 0;
    for size in [1, 0, 254, 1, 300, 3, 500] {
        let sequenced = log.submit(next..next + size).await.unwrap();
        assert_eq!(sequenced.first_index, next);
        // Each answer carries its entries' leaf hashes, as RFC 6962 defines
        // them (the batchers record them for get-proof-by-hash).
        let leaf_hashes: Vec<_> = (next..next + size)
            .map(|i| record_hash(&entry(i).merkle_tree_leaf(sequenced.timestamp, i)).0)
            .collect();
        assert_eq!(sequenced.leaf_hashes, leaf_hashes);
        next += size;
    }
    log.stop().await;
    let entries = verify_log(&snapshot(&store).await);
    assert_entries(&entries, &(0..next).collect::<Vec<_>>());
    assert!(entries.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert!(store.immutability_violations().is_empty());
    assert!(
        !store.keys().iter().any(|k| k.starts_with("staging/")),
        "staging bundles are removed"
    );
}

/// While a round waits on storage (here, checkpoint writes held a second),
/// a thread signs the entries' SCTs ahead: each answer carries the
/// signature of every entry of its batch, the very bytes of signing that
/// entry at its index afresh. That thread runs only on otherwise idle
/// cores, so with other tests busy a round may end before it is done: a
/// few rounds are tried. On the real clock, for it to sign while the round
/// waits.
#[tokio::test]
async fn a_round_signs_its_scts_ahead_while_it_waits_on_storage() {
    let store = Arc::new(MemoryStore::new());
    let log = start(&store, Arc::new(MemoryLock::new())).await.unwrap();
    let (mut next, mut complete) = (0, false);
    for _ in 0..10 {
        // Idle rounds run too: one of the two holds is this round's.
        store.inject("checkpoint", Fault::Late(Duration::from_secs(1)), 2);
        let sequenced = log.submit(next..next + 100).await.unwrap();
        assert_eq!(sequenced.first_index, next);
        let mut made = 0;
        for i in next..next + 100 {
            let position = (i - next) as usize;
            let Some(signature) = sequenced.signatures.get(position) else {
                continue;
            };
            let expected = Sct::signature(&key(), &entry(i), sequenced.timestamp, i);
            assert_eq!(signature, expected, "entry {i}");
            made += 1;
        }
        assert_eq!(sequenced.signatures.get(100), None);
        next += 100;
        if made == 100 {
            complete = true;
            break;
        }
    }
    assert!(complete, "no round signed all its SCTs ahead");
    log.stop().await;
}

/// A round's signing ahead stops once the round is published: whoever
/// answers an entry signs what is left, and signing on would only race it
/// for the same SCTs.
#[tokio::test]
async fn signing_ahead_stops_when_the_round_is_published() {
    let store = Arc::new(MemoryStore::new());
    let log = start(&store, Arc::new(MemoryLock::new())).await.unwrap();
    let entries = 20_000;
    let sequenced = log.submit(0..entries).await.unwrap();
    let made = || {
        (0..entries as usize)
            .filter(|&p| sequenced.signatures.get(p).is_some())
            .count()
    };
    let at_publication = made();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = made();
    // One signature may have been under way when the round was published,
    // and the thread sees the stop before its next one (a relaxed flag:
    // allow one more). Signing on made thousands more in this time.
    assert!(
        later <= at_publication + 2,
        "{at_publication} signed ahead by publication, {later} half a second later"
    );
    log.stop().await;
}

/// Rounds slower than the period (slow storage) still take the batches
/// that wait: every round pools what arrived before it started, so slow
/// storage makes rounds late, never empty while entries wait, and a
/// shutdown is not put off either. On the real clock: each round waits on
/// a checkpoint write three periods long.
#[tokio::test]
async fn rounds_slower_than_the_period_still_take_the_waiting_batches() {
    let store = Arc::new(MemoryStore::new());
    let log = start(&store, Arc::new(MemoryLock::new())).await.unwrap();
    let period = config(&key()).period;
    store.inject("checkpoint", Fault::Late(period * 3), 1_000);
    for round in 0..3 {
        let entries = round * 10..round * 10 + 10;
        // A few slow rounds at most; the bound only stops a starved test.
        let sequenced = tokio::time::timeout(Duration::from_secs(30), log.submit(entries))
            .await
            .expect("a waiting batch joins one of the next rounds")
            .unwrap();
        assert_eq!(sequenced.first_index, round * 10);
    }
    // The shutdown too: the last round comes next, not after the faults.
    tokio::time::timeout(Duration::from_secs(30), log.stop())
        .await
        .expect("the sequencer stops after one more round");
}

/// Admission control sizes each submission's wait by when the next round
/// starts: an entry pooled before then is answered by it.
#[tokio::test(start_paused = true)]
async fn the_handle_says_when_the_next_round_starts() {
    let store = Arc::new(MemoryStore::new());
    let log = start(&store, Arc::new(MemoryLock::new())).await.unwrap();
    let period = config(&key()).period;
    for round in 0..3 {
        log.submit(round..round + 1).await.unwrap();
        let next = log.handle.next_round();
        let now = tokio::time::Instant::now();
        assert!(next > now, "round {round}: the next round is ahead");
        assert!(next - now <= period, "round {round}: within a period");
        // An entry sent now is in the round that starts then.
        let (reply, answer) = oneshot::channel();
        let batch = Batch {
            entries: vec![entry(100 + round)],
            reply,
        };
        assert!(log.handle.send(batch).await.is_ok());
        answer.await.unwrap().unwrap();
        let answered = tokio::time::Instant::now();
        assert!(
            answered >= next && answered < next + period,
            "round {round}"
        );
        tokio::time::sleep(period / 3).await;
    }
    log.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_continues_the_tree() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(MemoryLock::new());
    let log = start(&store, lock.clone()).await.unwrap();
    assert_eq!(log.submit(0..300).await.unwrap().first_index, 0);
    log.stop().await;
    let log = start(&store, lock).await.unwrap();
    assert_eq!(log.submit(300..310).await.unwrap().first_index, 300);
    log.stop().await;
    assert_entries(
        &verify_log(&snapshot(&store).await),
        &(0..310).collect::<Vec<_>>(),
    );
}

#[tokio::test(start_paused = true)]
async fn refuses_to_start_when_lock_and_storage_disagree() {
    // Storage with no lock row: never silently start a new log.
    let store = Arc::new(MemoryStore::new());
    let log = start(&store, Arc::new(MemoryLock::new())).await.unwrap();
    log.submit(0..5).await.unwrap();
    log.stop().await;
    let err = start(&store, Arc::new(MemoryLock::new()))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::StorageWithoutLock), "{err}");

    // Storage ahead of the lock: the lock was restored from an old copy.
    let lock = Arc::new(MemoryLock::new());
    let store = Arc::new(MemoryStore::new());
    let log = start(&store, lock.clone()).await.unwrap();
    log.submit(0..5).await.unwrap();
    log.stop().await;
    let old_lock = Arc::new(MemoryLock::new());
    let id = hex::encode(key().log_id());
    old_lock
        .create(&id, &lock.fetch(&id).await.unwrap().unwrap())
        .await
        .unwrap();
    let log = start(&store, lock).await.unwrap();
    log.submit(5..6).await.unwrap();
    log.stop().await;
    let err = start(&store, old_lock).await.err().unwrap();
    assert!(
        matches!(
            err,
            LoadError::StorageAhead {
                stored: 6,
                locked: 5
            }
        ),
        "{err}"
    );

    // Same size, different trees: a fork.
    let (store_a, store_b) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    let lock_b = Arc::new(MemoryLock::new());
    for (store, lock, first) in [
        (&store_a, Arc::new(MemoryLock::new()), 0),
        (&store_b, lock_b.clone(), 100),
    ] {
        let log = start(store, lock).await.unwrap();
        log.submit(first..first + 3).await.unwrap();
        log.stop().await;
    }
    let err = start(&store_a, lock_b).await.err().unwrap();
    assert!(matches!(err, LoadError::Fork(3)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn refuses_a_checkpoint_signed_by_another_key() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(MemoryLock::new());
    let log = start(&store, lock.clone()).await.unwrap();
    log.submit(0..3).await.unwrap();
    log.stop().await;
    let other = Arc::new(LogKey::from_signing_key(
        SigningKey::from_slice(&[9u8; 32]).unwrap(),
    ));
    let mut cfg = config(&other);
    cfg.key = other.clone();
    // Another key is another log ID, hence no lock row, but storage is not empty.
    let err = ct_sequencer::start(cfg, store.clone(), lock)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            LoadError::StorageWithoutLock | LoadError::BadCheckpoint(..)
        ),
        "{err}"
    );
}

/// Where a fault hits in the round, and whether the faulted round's entries
/// end up in the log (they do once the lock commit landed).
struct Case {
    target: Target,
    fault: Fault,
    committed: bool,
}

enum Target {
    Store(&'static str),
    Lock,
}

/// Breaks each step of one round, both "failed, not written" and "failed,
/// written anyway", and checks: the faulted round's requests get no SCT, the
/// log keeps going (reloading after fatal steps), the next round succeeds,
/// a restart verifies, and no immutable object was ever rewritten.
#[tokio::test(start_paused = true)]
async fn every_round_step_survives_failure() {
    use Fault::*;
    let cases = [
        Case {
            target: Target::Store("staging/"),
            fault: NotWritten,
            committed: false,
        },
        Case {
            target: Target::Store("staging/"),
            fault: WrittenAnyway,
            committed: false,
        },
        Case {
            target: Target::Lock,
            fault: NotWritten,
            committed: false,
        },
        Case {
            target: Target::Lock,
            fault: WrittenAnyway,
            committed: true,
        },
        Case {
            target: Target::Store("tile/data/"),
            fault: NotWritten,
            committed: true,
        },
        Case {
            target: Target::Store("tile/data/"),
            fault: WrittenAnyway,
            committed: true,
        },
        Case {
            target: Target::Store("tile/0/"),
            fault: NotWritten,
            committed: true,
        },
        Case {
            target: Target::Store("tile/0/"),
            fault: WrittenAnyway,
            committed: true,
        },
        Case {
            target: Target::Store("tile/1/"),
            fault: NotWritten,
            committed: true,
        },
        Case {
            target: Target::Store("tile/1/"),
            fault: WrittenAnyway,
            committed: true,
        },
        Case {
            target: Target::Store("checkpoint"),
            fault: NotWritten,
            committed: true,
        },
        Case {
            target: Target::Store("checkpoint"),
            fault: WrittenAnyway,
            committed: true,
        },
    ];
    for case in cases {
        let label = match case.target {
            Target::Store(prefix) => format!("{prefix} {:?}", case.fault),
            Target::Lock => format!("lock {:?}", case.fault),
        };
        let store = Arc::new(MemoryStore::new());
        let lock = Arc::new(MemoryLock::new());
        let log = start(&store, lock.clone()).await.unwrap();
        log.submit(0..250).await.unwrap();
        match case.target {
            Target::Store(prefix) => store.inject(prefix, case.fault, 1),
            Target::Lock => lock.inject(case.fault),
        }
        // This round crosses a tile boundary, so it writes every kind of tile.
        assert!(
            log.submit(250..260).await.is_err(),
            "{label}: the faulted round must not answer with an index"
        );
        let first = log
            .submit(260..270)
            .await
            .unwrap_or_else(|e| panic!("{label}: next round failed: {e}"));
        let mut expected: Vec<u64> = (0..250).collect();
        if case.committed {
            expected.extend(250..260);
        }
        assert_eq!(first.first_index, expected.len() as u64, "{label}");
        expected.extend(260..270);
        log.stop().await;
        let log = start(&store, lock)
            .await
            .unwrap_or_else(|e| panic!("{label}: reopen failed: {e}"));
        log.stop().await;
        assert_entries(&verify_log(&snapshot(&store).await), &expected);
        assert!(
            store.immutability_violations().is_empty(),
            "{label}: {:?}",
            store.immutability_violations()
        );
    }
}

/// A crash after the commit and before the uploads: the lock is ahead of
/// storage, and a new process recovers the round from the staging bundle.
#[tokio::test(start_paused = true)]
async fn a_crash_after_commit_is_recovered_from_staging() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(MemoryLock::new());
    let log = start(&store, lock.clone()).await.unwrap();
    log.submit(0..100).await.unwrap();
    // Every tile upload of the next round fails; the sequencer's reload
    // would re-apply staging, so stop it before it can: that is the crash.
    store.inject("tile/", Fault::NotWritten, 1000);
    assert!(log.submit(100..400).await.is_err());
    drop(log.handle);
    log.task.abort();
    let _ = log.task.await; // a crash frees its claim at once; so does an awaited abort
    store.inject("tile/", Fault::NotWritten, 0);
    let fresh = Arc::new(MemoryStore::new());
    for key in store.keys() {
        fresh
            .put(&key, store.get(&key).await.unwrap().unwrap())
            .await
            .unwrap();
    }
    let log = start(&fresh, lock)
        .await
        .expect("recovery re-applies the staged round");
    assert_eq!(log.submit(400..401).await.unwrap().first_index, 400);
    log.stop().await;
    assert_entries(
        &verify_log(&snapshot(&fresh).await),
        &(0..401).collect::<Vec<_>>(),
    );
}

/// An old checkpoint published late over newer ones (a sequencer that lost
/// its lease in the middle of the PUT): the staging bundles are gone, but
/// the tiles are there, so a reload republishes the lock's checkpoint.
/// Without the tiles it still refuses.
#[tokio::test(start_paused = true)]
async fn a_checkpoint_published_late_is_repaired_from_the_tiles() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(MemoryLock::new());
    let log = start(&store, lock.clone()).await.unwrap();
    log.submit(0..10).await.unwrap();
    let old = store.get("checkpoint").await.unwrap().unwrap();
    log.submit(10..20).await.unwrap();
    log.submit(20..300).await.unwrap();
    log.stop().await;
    store.put("checkpoint", old.clone()).await.unwrap();
    let log = start(&store, lock.clone())
        .await
        .expect("the right edge verifies, so the lock's checkpoint is republished");
    assert_eq!(log.submit(300..301).await.unwrap().first_index, 300);
    log.stop().await;
    assert_entries(
        &verify_log(&snapshot(&store).await),
        &(0..301).collect::<Vec<_>>(),
    );

    store.put("checkpoint", old).await.unwrap();
    store.delete("tile/data/001.p/45").await.unwrap();
    let err = start(&store, lock).await.err().unwrap();
    assert!(matches!(err, LoadError::MissingStaging(_)), "{err}");
}

/// The published checkpoint's size and timestamp.
fn size_and_time(note: &[u8]) -> (u64, u64) {
    let signed = ct_formats::open_checkpoint(note, ORIGIN, key().verifying_key()).unwrap();
    (signed.checkpoint.size, signed.timestamp)
}

/// A checkpoint write that lands long after it was sent (its round gave up
/// on it; a sequencer paused or cut off mid-PUT) never replaces the newer
/// checkpoints published meanwhile: what monitors see never goes back.
#[tokio::test(start_paused = true)]
async fn a_late_checkpoint_write_never_rolls_the_log_back() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(MemoryLock::new());
    let log = start(&store, lock.clone()).await.unwrap();
    log.submit(0..5).await.unwrap();
    // Off the rounds' 50 ms beat, so that it lands between two of them.
    store.inject("checkpoint", Fault::Late(Duration::from_millis(12_025)), 1);
    let refused = log.submit(5..10).await.unwrap_err();
    assert!(refused.to_string().contains("publish"), "{refused}");
    // Watch what monitors would see every 10 ms for 15 s, adding an entry
    // each second: the late write lands 12 s after it was sent, after the
    // round gave up on it (10 s).
    let mut note = store.get("checkpoint").await.unwrap().unwrap();
    let mut seen = size_and_time(&note);
    for tick in 0..1_500u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if tick % 100 == 0 {
            let i = 10 + tick / 100;
            log.submit(i..i + 1).await.unwrap();
        }
        let now = store.get("checkpoint").await.unwrap().unwrap();
        if now == note {
            continue;
        }
        let (was, is) = (seen, size_and_time(&now));
        assert!(
            is.0 >= was.0 && is.1 > was.1,
            "the published checkpoint went from {was:?} back to {is:?}"
        );
        (note, seen) = (now, is);
    }
    assert_eq!(seen.0, 25);
    log.stop().await;
    assert_entries(
        &verify_log(&snapshot(&store).await),
        &(0..25).collect::<Vec<_>>(),
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_sequencer_is_refused_while_the_first_runs() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(MemoryLock::new());
    let first = start(&store, lock.clone()).await.unwrap();
    let err = start(&store, lock.clone()).await.err().unwrap();
    assert!(
        matches!(err, LoadError::Lock(LockError::Claimed(_))),
        "{err}"
    );
    first.stop().await;
    let again = start(&store, lock)
        .await
        .expect("the claim is released when the first stops");
    again.stop().await;
}

/// A lock that grants every claim, as if two processes got past the claim.
struct NoClaims(Arc<MemoryLock>);

#[async_trait::async_trait]
impl LockBackend for NoClaims {
    async fn fetch(&self, log: &str) -> Result<Option<Vec<u8>>, LockError> {
        self.0.fetch(log).await
    }
    async fn create(&self, log: &str, checkpoint: &[u8]) -> Result<(), LockError> {
        self.0.create(log, checkpoint).await
    }
    async fn replace(&self, log: &str, old: &[u8], new: &[u8]) -> Result<(), LockError> {
        self.0.replace(log, old, new).await
    }
    async fn claim(&self, _: &str) -> Result<Claim, LockError> {
        Ok(Claim::new(()))
    }
}

/// Two sequencers on one log that both got past the claim: the lock's
/// compare-and-swap lets only one view win each time, so every index ever
/// handed out names the entry that was submitted for it.
#[tokio::test(start_paused = true)]
async fn two_sequencers_cannot_fork_the_log() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(NoClaims(Arc::new(MemoryLock::new())));
    let a = start(&store, lock.clone()).await.unwrap();
    let b = start(&store, lock.clone()).await.unwrap();
    let mut granted = Vec::new();
    for round in 0..20u64 {
        let first = 1000 * round;
        let (ra, rb) = tokio::join!(
            a.submit(first..first + 7),
            b.submit(first + 500..first + 505)
        );
        if let Ok(s) = ra {
            granted.extend((0..7).map(|i| (s.first_index + i, first + i)));
        }
        if let Ok(s) = rb {
            granted.extend((0..5).map(|i| (s.first_index + i, first + 500 + i)));
        }
    }
    a.stop().await;
    b.stop().await;
    assert!(!granted.is_empty());
    let entries = verify_log(&snapshot(&store).await);
    for (index, number) in granted {
        let want = match entry(number).kind {
            EntryKind::X509 { certificate } => certificate,
            EntryKind::Precert { tbs, .. } => tbs,
        };
        assert_eq!(
            entries[index as usize].certificate, want,
            "index {index} was granted to entry {number}"
        );
    }
    assert!(
        store.immutability_violations().is_empty(),
        "{:?}",
        store.immutability_violations()
    );
}

/// A lock whose lease the test revokes, and whose claims it can refuse,
/// like a lease taken over by a standby sequencer.
#[derive(Default)]
struct RevocableLock {
    rows: MemoryLock,
    available: std::sync::atomic::AtomicBool,
    revoke: std::sync::Mutex<Option<tokio::sync::watch::Sender<bool>>>,
    /// The lease's expiry by the holder's clock, as a renewal task keeps it.
    expiry: std::sync::Mutex<Option<tokio::sync::watch::Sender<BootInstant>>>,
}

impl RevocableLock {
    /// The holder was paused past its lease and another process took the
    /// log; the holder's renewal task has not run yet to say so.
    fn expire_silently_and_hold_elsewhere(&self) {
        self.available
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(expiry) = self.expiry.lock().unwrap().as_ref() {
            expiry.send_replace(BootInstant::now());
        }
    }

    fn revoke_and_hold_elsewhere(&self) {
        self.available
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(lost) = self.revoke.lock().unwrap().take() {
            lost.send_replace(true);
        }
    }
}

#[async_trait::async_trait]
impl LockBackend for RevocableLock {
    async fn fetch(&self, log: &str) -> Result<Option<Vec<u8>>, LockError> {
        self.rows.fetch(log).await
    }
    async fn create(&self, log: &str, checkpoint: &[u8]) -> Result<(), LockError> {
        self.rows.create(log, checkpoint).await
    }
    async fn replace(&self, log: &str, old: &[u8], new: &[u8]) -> Result<(), LockError> {
        self.rows.replace(log, old, new).await
    }
    async fn claim(&self, _: &str) -> Result<Claim, LockError> {
        if !self.available.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(LockError::Claimed("held by another sequencer".into()));
        }
        let (lost, watch) = tokio::sync::watch::channel(false);
        *self.revoke.lock().unwrap() = Some(lost);
        let far = BootInstant::now() + Duration::from_secs(3600);
        let (expiry, expires) = tokio::sync::watch::channel(far);
        *self.expiry.lock().unwrap() = Some(expiry);
        Ok(Claim::revocable((), watch).with_expiry(expires))
    }
}

/// Losing the lease makes the sequencer stand by (refusing work, never
/// committing) until it claims the lease again and reloads.
#[tokio::test(start_paused = true)]
async fn a_lost_lease_makes_the_sequencer_stand_by() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(RevocableLock::default());
    lock.available
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let log = start(&store, lock.clone()).await.unwrap();
    assert_eq!(log.submit(0..3).await.unwrap().first_index, 0);

    lock.revoke_and_hold_elsewhere();
    let refused = log.submit(3..5).await.unwrap_err();
    assert!(matches!(refused, SequencingError::StandingBy), "{refused}");

    lock.available
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        log.submit(5..8).await.unwrap().first_index,
        3,
        "resumes after re-claiming"
    );
    log.stop().await;
    assert_entries(&verify_log(&snapshot(&store).await), &[0, 1, 2, 5, 6, 7]);
}

/// A sequencer whose lease ran out by its own clock (it was paused, say)
/// fails its next commit before the swap and stands by, even though its
/// renewal task has not reported the loss and the swap would succeed.
#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_never_committed_under() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(RevocableLock::default());
    lock.available
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let log = start(&store, lock.clone()).await.unwrap();
    assert_eq!(log.submit(0..2).await.unwrap().first_index, 0);
    let committed = lock.rows.fetch(&hex::encode(key().log_id())).await.unwrap();

    lock.expire_silently_and_hold_elsewhere();
    let refused = log.submit(2..4).await.unwrap_err();
    assert!(
        matches!(refused, SequencingError::Failed(ref why) if why.contains("lost its lease")),
        "{refused}"
    );
    assert_eq!(
        lock.rows.fetch(&hex::encode(key().log_id())).await.unwrap(),
        committed,
        "nothing was committed after the lease ran out"
    );
    let standing_by = log.submit(4..5).await.unwrap_err();
    assert!(
        matches!(standing_by, SequencingError::StandingBy),
        "{standing_by}"
    );

    lock.available
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(log.submit(5..6).await.unwrap().first_index, 2);
    log.stop().await;
    assert_entries(&verify_log(&snapshot(&store).await), &[0, 1, 5]);
}

/// A sequencer standing by for a lease held elsewhere stops once every
/// handle is gone (a stepped-down process must be able to shut down).
#[tokio::test(start_paused = true)]
async fn a_stepped_down_sequencer_stops_when_its_handles_go() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(RevocableLock::default());
    lock.available
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let log = start(&store, lock.clone()).await.unwrap();
    log.submit(0..1).await.unwrap();
    lock.revoke_and_hold_elsewhere();
    let refused = log.submit(1..2).await.unwrap_err();
    assert!(matches!(refused, SequencingError::StandingBy), "{refused}");
    tokio::time::timeout(Duration::from_secs(3600), log.stop())
        .await
        .expect("the sequencer stops instead of waiting for the lease forever");
}

/// The partial tiles in `store`: those of the right edge of the tree of
/// `size`, and any other.
fn partial_tiles(store: &MemoryStore, size: u64) -> (Vec<String>, Vec<String>) {
    let edge: Vec<String> = ct_formats::right_edge_tiles(size)
        .iter()
        .filter(|t| !t.is_full())
        .map(|t| t.path())
        .collect();
    store
        .keys()
        .into_iter()
        .filter(|k| k.contains(".p/"))
        .partition(|k| edge.contains(k))
}

/// Once a full tile has been published for the grace period, its partial
/// versions are deleted, at every level; the right edge's partials stay,
/// the log still verifies, and the cleaner resumes where it stopped.
#[tokio::test(start_paused = true)]
async fn full_tiles_partials_are_cleaned_after_the_grace_period() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(MemoryLock::new());
    let grace = Duration::from_secs(5);
    let start_cleaning = |store: &Arc<MemoryStore>, lock: &Arc<MemoryLock>| {
        let config = LogConfig {
            cleanup: Some(ct_sequencer::Cleanup {
                grace,
                deletes_per_s: 1_000,
            }),
            ..config(&key())
        };
        ct_sequencer::start(config, store.clone(), lock.clone())
    };
    let (handle, task) = start_cleaning(&store, &lock).await.unwrap();
    let log = Running { handle, task };
    let mut next = 0;
    for size in [7, 100, 149, 1, 300, 255, 2, 250, 40] {
        log.submit(next..next + size).await.unwrap();
        next += size;
    }
    let (edge, stale) = partial_tiles(&store, next);
    assert!(
        !edge.is_empty() && !stale.is_empty(),
        "partials of full tiles, before the grace"
    );
    tokio::time::sleep(grace * 3).await;
    let (_, stale) = partial_tiles(&store, next);
    assert!(stale.is_empty(), "left after the grace: {stale:?}");
    let progress = store
        .get(ct_sequencer::CLEANUP_PROGRESS_KEY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(progress, "data 4\n0 4\n");

    // More rounds, a restart, and the cleaner takes up from its progress.
    log.submit(next..next + 600).await.unwrap();
    next += 600;
    log.stop().await;
    let (handle, task) = start_cleaning(&store, &lock).await.unwrap();
    let log = Running { handle, task };
    log.submit(next..next + 1).await.unwrap();
    next += 1;
    tokio::time::sleep(grace * 3).await;
    log.stop().await;
    let (edge, stale) = partial_tiles(&store, next);
    assert!(stale.is_empty(), "left after the restart: {stale:?}");
    assert_eq!(edge.len(), 3, "{edge:?}");
    assert_entries(
        &verify_log(&snapshot(&store).await),
        &(0..next).collect::<Vec<_>>(),
    );
    assert!(store.immutability_violations().is_empty());
}
