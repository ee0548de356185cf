//! Test-only helpers shared by the workspace's tests, its benchmarks and
//! ct-loadgen. Never a dependency of production code.
//!
//! - Backends: a real S3-compatible server (SeaweedFS `weed mini`, [`Weed`])
//!   and a real PostgreSQL ([`Postgres`]) per test, on free loopback ports,
//!   killed on drop; and the contract every lock backend must keep
//!   ([`locks`]).
//! - A real ACME CA ([`pebble`]): Let's Encrypt's Pebble, validating
//!   through a DNS responder that maps every name to 127.0.0.1.
//! - A real browser ([`browser`]): headless Chromium renders a page and
//!   the test reads what a reader would see.
//! - AWS credentials: a fake instance metadata service ([`imds`]), a real
//!   STS ([`moto`]), and a gate in front of an S3 server that admits only
//!   the temporary credentials they issued, until they expire ([`gate`]).
//! - Certificates: hand-made DER ([`der`]) and rcgen PKIs ([`pki`]: the one
//!   CA template, and a root and intermediate issuing leaves).
//! - The `ct-log` binary from outside: config files and launching it
//!   ([`server`]), HTTP submission ([`client`]), hostile input
//!   ([`hostile`]), and verification of SCTs and of the whole published log
//!   ([`verify`]). They judge the log with the Azul crates as the oracle,
//!   never with the project's own code. The binary's path is a parameter,
//!   since only the `ct-log` package's own tests know it.
//! - The NotAfter window of a test log ([`window`]): this UTC year, so
//!   that a test log never turns read-only with the calendar.
//! - A cluster of `ct-log` processes on shared backends, under load, with
//!   the checks after a run ([`cluster`]); its final audit uses `ct_client`.

pub mod browser;
pub mod careless_s3;
pub mod client;
pub mod cluster;
pub mod cosign;
pub mod der;
pub mod gate;
pub mod hostile;
mod http1;
pub mod imds;
pub mod locks;
pub mod moto;
pub mod pebble;
pub mod pki;
mod postgres;
pub mod server;
pub mod verify;
pub mod window;

pub use postgres::Postgres;

use std::collections::HashSet;
use std::future::Future;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ct_storage::{S3Config, S3Credentials, S3Options, S3Store};

// ---------------------------------------------------------------------------
// Free loopback ports.

/// Ports handed out by this process, so two servers never get the same one.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// `count` free loopback ports whose +10000 (SeaweedFS gRPC) is free too.
pub(crate) fn free_port_pairs(count: usize) -> Vec<u16> {
    let mut taken = TAKEN.lock().unwrap();
    let taken = taken.get_or_insert_with(HashSet::new);
    let mut ports = Vec::new();
    for _ in 0..1000 {
        if ports.len() == count {
            break;
        }
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let Some(grpc) = port.checked_add(10_000) else {
            continue;
        };
        if taken.contains(&port) || taken.contains(&grpc) {
            continue;
        }
        if StdListener::bind(("127.0.0.1", grpc)).is_err() {
            continue;
        }
        taken.insert(port);
        taken.insert(grpc);
        ports.push(port);
    }
    assert_eq!(ports.len(), count, "could not find free port pairs");
    ports
}

/// A server binary is missing: fails the test under CI, where every test
/// must really run, else says SKIPPED so that a developer notices.
pub fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what}");
    }
    eprintln!("SKIPPED: {what}");
}

/// The path in `$<env>` if set and not empty, else `command` on the PATH.
pub(crate) fn find_command(env: &str, command: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(command))
        .find(|path| path.is_file())
}

/// Spawns `command` in `dir`, its stdout and stderr in `dir/<log>`.
pub(crate) fn spawn_logged(command: &mut Command, dir: &Path, log: &str) -> Result<Child, String> {
    let log = std::fs::File::create(dir.join(log)).map_err(|e| e.to_string())?;
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawning {:?}: {e}", command.get_program()))
}

/// Starts a test server with `try_start`, up to three times: a port taken
/// between choosing and binding makes the server exit.
pub(crate) async fn start_retrying<T, F, Fut>(what: &str, mut try_start: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let mut last_error = String::new();
    for _ in 0..3 {
        match try_start().await {
            Ok(server) => return server,
            Err(e) => last_error = e,
        }
    }
    panic!("{what} did not start: {last_error}");
}

/// A third-party command the tests run against (faketime, certspotter, …):
/// `$<env>` if set, else `command` if on the PATH. Missing, it fails the
/// test under CI and says SKIPPED elsewhere (`scripts/apt-tool.sh`
/// installs it).
pub fn tool(env: &str, command: &str) -> Option<String> {
    let found = find_command(env, command);
    if found.is_none() {
        missing(&format!(
            "{command} is not installed (scripts/apt-tool.sh installs it; or set {env})"
        ));
    }
    found.map(|path| path.to_string_lossy().into_owned())
}

