//! Failover, failback and rollback end to end: a BIND primary NOTIFYing a Knot secondary,
//! Prosody as the new pool's XMPP endpoint, the CLI as users run it; and one failover through
//! the PowerDNS API provider.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};
use support::{
    bind_with_knot_secondary, dig, free_port, http_error_listener, nsupdate, wait_for_rdata,
    zone_text, Bind, Knot, PowerDns, Prosody, Transport, TsigKey, LOOPBACK,
};
use xmppdns::error::exit;
use xmppdns::failover;
use xmppdns::journal::{self, Journal};
use xmppdns::provider::Environment;
use xmppdns::{app, Error};

/// EdgePool1's address: only DNS data, nothing is ever sent to it.
const OLD_ADDRESS: &str = "127.0.0.2";
/// EdgePool2's address: where Prosody listens.
const NEW_ADDRESS: &str = "127.0.0.1";
const ZONES: [&str; 2] = ["contoso.com", "fabrikam.com"];
const WAIT: Duration = Duration::from_secs(10);

/// The zones as pre-provisioned with EdgePool1 active: SRV records for both pools.
fn zones(port: u16) -> Vec<(&'static str, String)> {
    let srv = format!(
        "_xmpp-server._tcp 3600 IN SRV 10 0 {port} edgepool1.contoso.com.\n\
         _xmpp-server._tcp 3600 IN SRV 20 0 {port} edgepool2.contoso.com."
    );
    vec![
        (
            "contoso.com",
            zone_text(
                "contoso.com",
                1,
                &format!("xmpp 300 IN A {OLD_ADDRESS}\n{srv}"),
            ),
        ),
        ("fabrikam.com", zone_text("fabrikam.com", 1, &srv)),
    ]
}

/// A topology matching `zones(port)`, pushing to `server` with `key`, checking `nameservers`.
fn topology(dir: &Path, port: u16, provider: Value, nameservers: &[SocketAddr]) -> PathBuf {
    let value = json!({
        "zones": ZONES,
        "sip_domains": ZONES,
        "active_pool": "EdgePool1",
        "federation": {"name": "xmpp.contoso.com", "ttl": 300},
        "pools": [
            {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
             "ipv4": [OLD_ADDRESS], "servers": ["edge1a.contoso.com"]},
            {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com",
             "ipv4": [NEW_ADDRESS], "servers": ["edge2a.contoso.com", "edge2b.contoso.com"]}
        ],
        "srv": {"port": port},
        "nameservers": nameservers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "provider": provider,
    });
    let path = dir.join("topology.json");
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    path
}

fn rfc2136(dir: &Path, server: SocketAddr, key: &TsigKey) -> Value {
    std::fs::write(dir.join("key.conf"), key.bind_conf()).unwrap();
    json!({"kind": "rfc2136", "server": server.to_string(), "key_file": "key.conf",
           "timeout_ms": 2000, "attempts": 2})
}

fn run(dir: &Path, args: &[&str]) -> Output {
    support::xmppdns()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the xmppdns binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command exited with `code` and said `needle` on stderr.
fn assert_stderr(out: &Output, code: u8, needle: &str) {
    assert_exit(out, code);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(needle),
        "`{needle}` not on stderr: {}",
        text(out)
    );
}

fn assert_exit(out: &Output, code: u8) {
    assert_eq!(out.status.code(), Some(i32::from(code)), "{}", text(out));
}

/// The SRV records of a domain as a server serves them, lowest priority first.
fn srv(server: SocketAddr, domain: &str) -> Vec<String> {
    let mut records = dig(server, &format!("_xmpp-server._tcp.{domain}"), "SRV");
    records.sort_by_key(|r| r.split(' ').next().and_then(|p| p.parse::<u16>().ok()));
    records
}

fn federation(server: SocketAddr) -> Vec<String> {
    dig(server, "xmpp.contoso.com", "A")
}

/// BIND + Knot secondary + Prosody, and a topology for them in a temp dir.
struct Lab {
    dir: tempfile::TempDir,
    path: PathBuf,
    bind: Bind,
    knot: Option<Knot>,
    prosody: Prosody,
    key: TsigKey,
}

