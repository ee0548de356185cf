//! The crate's error type. Every message is one line naming the object
//! (URL, file or tile path) it is about, so the first inconsistency an audit
//! finds can be printed as is.

use ct_formats::FormatError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The object could not be read: transport error, unexpected status,
    /// I/O error, or still failing after the bounded retries.
    #[error("{object}: {reason}")]
    Fetch { object: String, reason: String },
    /// The log does not serve an object it must serve.
    #[error("{object}: not found")]
    NotFound { object: String },
    /// The object is larger than anything a well-behaved log serves.
    #[error("{object}: larger than {limit} bytes")]
    TooLarge { object: String, limit: u64 },
    /// The object does not parse or its signature does not verify.
    #[error("{object}: {source}")]
    Format {
        object: String,
        #[source]
        source: FormatError,
    },
    /// The log contradicts itself or an earlier audit: the finding an audit
    /// exists for.
    #[error("{0}")]
    Inconsistent(String),
    /// The log refused a submission.
    #[error("{url}: HTTP {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    /// Bad input from the caller: location, key, chain or state file.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub(crate) fn format(object: impl Into<String>, source: FormatError) -> Error {
        Error::Format {
            object: object.into(),
            source,
        }
    }
}
