//! Batchers: the hop between the frontend and a log's sequencer, and the
//! owners of deduplication.
//!
//! A log runs N batcher tasks. The frontend picks one by jump consistent
//! hashing of the entry's dedup key, so identical submissions always meet in
//! the same batcher, and changing N moves few keys. Each batcher owns:
//! - its shard of the layer-1 dedup cache (recently logged keys);
//! - the keys in flight: in the batch being built or at the sequencer.
//!
//! Identical submissions therefore collapse into one entry without any
//! shared lock. A batch is sent once it is full or its deadline passes; its
//! keys are first looked up in the persistent layer 2 (entries logged before
//! this process started), the rest go to the sequencer in one message, and
//! the answers fan back out to every waiting request. The batcher, not the
//! sequencer, writes the new dedup records, each with the entry's leaf hash
//! (the RFC 6962 read API's leaf-hash index).
//!
//! A batcher never touches the tree, and never answers a new entry with an
//! index the sequencer did not give it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ct_dedup::{DedupWriter, Key, Location, MemoryCache, PersistentDedup, Record};
use ct_formats::{Entry, Hash};
use ct_sequencer::{Batch, PresignedSct, Sequenced, SequencerHandle, SequencingError};
use metrics::Gauge;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

/// The answer a request waits for: where its entry is in the log.
pub type Reply = Result<Placed, Rejected>;

/// Where a request's entry is in the log, and, for an entry its round
/// just logged, the slot of the SCT signature the round may have made
/// ahead.
#[derive(Clone, Debug)]
pub struct Placed {
    pub location: Location,
    pub presigned: Option<PresignedSct>,
}

impl Placed {
    fn known(location: Location) -> Placed {
        Placed {
            location,
            presigned: None,
        }
    }
}

/// Why a submission got no location.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Rejected {
    /// Too many entries are waiting for a round; retry shortly.
    #[error("the log's pool is full; retry later")]
    PoolFull,
    #[error("{0}")]
    Failed(SequencingError),
}

/// Which entries give way first when the pool fills up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    Normal,
    /// Entries that matter least for a CA: precertificates whose NotBefore
    /// is long past (likely retries of already-issued certificates) and
    /// final certificates that already carry SCTs. Admitted only while the
    /// pool is less than half full.
    Low,
}

/// How the batchers of one log behave.
#[derive(Clone, Debug)]
pub struct BatcherConfig {
    /// The log's short name, for metrics labels.
    pub log: String,
    /// Number of batcher tasks.
    pub batchers: usize,
    /// A batch is sent once it holds this many entries...
    pub max_batch: usize,
    /// ...or this long after its first entry arrived.
    pub max_wait: Duration,
    /// New entries that may wait for sequencing at once, across batchers.
    pub pool_size: usize,
    /// Layer-1 dedup entries, across batchers.
    pub memory_entries: usize,
}

/// How long before a round a batch is sent whatever its size: room for
/// its dedup lookup and the hand-over, so that its entries join the round.
const ROUND_LEAD: Duration = Duration::from_millis(5);

/// A batcher's queue is full: the caller should answer 503.
#[derive(Debug, thiserror::Error)]
#[error("the log is busy; retry later")]
pub struct Busy;

struct Submission {
    entry: Entry,
    key: Key,
    priority: Priority,
    reply: oneshot::Sender<Reply>,
}

/// What every batcher of a log shares.
struct Shared {
    config: BatcherConfig,
    sequencer: SequencerHandle,
    /// Layer 2: SQLite on one machine, or PostgreSQL shared by several.
    dedup: PersistentDedup,
    writer: DedupWriter,
    /// New entries accepted and not yet answered.
    pending: AtomicUsize,
    /// `ct_pool_entries` of this log: `pending`, set on every change through
    /// a handle (a labelled macro call would look it up each time).
    pool_gauge: Gauge,
}