impl Lab {
    fn new() -> Lab {
        // Serving contoso.com only (a probe naming fabrikam.com gets host-unknown), with one
        // certificate for both SIP domains, as an Access Edge has: the failover gate checks
        // that it covers every domain.
        let prosody =
            Prosody::start_with_certificate(&["contoso.com"], &support::certs::self_signed(&ZONES));
        let key = TsigKey::generate("xmppdns-failover", "hmac-sha256");
        let zones = zones(prosody.port());
        let zone_refs: Vec<(&str, &str)> = zones.iter().map(|(z, t)| (*z, t.as_str())).collect();
        let (bind, knot) = bind_with_knot_secondary(&zone_refs, &key);
        let dir = tempfile::tempdir().unwrap();
        let provider = rfc2136(dir.path(), bind.addr(), &key);
        let path = topology(
            dir.path(),
            prosody.port(),
            provider,
            &[bind.addr(), knot.addr()],
        );
        Lab {
            dir,
            path,
            bind,
            knot: Some(knot),
            prosody,
            key,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        run(self.dir.path(), args)
    }

    fn path_arg(&self) -> String {
        self.path.display().to_string()
    }

    fn knot(&self) -> SocketAddr {
        self.knot.as_ref().unwrap().addr()
    }

    fn srv_line(&self, priority: u16, pool: u8) -> String {
        format!(
            "{priority} 0 {} edgepool{pool}.contoso.com.",
            self.prosody.port()
        )
    }

    fn journal(&self) -> Vec<journal::Entry> {
        Journal::open(&journal::default_path(&self.path))
            .unwrap()
            .entries()
            .unwrap()
    }

    fn active_pool(&self) -> String {
        let value: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.path).unwrap()).unwrap();
        value["active_pool"].as_str().unwrap().to_string()
    }

    /// Both servers serve EdgePool`pool` as the active pool, its SRV records leading.
    fn assert_served(&self, pool: u8) {
        let (address, other) = if pool == 1 {
            (OLD_ADDRESS, 2)
        } else {
            (NEW_ADDRESS, 1)
        };
        let expected_srv = [self.srv_line(10, pool), self.srv_line(20, other)];
        for server in [self.bind.addr(), self.knot()] {
            assert_eq!(federation(server), [address], "A at {server}");
            for domain in ZONES {
                assert_eq!(
                    srv(server, domain),
                    expected_srv,
                    "{domain} SRV at {server}"
                );
            }
        }
    }
}

#[test]
fn failover_moves_federation_everywhere_then_failback_restores_it() {
    let lab = Lab::new();
    lab.assert_served(1);
    let runbook = lab.dir.path().join("failover.ps1");

    let out = lab.run(&[
        "failover",
        &lab.path_arg(),
        "--to",
        "EdgePool2",
        "--yes",
        "--runbook",
        &runbook.display().to_string(),
    ]);
    assert_exit(&out, exit::OK);
    let stdout = stdout_of(&out);
    // The probe reached Prosody and saw STARTTLS.
    assert!(
        stdout.contains("XMPP answered, as contoso.com, STARTTLS offered"),
        "{}",
        text(&out)
    );
    // Every server is in the propagation table, and all of them converged.
    for server in [lab.bind.addr(), lab.knot()] {
        assert!(stdout.contains(&server.to_string()), "{}", text(&out));
    }
    assert!(
        stdout
            .contains("Every authoritative server serves the change (4 zone/server pairs checked"),
        "{}",
        text(&out)
    );
    // Propagation is checked, not assumed: what the table says, dig confirms.
    lab.assert_served(2);
    assert_eq!(lab.active_pool(), "EdgePool2");

    // SRV-only zone first, the federation's zone (with the A record) last.
    let entries = lab.journal();
    let zones: Vec<&str> = entries.iter().map(|e| e.zone.as_str()).collect();
    assert_eq!(zones, ["fabrikam.com.", "contoso.com."]);
    assert!(entries.iter().all(|e| e.applied && e.command == "failover"));

    let script = std::fs::read_to_string(&runbook).unwrap();
    let steps = [
        "Read-Host 'Stage 1:",
        "Stop-CsWindowsService -ComputerName 'edge2a.contoso.com'",
        "Stop-CsWindowsService -ComputerName 'edge2b.contoso.com'",
        "Read-Host 'Stage 2:",
        "$site = 'Site2'",
        "$edgeServer = 'edge2a.contoso.com'",
        "Parameters.ContainsKey('XmppExternalFederationRoute')",
        "Set-CsSite -Identity $site @route",
        "Get-CsManagementStoreReplicationStatus",
        "update xmpp.contoso.com. A: 127.0.0.2 -> 127.0.0.1",
        "Read-Host 'Stage 5:",
        "Start-CsWindowsService -ComputerName 'edge2a.contoso.com'",
        "} finally {",
    ];
    let mut last = 0;
    for step in steps {
        let at = script[last..]
            .find(step)
            .unwrap_or_else(|| panic!("`{step}` after byte {last} in:\n{script}"));
        last += at;
    }
    assert!(
        script.contains("$route = @{ XmppFederationRoute = 'EdgeServer:' + $edgeServer }"),
        "{script}"
    );

    // The same command again: the pool is already active, nothing to do and no runbook
    // (which would stop the live pool's services).
    let out = lab.run(&["failover", &lab.path_arg(), "--to", "EdgePool2", "--yes"]);
    assert_exit(&out, exit::OK);
    assert_eq!(
        stdout_of(&out),
        "EdgePool2 is already active; nothing to do.\n",
        "{}",
        text(&out)
    );
    assert_eq!(lab.journal().len(), 2, "nothing applied, nothing journaled");

    // Failback goes to the pool recorded in the journal, with the same guards: EdgePool1
    // (127.0.0.2) has no XMPP server, so --require-live refuses and nothing changes.
    let out = lab.run(&["failback", &lab.path_arg(), "--yes", "--require-live"]);
    assert_stderr(&out, exit::REFUSED, "no address of pool EdgePool1");
    lab.assert_served(2);
    // Once the operator says so, it goes; twice is the same as once.
    let out = lab.run(&["failback", &lab.path_arg(), "--yes", "--skip-probe"]);
    assert_exit(&out, exit::OK);
    assert!(
        stdout_of(&out).contains("EdgePool2 (site Site2) -> EdgePool1"),
        "{}",
        text(&out)
    );
    lab.assert_served(1);
    assert_eq!(lab.active_pool(), "EdgePool1");
    let out = lab.run(&["failback", &lab.path_arg(), "--yes", "--skip-probe"]);
    assert_exit(&out, exit::OK);
    assert_eq!(
        stdout_of(&out),
        "EdgePool1 is already active; nothing to do.\n"
    );
    lab.assert_served(1);
}

