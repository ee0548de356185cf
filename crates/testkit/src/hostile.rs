//! Helpers for the bad-submission catalogue (tests/catalogue.rs): a PKI
//! whose leaves can be customised freely (duplicate or malformed
//! extensions, precertificate signing intermediates, impostor roots with
//! the same name), byte surgery on DER certificates, and raw HTTP/1.1
//! requests that reqwest will not send (a GET with a body, chunked bodies,
//! huge declared lengths).

use std::io::{Read, Write};
use std::time::Duration;

use rcgen::{
    CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
    SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::der::{children, content_of, tlv};
use crate::pki::{ca_params, root_and_intermediate, Ca, POISON_OID};

/// OID of the ExtendedKeyUsage extension.
pub const EKU: &[u64] = &[2, 5, 29, 37];
/// EKU purpose of a precertificate signing certificate.
pub const PRECERT_SIGNING: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 4];

/// A root, an intermediate signed by it, and an issuer for leaves whose
/// parameters a test may change at will. Two `HostilePki`s made with the
/// same `name` have identical names but different keys.
pub struct HostilePki {
    pub root_der: Vec<u8>,
    pub root_pem: String,
    pub intermediate_der: Vec<u8>,
    intermediate: Ca,
    /// A precertificate signing certificate (EKU 1.3.6.1.4.1.11129.2.4.4)
    /// issued by the intermediate; its issuer is `precert_signer`.
    pub precert_signer_der: Vec<u8>,
    precert_signer: Ca,
    /// The intermediate's key again (PKCS#8), to sign hand-made TBSs.
    intermediate_key_der: Vec<u8>,
    leaf_key: KeyPair,
    name: String,
}

impl HostilePki {
    pub fn new(name: &str) -> HostilePki {
        let int_key = KeyPair::generate().expect("intermediate key");
        let intermediate_key_der = int_key.serialize_der();
        let (root, intermediate) = root_and_intermediate(name, int_key);

        let mut pss_params = ca_params(&format!("{name} Precertificate Signing"));
        pss_params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::Other(PRECERT_SIGNING.to_vec())];
        let pss_key = KeyPair::generate().expect("precert signer key");
        let precert_signer =
            Ca::signed_by(pss_params, pss_key, &intermediate).expect("sign precert signer");

        HostilePki {
            root_der: root.der().to_vec(),
            root_pem: root.pem(),
            intermediate_der: intermediate.der().to_vec(),
            intermediate,
            precert_signer_der: precert_signer.der().to_vec(),
            precert_signer,
            intermediate_key_der,
            leaf_key: KeyPair::generate().expect("leaf key"),
            name: name.to_string(),
        }
    }

    /// Leaf parameters: serverAuth EKU, the given NotAfter, a unique name
    /// and serial.
    pub fn leaf_params(&self, serial: u64, not_after: OffsetDateTime) -> CertificateParams {
        let mut p = CertificateParams::default();
        let host = format!(
            "leaf-{serial}.{}.catalogue.test",
            self.name.to_lowercase().replace(' ', "-")
        );
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, host.clone());
        p.subject_alt_names = vec![SanType::DnsName(host.try_into().expect("dns name"))];
        let mut sn = serial.to_be_bytes().to_vec();
        sn.insert(0, 0x01);
        p.serial_number = Some(SerialNumber::from_slice(&sn));
        p.not_before = rcgen::date_time_ymd(2025, 6, 1);
        p.not_after = not_after;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p
    }

    /// A leaf issued by the intermediate after `customize` changed its
    /// parameters.
    pub fn leaf_with(
        &self,
        serial: u64,
        not_after: OffsetDateTime,
        customize: impl FnOnce(&mut CertificateParams),
    ) -> Vec<u8> {
        let mut p = self.leaf_params(serial, not_after);
        customize(&mut p);
        p.signed_by(&self.leaf_key, &self.intermediate)
            .expect("sign leaf")
            .der()
            .to_vec()
    }

    /// A final certificate (serverAuth) issued by the intermediate.
    pub fn leaf(&self, serial: u64, not_after: OffsetDateTime) -> Vec<u8> {
        self.leaf_with(serial, not_after, |_| {})
    }

    /// A precertificate (critical NULL poison) issued by the intermediate.
    pub fn precert(&self, serial: u64, not_after: OffsetDateTime) -> Vec<u8> {
        self.leaf_with(serial, not_after, |p| {
            p.custom_extensions.push(poison(true, vec![0x05, 0x00]))
        })
    }

    /// A precertificate issued by the precertificate signing certificate.
    pub fn precert_via_signer(&self, serial: u64, not_after: OffsetDateTime) -> Vec<u8> {
        let mut p = self.leaf_params(serial, not_after);
        p.custom_extensions.push(poison(true, vec![0x05, 0x00]));
        p.signed_by(&self.leaf_key, &self.precert_signer)
            .expect("sign precert")
            .der()
            .to_vec()
    }
}

