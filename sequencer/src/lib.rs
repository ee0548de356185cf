//! The per-log sequencer: the single owner of a log's tree.
//!
//! Exactly one sequencer runs per log. It receives batches of entries, and
//! every period runs one round (see `round`) that assigns indexes, writes
//! tiles, commits the new checkpoint to the lock backend and publishes it,
//! then answers each batch with its first index and the round's timestamp.
//!
//! It owns the tree's right edge and nothing else; it never validates
//! certificates or deduplicates, and never answers a request — those belong
//! to the frontend and batchers. (It does sign SCTs ahead, while a round
//! waits on storage, for the frontend to use once the round is published.)
//! It must never answer a batch before the checkpoint covering
//! it is published, and never sign a checkpoint that does not extend the one
//! in the lock.

mod cleanup;
mod clock;
mod edge;
mod gzip;
mod handle;
mod load;
mod log;
mod publish;
mod round;
mod sequencer;
mod staging;
mod upload;
mod worker;

pub use cleanup::{Cleanup, PROGRESS_KEY as CLEANUP_PROGRESS_KEY};
pub use clock::{now_millis, MAX_AHEAD_MS};
pub use handle::{
    Batch, LogConfig, PresignedSct, SctSignatures, Sequenced, SequencerHandle, SequencingError,
};
pub use load::LoadError;
pub use publish::PublishError;
pub use sequencer::{create, report_active, start};
