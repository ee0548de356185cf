//! An in-memory object store for tests. It enforces the immutability rule
//! that real stores only promise: rewriting a `tile/` or `issuer/` object
//! with different bytes is an error, and is counted so a test can assert that
//! it never happened. It also injects faults by key prefix: "failed and not
//! written", "failed but written anyway", and "written late" (a request
//! that lands long after it was sent, even if its sender gave up).
//! Versions for conditional writes are the SHA-256 of the bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    check_key, content_version, is_immutable, ObjectStore, PutIf, StorageError, WriteCondition,
};

/// How an injected fault behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails and nothing changes.
    NotWritten,
    /// The write lands, then the call reports failure (a lost response).
    WrittenAnyway,
    /// The write lands this long after the call, whether or not the caller
    /// still waits for it (a request stuck in the network). A conditional
    /// write's condition is checked when it lands, as a server would.
    Late(Duration),
}

/// A map of key → bytes that refuses to change immutable objects.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
    rewrites: Arc<Mutex<Vec<String>>>,
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
        self.faulted_write(key, data, None).await.map(drop)
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

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, String)>, StorageError> {
        let found = self.get(key).await?;
        Ok(found.map(|data| {
            let version = content_version(&data);
            (data, version)
        }))
    }

    async fn put_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition<'_>,
    ) -> Result<PutIf, StorageError> {
        let expected = match condition {
            WriteCondition::Absent => None,
            WriteCondition::Matches(version) => Some(version.to_string()),
        };
        self.faulted_write(key, data, Some(expected)).await
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let objects = self.objects.lock().unwrap();
        let under = objects.range(prefix.to_string()..);
        Ok(under
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .take(limit)
            .cloned()
            .collect())
    }
}

/// The objects and the record of rewrites, which a late write outlives
/// its caller with.
#[derive(Clone)]
struct Objects {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
    rewrites: Arc<Mutex<Vec<String>>>,
}

impl Objects {
    /// Writes `data` if `expected` (for conditional writes: the version the
    /// object must be at, `None` for absent) holds.
    fn write(
        &self,
        key: &str,
        data: Bytes,
        expected: Option<Option<String>>,
    ) -> Result<PutIf, StorageError> {
        let mut objects = self.objects.lock().unwrap();
        let old = objects.get(key);
        if let Some(expected) = expected {
            if old.map(|o| content_version(o)) != expected {
                return Ok(PutIf::ConditionFailed { after_retry: false });
            }
        }
        if old.is_some_and(|old| is_immutable(key) && *old != data) {
            self.rewrites.lock().unwrap().push(key.to_string());
            return Err(StorageError::ImmutableRewrite(key.to_string()));
        }
        let version = content_version(&data);
        objects.insert(key.to_string(), data);
        Ok(PutIf::Written(version))
    }
}

impl MemoryStore {
    fn objects(&self) -> Objects {
        Objects {
            objects: self.objects.clone(),
            rewrites: self.rewrites.clone(),
        }
    }

    /// A write (conditional when `expected` is given) with any fault
    /// pending for `key` applied.
    async fn faulted_write(
        &self,
        key: &str,
        data: Bytes,
        expected: Option<Option<String>>,
    ) -> Result<PutIf, StorageError> {
        check_key(key)?;
        let objects = self.objects();
        match self.take_fault(key) {
            None => objects.write(key, data, expected),
            Some(Fault::NotWritten) => Err(injected(key)),
            Some(Fault::WrittenAnyway) => {
                objects.write(key, data, expected)?;
                Err(injected(key))
            }
            Some(Fault::Late(delay)) => {
                let key = key.to_string();
                let landing = tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    objects.write(&key, data, expected)
                });
                landing
                    .await
                    .map_err(|e| StorageError::Task(e.to_string()))?
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A late conditional write is judged when it lands, as a server would
    /// judge it, even though its caller stopped waiting.
    #[tokio::test(start_paused = true)]
    async fn late_writes_land_and_are_judged_on_arrival() {
        let store = MemoryStore::new();
        store
            .put("checkpoint", Bytes::from_static(b"1"))
            .await
            .unwrap();
        let (_, v1) = store.get_versioned("checkpoint").await.unwrap().unwrap();
        store.inject("checkpoint", Fault::Late(Duration::from_secs(5)), 1);
        store.inject("tile/", Fault::Late(Duration::from_secs(5)), 1);
        let late = store.put_if(
            "checkpoint",
            Bytes::from_static(b"old"),
            WriteCondition::Matches(&v1),
        );
        assert!(tokio::time::timeout(Duration::from_secs(1), late)
            .await
            .is_err());
        let late = store.put("tile/0/000", Bytes::from_static(b"t"));
        assert!(tokio::time::timeout(Duration::from_secs(1), late)
            .await
            .is_err());
        store
            .put_if(
                "checkpoint",
                Bytes::from_static(b"2"),
                WriteCondition::Matches(&v1),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            store.get("checkpoint").await.unwrap().unwrap(),
            "2",
            "the late write lost its condition"
        );
        assert_eq!(
            store.get("tile/0/000").await.unwrap().unwrap(),
            "t",
            "the late put landed"
        );
        assert!(store.any_under("tile/").await.unwrap());
        assert!(!store.any_under("issuer/").await.unwrap());
    }

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
