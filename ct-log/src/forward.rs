//! A frontend's way to a log's active sequencer, across machines: the
//! client side of the internal API (`internal_api`). It tries the configured
//! sequencer processes in turn, starting with the one that answered last,
//! and keeps trying for a bounded time while none answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{header, StatusCode};
use bytes::Bytes;
use ct_batcher::Priority;
use ct_dedup::{Key, Location, MemoryCache};
use ct_formats::{Entry, LogKey};

use crate::internal_api::{
    encode_entry, entries_path, priority_value, Located, Secret, PRIORITY_HEADER,
};
use crate::refused::Refused;

/// How long a frontend keeps trying sequencers for one entry; under the
/// public 30 s bound, so the CA gets a 503 rather than a timeout.
const FORWARD_BUDGET: Duration = Duration::from_secs(25);
/// Bounds on one attempt, which gets the lease's length: a sequencer
/// paused or cut off for longer has lost its lease, so waiting on beyond it
/// only delays the failover. (A slow round that an attempt gives up on
/// costs nothing: the retry joins the same entry in its batcher.)
const ATTEMPT_TIMEOUT_MIN: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT_MAX: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Entries a frontend remembers the location of, per log.
const RECENT_ENTRIES: usize = 50_000;

/// The processes that may sequence a clustered log.
pub struct Peers {
    pub sequencers: Vec<String>,
    pub secret: String,
    /// The lock's lease: how long a paused sequencer may keep it.
    pub lease_ttl: Duration,
    /// CA certificates (PEM) trusted for `https` sequencer URLs, besides
    /// the system's.
    pub ca: Option<Vec<u8>>,
}

/// A frontend's way to a log's active sequencer: the configured sequencer
/// processes, tried in turn from the one that answered last.
pub struct Forwarder {
    http: reqwest::Client,
    /// `<sequencer>/internal/v1/<log>/entries`, one per configured process.
    urls: Vec<String>,
    bearer: String,
    /// What authenticates each answer.
    secret: Secret,
    /// The log's ID in hex, which every answer must name.
    log_id: String,
    /// Index into `urls` of the sequencer to try first.
    preferred: AtomicUsize,
    /// Locations this frontend handed out lately, so that a CA retrying a
    /// submission is answered without a round trip.
    recent: Mutex<MemoryCache>,
    /// How long one entry may keep trying ([`FORWARD_BUDGET`]).
    budget: Duration,
}

/// How one attempt at one sequencer ended, when it gave no location.
enum Miss {
    /// Final for this entry: pass it to the submitter.
    Refused(Refused),
    /// Try the next sequencer (standing by, unreachable, failed round).
    Elsewhere(String),
}

impl Forwarder {
    pub fn new(peers: &Peers, log: &str, key: &LogKey) -> anyhow::Result<Forwarder> {
        let mut http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(
                peers
                    .lease_ttl
                    .clamp(ATTEMPT_TIMEOUT_MIN, ATTEMPT_TIMEOUT_MAX),
            );
        if let Some(pem) = &peers.ca {
            for ca in reqwest::Certificate::from_pem_bundle(pem)? {
                http = http.add_root_certificate(ca);
            }
        }
        let http = http.build()?;
        let urls = peers
            .sequencers
            .iter()
            .map(|base| format!("{}{}", base.trim_end_matches('/'), entries_path(log)))
            .collect();
        Ok(Forwarder {
            http,
            urls,
            bearer: format!("Bearer {}", peers.secret),
            secret: Secret::new(&peers.secret),
            log_id: hex::encode(key.log_id()),
            preferred: AtomicUsize::new(0),
            recent: Mutex::new(MemoryCache::new(RECENT_ENTRIES)),
            budget: FORWARD_BUDGET,
        })
    }

