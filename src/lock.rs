//! Exclusive locks that keep two commands from changing the same files at once: a lock file
//! beside each protected file (`NAME.lock`), held with the operating system's advisory lock
//! for as long as this process runs its command, naming its holder so a refused second
//! command can say who is in the way. The bottom layer: imports nothing from the crate.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who holds (or wants) a lock, as written into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `user@host`.
    pub who: String,
    /// The command, e.g. `apply`.
    pub command: String,
    /// When it took the lock, RFC 3339.
    pub since: String,
}

impl Holder {
    fn line(&self) -> String {
        format!(
            "pid {}, {}, `xmppdns {}`, since {}\n",
            self.pid, self.who, self.command, self.since
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is in use by another xmppdns command ({holder}); waited {:.1} s. Try again when it has finished (if that process is gone, the lock went with it: an advisory lock is released when its holder exits, so the file {} itself can stay)", path.display(), waited.as_secs_f64(), lock.display())]
    Held {
        path: PathBuf,
        lock: PathBuf,
        holder: String,
        waited: Duration,
    },
    #[error("cannot lock {}: {source}", lock.display())]
    Io {
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// The lock files this process holds, open (closing one would release it), by path.
static HELD: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// The lock file of `path`: `path` with `.lock` appended, in the same folder.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Locks each of `paths` (in sorted order, so two commands never wait on each other in a
/// circle) for the rest of this process, waiting at most `wait` for each. A path this process
/// already holds is skipped: one process runs one command.
pub fn hold_for_process(
    paths: &[PathBuf],
    holder: &Holder,
    wait: Duration,
) -> Result<(), LockError> {
    let sorted: BTreeSet<PathBuf> = paths.iter().map(|p| lock_path(&absolute(p))).collect();
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    for lock in sorted {
        if held.iter().any(|(p, _)| *p == lock) {
            continue;
        }
        let file = take(&lock, holder, wait)?;
        held.push((lock, file));
    }
    Ok(())
}

/// Releases every lock this process holds (tests that run several commands in one process).
pub fn release_all() {
    HELD.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Takes one lock file, polling until `wait` has passed; on success writes `holder` into it.
fn take(lock: &Path, holder: &Holder, wait: Duration) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        lock: lock.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock)
        .map_err(io)?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = text.trim();
                return Err(LockError::Held {
                    path: lock.with_extension(""),
                    lock: lock.to_path_buf(),
                    holder: if holder.is_empty() {
                        "its holder did not say who it is".into()
                    } else {
                        holder.to_string()
                    },
                    waited: started.elapsed(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(holder.line().as_bytes()).map_err(io)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(command: &str) -> Holder {
        Holder {
            pid: 42,
            who: "alice@edge".into(),
            command: command.into(),
            since: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_second_holder_waits_then_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_path(&dir.path().join("topology.json"));
        let first = take(&lock, &holder("failover"), Duration::ZERO).unwrap();
        let started = Instant::now();
        let error = take(&lock, &holder("apply"), Duration::from_millis(200)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        let text = error.to_string();
        assert!(
            text.contains("pid 42, alice@edge, `xmppdns failover`, since 2026-01-01T00:00:00Z"),
            "{text}"
        );
        assert!(text.contains("topology.json"), "{text}");
        drop(first);
        take(&lock, &holder("apply"), Duration::ZERO).expect("released with its file");
    }
}
