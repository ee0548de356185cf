//! `ct-log serve`: load the config, start every log in this process's
//! role, serve HTTP until SIGTERM or Ctrl-C, then let each log finish its
//! last round.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use ct_storage::LockBackend;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Handle;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::acme::{Acme, Certificates};
use crate::admission::WorkQueue;
use crate::config::{Config, Role};
use crate::forward::Peers;
use crate::http::{self, Mounted};
use crate::lag::RuntimeLag;
use crate::listener::{
    connection_cap, raise_file_limit, resolver_acceptor, serve_http, tls_acceptor, Connections,
};
use crate::log::Log;
use crate::reindex::repair_tail;
use crate::wiring::{open_lock, shared_dedup, start_log, Wiring};

/// Run every log in the config file.
#[derive(clap::Args)]
pub struct Args {
    /// The TOML config file.
    #[arg(long)]
    config: PathBuf,
    /// What this process does for each log: `all` of it (one machine), or
    /// across machines a stateless `frontend` or a `sequencer` (active, or
    /// standing by for the lease).
    #[arg(long, value_enum, default_value_t = Role::All)]
    role: Role,
    /// Listen here instead of the config's `listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve the internal API here instead of `[cluster] internal_listen`.
    #[arg(long)]
    internal_listen: Option<SocketAddr>,
    /// Create any log that neither its lock nor its storage knows, whatever
    /// its inception date. For development: in production a wrong bucket
    /// or an unmounted volume would then start a second tree.
    #[arg(long)]
    create_missing: bool,
}

/// Serves the configured logs until SIGTERM or Ctrl-C. HTTP is served on
/// `front`, a runtime of its own; the logs (rounds, batchers, admitted
/// submissions) run on the current one. See `admission::WorkQueue` for why.
pub async fn run(args: Args, front: Handle) -> anyhow::Result<()> {
    // First of all: from here on a SIGHUP is queued for the roots reload
    // (main ignores it until now), however long the logs take to start.
    let hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let config = Config::load(&args.config)?;
    let file_limit = raise_file_limit();
    let cap = connection_cap(config.max_connections, file_limit, config.logs.len())?;
    tracing::info!(file_limit, max_connections = cap, "connection cap");
    let wiring = wiring(&config, &args, &front).await?;
    // The cached certificate, if any, is served from the first handshake;
    // ordering waits for the listener (validation connects to it).
    let acme = match &config.acme {
        Some(acme) => Some(Acme::start(acme).await?),
        None => None,
    };
    // Before the logs start: what they report at once is kept, and the
    // metric handles they register now (caps, admission, pool) are live.
    let metrics = install_metrics()?;
    let mut mounted = Vec::new();
    let mut tasks = Vec::new();
    for log_config in &config.logs {
        let (log, log_tasks) = start_log(log_config, &wiring).await?;
        mounted.push(Mounted::new(
            log,
            &log_config.submission_prefix,
            &log_config.monitoring_prefix,
        )?);
        tasks.extend(log_tasks);
    }
    for m in &mounted {
        tokio::spawn(repair_tail(m.log.clone()));
    }
    let reload_roots = tokio::spawn(reload_roots_on_sighup(
        hangups,
        mounted.iter().map(|m| m.log.clone()).collect(),
    ));
    let tls = match (&config.tls, &acme) {
        (Some(tls), _) => Some(tls_acceptor(tls)?),
        (None, Some(acme)) => Some(resolver_acceptor(acme.certificates())?),
        (None, None) => None,
    };
    let certificates = acme.as_ref().map(Acme::certificates);
    let listeners = listeners(
        &config,
        &args,
        &mounted,
        metrics,
        wiring.lock.clone(),
        (tls, certificates),
    )?;
    drop((mounted, wiring));
    serve_until_signal(listeners, Connections::new(cap), acme, &front).await?;
    // It holds the logs too; they must all be released for the last round.
    reload_roots.abort();
    let _ = reload_roots.await;
    // The router, and with it every log's batchers, is gone: each sequencer
    // runs a last round for what is queued and the dedup writers drain.
    for task in tasks {
        task.await?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Where and what one listener serves.
struct Listen {
    /// Names the listener in its stdout line.
    what: &'static str,
    addr: SocketAddr,
    app: Router,
    tls: Option<TlsAcceptor>,
}

/// Binds every listener (the public one, the plain one and the internal
/// one if apart), starts the ACME client if any, serves until SIGTERM or
/// Ctrl-C, then finishes the requests in progress.
async fn serve_until_signal(
    listens: Vec<Listen>,
    connections: Connections,
    acme: Option<Acme>,
    front: &Handle,
) -> anyhow::Result<()> {
    let (stop, stopping) = watch::channel(());
    let mut served = Vec::new();
    for listen in listens {
        // A listener belongs to the runtime that binds it.
        let listener = front.spawn(bind(listen.addr)).await??;
        let scheme = if listen.tls.is_some() {
            "https"
        } else {
            "http"
        };
        // Tests and scripts wait for these exact lines on stdout.
        println!(
            "{}listening on {scheme}://{}",
            listen.what,
            listener.local_addr()?
        );
        let mut stopping = stopping.clone();
        let stopped = async move {
            let _ = stopping.changed().await;
        };
        served.push(front.spawn(serve_http(
            listener,
            listen.app,
            listen.tls,
            connections.clone(),
            stopped,
        )));
    }
    if let Some(acme) = acme {
        tokio::spawn(acme.run());
    }
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.send_replace(());
    });
    for result in futures_util::future::join_all(served).await {
        result.context("a listener's task failed")?;
    }
    Ok(())
}

