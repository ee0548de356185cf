//! Parsing submitted certificates (once each) and reading the few
//! extensions the policy looks at.

use thiserror::Error;
use x509_parser::asn1_rs::{oid, Oid};
use x509_parser::certificate::{X509Certificate, X509CertificateParser};
use x509_parser::extensions::X509Extension;
use x509_parser::nom::Parser;
use x509_parser::x509::X509Name;

use crate::der;
use crate::error::Rejection;

pub(crate) const POISON: Oid<'static> = oid!(1.3.6 .1 .4 .1 .11129 .2 .4 .3);
pub(crate) const SCT_LIST: Oid<'static> = oid!(1.3.6 .1 .4 .1 .11129 .2 .4 .2);
const EXTENDED_KEY_USAGE: Oid<'static> = oid!(2.5.29 .37);
const SERVER_AUTH: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .3 .1);
const ANY_EXTENDED_KEY_USAGE: Oid<'static> = oid!(2.5.29 .37 .0);
const PRECERT_SIGNING: Oid<'static> = oid!(1.3.6 .1 .4 .1 .11129 .2 .4 .4);
const BASIC_CONSTRAINTS: Oid<'static> = oid!(2.5.29 .19);

/// Parses one DER certificate; nothing may follow it.
///
/// Extensions are not deep-parsed: the policy reads just EKU and the
/// poison itself, and an odd extension elsewhere must not make a real
/// certificate unloggable.
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, ParseError> {
    let mut parser = X509CertificateParser::new().with_deep_parse_extensions(false);
    let (rest, cert) = parser
        .parse(der)
        .map_err(|e| ParseError::Malformed(one_line(&e.to_string())))?;
    if !rest.is_empty() {
        return Err(ParseError::TrailingBytes(rest.len()));
    }
    check_version(&cert)?;
    Ok(cert)
}

/// RFC 5280 §4.1.2.1: the version is v1, v2 or v3 (field value 0, 1 or 2),
/// and only a v3 certificate may carry extensions. x509-parser accepts any
/// value, and a v1 certificate with a poison extension would otherwise be
/// logged as a precertificate that other parsers (Go's) read as a final
/// certificate without extensions.
fn check_version(cert: &X509Certificate) -> Result<(), ParseError> {
    let version = cert.tbs_certificate.version.0;
    if version > 2 {
        return Err(ParseError::Malformed(format!(
            "X.509 version field {version} is not v1 (0), v2 (1) or v3 (2)"
        )));
    }
    if version != 2 && !cert.tbs_certificate.extensions().is_empty() {
        return Err(ParseError::Malformed(format!(
            "extensions in a v{} certificate (version field {version}); extensions need v3",
            version + 1
        )));
    }
    Ok(())
}

/// Why bytes are not exactly one certificate.
#[derive(Debug, Error)]
pub(crate) enum ParseError {
    #[error("not a valid X.509 DER certificate: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the certificate")]
    TrailingBytes(usize),
}

impl ParseError {
    /// The rejection for chain position `index`.
    pub(crate) fn at(self, index: usize) -> Rejection {
        match self {
            ParseError::Malformed(reason) => Rejection::Malformed { index, reason },
            ParseError::TrailingBytes(count) => Rejection::TrailingBytes { index, count },
        }
    }
}

/// The extension with `oid`, or an error if it appears more than once
/// (RFC 5280 forbids duplicates, so a second copy is never meaningful).
pub(crate) fn unique_extension<'c, 'a>(
    cert: &'c X509Certificate<'a>,
    oid: &Oid,
) -> Result<Option<&'c X509Extension<'a>>, Duplicate> {
    let mut matching = cert.extensions().iter().filter(|e| e.oid == *oid);
    let first = matching.next();
    match matching.next() {
        Some(_) => Err(Duplicate),
        None => Ok(first),
    }
}

/// Marker error: an extension appears twice.
pub(crate) struct Duplicate;

/// Whether the leaf may be used for TLS servers: no EKU extension at all,
/// or one that lists serverAuth or anyExtendedKeyUsage.
pub(crate) fn allows_server_auth(index: usize, cert: &X509Certificate) -> Result<bool, Rejection> {
    match extended_key_usages(index, cert)? {
        None => Ok(true),
        Some(usages) => Ok(usages
            .iter()
            .any(|u| *u == SERVER_AUTH.as_bytes() || *u == ANY_EXTENDED_KEY_USAGE.as_bytes())),
    }
}

