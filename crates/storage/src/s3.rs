//! The S3 object store: one object per key in a bucket, under an optional
//! key prefix, on any S3-compatible server (AWS, MinIO, Ceph, R2, SeaweedFS,
//! moto, …) with path-style addressing and a custom endpoint.
//!
//! Every object is uploaded with the Content-Type, Content-Encoding and
//! Cache-Control of [`ObjectHeaders::for_key`], so the bucket can be served to
//! monitors directly. Data tiles are stored as the gzip bytes they are given.
//!
//! **Credentials** come from the AWS SDK's default provider chain
//! (`aws-config`), as for every AWS tool: the environment
//! (`AWS_ACCESS_KEY_ID`, …), the shared profile files (static keys, SSO,
//! `credential_process`, assumed roles), web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE`, as on EKS), the ECS container endpoint
//! and EC2 instance metadata (IMDSv2). The chain is asked once when the
//! store opens, so a machine with no credentials fails there with one line;
//! afterwards the client's identity cache asks it again shortly before the
//! credentials expire, so temporary credentials rotate without a restart.
//! [`S3Options::credentials`] replaces the chain with fixed keys (tests,
//! embedding). The chain signs its own STS calls in the store's region.
//!
//! **Timeouts and retries.** The SDK's own retries are disabled; [`S3Store`]
//! runs the retry loop itself so that every retry is counted
//! ([`S3Store::retries`]) and logged. Each call has a connect timeout, a
//! per-attempt timeout and a total deadline ([`S3Options`]). Transient
//! failures are retried with exponential backoff and jitter, up to a bounded
//! number of attempts: timeouts, connection and I/O errors, malformed
//! responses, HTTP 5xx, 408 and 429, and the S3 error codes for throttling
//! (`SlowDown`, `Throttling`, …) and `RequestTimeout` (which S3 sends as a
//! 400 although it is an idle-socket timeout). Every other 4xx fails at once.
//!
//! Checksums: request checksums are sent only when an operation requires
//! them (`WhenRequired`); the new default (CRC32 on every PutObject) is not
//! understood by several S3-compatible servers. The SigV4 signature still
//! covers the SHA-256 of each payload.
//!
//! The immutability of `tile/` and `issuer/` objects is the caller's promise:
//! checking it here would cost a GET before every PUT.
//!
//! **Conditional writes** ([`S3Store::put_if`], [`S3Store::get_versioned`])
//! are the compare-and-swap of [`crate::S3Lock`]: `If-None-Match: *` or
//! `If-Match: <ETag>`. A lost condition is HTTP 412 on most servers, 409
//! `ConditionalRequestConflict` on AWS under concurrent writes, and 404 on
//! some servers for `If-Match` on a missing key; all three mean "not
//! written". They are retried like any call, so a 412 after a retry may be
//! the echo of an earlier attempt that landed: [`PutIf::ConditionFailed`]
//! says so.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    retry::RetryConfig, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use ct_db::{error_chain, one_line};

use crate::clock::ClockReading;
use crate::s3clock::ServerDates;
use crate::{check_key, ObjectHeaders, ObjectStore, PutIf, StorageError, WriteCondition};

/// Where a log's objects live in S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Custom endpoint such as `http://127.0.0.1:8333` or
    /// `https://<account>.r2.cloudflarestorage.com`; `None` for AWS.
    pub endpoint: Option<String>,
    /// Signing region (`us-east-1` for most S3-compatible servers, `auto`
    /// for R2).
    pub region: String,
    /// Key prefix inside the bucket, such as `""` or `logs/2026h1/`. Leading,
    /// trailing and repeated slashes are ignored: object `checkpoint` is
    /// stored as `logs/2026h1/checkpoint`.
    pub prefix: String,
    /// Path-style addressing (`endpoint/bucket/key`) instead of
    /// virtual-hosted style (`bucket.endpoint/key`). [`S3Config::new`] turns
    /// it on when an endpoint is given.
    pub force_path_style: bool,
}

