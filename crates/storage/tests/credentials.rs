//! Credentials from the AWS SDK's default chain, through the public
//! `S3Store::open`: an instance role (a fake IMDSv2) and web identity (moto's
//! STS), each rotating without a restart, and a machine with no credentials
//! refused at open with one line.
//!
//! The S3 server is SeaweedFS behind a gate that admits only the temporary
//! credentials those sources issued, and only until they expire, as AWS
//! does: a store that kept signing with expired credentials would fail. The
//! chain reads the process environment, so these tests take turns (`ENV`)
//! and each sets every variable the chain looks at. SKIPPED without `weed`
//! or `moto_server` unless CI is set.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ct_storage::{ObjectStore, S3Config, S3Store};
use ct_testkit::gate::{CredentialGate, TempCredentials};
use ct_testkit::imds::FakeImds;
use ct_testkit::moto::Moto;
use ct_testkit::{Weed, BUCKET};

/// The process environment is shared by every test of this binary.
static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the first credentials live: the SDK renews credentials 5 to
/// 10 s before they expire, so these are renewed 2 to 7 s after they are
/// issued.
const SHORT_LIFE: Duration = Duration::from_secs(12);

/// The variables that steer the default chain.
const CHAIN_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
];

/// Clears the chain's variables, points the profile files into the empty
/// folder `home` (so a developer's `~/.aws` plays no part), then sets
/// `variables`.
fn environment(home: &Path, variables: &[(&str, &str)]) {
    for name in CHAIN_VARIABLES {
        std::env::remove_var(name);
    }
    std::env::set_var("AWS_CONFIG_FILE", home.join("config"));
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"));
    for (name, value) in variables {
        std::env::set_var(name, value);
    }
}

/// The test bucket through `gate`, under `prefix`.
fn config(gate: &CredentialGate, prefix: &str) -> S3Config {
    S3Config {
        prefix: prefix.to_string(),
        ..S3Config::new(BUCKET, Some(gate.endpoint.clone()))
    }
}

/// Writes and reads back an object every 250 ms until `until` (at most 200
/// times): every call must succeed, through the rotation.
async fn keep_working(store: &S3Store, until: SystemTime) {
    for i in 0..200 {
        if SystemTime::now() >= until {
            return;
        }
        let key = format!("issuer/rotation-{i}");
        let data = Bytes::from(format!("object {i}"));
        store.put(&key, data.clone()).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(data));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The access key IDs of `seen`, each run of repeats collapsed: the order in
/// which a client used its credentials.
fn in_turn(seen: &[String]) -> Vec<String> {
    let mut turns: Vec<String> = seen.to_vec();
    turns.dedup();
    turns
}

#[tokio::test]
async fn instance_role_credentials_rotate_without_a_restart() {
    let _env = ENV.lock().await;
    let Some(weed) = Weed::start_open().await else {
        return;
    };
    let gate = CredentialGate::start(&weed.endpoint).await;
    let first = TempCredentials::new("first", SHORT_LIFE);
    gate.admit(&first);
    let imds = FakeImds::start(first.clone()).await;
    let home = tempfile::tempdir().unwrap();
    environment(
        home.path(),
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint)],
    );

    let store = S3Store::open(config(&gate, "imds"))
        .await
        .expect("the store opens with the instance role's credentials");
    assert_eq!(
        in_turn(&gate.seen()),
        std::slice::from_ref(&first.access_key_id)
    );

    // As EC2 does, the next credentials are served before the first expire.
    let second = TempCredentials::new("second", Duration::from_secs(3600));
    gate.admit(&second);
    imds.rotate(second.clone());
    // Past the first credentials' expiry, the gate refuses them.
    keep_working(&store, first.expiration + Duration::from_secs(2)).await;

    let keys = [first.access_key_id, second.access_key_id];
    assert_eq!(in_turn(&imds.served()), keys, "IMDS handed out both");
    assert_eq!(in_turn(&gate.seen()), keys, "the store signed with both");
    assert!(gate.refused().is_empty(), "refused: {:?}", gate.refused());
    assert_eq!(store.retries(), 0);
}

#[tokio::test]
async fn web_identity_credentials_rotate_without_a_restart() {
    let _env = ENV.lock().await;
    let Some(moto) = Moto::start().await else {
        return;
    };
    let Some(weed) = Weed::start_open().await else {
        return;
    };
    let mut gate = CredentialGate::start(&weed.endpoint).await;
    let sts = gate.relay_sts(&moto.endpoint, SHORT_LIFE).await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, "projected-token-1").unwrap();
    environment(
        home.path(),
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ct-log"),
            ("AWS_ROLE_SESSION_NAME", "ct-log"),
            ("AWS_ENDPOINT_URL_STS", &sts),
            // Only web identity may answer.
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );

    let first_expiry = SystemTime::now() + SHORT_LIFE;
    let store = S3Store::open(config(&gate, "web-identity"))
        .await
        .expect("the store opens with credentials from STS");
    let issued_at_open = gate.issued();
    assert!(!issued_at_open.is_empty());
    assert!(issued_at_open.contains(&gate.seen()[0]));

    // The platform replaces the projected token, as EKS does every hour.
    std::fs::write(&token_file, "projected-token-2").unwrap();
    keep_working(&store, first_expiry + Duration::from_secs(2)).await;

    let issued = gate.issued();
    assert!(issued.len() > issued_at_open.len(), "STS was asked again");
    let used = in_turn(&gate.seen());
    assert!(used.len() >= 2, "the store rotated: {used:?}");
    assert!(used.iter().all(|key| issued.contains(key)), "{used:?}");
    assert_eq!(used.last(), issued.last(), "it signs with the newest");
    let tokens = gate.web_identity_tokens();
    assert_eq!(
        tokens.first().map(String::as_str),
        Some("projected-token-1")
    );
    assert_eq!(tokens.last().map(String::as_str), Some("projected-token-2"));
    assert!(gate.refused().is_empty(), "refused: {:?}", gate.refused());
    assert_eq!(store.retries(), 0);
}

#[tokio::test]
async fn a_machine_without_credentials_is_refused_at_open_with_one_line() {
    let _env = ENV.lock().await;
    let home = tempfile::tempdir().unwrap();
    // No variables, empty profile files, and no instance metadata service.
    environment(home.path(), &[("AWS_EC2_METADATA_DISABLED", "true")]);
    let started = Instant::now();
    let config = S3Config::new(BUCKET, Some("http://127.0.0.1:9".to_string()));
    let err = S3Store::open(config).await.unwrap_err().to_string();
    assert!(
        err.contains("no S3 credentials from the AWS default chain"),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