impl Shared {
    /// Takes a pool slot for a new entry, if its priority still gets one.
    fn admit(&self, priority: Priority) -> bool {
        let limit = match priority {
            Priority::Normal => self.config.pool_size,
            Priority::Low => self.config.pool_size / 2,
        };
        let admitted = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        self.report_pool();
        admitted
    }

    fn report_pool(&self) {
        let pending = self.pending.load(Ordering::Acquire) as f64;
        self.pool_gauge.set(pending);
    }

    /// Whether a remembered `location` lies inside the published tree. A
    /// location at or past its size, or later than its checkpoint, cannot
    /// be this log's (a dedup store of another log, a corrupt record): it
    /// is never answered, and the entry is logged anew instead.
    fn plausible(&self, location: &Location, layer: &'static str) -> bool {
        let published = self.sequencer.published();
        let published = published.borrow();
        let (size, timestamp) = (published.checkpoint.size, published.timestamp);
        let fits = location.leaf_index < size && location.timestamp <= timestamp;
        if !fits {
            tracing::error!(
                layer,
                leaf_index = location.leaf_index,
                timestamp = location.timestamp,
                size,
                "a dedup record points outside the published tree; ignoring it"
            );
            let labels = [
                ("log", self.config.log.clone()),
                ("layer", layer.to_string()),
            ];
            metrics::counter!("ct_dedup_refused_total", &labels).increment(1);
        }
        fits
    }

    /// When a batch begun now must go: `max_wait` after its first entry, or
    /// just before the next round if that comes sooner. A batch still
    /// waiting when the round starts misses it and waits a whole period for
    /// the next, so a fixed wait alone (25 ms at a 1 s period) made that
    /// share of all entries (2.5%) wait an extra period, and added its
    /// length to the median answer time.
    fn batch_deadline(&self) -> Instant {
        let now = Instant::now();
        let before_round = self.sequencer.next_round().checked_sub(ROUND_LEAD);
        let own = now + self.config.max_wait;
        before_round.map_or(own, |t| own.min(t.max(now)))
    }

    /// Counts a submission answered without a new entry, by dedup layer.
    fn count_hit(&self, layer: &'static str) {
        let labels = [
            ("log", self.config.log.clone()),
            ("layer", layer.to_string()),
        ];
        metrics::counter!("ct_dedup_hits_total", &labels).increment(1);
    }
}

/// The submitting side of a log's batchers. Dropping it stops them once
/// their in-flight batches are answered, which in turn lets the sequencer
/// and the dedup writer finish.
pub struct Batchers {
    queues: Vec<mpsc::Sender<Submission>>,
}

impl Batchers {
    /// Starts `config.batchers` batcher tasks feeding `sequencer`, looking
    /// new keys up in `dedup` (layer 2) and recording them through `writer`.
    pub fn spawn(
        config: BatcherConfig,
        sequencer: SequencerHandle,
        dedup: PersistentDedup,
        writer: DedupWriter,
    ) -> Batchers {
        let n = config.batchers.max(1);
        let memory_per_batcher = config.memory_entries / n;
        // Room for every pool slot plus dedup hits, so a full queue is rare
        // and dedup hits still get through when the pool is full.
        let queue = config.pool_size.div_ceil(n) * 2 + 64;
        let pool_gauge = metrics::gauge!("ct_pool_entries", "log" => config.log.clone());
        let shared = Arc::new(Shared {
            config,
            sequencer,
            dedup,
            writer,
            pending: AtomicUsize::new(0),
            pool_gauge,
        });
        let queues = (0..n)
            .map(|i| {
                let (tx, rx) = mpsc::channel(queue);
                let batcher = Batcher::new(shared.clone(), memory_per_batcher);
                tokio::spawn(
                    batcher
                        .run(rx)
                        .instrument(tracing::debug_span!("batcher", id = i)),
                );
                tx
            })
            .collect();
        Batchers { queues }
    }

