//! An in-memory object store for tests. It enforces the immutability rule
//! that real stores only promise: rewriting a `tile/` or `issuer/` object
//! with different bytes is an error, and is counted so a test can assert that
//! it never happened.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{check_key, is_immutable, ObjectStore, StorageError};

/// A map of key → bytes that refuses to change immutable objects.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    rewrites: Mutex<Vec<String>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Keys of immutable objects someone tried to rewrite with other bytes.
    pub fn immutability_violations(&self) -> Vec<String> {
        self.rewrites.lock().unwrap().clone()
    }

    /// All keys currently stored, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        check_key(key)?;
        let mut objects = self.objects.lock().unwrap();
        if let Some(old) = objects.get(key) {
            if is_immutable(key) && *old != data {
                self.rewrites.lock().unwrap().push(key.to_string());
                return Err(StorageError::ImmutableRewrite(key.to_string()));
            }
        }
        objects.insert(key.to_string(), data);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        check_key(key)?;
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn immutable_objects_may_only_be_rewritten_identically() {
        let store = MemoryStore::new();
        store.put("tile/0/000", Bytes::from_static(b"a")).await.unwrap();
        store.put("tile/0/000", Bytes::from_static(b"a")).await.unwrap();
        let err = store.put("tile/0/000", Bytes::from_static(b"b")).await.unwrap_err();
        assert!(matches!(err, StorageError::ImmutableRewrite(_)));
        assert_eq!(store.immutability_violations(), vec!["tile/0/000".to_string()]);
        assert_eq!(store.get("tile/0/000").await.unwrap().unwrap(), "a");
        store.put("checkpoint", Bytes::from_static(b"1")).await.unwrap();
        store.put("checkpoint", Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "2");
    }
}
