//! A throwaway PostgreSQL server per test: `initdb` into a temporary
//! directory, `postgres` on a free loopback port (TCP only, trust
//! authentication, fsync off), shut down on drop.
//!
//! The binaries come from `$PG_BIN`, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package;
//! `scripts/postgres.sh` installs it). PostgreSQL refuses to run as root, so
//! under root the server runs as the `postgres` user that package creates.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ct_storage::{LeaseOptions, PostgresLock};

use crate::tail;

/// The superuser the server is created with.
pub const PG_USER: &str = "postgres";

/// A running PostgreSQL server, shut down on drop.
pub struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// The directory holding `initdb` and `postgres`.
fn pg_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("PG_BIN").filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(bin));
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    versions
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// The `(uid, gid)` to run the server as: `None` unless this process is root.
fn server_user() -> Result<Option<(u32, u32)>, String> {
    let me = std::fs::metadata("/proc/self").map_err(|e| format!("/proc/self: {e}"))?;
    if me.uid() != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    let ids = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&"postgres") || fields.len() < 4 {
            return None;
        }
        Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
    });
    ids.map(Some)
        .ok_or_else(|| "running as root, but there is no postgres user to run the server as".into())
}

/// A command for `program` run as `user` (when set), logging into `log`.
fn command(program: PathBuf, user: Option<(u32, u32)>, log: &Path) -> Result<Command, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(program);
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    Ok(command)
}

impl Postgres {
    /// Starts a server, or returns `None` (after printing SKIPPED) when
    /// PostgreSQL is not installed. Under CI a missing PostgreSQL fails the
    /// test.
    pub async fn start() -> Option<Postgres> {
        let Some(bin) = pg_bin() else {
            crate::missing(
                "PostgreSQL not found (PG_BIN or /usr/lib/postgresql/*/bin); run scripts/postgres.sh to install it",
            );
            return None;
        };
        Some(crate::start_retrying("PostgreSQL", || Postgres::try_start(&bin)).await)
    }

    async fn try_start(bin: &Path) -> Result<Postgres, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let user = server_user()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        // Blocking for the second or two initdb takes is fine in a test.
        let initdb = command(bin.join("initdb"), user, &log)?
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                PG_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .current_dir(dir.path())
            .status()
            .map_err(|e| format!("running {}/initdb: {e}", bin.display()))?;
        if !initdb.success() {
            return Err(format!("initdb failed ({initdb}): {}", tail(&log)));
        }
        let port = crate::free_port_pairs(1)[0];
        let child = command(bin.join("postgres"), user, &log)?
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .args(["-F", "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .current_dir(dir.path())
            .spawn()
            .map_err(|e| format!("spawning {}/postgres: {e}", bin.display()))?;
        let mut postgres = Postgres { child, dir, port };
        postgres.wait_until_ready().await?;
        Ok(postgres)
    }

    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.log_tail()));
            }
            match PostgresLock::connect(&self.url()).await {
                Ok(_) => return Ok(()),
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("not ready after 30 s: {e}: {}", self.log_tail()))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn log_tail(&self) -> String {
        tail(&self.dir.path().join("postgres.log"))
    }

    /// The connection string of the `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={PG_USER} dbname=postgres",
            self.port
        )
    }

    /// A lock on the server whose claims are leases of `lease`.
    pub async fn lock(&self, lease: LeaseOptions) -> PostgresLock {
        PostgresLock::connect_with_lease(&self.url(), lease)
            .await
            .unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT is an immediate shutdown that takes the backends and the
        // shared memory with it; SIGKILL would leave both behind.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-QUIT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