#[test]
fn a_stopped_secondary_is_reported_and_the_exit_code_says_so() {
    let mut lab = Lab::new();
    let knot = lab.knot.take().unwrap();
    let knot_addr = knot.addr();
    drop(knot);
    let out = lab.run(&[
        "failover",
        &lab.path_arg(),
        "--to",
        "EdgePool2",
        "--yes",
        "--propagation-timeout",
        "2",
    ]);
    assert_exit(&out, exit::NOT_PROPAGATED);
    let stdout = stdout_of(&out);
    let knot_rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('│') && l.contains(&knot_addr.to_string()))
        .collect();
    assert_eq!(knot_rows.len(), 2, "one row per zone: {stdout}");
    assert!(knot_rows.iter().all(|row| row.contains(" NO ")), "{stdout}");
    assert!(
        stdout.contains("2 of 4 zone/server pair(s) did NOT serve the change in time"),
        "{stdout}"
    );
    // The primary did get it, and the runbook is still printed.
    assert_eq!(federation(lab.bind.addr()), [NEW_ADDRESS]);
    assert!(stdout.contains("Start-CsWindowsService"), "{stdout}");
}

#[test]
fn the_probe_refuses_a_closed_port_a_non_xmpp_listener_and_a_stream_error_and_nothing_changes() {
    let lab = Lab::new();
    let (garbage, listener) = http_error_listener();
    let prosody_port = lab.prosody.port();
    let closed_port = free_port(Transport::Tcp);
    for (port, first_domain, says) in [
        (closed_port, "contoso.com", "connection refused"),
        (
            garbage.port(),
            "contoso.com",
            "the answer is not XMPP: \"HTTP/1.1 400 Bad Request",
        ),
        // Prosody answers, but does not serve the domain the probe names.
        (
            prosody_port,
            "fabrikam.com",
            "with stream error <host-unknown/>",
        ),
    ] {
        // The same DNS, but the pool's port 5269 is `port` and the probe names `first_domain`.
        let mut value: Value =
            serde_json::from_str(&std::fs::read_to_string(&lab.path).unwrap()).unwrap();
        value["srv"]["port"] = json!(port);
        let second = if first_domain == "contoso.com" {
            "fabrikam.com"
        } else {
            "contoso.com"
        };
        value["sip_domains"] = json!([first_domain, second]);
        let path = lab.dir.path().join(format!("probe-{port}.json"));
        std::fs::write(&path, value.to_string()).unwrap();
        let out = lab.run(&[
            "failover",
            &path.display().to_string(),
            "--to",
            "EdgePool2",
            "--yes",
            "--require-live",
        ]);
        assert_exit(&out, exit::REFUSED);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no address of pool EdgePool2 answered as XMPP")
                && stderr.contains(&format!("127.0.0.1:{port}"))
                && stderr.contains(says),
            "{}",
            text(&out)
        );
        assert!(stderr.contains("--force"), "says how to go on: {stderr}");
    }
    listener.join().unwrap();
    lab.assert_served(1);
    assert!(lab.journal().is_empty(), "nothing was applied");
    assert_eq!(lab.active_pool(), "EdgePool1");
}

