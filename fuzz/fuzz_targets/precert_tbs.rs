//! Precertificate TBS defanging (and everything validation reads from a
//! TBS), past the signature check: the fuzzer builds a TBSCertificate (from
//! a structure, or raw bytes) and a fixed Ed25519 root signs it, so every
//! input reaches chain building, the policy checks and the poison removal.
//!
//! Invariants (see ct_log_fuzz::check_accepted / check_defanged): an
//! accepted precert's defanged TBS parses as DER, has every field of the
//! original, the same extensions in order minus the poison, no poison, no
//! empty `[3]`, minimal re-encoded lengths; add-chain never accepts a
//! poisoned certificate, add-pre-chain only exactly one critical NULL
//! poison; accepted certificates are X.509 v1-v3 with extensions only in v3.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ct_log_fuzz::{fuzz_root, policy, tlv, validate_both, validity, POISON_OID};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Version {
    Omitted,
    Value(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum NotAfter {
    Inside,
    Before,
    AtLimit,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum ExtOid {
    Poison,
    ExtendedKeyUsage,
    SubjectAltName,
    SctList,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Critical {
    Absent,
    True,
    False,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Null,
    ServerAuth,
    ClientAuth,
    Der(u8, Vec<u8>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Extension {
    oid: ExtOid,
    critical: Critical,
    value: Value,
}

#[derive(Arbitrary, Debug)]
struct Tbs {
    version: Version,
    serial: Vec<u8>,
    not_after: NotAfter,
    subject: String,
    unique_ids: Option<(Vec<u8>, Vec<u8>)>,
    extensions: Option<Vec<Extension>>,
    /// Bytes inside the TBS after the extensions.
    trailing: Vec<u8>,
    /// Submit the root too.
    with_root: bool,
}

const SERVER_AUTH: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const CLIENT_AUTH: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

fn build(t: &Tbs) -> Vec<u8> {
    let root = fuzz_root();
    let mut fields = Vec::new();
    match &t.version {
        Version::Omitted => {}
        Version::Value(v) => fields.push(tlv(0xa0, &tlv(0x02, &[*v]))),
        Version::Raw(raw) => fields.push(tlv(0xa0, raw)),
    }
    let serial = if t.serial.is_empty() { vec![1] } else { t.serial.clone() };
    fields.push(tlv(0x02, &serial));
    fields.push(tlv(0x30, &tlv(0x06, &ct_log_fuzz::ED25519_OID)));
    fields.push(root.subject.clone());
    fields.push(match &t.not_after {
        NotAfter::Inside => validity(b"250601000000Z", b"260601000000Z"),
        NotAfter::Before => validity(b"250601000000Z", b"251231235959Z"),
        NotAfter::AtLimit => validity(b"250601000000Z", b"270101000000Z"),
        NotAfter::Raw(raw) => tlv(0x30, &[tlv(0x17, b"250601000000Z"), raw.clone()].concat()),
    });
    fields.push(ct_log_fuzz::name(&t.subject));
    fields.push(root.spki.clone());
    if let Some((issuer_uid, subject_uid)) = &t.unique_ids {
        fields.push(tlv(0x81, issuer_uid));
        fields.push(tlv(0x82, subject_uid));
    }
    if let Some(extensions) = &t.extensions {
        let list: Vec<u8> = extensions.iter().flat_map(extension).collect();
        fields.push(tlv(0xa3, &tlv(0x30, &list)));
    }
    fields.push(t.trailing.clone());
    tlv(0x30, &fields.concat())
}

fn extension(e: &Extension) -> Vec<u8> {
    let oid = match &e.oid {
        ExtOid::Poison => tlv(0x06, &POISON_OID),
        ExtOid::ExtendedKeyUsage => tlv(0x06, &[0x55, 0x1d, 0x25]),
        ExtOid::SubjectAltName => tlv(0x06, &[0x55, 0x1d, 0x11]),
        ExtOid::SctList => tlv(
            0x06,
            &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02],
        ),
        ExtOid::Raw(raw) => raw.clone(),
    };
    let critical = match &e.critical {
        Critical::Absent => Vec::new(),
        Critical::True => tlv(0x01, &[0xff]),
        Critical::False => tlv(0x01, &[0x00]),
        Critical::Raw(raw) => raw.clone(),
    };
    let value = match &e.value {
        Value::Null => vec![0x05, 0x00],
        Value::ServerAuth => tlv(0x30, &tlv(0x06, &SERVER_AUTH)),
        Value::ClientAuth => tlv(0x30, &tlv(0x06, &CLIENT_AUTH)),
        Value::Der(tag, content) => tlv(*tag, content),
        Value::Raw(raw) => raw.clone(),
    };
    tlv(0x30, &[oid, critical, tlv(0x04, &value)].concat())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let root = fuzz_root();
    let (tbs, with_root) = if mode & 1 == 0 {
        let Ok(t) = Tbs::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        (build(&t), t.with_root)
    } else {
        (rest.to_vec(), mode & 2 != 0)
    };
    let mut chain = vec![root.sign(&tbs)];
    if with_root {
        chain.push(root.der.clone());
    }
    validate_both(&chain, &root.roots, &policy());
});
