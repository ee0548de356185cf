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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{check_key, ObjectStore, StorageError};

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
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete", &key)(e)),
        })
        .await
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
