//! Chain building: walk up from the leaf, linking each certificate to its
//! issuer by raw subject/issuer name bytes and by signature, until a
//! configured root vouches for one of them.
//!
//! At each position the configured roots named as the issuer are tried
//! first; only if none verifies must the next submitted certificate be the
//! issuer. A submitted copy of a root is therefore found through the roots
//! (its link is verified once, with the root's key), and anything submitted
//! after the root is ignored.
//!
//! Every submitted certificate that signs another must be a CA (see
//! [`cert::check_issuer_is_ca`]); a configured root need not be, since the
//! operator chose it (Go does not check its roots either). Validity dates,
//! path length, name constraints and key usage are deliberately not
//! checked.

use x509_parser::certificate::X509Certificate;

use crate::cert;
use crate::error::Rejection;
use crate::roots::Roots;
use crate::signature::{self, AlgError, SigAlg, VerifyError};

/// Where the chain was anchored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// Index of the last submitted certificate that is part of the path;
    /// it is the one the root signed.
    pub last: usize,
    /// Index into [`Roots`] of the root that signed `last`.
    pub root: usize,
}

/// Finds the path from `certs[0]` to a configured root.
pub(crate) fn build(certs: &[X509Certificate], roots: &Roots) -> Result<Anchor, Rejection> {
    for (index, cert) in certs.iter().enumerate() {
        let alg = signature_algorithm(index, cert)?;
        let issuer = cert.tbs_certificate.issuer.as_raw();
        let tbs = cert.tbs_certificate.as_ref();
        let signature: &[u8] = &cert.signature_value.data;

        let mut named_roots = roots.named(issuer).peekable();
        let any_named = named_roots.peek().is_some();
        let mut tried_next_as_root = false;
        for (root_index, root) in named_roots {
            let verified = root.key().is_some_and(|key| {
                let check = || alg.verify(key, tbs, signature, &roots.rsa_keys);
                roots
                    .links
                    .verify(index > 0, cert.as_raw(), key, check)
                    .is_ok()
            });
            if verified {
                return Ok(Anchor {
                    last: index,
                    root: root_index,
                });
            }
            tried_next_as_root |= certs
                .get(index + 1)
                .is_some_and(|next| next.as_raw() == roots.der(root_index));
        }

        let Some(next) = certs.get(index + 1) else {
            return Err(dead_end(index, cert, any_named));
        };
        if next.tbs_certificate.subject.as_raw() != issuer {
            return Err(Rejection::IssuerMismatch {
                index,
                issuer: cert::name(&cert.tbs_certificate.issuer),
                subject: cert::name(&next.tbs_certificate.subject),
            });
        }
        if tried_next_as_root {
            // Same bytes as a root whose key just failed: do not verify twice.
            return Err(Rejection::BadSignature { index });
        }
        cert::check_issuer_is_ca(index + 1, next)?;
        verify_link(index, &alg, cert, next, roots)?;
    }
    Err(Rejection::EmptyChain)
}

fn signature_algorithm(index: usize, cert: &X509Certificate) -> Result<SigAlg, Rejection> {
    SigAlg::from_identifier(&cert.signature_algorithm).map_err(|e| match e {
        AlgError::Unsupported(oid) => Rejection::UnsupportedSignatureAlgorithm { index, oid },
        AlgError::BadPssParameters(reason) => Rejection::UnsupportedPssParameters { index, reason },
    })
}

/// Checks that the submitted certificate after `index` signed it (once
/// per process for a CA's link, see [`crate::links`]).
fn verify_link(
    index: usize,
    alg: &SigAlg,
    cert: &X509Certificate,
    issuer: &X509Certificate,
    roots: &Roots,
) -> Result<(), Rejection> {
    let tbs = cert.tbs_certificate.as_ref();
    let signature: &[u8] = &cert.signature_value.data;
    let key = signature::public_key(&issuer.tbs_certificate.subject_pki).map_err(|reason| {
        Rejection::UnsupportedPublicKey {
            index: index + 1,
            reason,
        }
    })?;
    let check = || alg.verify(key, tbs, signature, &roots.rsa_keys);
    roots
        .links
        .verify(index > 0, cert.as_raw(), key, check)
        .map_err(|e| match e {
            VerifyError::KeyMismatch => Rejection::KeyMismatch {
                index,
                algorithm: alg.name,
                key: key.kind.name(),
            },
            VerifyError::BadSignature => Rejection::BadSignature { index },
        })
}

/// The rejection when the submitted chain ends without reaching a root.
fn dead_end(index: usize, cert: &X509Certificate, any_named: bool) -> Rejection {
    let issuer = cert::name(&cert.tbs_certificate.issuer);
    if any_named {
        Rejection::RootSignatureMismatch { index, issuer }
    } else {
        Rejection::NoAcceptedRoot { index, issuer }
    }
}
