//! Certificate chain parsing and validation on raw DER: the input is a
//! list of u16-length-prefixed certificates, validated against the dev root
//! (and the shared vectors' roots when present) on both endpoints, with the
//! server's policy window and with a window that accepts any NotAfter.
//!
//! Invariants: `validate_chain` never panics; every rejection is one line;
//! an accepted chain re-validates identically, its stored chain is the
//! submitted issuers plus one configured root, every certificate used is
//! X.509 v1-v3 (extensions only in v3), a precert's defanged TBS is the
//! original minus the poison, and the entry round-trips the tile format.
#![no_main]

use ct_log_fuzz::{policy, real_roots, split_chain, validate_both, wide_policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let chain = split_chain(data);
    validate_both(&chain, real_roots(), &wide_policy());
    validate_both(&chain, real_roots(), &policy());
});
