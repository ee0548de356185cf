//! Launching the `ct-log` binary: config and key files, port discovery from
//! its one stdout line, and a guard that SIGKILLs it on every exit path.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

/// How long the server may take to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How the log's private key is written to disk.
#[derive(Clone, Copy, Debug)]
pub enum KeyFormat {
    /// `-----BEGIN PRIVATE KEY-----`
    Pkcs8,
    /// `-----BEGIN EC PRIVATE KEY-----`
    Sec1,
}

/// One `[[log]]` of a test config, with its key material.
pub struct LogSpec {
    /// `name` in the config; also used for the key file and data dir names.
    pub name: String,
    /// e.g. `http://ct.test/e2e`
    pub submission_prefix: String,
    /// e.g. `http://ct.test/e2e` (may differ from the submission prefix)
    pub monitoring_prefix: String,
    /// Roots bundle; written into the config as given (absolute path, or
    /// relative to the config folder).
    pub roots: PathBuf,
    /// RFC 3339, inclusive.
    pub not_after_start: String,
    /// RFC 3339, exclusive.
    pub not_after_limit: String,
    /// Sequencing period.
    pub period_ms: u64,
    /// Format of the key file.
    pub key_format: KeyFormat,
    /// The log's P-256 signing key.
    pub key: SigningKey,
    /// The `storage` inline table; `None` for `{ type = "fs", path = "<name>-data" }`.
    pub storage: Option<String>,
    /// Days after `not_after_limit` until the log turns read-only. The
    /// default is the server's (7): a log on [`crate::window`] stays
    /// writable whatever the date, and a window of fixed dates in a test
    /// shows as a failure once the calendar passes it, not years later. A
    /// log whose window must be fixed (real certificates' NotAfter) sets a
    /// longer grace itself.
    pub sunset_grace_days: u64,
    /// More `key = value` lines for this `[[log]]` table.
    pub extra: Vec<String>,
}

impl LogSpec {
    /// A log with a fresh key (derived from `name` and the current time),
    /// PKCS#8 key file, period 150 ms.
    pub fn new(
        name: &str,
        submission_prefix: &str,
        monitoring_prefix: &str,
        roots: impl Into<PathBuf>,
        not_after_start: &str,
        not_after_limit: &str,
    ) -> LogSpec {
        LogSpec {
            name: name.to_string(),
            submission_prefix: submission_prefix.to_string(),
            monitoring_prefix: monitoring_prefix.to_string(),
            roots: roots.into(),
            not_after_start: not_after_start.to_string(),
            not_after_limit: not_after_limit.to_string(),
            period_ms: 150,
            key_format: KeyFormat::Pkcs8,
            key: fresh_key(name),
            storage: None,
            sunset_grace_days: 7,
            extra: Vec::new(),
        }
    }

    /// What the tests need to talk to and verify this log.
    pub fn handle(&self, config_dir: &Path) -> LogHandle {
        let vk = *self.key.verifying_key();
        let spki = vk.to_public_key_der().expect("SPKI DER");
        let roots_path = if self.roots.is_absolute() {
            self.roots.clone()
        } else {
            config_dir.join(&self.roots)
        };
        LogHandle {
            origin: origin_of(&self.submission_prefix),
            submission_path: url_path_of(&self.submission_prefix),
            monitoring_path: url_path_of(&self.monitoring_prefix),
            verifying_key: vk,
            log_id: Sha256::digest(spki.as_bytes()).into(),
            roots_pem: fs::read(&roots_path)
                .unwrap_or_else(|e| panic!("reading roots {}: {e}", roots_path.display())),
            not_after_start_ms: crate::pki::unix_ms(&self.not_after_start),
            not_after_limit_ms: crate::pki::unix_ms(&self.not_after_limit),
        }
    }
}

/// Everything a test needs to know about a running log (no secrets).
#[derive(Clone)]
pub struct LogHandle {
    /// Checkpoint origin / note key name, e.g. `ct.test/e2e`.
    pub origin: String,
    /// URL path of the submission prefix on the listener, e.g. `/e2e`.
    pub submission_path: String,
    /// URL path of the monitoring prefix on the listener, e.g. `/e2e`.
    pub monitoring_path: String,
    pub verifying_key: VerifyingKey,
    /// SHA-256 of the DER SPKI.
    pub log_id: [u8; 32],
    /// The roots file content (PEM bundle).
    pub roots_pem: Vec<u8>,
    pub not_after_start_ms: u64,
    pub not_after_limit_ms: u64,
}