/// Whether the certificate is a precertificate signing certificate (its
/// EKU lists the Certificate Transparency usage).
pub(crate) fn is_precert_signing(index: usize, cert: &X509Certificate) -> Result<bool, Rejection> {
    Ok(extended_key_usages(index, cert)?
        .is_some_and(|usages| usages.contains(&PRECERT_SIGNING.as_bytes())))
}

/// Requires that `cert`, a submitted certificate that signs the one before
/// it in the path, is a CA: v3 with basicConstraints cA = TRUE (RFC 5280
/// §6.1.4 (k)). Go's verifier, and so every Go log, rejects such issuers
/// too, so a chain we accept is one other logs would accept.
///
/// - An X.509 v1 or v2 certificate cannot say it is a CA and is rejected:
///   RFC 5280 allows v1 only for trust anchors, and a configured root is
///   never checked here.
/// - keyUsage keyCertSign is not checked, as Go does not: CAs have
///   misencoded key usage on real issuing certificates.
/// - pathLenConstraint is not read: path length is not a log's business.
pub(crate) fn check_issuer_is_ca(index: usize, cert: &X509Certificate) -> Result<(), Rejection> {
    let not_ca = |problem| Err(Rejection::IssuerNotCa { index, problem });
    if cert.tbs_certificate.version.0 != 2 {
        return not_ca("X.509 v1 or v2 certificate; only a configured root may be one");
    }
    match basic_constraints_ca(index, cert)? {
        None => not_ca("no basicConstraints extension"),
        Some(false) => not_ca("basicConstraints cA is not true"),
        Some(true) => Ok(()),
    }
}

/// The cA flag of the basicConstraints extension, if the extension is
/// present. cA is DEFAULT FALSE, so an empty SEQUENCE, or one holding only
/// pathLenConstraint, means false.
fn basic_constraints_ca(index: usize, cert: &X509Certificate) -> Result<Option<bool>, Rejection> {
    let malformed = || Rejection::MalformedExtension {
        index,
        extension: "BasicConstraints",
    };
    let Some(ext) = unique_extension(cert, &BASIC_CONSTRAINTS).map_err(|_| malformed())? else {
        return Ok(None);
    };
    let seq = der::read_only(ext.value, 0x30).map_err(|_| malformed())?;
    match der::children(seq.content).next() {
        None => Ok(Some(false)),
        // DER TRUE is 0xff; an explicit FALSE is not DER but harmless.
        Some(Ok(tlv)) if tlv.tag == 0x01 => match tlv.content {
            [0xff] => Ok(Some(true)),
            [0x00] => Ok(Some(false)),
            _ => Err(malformed()),
        },
        Some(Ok(tlv)) if tlv.tag == 0x02 => Ok(Some(false)),
        _ => Err(malformed()),
    }
}

/// The encoded OIDs (contents octets) of the EKU extension, if present.
fn extended_key_usages<'a>(
    index: usize,
    cert: &X509Certificate<'a>,
) -> Result<Option<Vec<&'a [u8]>>, Rejection> {
    let malformed = || Rejection::MalformedExtension {
        index,
        extension: "ExtendedKeyUsage",
    };
    let Some(ext) = unique_extension(cert, &EXTENDED_KEY_USAGE).map_err(|_| malformed())? else {
        return Ok(None);
    };
    let seq = der::read_only(ext.value, 0x30).map_err(|_| malformed())?;
    der::children(seq.content)
        .map(|usage| match usage {
            Ok(tlv) if tlv.tag == 0x06 => Ok(tlv.content),
            _ => Err(malformed()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A distinguished name for an error message: one line, bounded length.
pub(crate) fn name(name: &X509Name) -> String {
    let text = name.to_string();
    if text.is_empty() {
        "(empty name)".to_string()
    } else {
        one_line(&text)
    }
}

/// Replaces control characters and truncates, so text taken from a
/// submission cannot break the one-line error body or make it huge.
fn one_line(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}
