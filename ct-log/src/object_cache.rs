//! Recently served immutable objects (tiles and issuers) of one log, so a
//! hot tile is answered from memory instead of a storage read on the
//! blocking pool (or an S3 GET) each time.
//!
//! Immutable objects never change once written, so a cached copy is never
//! stale; the checkpoint is never cached. Bounded by bytes; when full,
//! arbitrary entries make room.
//!
//! An object is kept on its second miss, not its first: a monitor's sweep
//! over the whole log reads each tile once, and keeping those would evict
//! the recent tiles every other monitor polls, for objects no one asks for
//! again soon.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use ct_storage::is_immutable;

/// Bytes one log's cache keeps.
const BUDGET: usize = 32 << 20;
/// Larger objects are not kept.
const MAX_OBJECT: usize = 1 << 20;
/// Keys remembered as missed once; the memory is cleared when it is full.
const SEEN_ONCE_MAX: usize = 4096;

/// One log's cache of immutable objects, by storage key.
#[derive(Default)]
pub struct ObjectCache {
    inner: Mutex<Objects>,
}

#[derive(Default)]
struct Objects {
    by_key: HashMap<String, Bytes>,
    bytes: usize,
    /// Keys missed once and not kept (since the last clearing).
    seen_once: HashSet<String>,
}

impl ObjectCache {
    pub fn get(&self, key: &str) -> Option<Bytes> {
        if !is_immutable(key) {
            return None;
        }
        self.inner.lock().unwrap().by_key.get(key).cloned()
    }

    /// Offers `data`, just read from storage after a miss on `key`; kept
    /// if this is the key's second miss and it is immutable and not large.
    pub fn offer(&self, key: &str, data: &Bytes) {
        if !is_immutable(key) || data.len() > MAX_OBJECT {
            return;
        }
        let mut objects = self.inner.lock().unwrap();
        if !objects.missed_before(key) {
            return;
        }
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

impl Objects {
    /// Whether `key` was missed before (forgetting it), else remembers it.
    fn missed_before(&mut self, key: &str) -> bool {
        if self.seen_once.remove(key) {
            return true;
        }
        if self.seen_once.len() >= SEEN_ONCE_MAX {
            self.seen_once.clear();
        }
        self.seen_once.insert(key.to_string());
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two misses: what a tile read again soon looks like to the cache.
    fn offer_twice(cache: &ObjectCache, key: &str, data: &Bytes) {
        cache.offer(key, data);
        cache.offer(key, data);
    }

    #[test]
    fn keeps_immutable_objects_within_its_budget() {
        let cache = ObjectCache::default();
        let tile = Bytes::from(vec![1u8; MAX_OBJECT]);
        offer_twice(&cache, "checkpoint", &Bytes::from_static(b"note"));
        assert_eq!(cache.get("checkpoint"), None, "the checkpoint is mutable");
        offer_twice(
            &cache,
            "tile/0/000",
            &Bytes::from(vec![0u8; MAX_OBJECT + 1]),
        );
        assert_eq!(cache.get("tile/0/000"), None, "too large to keep");
        for i in 0..(BUDGET / MAX_OBJECT + 8) {
            offer_twice(&cache, &format!("tile/0/{i:03}"), &tile);
            assert_eq!(cache.get(&format!("tile/0/{i:03}")), Some(tile.clone()));
        }
        assert!(cache.inner.lock().unwrap().bytes <= BUDGET);
        offer_twice(&cache, "tile/0/000", &tile);
        offer_twice(&cache, "tile/0/000", &tile);
        let objects = cache.inner.lock().unwrap();
        let total: usize = objects.by_key.values().map(Bytes::len).sum();
        assert_eq!(objects.bytes, total, "a rewrite is counted once");
    }

    #[test]
    fn a_sweep_read_once_keeps_nothing_and_evicts_nothing() {
        let cache = ObjectCache::default();
        let tile = Bytes::from(vec![1u8; MAX_OBJECT]);
        let polled: Vec<String> = (0..8).map(|i| format!("tile/0/{i:03}")).collect();
        for key in &polled {
            offer_twice(&cache, key, &tile);
        }
        for i in 0..3 * SEEN_ONCE_MAX {
            let key = format!("tile/data/x{:03}/{:03}", i / 1000, i % 1000);
            cache.offer(&key, &tile);
            assert_eq!(cache.get(&key), None, "{key} was read once");
        }
        for key in &polled {
            assert_eq!(cache.get(key), Some(tile.clone()), "{key} was evicted");
        }
        let seen = cache.inner.lock().unwrap().seen_once.len();
        assert!(seen <= SEEN_ONCE_MAX, "{seen} keys remembered");
    }
}