#[test]
fn a_concurrent_change_of_the_a_record_is_refused_not_overwritten() {
    let lab = Lab::new();
    let env = Environment::system_without_proxy();
    let options = failover::Options {
        to: Some("EdgePool2".into()),
        promote: true,
        probe_before: failover::ProbeBefore::Gate,
        force: false,
        probe_timeout: Duration::from_secs(2),
        journal: None,
    };
    let prepared = failover::prepare(&lab.path, &options, &env, "failover").unwrap();
    // Someone else repoints the federation record after we read it.
    nsupdate(
        lab.bind.addr(),
        &lab.key,
        "zone contoso.com\nupdate delete xmpp.contoso.com. A\nupdate add xmpp.contoso.com. 300 IN A 127.0.0.9",
    );
    let error = match app::execute(prepared.apply) {
        Ok(_) => panic!("a failover over someone else's change must be refused"),
        Err(error) => error,
    };
    assert_eq!(error.exit_code(), exit::REFUSED, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("xmpp.contoso.com.") && message.contains("127.0.0.9"),
        "names the RRset and what it holds now: {message}"
    );
    assert!(matches!(error, Error::PartlyApplied { .. }), "{error:?}");
    assert!(message.contains("applied to fabrikam.com."), "{message}");
    // The other writer's A stands and the federation's zone is untouched.
    assert_eq!(federation(lab.bind.addr()), ["127.0.0.9"]);
    assert_eq!(
        srv(lab.bind.addr(), "contoso.com"),
        [lab.srv_line(10, 1), lab.srv_line(20, 2)]
    );
    assert_eq!(lab.active_pool(), "EdgePool1");
}

#[test]
fn rollback_restores_what_a_failover_replaced_and_is_idempotent() {
    let lab = Lab::new();
    let out = lab.run(&["failover", &lab.path_arg(), "--to", "EdgePool2", "--yes"]);
    assert_exit(&out, exit::OK);
    lab.assert_served(2);

    // Entry 2 is contoso.com (the A record and its SRV); roll back just that one.
    let out = lab.run(&["rollback", &lab.path_arg(), "--to", "2", "--yes"]);
    assert_exit(&out, exit::OK);
    assert_eq!(federation(lab.bind.addr()), [OLD_ADDRESS]);
    assert_eq!(
        srv(lab.bind.addr(), "fabrikam.com"),
        [lab.srv_line(10, 2), lab.srv_line(20, 1)],
        "entry 1 (fabrikam.com) is left as it was"
    );
    let out = lab.run(&["rollback", &lab.path_arg(), "--to", "2", "--yes"]);
    assert_exit(&out, exit::OK);
    assert!(
        stdout_of(&out).contains("entry 2: already restored"),
        "{}",
        text(&out)
    );

    // Without --to: the whole last failover, newest entry first.
    let out = lab.run(&["rollback", &lab.path_arg(), "--yes"]);
    assert_exit(&out, exit::OK);
    let bind = lab.bind.addr();
    wait_for_rdata(lab.knot(), "xmpp.contoso.com", "A", &[OLD_ADDRESS], WAIT);
    assert_eq!(
        srv(bind, "fabrikam.com"),
        [lab.srv_line(10, 1), lab.srv_line(20, 2)]
    );
    let out = lab.run(&["rollback", &lab.path_arg(), "--yes"]);
    assert_exit(&out, exit::OK);
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("entry 2: already restored")
            && stdout.contains("entry 1: already restored"),
        "{stdout}"
    );

    // A rollback over someone else's later change is refused and changes nothing.
    let out = lab.run(&["failover", &lab.path_arg(), "--to", "EdgePool2", "--yes"]);
    assert_exit(&out, exit::OK);
    nsupdate(
        bind,
        &lab.key,
        "zone contoso.com\nupdate delete xmpp.contoso.com. A\nupdate add xmpp.contoso.com. 300 IN A 127.0.0.9",
    );
    let out = lab.run(&["rollback", &lab.path_arg(), "--yes"]);
    assert_stderr(&out, exit::REFUSED, "no longer hold what it wrote");
    assert_eq!(federation(bind), ["127.0.0.9"]);
}

