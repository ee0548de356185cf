//! The add-chain / add-pre-chain request body, as the server handles it:
//! JSON `{"chain": [<base64 DER>...]}` (a copy of `parse_chain` in
//! ct-log/src/http/submit.rs, which is private to the binary), then
//! `validate_chain` on both endpoints.
//!
//! Invariants: nothing panics; every error is one line; a chain accepted on
//! one endpoint is refused on the other, re-validates identically, and
//! satisfies `check_accepted` (stored issuers, defanged TBS, tile encoding).
#![no_main]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ct_log_fuzz::{real_roots, validate_both, wide_policy};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize)]
struct ChainRequest {
    chain: Vec<String>,
}

/// Same as the server's `parse_chain`: the error string becomes the 400 body.
fn parse_chain(body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let request: ChainRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))?;
    request
        .chain
        .iter()
        .enumerate()
        .map(|(i, b64)| {
            B64.decode(b64)
                .map_err(|e| format!("chain[{i}] is not valid base64: {e}"))
        })
        .collect()
}

fuzz_target!(|body: &[u8]| {
    match parse_chain(body) {
        Ok(chain) => {
            // What was decoded is exactly what the JSON said.
            let again: Vec<String> = chain.iter().map(|c| B64.encode(c)).collect();
            // serde_json skips the strings of ignored fields without
            // checking their UTF-8 or escapes, so a body the server takes
            // may not be strict JSON; check the chain only when it is.
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
                validate_both(&chain, real_roots(), &wide_policy());
                return;
            };
            // serde also reads a struct from a JSON array (`[[...]]`), as
            // the server does (reported: SPEC wants an object).
            let list = if v.is_array() { &v[0] } else { &v["chain"] };
            let strings: Vec<String> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            assert_eq!(again, strings, "base64 decoding is not canonical");
            validate_both(&chain, real_roots(), &wide_policy());
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
});
