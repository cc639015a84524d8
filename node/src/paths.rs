//! The data dir and the files in it: where it is (`--data-dir`, `$ECHO_DATA_DIR`, XDG), the
//! store directory, `api.json` (where the daemon's local API listens) and `api-token` (its
//! bearer token, mode 0600). Both files are written atomically: temp file, then rename.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// Chooses the data dir: the flag (or `$ECHO_DATA_DIR`, which clap folds into it), else
/// `$XDG_DATA_HOME/echo-rs` (if absolute, as the XDG spec asks), else
/// `$HOME/.local/share/echo-rs`.
pub fn resolve_data_dir(
    flag: Option<PathBuf>,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag.filter(|d| !d.as_os_str().is_empty()) {
        return Ok(dir);
    }
    if let Some(xdg) = xdg_data_home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(xdg.join("echo-rs"));
    }
    match home.filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/echo-rs")),
        None => bail!("cannot find a data dir: pass --data-dir DIR or set ECHO_DATA_DIR"),
    }
}

/// Where the running daemon's local API is, as written to `api.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiInfo {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// Process id of the daemon.
    pub pid: u32,
}

/// The files of one data dir.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: PathBuf) -> Self {
        DataDir { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn store(&self) -> PathBuf {
        self.root.join("store")
    }

    pub fn api_json(&self) -> PathBuf {
        self.root.join("api.json")
    }

    pub fn api_token(&self) -> PathBuf {
        self.root.join("api-token")
    }

    /// Creates the data dir (and missing parents) with mode 0700, and restricts an existing
    /// one to 0700: it holds keys.
    pub fn create(&self) -> anyhow::Result<()> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("cannot create data dir {}", self.root.display()))?;
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict data dir {} to 0700", self.root.display()))
    }

    /// Writes `api-token` (mode 0600 from creation on) atomically.
    pub fn write_token(&self, token: &str) -> anyhow::Result<()> {
        write_atomic(&self.api_token(), token.as_bytes(), 0o600)
    }

    /// Writes `api.json` atomically.
    pub fn write_api_info(&self, info: &ApiInfo) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec(info)?;
        bytes.push(b'\n');
        write_atomic(&self.api_json(), &bytes, 0o600)
    }

    /// Removes `api.json` (the daemon is going away). A missing file is fine.
    pub fn remove_api_info(&self) -> std::io::Result<()> {
        match fs::remove_file(self.api_json()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Reads `api.json`; `Ok(None)` when there is none (no daemon was started or it stopped).
    pub fn read_api_info(&self) -> anyhow::Result<Option<ApiInfo>> {
        let path = self.api_json();
        match fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                    format!("{} is corrupt", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Reads the bearer token.
    pub fn read_token(&self) -> anyhow::Result<String> {
        let path = self.api_token();
        let token =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(token.trim().to_string())
    }
}

/// Writes `bytes` to a temp file next to `path` (created with `mode`), syncs it and renames
/// it over `path`, so readers see the old content or the new, never a part.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn flag_wins() {
        let dir = resolve_data_dir(Some("/d".into()), os("/xdg"), os("/home/u")).expect("dir");
        assert_eq!(dir, PathBuf::from("/d"));
    }

    #[test]
    fn xdg_data_home_when_absolute() {
        let dir = resolve_data_dir(None, os("/xdg"), os("/home/u")).expect("dir");
        assert_eq!(dir, PathBuf::from("/xdg/echo-rs"));
        let dir = resolve_data_dir(None, os("relative"), os("/home/u")).expect("dir");
        assert_eq!(dir, PathBuf::from("/home/u/.local/share/echo-rs"));
    }

    #[test]
    fn home_fallback_and_no_home() {
        let dir = resolve_data_dir(None, None, os("/home/u")).expect("dir");
        assert_eq!(dir, PathBuf::from("/home/u/.local/share/echo-rs"));
        assert!(resolve_data_dir(None, None, None).is_err());
        assert!(resolve_data_dir(Some(PathBuf::new()), None, None).is_err());
    }

    #[test]
    fn token_is_0600_and_api_info_round_trips() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path().join("data"));
        dir.create().expect("create");
        let mode = fs::metadata(dir.root()).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        dir.write_token("abc").expect("token");
        let mode = fs::metadata(dir.api_token())
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(dir.read_token().expect("read"), "abc");
        assert_eq!(dir.read_api_info().expect("read"), None);
        let info = ApiInfo {
            url: "http://127.0.0.1:1".into(),
            pid: 7,
        };
        dir.write_api_info(&info).expect("write");
        assert_eq!(dir.read_api_info().expect("read"), Some(info));
        dir.remove_api_info().expect("remove");
        dir.remove_api_info().expect("remove twice");
    }
}