    /// The location of `entry`, from whichever sequencer is active; keeps
    /// trying for its budget while none answers.
    pub async fn locate(&self, entry: &Entry, priority: Priority) -> Result<Location, Refused> {
        let key = entry.dedup_key();
        if let Some(location) = self.recent.lock().unwrap().get(&key) {
            return Ok(location);
        }
        let body = encode_entry(entry);
        let deadline = tokio::time::Instant::now() + self.budget;
        let mut pause = Duration::from_millis(100);
        let mut last = String::from("no attempt");
        loop {
            let first = self.preferred.load(Ordering::Relaxed);
            for i in (0..self.urls.len()).map(|k| (first + k) % self.urls.len()) {
                let attempt = self.attempt(&self.urls[i], &key, body.clone(), priority);
                let outcome = tokio::time::timeout_at(deadline, attempt)
                    .await
                    .unwrap_or_else(|_| Err(Miss::Elsewhere("out of time".into())));
                match outcome {
                    Ok(location) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        self.recent.lock().unwrap().insert(key, location);
                        return Ok(location);
                    }
                    Err(Miss::Refused(refused)) => return Err(refused),
                    Err(Miss::Elsewhere(why)) => {
                        tracing::debug!(sequencer = %self.urls[i], %why, "trying the next sequencer");
                        // Later submissions start past it, so a paused or
                        // standing-by sequencer costs one attempt, not one each.
                        let next = (i + 1) % self.urls.len();
                        let _ = self.preferred.compare_exchange(
                            i,
                            next,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                        last = why;
                    }
                }
            }
            if tokio::time::Instant::now() + pause >= deadline {
                tracing::warn!(%last, "no sequencer of the log answered");
                return Err(Refused::Busy(format!(
                    "no sequencer of this log is available ({last}); retry later"
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    async fn attempt(
        &self,
        url: &str,
        key: &Key,
        body: Bytes,
        priority: Priority,
    ) -> Result<Location, Miss> {
        let response = self
            .http
            .post(url)
            .header(header::AUTHORIZATION, &self.bearer)
            .header(PRIORITY_HEADER, priority_value(priority))
            .body(body)
            .send()
            .await
            .map_err(|e| Miss::Elsewhere(format!("{url}: {e}")))?;
        let status = response.status();
        let text = response
            .bytes()
            .await
            .map_err(|e| Miss::Elsewhere(format!("{url}: {e}")))?;
        let said = || format!("{url}: {status}: {}", String::from_utf8_lossy(&text).trim());
        match status {
            StatusCode::OK => {
                let located: Located = serde_json::from_slice(&text)
                    .map_err(|e| Miss::Elsewhere(format!("{url}: bad answer: {e}")))?;
                if located.log_id != self.log_id {
                    tracing::error!(sequencer = %url, answered_for = %located.log_id, "a sequencer answered for another log (different key in its config?)");
                    return Err(Miss::Refused(Refused::Failed(
                        "the log's sequencer answered for another log".into(),
                    )));
                }
                // An answer without the secret's MAC is not from a
                // sequencer of ours: sign nothing for it, ask the next.
                self.secret.verify(key, &located).ok_or_else(|| {
                    tracing::error!(sequencer = %url, "an answer failed authentication (wrong secret, or not a sequencer of ours)");
                    Miss::Elsewhere(format!("{url}: the answer failed authentication"))
                })
            }
            // The pool or the in-flight cap is full: its one-line reason
            // (our own server's) goes to the CA as is.
            StatusCode::SERVICE_UNAVAILABLE => Err(Miss::Refused(Refused::Busy(
                String::from_utf8_lossy(&text).trim().to_string(),
            ))),
            // A wrong secret or an entry the sequencer cannot read is a
            // misconfiguration here, not the submitter's fault.
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => {
                tracing::error!(answer = %said(), "the sequencer refused this frontend");
                Err(Miss::Refused(Refused::Failed(
                    "the log's sequencer refused this frontend".into(),
                )))
            }
            _ => Err(Miss::Elsewhere(said())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use ct_formats::EntryKind;

    const SECRET: &str = "0123456789abcdef";

    /// A scripted sequencer on a loopback port: answers each entry with
    /// `status` and the body `answer` gives for it, counting the calls.
    async fn scripted(
        status: StatusCode,
        answer: impl Fn(&Entry) -> String + Clone + Send + Sync + 'static,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().route(
            "/internal/v1/{log}/entries",
            axum::routing::post(move |body: axum::body::Bytes| {
                counted.fetch_add(1, Ordering::SeqCst);
                let entry = crate::internal_api::decode_entry(&body).unwrap();
                let body = answer(&entry);
                async move { (status, body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, calls)
    }

    /// Answers that `text` says, whatever the entry.
    fn says(text: &str) -> impl Fn(&Entry) -> String + Clone + Send + Sync + 'static {
        let text = text.to_string();
        move |_: &Entry| text.clone()
    }

    /// Answers locating each entry at `leaf_index` in the log `log_id`,
    /// authenticated with `secret`.
    fn locates(
        secret: &str,
        log_id: &str,
        leaf_index: u64,
    ) -> impl Fn(&Entry) -> String + Clone + Send + Sync + 'static {
        let (secret, log_id) = (Secret::new(secret), log_id.to_string());
        move |entry: &Entry| {
            let location = Location {
                leaf_index,
                timestamp: 5,
            };
            let answer = secret.answer(&log_id, &entry.dedup_key(), location);
            serde_json::to_string(&answer).unwrap()
        }
    }

    fn key() -> LogKey {
        LogKey::from_signing_key(p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap())
    }

    fn forwarder(sequencers: Vec<String>, key: &LogKey) -> Forwarder {
        let peers = Peers {
            sequencers,
            secret: SECRET.into(),
            lease_ttl: Duration::from_secs(3),
            ca: None,
        };
        let mut forwarder = Forwarder::new(&peers, "log", key).unwrap();
        forwarder.budget = Duration::from_millis(300);
        forwarder
    }

    fn entry(serial: u8) -> Entry {
        Entry {
            kind: EntryKind::X509 {
                certificate: vec![serial; 8],
            },
            chain_fingerprints: vec![[1; 32]],
        }
    }

    #[tokio::test]
    async fn a_standby_is_skipped_and_the_active_sequencer_tried_first_next_time() {
        let key = key();
        let log_id = hex::encode(key.log_id());
        let (standby, standby_calls) =
            scripted(StatusCode::MISDIRECTED_REQUEST, says("standing by")).await;
        let (active, active_calls) = scripted(StatusCode::OK, locates(SECRET, &log_id, 7)).await;
        let forwarder = forwarder(vec![standby, active], &key);
        let first = forwarder.locate(&entry(1), Priority::Normal).await.unwrap();
        assert_eq!((first.leaf_index, first.timestamp), (7, 5));
        forwarder.locate(&entry(2), Priority::Normal).await.unwrap();
        assert_eq!(
            standby_calls.load(Ordering::SeqCst),
            1,
            "asked once, then skipped"
        );
        assert_eq!(active_calls.load(Ordering::SeqCst), 2);
        // A known entry is answered from memory.
        forwarder.locate(&entry(1), Priority::Normal).await.unwrap();
        assert_eq!(active_calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refusals_pass_through_and_silence_runs_out_of_time() {
        let key = key();
        let (other_log, _) = scripted(StatusCode::OK, locates(SECRET, &"ab".repeat(32), 1)).await;
        let refused = forwarder(vec![other_log], &key)
            .locate(&entry(1), Priority::Normal)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Refused::Failed(why) if why.contains("another log")),
            "{refused:?}"
        );

        let (full, _) = scripted(
            StatusCode::SERVICE_UNAVAILABLE,
            says("the log's pool is full; retry later\n"),
        )
        .await;
        let refused = forwarder(vec![full], &key)
            .locate(&entry(1), Priority::Normal)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Refused::Busy(why) if why == "the log's pool is full; retry later"),
            "{refused:?}"
        );

        // Nothing listens on a port just released.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let refused = forwarder(vec![url], &key)
            .locate(&entry(1), Priority::Normal)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Refused::Busy(why) if why.contains("no sequencer of this log is available")),
            "{refused:?}"
        );
    }

    /// A process posing as a sequencer (listed by mistake, or on the path
    /// of a plain-http call) does not know the secret: whatever index it
    /// names, the frontend signs nothing for it, and tries the next one.
    #[tokio::test]
    async fn answers_without_the_secret_are_never_believed() {
        let key = key();
        let log_id = hex::encode(key.log_id());
        let impostor = locates("not the cluster's secret", &log_id, 123_456);
        let (impostor, impostor_calls) = scripted(StatusCode::OK, impostor).await;
        let refused = forwarder(vec![impostor.clone()], &key)
            .locate(&entry(1), Priority::Normal)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Refused::Busy(why) if why.contains("failed authentication")),
            "{refused:?}"
        );
        assert!(impostor_calls.load(Ordering::SeqCst) >= 1);
        // A tampered answer (right secret, another entry's MAC) likewise.
        let other = entry(2);
        let replayed = locates(SECRET, &log_id, 7);
        let (replaying, _) = scripted(StatusCode::OK, move |_: &Entry| replayed(&other)).await;
        let (honest, _) = scripted(StatusCode::OK, locates(SECRET, &log_id, 9)).await;
        let located = forwarder(vec![impostor, replaying, honest], &key)
            .locate(&entry(1), Priority::Normal)
            .await
            .unwrap();
        assert_eq!(
            located.leaf_index, 9,
            "only the authenticated answer counts"
        );
    }
}
