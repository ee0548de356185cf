//! One log served by several `ct-log` processes on loopback: sequencers
//! (`serve --role sequencer`, one active, the others standing by for the
//! lease) and stateless frontends (`serve --role frontend`) that forward
//! entries to the active sequencer over the internal API. Every process
//! shares a real PostgreSQL (lock with a 2 s lease, and dedup) and a real
//! SeaweedFS S3 bucket (storage), both started by the harness in
//! `ct_testkit::cluster`; a test prints why and returns when either is
//! unavailable.
//!
//! - `failover_after_kill_9`: the active sequencer is SIGKILLed under load;
//!   the standby takes over within a few lease periods.
//! - `paused_sequencer_steps_down`: the active sequencer is SIGSTOPped past
//!   its lease; the standby takes over; once resumed, the old one steps down
//!   and publishes nothing.
//! - `dedup_across_frontends`: one chain through different frontends, in
//!   turn and concurrently, is one entry with one SCT; the internal API
//!   refuses requests without the cluster secret. Each stateless frontend
//!   serves the RFC 6962 read API from storage and the shared leaf-hash
//!   index.
//! - `the_internal_api_over_https`: sequencers serve the internal API over
//!   HTTPS with a private CA's certificate, which the frontends trust.
//!
//! After a run under load, `check_run` checks that every SCT a client
//! received verifies and names its own entry, at its index with its
//! timestamp, in the final log ([`verify_log`]); that the log passes
//! `ct_client::audit`; and that no two checkpoints of one size, as read from
//! any frontend at any time, differ.

mod common;

use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{add, http_client, http_client_with_timeout, leaf_index, submit_all};
use ct_testkit::cluster::{
    check_run, leaves_of, wait_until, Cluster, Running, ACTIVE, FRONTENDS, LEASE_TTL_MS, SECRET,
};
use ct_testkit::pki::LeafKind;
use ct_testkit::verify::{fetch_checkpoint, verify_log};
use ct_testkit::window::mid_window;

/// Distinct chains generated for a run under load (more than it can use).
const CHAINS: u64 = 2000;
/// The longest acceptable failover: from the active sequencer's death (or
/// stop) until the standby reports itself active (after a kill, also until
/// the first SCT for a submission sent after it).
const FAILOVER_LIMIT: Duration = Duration::from_secs(15);
/// Series names.
const ROUNDS: &str = "ct_round_seconds_count";
/// What a sequencer that lost its lease says on stderr.
const STEPPED_DOWN: &str = "lost the sequencing lease";

/// "Kill -9 the active sequencer under load; the standby takes over within a
/// few lease periods, and nothing any client was promised is lost."
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_after_kill_9() {
    let Some(cluster) = Cluster::setup(CT_LOG, "failover", 250, 2, false).await else {
        return;
    };
    let items = cluster.items(0..CHAINS);
    let submitted = leaves_of(&items);
    let http = http_client_with_timeout(Duration::from_secs(10));
    let Running {
        mut a,
        b,
        frontends,
        load,
    } = cluster
        .run_under_load(&http, items, 100, "before the kill")
        .await;

    a.kill();
    let killed = Instant::now();
    eprintln!("killed sequencer A (-9) under load");
    let took = wait_until(
        Duration::from_secs(45),
        "sequencer B active and a submission sent after the kill answered",
        async || {
            load.scts_sent_after(killed) > 0 && cluster.metric(&http, &b, ACTIVE).await == Some(1.0)
        },
    )
    .await;
    eprintln!("sequencer B took over {took:?} after the kill");
    assert!(
        took <= FAILOVER_LIMIT,
        "failover took {took:?}: more than {FAILOVER_LIMIT:?} from the kill to B active and a new SCT (lease {LEASE_TTL_MS} ms)"
    );
    let resumed = Instant::now();
    load.wait_scts_after(resumed, 100, Duration::from_secs(30), "after the failover")
        .await;
    let obs = load.finish().await;

    let b_rounds = cluster.metric(&http, &b, ROUNDS).await.unwrap_or(0.0);
    assert!(
        b_rounds > 0.0,
        "sequencer B published no round ({ROUNDS} {b_rounds})"
    );
    check_run(&frontends[0].base_url, &cluster.log, &obs, &submitted).await;
}

