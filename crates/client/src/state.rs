//! The audit state file: what the last successful audit established, so the
//! next one proves consistency with it and fetches only what is new.
//!
//! Small JSON (hashes in hex), written atomically: a temporary file beside
//! it, fsynced, then renamed over it. A crash leaves the old or the new
//! state, never half of one.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use ct_formats::Hash;
use serde::{Deserialize, Serialize};

use crate::edge::RightEdge;
use crate::{Error, Result};

/// What an audit proved about the tree it checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditState {
    /// The checkpoint origin; None for a tree audited from a trusted head.
    pub origin: Option<String>,
    pub size: u64,
    pub root: Hash,
    /// Checkpoint timestamp (ms); None for a trusted head without one.
    pub timestamp: Option<u64>,
    /// The signed checkpoint note, kept as evidence.
    pub checkpoint: Option<String>,
    pub(crate) edge: RightEdge,
    /// Issuer fingerprints already fetched and checked.
    pub(crate) issuers: BTreeSet<Hash>,
}

/// The on-disk form.
#[derive(Serialize, Deserialize)]
struct StateFile {
    origin: Option<String>,
    size: u64,
    root: String,
    timestamp: Option<u64>,
    checkpoint: Option<String>,
    right_edge: Vec<Vec<String>>,
    issuers: Vec<String>,
}

impl AuditState {
    /// Reads a state file; `Ok(None)` when there is none yet (first audit).
    /// A state whose right edge does not hash to its root is refused.
    pub fn load(path: &Path) -> Result<Option<AuditState>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_error(path, e)),
        };
        let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| state_error(path, e))?;
        let edge = RightEdge {
            levels: file
                .right_edge
                .iter()
                .map(|level| level.iter().map(|h| parse_hash(path, h)).collect())
                .collect::<Result<_>>()?,
        };
        edge.check_shape(file.size)?;
        let state = AuditState {
            origin: file.origin,
            size: file.size,
            root: parse_hash(path, &file.root)?,
            timestamp: file.timestamp,
            checkpoint: file.checkpoint,
            edge,
            issuers: file
                .issuers
                .iter()
                .map(|h| parse_hash(path, h))
                .collect::<Result<_>>()?,
        };
        if state.edge.root() != state.root {
            return Err(state_error(
                path,
                "its right edge does not hash to its root",
            ));
        }
        Ok(Some(state))
    }

    /// Writes the state atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let file = StateFile {
            origin: self.origin.clone(),
            size: self.size,
            root: hex::encode(self.root),
            timestamp: self.timestamp,
            checkpoint: self.checkpoint.clone(),
            right_edge: self
                .edge
                .levels
                .iter()
                .map(|level| level.iter().map(hex::encode).collect())
                .collect(),
            issuers: self.issuers.iter().map(hex::encode).collect(),
        };
        let mut json = serde_json::to_vec_pretty(&file).expect("state serializes");
        json.push(b'\n');
        let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
        temp_name.push(".tmp");
        let temp = path.with_file_name(temp_name);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&temp, path)
        };
        write().map_err(|e| state_error(path, e))
    }
}

fn parse_hash(path: &Path, text: &str) -> Result<Hash> {
    hex::decode(text)
        .ok()
        .and_then(|b| Hash::try_from(b).ok())
        .ok_or_else(|| state_error(path, format!("{text:?} is not a hex SHA-256")))
}

fn state_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("state file {}: {e}", path.display()))
}
