//! Client side of a static-ct-api Certificate Transparency log: what a CA or
//! a monitor needs to trust this log, or any other static-CT log.
//!
//! It owns reading a log from `http(s)://` or from a local directory (a
//! bucket mirror), with bounded sizes, timeouts and retries; fetching and
//! verifying checkpoints, hash and data tiles (gzip or not, partial tiles
//! falling back to full ones) and issuers; computing Merkle proofs from
//! tiles; auditing a whole log, incrementally from a saved state; and
//! submitting a chain and checking what the log answers.
//!
//! It must never re-implement a byte layout or a Merkle rule: those belong
//! to `ct-formats`, and chain rules to `ct-validate`. It must never trust
//! what it fetches: every hash, entry, issuer and signature is checked
//! before it is reported as good, and it must never print or exit: callers
//! (the `ct-log` CLI, tests) decide how to report.

mod audit;
mod edge;
mod error;
mod fetch;
mod keys;
mod proof;
mod source;
mod state;
mod submit;

pub use audit::{audit, audit_trusted, AuditOptions, AuditReport, Progress, Scope, TrustedHead};
pub use error::Error;
pub use fetch::LogClient;
pub use keys::load_verifying_key;
pub use proof::{capture, consistency_plan, inclusion_plan, Node, ProofPlan, TileLookups};
pub use source::Source;
pub use state::AuditState;
pub use submit::{read_chain_pem, submit, Submission, SubmitOptions};

/// Everything this crate returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;
