//! An MIT Kerberos KDC (`krb5kdc -n`) on 127.0.0.1, and BIND 9 accepting GSS-TSIG updates
//! (`tkey-gssapi-keytab`) from its principals. Everything Kerberos reads or writes lives in
//! temporary directories, named by `KRB5_CONFIG`, `KRB5_KDC_PROFILE` and `KRB5CCNAME`: nothing
//! under /etc is used or changed.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{
    free_port, server_dir, start_with_retries, write_file, PortClash, ServerProcess, Transport,
    LOOPBACK,
};
use super::tools::{require, run};

/// The realm of the MIT KDC.
pub const REALM: &str = "CONTOSO.TEST";
/// The password of every user principal the tests make.
pub const PASSWORD: &str = "Xmppdns-Test-1";
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// A running KDC. Stopped and its directory removed on drop.
pub struct Kdc {
    process: ServerProcess,
    pub port: u16,
    pub realm: String,
    /// The client-side krb5.conf (also the acceptor's: BIND reads it too).
    pub krb5_conf: PathBuf,
    kdc_conf: PathBuf,
}

/// `KRB5_CONFIG`/`KRB5_KDC_PROFILE` for a Kerberos tool, through `env` so the child keeps
/// the same process id (a server started this way is stopped by that id).
fn with_env(program: &Path, env: &[(&str, &Path)], args: &[&OsStr]) -> Vec<OsString> {
    let mut all: Vec<OsString> = env
        .iter()
        .map(|(k, v)| {
            let mut s = OsString::from(format!("{k}="));
            s.push(v.as_os_str());
            s
        })
        .collect();
    all.push(program.as_os_str().to_owned());
    all.extend(args.iter().map(|a| a.to_os_string()));
    all
}

/// The client krb5.conf for `realm` with its KDC on 127.0.0.1:`port` (no DNS lookups, no
/// reverse lookups: the principals are used as written).
pub fn krb5_conf(realm: &str, port: u16) -> String {
    format!(
        "[libdefaults]\n default_realm = {realm}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n udp_preference_limit = 1\n[realms]\n {realm} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
    )
}

impl Kdc {
    /// A KDC for `REALM` with the user principals `users` (password `PASSWORD`).
    pub fn start(users: &[&str]) -> Kdc {
        start_with_retries("MIT KDC", || Kdc::try_start(users))
    }

    fn try_start(users: &[&str]) -> Result<Kdc, PortClash> {
        let krb5kdc = require("krb5kdc");
        let dir = server_dir("kdc");
        let d = dir.path().to_path_buf();
        let port = free_port(Transport::TcpAndUdp);
        let krb5_conf = d.join("krb5.conf");
        let kdc_conf = d.join("kdc.conf");
        write_file(&krb5_conf, &krb5_conf_text(port));
        write_file(
            &kdc_conf,
            &format!(
                "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n[realms]\n {REALM} = {{\n  database_name = {0}/principal\n  key_stash_file = {0}/stash\n  acl_file = {0}/kadm5.acl\n  max_life = 1d\n }}\n[logging]\n kdc = FILE:{0}/kdc.log\n",
                d.display()
            ),
        );
        write_file(&d.join("kadm5.acl"), "");
        let env = [
            ("KRB5_CONFIG", krb5_conf.as_path()),
            ("KRB5_KDC_PROFILE", kdc_conf.as_path()),
        ];
        tool(
            &env,
            "kdb5_util",
            &["create", "-s", "-r", REALM, "-P", "master-password-1"],
        );
        for user in users {
            tool(
                &env,
                "kadmin.local",
                &["-q", &format!("addprinc -pw {PASSWORD} {user}")],
            );
        }
        let args = with_env(&krb5kdc, &env, &[OsStr::new("-n")]);
        let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        let log = d.join("kdc.log");
        let mut process =
            ServerProcess::spawn("krb5kdc", dir, Path::new("/usr/bin/env"), &args, vec![log]);
        let addr = SocketAddr::from((LOOPBACK, port));
        process.wait_ready(
            &["Address already in use", "Cannot bind"],
            &[],
            Some("commencing operation"),
            || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        )?;
        Ok(Kdc {
            process,
            port,
            realm: REALM.to_string(),
            krb5_conf,
            kdc_conf,
        })
    }

