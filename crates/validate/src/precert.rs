//! Precertificates (RFC 6962 §3.1): recognising the poison extension and
//! producing the TBSCertificate the log signs over, which is the
//! precertificate's TBS with only the poison removed.

use x509_parser::certificate::X509Certificate;

use crate::cert::{unique_extension, POISON};
use crate::der::{self, DerError};
use crate::error::Rejection;

/// ASN.1 NULL: the only value the poison extension may carry.
const NULL: [u8; 2] = [0x05, 0x00];
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
/// `[3] EXPLICIT Extensions` inside a TBSCertificate.
const EXTENSIONS_FIELD: u8 = 0xa3;

/// Whether `cert` is a precertificate. A poison that is present but not
/// critical, not NULL, or repeated is an error, not a final certificate.
pub(crate) fn is_precert(cert: &X509Certificate) -> Result<bool, Rejection> {
    let poison = unique_extension(cert, &POISON).map_err(|_| Rejection::BadPoison {
        problem: "appears more than once",
    })?;
    let Some(poison) = poison else {
        return Ok(false);
    };
    if !poison.critical {
        return Err(Rejection::BadPoison {
            problem: "is not critical",
        });
    }
    if poison.value != NULL {
        return Err(Rejection::BadPoison {
            problem: "value is not ASN.1 NULL",
        });
    }
    Ok(true)
}

/// Re-encodes a TBSCertificate without the poison extension, keeping the
/// other extensions in order; drops the `[3]` field if nothing is left.
pub(crate) fn strip_poison(tbs: &[u8]) -> Result<Vec<u8>, DerError> {
    let outer = der::read_only(tbs, SEQUENCE)?;
    let mut body = Vec::with_capacity(tbs.len());
    for field in der::children(outer.content) {
        let field = field?;
        if field.tag == EXTENSIONS_FIELD {
            write_extensions_without_poison(&mut body, field.content)?;
        } else {
            body.extend_from_slice(field.raw);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    der::write_tlv(&mut out, SEQUENCE, &body);
    Ok(out)
}

/// `explicit` is the contents of `[3]`: one SEQUENCE OF Extension.
fn write_extensions_without_poison(out: &mut Vec<u8>, explicit: &[u8]) -> Result<(), DerError> {
    let list = der::read_only(explicit, SEQUENCE)?;
    let mut kept = Vec::with_capacity(list.content.len());
    for extension in der::children(list.content) {
        let extension = extension?;
        let (oid, _) = der::read_tlv(extension.content)?;
        let is_poison = oid.tag == OID && oid.content == POISON.as_bytes();
        if !is_poison {
            kept.extend_from_slice(extension.raw);
        }
    }
    if !kept.is_empty() {
        let mut sequence = Vec::with_capacity(kept.len() + 4);
        der::write_tlv(&mut sequence, SEQUENCE, &kept);
        der::write_tlv(out, EXTENSIONS_FIELD, &sequence);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built extension TLV: SEQUENCE { OID, [critical], OCTET STRING }.
    fn extension(oid: &[u8], value: &[u8]) -> Vec<u8> {
        let mut content = Vec::new();
        der::write_tlv(&mut content, OID, oid);
        der::write_tlv(&mut content, 0x04, value);
        let mut out = Vec::new();
        der::write_tlv(&mut out, SEQUENCE, &content);
        out
    }

    fn tbs(prefix_len: usize, extensions: &[Vec<u8>]) -> Vec<u8> {
        // A stand-in for version..subjectPublicKeyInfo: one big field, so
        // the outer length needs the long form.
        let mut body = Vec::new();
        der::write_tlv(&mut body, 0x04, &vec![0x11; prefix_len]);
        if !extensions.is_empty() {
            let mut sequence = Vec::new();
            der::write_tlv(&mut sequence, SEQUENCE, &extensions.concat());
            der::write_tlv(&mut body, EXTENSIONS_FIELD, &sequence);
        }
        let mut out = Vec::new();
        der::write_tlv(&mut out, SEQUENCE, &body);
        out
    }

    #[test]
    fn removes_only_the_poison_and_reencodes_lengths() {
        let a = extension(&[0x55, 0x1d, 0x0e], &[0xaa; 20]);
        let b = extension(&[0x55, 0x1d, 0x11], &[0xbb; 300]);
        let poison = extension(POISON.as_bytes(), &NULL);
        // The poison's removal shrinks lengths across the 256-byte boundary.
        let with = tbs(200, &[a.clone(), poison, b.clone()]);
        let without = tbs(200, &[a, b]);
        assert_eq!(strip_poison(&with).unwrap(), without);
    }

    #[test]
    fn drops_the_extensions_field_when_poison_was_alone() {
        let poison = extension(POISON.as_bytes(), &NULL);
        assert_eq!(strip_poison(&tbs(300, &[poison])).unwrap(), tbs(300, &[]));
    }

    #[test]
    fn refuses_malformed_tbs() {
        assert!(strip_poison(&[0x30, 0x03, 0xa3, 0x01, 0x05]).is_err());
        assert!(strip_poison(&[0x30, 0x02, 0xa3, 0x00]).is_err());
        assert!(strip_poison(&[0x31, 0x00]).is_err());
    }
}
