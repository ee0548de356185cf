//! Batchers in front of a real sequencer (in-memory store and lock) and a
//! real SQLite dedup file: identical submissions collapse, locations (and
//! leaf hashes) survive restarts, and a full pool refuses new work in priority order while still
//! answering entries it already knows. Runs on tokio's paused clock, so a
//! round happens only when every task is idle.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ct_batcher::{BatcherConfig, Batchers, Priority, Rejected, Reply};
use ct_dedup::{spawn_writer, Location, PersistentDedup, Record, SqliteDedup};
use ct_formats::{leaf_hash, Entry, EntryKind, LogKey, Sct};
use ct_storage::{Fault, MemoryLock, MemoryStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn x509(name: &str, chain: u8) -> Entry {
    Entry {
        kind: EntryKind::X509 {
            certificate: name.as_bytes().to_vec(),
        },
        chain_fingerprints: vec![[chain; 32]],
    }
}

fn precert(name: &str) -> Entry {
    let kind = EntryKind::Precert {
        issuer_key_hash: [1; 32],
        tbs: name.as_bytes().to_vec(),
        precertificate: [b"pre-", name.as_bytes()].concat(),
    };
    Entry {
        kind,
        chain_fingerprints: vec![[1; 32]],
    }
}

fn key() -> LogKey {
    LogKey::from_signing_key(p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap())
}

struct Log {
    batchers: Batchers,
    tasks: Vec<JoinHandle<()>>,
}

struct Backends {
    store: Arc<MemoryStore>,
    lock: Arc<MemoryLock>,
    dir: tempfile::TempDir,
}

impl Backends {
    fn new() -> Backends {
        Backends {
            store: Arc::new(MemoryStore::new()),
            lock: Arc::new(MemoryLock::new()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn start(&self, pool_size: usize) -> Log {
        self.start_with(pool_size, Duration::from_millis(50)).await
    }

    /// Batches wait up to `max_wait`; rounds come every second.
    async fn start_with(&self, pool_size: usize, max_wait: Duration) -> Log {
        let config = ct_sequencer::LogConfig {
            name: "batcher".into(),
            origin: "ct.example/batcher".into(),
            key: Arc::new(key()),
            period: Duration::from_millis(1000),
            pool_size: 100_000,
            cosigners: Default::default(),
            claim_wait: Some(Duration::ZERO),
            create: true,
            cleanup: None,
            sign_ahead: true,
        };
        let (sequencer, sequencer_task) =
            ct_sequencer::start(config, self.store.clone(), self.lock.clone())
                .await
                .unwrap();
        let dedup = PersistentDedup::Sqlite(
            SqliteDedup::open(&self.dir.path().join("dedup.db"), "0123").unwrap(),
        );
        let (writer, writer_task) = spawn_writer(dedup.clone());
        let config = BatcherConfig {
            log: "batcher".into(),
            batchers: 3,
            max_batch: 10_000,
            max_wait,
            pool_size,
            memory_entries: 1000,
        };
        Log {
            batchers: Batchers::spawn(config, sequencer, dedup, writer),
            tasks: vec![sequencer_task, writer_task],
        }
    }
}

impl Log {
    /// Queues `entry` at once; the answer resolves after its round.
    fn place(&self, entry: Entry, priority: Priority) -> oneshot::Receiver<Reply> {
        self.batchers
            .submit(entry, priority)
            .expect("batcher queue has room")
    }

    /// Queues `entry` at once; the location resolves after its round.
    fn send(
        &self,
        entry: Entry,
        priority: Priority,
    ) -> impl Future<Output = Result<Location, Rejected>> {
        let answer = self.place(entry, priority);
        async move { answer.await.unwrap().map(|placed| placed.location) }
    }

    async fn submit(&self, entry: Entry) -> Result<Location, Rejected> {
        self.send(entry, Priority::Normal).await
    }

    async fn stop(self) {
        drop(self.batchers);
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn identical_concurrent_submissions_become_one_entry() {
    let backends = Backends::new();
    let log = backends.start(10_000).await;
    let waiting: Vec<_> = (0..1000)
        .map(|_| log.send(x509("same", 1), Priority::Normal))
        .collect();
    let mut locations = Vec::new();
    for answer in waiting {
        locations.push(answer.await.unwrap());
    }
    assert!(
        locations.iter().all(|l| *l == locations[0]),
        "every request gets the same location"
    );
    assert_eq!(locations[0].leaf_index, 0);
    assert_eq!(
        log.submit(x509("other", 1)).await.unwrap().leaf_index,
        1,
        "only one entry was logged"
    );
    log.stop().await;
}

/// A batch goes to the sequencer just before the round, whatever its own
/// deadline: its entries join that round instead of the next one.
#[tokio::test(start_paused = true)]
async fn a_batch_is_sent_before_the_round_whatever_its_own_deadline() {
    let backends = Backends::new();
    let log = backends.start_with(10_000, Duration::from_secs(30)).await;
    let started = tokio::time::Instant::now();
    let location = log.submit(x509("just before the round", 1)).await.unwrap();
    assert_eq!(location.leaf_index, 0);
    let took = started.elapsed();
    assert!(
        took <= Duration::from_secs(1),
        "answered after {took:?}: the batch waited for its own deadline (30 s)"
    );
    log.stop().await;
}

/// Every new entry's answer carries its own SCT signature, made while its
/// round waited on storage (here, checkpoint writes held a second), also in
/// batches that mix in entries logged before; an entry logged before gets
/// none. The signing thread runs only on otherwise idle cores, so with
/// other tests busy a round may end before it is done: a few rounds are
/// tried. On the real clock, for it to sign while the round waits.
#[tokio::test]
async fn each_new_entry_gets_its_own_sct_signature_made_ahead() {
    let backends = Backends::new();
    let log = backends.start(10_000).await;
    let known: Vec<Entry> = (0..3).map(|i| x509(&format!("known {i}"), 1)).collect();
    for entry in &known {
        log.submit(entry.clone()).await.unwrap();
    }
    log.stop().await;
    // A new process: the known entries come from layer 2, in the batches.
    let log = backends.start(10_000).await;
    let mut complete = false;
    for attempt in 0..5 {
        let new: Vec<Entry> = (0..12)
            .map(|i| x509(&format!("new {attempt} {i}"), 1))
            .collect();
        backends
            .store
            .inject("checkpoint", Fault::Late(Duration::from_secs(1)), 2);
        let answers: Vec<_> = new
            .iter()
            .chain(&known)
            .map(|entry| log.place(entry.clone(), Priority::Normal))
            .collect();
        let mut made = 0;
        for (entry, answer) in new.iter().chain(&known).zip(answers) {
            let placed = answer.await.unwrap().unwrap();
            let Some(presigned) = placed.presigned else {
                assert!(known.contains(entry), "a new entry has a slot");
                continue;
            };
            let Location {
                leaf_index,
                timestamp,
            } = placed.location;
            if let Some(signature) = presigned.get() {
                assert_eq!(
                    signature,
                    Sct::signature(&key(), entry, timestamp, leaf_index)
                );
                made += 1;
            }
        }
        if made == new.len() {
            complete = true;
            break;
        }
    }
    assert!(complete, "no round signed all its SCTs ahead");
    log.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_leaf_decides_identity_not_the_chain() {
    let backends = Backends::new();
    let log = backends.start(10_000).await;
    let first = log.submit(x509("leaf", 1)).await.unwrap();
    let other_chain = log.submit(x509("leaf", 2)).await.unwrap();
    assert_eq!(
        first, other_chain,
        "the same leaf with a different chain is the same entry"
    );
    let as_precert = log.submit(precert("leaf")).await.unwrap();
    assert_ne!(
        as_precert.leaf_index, first.leaf_index,
        "a precert and a final cert are different entries"
    );
    log.stop().await;
}

#[tokio::test(start_paused = true)]
async fn resubmission_after_a_restart_keeps_its_location() {
    let backends = Backends::new();
    let log = backends.start(10_000).await;
    let mut first = Vec::new();
    for i in 0..20 {
        first.push(log.submit(x509(&format!("cert {i}"), 1)).await.unwrap());
    }
    log.stop().await;
    assert!(backends.dir.path().join("dedup.db").exists());
    // Each new entry's leaf hash was recorded with it, for get-proof-by-hash.
    let db = SqliteDedup::open(&backends.dir.path().join("dedup.db"), "0123").unwrap();
    for (i, location) in first.iter().enumerate() {
        let leaf =
            x509(&format!("cert {i}"), 1).merkle_tree_leaf(location.timestamp, location.leaf_index);
        let found = db.leaf_index(leaf_hash(&leaf)).await.unwrap();
        assert_eq!(found, Some(location.leaf_index), "leaf hash of cert {i}");
    }
    // A new process: empty layer 1, the same layer-2 file.
    let log = backends.start(10_000).await;
    for (i, location) in first.iter().enumerate() {
        assert_eq!(
            log.submit(x509(&format!("cert {i}"), 1)).await.unwrap(),
            *location,
            "cert {i}"
        );
    }
    assert_eq!(
        log.submit(x509("new", 1)).await.unwrap().leaf_index,
        20,
        "no duplicate entries were added"
    );
    log.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_pool_refuses_low_priority_first_but_answers_known_entries() {
    let backends = Backends::new();
    let log = backends.start(4).await;
    let known: Location = log.submit(x509("known", 1)).await.unwrap();
    // Three new entries wait for the next round; the pool (4) is 3/4 full.
    let waiting: Vec<_> = (0..3)
        .map(|i| log.send(x509(&format!("w{i}"), 1), Priority::Normal))
        .collect();
    let low = log.send(x509("low", 1), Priority::Low).await;
    assert!(
        matches!(low, Err(Rejected::PoolFull)),
        "low priority is refused past half the pool: {low:?}"
    );
    let fourth = log.send(x509("w3", 1), Priority::Normal);
    let refused = log.send(x509("w4", 1), Priority::Normal).await;
    assert!(
        matches!(refused, Err(Rejected::PoolFull)),
        "a full pool refuses new entries: {refused:?}"
    );
    assert_eq!(
        log.submit(x509("known", 1)).await.unwrap(),
        known,
        "dedup hits are answered when full"
    );
    // Joining an entry already waiting takes no new slot.
    let joined = log.send(x509("w0", 1), Priority::Normal);
    let mut indexes = Vec::new();
    for answer in waiting.into_iter().chain([fourth, joined]) {
        indexes.push(answer.await.unwrap().leaf_index);
    }
    let joined = indexes.pop().unwrap();
    assert_eq!(joined, indexes[0], "the joiner shares w0's entry");
    indexes.sort();
    assert_eq!(
        indexes,
        [1, 2, 3, 4],
        "each admitted entry got its own index"
    );
    // The round freed the pool.
    assert_eq!(
        log.send(x509("low", 1), Priority::Low)
            .await
            .unwrap()
            .leaf_index,
        5
    );
    log.stop().await;
}

/// A dedup record that points outside the published tree (a corrupt
/// record, or one of another log) is never answered: the entry is logged
/// anew, and a later resubmission gets that new location.
#[tokio::test(start_paused = true)]
async fn records_outside_the_tree_are_never_answered() {
    let backends = Backends::new();
    let log = backends.start(10_000).await;
    let first = log.submit(x509("first", 1)).await.unwrap();
    log.stop().await;
    let path = backends.dir.path().join("dedup.db");
    let db = SqliteDedup::open(&path, "0123").unwrap();
    let entry = x509("planted", 1);
    let beyond = Location {
        leaf_index: 1_000,
        timestamp: first.timestamp,
    };
    let future = Location {
        leaf_index: 0,
        timestamp: first.timestamp + 3_600_000,
    };
    let other = x509("planted in the future", 1);
    let planted = |entry: &Entry, location: Location| Record {
        key: entry.dedup_key(),
        location,
        leaf_hash: leaf_hash(&entry.merkle_tree_leaf(location.timestamp, location.leaf_index)),
    };
    db.insert(vec![planted(&entry, beyond), planted(&other, future)])
        .await
        .unwrap();
    drop(db);

    let log = backends.start(10_000).await;
    let logged = log.submit(entry.clone()).await.unwrap();
    assert_eq!(
        logged.leaf_index, 1,
        "logged anew, not answered with index 1000"
    );
    let logged_other = log.submit(other).await.unwrap();
    assert_eq!(logged_other.leaf_index, 2);
    assert!(logged_other.timestamp < future.timestamp);
    assert_eq!(log.submit(entry).await.unwrap(), logged, "and remembered");
    log.stop().await;
}
