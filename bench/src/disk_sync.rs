//! The disk's own sync rate, the floor under every durable write on sled: append 64 bytes
//! to a file and `fdatasync` it, again and again, in the directory the node's store uses.
//! A node that flushes once per write cannot beat it; group commit beats it by putting many
//! writes in one flush. On a shared machine this number moves with the other engineers'
//! disk traffic, which is why it is measured in the same run.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Syncs done and the time they took.
#[derive(Debug, Clone, Copy)]
pub struct Syncs {
    pub ops: usize,
    pub elapsed: Duration,
}

/// Appends + `fdatasync`s in `dir` for about `budget` (at least 20, at most `max` syncs).
pub fn measure(dir: &Path, budget: Duration, max: usize) -> Result<Syncs> {
    let path = dir.join("sync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    let record = [0x42u8; 64];
    let start = Instant::now();
    let mut ops = 0;
    while ops < max && (ops < 20 || start.elapsed() < budget) {
        file.write_all(&record)?;
        file.sync_data()?;
        ops += 1;
    }
    let elapsed = start.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(Syncs { ops, elapsed })
}
