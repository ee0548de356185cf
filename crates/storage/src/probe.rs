//! Refusing storage that would silently break the log. The lock's
//! compare-and-swap on S3 and the never-backwards checkpoint both rest on
//! the server honouring `If-None-Match: *` and `If-Match`. Some
//! S3-compatible servers ignore them and write anyway; on those, two
//! sequencers could both "win" and fork the log. So before trusting a
//! bucket, try both conditions where they must fail.

use bytes::Bytes;

use crate::{ObjectStore, PutIf, StorageError, WriteCondition};

/// Checks that `store` refuses a conditional create of an existing key and
/// a conditional replace against a wrong version, using (and then
/// deleting) the scratch object `key`.
pub async fn probe_conditional_writes(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<(), StorageError> {
    let original = Bytes::from(format!(
        "conditional-write probe {:016x}\n",
        fastrand::u64(..)
    ));
    store.put(key, original.clone()).await?;
    let result = try_conditions(store, key).await;
    let cleanup = store.delete(key).await;
    result.and(cleanup)
}

async fn try_conditions(store: &dyn ObjectStore, key: &str) -> Result<(), StorageError> {
    let ignored = |header: &str| {
        Err(StorageError::Unsafe(format!(
            "the store ignores {header} (a conditional write to {key} succeeded where it must fail), so it cannot hold a CT log's lock or checkpoint without forking it; use a server that honours conditional writes (AWS S3, R2, MinIO, SeaweedFS)"
        )))
    };
    let create = store.put_if(key, Bytes::from_static(b"x"), WriteCondition::Absent);
    if let PutIf::Written(_) = create.await? {
        return ignored("If-None-Match");
    }
    let wrong = "\"00000000000000000000000000000000\"";
    let replace = store.put_if(
        key,
        Bytes::from_static(b"y"),
        WriteCondition::Matches(wrong),
    );
    if let PutIf::Written(_) = replace.await? {
        return ignored("If-Match");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn a_store_that_honours_conditions_passes_and_is_left_clean() {
        let store = MemoryStore::new();
        probe_conditional_writes(&store, "_probe/x").await.unwrap();
        assert!(store.keys().is_empty());
    }
}
