use base64::prelude::{Engine, BASE64_STANDARD};
use ct_formats::*;
use sha2::{Digest, Sha256};
use signed_note::{Note, VerifierList};

use crate::key_sct::test_key;
use crate::unhex;

const ORIGIN: &str = "ct.example.org/2026h1";
const TS: u64 = 0x0000_0190_0000_0001;

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.into(),
        size: 778,
        root: [0x11; 32],
    }
}

fn signed() -> SignedCheckpoint {
    checkpoint().sign(&test_key(), TS)
}

fn note_text() -> String {
    String::from_utf8(signed().note).unwrap()
}

fn open(note: &str) -> Result<SignedCheckpoint, FormatError> {
    open_checkpoint(note.as_bytes(), ORIGIN, test_key().verifying_key())
}

#[test]
fn origins() {
    assert_eq!(origin_from_prefix("https://ct.example.org/2026h1/"), ORIGIN);
    assert_eq!(origin_from_prefix("https://ct.example.org/2026h1"), ORIGIN);
    assert_eq!(origin_from_prefix("http://ct.example.org/2026h1//"), ORIGIN);
    assert_eq!(origin_from_prefix("ct.example.org/2026h1/"), ORIGIN);
    assert_eq!(
        origin_from_prefix("https://ct.example.org"),
        "ct.example.org"
    );
}

#[test]
fn body_layout() {
    assert_eq!(
        checkpoint().body(),
        "ct.example.org/2026h1\n778\nERERERERERERERERERERERERERERERERERERERERERE=\n"
    );
}

#[test]
fn tree_head_signature_input_layout() {
    let want = format!(
        "00 01 0000019000000001 000000000000030a {}",
        "11".repeat(32)
    );
    assert_eq!(
        tree_head_signature_input(TS, 778, &[0x11; 32]).to_vec(),
        unhex(&want)
    );
}

#[test]
fn key_id_derivation() {
    let key = test_key();
    let mut input = ORIGIN.as_bytes().to_vec();
    input.extend([0x0a, 0x05]);
    input.extend(key.log_id());
    let digest = Sha256::digest(&input);
    assert_eq!(key_id_rfc6962(ORIGIN, key.log_id()), digest[..4]);
}

#[test]
fn note_verifier_key_layout() {
    let key = test_key();
    let vkey = note_verifier_key(ORIGIN, &key);
    // The base64 may hold '+' too: the key is the rest after the second.
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    assert_eq!(parts.len(), 3, "{vkey}");
    assert_eq!(parts[0], ORIGIN);
    assert_eq!(unhex(parts[1]), key_id_rfc6962(ORIGIN, key.log_id()));
    let material = BASE64_STANDARD.decode(parts[2]).unwrap();
    assert_eq!(material[0], 0x05, "RFC6962NoteSignature type");
    assert_eq!(&material[1..], key.spki_der());
}

#[test]
fn note_layout() {
    let key = test_key();
    let text = note_text();
    let (body, sig_line) = text.split_once("\n\n").unwrap();
    assert_eq!(format!("{body}\n"), checkpoint().body());
    let sig_line = sig_line.strip_suffix('\n').unwrap();
    let b64 = sig_line
        .strip_prefix("\u{2014} ct.example.org/2026h1 ")
        .unwrap();
    let sig = BASE64_STANDARD.decode(b64).unwrap();
    assert_eq!(sig[..4], key_id_rfc6962(ORIGIN, key.log_id()));
    assert_eq!(sig[4..12], TS.to_be_bytes());
    let tbs = unhex(&format!(
        "0001 0000019000000001 000000000000030a {}",
        "11".repeat(32)
    ));
    verify_digitally_signed(key.verifying_key(), &tbs, &sig[12..]).unwrap();
    assert_eq!(signed().timestamp, TS);
    assert_eq!(signed().checkpoint, checkpoint());
    assert_eq!(signed(), signed(), "signing is deterministic");
}

#[test]
fn tree_head_signature_is_the_notes_rfc6962_signature() {
    let key = test_key();
    let s = signed();
    let ths = s.tree_head_signature(key.log_id()).unwrap();
    let input = tree_head_signature_input(TS, 778, &[0x11; 32]);
    verify_digitally_signed(key.verifying_key(), &input, &ths).unwrap();
    let sig = BASE64_STANDARD
        .decode(note_text().trim_end().rsplit_once(' ').unwrap().1)
        .unwrap();
    assert_eq!(
        ths,
        sig[12..],
        "the DigitallySigned after keyID and timestamp"
    );
    // Another log's signature line is not this log's tree head signature.
    assert!(s.tree_head_signature(&[0x99; 32]).is_err());
    let stale = SignedCheckpoint {
        timestamp: TS + 1,
        ..s
    };
    assert!(stale.tree_head_signature(key.log_id()).is_err());
}