/// A P-256 key derived from `seed` and the current time (no RNG needed).
pub fn fresh_key(seed: &str) -> SigningKey {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut ctr = 0u32;
    loop {
        let h = Sha256::new()
            .chain_update(seed)
            .chain_update(nanos.to_be_bytes())
            .chain_update(ctr.to_be_bytes())
            .finalize();
        if let Ok(k) = SigningKey::from_bytes(&h) {
            return k;
        }
        ctr += 1;
    }
}

/// `http://ct.test/e2e/` → `ct.test/e2e`.
pub fn origin_of(prefix: &str) -> String {
    let s = prefix.split_once("://").map_or(prefix, |(_, rest)| rest);
    s.trim_end_matches('/').to_string()
}

/// `http://ct.test/e2e/` → `/e2e` (empty for a prefix without a path).
pub fn url_path_of(prefix: &str) -> String {
    let origin = origin_of(prefix);
    match origin.find('/') {
        Some(i) => origin[i..].to_string(),
        None => String::new(),
    }
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap() // a JSON string is a valid TOML basic string here
}

/// The `storage` table of a log keeping its objects under `prefix` in the
/// test S3 server's bucket.
pub fn s3_storage(weed: &crate::Weed, prefix: &str) -> String {
    format!(
        "{{ type = \"s3\", bucket = {}, endpoint = {}, prefix = {} }}",
        toml_str(crate::BUCKET),
        toml_str(&weed.endpoint),
        toml_str(prefix)
    )
}

/// Top-level settings of a test config beyond `listen` (see
/// [`write_config_with`]); the default is the single-machine setup of
/// [`write_config`].
#[derive(Clone, Debug, Default)]
pub struct TopLevel {
    /// A `lock = {…}` inline table (e.g. [`postgres_lock`]) instead of
    /// `lock_db = "lock.db"`.
    pub lock: Option<String>,
    /// `lease_ttl_ms = …`: how long a shared lock's lease outlives its
    /// holder's last renewal (default 10 s).
    pub lease_ttl_ms: Option<u64>,
    /// A `dedup = {…}` inline table (e.g. [`postgres_dedup`]); `None` for
    /// each log's own SQLite file.
    pub dedup: Option<String>,
    /// `key = value` lines of a `[cluster]` table (e.g. [`cluster_table`]);
    /// empty for no such table.
    pub cluster: Vec<String>,
    /// More top-level `key = value` lines.
    pub extra: Vec<String>,
}

/// `lock = …` on a PostgreSQL server.
pub fn postgres_lock(url: &str) -> String {
    format!("{{ type = \"postgres\", url = {} }}", toml_str(url))
}

/// `dedup = …` shared by every log, on a PostgreSQL server.
pub fn postgres_dedup(url: &str) -> String {
    format!("{{ type = \"postgres\", url = {} }}", toml_str(url))
}

/// The lines of a `[cluster]` table: the internal API's shared `secret` and
/// the candidate sequencers' base URLs, in the order frontends try them.
pub fn cluster_table(secret: &str, sequencers: &[String]) -> Vec<String> {
    let urls: Vec<String> = sequencers.iter().map(|u| toml_str(u)).collect();
    vec![
        format!("secret = {}", toml_str(secret)),
        format!("sequencers = [{}]", urls.join(", ")),
    ]
}

/// A loopback port that was free a moment ago (bound to 127.0.0.1:0, then
/// released), for a process that must listen on a port known in advance.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Writes `config.toml` and one key file per log into `dir` and returns the
/// config path. The lock DB is `lock.db` and each log stores its data under
/// `<name>-data`, both relative to the config folder.
pub fn write_config(dir: &Path, logs: &[&LogSpec]) -> PathBuf {
    write_config_with(dir, &TopLevel::default(), logs)
}

