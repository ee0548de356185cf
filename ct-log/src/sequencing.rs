//! Where a log's entries get their index: this process's batchers and
//! sequencer while it holds the log's lease, or else the active sequencer
//! of the log on another process, through the internal API (`forward`).

use std::sync::Arc;

use ct_batcher::{Batchers, Placed, Priority, Rejected};
use ct_formats::Entry;
use ct_sequencer::{SequencerHandle, SequencingError};
use tokio::sync::watch;

use crate::forward::Forwarder;
use crate::refused::Refused;

/// A log's sequencer running in this process, and its batchers.
pub struct Local {
    pub batchers: Batchers,
    pub sequencer: SequencerHandle,
}

/// How one log's entries are sequenced from this process.
pub struct Sequencing {
    /// Set once this process's sequencer has claimed the log (never, for
    /// a frontend).
    local: watch::Receiver<Option<Arc<Local>>>,
    /// Other processes that may sequence the log, for frontends and for
    /// clustered processes standing by.
    remote: Option<Forwarder>,
}

impl Sequencing {
    pub fn new(
        local: watch::Receiver<Option<Arc<Local>>>,
        remote: Option<Forwarder>,
    ) -> Sequencing {
        Sequencing { local, remote }
    }

    /// This process's sequencer, while it holds the log's lease.
    pub fn active_here(&self) -> Option<Arc<Local>> {
        self.local
            .borrow()
            .clone()
            .filter(|local| local.sequencer.is_active())
    }

    /// The location of `entry`: from this process's sequencer if it is
    /// active, else from another one (which signs no SCT ahead for it).
    pub async fn locate(&self, entry: Entry, priority: Priority) -> Result<Placed, Refused> {
        match (self.active_here(), &self.remote) {
            (None, Some(remote)) => Ok(Placed {
                location: remote.locate(&entry, priority).await?,
                presigned: None,
            }),
            _ => self.locate_here(entry, priority).await,
        }
    }

    /// The location of `entry` from this process's own batchers; refused
    /// while its sequencer stands by.
    pub async fn locate_here(&self, entry: Entry, priority: Priority) -> Result<Placed, Refused> {
        let local = self.active_here().ok_or(Refused::StandingBy)?;
        let waiting = local
            .batchers
            .submit(entry, priority)
            .map_err(|busy| Refused::Busy(busy.to_string()))?;
        drop(local);
        let stopped = || Refused::Failed("the log stopped before sequencing the entry".into());
        waiting
            .await
            .map_err(|_| stopped())?
            .map_err(|rejected| match rejected {
                Rejected::PoolFull => Refused::Busy(rejected.to_string()),
                Rejected::Failed(SequencingError::StandingBy) => Refused::StandingBy,
                Rejected::Failed(SequencingError::Unavailable(why)) => Refused::Busy(why),
                Rejected::Failed(e) => Refused::Failed(e.to_string()),
            })
    }
}
