//! `ct-log`: a Certificate Transparency log server for the static CT API.
//!
//! The modules, from the leaves up (each uses only those above it):
//! - `config`: the operator's TOML file and the process's role;
//! - `internal_api`, `refused`, `object_cache`, `roots`, `acme`: the
//!   internal API's wire format, the refusal of an entry, the read cache, a
//!   log's roots, the HTTPS certificate from an ACME CA;
//! - `forward`, `sequencing`: where an entry gets its index, here or on
//!   another process;
//! - `lag`: how long ready work waits for the async workers;
//! - `log`, `published`, `admission`: a running log, its newest checkpoint,
//!   and whether it can take one more submission in time;
//! - `tree`: the published tree read back from storage (proofs, entries);
//! - `wiring`: building each log from the config and the role;
//! - `http`: every endpoint (it depends on the log, never the reverse);
//! - `listener`: serving HTTP without letting clients starve the log;
//! - `serve`, `create`, `audit`, `submit`, `keygen`, `check_config`,
//!   `reindex`: the subcommands `main.rs` dispatches to.

pub mod acme;
pub mod admission;
pub mod audit;
pub mod check_config;
pub mod config;
pub mod create;
pub mod forward;
pub mod http;
pub mod internal_api;
pub mod keygen;
pub mod keys;
pub mod lag;
pub mod listener;
pub mod log;
pub mod object_cache;
pub mod published;
pub mod refused;
pub mod reindex;
pub mod roots;
pub mod sequencing;
pub mod serve;
pub mod submit;
pub mod tree;
pub mod wiring;
