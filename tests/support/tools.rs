//! External programs: find them (or fail naming the Debian package), and run them with a time bound.

use std::env;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Directories searched after `$PATH`: the servers live in sbin, which a non-root `$PATH` may lack.
const SBIN_DIRS: [&str; 4] = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin"];

/// The Debian 12 package that ships `program` (as `dpkg -S` reports it).
pub fn debian_package(program: &str) -> &'static str {
    match program {
        "named" | "tsig-keygen" => "bind9",
        "dig" | "nsupdate" => "bind9-dnsutils",
        "named-checkconf" | "named-compilezone" => "bind9-utils",
        "unshare" => "util-linux",
        "mount" => "mount",
        "ip" => "iproute2",
        "knotd" | "knotc" => "knot",
        "kdig" | "knsupdate" => "knot-dnsutils",
        "prosody" | "prosodyctl" => "prosody",
        "pdns_server" | "pdnsutil" => "pdns-server",
        "sqlite3" => "sqlite3",
        "openssl" => "openssl",
        "curl" => "curl",
        "prometheus" | "promtool" => "prometheus",
        "krb5kdc" | "kdb5_util" => "krb5-kdc",
        "kadmin.local" => "krb5-admin-server",
        "kinit" | "klist" | "kdestroy" => "krb5-user",
        "samba" => "samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules",
        "samba-tool" => "samba-common-bin",
        _ => "<the package that provides it>",
    }
}

/// The panic message for a missing program.
pub fn missing_program_message(program: &str) -> String {
    format!(
        "`{program}` is not installed (searched $PATH and {}): run `apt-get install {}` \
         (Debian 12). These integration tests start real servers and never skip.",
        SBIN_DIRS.join(", "),
        debian_package(program)
    )
}

/// Where `program` is, looking in `$PATH` and then the sbin directories.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    let extra = SBIN_DIRS.iter().map(PathBuf::from);
    env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The absolute path of `program`; panics (fails the test) naming the package to install.
pub fn require(program: &str) -> PathBuf {
    find_program(program).unwrap_or_else(|| panic!("{}", missing_program_message(program)))
}

/// Panics naming `package` unless the data file `path` exists.
pub fn require_file(path: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{} is missing: run `apt-get install {package}` (Debian 12). \
         These integration tests start real servers and never skip.",
        path.display()
    );
    path
}

/// What a bounded run of a program produced.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout and stderr together, for messages.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` to completion, feeding it `stdin`, killing it after `timeout`.
/// `Err` only when it could not run or timed out; a non-zero exit is an `Ok` (check `status`).
pub fn run(cmd: &mut Command, stdin: Option<&str>, timeout: Duration) -> Result<Ran, String> {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;

    let feeder = child.stdin.take().map(|mut pipe| {
        let input = stdin.unwrap_or_default().to_owned();
        thread::spawn(move || {
            // The program may exit without reading everything: ignore EPIPE.
            let _ = pipe.write_all(input.as_bytes());
        })
    });
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let partial = format!("{}{}", join(out), join(err));
                return Err(format!(
                    "{shown} did not finish within {timeout:?}; output so far:\n{partial}"
                ));
            }
            Err(e) => return Err(format!("waiting for {shown}: {e}")),
        }
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    Ok(Ran {
        status,
        stdout: join(out),
        stderr: join(err),
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<thread::JoinHandle<String>> {
    pipe.map(|mut pipe| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
}

fn join(handle: Option<thread::JoinHandle<String>>) -> String {
    handle
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default()
}

/// Runs a required program and panics unless it exits 0 (setup steps: keys, certificates, schemas).
pub fn run_ok(program: &str, args: &[OsString], stdin: Option<&str>, timeout: Duration) -> Ran {
    let mut cmd = Command::new(require(program));
    cmd.args(args);
    let ran = run(&mut cmd, stdin, timeout).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ran.success(),
        "{cmd:?} failed with {}:\n{}",
        ran.status,
        ran.output()
    );
    ran
}

/// The proxy variables HTTP clients (ureq among them) read.
const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
];

/// The xmppdns binary as the tests run it: stdin not a terminal, no colour, none of the
/// caller's logging or backtrace settings, and no proxy (test traffic, API keys included,
/// goes straight to the server on loopback). Add `.args`, `.current_dir`, `.output()`.
pub fn xmppdns() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xmppdns"));
    command
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    command
}

/// `xmppdns()` run through `unshare --mount` with `resolv_conf` bind-mounted over
/// /etc/resolv.conf for that one process (the network is shared: loopback servers answer).
/// For the code paths that read the system's resolvers: with an empty file they have none, and
/// nothing is asked of the machine's real resolver. Needs root (CI) or, for other users,
/// unprivileged user namespaces (`--map-root-user`); fails the test naming the cause otherwise.
pub fn xmppdns_with_resolv_conf(resolv_conf: &Path) -> Command {
    let inner = xmppdns();
    let mut command = Command::new(require("unshare"));
    if !running_as_root() {
        command.arg("--map-root-user");
    }
    command
        .args(["--mount", "--", "/bin/sh", "-c"])
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(resolv_conf)
        .arg(inner.get_program());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command.stdin(Stdio::null());
    command
}

/// Whether this process runs with effective user id 0 (from /proc/self/status: no libc call).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