/// The longest accept queue asked of the kernel, which caps it at
/// `net.core.somaxconn` (4096 by default), as Go's listeners do. tokio's
/// `bind` gets std's 128: under a flood the front accepts in turn with the
/// requests it is refusing, a burst of new connections overflows so short
/// a queue, and each dropped SYN costs its client a retransmission a
/// second later (measured: 23,000 drops in 20 s at 4x capacity, accepted
/// p99 over 2 s; none with this queue).
const ACCEPT_BACKLOG: u32 = i32::MAX as u32;

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }?;
    // As std and tokio do: a restarted server rebinds at once.
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("binding {addr}"))?;
    Ok(socket.listen(ACCEPT_BACKLOG)?)
}

/// The public listener (over `tls`, if given), with the internal API
/// merged in, or the internal API on a listener of its own when
/// `internal_listen` is set; and the same as the public one in plain HTTP
/// on `plain_listen`. Only processes that may sequence serve the internal
/// API.
fn listeners(
    config: &Config,
    args: &Args,
    mounted: &[Mounted],
    metrics: PrometheusHandle,
    lock: Option<Arc<dyn LockBackend>>,
    (tls, acme): (Option<TlsAcceptor>, Option<Arc<Certificates>>),
) -> anyhow::Result<Vec<Listen>> {
    let mut public = Listen {
        what: "",
        addr: args.listen.unwrap_or(config.listen),
        app: http::router(mounted, metrics, args.role, lock, acme),
        tls,
    };
    let mut apart = Vec::new();
    if let Some(cluster) = config
        .cluster
        .as_ref()
        .filter(|_| args.role != Role::Frontend)
    {
        let logs = mounted.iter().map(|m| m.log.clone()).collect();
        let internal = http::internal_router(logs, &cluster.secret()?);
        match args.internal_listen.or(cluster.internal_listen) {
            None => public.app = public.app.merge(internal),
            Some(addr) => apart.push(Listen {
                what: "internal API ",
                addr,
                app: http::not_found_elsewhere(internal),
                tls: cluster.tls.as_ref().map(tls_acceptor).transpose()?,
            }),
        }
    }
    let plain = config.plain_listen.map(|addr| Listen {
        what: "plain HTTP ",
        addr,
        app: public.app.clone(),
        tls: None,
    });
    Ok([Some(public), plain]
        .into_iter()
        .flatten()
        .chain(apart)
        .collect())
}

