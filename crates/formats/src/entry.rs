//! What gets logged: RFC 6962 TimestampedEntry / MerkleTreeLeaf, the
//! static-ct-api TileLeaf (data tile entry) and the `leaf_index` extension.

use sha2::{Digest, Sha256};

use crate::codec::{put_prefixed, Reader};
use crate::merkle::leaf_hash_of_parts;
use crate::{FormatError, Hash};

/// CtExtensions type of the static-ct-api `leaf_index` extension.
const LEAF_INDEX_TYPE: u8 = 0;
/// The leaf index is a u40.
const LEAF_INDEX_LIMIT: u64 = 1 << 40;

/// The logged certificate: a final certificate or a precertificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// x509_entry: the leaf certificate DER.
    X509 { certificate: Vec<u8> },
    /// precert_entry: SHA-256 of the issuer's SPKI, the TBSCertificate with
    /// the poison removed, and the full precertificate DER.
    Precert {
        issuer_key_hash: Hash,
        tbs: Vec<u8>,
        precertificate: Vec<u8>,
    },
}

/// One log entry before sequencing (no timestamp or index yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// SHA-256 of each issuer certificate in the stored chain, leaf's issuer first.
    pub chain_fingerprints: Vec<Hash>,
}

impl Entry {
    /// LogEntryType: 0 x509_entry, 1 precert_entry.
    pub fn entry_type(&self) -> u16 {
        match self.kind {
            EntryKind::X509 { .. } => 0,
            EntryKind::Precert { .. } => 1,
        }
    }

    /// SHA-256(u16 entry_type | [issuer_key_hash for precerts] | certificate-or-TBS):
    /// what makes two submissions the same entry.
    pub fn dedup_key(&self) -> Hash {
        let mut h = Sha256::new();
        h.update(self.entry_type().to_be_bytes());
        match &self.kind {
            EntryKind::X509 { certificate } => h.update(certificate),
            EntryKind::Precert {
                issuer_key_hash,
                tbs,
                ..
            } => {
                h.update(issuer_key_hash);
                h.update(tbs);
            }
        }
        h.finalize().into()
    }

    /// MerkleTreeLeaf bytes (0x00 0x00 | TimestampedEntry) carrying the
    /// leaf_index extension; byte-identical to the SCT signature input.
    pub fn merkle_tree_leaf(&self, timestamp: u64, leaf_index: u64) -> Vec<u8> {
        self.merkle_tree_leaf_with(timestamp, &leaf_index_extension(leaf_index))
    }

    /// RFC 6962 §4.6 `extra_data` of this entry, given the DER of the
    /// issuers its `chain_fingerprints` name, in that order: an x509 entry's
    /// `certificate_chain`, or a precert entry's PrecertChainEntry (the
    /// precertificate, then its chain).
    pub fn extra_data(&self, issuers: &[&[u8]]) -> Result<Vec<u8>, FormatError> {
        let mut chain = Vec::new();
        for der in issuers {
            put_prefixed_checked(&mut chain, 3, der, "an ASN.1Cert")?;
        }
        let mut out = Vec::new();
        if let EntryKind::Precert { precertificate, .. } = &self.kind {
            put_prefixed_checked(&mut out, 3, precertificate, "a pre_certificate")?;
        }
        put_prefixed_checked(&mut out, 3, &chain, "a certificate chain")?;
        Ok(out)
    }

    /// Appends the static-ct-api TileLeaf encoding to `out`.
    pub fn write_tile_leaf(&self, timestamp: u64, leaf_index: u64, out: &mut Vec<u8>) {
        self.write_timestamped_entry(timestamp, &leaf_index_extension(leaf_index), out);
        self.write_tile_leaf_rest(out);
    }

    /// Appends the TileLeaf encoding to `out` and returns the entry's leaf
    /// hash. A TileLeaf starts with the TimestampedEntry that is also the
    /// body of the MerkleTreeLeaf, so the hash is taken from those bytes in
    /// place instead of building the MerkleTreeLeaf a second time.
    pub fn write_tile_leaf_and_hash(
        &self,
        timestamp: u64,
        leaf_index: u64,
        out: &mut Vec<u8>,
    ) -> Hash {
        let start = out.len();
        self.write_timestamped_entry(timestamp, &leaf_index_extension(leaf_index), out);
        // MerkleTreeLeaf: version v1 (0), leaf_type timestamped_entry (0), entry.
        let hash = leaf_hash_of_parts(&[&[0, 0], &out[start..]]);
        self.write_tile_leaf_rest(out);
        hash
    }

    /// What a TileLeaf holds after its TimestampedEntry.
    fn write_tile_leaf_rest(&self, out: &mut Vec<u8>) {
        if let EntryKind::Precert { precertificate, .. } = &self.kind {
            put_prefixed(out, 3, precertificate);
        }
        // put_prefixed(2) of the concatenation, without building it; a
        // chain is far shorter than the 2,048 fingerprints a u16 allows.
        let length = self.chain_fingerprints.len() * 32;
        assert!(length < 1 << 16, "a chain of {length} fingerprint bytes");
        out.extend_from_slice(&(length as u16).to_be_bytes());
        for fingerprint in &self.chain_fingerprints {
            out.extend_from_slice(fingerprint);
        }
    }

