//! Serving HTTP/1 on a listener so that no client can starve the log: a
//! cap on open connections that leaves file descriptors for storage, the
//! lock and the dedup database; a quick 503 for connections past the cap;
//! a time limit on request headers that also closes idle keep-alive
//! connections and trickling (slowloris) clients; TLS when configured,
//! from files or from an ACME CA (whose validation handshakes end here);
//! and a graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::acme::ACME_TLS_ALPN;
use crate::config::TlsConfig;

/// How long a client may take to send a request's headers, and how long a
/// keep-alive connection may sit idle before its next request: hyper starts
/// this clock whenever it waits for a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// File descriptors kept for the process beyond client connections: the
/// runtime, listeners, logs, the lock, PostgreSQL, and refusals in progress.
const RESERVE_PROCESS: u64 = 128;
/// ...and for each log: its storage's concurrent operations (bounded by
/// the store) and its databases.
const RESERVE_PER_LOG: u64 = 160;
/// Fewer connections than this is no way to run a log.
const MIN_CONNECTIONS: u64 = 64;
/// Connections past the cap that may be in the middle of their 503 at
/// once (part of the process reserve); beyond it, no more are accepted
/// until one is done.
const MAX_SHEDDING: usize = 64;
/// How long a refused connection is given to send its request and read
/// the 503.
const SHED_TIMEOUT: Duration = Duration::from_millis(200);
/// The whole answer to a connection past the cap.
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\n\
    Content-Length: 34\r\n\r\ntoo many connections; retry later\n";

/// Raises this process's soft file limit to its hard limit, and returns the
/// limit now in force.
pub fn raise_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the file limit");
            rlimit::Resource::NOFILE
                .get()
                .map_or(1024, |(soft, _)| soft)
        }
    }
}

/// How many client connections may be open at once: `configured`, or
/// what the file limit leaves after the reserve for `logs` logs. Refuses
/// a configuration that would let connections eat the reserve.
pub fn connection_cap(
    configured: Option<usize>,
    file_limit: u64,
    logs: usize,
) -> anyhow::Result<usize> {
    let reserve = RESERVE_PROCESS + RESERVE_PER_LOG * logs as u64;
    let room = file_limit.saturating_sub(reserve);
    match configured {
        Some(n) if n as u64 > room => anyhow::bail!(
            "max_connections = {n} leaves too few of the {file_limit} file descriptors for storage and databases ({reserve} reserved for {logs} log(s)); lower it or raise the file limit (LimitNOFILE)"
        ),
        Some(n) => Ok(n),
        None if room < MIN_CONNECTIONS => anyhow::bail!(
            "the file limit of {file_limit} leaves fewer than {MIN_CONNECTIONS} connections after the {reserve} descriptors reserved for {logs} log(s); raise it (LimitNOFILE)"
        ),
        None => Ok(room as usize),
    }
}

/// The connections every listener of the process shares.
#[derive(Clone)]
pub struct Connections {
    open: Arc<Semaphore>,
    shedding: Arc<Semaphore>,
}

/// Room for one more accepted connection.
enum Slot {
    /// Under the cap: serve it.
    Serve(OwnedSemaphorePermit),
    /// At the cap: answer it 503.
    Refuse(OwnedSemaphorePermit),
}

impl Connections {
    pub fn new(cap: usize) -> Connections {
        Connections {
            open: Arc::new(Semaphore::new(cap)),
            shedding: Arc::new(Semaphore::new(MAX_SHEDDING)),
        }
    }

    /// Waits for room to serve a connection, or failing that to refuse one.
    async fn slot(&self) -> Slot {
        if let Ok(permit) = self.open.clone().try_acquire_owned() {
            return Slot::Serve(permit);
        }
        tokio::select! {
            biased;
            Ok(permit) = self.open.clone().acquire_owned() => Slot::Serve(permit),
            Ok(permit) = self.shedding.clone().acquire_owned() => Slot::Refuse(permit),
        }
    }
}

