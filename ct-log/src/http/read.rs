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

use super::error::ApiError;
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
    let data = log
        .read_object(key)
        .await
        .map_err(|e| ApiError::Internal(format!("reading {key}: {e}")))?
        .ok_or_else(|| ApiError::NotFound(format!("{key} not found")))?;
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