/// "SIGSTOP the active sequencer past its lease: the standby takes over;
/// resumed, the old one steps down without publishing anything."
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_sequencer_steps_down() {
    let period_ms = 500;
    let Some(cluster) = Cluster::setup(CT_LOG, "paused", period_ms, 2, false).await else {
        return;
    };
    let items = cluster.items(0..CHAINS);
    let mut submitted = leaves_of(&items);
    let http = http_client_with_timeout(Duration::from_secs(10));
    let Running {
        mut a,
        b,
        frontends,
        load,
    } = cluster
        .run_under_load(&http, items, 50, "before the pause")
        .await;

    // Stop A right after it published a round, so that no round of A's can
    // complete between reading its count and the stop.
    let before = cluster.metric(&http, &a, ROUNDS).await;
    let mut rounds_before = before;
    let fast = http_client_with_timeout(Duration::from_secs(2));
    wait_until(
        Duration::from_secs(10),
        "sequencer A publishes a round",
        async || {
            rounds_before = cluster.metric(&fast, &a, ROUNDS).await;
            rounds_before != before
        },
    )
    .await;
    a.signal("STOP");
    let stopped = Instant::now();
    let rounds_before = rounds_before.expect("A's round count");
    // A stopped process writes nothing: what A says after this offset, it
    // says after its resume.
    let stderr_a = a.stderr_path().to_path_buf();
    let said_before_stop = std::fs::read(&stderr_a).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&said_before_stop).contains(STEPPED_DOWN),
        "sequencer A lost its lease before it was stopped"
    );
    let size_at_stop = fetch_checkpoint(&http, &frontends[0].base_url, &cluster.log)
        .await
        .size;
    eprintln!("stopped sequencer A after {rounds_before} rounds, at tree size {size_at_stop}");

    let limit = Duration::from_secs(30);
    cluster
        .wait_active(&http, &b, 1.0, limit, "sequencer B after A's stop")
        .await;
    let took = stopped.elapsed();
    eprintln!("sequencer B active {took:?} after the stop");
    assert!(
        took <= FAILOVER_LIMIT,
        "sequencer B became active {took:?} after A's stop: more than {FAILOVER_LIMIT:?} (lease {LEASE_TTL_MS} ms)"
    );
    wait_until(
        limit,
        "sequencer B publishing entries past the size at the stop, with new SCTs",
        async || load.largest_checkpoint() > size_at_stop && load.scts_sent_after(stopped) > 0,
    )
    .await;
    eprintln!(
        "new SCTs and a larger tree {:?} after the stop",
        stopped.elapsed()
    );
    let pause = Duration::from_millis(3 * LEASE_TTL_MS);
    if let Some(rest) = pause.checked_sub(stopped.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let b_rounds = cluster.metric(&http, &b, ROUNDS).await.unwrap_or(0.0);
    assert!(
        b_rounds > 0.0,
        "sequencer B published no round while A was stopped"
    );
    a.signal("CONT");
    let resumed = Instant::now();
    eprintln!("resumed sequencer A after {:?}", resumed - stopped);

    let said_since = || {
        let all = std::fs::read(&stderr_a).unwrap_or_default();
        String::from_utf8_lossy(&all[said_before_stop.len().min(all.len())..]).into_owned()
    };
    wait_until(
        Duration::from_secs(15),
        &format!("sequencer A says {STEPPED_DOWN:?} after the resume"),
        async || said_since().contains(STEPPED_DOWN),
    )
    .await;
    // Load on, for a few of A's periods after its resume.
    load.wait_scts_after(resumed, 50, Duration::from_secs(30), "after the resume")
        .await;
    tokio::time::sleep(Duration::from_millis(4 * period_ms)).await;
    let mut obs = load.finish().await;
    // A new frontend tries the sequencers in their configured order, A
    // first: A, standing by, must turn its entries away to B.
    let late = cluster.frontend("frontend-late");
    let late_items = cluster.items(CHAINS..CHAINS + 30);
    submitted.extend(leaves_of(&late_items));
    let sent = Instant::now();
    let late_subs = submit_all(&http, &late.base_url, &cluster.log, late_items, 10).await;
    eprintln!(
        "a frontend started after the resume: 30 SCTs in {:?}",
        sent.elapsed()
    );
    obs.scts
        .extend(late_subs.into_iter().map(|sub| (sent, sub)));
    let since = said_since();
    let lines: Vec<&str> = since.lines().collect();
    eprintln!(
        "sequencer A after its resume ({} lines, first ones):\n{}",
        lines.len(),
        lines[..lines.len().min(12)].join("\n")
    );

    let a_active = cluster.metric(&http, &a, ACTIVE).await;
    assert_eq!(
        a_active,
        Some(0.0),
        "sequencer A, resumed after losing its lease, must stand by ({ACTIVE})"
    );
    let a_rounds = cluster.metric(&http, &a, ROUNDS).await;
    assert_eq!(
        a_rounds,
        Some(rounds_before),
        "sequencer A must publish no round after it was stopped ({ROUNDS} before the stop: {rounds_before})"
    );
    let b_active = cluster.metric(&http, &b, ACTIVE).await;
    assert_eq!(b_active, Some(1.0), "sequencer B must still sequence");
    check_run(&frontends[1].base_url, &cluster.log, &obs, &submitted).await;

    // A stepped-down sequencer still shuts down cleanly on SIGTERM.
    a.signal("TERM");
    assert!(
        a.wait_exit(Duration::from_secs(20)),
        "the stepped-down sequencer exited with an error after SIGTERM\n{}",
        a.stderr_tail(30)
    );
}

