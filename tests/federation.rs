//! Federation end to end: a real remote XMPP server (Prosody), resolving
//! `_xmpp-server._tcp.contoso.test` the way remote servers do, federates with whichever Edge pool
//! DNS names, through pre-provisioning, a pool outage, a staged failover and a failback.
//!
//! The remote resolves through `/etc/resolv.conf` and port 53, so the test runs itself again in
//! a private network and mount namespace (`unshare --net --mount`): there, BIND answers on
//! 127.0.0.1:53, a bind mount points `/etc/resolv.conf` at it, and nothing touches the host's
//! resolver or ports. Each pool's own log says which pool a federation reached, not just "pong".

mod support;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::certs::Leaf;
use support::process::{make_dir, server_dir, write_file, ServerProcess};
use support::tools::{require, run, running_as_root, xmppdns};
use support::tsig::TsigKey;

/// Set in the copy of this test that runs inside the namespaces.
const INSIDE: &str = "XMPPDNS_FEDERATION_NAMESPACE";
const TEST_NAME: &str = "a_remote_server_follows_provisioning_outage_failover_and_failback";

/// Every TTL in the topology: remote caches expire within seconds.
const TTL: u32 = 5;
const POOL1: &str = "127.0.0.10";
const POOL2: &str = "127.0.0.20";
const REMOTE: &str = "127.0.0.30";
/// The log line of a pool that accepted federation from the remote.
const ACCEPTED: &str = "Incoming s2s connection remote.test->contoso.test complete";

