//! Why a submission was rejected. Every variant's Display is one
//! human-readable line, sent back verbatim as the body of a 400 response.

use thiserror::Error;

/// One variant per class of reason a submitted chain is refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Rejection {
    #[error("empty chain")]
    EmptyChain,

    #[error("chain has {len} certificates; this log accepts at most {max}")]
    ChainTooLong { len: usize, max: usize },

    #[error("chain[{index}] is not a valid X.509 DER certificate: {reason}")]
    Malformed { index: usize, reason: String },

    #[error("chain[{index}] has {count} trailing bytes after the certificate")]
    TrailingBytes { index: usize, count: usize },

    #[error("chain[{index}] has a malformed {extension} extension")]
    MalformedExtension {
        index: usize,
        extension: &'static str,
    },

    #[error(
        "leaf NotAfter {} is before the log's not_after_start {}",
        rfc3339(*not_after),
        rfc3339(*start)
    )]
    NotAfterTooEarly { not_after: i64, start: u64 },

    #[error(
        "leaf NotAfter {} is not before the log's not_after_limit {}",
        rfc3339(*not_after),
        rfc3339(*limit)
    )]
    NotAfterTooLate { not_after: i64, limit: u64 },

    #[error("leaf ExtendedKeyUsage has neither serverAuth nor anyExtendedKeyUsage")]
    MissingServerAuth,

    #[error("precertificate poison extension {problem}")]
    BadPoison { problem: &'static str },

    #[error("add-chain got a precertificate; use add-pre-chain")]
    PrecertToAddChain,

    #[error("add-pre-chain got a certificate without the precertificate poison; use add-chain")]
    FinalCertToAddPreChain,

    #[error("chain[1] is a precertificate signing certificate; precertificate signing certificates are not supported")]
    PrecertSigningCertificate,

    #[error("chain[{index}]: unsupported signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm { index: usize, oid: String },

    #[error("chain[{index}]: unsupported RSASSA-PSS parameters ({reason})")]
    UnsupportedPssParameters { index: usize, reason: &'static str },

    #[error("chain[{index}]: unsupported public key ({reason})")]
    UnsupportedPublicKey { index: usize, reason: String },

    #[error("chain[{index}]: signature algorithm {algorithm} does not fit chain[{}]'s {key} key", index + 1)]
    KeyMismatch {
        index: usize,
        algorithm: &'static str,
        key: &'static str,
    },

    #[error("chain[{index}]: issuer {issuer} does not match chain[{}]'s subject {subject}", index + 1)]
    IssuerMismatch {
        index: usize,
        issuer: String,
        subject: String,
    },

    /// A submitted certificate that signs another is not a CA.
    #[error("chain[{index}] is not a CA certificate ({problem})")]
    IssuerNotCa { index: usize, problem: &'static str },

    #[error("chain[{index}]: signature does not verify with chain[{}]'s key", index + 1)]
    BadSignature { index: usize },

    #[error("chain[{index}]: signature does not verify with any accepted root named {issuer}")]
    RootSignatureMismatch { index: usize, issuer: String },

    #[error("chain[{index}]: does not chain to an accepted root (its issuer {issuer} is neither an accepted root nor submitted)")]
    NoAcceptedRoot { index: usize, issuer: String },
}

impl Rejection {
    /// A short, stable name for the class of rejection (a metrics label).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::EmptyChain => "empty_chain",
            Rejection::ChainTooLong { .. } => "chain_too_long",
            Rejection::Malformed { .. } | Rejection::TrailingBytes { .. } => {
                "malformed_certificate"
            }
            Rejection::MalformedExtension { .. } => "malformed_extension",
            Rejection::NotAfterTooEarly { .. } | Rejection::NotAfterTooLate { .. } => {
                "not_after_outside_window"
            }
            Rejection::MissingServerAuth => "missing_server_auth",
            Rejection::BadPoison { .. } => "bad_poison",
            Rejection::PrecertToAddChain | Rejection::FinalCertToAddPreChain => "wrong_endpoint",
            Rejection::PrecertSigningCertificate => "precert_signing_certificate",
            Rejection::UnsupportedSignatureAlgorithm { .. }
            | Rejection::UnsupportedPssParameters { .. }
            | Rejection::UnsupportedPublicKey { .. }
            | Rejection::KeyMismatch { .. } => "unsupported_algorithm",
            Rejection::IssuerMismatch { .. } => "issuer_mismatch",
            Rejection::IssuerNotCa { .. } => "issuer_not_ca",
            Rejection::BadSignature { .. } | Rejection::RootSignatureMismatch { .. } => {
                "bad_signature"
            }
            Rejection::NoAcceptedRoot { .. } => "unknown_root",
        }
    }
}

/// Formats unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(secs: impl Into<i128>) -> String {
    let secs: i128 = secs.into();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-since-epoch to (year, month, day) conversion.
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0i64), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_740_787_200i64), "2025-03-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_599u64), "2025-12-31T23:59:59Z");
        assert_eq!(rfc3339(951_782_400i64), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1i64), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_799i64), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn window_messages_are_one_line() {
        let r = Rejection::NotAfterTooEarly {
            not_after: 1_740_787_200,
            start: 1_767_225_600,
        };
        assert_eq!(
            r.to_string(),
            "leaf NotAfter 2025-03-01T00:00:00Z is before the log's not_after_start 2026-01-01T00:00:00Z"
        );
    }
}