impl S3Config {
    /// A configuration for `bucket` in region `us-east-1`, with no prefix,
    /// and path-style addressing exactly when `endpoint` is set.
    pub fn new(bucket: impl Into<String>, endpoint: Option<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            force_path_style: endpoint.is_some(),
            endpoint,
            region: "us-east-1".to_string(),
            prefix: String::new(),
        }
    }
}

/// Timeouts, retry bounds and credentials of an [`S3Store`]. The default is
/// the production policy.
#[derive(Clone)]
pub struct S3Options {
    /// Bound on establishing one TCP (and TLS) connection. Default 3 s.
    pub connect_timeout: Duration,
    /// Bound on one attempt, from sending the request to the last body
    /// byte. Default 5 s.
    pub attempt_timeout: Duration,
    /// Bound on a whole call, retries and backoff included; no attempt is
    /// started with less than a quarter of `attempt_timeout` left. Default
    /// 30 s.
    pub total_timeout: Duration,
    /// Attempts per call, the first included (at least 1). Default 6.
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles each retry, and a random
    /// jitter of up to half of it is taken off. Default 100 ms.
    pub base_backoff: Duration,
    /// Upper bound on one backoff. Default 5 s.
    pub max_backoff: Duration,
    /// Fixed credentials instead of the AWS SDK's default chain (for tests
    /// and embedding).
    pub credentials: Option<Credentials>,
}

impl Default for S3Options {
    fn default() -> S3Options {
        S3Options {
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            max_attempts: 6,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            credentials: None,
        }
    }
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("base_backoff", &self.base_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("credentials", &self.credentials.as_ref().map(|_| "<fixed>"))
            .finish()
    }
}

/// Object store in an S3 bucket.
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Normalised prefix: empty, or ending with exactly one `/`.
    prefix: String,
    options: S3Options,
    retries: AtomicU64,
    /// The server's clock, as its answers tell it.
    dates: ServerDates,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("retries", &self.retries())
            .finish_non_exhaustive()
    }
}

/// `logs//2026h1/` → `logs/2026h1/`; `/` or `` → ``.
fn normalise_prefix(prefix: &str) -> String {
    let mut out = String::new();
    for part in prefix.split('/').filter(|p| !p.is_empty()) {
        out.push_str(part);
        out.push('/');
    }
    out
}

/// One attempt's failure, already turned into a one-line message.
struct Failure {
    transient: bool,
    message: String,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Failure {
        Failure {
            transient: false,
            message: message.into(),
        }
    }
    fn transient(message: impl Into<String>) -> Failure {
        Failure {
            transient: true,
            message: message.into(),
        }
    }
}

/// S3 error codes that mean "try again later", whatever the HTTP status.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
];

/// The HTTP status of a service error, if the server answered.
fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Whether a conditional PUT failed because its condition did not hold:
/// 412, 409 `ConditionalRequestConflict`, or 404 `NoSuchKey` for `If-Match`
/// (but not a missing bucket).
fn condition_lost<E: ProvideErrorMetadata>(err: &SdkError<E>, condition: WriteCondition) -> bool {
    let code = err.as_service_error().and_then(|e| e.code());
    match status_of(err) {
        Some(412 | 409) => true,
        Some(404) => {
            matches!(condition, WriteCondition::Matches(_)) && code.is_none_or(|c| c == "NoSuchKey")
        }
        _ => false,
    }
}

/// Sorts an SDK error into transient or permanent, with a one-line message.
fn classify<E>(err: SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let mut message = format!("HTTP {status}");
            if !code.is_empty() {
                message.push(' ');
                message.push_str(code);
            }
            if let Some(text) = service.err().message().filter(|m| !m.is_empty()) {
                message.push_str(": ");
                message.push_str(&one_line(text));
            }
            let transient =
                status >= 500 || status == 408 || status == 429 || TRANSIENT_CODES.contains(&code);
            Failure { transient, message }
        }
        SdkError::TimeoutError(_) => {
            Failure::transient(format!("timed out: {}", error_chain(&err)))
        }
        SdkError::DispatchFailure(dispatch) => {
            let message = format!("request not sent: {}", error_chain(&err));
            if dispatch.is_user() {
                Failure::permanent(message)
            } else {
                Failure::transient(message)
            }
        }
        SdkError::ResponseError(_) => {
            Failure::transient(format!("bad response: {}", error_chain(&err)))
        }
        _ => Failure::permanent(error_chain(&err)),
    }
}