#[test]
fn a_remote_server_follows_provisioning_outage_failover_and_failback() {
    if std::env::var_os(INSIDE).is_none() {
        run_inside_namespaces();
        return;
    }
    let lab = Lab::start();

    // 1. Pre-provisioning: one SRV record per pool, the active pool first; the remote reaches it.
    lab.xmppdns(&["apply", lab.topology(), "--yes"]);
    assert_eq!(
        lab.srv(),
        [
            "10 0 5269 edge1.contoso.test.",
            "20 0 5269 edge2.contoso.test."
        ]
    );
    let mut pool1 = Some(Pool::start(POOL1));
    let mut pool2 = Some(Pool::start(POOL2));
    let mut remote = Remote::start();
    remote.ping();
    assert_eq!(accepted(&pool1), 1, "pool 1 (active) took the federation");
    assert_eq!(accepted(&pool2), 0, "pool 2 (standby) did not");

    // 2. The pre-provisioning promise: pool 1 goes down and, with no DNS change, the remote
    // falls back to pool 2 by SRV priority. No wait for the TTL is needed: the RRset the remote
    // may still cache already names pool 2 second, and pool 1 refuses connections at once.
    drop(pool1.take());
    remote.ping();
    assert_eq!(accepted(&pool2), 1, "the remote fell back to pool 2");

    // 3. Staged failover to pool 2, in the procedure's order: its service is stopped while DNS
    // changes, started afterwards, then checked. Pool 1 then comes back; a remote with a fresh
    // cache (a new process) still reaches pool 2 first.
    drop(pool2.take());
    lab.xmppdns(&[
        "failover",
        lab.topology(),
        "--to",
        "EdgePool2",
        "--stage",
        "dns",
        "--yes",
    ]);
    pool2 = Some(Pool::start(POOL2));
    let verified = lab.xmppdns(&[
        "failover",
        lab.topology(),
        "--to",
        "EdgePool2",
        "--stage",
        "verify",
        "--verify-timeout",
        "30",
    ]);
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("Verified."),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    lab.verify_pool_answers(POOL2);
    assert_eq!(lab.federation_a(), [POOL2]);
    assert_eq!(lab.srv()[0], "10 0 5269 edge2.contoso.test.");
    pool1 = Some(Pool::start(POOL1));
    remote = remote.restart();
    remote.ping();
    assert_eq!(accepted(&pool2), 1, "pool 2 leads after the failover");
    assert_eq!(accepted(&pool1), 0, "pool 1 is back but no longer first");

    // 4. Failback: pool 1 leads again for a remote with a fresh cache.
    lab.xmppdns(&["failback", lab.topology(), "--stage", "dns", "--yes"]);
    lab.xmppdns(&["failback", lab.topology(), "--stage", "verify"]);
    assert_eq!(lab.federation_a(), [POOL1]);
    remote = remote.restart();
    remote.ping();
    assert_eq!(accepted(&pool1), 1, "pool 1 leads after the failback");
    assert_eq!(accepted(&pool2), 1, "pool 2 got nothing more");

    // 5. A DR drill on the same setup, both pools up: over to pool 2 and back, verified, with
    // a report; afterwards a remote with a fresh cache reaches pool 1 again.
    let report = lab.dir.path().join("drill.json");
    lab.xmppdns(&[
        "drill",
        lab.topology(),
        "--to",
        "EdgePool2",
        "--hold",
        "1",
        "--yes",
        "--report",
        report.to_str().unwrap(),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(doc["passed"], true, "{doc:#}");
    assert_eq!(doc["times"].as_array().map(Vec::len), Some(2), "{doc:#}");
    assert_eq!(lab.federation_a(), [POOL1]);
    remote = remote.restart();
    remote.ping();
    assert_eq!(accepted(&pool1), 2, "pool 1 leads after the drill");
    drop((remote, pool1, pool2));
}

/// Runs this test again inside a new network and mount namespace, and fails with its output.
fn run_inside_namespaces() {
    let unshare = require("unshare");
    let mut command = Command::new(&unshare);
    if !running_as_root() {
        command.arg("--map-root-user");
    }
    let output = command
        .args(["--net", "--mount", "--fork", "--"])
        .arg(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
        .env(INSIDE, "1")
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the federation test inside `unshare --net --mount` failed ({}); it needs root (CI runs \
         .ci/run as root) or unprivileged user namespaces:\n{text}",
        output.status
    );
    assert!(
        text.contains("test result: ok. 1 passed"),
        "the test did not run inside the namespaces:\n{text}"
    );
}

/// BIND on 127.0.0.1:53 serving `contoso.test` (updated by the tool) and a static `remote.test`,
/// `/etc/resolv.conf` pointed at it (in this mount namespace only), and the topology.
struct Lab {
    dir: tempfile::TempDir,
    topology: String,
    _bind: ServerProcess,
}

impl Lab {
    fn start() -> Lab {
        let ip = require("ip");
        let up = run(
            Command::new(ip).args(["link", "set", "lo", "up"]),
            None,
            Duration::from_secs(10),
        )
        .expect("ip link set lo up");
        assert!(up.success(), "ip link set lo up: {}", up.output());
        let dir = tempfile::tempdir().expect("temp dir");
        point_resolv_conf_at_loopback(dir.path());
        let key = TsigKey::generate("federation-key", "hmac-sha256");
        write_file(&dir.path().join("federation.key"), &key.bind_conf());
        let bind = start_bind(&key);
        let topology = dir.path().join("topology.json");
        write_file(&topology, &topology_json());
        Lab {
            topology: topology.display().to_string(),
            dir,
            _bind: bind,
        }
    }

    fn topology(&self) -> &str {
        &self.topology
    }

    /// Runs xmppdns and requires exit 0.
    fn xmppdns(&self, args: &[&str]) -> Output {
        let output = xmppdns()
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run xmppdns");
        assert!(
            output.status.success(),
            "xmppdns {args:?}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn srv(&self) -> Vec<String> {
        let mut records = dig("_xmpp-server._tcp.contoso.test", "SRV");
        records.sort();
        records
    }

    fn federation_a(&self) -> Vec<String> {
        dig("xmpp.contoso.test", "A")
    }

    /// The verify step of the staged failover: the new pool answers XMPP on 5269, asked with
    /// the tool's own probe.
    fn verify_pool_answers(&self, address: &str) {
        let addr: SocketAddr = format!("{address}:5269").parse().unwrap();
        let result = xmppdns::probe::probe(addr, "contoso.test", Duration::from_secs(5));
        assert_eq!(
            result.status,
            xmppdns::probe::ProbeStatus::Xmpp,
            "{address} answers XMPP: {result:?}"
        );
    }
}

/// `/etc/resolv.conf` -> a file naming 127.0.0.1, by a bind mount that exists only in this
/// mount namespace (the host's file is untouched).
fn point_resolv_conf_at_loopback(dir: &Path) {
    let resolv = dir.join("resolv.conf");
    write_file(&resolv, "nameserver 127.0.0.1\n");
    let mounted = run(
        Command::new(require("mount"))
            .arg("--bind")
            .arg(&resolv)
            .arg("/etc/resolv.conf"),
        None,
        Duration::from_secs(10),
    )
    .expect("mount --bind resolv.conf");
    assert!(mounted.success(), "mount --bind: {}", mounted.output());
}

fn zone(origin: &str, records: &str) -> String {
    format!(
        "$TTL {TTL}\n@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 60 60 600 {TTL}\n\
         @ IN NS ns1.{origin}.\nns1 IN A 127.0.0.1\n{records}"
    )
}

fn start_bind(key: &TsigKey) -> ServerProcess {
    let dir = server_dir("named");
    let d = dir.path().display().to_string();
    write_file(&dir.path().join("key.conf"), &key.bind_conf());
    write_file(
        &dir.path().join("contoso.test.db"),
        &zone("contoso.test", ""),
    );
    write_file(
        &dir.path().join("remote.test.db"),
        &zone(
            "remote.test",
            &format!("_xmpp-server._tcp IN SRV 0 0 5269 xmpp.remote.test.\nxmpp IN A {REMOTE}\n"),
        ),
    );
    let mut conf = String::new();
    let _ = writeln!(conf, "include \"{d}/key.conf\";");
    let _ = writeln!(
        conf,
        "options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/session.key\"; \
         listen-on port 53 {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; recursion no; \
         dnssec-validation no; notify no; }};"
    );
    let _ = writeln!(conf, "controls {{ }};");
    let _ = writeln!(
        conf,
        "zone \"contoso.test\" {{ type primary; file \"contoso.test.db\"; \
         allow-update {{ key {name}; }}; allow-transfer {{ key {name}; }}; }};",
        name = key.name
    );
    let _ = writeln!(
        conf,
        "zone \"remote.test\" {{ type primary; file \"remote.test.db\"; }};"
    );
    let conf_path = dir.path().join("named.conf");
    write_file(&conf_path, &conf);
    let named = require("named");
    let args = [OsStr::new("-g"), OsStr::new("-c"), conf_path.as_os_str()];
    let mut process = ServerProcess::spawn("named", dir, &named, &args, Vec::new());
    process
        .wait_ready(
            &[],
            &["exiting (due to fatal error)"],
            None,
            || match support::dns::try_dig(dns_server(), "remote.test", "SOA") {
                Ok(answer) if !answer.is_empty() => Ok(()),
                Ok(_) => Err("no SOA yet".into()),
                Err(e) => Err(e),
            },
        )
        .unwrap_or_else(|_| panic!("port 53 is taken inside a fresh network namespace?"));
    process
}

fn dns_server() -> SocketAddr {
    "127.0.0.1:53".parse().unwrap()
}

fn dig(name: &str, rtype: &str) -> Vec<String> {
    support::dns::dig(dns_server(), name, rtype)
}

fn topology_json() -> String {
    serde_json::json!({
        "zones": ["contoso.test"],
        "sip_domains": ["contoso.test"],
        "active_pool": "EdgePool1",
        "federation": {"name": "xmpp.contoso.test", "ttl": TTL},
        "pools": [
            {"name": "EdgePool1", "site": "Site1", "fqdn": "edge1.contoso.test",
             "ipv4": [POOL1], "servers": ["edgeserver1.contoso.test"]},
            {"name": "EdgePool2", "site": "Site2", "fqdn": "edge2.contoso.test",
             "ipv4": [POOL2], "servers": ["edgeserver2.contoso.test"]}
        ],
        "ttl": TTL,
        "manage_target_addresses": true,
        "nameservers": ["127.0.0.1:53"],
        "provider": {"kind": "rfc2136", "server": "127.0.0.1:53", "key_file": "federation.key"}
    })
    .to_string()
}

/// A Prosody on `address`:5269 serving `host` over s2s with dialback, with the admin shell for
/// pings. With a certificate (the pools: failover checks that it covers the SIP domain) it
/// offers STARTTLS; without one (the remote) it has no TLS. Encryption is never required, and
/// dialback authenticates, so a self-signed certificate does not stop federation: the test is
/// about which server DNS leads to.
fn start_prosody(
    kind: &'static str,
    address: &str,
    host: &str,
    certificate: Option<&Leaf>,
) -> ServerProcess {
    let dir = server_dir(kind);
    let d = dir.path().display().to_string();
    make_dir(&dir.path().join("data"));
    let tls = match certificate {
        Some(leaf) => {
            let certs = dir.path().join("certs");
            make_dir(&certs);
            write_file(&certs.join(format!("{host}.crt")), &leaf.cert_pem);
            write_file(&certs.join(format!("{host}.key")), &leaf.key_pem);
            format!(
                "certificates = \"{d}/certs\"\nmodules_enabled = {{ \"tls\", \"dialback\", \"admin_shell\", \"ping\" }}\nmodules_disabled = {{ \"s2s_bidi\" }}\n"
            )
        }
        None => "modules_enabled = { \"dialback\", \"admin_shell\", \"ping\" }\nmodules_disabled = { \"tls\", \"s2s_bidi\" }\n".to_string(),
    };
    let conf = format!(
        "run_as_root = true\ndaemonize = false\npidfile = \"{d}/prosody.pid\"\n\
         data_path = \"{d}/data\"\ninterfaces = {{ \"{address}\" }}\ns2s_ports = {{ 5269 }}\n\
         c2s_ports = {{ }}\nhttp_ports = {{ }}\nhttps_ports = {{ }}\n\
         s2s_require_encryption = false\ns2s_secure_auth = false\n{tls}\
         log = {{ {{ levels = {{ min = \"info\" }}, to = \"file\", filename = \"{d}/prosody.log\" }} }}\n\
         VirtualHost \"{host}\"\n"
    );
    let conf_path = dir.path().join("prosody.cfg.lua");
    write_file(&conf_path, &conf);
    let log = dir.path().join("prosody.log");
    let args = [
        OsStr::new("-F"),
        OsStr::new("--config"),
        conf_path.as_os_str(),
    ];
    let mut process = ServerProcess::spawn(kind, dir, &require("prosody"), &args, vec![log]);
    let addr: SocketAddr = format!("{address}:5269").parse().unwrap();
    process
        .wait_ready(&["Failed to open server port"], &[], None, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .map(drop)
                .map_err(|e| format!("{addr}: {e}"))
        })
        .unwrap_or_else(|clash| panic!("{addr} is taken:\n{}", clash.log_tail));
    process
}

/// An Edge pool's XMPP endpoint, serving the SIP domain.
struct Pool(ServerProcess);

impl Pool {
    fn start(address: &str) -> Pool {
        let certificate = support::certs::self_signed(&["contoso.test"]);
        Pool(start_prosody(
            "prosody-pool",
            address,
            "contoso.test",
            Some(&certificate),
        ))
    }
}

/// How many federations from the remote this pool (this process) accepted, from its own log.
fn accepted(pool: &Option<Pool>) -> usize {
    let pool = pool.as_ref().expect("the pool is running");
    pool.0.logs().matches(ACCEPTED).count()
}

/// The remote XMPP server, `remote.test` on 127.0.0.30.
struct Remote {
    process: ServerProcess,
    config: PathBuf,
}

impl Remote {
    fn start() -> Remote {
        let process = start_prosody("prosody-remote", REMOTE, "remote.test", None);
        let config = process.dir().join("prosody.cfg.lua");
        Remote { process, config }
    }

    /// A new process: nothing cached, no connection open.
    fn restart(self) -> Remote {
        drop(self);
        Remote::start()
    }

    /// `xmpp:ping` from remote.test to contoso.test through the admin shell: the remote resolves
    /// the SRV records and federates with whichever pool DNS leads it to.
    fn ping(&mut self) {
        let mut shell = Command::new(require("prosodyctl"));
        shell.arg("--config").arg(&self.config).arg("shell");
        let ran = run(
            &mut shell,
            Some("xmpp:ping('remote.test', 'contoso.test', 8)\n"),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.process.log_tail(40)));
        assert!(
            ran.output().contains("pong from contoso.test"),
            "no pong:\n{}\n{}",
            ran.output(),
            self.process.log_tail(40)
        );
    }
}