#[test]
fn open_round_trip() {
    let s = signed();
    assert_eq!(open(&note_text()), Ok(s));
}

#[test]
fn oracle_accepts_our_notes() {
    let key = test_key();
    let note = Note::from_bytes(&signed().note).unwrap();
    let verifier = static_ct_api::RFC6962Verifier::new(ORIGIN, key.verifying_key()).unwrap();
    let (verified, unverified) = note
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .unwrap();
    assert_eq!(verified.len(), 1);
    assert!(unverified.is_empty());
    assert_eq!(
        static_ct_api::rfc6962_signature_timestamp(&verified[0]).unwrap(),
        TS
    );
}

#[test]
fn open_ignores_unknown_signatures_and_extensions() {
    let text = note_text();
    let key = test_key();
    let mut foreign_id = key_id_rfc6962(ORIGIN, key.log_id()).to_vec();
    foreign_id[0] ^= 1;
    foreign_id.extend([9; 20]);
    let same_name = format!(
        "\u{2014} {ORIGIN} {}\n",
        BASE64_STANDARD.encode(&foreign_id)
    );
    let grease = "\u{2014} grease.invalid DLzQSDHFSzQAoz8nHm/h+UEP9JGkNhwVb9IP1sW3lvI+zQ==\n";
    let with_extra = format!("{text}{same_name}{grease}");
    assert_eq!(open(&with_extra).unwrap().checkpoint, checkpoint());
    let (body, ours) = text.split_once("\n\n").unwrap();
    let before = format!("{body}\n\n{grease}{same_name}{ours}");
    assert_eq!(open(&before).unwrap().timestamp, TS);
    // The signature covers only origin, size and root, so an extension
    // line leaves it valid.
    let extended = text.replacen("=\n\n", "=\nextension line\n\n", 1);
    assert_eq!(open(&extended).unwrap().checkpoint, checkpoint());
}

#[test]
fn open_rejects_tampering() {
    let text = note_text();
    let sig_b64 = text.rsplit(' ').next().unwrap().trim_end();
    let mut sig = BASE64_STANDARD.decode(sig_b64).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    let bad_sig = text.replace(sig_b64, &BASE64_STANDARD.encode(&sig));
    let mut sig = BASE64_STANDARD.decode(sig_b64).unwrap();
    sig[11] ^= 1; // the timestamp
    let bad_ts = text.replace(sig_b64, &BASE64_STANDARD.encode(&sig));
    let root = "ERERERERERERERERERERERERERERERERERERERERERE=";
    let cases = [
        ("size", text.replacen("\n778\n", "\n779\n", 1)),
        ("size leading zero", text.replacen("\n778\n", "\n0778\n", 1)),
        ("size sign", text.replacen("\n778\n", "\n+778\n", 1)),
        (
            "root",
            text.replacen(root, "EhERERERERERERERERERERERERERERERERERERERERE=", 1),
        ),
        (
            "short root",
            text.replacen(root, "ERERERERERERERERERERERERERERERERERERERERER==", 1),
        ),
        ("root not base64", text.replacen(root, "not base64!", 1)),
        ("signature", bad_sig),
        ("signature timestamp", bad_ts),
        ("signature base64", text.replacen(sig_b64, "****", 1)),
        (
            "body origin",
            text.replacen(ORIGIN, "ct.example.org/2026h2", 1),
        ),
        (
            "signature name",
            text.replacen(&format!("\u{2014} {ORIGIN}"), "\u{2014} other", 1),
        ),
        ("no blank line", text.replacen("\n\n", "\n", 1)),
        ("no final newline", text.trim_end().to_string()),
        ("plain dash", text.replacen('\u{2014}', "-", 1)),
        ("empty", String::new()),
        ("body only", checkpoint().body()),
        ("two lines", text.replacen("778\n", "", 1)),
        (
            "malformed extra line",
            format!("{text}\u{2014} grease.invalid\n"),
        ),
        (
            "empty line in body",
            text.replacen("=\n\n", "=\n\nx\n\n", 1),
        ),
    ];
    for (what, note) in cases {
        assert!(open(&note).is_err(), "accepted tampered {what}: {note:?}");
    }
    let other_origin = open_checkpoint(
        text.as_bytes(),
        "ct.example.org/2026h2",
        test_key().verifying_key(),
    );
    assert!(other_origin.is_err());
    assert!(open_checkpoint(&[0xff, 0xfe], ORIGIN, test_key().verifying_key()).is_err());
}
