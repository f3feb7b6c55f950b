//! The exclusive locks that keep a second process off a spool or a checkpoint, taken so that a
//! lock left behind for a moment by one of our own child processes does not refuse us.
//!
//! A `flock` lock belongs to the open file, and a process we start (a test's `hardal`, a
//! command an operator runs from a service manager) holds a copy of every open file from its
//! fork until its `exec` closes them. A spool closed and opened again in one process while
//! another thread starts a child can find its own released lock still held for that moment;
//! so a held lock is tried again for a short while before it is called another owner's.

use std::fs::{File, TryLockError};
use std::time::{Duration, Instant};

/// How long a held lock is tried again: far longer than a fork's moment (well under a
/// millisecond, tens of them on a loaded machine), short enough that a second service is refused,
/// and `hardal forget` turns to the running service, without a noticeable wait.
pub const PATIENCE: Duration = Duration::from_millis(500);

/// Locks `file` exclusively, trying again for `patience` while someone holds it.
pub fn lock(file: &File, patience: Duration) -> Result<(), TryLockError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Err(TryLockError::WouldBlock) if started.elapsed() < patience => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            outcome => return outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            .unwrap()
    }

    #[test]
    fn a_lock_a_child_holds_for_a_moment_is_taken_once_it_is_let_go() {
        let dir = std::env::temp_dir().join(format!("hardal-exclusive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ours = file(&dir);
        ours.try_lock().unwrap();
        // What a forked child holds: the same open file, under another descriptor.
        let childs = ours.try_clone().unwrap();
        drop(ours);
        let again = file(&dir);
        assert!(
            matches!(again.try_lock(), Err(TryLockError::WouldBlock)),
            "the child's copy keeps the lock"
        );
        let exec = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(childs);
        });
        lock(&again, Duration::from_secs(30)).unwrap();
        exec.join().unwrap();
        // And a lock that stays held is refused once the patience is spent.
        let third = file(&dir);
        assert!(matches!(
            lock(&third, Duration::from_millis(20)),
            Err(TryLockError::WouldBlock)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