/// The TLS side of a listener: a certificate chain and its key, from PEM
/// files.
pub fn tls_acceptor(config: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("tls: reading {}", path.display()))
    };
    let chain = CertificateDer::pem_slice_iter(&read(&config.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls: {} holds no PEM certificates", config.cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "tls: {} holds no certificate",
        config.cert.display()
    );
    let key = PrivateKeyDer::from_pem_slice(&read(&config.key)?)
        .with_context(|| format!("tls: {} holds no PEM private key", config.key.display()))?;
    // An explicit provider: never depend on which one other crates enabled.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls: no protocol version")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls: the certificate and key do not make a TLS server")?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The TLS side of a listener whose certificate comes from `certificates`
/// (an ACME client's, which also answers the CA's TLS-ALPN-01 validation).
pub fn resolver_acceptor(
    certificates: Arc<dyn rustls::server::ResolvesServerCert>,
) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls: no protocol version")?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    // HTTP/1.1 first: a client offering both gets it.
    server.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// Serves HTTP/1 (over TLS when `tls` is given) on `listener` until
/// `shutdown` resolves, then lets the requests in progress finish (bounded
/// by `SHUTDOWN_GRACE`).
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    connections: Connections,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Accept only with room to serve or to refuse: past both, a flood
        // waits in the kernel's backlog instead of being reset.
        let slot = tokio::select! {
            slot = connections.slot() => slot,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        match slot {
            Slot::Serve(permit) => {
                let watcher = graceful.watcher();
                tokio::spawn(serve_connection(
                    watcher,
                    stream,
                    tls.clone(),
                    app.clone(),
                    permit,
                ));
            }
            Slot::Refuse(permit) => shed(stream, permit),
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests were still open after {SHUTDOWN_GRACE:?}; closing them");
    }
}

/// Serves one connection, after its TLS handshake if any (bounded like
/// the request headers, so a silent client cannot hold it open).
async fn serve_connection(
    watcher: Watcher,
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    permit: OwnedSemaphorePermit,
) {
    metrics::gauge!("ct_http_connections").increment(1.0);
    match tls {
        None => serve_http1(watcher, stream, app).await,
        Some(tls) => match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
            // A CA's validation ends with the handshake (RFC 8737).
            Ok(Ok(mut stream)) if stream.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) => {
                let _ = tokio::time::timeout(SHED_TIMEOUT, stream.shutdown()).await;
            }
            Ok(Ok(stream)) => serve_http1(watcher, stream, app).await,
            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        },
    }
    metrics::gauge!("ct_http_connections").decrement(1.0);
    drop(permit);
}

async fn serve_http1<S>(watcher: Watcher, stream: S, app: Router)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Answers a connection past the cap with a 503 and closes it, without
/// parsing anything: refusing must cost next to nothing.
fn shed(mut stream: TcpStream, permit: OwnedSemaphorePermit) {
    metrics::counter!("ct_http_connections_shed_total").increment(1);
    tokio::spawn(async move {
        let answer = async {
            // Read what the request sent first, so that closing does not
            // reset the connection before the client reads the answer.
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            stream.write_all(SHED_RESPONSE).await?;
            stream.shutdown().await
        };
        let _ = tokio::time::timeout(SHED_TIMEOUT, answer).await;
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept_from_clients() {
        assert_eq!(connection_cap(None, 1024, 1).unwrap(), 1024 - 288);
        assert_eq!(connection_cap(None, 65_536, 4).unwrap(), 65_536 - 768);
        assert!(connection_cap(None, 256, 1).is_err());
        assert_eq!(connection_cap(Some(500), 1024, 1).unwrap(), 500);
        let err = connection_cap(Some(900), 1024, 1).unwrap_err().to_string();
        assert!(err.contains("max_connections = 900"), "{err}");
    }

    #[test]
    fn the_refusal_is_a_well_formed_response() {
        let text = std::str::from_utf8(SHED_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("Retry-After: 1"));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
    }
}
