//! Submission validation for the CT log: turns a submitted chain (DER
//! certificates, leaf first) into a validated log entry, or into a
//! one-line reason for a 400 response.
//!
//! It owns the log's acceptance policy (SPEC.md "Precertificates" and
//! "Validation that real logs do"): every certificate parses, the chain
//! links by name and signature through CA certificates to a configured
//! root, the leaf NotAfter lies in the log's window, the leaf may be used
//! for serverAuth, and the precertificate rules hold. It also derives what
//! the log stores for a precertificate (issuer key hash and the TBS
//! without the poison).
//!
//! It must never do I/O, block, or panic on any input: it runs on every
//! request and faces the internet. It deliberately does not check validity
//! dates, path length, name constraints, key usage or critical extensions,
//! as real logs do not. It does require every submitted issuer to be a CA
//! (basicConstraints cA), as Go-based logs do.

mod cert;
mod chain;
mod der;
mod error;
mod keys;
mod links;
mod precert;
mod roots;
mod signature;

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;

pub use error::Rejection;
pub use roots::{Roots, RootsError};

/// The log's acceptance window and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Earliest accepted leaf NotAfter, unix seconds, inclusive.
    pub not_after_start: u64,
    /// Leaf NotAfter must be before this, unix seconds, exclusive.
    pub not_after_limit: u64,
    /// Longer submitted chains are rejected before any parsing.
    pub max_chain_length: usize,
}

/// Which submission endpoint the chain arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    AddChain,
    AddPreChain,
}

/// The entry to log, as RFC 6962 defines it for each entry type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidatedLeaf {
    X509 {
        certificate: Vec<u8>,
    },
    Precert {
        /// SHA-256 of the issuer's SubjectPublicKeyInfo DER.
        issuer_key_hash: [u8; 32],
        /// The precertificate's TBSCertificate without the poison extension.
        tbs: Vec<u8>,
        /// The precertificate DER exactly as submitted.
        precertificate: Vec<u8>,
    },
}

impl From<ValidatedLeaf> for ct_formats::EntryKind {
    fn from(leaf: ValidatedLeaf) -> ct_formats::EntryKind {
        match leaf {
            ValidatedLeaf::X509 { certificate } => ct_formats::EntryKind::X509 { certificate },
            ValidatedLeaf::Precert {
                issuer_key_hash,
                tbs,
                precertificate,
            } => ct_formats::EntryKind::Precert {
                issuer_key_hash,
                tbs,
                precertificate,
            },
        }
    }
}

/// An accepted submission.
#[derive(Clone, Debug)]
pub struct ValidatedChain {
    pub leaf: ValidatedLeaf,
    /// DER of every certificate after the leaf, ending with the accepted
    /// root (appended when the submitter omitted it; anything submitted
    /// after the root is dropped).
    pub issuers: Vec<Vec<u8>>,
    /// Leaf NotBefore, unix seconds (0 if before 1970).
    pub not_before: u64,
    /// The leaf carries the embedded SCT list extension (1.3.6.1.4.1.11129.2.4.2).
    pub has_embedded_scts: bool,
}

/// Validates a submitted chain against the roots and the log's policy.
///
/// Cheap checks run first; signatures are verified last, each link once.
pub fn validate_chain(
    chain: &[Vec<u8>],
    roots: &Roots,
    policy: &Policy,
    endpoint: Endpoint,
) -> Result<ValidatedChain, Rejection> {
    check_length(chain, policy)?;
    let certs = chain
        .iter()
        .enumerate()
        .map(|(i, der)| cert::parse(der).map_err(|e| e.at(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = &certs[0];
    let is_precert = check_leaf(leaf, policy, endpoint)?;
    if let Some(issuer) = certs.get(1) {
        if cert::is_precert_signing(1, issuer)? {
            return Err(Rejection::PrecertSigningCertificate);
        }
    }
    let anchor = chain::build(&certs, roots)?;

    let mut issuers: Vec<Vec<u8>> = chain[1..=anchor.last].to_vec();
    issuers.push(roots.der(anchor.root).to_vec());
    let leaf_entry = if is_precert {
        precert_entry(&certs, roots, anchor, &chain[0])?
    } else {
        ValidatedLeaf::X509 {
            certificate: chain[0].clone(),
        }
    };
    Ok(ValidatedChain {
        leaf: leaf_entry,
        issuers,
        not_before: u64::try_from(leaf.validity().not_before.timestamp()).unwrap_or(0),
        has_embedded_scts: leaf.extensions().iter().any(|e| e.oid == cert::SCT_LIST),
    })
}

fn check_length(chain: &[Vec<u8>], policy: &Policy) -> Result<(), Rejection> {
    if chain.is_empty() {
        return Err(Rejection::EmptyChain);
    }
    if chain.len() > policy.max_chain_length {
        return Err(Rejection::ChainTooLong {
            len: chain.len(),
            max: policy.max_chain_length,
        });
    }
    Ok(())
}

/// The leaf-only rules: endpoint/poison agreement, NotAfter window, EKU.
/// Returns whether the leaf is a precertificate.
fn check_leaf(
    leaf: &X509Certificate,
    policy: &Policy,
    endpoint: Endpoint,
) -> Result<bool, Rejection> {
    let is_precert = precert::is_precert(leaf)?;
    match (endpoint, is_precert) {
        (Endpoint::AddChain, true) => return Err(Rejection::PrecertToAddChain),
        (Endpoint::AddPreChain, false) => return Err(Rejection::FinalCertToAddPreChain),
        _ => {}
    }
    check_not_after(leaf.validity().not_after.timestamp(), policy)?;
    if !cert::allows_server_auth(0, leaf)? {
        return Err(Rejection::MissingServerAuth);
    }
    Ok(is_precert)
}

fn check_not_after(not_after: i64, policy: &Policy) -> Result<(), Rejection> {
    let at = i128::from(not_after);
    if at < i128::from(policy.not_after_start) {
        return Err(Rejection::NotAfterTooEarly {
            not_after,
            start: policy.not_after_start,
        });
    }
    if at >= i128::from(policy.not_after_limit) {
        return Err(Rejection::NotAfterTooLate {
            not_after,
            limit: policy.not_after_limit,
        });
    }
    Ok(())
}

/// The precertificate entry. Its issuer is chain[1], or the appended root
/// when the precertificate was submitted alone.
fn precert_entry(
    certs: &[X509Certificate],
    roots: &Roots,
    anchor: chain::Anchor,
    precertificate: &[u8],
) -> Result<ValidatedLeaf, Rejection> {
    let issuer_key_hash = match certs.get(1) {
        Some(issuer) if anchor.last >= 1 => {
            Sha256::digest(issuer.tbs_certificate.subject_pki.raw).into()
        }
        _ => roots.root(anchor.root).spki_sha256,
    };
    let tbs = precert::strip_poison(certs[0].tbs_certificate.as_ref()).map_err(|e| {
        Rejection::Malformed {
            index: 0,
            reason: format!("TBSCertificate cannot be re-encoded: {e}"),
        }
    })?;
    Ok(ValidatedLeaf::Precert {
        issuer_key_hash,
        tbs,
        precertificate: precertificate.to_vec(),
    })
}