#[test]
fn failover_through_the_powerdns_api() {
    let pdns = PowerDns::start();
    let dir = tempfile::tempdir().unwrap();
    for (zone, _) in zones(5269) {
        pdns.create_zone(&format!("{zone}."), &[&format!("ns1.{zone}")]);
    }
    std::fs::write(dir.path().join("pdns.key"), pdns.api_key()).unwrap();
    let provider = json!({"kind": "powerdns", "api_url": pdns.api_url(),
                          "api_key_file": "pdns.key"});
    let dns = SocketAddr::from((LOOPBACK, pdns.dns_port()));
    let path = topology(dir.path(), 5269, provider, &[dns]);
    let path_arg = path.display().to_string();

    let out = run(dir.path(), &["apply", &path_arg, "--yes"]);
    assert_exit(&out, exit::OK);
    assert_eq!(federation(dns), [OLD_ADDRESS]);

    // No XMPP server on loopback port 5269 in tests: skip the probe, and say so.
    let out = run(
        dir.path(),
        &[
            "failover",
            &path_arg,
            "--to",
            "EdgePool2",
            "--yes",
            "--skip-probe",
        ],
    );
    assert_exit(&out, exit::OK);
    let stdout = stdout_of(&out);
    assert!(stdout.contains("probe: skipped (--skip-probe)"), "{stdout}");
    assert!(
        stdout.contains("Every authoritative server serves the change"),
        "{stdout}"
    );
    assert_eq!(federation(dns), [NEW_ADDRESS]);
    assert_eq!(
        srv(dns, "fabrikam.com"),
        [
            "10 0 5269 edgepool2.contoso.com.".to_string(),
            "20 0 5269 edgepool1.contoso.com.".to_string()
        ]
    );
    let out = run(dir.path(), &["plan", &path_arg, "--detailed-exitcode"]);
    assert_exit(&out, exit::OK);
}

/// The fixture topology and zone files (zonefile provider) copied into a temp dir, with one
/// explicit loopback name server on a port this process reserved and nothing listens on. The
/// fixture has no `nameservers`: a failover that went through would otherwise read
/// /etc/resolv.conf and poll the zones' real name servers on port 53.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut topology: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("contoso.json")).unwrap())
            .unwrap();
    let nowhere = SocketAddr::from((LOOPBACK, free_port(Transport::TcpAndUdp)));
    topology["nameservers"] = json!([nowhere.to_string()]);
    std::fs::write(
        dir.path().join("contoso.json"),
        serde_json::to_string_pretty(&topology).unwrap(),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    for zone in ZONES {
        let name = format!("{zone}.zone");
        std::fs::copy(
            fixtures.join("zones").join(&name),
            dir.path().join("zones").join(&name),
        )
        .unwrap();
    }
    let path = dir.path().join("contoso.json");
    (dir, path)
}

/// Every file's bytes, lock files aside (a command that refuses still took its locks).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "lock"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn bad_input_and_dry_runs_change_nothing() {
    let (dir, path) = fixture_copy();
    let path_arg = path.display().to_string();
    let before = snapshot(dir.path());

    let out = run(
        dir.path(),
        &["failover", &path_arg, "--to", "EdgePool9", "--yes"],
    );
    assert_stderr(
        &out,
        exit::ERROR,
        "unknown pool `EdgePool9`; the pools are: EdgePool1, EdgePool2",
    );

    let out = run(
        dir.path(),
        &[
            "failover",
            &path_arg,
            "--to",
            "EdgePool2",
            "--yes",
            "--skip-probe",
            "--nameserver",
            "ns1.contoso.com",
        ],
    );
    assert_stderr(
        &out,
        exit::ERROR,
        "--nameserver: `ns1.contoso.com` is not an address",
    );

    let out = run(
        dir.path(),
        &[
            "failover",
            &path_arg,
            "--to",
            "EdgePool2",
            "--dry-run",
            "--skip-probe",
        ],
    );
    assert_exit(&out, exit::OK);
    let stdout = stdout_of(&out);
    assert!(stdout.contains("Dry run: nothing was changed."), "{stdout}");
    assert!(
        stdout.contains("to do (dry run: nothing was changed)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("xmpp.contoso.com."),
        "the plan is shown: {stdout}"
    );

    // Without --yes and without a terminal: refused before anything is applied.
    let out = run(
        dir.path(),
        &["failover", &path_arg, "--to", "EdgePool2", "--skip-probe"],
    );
    assert_stderr(&out, exit::ERROR, "pass --yes");

    let out = run(
        dir.path(),
        &["failback", &path_arg, "--yes", "--skip-probe"],
    );
    assert_stderr(&out, exit::ERROR, "no failover is recorded in the journal");

    // A journal that cannot be written is found out before anything is applied.
    let out = run(
        dir.path(),
        &[
            "failover",
            &path_arg,
            "--to",
            "EdgePool2",
            "--yes",
            "--skip-probe",
            "--journal",
            "/nonexistent-folder/journal.jsonl",
        ],
    );
    assert_stderr(
        &out,
        exit::ERROR,
        "cannot open the journal /nonexistent-folder/journal.jsonl",
    );

    assert_eq!(
        snapshot(dir.path()),
        before,
        "no file changed, none created"
    );
}

