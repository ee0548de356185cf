//! The configured root set: loaded once at start-up, then looked up by
//! subject name on every submission.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::cert;
use crate::keys::RsaKeys;
use crate::links::LinkCache;
use crate::signature::{self, KeyKind, PublicKey};

/// The accepted roots, parsed once: DER in file order (for get-roots),
/// and for chain building their keys indexed by raw subject name.
#[derive(Debug)]
pub struct Roots {
    ders: Vec<Vec<u8>>,
    roots: Vec<Root>,
    by_subject: HashMap<Vec<u8>, Vec<usize>>,
    /// SHA-256 of each DER, so duplicates collapse.
    fingerprints: HashSet<[u8; 32]>,
    /// CA links already verified against this root set.
    pub(crate) links: LinkCache,
    /// RSA issuer keys already parsed, for the leaves' signatures.
    pub(crate) rsa_keys: RsaKeys,
}

/// What chain building needs from one root.
#[derive(Debug)]
pub(crate) struct Root {
    /// `None` when `ring` cannot use the key: such a root never verifies.
    key: Option<(KeyKind, Vec<u8>)>,
    /// SHA-256 of the SubjectPublicKeyInfo, the issuer_key_hash of a
    /// precertificate it issued directly.
    pub spki_sha256: [u8; 32],
}

impl Root {
    pub(crate) fn key(&self) -> Option<PublicKey<'_>> {
        self.key
            .as_ref()
            .map(|(kind, bytes)| PublicKey { kind: *kind, bytes })
    }
}

/// Why a root set could not be loaded.
#[derive(Debug, Error)]
pub enum RootsError {
    #[error("roots file is not valid PEM: {0}")]
    Pem(#[from] pem::PemError),
    #[error("PEM block {block} is not a valid X.509 certificate: {reason}")]
    BadPemCertificate { block: usize, reason: String },
    #[error("root {index} is not a valid X.509 certificate: {reason}")]
    BadDerCertificate { index: usize, reason: String },
}

impl Roots {
    /// Loads a PEM bundle. Every CERTIFICATE block must parse (the error
    /// names the 1-based block number); other block types are ignored;
    /// duplicates collapse.
    pub fn from_pem(pem: &[u8]) -> Result<Roots, RootsError> {
        let mut roots = Roots::empty();
        for (i, block) in pem::parse_many(pem)?.into_iter().enumerate() {
            if block.tag() == "CERTIFICATE" {
                roots.add(block.into_contents()).map_err(|reason| {
                    RootsError::BadPemCertificate {
                        block: i + 1,
                        reason,
                    }
                })?;
            }
        }
        Ok(roots)
    }

    /// Loads DER certificates; the error names the 0-based index.
    pub fn from_ders(ders: Vec<Vec<u8>>) -> Result<Roots, RootsError> {
        let mut roots = Roots::empty();
        for (index, der) in ders.into_iter().enumerate() {
            roots
                .add(der)
                .map_err(|reason| RootsError::BadDerCertificate { index, reason })?;
        }
        Ok(roots)
    }

    /// DER of every root, in file order, without duplicates.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.ders
    }

    pub fn len(&self) -> usize {
        self.ders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ders.is_empty()
    }

    /// The roots whose subject is exactly `name` (raw DER), with their index.
    pub(crate) fn named<'s>(&'s self, name: &[u8]) -> impl Iterator<Item = (usize, &'s Root)> {
        self.by_subject
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|&i| (i, &self.roots[i]))
    }

    pub(crate) fn der(&self, index: usize) -> &[u8] {
        &self.ders[index]
    }

    pub(crate) fn root(&self, index: usize) -> &Root {
        &self.roots[index]
    }

    fn empty() -> Roots {
        Roots {
            ders: Vec::new(),
            roots: Vec::new(),
            by_subject: HashMap::new(),
            fingerprints: HashSet::new(),
            links: LinkCache::default(),
            rsa_keys: RsaKeys::default(),
        }
    }

    /// Parses and adds one root unless an identical one is already present.
    fn add(&mut self, der: Vec<u8>) -> Result<(), String> {
        let parsed = cert::parse(&der).map_err(|e| e.to_string())?;
        if !self.fingerprints.insert(Sha256::digest(&der).into()) {
            return Ok(());
        }
        let spki = &parsed.tbs_certificate.subject_pki;
        let root = Root {
            key: signature::public_key(spki)
                .ok()
                .map(|k| (k.kind, k.bytes.to_vec())),
            spki_sha256: Sha256::digest(spki.raw).into(),
        };
        let subject = parsed.tbs_certificate.subject.as_raw().to_vec();
        let index = self.ders.len();
        self.by_subject.entry(subject).or_default().push(index);
        self.roots.push(root);
        self.ders.push(der);
        Ok(())
    }
}