/// libfaketime, to run one process with its clock off: `$FAKETIME_LIB`, or
/// where Debian's `libfaketime` puts it. Preload it through `env`, which
/// execs the program (the `faketime` wrapper forks, and killing it would
/// leave the process running). Missing, as [`tool`].
pub fn faketime_lib() -> Option<String> {
    let path = std::env::var("FAKETIME_LIB")
        .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1".into());
    if std::path::Path::new(&path).is_file() {
        return Some(path);
    }
    missing("libfaketime is not installed (scripts/apt-tool.sh faketime installs it; or set FAKETIME_LIB)");
    None
}

/// The last lines of a server's log file.
pub(crate) fn tail(path: &std::path::Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

// ---------------------------------------------------------------------------
// A real S3 server: SeaweedFS `weed mini`.

pub const ACCESS_KEY: &str = "ct-log-test-key";
pub const SECRET_KEY: &str = "ct-log-test-secret";
pub const BUCKET: &str = "ct-log-test";

/// A running `weed mini` with one bucket, killed (SIGKILL) on drop.
pub struct Weed {
    child: Child,
    ports: Vec<u16>,
    dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Weed {
    /// Starts a server that checks SigV4 signatures with [`ACCESS_KEY`] and
    /// [`SECRET_KEY`], or returns `None` (after printing SKIPPED) when
    /// `weed` is not installed. Under CI a missing `weed` fails the test.
    pub async fn start() -> Option<Weed> {
        Weed::start_with(true).await
    }

    /// [`Weed::start`], but the server accepts any keys, signed or not
    /// (to put a [`gate::CredentialGate`] in front of it).
    pub async fn start_open() -> Option<Weed> {
        Weed::start_with(false).await
    }

    async fn start_with(check_keys: bool) -> Option<Weed> {
        let Some(binary) = find_command("WEED_BIN", "weed") else {
            missing(
                "weed not found (WEED_BIN or PATH); run scripts/seaweedfs.sh to install SeaweedFS",
            );
            return None;
        };
        Some(start_retrying("weed mini", || Weed::try_start(&binary, check_keys)).await)
    }

    async fn try_start(binary: &PathBuf, check_keys: bool) -> Result<Weed, String> {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_port_pairs(5);
        let [master, volume, filer, s3, admin] = ports[..] else {
            unreachable!()
        };
        let mut command = Command::new(binary);
        // weed checks signatures exactly when these are in its environment.
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        if check_keys {
            command
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        }
        command
            .arg("mini")
            .arg(format!("-dir={}", dir.path().join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-admin.port={admin}"))
            .args([
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            .arg(format!("-bucket={BUCKET}"));
        let child = spawn_logged(&mut command, dir.path(), "weed.log")?;
        let mut weed = Weed {
            child,
            ports,
            dir,
            endpoint: format!("http://127.0.0.1:{s3}"),
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = weed.child.try_wait() {
                return Err(format!("exited with {status}: {}", weed.log_tail()));
            }
            let probe = S3Options {
                max_attempts: 1,
                attempt_timeout: Duration::from_secs(2),
                ..weed.options()
            };
            match S3Store::open_with(weed.config(""), probe).await {
                Ok(_) => return Ok(weed),
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("not ready after 30 s: {e}: {}", weed.log_tail()))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn log_tail(&self) -> String {
        tail(&self.dir.path().join("weed.log"))
    }

    /// A configuration for the test bucket with `prefix`.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            prefix: prefix.to_string(),
            ..S3Config::new(BUCKET, Some(self.endpoint.clone()))
        }
    }

    /// Options with the server's credentials and short test timeouts.
    pub fn options(&self) -> S3Options {
        S3Options {
            credentials: Some(S3Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "test",
            )),
            ..S3Options::default()
        }
    }

    /// Opens a store on the test bucket under `prefix`.
    pub async fn store(&self, prefix: &str) -> S3Store {
        S3Store::open_with(self.config(prefix), self.options())
            .await
            .unwrap()
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        // SIGTERM takes 5–12 s; nothing here needs a clean shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // weed leaves /tmp/seaweedfs-<component>[-grpc]-<port>.sock behind.
        let ours: HashSet<String> = self
            .ports
            .iter()
            .flat_map(|&p| [p, p + 10_000])
            .map(|p| p.to_string())
            .collect();
        if let Ok(entries) = std::fs::read_dir("/tmp") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let port = name
                    .strip_prefix("seaweedfs-")
                    .and_then(|n| n.strip_suffix(".sock"))
                    .and_then(|n| n.rsplit('-').next());
                if port.is_some_and(|p| ours.contains(p)) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}