#[test]
fn authoritative_servers_are_found_through_the_ns_records() {
    // zone_text gives each zone `NS ns1.<zone>` with `ns1 A 127.0.0.1`: BIND itself. NS
    // records carry no port, so the test asks for BIND's (the command uses 53).
    let key = TsigKey::generate("xmppdns-ns", "hmac-sha256");
    let zones = zones(5269);
    let zone_refs: Vec<(&str, &str)> = zones.iter().map(|(z, t)| (*z, t.as_str())).collect();
    let bind = Bind::primary(&zone_refs, &key);
    let names: Vec<xmppdns::records::Fqdn> = ZONES
        .iter()
        .chain(["example.invalid"].iter())
        .map(|z| xmppdns::records::Fqdn::parse(z).unwrap())
        .collect();
    let found = failover::discover_servers(&names, &[bind.addr()], bind.port());
    let zones: Vec<(String, Vec<SocketAddr>)> = found
        .zones
        .iter()
        .map(|(zone, servers)| (zone.to_string(), servers.clone()))
        .collect();
    assert_eq!(
        zones,
        [
            ("contoso.com.".to_string(), vec![bind.addr()]),
            ("fabrikam.com.".to_string(), vec![bind.addr()])
        ]
    );
    assert_eq!(
        found.unfound,
        [xmppdns::records::Fqdn::parse("example.invalid").unwrap()],
        "a zone the server does not serve is reported, not guessed"
    );
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.contains("example.invalid") && p.contains("REFUSED")),
        "{:?}",
        found.problems
    );
}

#[test]
fn no_promote_moves_only_the_federation_record_and_the_audit_agrees() {
    let lab = Lab::new();
    let out = lab.run(&[
        "failover",
        &lab.path_arg(),
        "--to",
        "EdgePool2",
        "--no-promote",
        "--yes",
    ]);
    assert_exit(&out, exit::OK);
    assert!(
        stdout_of(&out).contains("srv_leader = \"EdgePool1\""),
        "{}",
        text(&out)
    );
    // The A record moved; the SRV records still lead to EdgePool1.
    for server in [lab.bind.addr(), lab.knot()] {
        assert_eq!(federation(server), [NEW_ADDRESS]);
        assert_eq!(
            srv(server, "fabrikam.com"),
            [lab.srv_line(10, 1), lab.srv_line(20, 2)]
        );
    }
    let out = lab.run(&["plan", &lab.path_arg(), "--detailed-exitcode"]);
    assert_exit(&out, exit::OK);

    // The audit sees the deliberate split as a warning, not an error, and no drift. The lab's
    // zones leave the targets' addresses out (the topology does not manage them); an audit
    // rightly calls that an error (rule 5), so they are published first.
    nsupdate(
        lab.bind.addr(),
        &lab.key,
        &format!(
            "zone contoso.com\nupdate add edgepool1.contoso.com. 3600 IN A {OLD_ADDRESS}\nupdate add edgepool2.contoso.com. 3600 IN A {NEW_ADDRESS}"
        ),
    );
    let out = lab.run(&[
        "audit",
        &lab.path_arg(),
        "--nameserver",
        &lab.bind.addr().to_string(),
        "--format",
        "json",
    ]);
    assert_exit(&out, exit::OK);
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(report["summary"]["errors"], 0, "{report:#}");
    let findings: Vec<&Value> = report["names"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["findings"].as_array().unwrap())
        .collect();
    let rule = |id: &str, severity: &str| {
        findings
            .iter()
            .filter(|f| f["rule"] == id && f["severity"] == severity)
            .count()
    };
    assert_eq!(rule("7", "error"), 0, "{findings:#?}");
    assert_eq!(rule("7", "warning"), 2, "one per SIP domain: {findings:#?}");
    assert_eq!(rule("drift", "warning"), 0, "{findings:#?}");
}

