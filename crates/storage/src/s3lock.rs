//! The S3 lock backend: each log's checkpoint and lease as objects in an
//! S3 bucket, changed only by conditional writes (`If-None-Match: *` to
//! create, `If-Match: <ETag>` to replace). It needs no service besides the
//! bucket: AWS S3, R2 and MinIO support these headers, and the tests run it
//! on SeaweedFS. Servers that ignore the conditional headers (Garage,
//! s3rver) or apply them non-atomically (s3s-fs) must not be used.
//!
//! Key layout, under the prefix of the [`S3Store`] given:
//!
//! | key | body |
//! |---|---|
//! | `lock/<log>/checkpoint` | the latest checkpoint, as stored by the sequencer |
//! | `lock/<log>/lease` | `<holder>\n<expiry, Unix ms>\n` (see [`crate::LeaseOptions`]) |
//!
//! Give the lock a store of its own (another prefix or bucket), not the one
//! whose objects are served to monitors: the lease names hosts and pids.
//!
//! A swap is GET (body and ETag), compare with the expected body, then PUT
//! `If-Match` that ETag, so a concurrent writer makes it fail with `Lost`.
//! When a conditional PUT was retried and then failed its condition, the
//! object is read back: if it holds exactly the bytes written, the earlier
//! attempt landed and the write counts as done (checkpoints and lease
//! records are unique, so nobody else writes the same bytes). Likewise a
//! renewal that finds the lease's ETag changed but the record still naming
//! its holder carries on: only that holder writes its own id.
//!
//! Lease expiry is judged by the clock of whoever reads the record, so the
//! sequencer machines' clocks must agree to well within the TTL (NTP).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::lease::{self, held_by, unix_millis, LeaseOptions, LeaseRecords};
use crate::lock::{Claim, LockBackend, LockError};
use crate::s3::S3Store;
use crate::ObjectStore;
use crate::{PutIf, WriteCondition};

/// A lock backend in an S3 bucket; cheap to clone.
#[derive(Clone, Debug)]
pub struct S3Lock {
    store: Arc<S3Store>,
    lease: LeaseOptions,
}

fn backend(e: impl std::fmt::Display) -> LockError {
    LockError::Backend(e.to_string())
}

fn checkpoint_key(log: &str) -> String {
    format!("lock/{log}/checkpoint")
}

fn lease_key(log: &str) -> String {
    format!("lock/{log}/lease")
}

impl S3Lock {
    /// A lock in `store` with the default lease (10 s).
    pub fn new(store: Arc<S3Store>) -> S3Lock {
        S3Lock::with_lease(store, LeaseOptions::default())
    }

    /// A lock in `store` whose claims are leases of `lease`.
    pub fn with_lease(store: Arc<S3Store>, lease: LeaseOptions) -> S3Lock {
        S3Lock { store, lease }
    }

    /// Writes `body` if `condition` holds; the new ETag, or `None` when the
    /// condition did not hold.
    async fn write(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition<'_>,
    ) -> Result<Option<String>, LockError> {
        let body = Bytes::copy_from_slice(body);
        let written = self.store.put_if(key, body.clone(), condition).await;
        match written.map_err(backend)? {
            PutIf::Written(etag) => Ok(Some(etag)),
            PutIf::ConditionFailed { after_retry: false } => Ok(None),
            PutIf::ConditionFailed { after_retry: true } => {
                let stored = self.store.get_versioned(key).await.map_err(backend)?;
                Ok(stored
                    .filter(|(data, _)| *data == body)
                    .map(|(_, etag)| etag))
            }
        }
    }

    /// Sets the expiry of `holder`'s lease if the object is still `etag`;
    /// the new ETag, or `Lost`.
    async fn rewrite_lease(
        &self,
        log: &str,
        holder: &str,
        expires: i64,
        etag: &str,
    ) -> Result<String, LockError> {
        let (key, record) = (lease_key(log), lease_record(holder, expires));
        let written = self.write(&key, &record, WriteCondition::Matches(etag));
        written.await?.ok_or(LockError::Lost)
    }
}

#[async_trait]
impl LockBackend for S3Lock {
    async fn fetch(&self, log: &str) -> Result<Option<Vec<u8>>, LockError> {
        let found = self.store.get(&checkpoint_key(log)).await;
        Ok(found.map_err(backend)?.map(|data| data.to_vec()))
    }

