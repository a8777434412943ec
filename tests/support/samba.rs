//! Samba 4.17 AD DC (`samba -i`) with its internal DNS server on 127.0.0.1: the closest open
//! implementation of Windows DNS secure (GSS-TSIG) updates.
//!
//! Provisioning takes about 13 s, so a test binary provisions once. Samba's rpc service binds
//! 127.0.0.1:135 (needed to create zones), so only one Samba runs at a time: callers hold
//! `SAMBA_LOCK`. `dns forwarder` is emptied after provisioning (provisioning copies the host's
//! resolver there): this Samba never forwards a query anywhere.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::dns::try_soa_serial;
use super::kdc::krb5_conf;
use super::process::{
    free_port, server_dir, write_file, PortClash, ServerProcess, Transport, LOOPBACK,
    MAX_START_ATTEMPTS,
};
use super::tools::{require, run};

/// One Samba at a time (port 135).
pub static SAMBA_LOCK: Mutex<()> = Mutex::new(());

pub const SAMBA_REALM: &str = "SAMBA.TEST";
pub const SAMBA_PASSWORD: &str = "Xmppdns-Test-1";
const PROVISION_TIMEOUT: Duration = Duration::from_secs(180);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the RPC service may take to listen after DNS and the KDC answer.
const RPC_READY: Duration = Duration::from_secs(60);

/// A running AD DC. Stopped and its directory removed on drop.
pub struct Samba {
    process: ServerProcess,
    pub dns_port: u16,
    pub kdc_port: u16,
    smb_conf: PathBuf,
    /// The client-side krb5.conf for the realm.
    pub krb5_conf: PathBuf,
    /// The provisioned domain (declared after `process`: removed once Samba has stopped).
    _data: TempDir,
}

/// Logged when one of Samba's ports is taken (it then exits).
const CLASH_MARKER: &str = "NT_STATUS_ADDRESS_ALREADY_ASSOCIATED";

impl Samba {
    /// Provisions a domain (`SAMBA.TEST`, DC `dc1`) and starts it with only the kdc, dns and
    /// rpc services; a port taken meanwhile means new ports in smb.conf and another start.
    pub fn start() -> Samba {
        let data = server_dir("samba");
        let smb_conf = provision(data.path());
        let krb5 = data.path().join("krb5.conf");
        let mut last = String::new();
        for _ in 0..MAX_START_ATTEMPTS {
            let dns_port = free_port(Transport::TcpAndUdp);
            let kdc_port = free_port(Transport::TcpAndUdp);
            let kpasswd_port = free_port(Transport::TcpAndUdp);
            set_ports(&smb_conf, dns_port, kdc_port, kpasswd_port);
            write_file(&krb5, &krb5_conf(SAMBA_REALM, kdc_port));
            match run_samba(&smb_conf, dns_port, kdc_port) {
                Ok(process) => {
                    return Samba {
                        process,
                        dns_port,
                        kdc_port,
                        smb_conf,
                        krb5_conf: krb5,
                        _data: data,
                    }
                }
                Err(clash) => last = clash.log_tail,
            }
        }
        panic!("samba: its ports were taken on each of {MAX_START_ATTEMPTS} attempts (is another Samba holding 127.0.0.1:135?); last log:\n{last}");
    }