#[test]
fn a_failover_that_fails_part_way_says_so_and_still_prints_the_runbook() {
    let (dir, path) = fixture_copy();
    let path_arg = path.display().to_string();
    // A DKIM record in the layout hickory's parser misreads: the zonefile provider refuses to
    // rewrite contoso.com (the federation's zone, applied last) after fabrikam.com is done.
    let contoso = dir.path().join("zones/contoso.com.zone");
    let mut zone = std::fs::read_to_string(&contoso).unwrap();
    zone.push_str("sel._domainkey IN TXT ( \"v=DKIM1; k=rsa; \"\n   \"p=MIIBIjANBgkq\" )\n");
    std::fs::write(&contoso, &zone).unwrap();

    let plan_json = |dir: &Path| {
        let out = run(dir, &["plan", &path_arg, "--format", "json"]);
        let value: Value = serde_json::from_slice(&out.stdout).unwrap();
        value["changes"].clone()
    };
    let changes_before = plan_json(dir.path());
    let out = run(
        dir.path(),
        &[
            "failover",
            &path_arg,
            "--to",
            "EdgePool2",
            "--yes",
            "--skip-probe",
        ],
    );
    assert_exit(&out, exit::ERROR);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("applied to fabrikam.com.") && stderr.contains("zone contoso.com. failed"),
        "{}",
        text(&out)
    );
    let stdout = stdout_of(&out);
    assert!(stdout.contains("NOT complete"), "{stdout}");
    assert!(stdout.contains("Set-CsSite -Identity 'Site2'"), "{stdout}");
    // The topology still names the old pool: DNS did not fully move.
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(value["active_pool"], "EdgePool1");
    assert_eq!(
        std::fs::read_to_string(&contoso).unwrap(),
        zone,
        "contoso.com untouched"
    );
    assert_ne!(
        plan_json(dir.path()),
        changes_before,
        "fabrikam.com did change"
    );

    // Rollback undoes exactly what landed (fabrikam.com); contoso.com's entry is already back.
    // The fixture's fabrikam.com had no SRV record, so restoring that is a removal of every
    // SRV record of the domain: the safety check asks for --force.
    let out = run(dir.path(), &["rollback", &path_arg, "--yes"]);
    assert_stderr(
        &out,
        exit::REFUSED,
        "removes every SRV record of the domain",
    );
    let out = run(dir.path(), &["rollback", &path_arg, "--yes", "--force"]);
    assert_exit(&out, exit::OK);
    assert!(
        stdout_of(&out).contains("already restored"),
        "{}",
        text(&out)
    );
    assert_eq!(
        plan_json(dir.path()),
        changes_before,
        "DNS data as before the failover"
    );
}

/// The lab's topology with `srv.port` set to `port` (the pools' XMPP port, probed), written
/// next to it; returns its path.
fn with_srv_port(lab: &Lab, port: u16) -> PathBuf {
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(&lab.path).unwrap()).unwrap();
    value["srv"]["port"] = json!(port);
    let path = lab.dir.path().join(format!("port-{port}.json"));
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

#[test]
fn force_goes_on_after_a_failed_probe_and_says_so() {
    let lab = Lab::new();
    let closed = free_port(Transport::Tcp);
    let path = with_srv_port(&lab, closed);
    let path_arg = path.display().to_string();
    let out = lab.run(&[
        "failover",
        &path_arg,
        "--to",
        "EdgePool2",
        "--yes",
        "--require-live",
        "--force",
        "--verify-timeout",
        "1",
    ]);
    // DNS moved; the pool still does not answer, so verify says so (exit 5).
    assert_exit(&out, exit::NOT_PROPAGATED);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: no address answered as a ready XMPP server; going on because of --force"
        ),
        "{}",
        text(&out)
    );
    assert!(
        stdout_of(&out).contains("connection refused"),
        "the probe's result is still shown: {}",
        text(&out)
    );
    // It really went: both servers serve the new pool (with the topology's port).
    for server in [lab.bind.addr(), lab.knot()] {
        assert_eq!(federation(server), [NEW_ADDRESS], "A at {server}");
        assert_eq!(
            srv(server, "contoso.com"),
            [
                format!("10 0 {closed} edgepool2.contoso.com."),
                format!("20 0 {closed} edgepool1.contoso.com.")
            ]
        );
    }
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(value["active_pool"], "EdgePool2");
}

#[test]
fn probe_timeout_bounds_the_wait_for_a_silent_pool_and_is_named() {
    let lab = Lab::new();
    // Accepted by the kernel's backlog, never answered.
    let silent = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    let path = with_srv_port(&lab, silent.local_addr().unwrap().port());
    let out = lab.run(&[
        "failover",
        &path.display().to_string(),
        "--to",
        "EdgePool2",
        "--yes",
        "--require-live",
        "--probe-timeout",
        "1",
    ]);
    assert_exit(&out, exit::REFUSED);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no address of pool EdgePool2 answered as XMPP")
            && stderr.contains("no answer within 1000 ms"),
        "{}",
        text(&out)
    );
    lab.assert_served(1);
    assert!(lab.journal().is_empty(), "nothing was applied");
    drop(silent);
}

