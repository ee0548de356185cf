//! One machine's clock off by 30 s (libfaketime, from Debian's packages),
//! in a cluster on the S3 lock: a standby with a fast or slow clock never
//! takes a live lease, and never sequences even after the healthy holder
//! dies, so nothing is ever signed ahead of true time; it says why on
//! `/health`. A healthy standby takes over within a few leases.

mod common;

use std::time::{Duration, Instant};

use common::CT_LOG;
use ct_testkit::client::{get, http_client};
use ct_testkit::cluster::{
    check_run, leaves_of, Cluster, ClusterLock, Load, Settings, LEASE_TTL_MS,
};

/// Waits until `server`'s /health names its clock `how` the lock store's.
async fn wait_health(http: &reqwest::Client, server: &ct_testkit::server::Server, how: &str) {
    let url = format!("{}/health", server.base_url);
    let said = ct_testkit::cluster::wait_until(Duration::from_secs(20), how, async || {
        let health = get(http, &url).await;
        health.status == 503 && health.text().contains(&format!("{how} the lock store's"))
    })
    .await;
    eprintln!("health says {how} after {said:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sequencer_whose_clock_is_off_never_sequences() {
    let Some(faketime) = ct_testkit::faketime_lib() else {
        return;
    };
    let preload = format!("LD_PRELOAD={faketime}");
    let skewed = |offset: &'static str| ["env", preload.as_str(), offset];
    let settings = Settings {
        lock: ClusterLock::S3,
        ..Settings::new(250, 4, false)
    };
    let Some(cluster) = Cluster::setup_with(CT_LOG, "skew", settings).await else {
        return;
    };
    let http = http_client();
    let lease = Duration::from_millis(LEASE_TTL_MS);
    let mut healthy = cluster.sequencer(0, "healthy");
    cluster
        .wait_active(&http, &healthy, 1.0, Duration::from_secs(30), "healthy")
        .await;
    let fast = cluster.sequencer_under(&skewed("FAKETIME=+30s"), 1, "fast");
    let slow = cluster.sequencer_under(&skewed("FAKETIME=-30s"), 2, "slow");
    wait_health(&http, &fast, "ahead of").await;
    wait_health(&http, &slow, "behind").await;
    cluster
        .assert_standby(&http, &fast, "the fast standby")
        .await;
    cluster
        .assert_standby(&http, &slow, "the slow standby")
        .await;

    let frontends = cluster.frontends(1);
    let started = Instant::now();
    let items = cluster.items(0..400);
    let submitted = leaves_of(&items);
    let load = Load::start(&frontends, &cluster.log, items);
    load.wait_scts_after(started, 30, Duration::from_secs(30), "before the kill")
        .await;

    // The healthy holder dies; the skewed standbys still do not sequence.
    healthy.kill();
    tokio::time::sleep(3 * lease).await;
    cluster
        .assert_standby(&http, &fast, "the fast standby, holder dead")
        .await;
    cluster
        .assert_standby(&http, &slow, "the slow standby, holder dead")
        .await;

    // A standby with a good clock takes over within a few leases.
    let rescue = Instant::now();
    let good = cluster.sequencer(3, "good");
    let took = cluster
        .wait_active(&http, &good, 1.0, 4 * lease, "the healthy standby")
        .await;
    eprintln!("the healthy standby was active {took:?} after it started");
    load.wait_scts_after(rescue, 30, Duration::from_secs(30), "after the takeover")
        .await;
    let observed = load.finish().await;

    let end = ct_testkit::verify::now_ms();
    for (_, sub) in &observed.scts {
        assert!(
            sub.sct.timestamp <= end,
            "an SCT from the future: {} > {end}",
            sub.sct.timestamp
        );
    }
    for (_, checkpoint) in &observed.checkpoints {
        assert!(
            checkpoint.timestamp <= end,
            "a checkpoint from the future: {checkpoint:?}"
        );
    }
    let base = &frontends[0].base_url;
    check_run(base, &cluster.log, &observed, &submitted).await;
}
