//! What the ACME client keeps in `cache_dir` and how: the folder (0700),
//! files replaced whole and readable by this user only, and the checks
//! `check-config` runs on the folder and the `ca` file without creating
//! anything.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::AcmeConfig;

/// The CA certificates of a PEM file, at least one.
pub(super) fn read_ca(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem =
        std::fs::read(path).with_context(|| format!("acme: reading ca {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("acme: ca {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "acme: ca {} holds no certificate",
        path.display()
    );
    Ok(certs)
}

/// Creates `dir` (0700) if missing; refuses one that is not a writable
/// folder.
pub(super) fn make_cache_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("acme: creating cache_dir {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(cache_dir = %dir.display(), "acme: cache_dir is open to other users; it holds private keys (chmod 700)");
    }
    anyhow::ensure!(
        writable(dir),
        "acme: cache_dir {} is not writable",
        dir.display()
    );
    Ok(())
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access only reads it.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// What `check-config` finds wrong with the table's files, without
/// creating anything: the `ca` file, and whether `cache_dir` (or the
/// folder it would be made in) is writable.
pub fn file_problems(config: &AcmeConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(path) = &config.ca {
        if let Err(e) = read_ca(path) {
            problems.push(format!("{e:#}"));
        }
    }
    let dir = &config.cache_dir;
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if existing == dir && !dir.is_dir() {
        problems.push(format!("acme: cache_dir {} is not a folder", dir.display()));
    } else if !writable(existing) {
        problems.push(format!(
            "acme: cache_dir {} cannot be written ({} is not writable)",
            dir.display(),
            existing.display()
        ));
    }
    problems
}

pub(super) async fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Replaces `path` whole with `bytes`, readable by this user only.
pub(super) async fn write_private(path: PathBuf, bytes: Vec<u8>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let temp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await?
    .context("writing to cache_dir")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_config_finds_an_unusable_cache_dir_and_ca() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let config = |cache_dir: &str, ca: Option<&str>| AcmeConfig {
            directory: "https://acme.example.org/dir".into(),
            email: None,
            domains: vec!["ct.example.org".into()],
            cache_dir: dir.path().join(cache_dir),
            ca: ca.map(|ca| dir.path().join(ca)),
            renew_before_s: None,
        };
        assert!(file_problems(&config("new/acme", None)).is_empty());
        let problems = file_problems(&config("file", Some("missing.pem")));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("missing.pem"), "{problems:?}");
        assert!(problems[1].contains("not a folder"), "{problems:?}");
    }
}
