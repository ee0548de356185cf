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
//! | `lock/<log>/lease` | `<holder>\n<renewal count>\n<TTL ms, 0 once released>\n` (see [`crate::LeaseOptions`]) |
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
//! A lease record holds no time of day. Each renewal writes a new record (its
//! renewal count grows, so its ETag changes), and a standby takes the lease
//! only after it has seen the very same record (ETag) unchanged for a whole
//! TTL by its own boot-time clock, or at once when the record says it was
//! released. So no machine ever judges a lease by another machine's wall
//! clock: a standby whose clock runs fast cannot take a live lease. Clocks
//! still matter for what is signed: each machine compares its own with the
//! bucket's (the `Date` of its answers) before claiming and after each
//! renewal (see [`crate::LeaseOptions`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::clock::{BootInstant, ClockReading, ClockStatus};
use crate::lease::{self, LeaseOptions, LeaseRecords};
use crate::lock::{Claim, LockBackend, LockError};
use crate::s3::S3Store;
use crate::ObjectStore;
use crate::{PutIf, WriteCondition};

/// A lock backend in an S3 bucket; cheap to clone (clones share state).
#[derive(Clone, Debug)]
pub struct S3Lock {
    store: Arc<S3Store>,
    lease: LeaseOptions,
    /// Per log, the lease record (ETag) a standby last saw and since when,
    /// by its own clock.
    seen: Arc<Mutex<HashMap<String, (String, BootInstant)>>>,
    clock: Arc<ClockStatus>,
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
        S3Lock {
            store,
            lease,
            seen: Arc::default(),
            clock: Arc::default(),
        }
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

    /// Writes `record` as the lease of `log` if the object is still `etag`;
    /// the new ETag, or `Lost`.
    async fn rewrite_lease(
        &self,
        log: &str,
        record: &LeaseRecord,
        etag: &str,
    ) -> Result<String, LockError> {
        let (key, body) = (lease_key(log), record.encode());
        let written = self.write(&key, &body, WriteCondition::Matches(etag));
        written.await?.ok_or(LockError::Lost)
    }

    /// Whether a standby may take the lease `record`, stored as `etag`:
    /// released, or seen unchanged for its whole TTL by this machine's
    /// clock (the first sighting starts the count). Else, who holds it.
    fn may_take(&self, log: &str, record: &LeaseRecord, etag: &str) -> Result<(), LockError> {
        if record.ttl_ms == 0 {
            return Ok(());
        }
        let ttl = Duration::from_millis(record.ttl_ms);
        let mut seen = self.seen.lock().unwrap();
        let now = BootInstant::now();
        let since = match seen.get(log) {
            Some((seen_etag, since)) if seen_etag == etag => *since,
            _ => {
                seen.insert(log.to_string(), (etag.to_string(), now));
                now
            }
        };
        if since + ttl <= now {
            return Ok(());
        }
        Err(LockError::Claimed(format!(
            "held by {}: its lease record has not changed for {:.1} s of its {:.1} s lease",
            record.holder,
            (ttl - (since + ttl).remaining()).as_secs_f64(),
            ttl.as_secs_f64()
        )))
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

    fn clock_problem(&self) -> Option<String> {
        self.clock.problem()
    }
}

/// A lease object: who holds it, how many times it was renewed (so that
/// every renewal writes new bytes, and a new ETag), and its TTL, 0 once
/// released.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LeaseRecord {
    holder: String,
    renewals: u64,
    ttl_ms: u64,
}

impl LeaseRecord {
    fn encode(&self) -> Vec<u8> {
        format!("{}\n{}\n{}\n", self.holder, self.renewals, self.ttl_ms).into_bytes()
    }

    fn parse(body: &[u8]) -> Result<LeaseRecord, LockError> {
        let text = std::str::from_utf8(body).ok();
        let parsed = text.and_then(|t| {
            let mut lines = t.strip_suffix('\n')?.split('\n');
            let record = LeaseRecord {
                holder: lines.next()?.to_string(),
                renewals: lines.next()?.parse().ok()?,
                ttl_ms: lines.next()?.parse().ok()?,
            };
            lines.next().is_none().then_some(record)
        });
        parsed.ok_or_else(|| LockError::Backend(format!("malformed lease object: {body:?}")))
    }
}

/// What a holder knows of the lease object it last wrote.
pub(crate) struct Written {
    etag: String,
    record: LeaseRecord,
}

#[async_trait]
impl LeaseRecords for S3Lock {
    type Version = Written;

    async fn take(&self, log: &str, holder: &str, ttl: Duration) -> Result<Written, LockError> {
        let key = lease_key(log);
        let current = self.store.get_versioned(&key).await.map_err(backend)?;
        let condition = match &current {
            None => WriteCondition::Absent,
            Some((body, etag)) => {
                self.may_take(log, &LeaseRecord::parse(body)?, etag)?;
                WriteCondition::Matches(etag)
            }
        };
        let record = LeaseRecord {
            holder: holder.to_string(),
            renewals: 0,
            ttl_ms: ttl.as_millis() as u64,
        };
        match self.write(&key, &record.encode(), condition).await? {
            Some(etag) => Ok(Written { etag, record }),
            None => Err(LockError::Claimed(
                "another process took the lease at the same moment".into(),
            )),
        }
    }

    async fn renew(
        &self,
        log: &str,
        _holder: &str,
        last: &Written,
        _ttl: Duration,
    ) -> Result<Written, LockError> {
        let record = LeaseRecord {
            renewals: last.record.renewals + 1,
            ..last.record.clone()
        };
        match self.rewrite_lease(log, &record, &last.etag).await {
            Ok(etag) => Ok(Written { etag, record }),
            // A renewal whose answer was lost may have landed and changed the
            // ETag: the lease is still ours while the record names us.
            Err(LockError::Lost) => {
                let current = self.store.get_versioned(&lease_key(log)).await;
                let Some((body, etag)) = current.map_err(backend)? else {
                    return Err(LockError::Lost);
                };
                let landed = LeaseRecord::parse(&body)?;
                if landed.holder != record.holder || landed.ttl_ms == 0 {
                    return Err(LockError::Lost);
                }
                let record = LeaseRecord {
                    renewals: landed.renewals + 1,
                    ..record
                };
                let etag = self.rewrite_lease(log, &record, &etag).await?;
                Ok(Written { etag, record })
            }
            Err(e) => Err(e),
        }
    }

    async fn release(&self, log: &str, _holder: &str, last: &Written) -> Result<(), LockError> {
        // Marked released rather than deleted: conditional DELETE is not
        // universal. A standby takes a released lease at once.
        let record = LeaseRecord {
            renewals: last.record.renewals + 1,
            ttl_ms: 0,
            ..last.record.clone()
        };
        self.rewrite_lease(log, &record, &last.etag).await.map(drop)
    }

    async fn clock_reading(&self) -> Result<ClockReading, LockError> {
        self.store.clock_reading().await.map_err(backend)
    }

    fn clock_status(&self) -> &ClockStatus {
        &self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_records_round_trip() {
        let record = LeaseRecord {
            holder: "host/7/00ff".into(),
            renewals: 12,
            ttl_ms: 10_000,
        };
        assert_eq!(record.encode(), b"host/7/00ff\n12\n10000\n");
        assert_eq!(LeaseRecord::parse(&record.encode()).unwrap(), record);
        for bad in [
            &b""[..],
            b"x\n",
            b"x\n1\n",
            b"x\n1\n2",
            b"x\n1\n2\n3\n",
            b"\xff\n1\n2\n",
        ] {
            assert!(LeaseRecord::parse(bad).is_err(), "{bad:?}");
        }
    }
}
