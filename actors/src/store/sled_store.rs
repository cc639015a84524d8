//! The production store: sled 0.34 in a directory that only the owner can read (secrets
//! live in it). Batches map to sled batches (atomic).
//!
//! Flush reaches stable storage, not only the page cache: sled's own `Db::flush` writes its
//! log with `sync_file_range`, which neither persists file metadata (the log's new length)
//! nor flushes the drive's write cache, and it writes large values ("blobs", one file each
//! under `blobs/`) with no sync at all. So [`SledStore::flush`] follows `Db::flush` with
//! `fsync` of every blob file written since the last flush and of the `blobs/` directory,
//! `fdatasync` of the log file `db`, and `fsync` of the store directory (sled renames
//! snapshot files into it). Linux turns these into a cache flush on drives that have a
//! volatile cache. What it cannot give: sled writes a blob before its log record but does not
//! sync it first, so a power loss *during* a flush may leave a record whose blob is gone;
//! nothing acknowledged after that flush is affected (docs/architecture.md, Durability).
//!
//! [`Store::flush_async`] runs the same flush on a thread the store owns (`echo-store-flush`,
//! started with the first such flush and ended when the store is dropped), so that the
//! actors' thread keeps serving while the disk syncs. Requests that arrive while a flush runs
//! are answered together by the next one: one sync for all of them (the writes they cover
//! were all made before they were sent).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use super::{FlushFuture, Store, StoreError, WriteBatch, WriteOp};

#[path = "sled_rewrite.rs"]
mod rewrite;

/// sled's page cache. Its default, 1 GiB, holds a long-running node's whole store in memory,
/// so memory grows with every write kept (about 0.7 KiB per write in a single-node run of
/// 15,000 updates, against 0.35 KiB once a 4 MiB cache is full; the operating system's own
/// page cache still keeps recent pages).
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// [`Store`] on sled.
pub struct SledStore {
    disk: Arc<Disk>,
    /// Requests to the flush thread, once it runs, and the thread (joined on drop, so that
    /// the store's files are closed when the store is gone).
    flusher: Mutex<Option<(mpsc::Sender<FlushRequest>, std::thread::JoinHandle<()>)>>,
}

type FlushRequest = tokio::sync::oneshot::Sender<Result<(), String>>;

/// What the flush thread shares with the store.
struct Disk {
    db: sled::Db,
    path: PathBuf,
    /// sled's log file, held open for `fdatasync`.
    log: fs::File,
    /// The highest blob number (blobs are named by log sequence number) already synced.
    blobs_synced: Mutex<u64>,
}

impl SledStore {
    /// Opens (or creates) the store at `path`, then restricts the directory to 0700 and its
    /// files to 0600. Fails if another process holds the store open. First finishes or undoes
    /// a [`SledStore::rewrite`] that a crash interrupted.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        rewrite::recover_interrupted_rewrite(path)
            .map_err(|e| open_err(format!("cannot recover an interrupted rewrite: {e}")))?;
        fs::create_dir_all(path).map_err(|e| open_err(e.to_string()))?;
        restrict(path).map_err(|e| open_err(e.to_string()))?;
        let db = open_sled(path).map_err(|e| {
            if is_lock_error(&e.to_string()) {
                StoreError::Locked {
                    path: path.display().to_string(),
                }
            } else {
                open_err(e.to_string())
            }
        })?;
        restrict(path).map_err(|e| open_err(e.to_string()))?;
        let log = fs::File::open(path.join("db"))
            .map_err(|e| open_err(format!("cannot open sled's log file for syncing: {e}")))?;
        let disk = Disk {
            db,
            path: path.to_path_buf(),
            log,
            blobs_synced: Mutex::new(0),
        };
        // Blobs left by an earlier run may never have been synced: sync them all once.
        disk.sync_to_disk().map_err(|e| open_err(e.to_string()))?;
        Ok(SledStore {
            disk: Arc::new(disk),
            flusher: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.disk.path
    }

    /// The sender of the flush thread, started on first use.
    fn flusher(&self) -> Result<mpsc::Sender<FlushRequest>, StoreError> {
        // A poisoned lock only means a thread panicked holding it; the sender is still good.
        let mut slot = self.flusher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tx, _)) = slot.as_ref() {
            return Ok(tx.clone());
        }
        let (tx, rx) = mpsc::channel::<FlushRequest>();
        let disk = self.disk.clone();
        let thread = std::thread::Builder::new()
            .name("echo-store-flush".into())
            .spawn(move || {
                // Ends when the store (the last sender) is dropped.
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    let result = disk.flush().map_err(|e| e.to_string());
                    for w in waiting {
                        let _ = w.send(result.clone());
                    }
                }
            })
            .map_err(|e| StoreError::Io(format!("cannot start the flush thread: {e}")))?;
        *slot = Some((tx.clone(), thread));
        Ok(tx)
    }
}

