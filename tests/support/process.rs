//! One server child process: free ports, its own TempDir, bounded readiness, SIGTERM/SIGKILL + reap in Drop.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Every server listens here and only here.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// How long `Drop` waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a server is restarted on new ports when its ports turn out to be taken.
pub const MAX_START_ATTEMPTS: u32 = 5;
/// Lines of each log shown when a server does not come up.
pub const LOG_TAIL_LINES: usize = 40;
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Ports handed out by this process: never handed out twice, so parallel tests cannot collide
/// (BIND and Knot bind UDP with SO_REUSEPORT, so two of them could share a port silently).
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// What a server needs a port for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    /// DNS: the same port number free for both UDP and TCP.
    TcpAndUdp,
}

/// A port on 127.0.0.1 that the kernel just gave out (bind to port 0) and this process never
/// handed out before. It is free now; the server may still lose a race for it, hence the restarts.
pub fn free_port(transport: Transport) -> u16 {
    for _ in 0..200 {
        let tcp = TcpListener::bind((LOOPBACK, 0)).expect("bind a TCP socket to 127.0.0.1:0");
        let port = tcp
            .local_addr()
            .expect("local address of a bound socket")
            .port();
        if transport == Transport::TcpAndUdp && UdpSocket::bind((LOOPBACK, port)).is_err() {
            continue;
        }
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 after 200 tries");
}

/// Readiness deadline: `XMPPDNS_TEST_READY_SECS` (for slow CI machines), else 10 s.
pub fn ready_timeout() -> Duration {
    let secs = std::env::var("XMPPDNS_TEST_READY_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(10);
    Duration::from_secs(secs)
}

/// The server could not bind its port(s): start again on other ports.
#[derive(Debug)]
pub struct PortClash {
    pub log_tail: String,
}

/// Calls `attempt` until it does not report a port clash, at most `MAX_START_ATTEMPTS` times.
pub fn start_with_retries<T>(what: &str, mut attempt: impl FnMut() -> Result<T, PortClash>) -> T {
    let mut last = String::new();
    for _ in 0..MAX_START_ATTEMPTS {
        match attempt() {
            Ok(server) => return server,
            Err(clash) => last = clash.log_tail,
        }
    }
    panic!(
        "{what}: its ports were taken on each of {MAX_START_ATTEMPTS} attempts; last log:\n{last}"
    );
}

/// A new private directory for one server instance.
pub fn server_dir(kind: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("xmppdns-{kind}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("create a temporary directory for {kind}: {e}"))
}

/// Writes `text` to `path`, panicking with the path on failure.
pub fn write_file(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Creates a directory (and parents), panicking with the path on failure.
pub fn make_dir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
}

/// A running server: killed and reaped on drop, then its directory is removed.
pub struct ServerProcess {
    kind: &'static str,
    child: Child,
    /// stdout+stderr capture first, then the server's own log files.
    logs: Vec<PathBuf>,
    // Declared last: removed only after `drop` has stopped the process.
    dir: TempDir,
}

impl ServerProcess {
    /// Starts `program args...` in the foreground in `dir`, stdout and stderr to `dir/KIND.out`.
    /// `extra_logs`: log files the server writes itself (shown when it fails).
    pub fn spawn(
        kind: &'static str,
        dir: TempDir,
        program: &Path,
        args: &[&OsStr],
        extra_logs: Vec<PathBuf>,
    ) -> ServerProcess {
        let out_path = dir.path().join(format!("{kind}.out"));
        let out = File::create(&out_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", out_path.display()));
        let err = out.try_clone().expect("duplicate the log file handle");
        // Its own process group, so that stopping it stops every process it forked (Samba's
        // prefork workers outlive their parent for a while and keep its ports otherwise).
        let child = Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {} {args:?}: {e}", program.display()));
        let mut logs = vec![out_path];
        logs.extend(extra_logs);
        ServerProcess {
            kind,
            child,
            logs,
            dir,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server logged so far (all its log files, concatenated).
    pub fn logs(&self) -> String {
        self.logs
            .iter()
            .filter_map(|path| fs::read(path).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The last `lines` lines of each log file, labelled, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for path in &self.logs {
            let _ = writeln!(out, "==> {} <==", path.display());
            match fs::read(path) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let all: Vec<&str> = text.lines().collect();
                    for line in &all[all.len().saturating_sub(lines)..] {
                        let _ = writeln!(out, "{line}");
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "(unreadable: {e})");
                }
            }
        }
        out
    }

    /// Whether the process has exited (and was reaped).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Polls until `probe` succeeds, within `ready_timeout()`.
    /// - a line of `clash_markers` in the logs: the port was taken, `Err(PortClash)` (then drop me);
    /// - a line of `fatal_markers`, an exit, or the deadline: panic with the log tail;
    /// - `started_marker`: probe only once the logs contain it (so the answer is from this process).
    pub fn wait_ready(
        &mut self,
        clash_markers: &[&str],
        fatal_markers: &[&str],
        started_marker: Option<&str>,
        mut probe: impl FnMut() -> Result<(), String>,
    ) -> Result<(), PortClash> {
        let timeout = ready_timeout();
        let started = Instant::now();
        let mut last = String::from("not probed yet");
        loop {
            let exited = self.has_exited();
            let logs = self.logs();
            if clash_markers.iter().any(|m| logs.contains(m)) {
                return Err(PortClash {
                    log_tail: self.log_tail(LOG_TAIL_LINES),
                });
            }
            if let Some(marker) = fatal_markers.iter().find(|m| logs.contains(*m)) {
                self.fail(&format!("logged {marker:?} during startup"), &last);
            }
            if exited {
                self.fail("exited during startup", &last);
            }
            if started_marker.is_none_or(|m| logs.contains(m)) {
                match probe() {
                    Ok(()) => {
                        // Captured by the test harness; shown when the test fails.
                        eprintln!(
                            "{} (pid {}) ready after {:?} in {}",
                            self.kind,
                            self.pid(),
                            started.elapsed(),
                            self.dir().display()
                        );
                        return Ok(());
                    }
                    Err(e) => last = e,
                }
            } else {
                let marker = started_marker.unwrap_or_default();
                last = format!("its log does not say {marker:?} yet");
            }
            if started.elapsed() >= timeout {
                self.fail(&format!("did not answer within {timeout:?}"), &last);
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn fail(&mut self, what: &str, last_probe: &str) -> ! {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited with {status}"),
            _ => "still running".to_owned(),
        };
        panic!(
            "{} (pid {}, {}) {what} ({status})\nlast probe: {last_probe}\n{}",
            self.kind,
            self.pid(),
            self.dir().display(),
            self.log_tail(LOG_TAIL_LINES)
        );
    }

    /// SIGTERM to its whole process group, wait up to `STOP_TIMEOUT` for every process in it
    /// to go, then SIGKILL the group; always reaps.
    pub fn stop(&mut self) {
        // Only signal a group whose leader is not reaped yet: its id cannot have been reused.
        if self.has_exited() {
            self.stop_group_leftovers();
            return;
        }
        signal_group(self.pid(), "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.has_exited() {
                self.stop_group_leftovers();
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "{} (pid {}) ignored SIGTERM for {STOP_TIMEOUT:?}: SIGKILL",
            self.kind,
            self.pid()
        );
        signal_group(self.pid(), "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Children that outlived the leader (same process group), such as Samba's prefork
    /// workers: the leader has shut down, so they are killed outright, and waited for (bounded)
    /// so that their ports are free when this returns.
    fn stop_group_leftovers(&self) {
        let group = self.pid();
        if !group_alive(group) {
            return;
        }
        signal_group(group, "KILL");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while group_alive(group) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `kill -SIGNAL -GROUP` (std has no kill(2) with a signal number; sh's builtin kill needs
/// no extra package; dash takes no `--` there).
fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("/bin/sh")
        .args([
            "-c",
            "kill -\"$1\" \"-$2\" 2>/dev/null",
            "sh",
            signal,
            &group.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether any process of the group is still running. Zombies do not count: they hold no
/// sockets, and an orphan's zombie waits for whoever reaps orphans here, which may be nobody.
fn group_alive(group: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        matches!(fields.as_slice(), [state, _ppid, pgrp, ..]
            if *pgrp == group.to_string() && !matches!(*state, "Z" | "X"))
    })
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
