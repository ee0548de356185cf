//! The chains file: ready-to-send request bodies, so replaying costs the
//! load generator no encoding work.
//!
//! Layout: the magic line `ct-loadgen chains v1\n`, then per chain
//! `u8 endpoint (0 add-chain, 1 add-pre-chain) | u32 body_len | body`,
//! where body is `{"chain":["<b64 DER>",...]}`.

use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;

const MAGIC: &[u8] = b"ct-loadgen chains v1\n";

/// One pre-generated submission.
#[derive(Clone)]
pub struct Chain {
    pub precert: bool,
    pub body: Bytes,
}

impl Chain {
    pub fn endpoint(&self) -> &'static str {
        if self.precert {
            "ct/v1/add-pre-chain"
        } else {
            "ct/v1/add-chain"
        }
    }

    /// The DER certificates of the body, leaf first.
    pub fn ders(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        #[derive(serde::Deserialize)]
        struct Body {
            chain: Vec<String>,
        }
        let body: Body = serde_json::from_slice(&self.body)?;
        body.chain
            .iter()
            .map(|c| Ok(B64.decode(c)?))
            .collect::<anyhow::Result<_>>()
    }
}

pub fn body_of(ders: &[Vec<u8>]) -> Vec<u8> {
    let certs: Vec<String> = ders.iter().map(|d| B64.encode(d)).collect();
    serde_json::to_vec(&serde_json::json!({ "chain": certs })).expect("JSON")
}

pub fn encode(chains: &[(bool, Vec<u8>)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (precert, body) in chains {
        out.push(u8::from(*precert));
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

pub fn read(path: &Path) -> anyhow::Result<Vec<Chain>> {
    let data =
        Bytes::from(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    if !data.starts_with(MAGIC) {
        bail!("{} is not a ct-loadgen chains file", path.display());
    }
    let mut at = MAGIC.len();
    let mut chains = Vec::new();
    while at < data.len() {
        if at + 5 > data.len() {
            bail!("truncated chains file at byte {at}");
        }
        let precert = data[at] == 1;
        let len = u32::from_be_bytes(data[at + 1..at + 5].try_into().unwrap()) as usize;
        let end = at + 5 + len;
        if end > data.len() {
            bail!("truncated chains file at byte {at}");
        }
        chains.push(Chain {
            precert,
            body: data.slice(at + 5..end),
        });
        at = end;
    }
    Ok(chains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_file_round_trip_and_truncation() {
        let dir = std::env::temp_dir().join(format!("ct-loadgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chains.bin");
        let ders = vec![vec![1u8, 2, 3], vec![4u8; 10]];
        let encoded = encode(&[(false, body_of(&ders)), (true, body_of(&ders[..1]))]);
        std::fs::write(&path, &encoded).unwrap();
        let chains = read(&path).unwrap();
        assert_eq!(chains.len(), 2);
        assert_eq!(chains[0].ders().unwrap(), ders);
        assert_eq!(chains[0].endpoint(), "ct/v1/add-chain");
        assert_eq!(chains[1].endpoint(), "ct/v1/add-pre-chain");
        std::fs::write(&path, &encoded[..encoded.len() - 1]).unwrap();
        assert!(read(&path).is_err());
        std::fs::write(&path, b"something else").unwrap();
        assert!(read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