#[test]
fn the_topology_rewrite_changes_one_value_keeps_every_other_byte_and_a_bak() {
    let lab = Lab::new();
    // Hand-written layout: tabs, odd spacing, keys in another order, no final newline.
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&lab.path).unwrap()).unwrap();
    let pools = &value["pools"];
    let original = format!(
        "{{\t\"provider\" : {},\n\"active_pool\":\t\"EdgePool1\" ,\n  \"zones\": {},   \"sip_domains\": {},\n\t\t\"federation\": {{\"name\":\"xmpp.contoso.com\",\"ttl\":300}},\n\"pools\": [\n  {},\n      {}\n],\n\"srv\": {{ \"port\": {} }}, \"nameservers\": {}\n}}",
        value["provider"],
        value["zones"],
        value["sip_domains"],
        pools[0],
        pools[1],
        lab.prosody.port(),
        value["nameservers"],
    );
    std::fs::write(&lab.path, &original).unwrap();
    let out = lab.run(&["failover", &lab.path_arg(), "--to", "EdgePool2", "--yes"]);
    assert_exit(&out, exit::OK);
    let rewritten = std::fs::read_to_string(&lab.path).unwrap();
    assert_eq!(
        rewritten,
        original.replace(
            "\"active_pool\":\t\"EdgePool1\" ,",
            "\"active_pool\":\t\"EdgePool2\" ,"
        ),
        "only the active pool's value changed"
    );
    let backup = PathBuf::from(format!("{}.bak", lab.path.display()));
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
    let stdout = stdout_of(&out);
    let said: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("Topology "))
        .collect();
    assert_eq!(
        said,
        [format!(
            "Topology {} updated: active_pool \"EdgePool1\" -> \"EdgePool2\".",
            lab.path.display()
        )],
        "{}",
        text(&out)
    );
    lab.assert_served(2);
}

#[test]
fn without_nameservers_and_with_ns_records_that_cannot_be_followed_the_primary_is_checked() {
    // The zones' NS name lies outside every zone served here and no resolver is offered (the
    // command sees an empty /etc/resolv.conf; nothing reaches the machine's resolver): the
    // primary, asked next, answers the NS RRset but refuses the address of ns.example.net.
    let zone = |name: &str, records: &str| {
        format!(
            "$ORIGIN {name}.\n$TTL 300\n@ IN SOA ns.example.net. hostmaster.{name}. ( 1 3600 600 86400 300 )\n@ IN NS ns.example.net.\n{records}_xmpp-server._tcp 3600 IN SRV 10 0 5269 edgepool1.contoso.com.\n_xmpp-server._tcp 3600 IN SRV 20 0 5269 edgepool2.contoso.com.\n"
        )
    };
    let contoso = zone("contoso.com", &format!("xmpp 300 IN A {OLD_ADDRESS}\n"));
    let fabrikam = zone("fabrikam.com", "");
    let key = TsigKey::generate("xmppdns-fallback", "hmac-sha256");
    let bind = Bind::primary(
        &[("contoso.com", &contoso), ("fabrikam.com", &fabrikam)],
        &key,
    );
    let dir = tempfile::tempdir().unwrap();
    let provider = rfc2136(dir.path(), bind.addr(), &key);
    let path = topology(dir.path(), 5269, provider, &[]);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(value["nameservers"], json!([]), "no name server listed");
    let empty = dir.path().join("resolv.conf");
    std::fs::write(&empty, "# no nameserver\n").unwrap();

    let out = support::xmppdns_with_resolv_conf(&empty)
        .args([
            "failover",
            &path.display().to_string(),
            "--to",
            "EdgePool2",
            "--yes",
            "--skip-probe",
        ])
        .current_dir(dir.path())
        .output()
        .expect("unshare (util-linux) runs");
    assert_exit(&out, exit::OK);
    let all = text(&out);
    assert!(
        all.contains("the NS records of contoso.com., fabrikam.com. could not be followed")
            && all.contains(&format!(
                "only the primary {} is checked for them",
                bind.addr()
            )),
        "{all}"
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout
            .contains("Every authoritative server serves the change (2 zone/server pairs checked"),
        "{all}"
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(&bind.addr().to_string()))
        .collect();
    assert!(rows.len() >= 2, "one row per zone, the primary's: {all}");
    assert_eq!(federation(bind.addr()), [NEW_ADDRESS]);
}
