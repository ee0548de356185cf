//! Batchers: the hop between the frontend and a log's sequencer.
//!
//! A log runs N batcher tasks. The frontend picks one by consistent hashing
//! of the entry's dedup key (jump hashing, so changing N moves few keys and
//! identical submissions always meet in the same batcher). A batcher
//! collects entries until the batch is full or a short deadline passes,
//! collapses identical entries within the batch, sends the sequencer one
//! message per batch, and fans the result back out to every waiting request.
//!
//! A batcher owns only the batch it is building; it never touches the tree.

use std::collections::HashMap;
use std::time::Duration;

use ct_formats::{Entry, Hash};
use ct_sequencer::{Batch, Sequenced, SequencerHandle, SequencingError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

/// The answer a request waits for.
pub type Reply = Result<Sequenced, SequencingError>;

/// How the batchers of one log behave.
#[derive(Clone, Debug)]
pub struct BatcherConfig {
    /// Number of batcher tasks.
    pub batchers: usize,
    /// A batch is sent once it holds this many entries...
    pub max_batch: usize,
    /// ...or this long after its first entry arrived.
    pub max_wait: Duration,
    /// Requests each batcher queues before the frontend is told to back off.
    pub queue: usize,
}

/// The batcher's queue is full: the caller should answer 503.
#[derive(Debug, thiserror::Error)]
#[error("the log is busy; retry later")]
pub struct Busy;

struct Submission {
    entry: Entry,
    key: Hash,
    reply: oneshot::Sender<Reply>,
}

/// The submitting side of a log's batchers. Dropping it stops them (after
/// their last batch), which in turn lets the sequencer finish.
pub struct Batchers {
    queues: Vec<mpsc::Sender<Submission>>,
}

impl Batchers {
    /// Starts `config.batchers` batcher tasks feeding `sequencer`.
    pub fn spawn(config: &BatcherConfig, sequencer: SequencerHandle) -> Batchers {
        let queues = (0..config.batchers.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel(config.queue.max(1));
                let span = tracing::debug_span!("batcher", id = i);
                tokio::spawn(run(rx, sequencer.clone(), config.clone()).instrument(span));
                tx
            })
            .collect();
        Batchers { queues }
    }

    /// Queues `entry` on the batcher its dedup key hashes to, without
    /// waiting. The receiver resolves once the entry is sequenced.
    pub fn submit(&self, entry: Entry) -> Result<oneshot::Receiver<Reply>, Busy> {
        let key = entry.dedup_key();
        let (reply, receiver) = oneshot::channel();
        let queue = &self.queues[jump_hash(&key, self.queues.len())];
        queue
            .try_send(Submission { entry, key, reply })
            .map_err(|_| Busy)?;
        Ok(receiver)
    }
}

/// Jump consistent hashing (Lamport & Veach) of a 32-byte key into
/// `buckets` buckets: growing from N to N+1 moves only ~1/(N+1) of keys.
pub fn jump_hash(key: &Hash, buckets: usize) -> usize {
    let mut k = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets as i64 {
        b = j;
        k = k.wrapping_mul(2862933555777941757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((k >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as usize
}

/// One batcher: gather a batch, hand it over, repeat until the queue closes.
async fn run(
    mut queue: mpsc::Receiver<Submission>,
    sequencer: SequencerHandle,
    config: BatcherConfig,
) {
    while let Some(first) = queue.recv().await {
        let deadline = Instant::now() + config.max_wait;
        let mut batch = vec![first];
        while batch.len() < config.max_batch {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(submission)) => batch.push(submission),
                Ok(None) | Err(_) => break,
            }
        }
        dispatch(&sequencer, batch).await;
    }
}

/// Sends one batch to the sequencer, with identical entries collapsed into
/// one, and spawns the fan-out of its result.
async fn dispatch(sequencer: &SequencerHandle, batch: Vec<Submission>) {
    let mut entries = Vec::with_capacity(batch.len());
    let mut offsets: HashMap<Hash, u64> = HashMap::with_capacity(batch.len());
    let mut waiters = Vec::with_capacity(batch.len());
    for Submission { entry, key, reply } in batch {
        let offset = *offsets.entry(key).or_insert_with(|| {
            entries.push(entry);
            entries.len() as u64 - 1
        });
        waiters.push((offset, reply));
    }
    let (reply, result) = oneshot::channel();
    if sequencer.send(Batch { entries, reply }).await.is_err() {
        fan_out(
            Err(SequencingError("the log's sequencer has stopped".into())),
            waiters,
        );
        return;
    }
    tokio::spawn(async move {
        let result = result
            .await
            .unwrap_or_else(|_| Err(SequencingError("the sequencer dropped the batch".into())));
        fan_out(result, waiters);
    });
}

/// Gives each waiter its own index: the batch's first index plus its offset.
fn fan_out(result: Reply, waiters: Vec<(u64, oneshot::Sender<Reply>)>) {
    for (offset, reply) in waiters {
        let answer = result.clone().map(|s| Sequenced {
            first_index: s.first_index + offset,
            timestamp: s.timestamp,
        });
        let _ = reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Hash {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&i.wrapping_mul(0x9E3779B97F4A7C15).to_be_bytes());
        k
    }

    #[test]
    fn jump_hash_spreads_evenly_and_moves_few_keys() {
        let n = 8;
        let keys: Vec<Hash> = (0..80_000).map(key).collect();
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