/// "The same chain through different frontends, one after the other or all
/// at once, is one entry with one SCT; the internal API wants the secret."
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dedup_across_frontends() {
    let period_ms = 250;
    let Some(cluster) = Cluster::setup(CT_LOG, "dedup", period_ms, 1, true).await else {
        return;
    };
    let http = http_client();
    let sequencer = cluster.sequencer(0, "sequencer");
    cluster
        .wait_active(
            &http,
            &sequencer,
            1.0,
            Duration::from_secs(30),
            "the sequencer",
        )
        .await;
    let frontends = cluster.frontends(FRONTENDS);
    let log = &cluster.log;
    let not_after = mid_window();
    let chain = |serial: u64, kind: LeafKind| {
        vec![
            cluster.pki.leaf(serial, kind, not_after),
            cluster.pki.intermediate_der.clone(),
        ]
    };

    // One after the other, through two frontends.
    let first = chain(1, LeafKind::Final);
    let one = add(&http, &frontends[0].base_url, log, &first, false)
        .await
        .unwrap_or_else(|e| panic!("through frontend 0: {e}"));
    let again = add(&http, &frontends[1].base_url, log, &first, false)
        .await
        .unwrap_or_else(|e| panic!("through frontend 1: {e}"));
    assert_eq!(
        one.sct, again.sct,
        "one chain through frontends 0 and 1 must get byte-identical SCTs"
    );
    assert_eq!(leaf_index(&one), 0, "the first entry of a new log");
    let size = fetch_checkpoint(&http, &frontends[2].base_url, log)
        .await
        .size;
    assert_eq!(size, 1, "one chain submitted twice is one entry");

    // All at once, spread over the three frontends.
    let second = chain(2, LeafKind::Precert);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (http, base, log, chain) = (
            http.clone(),
            frontends[i % FRONTENDS].base_url.clone(),
            log.clone(),
            second.clone(),
        );
        tasks.spawn(async move { (i, add(&http, &base, &log, &chain, true).await) });
    }
    let mut scts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("submission task");
        scts.push(result.unwrap_or_else(|e| panic!("concurrent submission #{i}: {e}")));
    }
    for (i, sub) in scts.iter().enumerate() {
        assert_eq!(
            sub.sct, scts[0].sct,
            "concurrent submissions of one precertificate: SCT #{i} differs from the first"
        );
    }
    assert_eq!(leaf_index(&scts[0]), 1, "the second entry");
    // A few rounds, for any stray duplicate to be sequenced.
    tokio::time::sleep(Duration::from_millis(4 * period_ms)).await;
    for f in &frontends {
        let size = fetch_checkpoint(&http, &f.base_url, log).await.size;
        assert_eq!(
            size, 2,
            "30 concurrent submissions of one chain grew the tree by one"
        );
    }
    let tree = verify_log(&http, &frontends[0].base_url, log, &[one, scts[0].clone()]).await;
    assert_eq!(tree.checkpoint.size, 2);
    for f in &frontends {
        rfc6962_reads_from_storage_and_the_shared_index(&http, &f.base_url, log).await;
    }

    // The frontends reached the sequencer on its internal listener; the
    // public one does not serve the internal API...
    let path = format!("/internal/v1/{}/entries", cluster.name());
    let public = http
        .post(format!("{}{path}", sequencer.base_url))
        .header("authorization", format!("Bearer {SECRET}"))
        .body("{}")
        .send()
        .await
        .expect("POST to the public listener");
    assert_eq!(
        public.status().as_u16(),
        404,
        "the internal API must not be on the public listener when it has its own"
    );
    // ...and the internal one refuses requests without the cluster secret.
    let internal = format!("http://{}{path}", cluster.internal_listen[0]);
    for (what, token) in [
        ("no", None),
        ("a wrong", Some("Bearer not-the-cluster-secret-at-all")),
    ] {
        let mut request = http
            .post(&internal)
            .header("content-type", "application/json")
            .body("{}");
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let r = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {internal}: {e}"));
        assert_eq!(
            r.status().as_u16(),
            401,
            "POST {internal} with {what} bearer token"
        );
    }
    // A sequencer takes no public submission.
    let third = chain(3, LeafKind::Final);
    let refused = add(&http, &sequencer.base_url, log, &third, false).await;
    assert!(
        refused.is_err(),
        "a sequencer must not accept add-chain: {refused:?}"
    );
}

