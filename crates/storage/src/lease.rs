//! Leases: how the remote lock backends ([`crate::S3Lock`],
//! [`crate::PostgresLock`]) implement [`LockBackend::claim`], where no OS
//! lock can outlive a crashed holder.
//!
//! A lease is a record per log — holder id and expiry time — that a backend
//! changes only with its own compare-and-swap ([`LeaseRecords`]). Claiming
//! takes the record when it is missing or expired; the returned [`Claim`]
//! renews it in a background task every [`LeaseOptions::renew_every`] and
//! releases it (marks it expired) when dropped. A standby process is refused
//! until the holder stops renewing, then takes over after at most one TTL.
//!
//! The holder reports its claim lost ([`Claim::is_lost`]) when a renewal
//! finds the record changed (someone else took it), or when its own clock
//! says the lease has run out without a successful renewal. The expiry is
//! measured on the boot-time clock from the moment the last successful
//! renewal was *sent*, so the holder gives up no later than a standby may
//! take over: a standby judges expiry by the store's clock (PostgreSQL) or
//! by seeing the same record unchanged for a whole TTL on its own clock
//! (S3), never by comparing another machine's wall clock with its own. The
//! checkpoint compare-and-swap still stops a sequencer that misses the news.
//!
//! A machine whose wall clock is more than [`crate::MAX_CLOCK_SKEW`] from the lock
//! store's neither claims a lease nor keeps one: it checks before claiming
//! and after every renewal, and says why in [`ClockStatus`] for `/health`.
//!
//! Holder ids are fresh per claim (`host/pid/random`), so two claims in one
//! process exclude each other like claims in two processes do.
//!
//! [`LockBackend::claim`]: crate::LockBackend::claim

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{oneshot, watch};

use crate::clock::{BootInstant, ClockReading, ClockStatus};
use crate::lock::{Claim, LockError};

/// How long a lease lasts and how often its holder renews it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseOptions {
    /// How long a lease outlives its last renewal: the longest a standby
    /// waits after the holder dies without releasing it. Default 10 s.
    pub ttl: Duration,
    /// Time between renewals. Default a third of `ttl`, so a renewal may
    /// fail twice before the lease runs out.
    pub renew_every: Duration,
}

impl LeaseOptions {
    /// A lease of `ttl`, renewed every third of it.
    pub fn new(ttl: Duration) -> LeaseOptions {
        LeaseOptions {
            ttl,
            renew_every: ttl / 3,
        }
    }
}

impl Default for LeaseOptions {
    fn default() -> LeaseOptions {
        LeaseOptions::new(Duration::from_secs(10))
    }
}

/// One backend's lease records, each changed only by compare-and-swap.
#[async_trait]
pub(crate) trait LeaseRecords: Send + Sync + 'static {
    /// What identifies the record this holder last wrote (an ETag, or
    /// nothing where the holder id is enough).
    type Version: Send + Sync + 'static;

    /// Takes the lease of `log` for `holder`, expiring `ttl` from now, if
    /// it is missing or expired; else `Claimed` (see [`held_by`]).
    async fn take(
        &self,
        log: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Self::Version, LockError>;

    /// Moves the expiry of `holder`'s lease to `ttl` from now; `Lost` if the
    /// record is no longer the one written as `version`.
    async fn renew(
        &self,
        log: &str,
        holder: &str,
        version: &Self::Version,
        ttl: Duration,
    ) -> Result<Self::Version, LockError>;

    /// Marks `holder`'s lease expired, unless it is no longer theirs.
    async fn release(
        &self,
        log: &str,
        holder: &str,
        version: &Self::Version,
    ) -> Result<(), LockError>;

    /// This machine's clock against the store's, from one exchange.
    async fn clock_reading(&self) -> Result<ClockReading, LockError>;

    /// Where the last verdict on this machine's clock is kept.
    fn clock_status(&self) -> &ClockStatus;
}

/// Measures this machine's clock against the store's and records the
/// verdict; `ClockSkew` if the clock is unfit to sequence. A failed
/// measurement proves nothing either way: it is logged and passes.
async fn check_clock<R: LeaseRecords>(records: &R) -> Result<(), LockError> {
    let reading = match records.clock_reading().await {
        Ok(reading) => reading,
        Err(e) => {
            tracing::warn!(error = %e, "could not compare the clock with the lock store's");
            return Ok(());
        }
    };
    let problem = reading.problem();
    records.clock_status().set(problem.clone());
    match problem {
        Some(problem) => Err(LockError::ClockSkew(problem)),
        None => Ok(()),
    }
}