    fn env(&self) -> [(&'static str, &Path); 2] {
        [
            ("KRB5_CONFIG", self.krb5_conf.as_path()),
            ("KRB5_KDC_PROFILE", self.kdc_conf.as_path()),
        ]
    }

    /// A service principal with a random key, exported to `keytab`.
    pub fn add_service(&self, principal: &str, keytab: &Path) {
        let env = self.env();
        tool(
            &env,
            "kadmin.local",
            &["-q", &format!("addprinc -randkey {principal}")],
        );
        tool(
            &env,
            "kadmin.local",
            &["-q", &format!("ktadd -k {} {principal}", keytab.display())],
        );
    }

    /// A user principal with a random key, exported to `keytab` (unattended runs).
    pub fn add_keytab_user(&self, principal: &str, keytab: &Path) {
        self.add_service(principal, keytab);
    }

    /// `kinit user` into the ticket cache file `ccache`, optionally with a lifetime (`-l`).
    pub fn kinit(&self, user: &str, ccache: &Path, lifetime: Option<&str>) {
        let mut cmd = Command::new(require("kinit"));
        cmd.env("KRB5_CONFIG", &self.krb5_conf)
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()));
        if let Some(l) = lifetime {
            cmd.args(["-l", l]);
        }
        cmd.arg(user);
        let ran = run(&mut cmd, Some(&format!("{PASSWORD}\n")), TOOL_TIMEOUT)
            .unwrap_or_else(|e| panic!("kinit {user}: {e}"));
        assert!(ran.success(), "kinit {user}: {}", ran.output());
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

fn krb5_conf_text(port: u16) -> String {
    krb5_conf(REALM, port)
}

/// Runs a Kerberos admin tool with `env`, panicking with its output on failure.
fn tool(env: &[(&str, &Path)], program: &str, args: &[&str]) {
    let mut cmd = Command::new(require(program));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    let ran =
        run(&mut cmd, None, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(ran.success(), "{program} {args:?}: {}", ran.output());
}

/// BIND 9 taking GSS-TSIG updates: `tkey-gssapi-keytab` holds `DNS/<MNAME>`, each zone's
/// `update-policy` grants `grants` (principals) everything; `unsigned_zones` take unsigned
/// updates from 127.0.0.1 instead (for `auth: none`).
pub struct GssBind {
    process: ServerProcess,
    pub port: u16,
    /// `env KRB5_CONFIG=... named -g -c CONF`, for `restart`.
    args: Vec<OsString>,
    zones: Vec<String>,
    /// Stopped instances, kept so that their directory (config, zones, journals) stays.
    retired: Vec<ServerProcess>,
}

impl GssBind {
    pub fn start(
        kdc: &Kdc,
        zones: &[(&str, &str)],
        grants: &[&str],
        unsigned_zones: &[(&str, &str)],
    ) -> GssBind {
        start_with_retries("BIND with GSS-TSIG", || {
            GssBind::try_start(kdc, zones, grants, unsigned_zones)
        })
    }

    fn try_start(
        kdc: &Kdc,
        zones: &[(&str, &str)],
        grants: &[&str],
        unsigned_zones: &[(&str, &str)],
    ) -> Result<GssBind, PortClash> {
        let named = require("named");
        let dir = server_dir("gssbind");
        let d = dir.path().to_path_buf();
        let port = free_port(Transport::TcpAndUdp);
        let keytab = d.join("dns.keytab");
        let mut mnames = std::collections::BTreeSet::new();
        for (zone, text) in zones.iter().chain(unsigned_zones) {
            write_file(&d.join(format!("{zone}.db")), text);
            if mnames.insert(mname_of(text, zone)) {
                kdc.add_service(&format!("DNS/{}", mname_of(text, zone)), &keytab);
            }
        }
        let mut conf = String::new();
        let _ = writeln!(conf, "options {{\n  directory \"{0}\"; pid-file \"{0}/named.pid\"; session-keyfile \"{0}/session.key\";", d.display());
        let _ = writeln!(
            conf,
            "  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};"
        );
        let _ = writeln!(conf, "  recursion no; dnssec-validation no; notify no;");
        let _ = writeln!(
            conf,
            "  tkey-gssapi-keytab \"{}\";\n}};\ncontrols {{ }};",
            keytab.display()
        );
        let policy: String = grants
            .iter()
            .map(|p| format!("grant {p} wildcard * ANY; "))
            .collect();
        for (zone, _) in zones {
            let _ = writeln!(conf, "zone \"{zone}\" {{ type primary; file \"{zone}.db\"; update-policy {{ {policy}}}; allow-transfer {{ none; }}; }};");
        }
        for (zone, _) in unsigned_zones {
            let _ = writeln!(conf, "zone \"{zone}\" {{ type primary; file \"{zone}.db\"; allow-update {{ 127.0.0.1; }}; allow-transfer {{ none; }}; }};");
        }
        let conf_path = d.join("named.conf");
        write_file(&conf_path, &conf);
        let env = [
            ("KRB5_CONFIG", kdc.krb5_conf.as_path()),
            ("KRB5RCACHETYPE", Path::new("none")),
        ];
        let args = with_env(
            &named,
            &env,
            &[OsStr::new("-g"), OsStr::new("-c"), conf_path.as_os_str()],
        );
        let zones: Vec<String> = zones
            .iter()
            .chain(unsigned_zones)
            .map(|(z, _)| z.to_string())
            .collect();
        let process = spawn_named(dir, &args, port, &zones)?;
        Ok(GssBind {
            process,
            port,
            args,
            zones,
            retired: Vec::new(),
        })
    }

    /// Stops named and starts it again on the same port and files: it keeps the zones (and
    /// their journals) but forgets every GSS-TSIG context.
    pub fn restart(&mut self) {
        self.process.stop();
        // The port was just released; a moment's contention for it is retried, bounded.
        let mut last = String::new();
        for _ in 0..super::process::MAX_START_ATTEMPTS {
            let dir = server_dir("gssbind-restarted");
            match spawn_named(dir, &self.args, self.port, &self.zones) {
                Ok(process) => {
                    self.retired
                        .push(std::mem::replace(&mut self.process, process));
                    return;
                }
                Err(clash) => last = clash.log_tail,
            }
        }
        panic!("named could not take its port {} back:\n{last}", self.port);
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

fn spawn_named(
    dir: tempfile::TempDir,
    args: &[OsString],
    port: u16,
    zones: &[String],
) -> Result<ServerProcess, PortClash> {
    let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let mut process =
        ServerProcess::spawn("named", dir, Path::new("/usr/bin/env"), &args, Vec::new());
    let addr = SocketAddr::from((LOOPBACK, port));
    process.wait_ready(
        &[
            "unable to listen on any configured interfaces",
            "address in use",
        ],
        &["not loaded due to errors"],
        Some("all zones loaded"),
        || {
            zones
                .iter()
                .try_for_each(|z| super::dns::try_soa_serial(addr, z).map(drop))
        },
    )?;
    Ok(process)
}

/// The SOA MNAME of a zone text written by `zone_text` (`ns1.ZONE.`) or by hand.
fn mname_of(text: &str, zone: &str) -> String {
    text.lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let at = fields.iter().position(|f| *f == "SOA")?;
            fields
                .get(at + 1)
                .map(|m| m.trim_end_matches('.').to_string())
        })
        .unwrap_or_else(|| format!("ns1.{zone}"))
}
