//! The production store: sled 0.34 in a directory that only the owner can read (secrets
//! live in it). Batches map to sled batches (atomic); flush is `Db::flush`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Store, StoreError, WriteBatch, WriteOp};

/// [`Store`] on sled.
pub struct SledStore {
    db: sled::Db,
    path: PathBuf,
}

impl SledStore {
    /// Opens (or creates) the store at `path`, then restricts the directory to 0700 and its
    /// files to 0600. Fails if another process holds the store open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        fs::create_dir_all(path).map_err(|e| open_err(e.to_string()))?;
        restrict(path).map_err(|e| open_err(e.to_string()))?;
        let db = sled::Config::new().path(path).open().map_err(|e| {
            if is_lock_error(&e.to_string()) {
                StoreError::Locked {
                    path: path.display().to_string(),
                }
            } else {
                open_err(e.to_string())
            }
        })?;
        restrict(path).map_err(|e| open_err(e.to_string()))?;
        Ok(SledStore {
            db,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        Ok(self.db.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.db
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
        self.db.apply_batch(sled_batch).map_err(io)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sleds_lock_message_is_recognised() {
        assert!(super::is_lock_error(
            r#"IO error: could not acquire lock on "db": Os { code: 11, kind: WouldBlock }"#
        ));
        assert!(!super::is_lock_error("permission denied"));
    }
}