    async fn create(&self, log: &str, checkpoint: &[u8]) -> Result<(), LockError> {
        let key = checkpoint_key(log);
        let written = self.write(&key, checkpoint, WriteCondition::Absent).await?;
        written.map(drop).ok_or(LockError::Lost)
    }

    async fn replace(&self, log: &str, old: &[u8], new: &[u8]) -> Result<(), LockError> {
        let key = checkpoint_key(log);
        let Some((stored, etag)) = self.store.get_versioned(&key).await.map_err(backend)? else {
            return Err(LockError::Lost);
        };
        if stored != old {
            return Err(LockError::Lost);
        }
        let written = self
            .write(&key, new, WriteCondition::Matches(&etag))
            .await?;
        written.map(drop).ok_or(LockError::Lost)
    }

    async fn claim(&self, log: &str) -> Result<Claim, LockError> {
        lease::claim(Arc::new(self.clone()), log, self.lease).await
    }
}

/// The body of a lease object.
fn lease_record(holder: &str, expires: i64) -> Vec<u8> {
    format!("{holder}\n{expires}\n").into_bytes()
}

/// `(holder, expiry)` of a lease object.
fn parse_lease(body: &[u8]) -> Result<(String, i64), LockError> {
    let text = std::str::from_utf8(body).ok();
    let parsed = text.and_then(|t| {
        let (holder, expires) = t.strip_suffix('\n')?.split_once('\n')?;
        Some((holder.to_string(), expires.parse().ok()?))
    });
    parsed.ok_or_else(|| LockError::Backend(format!("malformed lease object: {body:?}")))
}

fn expiry(ttl: Duration) -> i64 {
    unix_millis() + ttl.as_millis() as i64
}

#[async_trait]
impl LeaseRecords for S3Lock {
    /// The ETag of the lease object this holder last wrote.
    type Version = String;

    async fn take(&self, log: &str, holder: &str, ttl: Duration) -> Result<String, LockError> {
        let key = lease_key(log);
        let current = self.store.get_versioned(&key).await.map_err(backend)?;
        let condition = match &current {
            None => WriteCondition::Absent,
            Some((body, etag)) => {
                let (other, expires) = parse_lease(body)?;
                if expires > unix_millis() {
                    return Err(held_by(&other, expires));
                }
                WriteCondition::Matches(etag)
            }
        };
        let record = lease_record(holder, expiry(ttl));
        match self.write(&key, &record, condition).await? {
            Some(etag) => Ok(etag),
            None => Err(LockError::Claimed(
                "another process took the lease at the same moment".into(),
            )),
        }
    }

    async fn renew(
        &self,
        log: &str,
        holder: &str,
        etag: &String,
        ttl: Duration,
    ) -> Result<String, LockError> {
        match self.rewrite_lease(log, holder, expiry(ttl), etag).await {
            // A renewal whose answer was lost may have landed and changed the
            // ETag: the lease is still ours while the record names us.
            Err(LockError::Lost) => {
                let current = self.store.get_versioned(&lease_key(log)).await;
                let Some((body, etag)) = current.map_err(backend)? else {
                    return Err(LockError::Lost);
                };
                if parse_lease(&body)?.0 != holder {
                    return Err(LockError::Lost);
                }
                self.rewrite_lease(log, holder, expiry(ttl), &etag).await
            }
            other => other,
        }
    }

    async fn release(&self, log: &str, holder: &str, etag: &String) -> Result<(), LockError> {
        // Expired rather than deleted: conditional DELETE is not universal.
        self.rewrite_lease(log, holder, 0, etag).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_records_round_trip() {
        let body = lease_record("host/7/00ff", 1_795_438_637_072);
        assert_eq!(body, b"host/7/00ff\n1795438637072\n");
        assert_eq!(
            parse_lease(&body).unwrap(),
            ("host/7/00ff".to_string(), 1_795_438_637_072)
        );
        for bad in [&b""[..], b"x\n", b"x\ny\n", b"x\n1", b"\xff\n1\n"] {
            assert!(parse_lease(bad).is_err(), "{bad:?}");
        }
    }
}
