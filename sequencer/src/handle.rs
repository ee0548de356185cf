//! What the rest of the process sees of a log's sequencer: the batches it
//! takes, the answer each gets, and the handle that sends them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ct_formats::{Cosigner, Entry, Hash, LogKey, SignedCheckpoint};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::cleanup::Cleanup;

/// Where a batch's entries landed: consecutive indexes from `first_index`,
/// all with the round's `timestamp`, and each entry's leaf hash, in the
/// batch's order, as the round put it in the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequenced {
    pub first_index: u64,
    pub timestamp: u64,
    pub leaf_hashes: Vec<Hash>,
    /// The entries' SCT signatures that the round made ahead.
    pub signatures: Arc<SctSignatures>,
}

/// The SCT signatures of a batch's entries, in the batch's order, made on
/// an idle-priority thread while the round waited on storage: otherwise all of a
/// round's SCTs are signed at once after it, and the last answers wait for
/// that burst. Signing is deterministic, so a signature is the very bytes
/// whoever answers the entry would sign. A slot the round had no time for
/// stays empty, and whoever answers that entry signs it then.
#[derive(Debug, PartialEq, Eq)]
pub struct SctSignatures {
    slots: Box<[OnceLock<Vec<u8>>]>,
}

impl SctSignatures {
    pub(crate) fn empty(len: usize) -> SctSignatures {
        SctSignatures {
            slots: (0..len).map(|_| OnceLock::new()).collect(),
        }
    }

    pub(crate) fn fill(&self, position: usize, signature: Vec<u8>) {
        let _ = self.slots[position].set(signature);
    }

    /// The signature of the batch's entry at `position`, if made.
    pub fn get(&self, position: usize) -> Option<&[u8]> {
        self.slots.get(position)?.get().map(Vec::as_slice)
    }

    /// One entry's slot, to hand to whoever answers it.
    pub fn slot(self: &Arc<Self>, position: usize) -> PresignedSct {
        PresignedSct {
            batch: self.clone(),
            position,
        }
    }
}

/// One entry's slot in its batch's [`SctSignatures`].
#[derive(Clone, Debug)]
pub struct PresignedSct {
    batch: Arc<SctSignatures>,
    position: usize,
}

impl PresignedSct {
    /// The entry's SCT signature, if the round made it.
    pub fn get(&self) -> Option<&[u8]> {
        self.batch.get(self.position)
    }
}

/// Why a batch was not sequenced; the entries got no index.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SequencingError {
    /// This process does not hold the log's sequencing lease (it lost it,
    /// or never had it): the active sequencer runs elsewhere.
    #[error("this log's sequencer here is standing by; retry later")]
    StandingBy,
    /// The round could not run now, for a reason that may pass (the clock
    /// is behind the log's last checkpoint): retry later.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// A batch of entries to sequence together, and where to send the result.
pub struct Batch {
    pub entries: Vec<Entry>,
    pub reply: oneshot::Sender<Result<Sequenced, SequencingError>>,
}

/// What a sequencer needs to know about its log.
#[derive(Clone)]
pub struct LogConfig {
    /// The log's short name, for metrics labels.
    pub name: String,
    /// The checkpoint origin (submission prefix without scheme).
    pub origin: String,
    pub key: Arc<LogKey>,
    /// Extra checkpoint signers (cosignature lines after the RFC 6962 one).
    pub cosigners: Arc<[Cosigner]>,
    /// How often a round runs.
    pub period: Duration,
    /// At most this many entries wait for one round; beyond it, batches
    /// stay queued in the channel and the senders feel back-pressure.
    pub pool_size: usize,
    /// How long `start` waits for another holder's claim to lapse before
    /// refusing; `None` waits as long as it takes (a standby sequencer).
    /// Lease-based locks keep a crashed holder's lease until it expires, so
    /// a restart must outwait it; an OS-lock claim (SQLite) is released at
    /// the holder's death and needs no wait.
    pub claim_wait: Option<Duration>,
    /// Whether `start` may create the log when neither the lock nor storage
    /// knows it (otherwise it refuses: creation is an explicit act).
    pub create: bool,
    /// Whether and how full tiles' partial versions are deleted.
    pub cleanup: Option<Cleanup>,
    /// Whether rounds sign their entries' SCTs ahead ([`SctSignatures`]):
    /// a server does, for the requests it answers; a tool whose rounds
    /// answer no request (a benchmark, a prefill) does not.
    pub sign_ahead: bool,
}

/// The sending side of a running sequencer.
#[derive(Clone)]
pub struct SequencerHandle {
    pub(crate) batches: mpsc::Sender<Batch>,
    pub(crate) published: watch::Receiver<SignedCheckpoint>,
    pub(crate) active: watch::Receiver<bool>,
    pub(crate) trouble: watch::Receiver<Option<String>>,
    pub(crate) round_time: watch::Receiver<Duration>,
    pub(crate) next_round: watch::Receiver<Instant>,
}

impl SequencerHandle {
    /// Queues `batch` for a coming round. Gives the batch back if the
    /// sequencer has stopped.
    pub async fn send(&self, batch: Batch) -> Result<(), Batch> {
        self.batches.send(batch).await.map_err(|e| e.0)
    }

    /// The latest checkpoint published to storage (for health and status).
    pub fn published(&self) -> watch::Receiver<SignedCheckpoint> {
        self.published.clone()
    }

    /// Whether the sequencer holds its lease now: `false` after it lost
    /// it and while it waits to claim it again.
    pub fn is_active(&self) -> bool {
        *self.active.borrow()
    }

    /// How long rounds take lately (a moving average): part of every
    /// submission's wait, which admission control keeps within its budget.
    pub fn round_time(&self) -> Duration {
        *self.round_time.borrow()
    }

    /// When the next round is due to start: an entry pooled before then
    /// gets its SCT one round time later, one pooled after waits a period
    /// more. Admission control sizes a submission's wait with it.
    pub fn next_round(&self) -> Instant {
        *self.next_round.borrow()
    }

    /// Why rounds fail now for a reason an operator must fix (this
    /// machine's clock is behind the log), for `/health`; `None` once a
    /// round succeeds again.
    pub fn trouble(&self) -> Option<String> {
        self.trouble.borrow().clone()
    }
}
