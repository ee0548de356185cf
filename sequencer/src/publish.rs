//! Publishing the checkpoint monitors read, the one mutable object in
//! storage. A checkpoint never replaces a newer one: each write is
//! conditional on the version just read, after checking that what it
//! replaces is older. So a publish that lands late (a sequencer that lost
//! its lease mid-PUT, a retry stuck in the network) fails instead of
//! rolling the log back.

use ct_formats::{open_checkpoint, FormatError, SignedCheckpoint};
use ct_storage::{PutIf, StorageError, WriteCondition};

use crate::log::Log;
use crate::upload::put_if_counted;

/// Reads and conditional writes tried before giving up on a key that
/// keeps changing under us.
const ATTEMPTS: usize = 3;

/// Why a checkpoint was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// Storage holds a checkpoint at least as new: another sequencer
    /// published it, so this one's view is stale.
    #[error("storage already holds a newer checkpoint (size {size}, timestamp {timestamp}); not replacing it")]
    Newer { size: u64, timestamp: u64 },
    #[error("the stored checkpoint does not verify with this log's key and origin: {0}")]
    Foreign(FormatError),
    #[error("the stored checkpoint kept changing during {ATTEMPTS} attempts")]
    Raced,
}

/// Publishes `checkpoint` unless storage holds one at least as new.
pub(crate) async fn publish(log: &Log, checkpoint: &SignedCheckpoint) -> Result<(), PublishError> {
    for _ in 0..ATTEMPTS {
        let current = log.store.get_versioned("checkpoint").await?;
        let condition = match &current {
            None => WriteCondition::Absent,
            Some((note, version)) => {
                if older_than(log, note, checkpoint)? {
                    WriteCondition::Matches(version)
                } else {
                    return Ok(());
                }
            }
        };
        let note = bytes::Bytes::from(checkpoint.note.clone());
        match put_if_counted(&log.store, &log.name, "checkpoint", note, condition).await? {
            PutIf::Written(_) => return Ok(()),
            // An earlier attempt whose answer was lost may have landed: the
            // next read tells (then `older_than` finds our own note).
            PutIf::ConditionFailed { .. } => continue,
        }
    }
    Err(PublishError::Raced)
}

/// Whether the stored `note` is older than `checkpoint`: `Ok(false)` when
/// it is `checkpoint` itself (already published), an error when it is
/// newer or not this log's.
fn older_than(log: &Log, note: &[u8], checkpoint: &SignedCheckpoint) -> Result<bool, PublishError> {
    if note == checkpoint.note.as_slice() {
        return Ok(false);
    }
    let stored = open_checkpoint(note, &log.origin, log.key.verifying_key())
        .map_err(PublishError::Foreign)?;
    let (size, timestamp) = (stored.checkpoint.size, stored.timestamp);
    if timestamp >= checkpoint.timestamp || size > checkpoint.checkpoint.size {
        return Err(PublishError::Newer { size, timestamp });
    }
    Ok(true)
}