/// [`write_config`] with the top-level settings of `top`: a shared lock and
/// dedup backend and a `[cluster]` table (written after the top-level keys,
/// before the first `[[log]]`).
pub fn write_config_with(dir: &Path, top: &TopLevel, logs: &[&LogSpec]) -> PathBuf {
    let mut cfg = String::from("listen = \"127.0.0.1:0\"\n");
    match &top.lock {
        Some(table) => writeln!(cfg, "lock = {table}").unwrap(),
        None => cfg.push_str("lock_db = \"lock.db\"\n"),
    }
    if let Some(ms) = top.lease_ttl_ms {
        writeln!(cfg, "lease_ttl_ms = {ms}").unwrap();
    }
    if let Some(table) = &top.dedup {
        writeln!(cfg, "dedup = {table}").unwrap();
    }
    for line in &top.extra {
        writeln!(cfg, "{line}").unwrap();
    }
    if !top.cluster.is_empty() {
        cfg.push_str("\n[cluster]\n");
        for line in &top.cluster {
            writeln!(cfg, "{line}").unwrap();
        }
    }
    for log in logs {
        write_log_table(&mut cfg, dir, log);
    }
    let path = dir.join("config.toml");
    fs::write(&path, cfg).unwrap();
    path
}

/// Appends the `[[log]]` table of `log` to `cfg`, and writes its key file
/// into `dir`.
fn write_log_table(cfg: &mut String, dir: &Path, log: &LogSpec) {
    let key_file = format!("{}.pem", log.name);
    let pem = match log.key_format {
        KeyFormat::Pkcs8 => log
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 PEM")
            .to_string(),
        KeyFormat::Sec1 => {
            let sk: p256::SecretKey = log.key.clone().into();
            sk.to_sec1_pem(LineEnding::LF)
                .expect("SEC1 PEM")
                .to_string()
        }
    };
    fs::write(dir.join(&key_file), pem).unwrap();
    writeln!(cfg, "\n[[log]]").unwrap();
    writeln!(cfg, "name = {}", toml_str(&log.name)).unwrap();
    writeln!(
        cfg,
        "submission_prefix = {}",
        toml_str(&log.submission_prefix)
    )
    .unwrap();
    writeln!(
        cfg,
        "monitoring_prefix = {}",
        toml_str(&log.monitoring_prefix)
    )
    .unwrap();
    writeln!(cfg, "key = {}", toml_str(&key_file)).unwrap();
    writeln!(
        cfg,
        "roots = {}",
        toml_str(log.roots.to_str().expect("utf-8 roots path"))
    )
    .unwrap();
    writeln!(cfg, "not_after_start = {}", toml_str(&log.not_after_start)).unwrap();
    writeln!(cfg, "not_after_limit = {}", toml_str(&log.not_after_limit)).unwrap();
    writeln!(cfg, "period_ms = {}", log.period_ms).unwrap();
    writeln!(cfg, "batchers = 1").unwrap();
    let fs_storage = format!(
        "{{ type = \"fs\", path = {} }}",
        toml_str(&format!("{}-data", log.name))
    );
    writeln!(
        cfg,
        "storage = {}",
        log.storage.as_deref().unwrap_or(&fs_storage)
    )
    .unwrap();
    writeln!(cfg, "sunset_grace_days = {}", log.sunset_grace_days).unwrap();
    for line in &log.extra {
        writeln!(cfg, "{line}").unwrap();
    }
}

