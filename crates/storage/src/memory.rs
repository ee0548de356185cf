//! An in-memory object store for tests. It enforces the immutability rule
//! that real stores only promise: rewriting a `tile/` or `issuer/` object
//! with different bytes is an error, and is counted so a test can assert that
//! it never happened. It also injects faults by key prefix, both "failed and
//! not written" and "failed but written anyway".

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{check_key, is_immutable, ObjectStore, StorageError};

/// How an injected fault behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails and nothing changes.
    NotWritten,
    /// The write lands, then the call reports failure (a lost response).
    WrittenAnyway,
}

/// A map of key → bytes that refuses to change immutable objects.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    rewrites: Mutex<Vec<String>>,
    /// Pending faults: `(key prefix, fault, remaining count)`.
    faults: Mutex<Vec<(String, Fault, usize)>>,
}

/// The error an injected fault reports.
pub(crate) fn injected(key: &str) -> StorageError {
    StorageError::Io {
        op: "write",
        key: key.to_string(),
        source: std::io::Error::other("injected fault"),
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Keys of immutable objects someone tried to rewrite with other bytes.
    pub fn immutability_violations(&self) -> Vec<String> {
        self.rewrites.lock().unwrap().clone()
    }

    /// Makes the next `times` writes to keys starting with `prefix` fail.
    pub fn inject(&self, prefix: &str, fault: Fault, times: usize) {
        self.faults
            .lock()
            .unwrap()
            .push((prefix.to_string(), fault, times));
    }

    /// Takes one pending fault matching `key`, if any.
    fn take_fault(&self, key: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap();
        let (_, fault, left) = faults
            .iter_mut()
            .find(|(p, _, left)| *left > 0 && key.starts_with(p.as_str()))?;
        *left -= 1;
        Some(*fault)
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
        let fault = self.take_fault(key);
        if fault == Some(Fault::NotWritten) {
            return Err(injected(key));
        }
        self.write(key, data)?;
        match fault {
            Some(_) => Err(injected(key)),
            None => Ok(()),
        }
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

impl MemoryStore {
    fn write(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn immutable_objects_may_only_be_rewritten_identically() {
        let store = MemoryStore::new();
        store
            .put("tile/0/000", Bytes::from_static(b"a"))
            .await
            .unwrap();
        store
            .put("tile/0/000", Bytes::from_static(b"a"))
            .await
            .unwrap();
        let err = store
            .put("tile/0/000", Bytes::from_static(b"b"))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::ImmutableRewrite(_)));
        assert_eq!(
            store.immutability_violations(),
            vec!["tile/0/000".to_string()]
        );
        assert_eq!(store.get("tile/0/000").await.unwrap().unwrap(), "a");
        store
            .put("checkpoint", Bytes::from_static(b"1"))
            .await
            .unwrap();
        store.inject("check", Fault::NotWritten, 1);
        assert!(store
            .put("checkpoint", Bytes::from_static(b"x"))
            .await
            .is_err());
        assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "1");
        store.inject("check", Fault::WrittenAnyway, 1);
        assert!(store
            .put("checkpoint", Bytes::from_static(b"y"))
            .await
            .is_err());
        assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "y");
        store
            .put("checkpoint", Bytes::from_static(b"2"))
            .await
            .unwrap();
        assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "2");
    }
}