impl S3Store {
    /// Connects to the bucket with the default [`S3Options`] and checks it
    /// with a HeadBucket, so a wrong endpoint, bucket or credentials fails
    /// here with a one-line error rather than on the first upload.
    pub async fn open(config: S3Config) -> Result<S3Store, StorageError> {
        S3Store::open_with(config, S3Options::default()).await
    }

    /// [`S3Store::open`] with explicit timeouts, retry bounds or credentials.
    pub async fn open_with(config: S3Config, options: S3Options) -> Result<S3Store, StorageError> {
        let open_error = |message: String| StorageError::S3 {
            op: "open",
            key: describe(&config),
            message,
        };
        if config.bucket.is_empty() {
            return Err(open_error("the bucket name is empty".into()));
        }
        let mut builder = aws_sdk_s3::Config::builder()
            .region(Region::new(config.region.clone()))
            .force_path_style(config.force_path_style)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(options.connect_timeout)
                    .operation_attempt_timeout(options.attempt_timeout)
                    .build(),
            )
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.trim_end_matches('/'));
        }
        let credentials = credentials_provider(&config, &options)
            .await
            .map_err(open_error)?;
        builder = builder.credentials_provider(credentials);
        let dates = ServerDates::default();
        let store = S3Store {
            client: Client::from_conf(builder.interceptor(dates.clone()).build()),
            bucket: config.bucket.clone(),
            prefix: normalise_prefix(&config.prefix),
            options,
            retries: AtomicU64::new(0),
            dates,
        };
        store
            .call("open", "", || async {
                match store
                    .client
                    .head_bucket()
                    .bucket(&store.bucket)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(err) => Err(match status_of(&err) {
                        Some(404) => Failure::permanent("HTTP 404: the bucket does not exist"),
                        Some(403) => Failure::permanent(
                            "HTTP 403: access denied (check the credentials and the bucket policy)",
                        ),
                        Some(301) => Failure::permanent(
                            "HTTP 301: the bucket is in another region, or needs path-style addressing",
                        ),
                        Some(400) => Failure::permanent(
                            "HTTP 400: bad request (check the region and the endpoint)",
                        ),
                        _ => classify(err),
                    }),
                }
            })
            .await
            .map_err(|e| match e {
                StorageError::S3 { message, .. } => open_error(message),
                other => other,
            })?;
        Ok(store)
    }

    /// This machine's clock against the server's, from a HeadBucket.
    pub async fn clock_reading(&self) -> Result<ClockReading, StorageError> {
        let sent = std::time::SystemTime::now();
        self.call("clock", "", || async {
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map(drop)
                .map_err(classify)
        })
        .await?;
        self.dates
            .reading_since(sent)
            .ok_or_else(|| StorageError::S3 {
                op: "clock",
                key: String::new(),
                message: "the server's answer had no Date header".into(),
            })
    }

    /// Retries so far, over all calls (for metrics).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The SDK client (for tools and tests that need more than the trait).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The full object key of `key`: the prefix, then `key`.
    pub fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn s3_key(&self, key: &str) -> Result<String, StorageError> {
        check_key(key)?;
        Ok(self.object_key(key))
    }

    /// A PutObject of `data` with the headers of `key` (stored as `s3_key`).
    fn put_request(&self, key: &str, s3_key: &str, data: Bytes) -> PutObjectFluentBuilder {
        let headers = ObjectHeaders::for_key(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(s3_key)
            .content_type(headers.content_type)
            .set_content_encoding(headers.content_encoding.map(str::to_string))
            .cache_control(headers.cache_control)
            .body(ByteStream::from(data))
    }

    /// Reads `key` and its ETag if the server sent one; `Ok(None)` when it
    /// does not exist.
    async fn get_object(&self, key: &str) -> Result<Option<(Bytes, Option<String>)>, StorageError> {
        let s3_key = self.s3_key(key)?;
        self.call("get", key, || async {
            let output = match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&s3_key)
                .send()
                .await
            {
                Ok(output) => output,
                Err(err) => {
                    let missing =
                        matches!(err.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                            || status_of(&err) == Some(404);
                    return if missing {
                        Ok(None)
                    } else {
                        Err(classify(err))
                    };
                }
            };
            let etag = output.e_tag().map(str::to_string);
            match output.body.collect().await {
                Ok(body) => Ok(Some((body.into_bytes(), etag))),
                Err(err) => Err(Failure::transient(format!(
                    "reading the body: {}",
                    error_chain(&err)
                ))),
            }
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails permanently, runs out of
    /// attempts or would pass the total deadline.
    async fn call<T, F, Fut>(
        &self,
        op: &'static str,
        key: &str,
        mut attempt: F,
    ) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let opts = &self.options;
        let deadline = tokio::time::Instant::now() + opts.total_timeout;
        let max_attempts = opts.max_attempts.max(1);
        let fail = |message: String| StorageError::S3 {
            op,
            key: key.to_string(),
            message,
        };
        let mut number = 1u32;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let bound = opts.attempt_timeout.min(left);
            let failure = match tokio::time::timeout(bound, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(failure)) => failure,
                Err(_) => Failure::transient(format!("timed out after {} ms", bound.as_millis())),
            };
            if !failure.transient {
                return Err(fail(failure.message));
            }
            if number >= max_attempts {
                return Err(fail(format!(
                    "{} (gave up after {number} attempts)",
                    failure.message
                )));
            }
            // Give up rather than start an attempt with too little time.
            let backoff = self.backoff(number);
            if tokio::time::Instant::now() + backoff + opts.attempt_timeout / 4 >= deadline {
                return Err(fail(format!(
                    "{} (gave up after {number} attempts: total timeout {} ms)",
                    failure.message,
                    opts.total_timeout.as_millis()
                )));
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            let labels = [("bucket", self.bucket.clone()), ("op", op.to_string())];
            metrics::counter!("ct_s3_retries_total", &labels).increment(1);
            tracing::warn!(
                op,
                key,
                bucket = %self.bucket,
                attempt = number,
                backoff_ms = backoff.as_millis() as u64,
                error = %failure.message,
                "S3 call failed, retrying"
            );
            tokio::time::sleep(backoff).await;
            number += 1;
        }
    }

    /// Backoff before retry `number` (1 = first retry): exponential, capped,
    /// minus up to half of it at random.
    fn backoff(&self, number: u32) -> Duration {
        let opts = &self.options;
        let full = opts
            .base_backoff
            .saturating_mul(1u32 << (number - 1).min(20))
            .min(opts.max_backoff);
        full.mul_f64(1.0 - fastrand::f64() / 2.0)
    }
}

fn describe(config: &S3Config) -> String {
    match &config.endpoint {
        Some(endpoint) => format!("bucket {:?} at {endpoint}", config.bucket),
        None => format!("bucket {:?} in {}", config.bucket, config.region),
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    /// The version is the ETag, quoted as the server sent it.
    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, String)>, StorageError> {
        match self.get_object(key).await? {
            None => Ok(None),
            Some((data, Some(etag))) => Ok(Some((data, etag))),
            Some((_, None)) => Err(StorageError::S3 {
                op: "get",
                key: key.to_string(),
                message: "the server sent no ETag".into(),
            }),
        }
    }

    /// Atomic on the server (`If-Match`, `If-None-Match: *`).
    async fn put_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition<'_>,
    ) -> Result<PutIf, StorageError> {
        let s3_key = self.s3_key(key)?;
        let (if_match, if_none_match) = match condition {
            WriteCondition::Absent => (None, Some("*".to_string())),
            WriteCondition::Matches(etag) => (Some(etag.to_string()), None),
        };
        let attempts = AtomicU32::new(0);
        self.call("put_if", key, || async {
            let after_retry = attempts.fetch_add(1, Ordering::Relaxed) > 0;
            let sent = self
                .put_request(key, &s3_key, data.clone())
                .set_if_match(if_match.clone())
                .set_if_none_match(if_none_match.clone())
                .send()
                .await;
            match sent {
                Ok(output) => match output.e_tag() {
                    Some(etag) => Ok(PutIf::Written(etag.to_string())),
                    None => Err(Failure::permanent("the server sent no ETag")),
                },
                Err(err) if condition_lost(&err, condition) => {
                    Ok(PutIf::ConditionFailed { after_retry })
                }
                Err(err) => Err(classify(err)),
            }
        })
        .await
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        let s3_key = self.s3_key(key)?;
        self.call("put", key, || async {
            self.put_request(key, &s3_key, data.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(classify)
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let found = self.get_object(key).await?;
        Ok(found.map(|(data, _)| data))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let s3_key = self.s3_key(key)?;
        self.call("delete", key, || async {
            match self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(&s3_key)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                // S3 answers 204 for a missing key; some servers say 404.
                Err(err) if status_of(&err) == Some(404) => Ok(()),
                Err(err) => Err(classify(err)),
            }
        })
        .await
    }

    /// One ListObjectsV2 page: at most 1,000 keys, whatever `limit` says.
    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let s3_prefix = self.object_key(prefix);
        let listed = self
            .call("list", prefix, || async {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&s3_prefix)
                    .max_keys(limit.min(1000) as i32)
                    .send()
                    .await
                    .map_err(classify)
            })
            .await?;
        Ok(listed
            .contents()
            .iter()
            .filter_map(|object| object.key()?.strip_prefix(&self.prefix))
            .map(str::to_string)
            .collect())
    }
}

