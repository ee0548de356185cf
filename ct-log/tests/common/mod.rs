//! What the `ct-log` tests add to `ct_testkit` (whose `client`, `pki`,
//! `server`, `verify`, `hostile` and `cluster` modules they use): the path
//! of the binary under test, which only this package's tests know.

/// The `ct-log` binary built for these tests.
pub const CT_LOG: &str = env!("CARGO_BIN_EXE_ct-log");
