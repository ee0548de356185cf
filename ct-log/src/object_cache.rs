//! Recently served immutable objects (tiles and issuers) of one log, so a
//! hot tile is answered from memory instead of a storage read on the
//! blocking pool (or an S3 GET) each time.
//!
//! Immutable objects never change once written, so a cached copy is never
//! stale; the checkpoint is never cached. Bounded by bytes; when full,
//! arbitrary entries make room.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use ct_storage::is_immutable;

/// Bytes one log's cache keeps.
const BUDGET: usize = 32 << 20;
/// Larger objects are not kept.
const MAX_OBJECT: usize = 1 << 20;

/// One log's cache of immutable objects, by storage key.
#[derive(Default)]
pub struct ObjectCache {
    inner: Mutex<Objects>,
}

#[derive(Default)]
struct Objects {
    by_key: HashMap<String, Bytes>,
    bytes: usize,
}

impl ObjectCache {
    pub fn get(&self, key: &str) -> Option<Bytes> {
        if !is_immutable(key) {
            return None;
        }
        self.inner.lock().unwrap().by_key.get(key).cloned()
    }

    pub fn put(&self, key: &str, data: &Bytes) {
        if !is_immutable(key) || data.len() > MAX_OBJECT {
            return;
        }
        let mut objects = self.inner.lock().unwrap();
        while objects.bytes + data.len() > BUDGET {
            let Some(victim) = objects.by_key.keys().next().cloned() else {
                break;
            };
            if let Some(old) = objects.by_key.remove(&victim) {
                objects.bytes -= old.len();
            }
        }
        objects.bytes += data.len();
        if let Some(old) = objects.by_key.insert(key.to_string(), data.clone()) {
            objects.bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_immutable_objects_within_its_budget() {
        let cache = ObjectCache::default();
        let tile = Bytes::from(vec![1u8; MAX_OBJECT]);
        cache.put("checkpoint", &Bytes::from_static(b"note"));
        assert_eq!(cache.get("checkpoint"), None, "the checkpoint is mutable");
        cache.put("tile/0/000", &Bytes::from(vec![0u8; MAX_OBJECT + 1]));
        assert_eq!(cache.get("tile/0/000"), None, "too large to keep");
        for i in 0..(BUDGET / MAX_OBJECT + 8) {
            cache.put(&format!("tile/0/{i:03}"), &tile);
            assert_eq!(cache.get(&format!("tile/0/{i:03}")), Some(tile.clone()));
        }
        assert!(cache.inner.lock().unwrap().bytes <= BUDGET);
        cache.put("tile/0/000", &tile);
        cache.put("tile/0/000", &tile);
        let objects = cache.inner.lock().unwrap();
        let total: usize = objects.by_key.values().map(Bytes::len).sum();
        assert_eq!(objects.bytes, total, "a rewrite is counted once");
    }
}
