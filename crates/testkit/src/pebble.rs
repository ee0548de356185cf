//! Let's Encrypt's ACME test server, Pebble (Debian's `pebble`), for one
//! test: on free loopback ports, with its own HTTPS certificate from a
//! fresh private CA, and a tiny DNS responder that resolves every name to
//! 127.0.0.1. Validation really happens (`PEBBLE_VA_NOSLEEP` only drops
//! Pebble's random pauses). Killed on drop.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long Pebble may take to answer its directory.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Pebble.
pub struct Pebble {
    child: Child,
    /// The ACME directory, `https://127.0.0.1:PORT/dir`.
    pub directory: String,
    /// The CA (PEM file) that Pebble's own HTTPS chains to: what an ACME
    /// client must trust to talk to it.
    pub ca_path: PathBuf,
    management: String,
    http: reqwest::Client,
    dns: Arc<AtomicBool>,
    log: PathBuf,
}

impl Pebble {
    /// Starts Pebble in `dir`, validating TLS-ALPN-01 challenges on
    /// 127.0.0.1:`tls_port` (where the client under test must listen) and
    /// issuing certificates valid for `validity_s` seconds. Every order
    /// is validated afresh (no reused authorizations). `None`, after
    /// SKIPPED, when Pebble is not installed (`$PEBBLE_BIN` or `pebble`).
    pub async fn start(dir: &Path, tls_port: u16, validity_s: u64) -> Option<Pebble> {
        let binary = crate::tool("PEBBLE_BIN", "pebble")?;
        let (ca, cert, key) = crate::pki::loopback_tls("Pebble");
        let ca_path = dir.join("pebble-ca.pem");
        std::fs::write(&ca_path, &ca).unwrap();
        std::fs::write(dir.join("pebble-cert.pem"), cert).unwrap();
        std::fs::write(dir.join("pebble-key.pem"), key).unwrap();
        let (acme, management, http01) = (
            crate::server::free_port(),
            crate::server::free_port(),
            crate::server::free_port(),
        );
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": "pebble-cert.pem",
            "privateKey": "pebble-key.pem",
            "httpPort": http01,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": validity_s,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let (dns_port, dns) = loopback_dns();
        let mut command = Command::new(binary);
        command
            .args(["-config", "pebble.json", "-strict=false", "-dnsserver"])
            .arg(format!("127.0.0.1:{dns_port}"))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_AUTHZREUSE", "0");
        let child = crate::spawn_logged(&mut command, dir, "pebble.log").unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
            .build()
            .unwrap();
        let pebble = Pebble {
            child,
            directory: format!("https://127.0.0.1:{acme}/dir"),
            ca_path,
            management: format!("https://127.0.0.1:{management}"),
            http,
            dns,
            log: dir.join("pebble.log"),
        };
        pebble.wait_ready().await;
        Some(pebble)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(&self.directory).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "Pebble did not answer {} within {STARTUP_TIMEOUT:?}\n{}",
            self.directory,
            crate::tail(&self.log)
        );
    }

    /// The root Pebble issues under (PEM): it makes a new one at each
    /// start, and tells it on its management interface.
    pub async fn root_pem(&self) -> String {
        let url = format!("{}/roots/0", self.management);
        let r = self.http.get(&url).send().await.expect("GET Pebble's root");
        assert!(r.status().is_success(), "GET {url}: {}", r.status());
        r.text().await.unwrap()
    }

    /// The last lines of Pebble's log.
    pub fn log_tail(&self) -> String {
        crate::tail(&self.log)
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dns.store(true, Ordering::Relaxed);
        if std::thread::panicking() {
            eprintln!("----- pebble.log -----\n{}", self.log_tail());
        }
    }
}

/// A DNS server on a free loopback UDP port that answers every A question
/// with 127.0.0.1 and every other question with no record; it stops when
/// the flag it returns is set.
fn loopback_dns() -> (u16, Arc<AtomicBool>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        let mut query = [0u8; 512];
        while !stopped.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut query) else {
                continue;
            };
            if let Some(answer) = dns_answer(&query[..n]) {
                let _ = socket.send_to(&answer, from);
            }
        }
    });
    (port, stop)
}

/// The answer to one DNS query (RFC 1035): its question echoed, and an A
/// record 127.0.0.1 if it asked for one.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    let mut end = 12;
    loop {
        let len = *query.get(end)? as usize;
        end += 1 + len;
        if len == 0 {
            break;
        }
    }
    let qtype = query.get(end..end + 2)?;
    let is_a = qtype == [0, 1];
    end += 4;
    let question = query.get(12..end)?;
    let mut answer = query[..2].to_vec();
    // A response, recursion as asked and available, no error.
    answer.extend([
        0x80 | (query[2] & 0x01),
        0x80,
        0,
        1,
        0,
        is_a as u8,
        0,
        0,
        0,
        0,
    ]);
    answer.extend(question);
    if is_a {
        // The name at offset 12, IN A, TTL 60, 127.0.0.1.
        answer.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(answer)
}
