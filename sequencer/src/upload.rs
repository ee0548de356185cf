//! Every write a round makes to storage goes through here, counted in
//! `ct_uploads_total{log, kind}` and, when it fails,
//! `ct_upload_errors_total{log, kind}`.

use std::sync::Arc;

use bytes::Bytes;
use ct_storage::{ObjectStore, PutIf, StorageError, WriteCondition};

/// What kind of object `key` names, for the metrics.
pub(crate) fn kind_of(key: &str) -> &'static str {
    if key == "checkpoint" {
        "checkpoint"
    } else if key.starts_with("staging/") {
        "staging"
    } else if key.starts_with("tile/data/") {
        "data_tile"
    } else {
        "hash_tile"
    }
}

/// Writes one object, counting it.
pub(crate) async fn put_counted(
    store: &Arc<dyn ObjectStore>,
    log: &str,
    key: &str,
    data: Bytes,
) -> Result<(), StorageError> {
    counted(log, key, store.put(key, data)).await
}

/// Writes one object if `condition` holds, counting it.
pub(crate) async fn put_if_counted(
    store: &Arc<dyn ObjectStore>,
    log: &str,
    key: &str,
    data: Bytes,
    condition: WriteCondition<'_>,
) -> Result<PutIf, StorageError> {
    counted(log, key, store.put_if(key, data, condition)).await
}

async fn counted<T>(
    log: &str,
    key: &str,
    write: impl std::future::Future<Output = Result<T, StorageError>>,
) -> Result<T, StorageError> {
    let labels = [("log", log.to_string()), ("kind", kind_of(key).to_string())];
    metrics::counter!("ct_uploads_total", &labels).increment(1);
    let result = write.await;
    if result.is_err() {
        metrics::counter!("ct_upload_errors_total", &labels).increment(1);
    }
    result
}
