//! Layer 1: a bounded in-memory map with two generations.
//!
//! New keys go into the young generation; when it holds half the capacity,
//! it becomes the old generation and the previous old one is dropped. A hit
//! in the old generation moves the key back into the young one. Memory is
//! bounded by `capacity` entries, operations are O(1), and recently used
//! keys survive — an LRU approximation with no per-entry bookkeeping.

use std::collections::HashMap;

use crate::{Key, Location};

/// A bounded cache of recent dedup records.
#[derive(Debug)]
pub struct MemoryCache {
    generation_size: usize,
    young: HashMap<Key, Location>,
    old: HashMap<Key, Location>,
}

impl MemoryCache {
    /// A cache holding at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> MemoryCache {
        let generation_size = (capacity / 2).max(1);
        MemoryCache {
            generation_size,
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }

    pub fn get(&mut self, key: &Key) -> Option<Location> {
        if let Some(location) = self.young.get(key) {
            return Some(*location);
        }
        let location = self.old.remove(key)?;
        self.insert(*key, location);
        Some(location)
    }

    pub fn insert(&mut self, key: Key, location: Location) {
        if self.young.len() >= self.generation_size && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, location);
    }

    /// Entries held now; never more than the capacity.
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Key {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&i.to_be_bytes());
        k
    }

    fn at(i: u64) -> Location {
        Location {
            leaf_index: i,
            timestamp: i + 1,
        }
    }

    #[test]
    fn stays_within_capacity_after_a_million_keys() {
        let capacity = 10_000;
        let mut cache = MemoryCache::new(capacity);
        for i in 0..1_000_000 {
            cache.insert(key(i), at(i));
            assert!(cache.len() <= capacity);
        }
        assert!(cache.len() > capacity / 2, "len {}", cache.len());
        assert_eq!(cache.get(&key(999_999)), Some(at(999_999)));
        assert_eq!(cache.get(&key(0)), None);
    }

    #[test]
    fn recently_used_keys_survive_eviction() {
        let mut cache = MemoryCache::new(100);
        cache.insert(key(0), at(0));
        for i in 1..1000 {
            cache.insert(key(i), at(i));
            assert_eq!(cache.get(&key(0)), Some(at(0)), "after {i} inserts");
        }
        assert!(cache.len() <= 100);
    }
}
