//! A credential gate: an S3 front for a server that accepts any keys
//! ([`crate::Weed::start_open`]). It lets a request through only when it is
//! signed with temporary credentials the gate knows of and that have not
//! expired, as AWS does, and otherwise answers 403 `InvalidAccessKeyId` or
//! `InvalidToken`, or 400 `ExpiredToken`. It learns credentials from the
//! test ([`CredentialGate::admit`]: what a fake IMDS hands out) or from the
//! STS answers it relays ([`CredentialGate::relay_sts`]). It checks the
//! access key ID and the session token, not the signature (the SeaweedFS
//! tests check signatures): they are what tells one set of credentials from
//! the next, so the gate sees when a client rotates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http1::{serve, Request, Response};

/// One set of temporary AWS credentials.
#[derive(Clone, Debug)]
pub struct TempCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
}

impl TempCredentials {
    /// Credentials named `name` (unique within a test), valid for
    /// `lifetime` from now, to the second.
    pub fn new(name: &str, lifetime: Duration) -> TempCredentials {
        TempCredentials {
            access_key_id: format!("ASIA{}", name.to_uppercase()),
            secret_access_key: format!("secret-{name}"),
            session_token: format!("token-{name}"),
            expiration: whole_seconds(SystemTime::now() + lifetime),
        }
    }

    /// The JSON document IMDS serves for a role.
    pub(crate) fn imds_json(&self) -> String {
        serde_json::json!({
            "Code": "Success",
            "LastUpdated": rfc3339(whole_seconds(SystemTime::now())),
            "Type": "AWS-HMAC",
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.session_token,
            "Expiration": rfc3339(self.expiration),
        })
        .to_string()
    }
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

fn rfc3339(time: SystemTime) -> String {
    OffsetDateTime::from(time).format(&Rfc3339).unwrap()
}

#[derive(Default)]
struct Known {
    credentials: HashMap<String, TempCredentials>,
    /// Access key IDs of the requests let through, in order.
    seen: Vec<String>,
    /// Access key IDs (or `-` when unsigned) of the requests refused.
    refused: Vec<String>,
    /// Access key IDs learnt from STS answers, in order.
    issued: Vec<String>,
    /// The `WebIdentityToken` of each STS request relayed.
    web_identity_tokens: Vec<String>,
}

/// A running gate; stops when dropped.
pub struct CredentialGate {
    /// The S3 front, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    known: Arc<Mutex<Known>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for CredentialGate {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl CredentialGate {
    /// Starts an S3 front for `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> CredentialGate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let known = Arc::new(Mutex::new(Known::default()));
        let relay = Relay::new(upstream, known.clone());
        let task = serve(listener, move |request| {
            let relay = relay.clone();
            async move { relay.s3(request).await }
        });
        CredentialGate {
            endpoint,
            known,
            tasks: vec![task],
        }
    }

    /// Starts an STS front for `upstream` and returns its endpoint. The
    /// credentials in its answers are admitted with their expiration cut to
    /// `lifetime` from now, in the answer too, so that clients rotate soon.
    pub async fn relay_sts(&mut self, upstream: &str, lifetime: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let relay = Relay::new(upstream, self.known.clone());
        self.tasks.push(serve(listener, move |request| {
            let relay = relay.clone();
            async move { relay.sts(request, lifetime).await }
        }));
        endpoint
    }

    /// Lets requests signed with `credentials` through until they expire.
    pub fn admit(&self, credentials: &TempCredentials) {
        let mut known = self.known.lock().unwrap();
        known
            .credentials
            .insert(credentials.access_key_id.clone(), credentials.clone());
    }

    /// Access key IDs of the requests let through, in order.
    pub fn seen(&self) -> Vec<String> {
        self.known.lock().unwrap().seen.clone()
    }

    /// Access key IDs (`-` when unsigned) of the requests refused.
    pub fn refused(&self) -> Vec<String> {
        self.known.lock().unwrap().refused.clone()
    }

    /// Access key IDs learnt from STS answers, in order.
    pub fn issued(&self) -> Vec<String> {
        self.known.lock().unwrap().issued.clone()
    }

