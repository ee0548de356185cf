//! The static read path: checkpoint, tiles and issuers, served from the
//! log's object store with the headers monitors and caches expect.
//!
//! Paths are checked against the tile and issuer grammars before touching
//! storage, so nothing but a well-formed object key ever reaches it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ct_formats::TileId;
use ct_storage::ObjectHeaders;

use super::ApiError;
use crate::log::Log;

pub async fn checkpoint(State(log): State<Arc<Log>>) -> Result<Response, ApiError> {
    serve(&log, "checkpoint").await
}

pub async fn tile(
    State(log): State<Arc<Log>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let key = format!("tile/{path}");
    if TileId::parse(&key).is_none() {
        return Err(ApiError::NotFound(format!("{key} is not a tile path")));
    }
    serve(&log, &key).await
}

pub async fn issuer(
    State(log): State<Arc<Log>>,
    Path(fingerprint): Path<String>,
) -> Result<Response, ApiError> {
    let lower_hex = fingerprint.len() == 64
        && fingerprint
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !lower_hex {
        return Err(ApiError::NotFound(
            "an issuer is named by the lowercase hex SHA-256 of its DER".into(),
        ));
    }
    serve(&log, &format!("issuer/{fingerprint}")).await
}

async fn serve(log: &Log, key: &str) -> Result<Response, ApiError> {
    let data = match cache::get(&log.info.name, key) {
        Some(data) => data,
        None => {
            let data = log
                .store
                .get(key)
                .await
                .map_err(|e| ApiError::Internal(format!("reading {key}: {e}")))?
                .ok_or_else(|| ApiError::NotFound(format!("{key} not found")))?;
            cache::put(&log.info.name, key, &data);
            data
        }
    };
    let headers = ObjectHeaders::for_key(key);
    let mut response = (
        [
            (header::CONTENT_TYPE, headers.content_type),
            (header::CACHE_CONTROL, headers.cache_control),
        ],
        data,
    )
        .into_response();
    if let Some(encoding) = headers.content_encoding {
        response.headers_mut().insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static(encoding),
        );
    }
    Ok(response)
}

/// Recently served immutable objects (tiles and issuers), so a hot tile is
/// answered from memory instead of a storage read on the blocking pool (or
/// an S3 GET) each time. Immutable objects never change once written, so a
/// cached copy is never stale; the checkpoint is never cached. Bounded by
/// bytes; when full, arbitrary entries make room.
mod cache {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    use bytes::Bytes;
    use ct_storage::is_immutable;

    /// Total bytes kept, across logs.
    const BUDGET: usize = 32 << 20;
    /// Larger objects are not kept.
    const MAX_OBJECT: usize = 1 << 20;

    #[derive(Default)]
    struct Cache {
        /// (log name, key) -> bytes
        objects: HashMap<(String, String), Bytes>,
        bytes: usize,
    }

    static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

    pub fn get(log: &str, key: &str) -> Option<Bytes> {
        if !is_immutable(key) {
            return None;
        }
        let cache = CACHE.lock().unwrap();
        cache
            .objects
            .get(&(log.to_string(), key.to_string()))
            .cloned()
    }

    pub fn put(log: &str, key: &str, data: &Bytes) {
        if !is_immutable(key) || data.len() > MAX_OBJECT {
            return;
        }
        let mut cache = CACHE.lock().unwrap();
        while cache.bytes + data.len() > BUDGET {
            let Some(victim) = cache.objects.keys().next().cloned() else {
                break;
            };
            if let Some(old) = cache.objects.remove(&victim) {
                cache.bytes -= old.len();
            }
        }
        let old = cache
            .objects
            .insert((log.to_string(), key.to_string()), data.clone());
        cache.bytes += data.len();
        if let Some(old) = old {
            cache.bytes -= old.len();
        }
    }
}