/// Takes the lease of `log` and starts renewing it; see the module doc.
pub(crate) async fn claim<R: LeaseRecords>(
    records: Arc<R>,
    log: &str,
    options: LeaseOptions,
) -> Result<Claim, LockError> {
    check_clock(&*records).await?;
    let holder = holder_id();
    let sent = BootInstant::now();
    let version = records.take(log, &holder, options.ttl).await?;
    let (lost_tx, lost_rx) = watch::channel(false);
    let (expires_tx, expires_rx) = watch::channel(sent + options.ttl);
    // Dropping the claim drops `stop`, which tells the task to release.
    let (stop, stopped) = oneshot::channel::<()>();
    let lease = Lease {
        records,
        log: log.to_string(),
        holder,
        options,
    };
    tokio::spawn(lease.keep(version, expires_tx, lost_tx, stopped));
    Ok(Claim::revocable(stop, lost_rx).with_expiry(expires_rx))
}

/// A lease this process holds, kept alive by [`Lease::keep`].
struct Lease<R> {
    records: Arc<R>,
    log: String,
    holder: String,
    options: LeaseOptions,
}

impl<R: LeaseRecords> Lease<R> {
    /// Renews until the claim is dropped (then releases) or the lease is
    /// lost (then says so on `lost`). `expires` holds when the lease runs
    /// out by this machine's boot-time clock; each renewal moves it. After
    /// each renewal the clock is checked again: one that drifted away from
    /// the store's gives the lease up.
    async fn keep(
        self,
        mut version: R::Version,
        expires: watch::Sender<BootInstant>,
        lost: watch::Sender<bool>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let LeaseOptions { ttl, renew_every } = self.options;
        let mut deadline = *expires.borrow();
        let mut pause = renew_every;
        loop {
            tokio::select! {
                _ = &mut stopped => return self.release(&version).await,
                _ = tokio::time::sleep(deadline.remaining().min(pause)) => {}
            }
            let sent = BootInstant::now();
            // A renewal sent after the lease ran out could only land after a
            // standby may have started counting: give up instead.
            let left = deadline.remaining();
            let result = if left.is_zero() {
                Err(LockError::Lost)
            } else {
                let renewal = self.records.renew(&self.log, &self.holder, &version, ttl);
                tokio::time::timeout(left, renewal)
                    .await
                    .unwrap_or_else(|_| Err(LockError::Backend("no renewal before expiry".into())))
            };
            let result = match result {
                Ok(renewed) => check_clock(&*self.records).await.map(|()| renewed),
                Err(e) => Err(e),
            };
            match result {
                Ok(renewed) => {
                    version = renewed;
                    deadline = sent + ttl;
                    expires.send_replace(deadline);
                    pause = renew_every;
                }
                // A backend hiccup: try again soon while the lease lasts.
                Err(LockError::Backend(e)) if deadline.remaining() > Duration::ZERO => {
                    tracing::warn!(log = %self.log, error = %e, "lease renewal failed, retrying");
                    pause = (ttl / 10).min(renew_every);
                }
                Err(e) => {
                    tracing::error!(log = %self.log, holder = %self.holder, error = %e, "lease lost");
                    let _ = lost.send(true);
                    if matches!(e, LockError::ClockSkew(_)) {
                        self.release(&version).await;
                    }
                    return;
                }
            }
        }
    }

    /// Best effort: a lease left behind only makes a standby wait one TTL.
    async fn release(&self, version: &R::Version) {
        let release = self.records.release(&self.log, &self.holder, version);
        match tokio::time::timeout(self.options.ttl, release).await {
            Ok(Ok(())) => tracing::debug!(log = %self.log, "lease released"),
            Ok(Err(e)) => tracing::warn!(log = %self.log, error = %e, "lease release failed"),
            Err(_) => tracing::warn!(log = %self.log, "lease release timed out"),
        }
    }
}

/// A fresh holder id: `host/pid/random`, readable in "held by" messages.
fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown-host".to_string());
    format!("{host}/{}/{:016x}", std::process::id(), fastrand::u64(..))
}

/// The refusal for a lease that `holder` keeps until `until` (Unix ms, by
/// the store's clock).
pub(crate) fn held_by(holder: &str, until: i64) -> LockError {
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(until) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{until} ms after the epoch"));
    LockError::Claimed(format!("held by {holder} until {when}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_holder_and_the_expiry() {
        let err = held_by("host/42/ab", 1_795_438_637_072);
        assert_eq!(
            err.to_string(),
            "another process is already sequencing this log \
             (held by host/42/ab until 2026-11-23T12:57:17.072Z)"
        );
    }

    #[test]
    fn holder_ids_are_fresh_and_one_word() {
        let (a, b) = (holder_id(), holder_id());
        assert_ne!(a, b);
        assert!(!a.contains(char::is_whitespace), "{a}");
        assert_eq!(a.split('/').count(), 3, "{a}");
    }
}
