//! One owner per spool: `hardal serve` holds an exclusive lock on `<spool>.lock` (with its pid
//! written inside) for as long as it runs, so that a second service on the same file is refused
//! at start instead of delivering every event a second time. `hardal dlq` commands take no lock:
//! they write through SQLite's own locking, beside the owner.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::backlog::BacklogError;

/// The lock file of the spool at `path`, named after the file the path leads to, so that two
/// paths to one spool (a symbolic link, `..`) share one lock.
fn lock_path(path: &Path) -> PathBuf {
    let real = std::fs::canonicalize(path).ok().or_else(|| {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
    });
    let path = real.as_deref().unwrap_or(path);
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the spool's lock, or says which process holds it.
pub(super) fn acquire(path: &Path) -> Result<File, BacklogError> {
    let lock = lock_path(path);
    let cannot = |e: std::io::Error| {
        BacklogError::Refused(format!(
            "cannot lock the spool {}: {}: {e}",
            path.display(),
            lock.display()
        ))
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(cannot)?;
    match crate::exclusive::lock(&file, crate::exclusive::PATIENCE) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let owner = std::fs::read_to_string(&lock).unwrap_or_default();
            let owner = owner.trim();
            return Err(BacklogError::Refused(format!(
                "the spool {} is in use by another hardal serve (pid {}, holding {}); one process owns a spool: stop that one first, or give this one another backlog.path",
                path.display(),
                if owner.is_empty() { "unknown" } else { owner },
                lock.display()
            )));
        }
        Err(TryLockError::Error(e)) => return Err(cannot(e)),
    }
    file.set_len(0).map_err(cannot)?;
    writeln!(file, "{}", std::process::id()).map_err(cannot)?;
    file.flush().map_err(cannot)?;
    Ok(file)
}