/// A running `ct-log serve` process. Dropping it SIGKILLs the process (and,
/// when the test is failing, prints the tail of the server's stderr).
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts `<bin> serve --config <config>` and waits (at most 60 s) for
    /// its `listening on http://127.0.0.1:PORT` line. Panics with the
    /// server's stderr if it exits or prints something else first.
    /// `bin` is the `ct-log` binary (`env!("CARGO_BIN_EXE_ct-log")`, which
    /// only the `ct-log` package's tests know); `tag` names the stderr file
    /// (`<config dir>/<tag>.stderr`).
    pub fn start(bin: impl AsRef<Path>, config: &Path, tag: &str) -> Server {
        Server::start_with(bin, config, tag, &[])
    }

    /// [`Server::start`] with global flags before `serve` (e.g.
    /// `--log-format json`).
    pub fn start_with(bin: impl AsRef<Path>, config: &Path, tag: &str, flags: &[&str]) -> Server {
        let bin = bin.as_ref().to_str().expect("utf-8 path");
        Server::spawn(&[bin], config, tag, flags, &[])
    }

    /// `<bin> serve --config <config> --role <role> --listen <listen>`
    /// (role `all`, `frontend` or `sequencer`; `listen` e.g.
    /// `127.0.0.1:0`), waiting for its `listening on` line as
    /// [`Server::start`] does.
    pub fn start_role(
        bin: impl AsRef<Path>,
        config: &Path,
        tag: &str,
        role: &str,
        listen: &str,
    ) -> Server {
        Server::start_role_with(bin, config, tag, role, listen, &[])
    }

    /// [`Server::start_role`] with more `serve` arguments after `--listen`.
    pub fn start_role_with(
        bin: impl AsRef<Path>,
        config: &Path,
        tag: &str,
        role: &str,
        listen: &str,
        more: &[&str],
    ) -> Server {
        Server::start_role_under(&[], bin, config, tag, role, listen, more)
    }

    /// [`Server::start_role_with`], run by the command `wrapper` (e.g.
    /// `["faketime", "-f", "+30s"]`: a process whose clock is off).
    pub fn start_role_under(
        wrapper: &[&str],
        bin: impl AsRef<Path>,
        config: &Path,
        tag: &str,
        role: &str,
        listen: &str,
        more: &[&str],
    ) -> Server {
        let args = [&["--role", role, "--listen", listen], more].concat();
        let command = [wrapper, &[bin.as_ref().to_str().expect("utf-8 path")]].concat();
        Server::spawn(&command, config, tag, &[], &args)
    }

    /// Runs `<command> <flags> serve --config <config> --create-missing
    /// <serve_args>`: test logs start empty, and creating one is explicit.
    /// (Tests of that refusal run the binary themselves.)
    fn spawn(
        command: &[&str],
        config: &Path,
        tag: &str,
        flags: &[&str],
        serve_args: &[&str],
    ) -> Server {
        let dir = config.parent().expect("config dir");
        let stderr_path = dir.join(format!("{tag}.stderr"));
        let stderr = fs::File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(command[0]);
        cmd.args(&command[1..])
            .args(flags)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--create-missing")
            .args(serve_args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        // The credentials of the test S3 server, used only by S3 logs.
        cmd.env("AWS_ACCESS_KEY_ID", crate::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", crate::SECRET_KEY);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Keep draining stdout for the life of the process.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Receiver gone: keep draining silently.
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            base_url: String::new(),
            stderr_path,
        };
        server.base_url = server.wait_listening(&rx);
        server
    }

    /// Waits (at most [`STARTUP_TIMEOUT`]) for the `listening on
    /// http://127.0.0.1:PORT` line among `lines`; the base URL it names.
    fn wait_listening(&mut self, lines: &mpsc::Receiver<String>) -> String {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let rest = line.strip_prefix("listening on http://127.0.0.1:").unwrap_or_else(|| {
                        panic!("first stdout line of ct-log is {line:?}, expected `listening on http://127.0.0.1:PORT`\n{}", self.stderr_tail(80))
                    });
                    let port: u16 = rest
                        .parse()
                        .unwrap_or_else(|_| panic!("bad port in {line:?}"));
                    assert_ne!(port, 0, "server announced port 0");
                    return format!("http://127.0.0.1:{port}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(200));
                    let status = self.child.as_mut().unwrap().try_wait().ok().flatten();
                    panic!(
                        "ct-log closed stdout before `listening on` (exit status {status:?})\n{}",
                        self.stderr_tail(80)
                    );
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                panic!(
                    "ct-log exited with {status} before `listening on`\n{}",
                    self.stderr_tail(80)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "ct-log printed no `listening on` line within {STARTUP_TIMEOUT:?}\n{}",
                    self.stderr_tail(80)
                );
            }
        }
    }

    /// The server's process ID (for signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Waits (at most `limit`) for the server to exit by itself, e.g. after
    /// SIGTERM; returns whether it exited successfully.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let child = self.child.as_mut().expect("server running");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "server did not exit within {limit:?}\n{}",
            self.stderr_tail(40)
        );
    }

    /// Sends `signal` (a `kill` name such as `STOP`, `CONT`, `HUP`) to the
    /// server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}: {status}", self.pid());
    }

    /// SIGKILLs the server and waits for it (no graceful shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `n` lines of the server's stderr.
    pub fn stderr_tail(&self, n: usize) -> String {
        stderr_tail_of(&self.stderr_path, n)
    }

    /// Path of the file that receives the server's stderr.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }
}

/// The last `n` lines of a server stderr file (also usable after the
/// [`Server`] is gone, e.g. for a run that was killed earlier).
pub fn stderr_tail_of(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    format!(
        "----- ct-log stderr ({}), last {} lines -----\n{}\n-----",
        path.display(),
        lines.len() - start,
        lines[start..].join("\n")
    )
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!("{}", self.stderr_tail(60));
        }
        self.kill();
    }
}
