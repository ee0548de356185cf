//! The crate's single error type. Every message is one human-readable line.

use thiserror::Error;

/// Everything that can go wrong when decoding, verifying or loading keys.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// Input ended in the middle of a structure.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Bytes left over after a structure that must fill its input.
    #[error("trailing bytes after {0}")]
    TrailingBytes(&'static str),
    /// A LogEntryType other than x509_entry (0) or precert_entry (1).
    #[error("unknown entry type {0}")]
    UnknownEntryType(u16),
    /// A chain fingerprint list whose byte count is not a multiple of 32.
    #[error("chain fingerprints are {0} bytes, not a multiple of 32")]
    BadFingerprints(usize),
    /// CtExtensions that are not exactly one leaf_index extension.
    #[error("bad CT extensions: {0}")]
    BadExtensions(&'static str),
    /// A private key that cannot be used as the log's key.
    #[error("bad log key: {0}")]
    Key(String),
    /// A DigitallySigned structure that is malformed or does not verify.
    #[error("bad signature: {0}")]
    Signature(&'static str),
    /// A checkpoint note that is malformed or not signed by the expected key.
    #[error("bad checkpoint: {0}")]
    Checkpoint(&'static str),
    /// A field longer than its length prefix can say.
    #[error("{0} is too long for its length prefix")]
    TooLong(&'static str),
    /// A Merkle inclusion or consistency proof that does not verify.
    #[error("invalid Merkle proof: {0}")]
    Proof(&'static str),
}