    /// Queues `entry` on the batcher its dedup key hashes to, without
    /// waiting. The receiver resolves once the entry has a location.
    pub fn submit(
        &self,
        entry: Entry,
        priority: Priority,
    ) -> Result<oneshot::Receiver<Reply>, Busy> {
        let key = entry.dedup_key();
        let (reply, receiver) = oneshot::channel();
        let queue = &self.queues[jump_hash(&key, self.queues.len())];
        queue
            .try_send(Submission {
                entry,
                key,
                priority,
                reply,
            })
            .map_err(|_| Busy)?;
        Ok(receiver)
    }
}

/// Jump consistent hashing (Lamport & Veach) of a 32-byte key into
/// `buckets` buckets: growing from N to N+1 moves only ~1/(N+1) of keys.
pub fn jump_hash(key: &Key, buckets: usize) -> usize {
    let mut k = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets as i64 {
        b = j;
        k = k.wrapping_mul(2862933555777941757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((k >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as usize
}

/// The answers for one batch: one result per key, in batch order.
struct Completed {
    keys: Vec<Key>,
    results: Vec<Reply>,
}

/// One batcher task's state.
struct Batcher {
    shared: Arc<Shared>,
    memory: MemoryCache,
    /// Requests waiting on each key in the batch being built or in flight.
    waiting: HashMap<Key, Vec<oneshot::Sender<Reply>>>,
    batch: Vec<(Key, Entry)>,
    deadline: Option<Instant>,
    in_flight: JoinSet<Completed>,
}

impl Batcher {
    fn new(shared: Arc<Shared>, memory_entries: usize) -> Batcher {
        Batcher {
            shared,
            memory: MemoryCache::new(memory_entries),
            waiting: HashMap::new(),
            batch: Vec::new(),
            deadline: None,
            in_flight: JoinSet::new(),
        }
    }

    /// Takes submissions, sends batches, and answers them, until the queue
    /// closes and every batch in flight is answered.
    async fn run(mut self, mut queue: mpsc::Receiver<Submission>) {
        let mut open = true;
        loop {
            let deadline = self.deadline;
            tokio::select! {
                submission = queue.recv(), if open => match submission {
                    Some(submission) => self.accept(submission),
                    None => {
                        open = false;
                        self.flush();
                    }
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => self.flush(),
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    self.complete(done.expect("batch tasks do not panic"));
                }
                else => return,
            }
        }
    }

    /// Answers a known key at once, joins a key already in flight, or adds
    /// a new entry to the batch if the pool has room for it.
    fn accept(&mut self, submission: Submission) {
        let Submission {
            entry,
            key,
            priority,
            reply,
        } = submission;
        let remembered = self.memory.get(&key);
        if let Some(location) = remembered.filter(|l| self.shared.plausible(l, "memory")) {
            self.shared.count_hit("memory");
            let _ = reply.send(Ok(Placed::known(location)));
            return;
        }
        if let Some(waiters) = self.waiting.get_mut(&key) {
            self.shared.count_hit("in_flight");
            waiters.push(reply);
            return;
        }
        if !self.shared.admit(priority) {
            let _ = reply.send(Err(Rejected::PoolFull));
            return;
        }
        self.waiting.insert(key, vec![reply]);
        self.batch.push((key, entry));
        if self.batch.len() == 1 {
            self.deadline = Some(self.shared.batch_deadline());
        }
        if self.batch.len() >= self.shared.config.max_batch {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.deadline = None;
        if !self.batch.is_empty() {
            self.in_flight.spawn(sequence_batch(
                self.shared.clone(),
                std::mem::take(&mut self.batch),
            ));
        }
    }

    /// Fans a batch's answers out to every request waiting on its keys.
    fn complete(&mut self, done: Completed) {
        self.shared
            .pending
            .fetch_sub(done.keys.len(), Ordering::AcqRel);
        self.shared.report_pool();
        for (key, result) in done.keys.into_iter().zip(done.results) {
            if let Ok(placed) = &result {
                self.memory.insert(key, placed.location);
            }
            for waiter in self.waiting.remove(&key).unwrap_or_default() {
                let _ = waiter.send(result.clone());
            }
        }
    }
}

/// Resolves one batch: keys already in layer 2 keep their location; the
/// rest are sequenced together and recorded in layer 2, each with its leaf
/// hash (for the RFC 6962 read API's get-proof-by-hash).
async fn sequence_batch(shared: Arc<Shared>, batch: Vec<(Key, Entry)>) -> Completed {
    let keys: Vec<Key> = batch.iter().map(|(key, _)| *key).collect();
    let known = shared.dedup.lookup(keys.clone()).await.unwrap_or_else(|e| {
        // Not fatal: at worst an old entry is logged a second time.
        tracing::warn!(error = %e, "dedup lookup failed; treating the batch as new");
        vec![None; keys.len()]
    });
    let known: Vec<Option<Location>> = known
        .into_iter()
        .map(|found| found.filter(|l| shared.plausible(l, "database")))
        .collect();
    let entries: Vec<Entry> = batch
        .into_iter()
        .zip(&known)
        .filter(|(_, found)| found.is_none())
        .map(|((_, entry), _)| entry)
        .collect();
    // Where the new entries landed (consecutive, from the first), each
    // with the leaf hash the round computed for the tree.
    let mut next = if entries.is_empty() {
        None
    } else {
        Some(sequence(&shared.sequencer, entries).await)
    };
    let mut records = Vec::new();
    let results = keys
        .iter()
        .zip(known)
        .map(|(key, found)| {
            if let Some(location) = found {
                shared.count_hit("database");
                return Ok(Placed::known(location));
            }
            let new = next
                .as_mut()
                .expect("new entries were sent to the sequencer")
                .as_mut()
                .map_err(|e| e.clone())?;
            let (location, leaf_hash, presigned) = new.next().expect("one answer per new entry");
            records.push(Record {
                key: *key,
                location,
                leaf_hash,
            });
            Ok(Placed {
                location,
                presigned: Some(presigned),
            })
        })
        .collect();
    if !records.is_empty() {
        shared.writer.record(records);
    }
    Completed { keys, results }
}

/// Sends new entries to the sequencer and waits for the round's answer:
/// each one's location, leaf hash and SCT slot, in order.
async fn sequence(
    sequencer: &SequencerHandle,
    entries: Vec<Entry>,
) -> Result<impl Iterator<Item = (Location, Hash, PresignedSct)>, Rejected> {
    let (reply, answer) = oneshot::channel();
    let stopped = || {
        Rejected::Failed(SequencingError::Failed(
            "the log's sequencer has stopped".into(),
        ))
    };
    sequencer
        .send(Batch { entries, reply })
        .await
        .map_err(|_| stopped())?;
    let sequenced = answer
        .await
        .map_err(|_| stopped())?
        .map_err(Rejected::Failed)?;
    let Sequenced {
        first_index,
        timestamp,
        leaf_hashes,
        signatures,
    } = sequenced;
    Ok((first_index..).zip(leaf_hashes).enumerate().map(
        move |(position, (leaf_index, leaf_hash))| {
            let location = Location {
                leaf_index,
                timestamp,
            };
            (location, leaf_hash, signatures.slot(position))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Key {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&i.wrapping_mul(0x9E3779B97F4A7C15).to_be_bytes());
        k
    }

    #[test]
    fn jump_hash_spreads_evenly_and_moves_few_keys() {
        let n = 8;
        let keys: Vec<Key> = (0..80_000).map(key).collect();
        let mut counts = vec![0usize; n];
        for k in &keys {
            counts[jump_hash(k, n)] += 1;
        }
        for c in &counts {
            assert!((8_000..12_000).contains(c), "uneven spread: {counts:?}");
        }
        let moved = keys
            .iter()
            .filter(|k| jump_hash(k, n) != jump_hash(k, n + 1))
            .count();
        assert!(moved < keys.len() / (n + 1) * 12 / 10, "moved {moved} keys");
        assert!(moved > 0);
        assert!(keys.iter().all(|k| jump_hash(k, 1) == 0));
    }
}
