//! The local-directory object store: one file per key under a root folder.
//!
//! Writes are crash-safe: write a temporary file in the target folder, fsync
//! it, rename it over the key, then fsync the folder so the rename itself is
//! durable. Newly created folders are fsynced into their parents too.
//!
//! Reads of files the page cache holds are done on the calling thread, with
//! `preadv2(RWF_NOWAIT)`, which refuses rather than waits for the disk; only
//! those that would wait go to the blocking pool. Handing every read to the
//! blocking pool cost two thread switches per tile served, most of the CPU
//! of a monitor's sweep over the tiles (BENCHMARKS.md, read path).
//!
//! Conditional writes compare and rename under an exclusive OS lock on a
//! file in the root (`.conditional.lock`), so they exclude each other across
//! processes; an object's version is the SHA-256 of its bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{check_key, content_version, ObjectStore, PutIf, StorageError, WriteCondition};

/// Object store rooted at a local directory.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    temp_counter: AtomicU64,
}

impl FsStore {
    /// Opens (creating if needed) the directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStore, StorageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| StorageError::Io {
            op: "create directory",
            key: root.display().to_string(),
            source,
        })?;
        Ok(FsStore {
            root,
            temp_counter: AtomicU64::new(0),
        })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn temp_name(&self) -> String {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        format!(".tmp-{}-{n}", std::process::id())
    }
}

fn io_err<'a>(op: &'static str, key: &'a str) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        key: key.to_string(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
}

