//! Exclusive locks that keep two commands from changing the same files at once: a lock file
//! beside each protected file (`NAME.lock`), held with the operating system's advisory lock
//! while a [`Locks`] guard lives, naming its holder so a refused second command can say who is
//! in the way. Within one process the locks are shared (one process runs one command; a
//! rollback of several entries prepares several applies over the same files). The bottom
//! layer: imports nothing from the crate.

use std::collections::{BTreeMap, BTreeSet};
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

/// The lock files this process holds, open (closing one would release it), by path, with the
/// number of guards that hold each.
static HELD: Mutex<BTreeMap<PathBuf, (File, usize)>> = Mutex::new(BTreeMap::new());

/// Holds locks until dropped (or, with [`Locks::keep_until_exit`], until the process ends).
#[derive(Debug, Default)]
pub struct Locks {
    paths: Vec<PathBuf>,
}

impl Locks {
    /// Takes over `other`'s locks too.
    pub fn absorb(&mut self, mut other: Locks) {
        self.paths.append(&mut other.paths);
    }

    /// Keeps these locks until the process exits (the CLI: one command per process, and it
    /// writes the topology after the apply that took them is done).
    pub fn keep_until_exit(self) {
        std::mem::forget(self);
    }
}

impl Drop for Locks {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        for path in self.paths.drain(..) {
            if let Some((_, count)) = held.get_mut(&path) {
                *count -= 1;
                if *count == 0 {
                    // Closing the file releases the lock.
                    held.remove(&path);
                }
            }
        }
    }
}

/// The lock file of `path`: `path` with `.lock` appended, in the same folder.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Locks each of `paths` (in sorted order, so two commands never wait on each other in a
/// circle), waiting at most `wait` for each, until the guard is dropped. A path this process
/// already holds is shared.
pub fn hold(paths: &[PathBuf], holder: &Holder, wait: Duration) -> Result<Locks, LockError> {
    let sorted: BTreeSet<PathBuf> = paths.iter().map(|p| lock_path(&absolute(p))).collect();
    let mut locks = Locks::default();
    for lock in sorted {
        // No folder, no file to protect: whoever opens it next reports that in its own words.
        if lock.parent().is_some_and(|folder| !folder.is_dir()) {
            continue;
        }
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, count)) = held.get_mut(&lock) {
            *count += 1;
        } else {
            let file = take(&lock, holder, wait)?;
            held.insert(lock.clone(), (file, 1));
        }
        locks.paths.push(lock);
    }
    Ok(locks)
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
