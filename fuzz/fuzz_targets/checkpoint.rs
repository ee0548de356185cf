//! Checkpoint (signed note) parsing and verification: `open_checkpoint`.
//!
//! Mode 0, raw notes: nothing panics; a note that opens re-serialises to
//! the same body (its first three lines are exactly `Checkpoint::body()`,
//! the whole body when it has no extension lines) and re-signing the
//! opened checkpoint gives a note that opens to the same values.
//! Mode 1, notes signed here (with extension lines and foreign signature
//! lines chosen by the fuzzer): the note always opens to what was signed,
//! and after flipping any bits of one byte it either fails to open or still
//! opens to exactly the signed origin, size, root and timestamp (no
//! forgery by editing).
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::prelude::{Engine, BASE64_STANDARD};
use ct_formats::{open_checkpoint, Checkpoint, LogKey, SignedCheckpoint};
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::SigningKey;

const ORIGIN: &str = "fuzz.example/log";

fn key() -> &'static LogKey {
    static KEY: OnceLock<LogKey> = OnceLock::new();
    KEY.get_or_init(|| {
        LogKey::from_signing_key(SigningKey::from_bytes(&[0x11u8; 32].into()).unwrap())
    })
}

#[derive(Arbitrary, Debug)]
struct Signed {
    size: u64,
    root: [u8; 32],
    timestamp: u64,
    extension_lines: Vec<String>,
    /// (name, key ID + signature) of other signers; before or after ours.
    others: Vec<(String, Vec<u8>, bool)>,
    mutate_at: u16,
    mutate_xor: u8,
}

fn check_opened(note: &[u8], sc: &SignedCheckpoint) {
    assert_eq!(sc.note, note);
    assert_eq!(sc.checkpoint.origin, ORIGIN);
    let body = sc.checkpoint.body();
    let text = std::str::from_utf8(note).unwrap();
    assert!(text.starts_with(&body), "opened note does not start with its body");
    let split = text.rfind("\n\n").unwrap();
    let note_body = &text[..split + 1];
    if note_body.matches('\n').count() == 3 {
        assert_eq!(note_body, body, "body does not re-serialise");
    }
    let resigned = sc.checkpoint.sign(key(), sc.timestamp);
    let reopened = open_checkpoint(&resigned.note, ORIGIN, key().verifying_key())
        .expect("re-signed checkpoint does not open");
    assert_eq!(reopened.checkpoint, sc.checkpoint);
    assert_eq!(reopened.timestamp, sc.timestamp);
}

fn clean(s: &str, fallback: &str) -> String {
    let s: String = s.chars().filter(|c| !matches!(c, '\n' | ' ')).collect();
    if s.is_empty() {
        fallback.to_string()
    } else {
        s
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(sc) = open_checkpoint(rest, ORIGIN, key().verifying_key()) {
            check_opened(rest, &sc);
        }
        return;
    }
    let Ok(s) = Signed::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let cp = Checkpoint {
        origin: ORIGIN.to_string(),
        size: s.size,
        root: s.root,
    };
    let signed = cp.sign(key(), s.timestamp);
    let text = String::from_utf8(signed.note.clone()).unwrap();
    let (body, ours) = text.split_once("\n\n").unwrap();
    let mut note = format!("{body}\n");
    for line in &s.extension_lines {
        note.push_str(&clean(line, "ext"));
        note.push('\n');
    }
    note.push('\n');
    let other_line = |(name, sig, _): &(String, Vec<u8>, bool)| {
        let mut sig = sig.clone();
        sig.resize(sig.len().max(5), 0);
        format!(
            "\u{2014} other-{} {}\n",
            clean(name, "x"),
            BASE64_STANDARD.encode(sig)
        )
    };
    for o in s.others.iter().filter(|o| o.2) {
        note.push_str(&other_line(o));
    }
    note.push_str(ours);
    for o in s.others.iter().filter(|o| !o.2) {
        note.push_str(&other_line(o));
    }
    let note = note.into_bytes();
    let opened = open_checkpoint(&note, ORIGIN, key().verifying_key())
        .unwrap_or_else(|e| panic!("a note signed here does not open: {e}"));
    assert_eq!(opened.checkpoint, cp);
    assert_eq!(opened.timestamp, s.timestamp);
    check_opened(&note, &opened);

    if s.mutate_xor != 0 {
        let mut bad = note.clone();
        let at = usize::from(s.mutate_at) % bad.len();
        bad[at] ^= s.mutate_xor;
        if let Ok(sc) = open_checkpoint(&bad, ORIGIN, key().verifying_key()) {
            assert_eq!(sc.checkpoint, cp, "an edited note opens to other values");
            assert_eq!(sc.timestamp, s.timestamp, "an edited note opens to another time");
            check_opened(&bad, &sc);
        }
    }
});