    pub fn dns(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.dns_port))
    }

    /// `samba-tool dns ARGS... -U administrator` against this DC.
    pub fn dns_tool(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(require("samba-tool"));
        cmd.arg("dns")
            .args(args)
            .arg("-s")
            .arg(&self.smb_conf)
            .args(["-U", "administrator"])
            .arg(format!("--password={SAMBA_PASSWORD}"));
        let ran = run(&mut cmd, None, TOOL_TIMEOUT).expect("samba-tool dns");
        assert!(ran.success(), "samba-tool dns {args:?}: {}", ran.output());
        ran.output()
    }

    /// A new AD-integrated zone (its SOA MNAME is dc1.samba.test).
    pub fn create_zone(&self, zone: &str) {
        self.dns_tool(&["zonecreate", "127.0.0.1", zone]);
    }

    /// `kinit administrator@SAMBA.TEST` into the ticket cache file `ccache`.
    pub fn kinit(&self, ccache: &Path) {
        self.kinit_as("administrator", ccache);
    }

    /// `kinit USER@SAMBA.TEST` (password `SAMBA_PASSWORD`) into `ccache`.
    pub fn kinit_as(&self, user: &str, ccache: &Path) {
        let mut cmd = Command::new(require("kinit"));
        cmd.env("KRB5_CONFIG", &self.krb5_conf)
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .arg(format!("{user}@{SAMBA_REALM}"));
        let ran = run(&mut cmd, Some(&format!("{SAMBA_PASSWORD}\n")), TOOL_TIMEOUT).expect("kinit");
        assert!(ran.success(), "kinit {user}: {}", ran.output());
    }

    /// A plain domain user (no DNS rights beyond what Authenticated Users have).
    pub fn add_user(&self, user: &str) {
        let mut cmd = Command::new(require("samba-tool"));
        cmd.args(["user", "create", user, SAMBA_PASSWORD, "-s"])
            .arg(&self.smb_conf);
        let ran = run(&mut cmd, None, TOOL_TIMEOUT).expect("samba-tool user create");
        assert!(
            ran.success(),
            "samba-tool user create {user}: {}",
            ran.output()
        );
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

/// `samba-tool domain provision` into `dir/dc`; returns its smb.conf, confined.
fn provision(dir: &Path) -> PathBuf {
    let d = dir.join("dc");
    let mut cmd = Command::new(require("samba-tool"));
    cmd.args(["domain", "provision"])
        .arg(format!("--targetdir={}", d.display()))
        .args([
            "--realm=SAMBA.TEST",
            "--domain=SAMBA",
            "--server-role=dc",
            "--dns-backend=SAMBA_INTERNAL",
            "--host-name=dc1",
            "--use-rfc2307",
            "--option=interfaces=lo",
            "--option=bind interfaces only=yes",
        ])
        .arg(format!("--adminpass={SAMBA_PASSWORD}"));
    let ran = run(&mut cmd, None, PROVISION_TIMEOUT).expect("samba-tool domain provision");
    assert!(
        ran.success(),
        "samba-tool domain provision: {}",
        ran.output()
    );
    let smb_conf = d.join("etc/smb.conf");
    confine(&smb_conf, &d);
    smb_conf
}

/// Puts the three ports into smb.conf's [global] section (replacing any there).
fn set_ports(smb_conf: &Path, dns: u16, kdc: u16, kpasswd: u16) {
    let text = std::fs::read_to_string(smb_conf).expect("read smb.conf");
    let mut out = String::new();
    for line in text.lines() {
        let key = line.trim().split('=').next().unwrap_or("").trim();
        if matches!(
            key,
            "dns port" | "krb5 port" | "kpasswd port" | "rpc server dynamic port range"
        ) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[global]" {
            // The RPC endpoints' ports default to 49152 and up, inside Linux's ephemeral range,
            // where an earlier test's connection in TIME_WAIT can hold one (seen in CI). Below
            // 32768 no client port is ever picked; the range moves with the KDC port, so a retry
            // gets another one.
            let rpc_low = 20_000 + (kdc % 100) * 100;
            out.push_str(&format!(
                "\tdns port = {dns}\n\tkrb5 port = {kdc}\n\tkpasswd port = {kpasswd}\n\
                 \trpc server dynamic port range = {rpc_low}-{}\n",
                rpc_low + 99
            ));
        }
    }
    write_file(smb_conf, &out);
}

/// Starts `samba -i` and waits for DNS, the KDC and then the RPC endpoint mapper.
fn run_samba(smb_conf: &Path, dns_port: u16, kdc_port: u16) -> Result<ServerProcess, PortClash> {
    let args = [OsStr::new("-i"), OsStr::new("-s"), smb_conf.as_os_str()];
    let mut process = ServerProcess::spawn(
        "samba",
        server_dir("samba-run"),
        &require("samba"),
        &args,
        Vec::new(),
    );
    let dns = SocketAddr::from((LOOPBACK, dns_port));
    let kdc = SocketAddr::from((LOOPBACK, kdc_port));
    process.wait_ready(&[CLASH_MARKER], &[], None, || {
        try_soa_serial(dns, "samba.test")?;
        TcpStream::connect_timeout(&kdc, Duration::from_millis(200))
            .map(drop)
            .map_err(|e| format!("{kdc}: {e}"))
    })?;
    // The RPC endpoint mapper (`samba-tool dns` talks to it) comes up last, and slowly on a
    // busy machine: a bounded poll of its own.
    let rpc = SocketAddr::from((LOOPBACK, 135));
    let started = Instant::now();
    while let Err(e) = TcpStream::connect_timeout(&rpc, Duration::from_millis(200)) {
        if process.logs().contains(CLASH_MARKER) {
            return Err(PortClash {
                log_tail: process.log_tail(40),
            });
        }
        if process.has_exited() || started.elapsed() > RPC_READY {
            panic!(
                "samba: {rpc} did not answer within {RPC_READY:?} ({e}; is another Samba running?)\n{}",
                process.log_tail(40)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(process)
}

/// Keeps the DC to itself: no forwarder (provisioning copied the host's resolver there), only
/// the services the tests need, and every runtime file under its own directory.
fn confine(smb_conf: &Path, dir: &Path) {
    let text = std::fs::read_to_string(smb_conf).expect("read smb.conf");
    let d = dir.display();
    let mut out = String::new();
    for line in text.lines() {
        let key = line.trim().split('=').next().unwrap_or("").trim();
        if matches!(key, "dns forwarder" | "log file") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[global]" {
            out.push_str(&format!(
                "\tdns forwarder =\n\tserver services = kdc, dns, rpc\n\tlog file = {d}/log.%m\n\tpid directory = {d}/run\n\tncalrpc dir = {d}/ncalrpc\n\twinbindd socket directory = {d}/winbindd\n"
            ));
        }
    }
    for sub in ["run", "ncalrpc", "winbindd"] {
        std::fs::create_dir_all(dir.join(sub)).expect("create a Samba runtime directory");
    }
    write_file(smb_conf, &out);
}