impl HostilePki {
    /// A certificate over `tbs` (any bytes), properly signed by the
    /// intermediate with ecdsa-with-SHA256: only the TBS is odd.
    pub fn sign_tbs(&self, tbs: &[u8]) -> Vec<u8> {
        use rcgen::SigningKey;
        let key = KeyPair::try_from(&self.intermediate_key_der[..]).expect("intermediate key");
        let sig = key.sign(tbs).expect("sign TBS");
        let alg = tlv(0x30, &tlv(0x06, &ECDSA_SHA256_OID));
        let bits = tlv(0x03, &[&[0u8][..], &sig].concat());
        tlv(0x30, &[tbs, &alg[..], &bits[..]].concat())
    }

    /// `leaf` re-signed after `edit` changed the list of its TBS fields
    /// (each field a whole DER element, version first if present).
    pub fn edit_tbs(&self, leaf: &[u8], edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
        let cert = children(content_of(leaf));
        let mut fields = children(content_of(&cert[0]));
        edit(&mut fields);
        self.sign_tbs(&tlv(0x30, &fields.concat()))
    }
}

/// DER of OID 1.2.840.10045.4.3.2 (ecdsa-with-SHA256), contents only.
const ECDSA_SHA256_OID: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

/// The poison extension with a chosen criticality and value.
pub fn poison(critical: bool, value: Vec<u8>) -> CustomExtension {
    extension(POISON_OID, critical, value)
}

/// Any extension with raw contents.
pub fn extension(oid: &[u64], critical: bool, value: Vec<u8>) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid, value);
    e.set_criticality(critical);
    e
}

/// Replaces the first occurrence of `from` in `der` with `to` (same length).
pub fn replace_once(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = der.windows(from.len()).position(|w| w == from);
    replace_at(der, at, from, to)
}

/// Replaces the last occurrence of `from` in `der` with `to` (same length).
pub fn replace_last(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = der.windows(from.len()).rposition(|w| w == from);
    replace_at(der, at, from, to)
}

/// `der` with `to` written at `at`, where `from` was found.
fn replace_at(der: &[u8], at: Option<usize>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "a replacement keeps lengths");
    let at = at.unwrap_or_else(|| panic!("pattern {from:02x?} not in the certificate"));
    let mut out = der.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

/// Flips the low bit of the last byte (inside the signature BIT STRING of a
/// certificate), keeping the DER structure intact.
pub fn break_signature(der: &[u8]) -> Vec<u8> {
    let mut out = der.to_vec();
    *out.last_mut().unwrap() ^= 0x01;
    out
}

/// A raw HTTP/1.1 request over a fresh TCP connection to `base`
/// (`http://127.0.0.1:PORT`): `head_lines` are extra header lines (without
/// CRLF), `body` is sent as is after the head. Returns `(status, headers
/// lowercased as "name: value", body)`. Gives up when no byte of the
/// answer arrives within `timeout`. Blocking.
pub fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    head_lines: &[String],
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<String>, Vec<u8>), String> {
    let host = base.strip_prefix("http://").ok_or("base must be http://")?;
    let mut s = std::net::TcpStream::connect(host).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for line in head_lines {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .map_err(|e| format!("write head: {e}"))?;
    // The server may answer and close before reading everything.
    let mut sent = 0;
    while sent < body.len() {
        let end = (sent + 16 * 1024).min(body.len());
        match s.write(&body[sent..end]) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                if buf.is_empty() {
                    return Err(format!(
                        "read: {e} (no answer within {timeout:?} after sending {sent} body bytes)"
                    ));
                }
                break;
            }
        }
    }
    parse_response(&buf)
}

/// Parses a raw HTTP/1.1 response (Content-Length, chunked, or to EOF).
fn parse_response(buf: &[u8]) -> Result<(u16, Vec<String>, Vec<u8>), String> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {:?}", String::from_utf8_lossy(buf)))?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<String> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap_or((l, ""));
            format!("{}: {}", k.trim().to_ascii_lowercase(), v.trim())
        })
        .collect();
    let mut rest = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|h| h.starts_with("transfer-encoding:") && h.contains("chunked"));
    let clen = headers.iter().find_map(|h| {
        h.strip_prefix("content-length: ")
            .and_then(|v| v.parse::<usize>().ok())
    });
    if chunked {
        let mut out = Vec::new();
        loop {
            let le = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("bad chunk")?;
            let size = String::from_utf8_lossy(&rest[..le]).to_string();
            let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
                .map_err(|e| format!("chunk size: {e}"))?;
            rest = &rest[le + 2..];
            if n == 0 {
                return Ok((status, headers, out));
            }
            out.extend_from_slice(rest.get(..n).ok_or("truncated chunk")?);
            rest = rest.get(n + 2..).ok_or("truncated chunk")?;
        }
    }
    match clen {
        Some(n) => Ok((
            status,
            headers,
            rest.get(..n).ok_or("truncated body")?.to_vec(),
        )),
        None => Ok((status, headers, rest.to_vec())),
    }
}
