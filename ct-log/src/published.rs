//! The newest checkpoint published for a log, for health and status
//! pages and the RFC 6962 read API: the local sequencer's while it is
//! active, else the one in storage, verified with the log's key.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ct_formats::{open_checkpoint, LogKey, SignedCheckpoint};
use ct_storage::ObjectStore;
use tokio::sync::watch;

use crate::sequencing::Local;

/// A request naming a tree newer than the one this process follows reads
/// the newest checkpoint again at most this often: a client may have seen
/// a checkpoint first (from storage, or from another frontend), but a
/// flood of requests naming sizes beyond the tree must not turn into a
/// flood of storage reads and signature checks.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// Follows one log's published checkpoint. Clones share the last refresh.
#[derive(Clone)]
pub struct Follower {
    pub store: Arc<dyn ObjectStore>,
    pub origin: String,
    pub key: Arc<LogKey>,
    pub local: watch::Receiver<Option<Arc<Local>>>,
    /// When `refresh` last read the newest checkpoint, and what it found.
    pub refreshed: Arc<Mutex<Refreshed>>,
}

/// The last checkpoint read by [`Follower::refresh`].
#[derive(Default)]
pub struct Refreshed {
    at: Option<Instant>,
    checkpoint: Option<SignedCheckpoint>,
}

impl Follower {
    /// The newest checkpoint, for a request naming a tree larger than the
    /// one followed: read afresh unless a read was made in the last
    /// [`REFRESH_INTERVAL`], in which case that read's result.
    pub async fn refresh(&self) -> Option<SignedCheckpoint> {
        {
            let mut refreshed = self.refreshed.lock().unwrap();
            if refreshed
                .at
                .is_some_and(|at| at.elapsed() < REFRESH_INTERVAL)
            {
                return refreshed.checkpoint.clone();
            }
            refreshed.at = Some(Instant::now());
        }
        let newest = self.newest().await;
        self.refreshed.lock().unwrap().checkpoint = newest.clone();
        newest
    }

    pub async fn newest(&self) -> Option<SignedCheckpoint> {
        let local = self.local.borrow().clone();
        if let Some(local) = local.filter(|l| l.sequencer.is_active()) {
            return Some(local.sequencer.published().borrow().clone());
        }
        let note = self.store.get("checkpoint").await.ok()??;
        open_checkpoint(&note, &self.origin, self.key.verifying_key())
            .inspect_err(|e| tracing::warn!(error = %e, "the stored checkpoint does not verify"))
            .ok()
    }

    /// Updates `published` every `period` until the log is dropped.
    pub async fn follow(
        self,
        period: Duration,
        published: watch::Sender<Option<SignedCheckpoint>>,
    ) {
        loop {
            tokio::select! {
                () = published.closed() => return,
                () = tokio::time::sleep(period) => {}
            }
            if let Some(newest) = self.newest().await {
                published.send_if_modified(|known| {
                    let newer = known
                        .as_ref()
                        .is_none_or(|k| newest.timestamp > k.timestamp);
                    if newer {
                        *known = Some(newest);
                    }
                    newer
                });
            }
        }
    }
}