    fn merkle_tree_leaf_with(&self, timestamp: u64, extensions: &[u8]) -> Vec<u8> {
        // version v1 (0), leaf_type timestamped_entry (0).
        let mut out = vec![0, 0];
        self.write_timestamped_entry(timestamp, extensions, &mut out);
        out
    }

    fn write_timestamped_entry(&self, timestamp: u64, extensions: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&self.entry_type().to_be_bytes());
        match &self.kind {
            EntryKind::X509 { certificate } => put_prefixed(out, 3, certificate),
            EntryKind::Precert {
                issuer_key_hash,
                tbs,
                ..
            } => {
                out.extend_from_slice(issuer_key_hash);
                put_prefixed(out, 3, tbs);
            }
        }
        put_prefixed(out, 2, extensions);
    }
}

/// [`put_prefixed`] for bytes read back from storage, whose size no
/// request limit bounded: too long is an error, not a panic.
fn put_prefixed_checked(
    out: &mut Vec<u8>,
    len_bytes: usize,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), FormatError> {
    if bytes.len() as u64 >= 1u64 << (8 * len_bytes) {
        return Err(FormatError::TooLong(what));
    }
    put_prefixed(out, len_bytes, bytes);
    Ok(())
}

/// CtExtensions holding only leaf_index: 0x00 | u16 5 | u40 index.
pub fn leaf_index_extension(leaf_index: u64) -> [u8; 8] {
    debug_assert!(leaf_index < LEAF_INDEX_LIMIT, "leaf index exceeds u40");
    let be = leaf_index.to_be_bytes();
    [LEAF_INDEX_TYPE, 0, 5, be[3], be[4], be[5], be[6], be[7]]
}

/// Reads CtExtensions that must be exactly one leaf_index extension.
pub fn parse_leaf_index_extension(extensions: &[u8]) -> Result<u64, FormatError> {
    let mut r = Reader::new(extensions, "CT extensions");
    if r.u8()? != LEAF_INDEX_TYPE {
        return Err(FormatError::BadExtensions(
            "first extension is not leaf_index",
        ));
    }
    let data = r.prefixed(2)?;
    if data.len() != 5 {
        return Err(FormatError::BadExtensions("leaf_index is not 5 bytes"));
    }
    r.finish()?;
    Reader::new(data, "leaf_index").uint(5)
}

/// One decoded data-tile entry, extensions kept exactly as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileLeaf {
    pub timestamp: u64,
    pub entry: Entry,
    pub extensions: Vec<u8>,
}

impl TileLeaf {
    pub fn leaf_index(&self) -> Result<u64, FormatError> {
        parse_leaf_index_extension(&self.extensions)
    }

    /// The MerkleTreeLeaf built from the stored extensions, so a tile can be
    /// checked against its level-0 hashes without trusting the extension.
    pub fn merkle_tree_leaf(&self) -> Vec<u8> {
        self.entry
            .merkle_tree_leaf_with(self.timestamp, &self.extensions)
    }
}

/// Parses a whole data tile (concatenated TileLeafs, no count).
pub fn parse_tile_leaves(data: &[u8]) -> Result<Vec<TileLeaf>, FormatError> {
    let mut r = Reader::new(data, "data tile entry");
    let mut leaves = Vec::new();
    while !r.is_empty() {
        leaves.push(parse_tile_leaf(&mut r)?);
    }
    Ok(leaves)
}

fn parse_tile_leaf(r: &mut Reader<'_>) -> Result<TileLeaf, FormatError> {
    let timestamp = r.u64()?;
    let entry_type = r.u16()?;
    let (kind, extensions) = match entry_type {
        0 => {
            let certificate = r.prefixed(3)?.to_vec();
            let extensions = r.prefixed(2)?.to_vec();
            (EntryKind::X509 { certificate }, extensions)
        }
        1 => {
            let issuer_key_hash = r.hash()?;
            let tbs = r.prefixed(3)?.to_vec();
            let extensions = r.prefixed(2)?.to_vec();
            let precertificate = r.prefixed(3)?.to_vec();
            let kind = EntryKind::Precert {
                issuer_key_hash,
                tbs,
                precertificate,
            };
            (kind, extensions)
        }
        other => return Err(FormatError::UnknownEntryType(other)),
    };
    let chain_fingerprints = parse_fingerprints(r.prefixed(2)?)?;
    let entry = Entry {
        kind,
        chain_fingerprints,
    };
    Ok(TileLeaf {
        timestamp,
        entry,
        extensions,
    })
}

fn parse_fingerprints(bytes: &[u8]) -> Result<Vec<Hash>, FormatError> {
    let chunks = bytes.chunks_exact(32);
    if !chunks.remainder().is_empty() {
        return Err(FormatError::BadFingerprints(bytes.len()));
    }
    Ok(chunks.map(chunk_to_hash).collect())
}

/// Copies an exactly 32-byte slice into a Hash.
fn chunk_to_hash(chunk: &[u8]) -> Hash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(chunk);
    hash
}