/// What this process brings to its logs: the lock for roles that sequence,
/// the shared dedup store, and the other sequencers for roles that forward.
async fn wiring(config: &Config, args: &Args, front: &Handle) -> anyhow::Result<Wiring> {
    let role = args.role;
    let cluster = match &config.cluster {
        // A sequencer process never forwards: it answers for itself.
        Some(_) if role == Role::Sequencer => None,
        Some(cluster) => Some(Peers {
            sequencers: cluster.sequencers.clone(),
            secret: cluster.secret()?,
            lease_ttl: Duration::from_millis(config.lease_ttl_ms),
            ca: cluster.ca_pem()?,
        }),
        None if role != Role::All => {
            anyhow::bail!(
                "--role frontend and --role sequencer need a [cluster] table in the config"
            )
        }
        None => None,
    };
    // With a shared lock a process may find its log leased elsewhere. A
    // sequencer, or a process that can forward, stands by at once; a lone
    // `all` process outwaits a crashed holder's lease, then refuses rather
    // than serve as a standby no submission can reach.
    let shared = config.lock.is_some();
    let standby = shared && (role == Role::Sequencer || cluster.is_some());
    let claim_wait = if shared && !standby {
        Duration::from_millis(config.lease_ttl_ms) * 2
    } else {
        Duration::ZERO
    };
    let lock = match role {
        Role::Frontend => None,
        Role::All | Role::Sequencer => Some(open_lock(config).await?),
    };
    Ok(Wiring {
        lock,
        standby,
        claim_wait,
        dedup: shared_dedup(config),
        cluster,
        create_missing: args.create_missing,
        work: WorkQueue::new(
            config.max_working_submissions,
            RuntimeLag::watch(front.clone())?,
            Handle::current(),
        ),
        cleanup: config.cleanup(),
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests and the current round");
}

/// Installs the Prometheus recorder every crate's metrics go to, and keeps
/// its histograms trimmed.
fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let seconds = [
        0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(
            Matcher::Full("ct_round_entries".into()),
            &[0.0, 1.0, 10.0, 100.0, 1000.0, 10_000.0],
        )?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    metrics::gauge!("ct_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// On each SIGHUP, re-reads every log's roots file (roots only accumulate).
async fn reload_roots_on_sighup(mut hangups: Signal, logs: Vec<Arc<Log>>) {
    while hangups.recv().await.is_some() {
        for log in &logs {
            if let Err(e) = log.roots.reload().await {
                tracing::error!(log = %log.info.name, error = %format!("{e:#}"), "reloading roots failed; keeping the current roots");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    /// A port another listener holds is refused, naming the address.
    #[tokio::test]
    async fn a_port_in_use_is_refused_with_its_address() {
        let taken = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = taken.local_addr().unwrap();
        let refused = format!("{:#}", bind(addr).await.unwrap_err());
        assert!(
            refused.starts_with(&format!("binding {addr}: ")),
            "{refused}"
        );
    }

    /// A burst of connections beyond std's default backlog (128) waits
    /// in the kernel for the front to accept it: none is dropped (which
    /// would cost its client a SYN retransmission a second later).
    #[tokio::test]
    async fn a_burst_of_connections_waits_to_be_accepted() {
        const BURST: usize = 1_500;
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let files = crate::listener::raise_file_limit();
        if somaxconn <= BURST || files < BURST as u64 + 100 {
            eprintln!("SKIPPED: needs net.core.somaxconn and a file limit above {BURST} (somaxconn {somaxconn}, file limit {files})");
            return;
        }
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Nothing accepts: a dropped SYN is retried after a second and
        // dropped again, so the timeout only allows for a slow machine.
        let connects = (0..BURST)
            .map(|_| tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)));
        let open = futures_util::future::join_all(connects)
            .await
            .into_iter()
            .filter(|c| matches!(c, Ok(Ok(_))))
            .count();
        assert_eq!(open, BURST, "connections waiting to be accepted");
    }
}