    /// The `WebIdentityToken` of each STS request relayed, in order.
    pub fn web_identity_tokens(&self) -> Vec<String> {
        self.known.lock().unwrap().web_identity_tokens.clone()
    }
}

/// Forwards requests to one upstream server.
#[derive(Clone)]
struct Relay {
    upstream: String,
    client: reqwest::Client,
    known: Arc<Mutex<Known>>,
}

impl Relay {
    fn new(upstream: &str, known: Arc<Mutex<Known>>) -> Relay {
        Relay {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            known,
        }
    }

    /// An S3 request: checked, then forwarded.
    async fn s3(&self, request: Request) -> Response {
        let key = request
            .header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').next())
            .unwrap_or("-")
            .to_string();
        let refusal = {
            let mut known = self.known.lock().unwrap();
            let refusal = match known.credentials.get(&key) {
                None => Some(Response::s3_error(
                    403,
                    "InvalidAccessKeyId",
                    "The AWS access key ID you provided does not exist in our records.",
                )),
                Some(c) if request.header("x-amz-security-token") != Some(&c.session_token) => {
                    Some(Response::s3_error(
                        403,
                        "InvalidToken",
                        "The provided token is malformed or otherwise invalid.",
                    ))
                }
                Some(c) if SystemTime::now() >= c.expiration => Some(Response::s3_error(
                    400,
                    "ExpiredToken",
                    "The provided token has expired.",
                )),
                Some(_) => None,
            };
            if refusal.is_some() {
                known.refused.push(key);
            } else {
                known.seen.push(key);
            }
            refusal
        };
        match refusal {
            Some(refusal) => refusal,
            None => self.forward(&request).await,
        }
    }

    /// An STS request: forwarded; the credentials in its answer are
    /// admitted, expiring `lifetime` from now.
    async fn sts(&self, request: Request, lifetime: Duration) -> Response {
        let form = String::from_utf8_lossy(&request.body).into_owned();
        if let Some(token) = form
            .split('&')
            .find_map(|pair| pair.strip_prefix("WebIdentityToken="))
        {
            let mut known = self.known.lock().unwrap();
            known.web_identity_tokens.push(token.to_string());
        }
        let mut response = self.forward(&request).await;
        if response.status != 200 {
            return response;
        }
        let xml = String::from_utf8_lossy(&response.body).into_owned();
        let (Some(id), Some(secret), Some(token), Some(old_expiration)) = (
            element(&xml, "AccessKeyId"),
            element(&xml, "SecretAccessKey"),
            element(&xml, "SessionToken"),
            element(&xml, "Expiration"),
        ) else {
            return response;
        };
        let credentials = TempCredentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: token.to_string(),
            expiration: whole_seconds(SystemTime::now() + lifetime),
        };
        let new_expiration = rfc3339(credentials.expiration);
        response.body = xml
            .replace(
                &format!("<Expiration>{old_expiration}</Expiration>"),
                &format!("<Expiration>{new_expiration}</Expiration>"),
            )
            .into_bytes();
        let mut known = self.known.lock().unwrap();
        known.issued.push(credentials.access_key_id.clone());
        known
            .credentials
            .insert(credentials.access_key_id.clone(), credentials);
        response
    }

    /// Sends `request` upstream and returns its answer (502 when it fails).
    async fn forward(&self, request: &Request) -> Response {
        const HOP_BY_HOP: &[&str] = &[
            "host",
            "content-length",
            "connection",
            "expect",
            "transfer-encoding",
            "date",
        ];
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
        let mut outgoing = self
            .client
            .request(method, format!("{}{}", self.upstream, request.target))
            .body(request.body.clone());
        for (name, value) in &request.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                outgoing = outgoing.header(name, value);
            }
        }
        let answer = match outgoing.send().await {
            Ok(answer) => answer,
            Err(err) => return Response::new(502, err.to_string()),
        };
        let status = answer.status().as_u16();
        let headers: Vec<(String, String)> = answer
            .headers()
            .iter()
            .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        match answer.bytes().await {
            Ok(body) => Response {
                status,
                headers,
                body: body.to_vec(),
            },
            Err(err) => Response::new(502, err.to_string()),
        }
    }
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..end])
}
