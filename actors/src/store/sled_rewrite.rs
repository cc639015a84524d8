//! [`SledStore::rewrite`]: copy a closed sled store into a fresh one and swap it in, so that
//! values that were overwritten or removed no longer linger in sled's log (sled appends;
//! an old value stays on disk until its segment happens to be reclaimed). Used to drop the
//! identity secret of an old data dir for good (`identity/migrate.rs`).
//!
//! Contract: the copy is written beside the store (`NAME.rewrite`), flushed, and swapped in
//! by two renames (`NAME` -> `NAME.old`, `NAME.rewrite` -> `NAME`) before `NAME.old` is
//! removed. [`recover_interrupted_rewrite`], run by every [`SledStore::open`], finishes or
//! undoes a rewrite a crash interrupted: before the second rename the old store is put back
//! (and the copy dropped); after it, the old store is removed. So the store at `NAME` is
//! always either the whole old store or the whole copy.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::{io, SledStore};
use crate::store::{Store, StoreError, WriteBatch};

/// Bytes of entries copied per batch.
const BATCH_BYTES: usize = 4 << 20;

/// `NAME.suffix` beside `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Fsyncs the directory that holds `path`, so that renames in it are durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fs::File::open(parent)?.sync_all(),
        _ => Ok(()),
    }
}

/// Finishes or undoes a rewrite of the store at `path` that a crash interrupted (module
/// docs). Runs before the store is opened.
pub(super) fn recover_interrupted_rewrite(path: &Path) -> std::io::Result<()> {
    let fresh = sibling(path, "rewrite");
    let old = sibling(path, "old");
    if old.exists() {
        if path.exists() {
            // Swapped, not yet cleaned up.
            fs::remove_dir_all(&old)?;
        } else {
            // Between the two renames: keep the old store, drop the copy.
            fs::rename(&old, path)?;
        }
        sync_parent(path)?;
    }
    if fresh.exists() {
        fs::remove_dir_all(&fresh)?;
        sync_parent(path)?;
    }
    Ok(())
}

impl SledStore {
    /// Copies every entry of the (closed) store at `path`, each value passed through `map`
    /// with its key, into a fresh store, then puts the copy in its place (module docs).
    pub fn rewrite(
        path: &Path,
        mut map: impl FnMut(&[u8], Vec<u8>) -> Vec<u8>,
    ) -> Result<(), StoreError> {
        let fresh = sibling(path, "rewrite");
        let old = sibling(path, "old");
        let fs_err = |what: &str, e: std::io::Error| {
            StoreError::Io(format!(
                "rewriting the store at {}: {what}: {e}",
                path.display()
            ))
        };
        {
            let source = SledStore::open(path)?;
            let target = SledStore::open(&fresh)?;
            let mut batch = WriteBatch::new();
            let mut bytes = 0;
            for entry in source.disk.db.iter() {
                let (key, value) = entry.map_err(io)?;
                let value = map(&key, value.to_vec());
                bytes += key.len() + value.len();
                batch.put(key.to_vec(), value);
                if bytes >= BATCH_BYTES {
                    target.write(std::mem::take(&mut batch))?;
                    bytes = 0;
                }
            }
            target.write(batch)?;
            target.flush()?;
        }
        fs::rename(path, &old).map_err(|e| fs_err("moving the old store aside", e))?;
        fs::rename(&fresh, path).map_err(|e| fs_err("moving the copy in place", e))?;
        sync_parent(path).map_err(|e| fs_err("syncing the data dir", e))?;
        fs::remove_dir_all(&old).map_err(|e| fs_err("removing the old store", e))?;
        sync_parent(path).map_err(|e| fs_err("syncing the data dir", e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every file under `dir`, read whole.
    fn all_bytes(dir: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(all_bytes(&path));
            } else {
                out.extend(fs::read(&path).unwrap());
            }
        }
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn an_overwritten_value_lingers_in_sled_until_the_store_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let secret = [0xA5u8; 32];
        {
            let store = SledStore::open(&path).unwrap();
            store.put(b"i", &secret).unwrap();
            store.put(b"other", b"kept").unwrap();
            store.flush().unwrap();
            store.put(b"i", b"public").unwrap();
            store.flush().unwrap();
        }
        // What this module is for: sled keeps the old value in its log.
        assert!(contains(&all_bytes(&path), &secret));
        SledStore::rewrite(&path, |_, v| v).unwrap();
        assert!(!contains(&all_bytes(dir.path()), &secret));
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.get(b"i").unwrap().unwrap(), b"public");
        assert_eq!(store.get(b"other").unwrap().unwrap(), b"kept");
        assert!(!sibling(&path, "old").exists() && !sibling(&path, "rewrite").exists());
    }

    #[test]
    fn values_pass_through_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let store = SledStore::open(&path).unwrap();
            for i in 0..100u8 {
                store.put(&[i], &[i; 10]).unwrap();
            }
            store.flush().unwrap();
        }
        SledStore::rewrite(&path, |k, v| if k == [7] { b"seven".to_vec() } else { v }).unwrap();
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.scan_prefix(&[]).unwrap().len(), 100);
        assert_eq!(store.get(&[7]).unwrap().unwrap(), b"seven");
        assert_eq!(store.get(&[8]).unwrap().unwrap(), [8; 10]);
    }

    #[test]
    fn a_rewrite_interrupted_between_the_renames_keeps_the_old_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let store = SledStore::open(&path).unwrap();
            store.put(b"k", b"old").unwrap();
            store.flush().unwrap();
            let copy = SledStore::open(&sibling(&path, "rewrite")).unwrap();
            copy.put(b"k", b"new").unwrap();
            copy.flush().unwrap();
        }
        fs::rename(&path, sibling(&path, "old")).unwrap();
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.get(b"k").unwrap().unwrap(), b"old");
        assert!(!sibling(&path, "old").exists() && !sibling(&path, "rewrite").exists());
    }

    #[test]
    fn a_rewrite_interrupted_after_the_swap_keeps_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            // The copy in place first (opening it with an old store beside it and none in
            // place would put the old one back).
            let store = SledStore::open(&path).unwrap();
            store.put(b"k", b"new").unwrap();
            store.flush().unwrap();
            let old = SledStore::open(&sibling(&path, "old")).unwrap();
            old.put(b"k", b"old").unwrap();
            old.flush().unwrap();
        }
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.get(b"k").unwrap().unwrap(), b"new");
        assert!(!sibling(&path, "old").exists());
    }
}