/// Sequencers serving the internal API over HTTPS on listeners of their
/// own, with a certificate of a private CA the frontends are told to trust
/// (`[cluster] ca`, `[cluster] tls`): entries travel, SCTs come back, and
/// the log verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_internal_api_over_https() {
    let settings = ct_testkit::cluster::Settings {
        tls: true,
        ..ct_testkit::cluster::Settings::new(250, 2, true)
    };
    let Some(cluster) = Cluster::setup_with(CT_LOG, "https", settings).await else {
        return;
    };
    let items = cluster.items(0..300);
    let submitted = leaves_of(&items);
    let http = http_client_with_timeout(Duration::from_secs(10));
    let running = cluster.run_under_load(&http, items, 50, "over https").await;
    let observed = running.load.finish().await;
    check_run(
        &running.frontends[0].base_url,
        &cluster.log,
        &observed,
        &submitted,
    )
    .await;
}

/// The RFC 6962 reads of a two-entry log through one process: get-sth,
/// get-entries, and get-proof-by-hash of each entry (its leaf hash is in
/// the shared PostgreSQL index shortly after its round).
async fn rfc6962_reads_from_storage_and_the_shared_index(
    http: &reqwest::Client,
    base: &str,
    log: &ct_testkit::server::LogHandle,
) {
    use base64::prelude::*;
    use sha2::{Digest, Sha256};
    let json = |r: ct_testkit::client::Resp| -> serde_json::Value {
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    };
    let url = |endpoint: &str| ct_testkit::client::submission_url(base, log, endpoint);
    let sth = json(ct_testkit::client::get(http, &url("ct/v1/get-sth")).await);
    assert_eq!(sth["tree_size"], 2, "get-sth from {base}");
    let entries =
        json(ct_testkit::client::get(http, &url("ct/v1/get-entries?start=0&end=9")).await);
    for (index, entry) in entries["entries"].as_array().unwrap().iter().enumerate() {
        let leaf = BASE64_STANDARD
            .decode(entry["leaf_input"].as_str().unwrap())
            .unwrap();
        let hash: [u8; 32] = Sha256::new()
            .chain_update([0])
            .chain_update(&leaf)
            .finalize()
            .into();
        let query = format!(
            "ct/v1/get-proof-by-hash?hash={}&tree_size=2",
            BASE64_STANDARD
                .encode(hash)
                .replace('+', "%2B")
                .replace('/', "%2F")
        );
        wait_until(
            Duration::from_secs(10),
            "the leaf hash indexed",
            async || ct_testkit::client::get(http, &url(&query)).await.status == 200,
        )
        .await;
        let proof = json(ct_testkit::client::get(http, &url(&query)).await);
        assert_eq!(proof["leaf_index"], index, "get-proof-by-hash from {base}");
        assert_eq!(proof["audit_path"].as_array().unwrap().len(), 1);
    }
}
