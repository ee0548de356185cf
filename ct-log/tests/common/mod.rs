//! Shared helpers of the `ct-log` end-to-end tests (tests/e2e.rs, tests/kill.rs).
//!
//! - [`pki`]: a throw-away rcgen PKI (root, intermediate, leaves/precerts);
//! - [`server`]: config and key files, launching `ct-log serve`, port
//!   discovery, SIGKILL on drop;
//! - [`client`]: HTTP helpers, add-(pre-)chain submission, SCT parsing;
//! - [`verify`]: SCT and full-log verification against the Azul oracle.
//!
//! These helpers deliberately use none of the project's own crates.
//! Each test binary uses only some of them, hence `dead_code` is allowed.

#![allow(dead_code)]

pub mod client;
pub mod hostile;
pub mod pki;
pub mod server;
pub mod verify;