/// The store's credentials: the fixed override, else the AWS SDK's default
/// chain, asked once now (within the total timeout) so that a machine with
/// no credentials fails at start with one line, rather than with a retried
/// dispatch failure on its first call.
async fn credentials_provider(
    config: &S3Config,
    options: &S3Options,
) -> Result<SharedCredentialsProvider, String> {
    if let Some(fixed) = &options.credentials {
        return Ok(SharedCredentialsProvider::new(fixed.clone()));
    }
    let chain = DefaultCredentialsChain::builder()
        .region(Region::new(config.region.clone()))
        .build()
        .await;
    // The chain's error names every source it tried and why each had none.
    match tokio::time::timeout(options.total_timeout, chain.provide_credentials()).await {
        Ok(Ok(_)) => Ok(SharedCredentialsProvider::new(chain)),
        Ok(Err(err)) => Err(format!(
            "no S3 credentials from the AWS default chain: {}",
            error_chain(&err)
        )),
        Err(_) => Err(format!(
            "no S3 credentials from the AWS default chain (environment, profiles, web identity, \
             ECS, instance metadata) within {} ms",
            options.total_timeout.as_millis()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix(""), "");
        assert_eq!(normalise_prefix("/"), "");
        assert_eq!(normalise_prefix("logs/2026h1/"), "logs/2026h1/");
        assert_eq!(normalise_prefix("/logs//2026h1"), "logs/2026h1/");
        assert_eq!(normalise_prefix("a"), "a/");
    }

    #[test]
    fn path_style_follows_the_endpoint() {
        assert!(S3Config::new("b", Some("http://127.0.0.1:1".into())).force_path_style);
        assert!(!S3Config::new("b", None).force_path_style);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let options = S3Options {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            ..S3Options::default()
        };
        let store = S3Store {
            client: Client::from_conf(
                aws_sdk_s3::Config::builder()
                    .region(Region::new("us-east-1"))
                    .build(),
            ),
            bucket: "b".into(),
            prefix: String::new(),
            options,
            retries: AtomicU64::new(0),
            dates: ServerDates::default(),
        };
        for _ in 0..50 {
            let first = store.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = store.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let tenth = store.backoff(10);
            assert!(tenth >= Duration::from_millis(350) && tenth <= Duration::from_millis(700));
            assert!(store.backoff(64) <= Duration::from_millis(700));
        }
    }
}
