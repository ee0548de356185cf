//! A bounded memory of issuer links already verified: (signer key, signed
//! certificate DER) pairs whose signature checked out. A CA's intermediate
//! arrives with nearly every submission, so its link to the root (or to the
//! next intermediate) is verified once instead of on every request.
//!
//! Only CA links are remembered (never the leaf's, which is new each time),
//! only successes, and the key is the exact bytes (key kind, key, whole
//! certificate DER), so a hit means the very same signature over the very
//! same bytes already verified: no hash collision can stand in for a check.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::signature::{KeyKind, PublicKey};

/// Links remembered before the memory is cleared and starts over (each is
/// about the size of a certificate; real logs see a few hundred CAs).
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(crate) struct LinkCache {
    verified: Mutex<HashSet<Vec<u8>>>,
}

impl std::fmt::Debug for LinkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.verified.lock().map_or(0, |v| v.len());
        f.debug_struct("LinkCache").field("links", &n).finish()
    }
}

impl LinkCache {
    /// Runs `check` (the signature verification of `signed` by `key`)
    /// unless this exact link already passed it; remembers a pass.
    /// With `cacheable` false (the leaf) it always runs `check`.
    pub(crate) fn verify<E>(
        &self,
        cacheable: bool,
        signed: &[u8],
        key: PublicKey<'_>,
        check: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        if !cacheable {
            return check();
        }
        let mut link = Vec::with_capacity(5 + key.bytes.len() + signed.len());
        link.push(kind_tag(key.kind));
        link.extend_from_slice(&(key.bytes.len() as u32).to_be_bytes());
        link.extend_from_slice(key.bytes);
        link.extend_from_slice(signed);
        if self.verified.lock().unwrap().contains(&link) {
            return Ok(());
        }
        check()?;
        let mut verified = self.verified.lock().unwrap();
        if verified.len() >= CAPACITY {
            verified.clear();
        }
        verified.insert(link);
        Ok(())
    }
}

fn kind_tag(kind: KeyKind) -> u8 {
    match kind {
        KeyKind::Rsa => 1,
        KeyKind::P256 => 2,
        KeyKind::P384 => 3,
        KeyKind::Ed25519 => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_passed_links_of_the_exact_bytes() {
        let cache = LinkCache::default();
        let key = PublicKey {
            kind: KeyKind::P256,
            bytes: &[4, 1, 2],
        };
        let mut calls = 0;
        let mut run = |cacheable: bool, signed: &[u8], ok: bool| {
            cache.verify(cacheable, signed, key, || {
                calls += 1;
                if ok {
                    Ok(())
                } else {
                    Err(())
                }
            })
        };
        assert_eq!(run(true, b"cert", false), Err(()));
        assert_eq!(run(true, b"cert", true), Ok(()));
        assert_eq!(
            run(true, b"cert", false),
            Ok(()),
            "a passed link is remembered"
        );
        assert_eq!(
            run(true, b"cert2", false),
            Err(()),
            "other bytes are checked"
        );
        assert_eq!(
            run(false, b"cert", false),
            Err(()),
            "leaves are always checked"
        );
        assert_eq!(calls, 4);
        let other_kind = PublicKey {
            kind: KeyKind::P384,
            bytes: &[4, 1, 2],
        };
        assert_eq!(cache.verify(true, b"cert", other_kind, || Err(())), Err(()));
    }
}
