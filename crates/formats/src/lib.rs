//! Byte layouts of a static-ct-api Certificate Transparency log.
//!
//! This crate owns the wire formats and the pure cryptography around them:
//! RFC 6962 entries and Merkle hashing (with proof verification), the
//! static-ct-api data-tile encoding and `leaf_index` extension, tlog-tiles
//! tile naming, signed-note checkpoints with the RFC6962NoteSignature, and
//! SCT signing with the log's P-256 key.
//!
//! It must never do I/O: no files, no network, no clocks, no async. Callers
//! pass bytes and timestamps in and get bytes or typed values out. Parsers
//! treat their input as untrusted and return [`FormatError`] instead of
//! panicking.

mod checkpoint;
mod codec;
mod cosign;
mod entry;
mod error;
mod fast_sign;
mod key;
mod merkle;
mod sct;
mod tile;

/// A SHA-256 digest: leaf and node hashes, roots, log IDs, fingerprints.
pub type Hash = [u8; 32];

pub use checkpoint::{
    key_id_rfc6962, note_verifier_key, open_checkpoint, origin_from_prefix,
    tree_head_signature_input, Checkpoint, SignedCheckpoint,
};
pub use cosign::Cosigner;
pub use entry::{
    leaf_index_extension, parse_leaf_index_extension, parse_tile_leaves, Entry, EntryKind, TileLeaf,
};
pub use error::FormatError;
pub use key::{log_id_of, verify_digitally_signed, LogKey};
pub use merkle::{empty_root, leaf_hash, node_hash, root_of, verify_consistency, verify_inclusion};
pub use sct::Sct;
pub use tile::{right_edge_tiles, TileId, TileKind, TILE_HEIGHT, TILE_WIDTH};