/// How often `open` tries again, [`LOCK_RETRY_PAUSE`] apart, while the store is locked.
const LOCK_RETRIES: u32 = 100;
const LOCK_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// Opens sled at `path`. A store this process just closed may hold its file lock a moment
/// longer (sled's background threads drop their last handles, and with them the locked
/// file, after `Db` is gone: seen as a `Locked` error on reopening right after a close, 4
/// runs in 40 of `rewrite`'s tests under load), so a lock error is retried for about a
/// second (counted in tries, not read from a clock) before it counts: another process that
/// holds the store keeps it longer. Blocking is fine here: a store is opened before any
/// actor runs on it.
fn open_sled(path: &Path) -> sled::Result<sled::Db> {
    let config = sled::Config::new().path(path).cache_capacity(CACHE_BYTES);
    let mut tries = 0;
    loop {
        match config.open() {
            Err(e) if is_lock_error(&e.to_string()) && tries < LOCK_RETRIES => {
                tries += 1;
                std::thread::sleep(LOCK_RETRY_PAUSE);
            }
            other => return other,
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        let flusher = self
            .flusher
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((tx, thread)) = flusher {
            // The thread ends once its last sender is gone (a flush it runs finishes first).
            drop(tx);
            let _ = thread.join();
        }
    }
}

impl Disk {
    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        self.sync_to_disk()
            .map_err(|e| StoreError::Io(format!("cannot sync the store to disk: {e}")))
    }

    /// The syncs that `Db::flush` leaves out (module docs).
    fn sync_to_disk(&self) -> std::io::Result<()> {
        let blobs = self.path.join("blobs");
        if blobs.is_dir() {
            // A poisoned lock only means another flush panicked mid-way; the number is
            // still a lower bound of what was synced.
            let mut synced = self.blobs_synced.lock().unwrap_or_else(|p| p.into_inner());
            let mut highest = *synced;
            let mut any = false;
            for entry in fs::read_dir(&blobs)? {
                let entry = entry?;
                let Some(lsn) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u64>().ok())
                else {
                    continue;
                };
                if lsn > *synced || *synced == 0 {
                    // A blob may be removed by sled's own collection meanwhile.
                    match fs::File::open(entry.path()) {
                        Ok(f) => f.sync_all()?,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    }
                    highest = highest.max(lsn);
                    any = true;
                }
            }
            if any {
                fs::File::open(&blobs)?.sync_all()?;
            }
            *synced = highest;
        }
        self.log.sync_data()?;
        fs::File::open(&self.path)?.sync_all()
    }
}

/// sled reports a file lock held by another process only in its error message.
fn is_lock_error(message: &str) -> bool {
    message.contains("could not acquire lock")
}

/// Directories 0700, files 0600, recursively.
fn restrict(dir: &Path) -> std::io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            restrict(&path)?;
        } else {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.disk.db.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.disk
            .db
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(io))
            .collect()
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut sled_batch = sled::Batch::default();
        for op in batch.ops {
            match op {
                WriteOp::Put(k, v) => sled_batch.insert(k, v),
                WriteOp::Remove(k) => sled_batch.remove(k),
            }
        }
        self.disk.db.apply_batch(sled_batch).map_err(io)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.disk.flush()
    }

    fn flush_async(&self) -> FlushFuture {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.flusher().and_then(|f| {
            f.send(tx)
                .map_err(|_| StoreError::Io("the flush thread is gone".into()))
        });
        Box::pin(async move {
            sent?;
            match rx.await {
                Ok(result) => result.map_err(StoreError::Io),
                Err(_) => Err(StoreError::Io("the flush thread is gone".into())),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn sleds_lock_message_is_recognised() {
        assert!(super::is_lock_error(
            r#"IO error: could not acquire lock on "db": Os { code: 11, kind: WouldBlock }"#
        ));
        assert!(!super::is_lock_error("permission denied"));
    }

    /// sled writes large values as blob files and never syncs them itself: the store's flush
    /// does, and only the ones new since the last flush.
    #[test]
    fn flush_syncs_the_blobs_written_since_the_last_flush() {
        use super::{SledStore, Store};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let synced = || *store.disk.blobs_synced.lock().unwrap();
        store.put(b"small", b"x").unwrap();
        store.flush().unwrap();
        assert_eq!(synced(), 0, "no blob yet");
        store.put(b"large", &vec![7u8; 1 << 20]).unwrap();
        store.flush().unwrap();
        let first = synced();
        let blobs: Vec<u64> = std::fs::read_dir(dir.path().join("db/blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(blobs, vec![first], "the one blob is the one synced");
        store.put(b"larger", &vec![8u8; 2 << 20]).unwrap();
        store.flush().unwrap();
        assert!(synced() > first);
        drop(store);
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        assert_eq!(store.get(b"larger").unwrap().unwrap().len(), 2 << 20);
    }

    /// The asynchronous flush runs on the store's thread and answers every request; what was
    /// written before it is durable (read back after reopening).
    #[test]
    fn asynchronous_flushes_are_answered_and_durable() {
        use super::{SledStore, Store};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut flushes = vec![];
            for i in 0..20u8 {
                store.put(&[i], &[i; 100]).unwrap();
                flushes.push(store.flush_async());
            }
            for f in flushes {
                f.await.unwrap();
            }
        });
        let thread_runs = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
            .any(|name| name.trim().starts_with("echo-store-flu"));
        assert!(thread_runs, "the flush thread runs while the store is open");
        drop(store);
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        for i in 0..20u8 {
            assert_eq!(store.get(&[i]).unwrap().unwrap(), vec![i; 100]);
        }
    }
}
