//! Why an entry got no location: the one refusal of local sequencing, of
//! forwarding to another process and of the internal API. The HTTP layer
//! turns it into a status (`http::error`).

/// Why an entry got no location.
#[derive(Debug)]
pub enum Refused {
    /// Full pool, or no sequencer reachable: retry later (503).
    Busy(String),
    /// This process does not sequence the log now.
    StandingBy,
    /// The round failed; the entry got no index.
    Failed(String),
}
