//! The `ObjectStore` contract (tests/support) on the local backends; the S3
//! backend runs the same checks in tests/s3.rs.

mod support;

use ct_storage::{FsStore, MemoryStore};

#[tokio::test]
async fn fs_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path().join("log")).unwrap();
    support::exercise_store(&store).await;
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    let store = MemoryStore::new();
    support::exercise_store(&store).await;
    assert!(store.immutability_violations().is_empty());
}
