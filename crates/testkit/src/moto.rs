//! A real STS for web identity: moto's server (`moto_server`, from PyPI's
//! `moto[server]`), in memory on a free loopback port, killed on drop. It
//! answers `AssumeRoleWithWebIdentity` with fresh temporary credentials for
//! any role and any token (it checks neither).

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::{find_command, free_port_pairs, missing, spawn_logged, start_retrying, tail};

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl Moto {
    /// Starts a server, or returns `None` (after printing SKIPPED) when
    /// moto is not installed. Under CI a missing moto fails the test.
    pub async fn start() -> Option<Moto> {
        let Some(binary) = find_command("MOTO_BIN", "moto_server") else {
            missing("moto_server not found (MOTO_BIN or PATH); run scripts/moto.sh to install it");
            return None;
        };
        Some(start_retrying("moto_server", || Moto::try_start(&binary)).await)
    }

    async fn try_start(binary: &PathBuf) -> Result<Moto, String> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port_pairs(1)[0];
        let mut command = Command::new(binary);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let child = spawn_logged(&mut command, dir.path(), "moto.log")?;
        let mut moto = Moto {
            child,
            dir,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!("exited with {status}: {}", moto.log_tail()));
            }
            let probe = client.get(format!("{}/moto-api/", moto.endpoint)).send();
            match probe.await {
                Ok(answer) if answer.status().is_success() => return Ok(moto),
                _ if started.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("not ready after 30 s: {}", moto.log_tail()))
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn log_tail(&self) -> String {
        tail(&self.dir.path().join("moto.log"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
