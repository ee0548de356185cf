//! The newest checkpoint published for a log, for health and status
//! pages: the local sequencer's while it is active, else the one in
//! storage, verified with the log's key.

use std::sync::Arc;
use std::time::Duration;

use ct_formats::{open_checkpoint, LogKey, SignedCheckpoint};
use ct_storage::ObjectStore;
use tokio::sync::watch;

use crate::sequencing::Local;

/// Follows one log's published checkpoint.
pub struct Follower {
    pub store: Arc<dyn ObjectStore>,
    pub origin: String,
    pub key: Arc<LogKey>,
    pub local: watch::Receiver<Option<Arc<Local>>>,
}

impl Follower {
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