/// Creates `dir` and any missing parents, fsyncing each new folder's parent
/// so the folder survives a crash.
fn create_dirs_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().expect("object paths always have a parent");
    create_dirs_durably(parent)?;
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn write_atomically(path: &Path, temp_name: &str, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("object paths always have a parent");
    create_dirs_durably(dir)?;
    let temp = dir.join(temp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The whole file at `path` if reading it needs no disk I/O; `None` when
/// some of it would have to be waited for (or the kernel cannot say).
/// Every object is written to a temporary file and renamed into place, so
/// an open file never changes: the length read first is the length to read.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_if_cached(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len() as usize;
    let mut data = Vec::<u8>::with_capacity(len);
    while data.len() < len {
        let iov = libc::iovec {
            iov_base: data.spare_capacity_mut().as_mut_ptr().cast(),
            iov_len: len - data.len(),
        };
        // SAFETY: the iovec points into `data`'s spare capacity, whose
        // length it gives; `file` is open for the whole call.
        let n = unsafe {
            libc::preadv2(
                file.as_raw_fd(),
                &iov,
                1,
                data.len() as libc::off_t,
                libc::RWF_NOWAIT,
            )
        };
        match n {
            // EAGAIN: not cached; EOPNOTSUPP, EINVAL: no RWF_NOWAIT here.
            -1 => return Ok(None),
            0 => break,
            // SAFETY: the kernel wrote `n` more bytes into the spare capacity.
            n => unsafe { data.set_len(data.len() + n as usize) },
        }
    }
    Ok(Some(data))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn read_if_cached(_path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    Ok(None)
}

/// Writes `data` to `path` if the file there still fits `condition`
/// (`expected` is its version, `None` for absent), holding the root's
/// conditional-write lock throughout.
fn write_if(
    lock: &Path,
    path: &Path,
    temp_name: &str,
    data: &[u8],
    expected: Option<&str>,
) -> std::io::Result<PutIf> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)?;
    lock.lock()?; // released when `lock` is dropped
    let current = match std::fs::read(path) {
        Ok(bytes) => Some(content_version(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if current.as_deref() != expected {
        return Ok(PutIf::ConditionFailed { after_retry: false });
    }
    write_atomically(path, temp_name, data)?;
    Ok(PutIf::Written(content_version(data)))
}

/// Up to `limit` keys under `root` that start with `prefix`, in order,
/// leaving out the store's own dot-files.
fn list_keys(root: &Path, prefix: &str, limit: usize) -> std::io::Result<Vec<String>> {
    let folder = prefix.rfind('/').map_or("", |slash| &prefix[..slash]);
    let mut keys = Vec::new();
    let mut pending = vec![folder.to_string()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(root.join(&dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if name.starts_with('.') || !(key.starts_with(prefix) || prefix.starts_with(&key)) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                pending.push(key);
            } else if key.starts_with(prefix) {
                keys.push(key);
            }
        }
    }
    keys.sort();
    keys.truncate(limit);
    Ok(keys)
}

#[async_trait]
impl ObjectStore for FsStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        let temp_name = self.temp_name();
        let key = key.to_string();
        blocking(move || write_atomically(&path, &temp_name, &data).map_err(io_err("write", &key)))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let path = self.path_of(key)?;
        match read_if_cached(&path) {
            Ok(Some(data)) => return Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            // Not all in memory, or an error the blocking read will report.
            Ok(None) | Err(_) => {}
        }
        let key = key.to_string();
        blocking(move || match std::fs::read(&path) {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &key)(e)),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete", &key)(e)),
            }
            // The folder of a full tile's partial tiles goes with its last
            // one (nothing writes there again once the tile is full).
            let parent = path.parent().expect("object paths always have a parent");
            if parent.extension().is_some_and(|ext| ext == "p") {
                let _ = std::fs::remove_dir(parent);
            }
            Ok(())
        })
        .await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, String)>, StorageError> {
        let found = self.get(key).await?;
        Ok(found.map(|data| {
            let version = content_version(&data);
            (data, version)
        }))
    }

    async fn put_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition<'_>,
    ) -> Result<PutIf, StorageError> {
        let path = self.path_of(key)?;
        let lock = self.root.join(".conditional.lock");
        let temp_name = self.temp_name();
        let expected = match condition {
            WriteCondition::Absent => None,
            WriteCondition::Matches(version) => Some(version.to_string()),
        };
        let key = key.to_string();
        blocking(move || {
            write_if(&lock, &path, &temp_name, &data, expected.as_deref())
                .map_err(io_err("conditional write", &key))
        })
        .await
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let (root, prefix) = (self.root.clone(), prefix.to_string());
        blocking(move || list_keys(&root, &prefix, limit).map_err(io_err("list", &prefix))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete_round_trip_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().join("log")).unwrap();
        assert_eq!(store.get("tile/0/x001/000").await.unwrap(), None);
        store
            .put("tile/0/x001/000", Bytes::from_static(b"abc"))
            .await
            .unwrap();
        store
            .put("checkpoint", Bytes::from_static(b"one"))
            .await
            .unwrap();
        store
            .put("checkpoint", Bytes::from_static(b"two"))
            .await
            .unwrap();
        assert_eq!(store.get("tile/0/x001/000").await.unwrap().unwrap(), "abc");
        assert_eq!(store.get("checkpoint").await.unwrap().unwrap(), "two");
        assert_eq!(
            std::fs::read(dir.path().join("log/tile/0/x001/000")).unwrap(),
            b"abc"
        );
        store.delete("checkpoint").await.unwrap();
        store.delete("checkpoint").await.unwrap();
        assert_eq!(store.get("checkpoint").await.unwrap(), None);
        // No temporary files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("log/tile/0/x001"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("000")]);
    }

    /// A file just written is in the page cache: read whole on the calling
    /// thread where the kernel supports RWF_NOWAIT (and never partly).
    #[test]
    fn reads_cached_files_whole_without_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 4096, 300_001] {
            let path = dir.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &data).unwrap();
            if let Some(read) = read_if_cached(&path).unwrap() {
                assert_eq!(read, data, "{len} bytes");
            }
        }
        let missing = read_if_cached(&dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }

    /// Two stores on one folder (two processes, say) racing conditional
    /// writes of one key: exactly one wins each round.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conditional_writes_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            FsStore::open(dir.path()).unwrap(),
            FsStore::open(dir.path()).unwrap(),
        );
        let first = a.put_if(
            "checkpoint",
            Bytes::from_static(b"0"),
            WriteCondition::Absent,
        );
        assert!(matches!(first.await.unwrap(), PutIf::Written(_)));
        let again = b.put_if(
            "checkpoint",
            Bytes::from_static(b"x"),
            WriteCondition::Absent,
        );
        assert_eq!(
            again.await.unwrap(),
            PutIf::ConditionFailed { after_retry: false }
        );
        for round in 0..50 {
            let (_, version) = a.get_versioned("checkpoint").await.unwrap().unwrap();
            let (new_a, new_b) = (format!("a{round}"), format!("b{round}"));
            let (won_a, won_b) = tokio::join!(
                a.put_if(
                    "checkpoint",
                    Bytes::from(new_a.clone()),
                    WriteCondition::Matches(&version)
                ),
                b.put_if(
                    "checkpoint",
                    Bytes::from(new_b.clone()),
                    WriteCondition::Matches(&version)
                ),
            );
            let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
            let winner = match (&won_a, &won_b) {
                (PutIf::Written(_), PutIf::ConditionFailed { .. }) => new_a,
                (PutIf::ConditionFailed { .. }, PutIf::Written(_)) => new_b,
                other => panic!("round {round}: exactly one must win: {other:?}"),
            };
            assert_eq!(
                a.get("checkpoint").await.unwrap().unwrap(),
                winner.as_bytes()
            );
        }
        assert!(!a.any_under("tile/").await.unwrap());
        a.put("tile/0/000", Bytes::from_static(b"t")).await.unwrap();
        assert!(b.any_under("tile/").await.unwrap());
        assert!(!b.any_under("issuer/").await.unwrap());
    }

    #[tokio::test]
    async fn rejects_escaping_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        assert!(matches!(
            store.get("../x").await,
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            store.put("/x", Bytes::new()).await,
            Err(StorageError::InvalidKey(_))
        ));
    }
}
