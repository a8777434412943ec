//! Certificates on the XMPP port (#14) against real Prosody on loopback, with certificates the
//! test support makes (rcgen): `audit --probe` rules 18-21 (golden
//! `fixtures/golden/tls/rules.json`, regenerate with `UPDATE_GOLDEN=1 cargo test --test tls`),
//! the failover gate, and `audit --format nagios` read as the Monitoring Plugins guidelines
//! define a plugin's output.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::certs::{self_signed, TestCa, Validity};
use support::{zone_text, Bind, Prosody, TsigKey, LOOPBACK};

const DOMAINS: [&str; 2] = ["contoso.com", "fabrikam.com"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn xmppdns(args: &[&str]) -> Output {
    support::xmppdns()
        .args(args)
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

#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = root().join("fixtures/golden/tls").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).expect("golden dir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with UPDATE_GOLDEN=1", path.display()));
    assert!(
        expected == actual,
        "differs from {}; regenerate with UPDATE_GOLDEN=1 cargo test --test tls if intended\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// An XMPP server that offers no STARTTLS: it answers every stream header with features
/// holding only dialback. It stops after `connections` connections or 20 s.
fn xmpp_without_starttls(connections: usize) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut served = 0;
        while served < connections && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    served += 1;
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 1024];
                    let _ = conn.read(&mut buf);
                    let _ = conn.write_all(
                        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
                          xmlns:stream='http://etherx.jabber.org/streams' version='1.0' \
                          from='contoso.com' id='x'><stream:features><dialback \
                          xmlns='urn:xmpp:features:dialback'/></stream:features>",
                    );
                    let _ = conn.read(&mut buf);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => return,
            }
        }
    });
    (addr, handle)
}

/// One Prosody per kind of certificate, all for both SIP domains, and BIND serving both
/// zones with one SRV target per Prosody (the port in the SRV record).
struct Lab {
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
    bind: Bind,
    _prosodies: Vec<Prosody>,
    plain: JoinHandle<()>,
}

/// (target label, Prosody or the STARTTLS-less fake).
const CASES: [&str; 7] = [
    "good",
    "missing",
    "expired",
    "selfsigned",
    "wildcard",
    "soon",
    "plain",
];

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("xmppdns test CA");
        let ca_file = dir.path().join("ca.pem");
        ca.write_pem(&ca_file);
        let leaves = [
            ca.issue(&DOMAINS, Validity::Current),
            ca.issue(&["contoso.com"], Validity::Current),
            ca.issue(&DOMAINS, Validity::Expired),
            self_signed(&DOMAINS),
            ca.issue(&["*.contoso.com", "*.fabrikam.com"], Validity::Current),
            ca.issue(&DOMAINS, Validity::EndsInDays(5)),
        ];
        let prosodies: Vec<Prosody> = leaves
            .iter()
            .map(|leaf| Prosody::start_with_certificate(&DOMAINS, leaf))
            .collect();
        // Per audit, the probe (1 connection) and a STARTTLS check per domain (2); two audits.
        let (plain_addr, plain) = xmpp_without_starttls(6);
        let mut ports: Vec<u16> = prosodies.iter().map(Prosody::port).collect();
        ports.push(plain_addr.port());
        let mut srv = String::new();
        let mut addresses = String::new();
        for (i, (case, port)) in CASES.iter().zip(&ports).enumerate() {
            let target = format!("{case}.contoso.com.");
            srv.push_str(&format!(
                "_xmpp-server._tcp IN SRV {} 0 {port} {target}\n",
                10 * (i + 1)
            ));
            addresses.push_str(&format!("{case} IN A 127.0.0.1\n"));
        }
        let contoso = zone_text("contoso.com", 1, &format!("{srv}{addresses}"));
        let fabrikam = zone_text("fabrikam.com", 1, &srv);
        let bind = Bind::primary(
            &[("contoso.com", &contoso), ("fabrikam.com", &fabrikam)],
            &TsigKey::test_key(),
        );
        Lab {
            _dir: dir,
            ca_file,
            bind,
            _prosodies: prosodies,
            plain,
        }
    }

    fn audit(&self, format: &str) -> Output {
        let ns = self.bind.addr().to_string();
        let ca = self.ca_file.display().to_string();
        xmppdns(&[
            "audit",
            "--domain",
            DOMAINS[0],
            "--domain",
            DOMAINS[1],
            "--nameserver",
            &ns,
            "--probe",
            "--ca",
            &ca,
            "--format",
            format,
        ])
    }
}

/// The TLS findings (rules 18-21) as (domain, record, rule, severity), sorted.
fn tls_findings(doc: &Value) -> Value {
    let mut rows: Vec<Value> = doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["findings"].as_array().unwrap().iter())
        .filter(|f| matches!(f["rule"].as_str(), Some("18" | "19" | "20" | "21")))
        .map(|f| {
            json!({"domain": f["domain"], "record": f["record"], "rule": f["rule"],
                   "severity": f["severity"]})
        })
        .collect();
    rows.sort_by_key(|r| r.to_string());
    Value::Array(rows)
}

#[test]
fn rules_18_to_21_fire_exactly_where_expected_and_nagios_reports_them() {
    let lab = Lab::new();
    let out = lab.audit("json");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut pretty = serde_json::to_string_pretty(&tls_findings(&doc)).unwrap();
    pretty.push('\n');
    golden("rules.json", &pretty);
    // Besides the golden, so that a careless regeneration cannot hide a lost finding.
    let errors_of = |rule: &str| -> Vec<String> {
        tls_findings(&doc)
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == rule && f["severity"] == "error")
            .map(|f| {
                format!(
                    "{} {}",
                    f["domain"].as_str().unwrap(),
                    f["record"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        errors_of("18"),
        [
            "contoso.com. wildcard.contoso.com. (STARTTLS)",
            "fabrikam.com. missing.contoso.com. (STARTTLS)",
            "fabrikam.com. wildcard.contoso.com. (STARTTLS)"
        ]
    );
    assert_eq!(errors_of("19").len(), 2, "expired, for each domain");
    assert!(errors_of("20").iter().all(|e| e.contains("selfsigned")));
    assert!(errors_of("21").iter().all(|e| e.contains("plain")));

    // The facts behind them: the good certificate validates against the test CA, covers both
    // domains, and was negotiated with TLS 1.2 or 1.3; every check reports its TLS time.
    let checks = doc["tls"].as_array().expect("tls checks listed");
    assert_eq!(checks.len(), 2 * CASES.len(), "{doc:#}");
    let good = checks
        .iter()
        .find(|c| c["target"] == "good.contoso.com." && c["domain"] == "fabrikam.com")
        .expect("good checked for fabrikam.com");
    assert_eq!(good["status"], "handshake", "{good:#}");
    assert_eq!(good["covers_domain"], true);
    assert_eq!(good["certificate"]["chain_valid"], true, "{good:#}");
    assert!(good["protocol"].as_str().unwrap().starts_with("TLSv1."));
    assert_eq!(
        good["certificate"]["sha256"][0].as_str().unwrap().len(),
        32 * 3 - 1
    );
    for check in checks.iter().filter(|c| c["status"] == "handshake") {
        assert!(check["tls_ms"].as_u64().is_some(), "{check:#}");
        // Shown with --nocapture: the time TLS adds per address, next to the plain probe.
        eprintln!(
            "{} {}: TLS {} ms (whole check {} ms)",
            check["address"], check["domain"], check["tls_ms"], check["total_ms"]
        );
    }
    for probe in doc["probes"].as_array().unwrap() {
        eprintln!("{}: plain probe {} ms", probe["address"], probe["total_ms"]);
    }
    nagios_line_is_critical(&lab);
    // Both audits are done: the fake server has served its 6 connections and ends.
    lab.plain.join().expect("the STARTTLS-less server thread");
}

/// `'label'=value[UOM];[warn];[crit];[min];[max]` (Monitoring Plugins guidelines, 2.6).
fn parse_perfdata(data: &str) -> Vec<(String, f64, String)> {
    data.split_whitespace()
        .map(|item| {
            let (label, rest) = item.split_once('=').expect("label=value");
            let value_uom = rest.split(';').next().unwrap();
            let number_end = value_uom
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                .unwrap_or(value_uom.len());
            let (number, uom) = value_uom.split_at(number_end);
            assert!(
                ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"].contains(&uom),
                "unit `{uom}` in {item}"
            );
            assert!(rest.split(';').count() <= 5, "too many fields in {item}");
            for threshold in rest.split(';').skip(1) {
                assert!(
                    threshold.is_empty() || threshold.parse::<f64>().is_ok(),
                    "threshold `{threshold}` in {item}"
                );
            }
            (
                label.trim_matches('\'').to_string(),
                number.parse().expect("a number"),
                uom.to_string(),
            )
        })
        .collect()
}

/// The first line: `XMPPDNS STATE - text | perfdata`, and the state matches the exit code.
#[track_caller]
fn check_plugin_output(out: &Output, code: i32, state: &str) -> Vec<(String, f64, String)> {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().expect("a status line");
    let (status, perf) = first.split_once(" | ").unwrap_or((first, ""));
    let prefix = format!("XMPPDNS {state} - ");
    assert!(status.starts_with(&prefix), "{first}");
    assert!(!status.contains('|'), "{first}");
    parse_perfdata(perf)
}

fn nagios_line_is_critical(lab: &Lab) {
    let out = lab.audit("nagios");
    let perf = check_plugin_output(&out, 2, "CRITICAL");
    let value = |label: &str| perf.iter().find(|p| p.0 == label).map(|p| p.1);
    assert!(value("errors").unwrap() >= 1.0, "{perf:?}");
    // The expired certificate is the nearest to (past) its end.
    assert!(value("cert_days_left").unwrap() < 0.0, "{perf:?}");
    assert!(perf.iter().any(|p| p.0 == "probe_time" && p.2 == "s"));
}

#[test]
fn nagios_ok_warning_and_unknown_follow_the_plugin_exit_codes() {
    let zone = |case: &str| {
        let path = root().join(format!("fixtures/audit/zones/{case}.zone"));
        std::fs::read_to_string(path).unwrap()
    };
    for (case, code, state) in [("correct", 0, "OK"), ("xmpps-5269", 1, "WARNING")] {
        let bind = Bind::primary(&[("contoso.com", &zone(case))], &TsigKey::test_key());
        let ns = bind.addr().to_string();
        let out = xmppdns(&[
            "audit",
            "--domain",
            "contoso.com",
            "--nameserver",
            &ns,
            "--format",
            "nagios",
        ]);
        let perf = check_plugin_output(&out, code, state);
        assert!(perf.iter().any(|p| p.0 == "warnings"), "{perf:?}");
    }
    let out = xmppdns(&["audit", "/nonexistent/topology.json", "--format", "nagios"]);
    let perf = check_plugin_output(&out, 3, "UNKNOWN");
    assert!(perf.is_empty());
}

/// A failover topology for EdgePool1 (127.0.0.2, nothing there) -> EdgePool2 (127.0.0.1,
/// Prosody), zone files as the provider, trusting `ca_file`.
fn failover_topology(dir: &Path, port: u16, ca_file: &Path) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for zone in DOMAINS {
        std::fs::write(zones.join(format!("{zone}.zone")), zone_text(zone, 1, "")).unwrap();
    }
    let value = json!({
        "zones": DOMAINS, "sip_domains": DOMAINS, "active_pool": "EdgePool1",
        "federation": {"name": "xmpp.contoso.com"},
        "pools": [
            {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
             "ipv4": ["127.0.0.2"]},
            {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com",
             "ipv4": ["127.0.0.1"]}
        ],
        "srv": {"port": port},
        "tls": {"ca_file": ca_file.display().to_string()},
        "provider": {"kind": "zonefile", "directory": "zones"},
    });
    let path = dir.join("topology.json");
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    path
}

#[test]
fn the_failover_gate_refuses_a_certificate_missing_a_sip_domain_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("xmppdns test CA");
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file);
    let missing =
        Prosody::start_with_certificate(&DOMAINS, &ca.issue(&["contoso.com"], Validity::Current));
    let path = failover_topology(dir.path(), missing.port(), &ca_file);
    let path_arg = path.display().to_string();
    let before = std::fs::read_to_string(&path).unwrap();

    let out = xmppdns(&["failover", &path_arg, "--to", "EdgePool2", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not cover fabrikam.com"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("subject alternative names (fabrikam.com)"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        before,
        "nothing changed"
    );

    let out = xmppdns(&[
        "failover",
        &path_arg,
        "--to",
        "EdgePool2",
        "--dry-run",
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("going on because of --force"));

    // The same pool with a certificate for both domains passes the gate.
    drop(missing);
    let good = Prosody::start_with_certificate(&DOMAINS, &ca.issue(&DOMAINS, Validity::Current));
    let path = failover_topology(dir.path(), good.port(), &ca_file);
    let out = xmppdns(&[
        "failover",
        &path.display().to_string(),
        "--to",
        "EdgePool2",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("it covers every SIP domain and is valid"),
        "{}",
        text(&out)
    );
}

#[test]
fn direct_tls_is_checked_for_xmpps_server_and_the_gate_falls_back_to_the_sip_tls_port() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("xmppdns test CA");
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file);
    let prosody =
        Prosody::start_with_direct_tls(&DOMAINS, &ca.issue(&["contoso.com"], Validity::Current));
    let direct = prosody.direct_tls_port().unwrap();
    let srv = format!(
        "_xmpp-server._tcp IN SRV 10 0 {} edge.contoso.com.\n\
         _xmpps-server._tcp IN SRV 10 0 {direct} edge.contoso.com.\n",
        prosody.port()
    );
    let contoso = zone_text("contoso.com", 1, &format!("{srv}edge IN A 127.0.0.1\n"));
    let fabrikam = zone_text("fabrikam.com", 1, &srv);
    let bind = Bind::primary(
        &[("contoso.com", &contoso), ("fabrikam.com", &fabrikam)],
        &TsigKey::test_key(),
    );
    let ns = bind.addr().to_string();
    let ca_arg = ca_file.display().to_string();
    let out = xmppdns(&[
        "audit",
        "--domain",
        DOMAINS[0],
        "--domain",
        DOMAINS[1],
        "--nameserver",
        &ns,
        "--probe",
        "--ca",
        &ca_arg,
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let direct_checks: Vec<&Value> = doc["tls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["mode"] == "direct")
        .collect();
    assert_eq!(direct_checks.len(), 2, "{doc:#}");
    assert!(
        direct_checks.iter().all(|c| c["status"] == "handshake"),
        "{doc:#}"
    );
    let eighteens: Vec<String> = tls_findings(&doc)
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "18")
        .map(|f| {
            format!(
                "{} {}",
                f["domain"].as_str().unwrap(),
                f["record"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        eighteens,
        [
            "fabrikam.com. edge.contoso.com. (STARTTLS)",
            "fabrikam.com. edge.contoso.com. (direct TLS)"
        ],
        "{doc:#}"
    );

    // The gate: port 5269 (here a closed port) does not answer, so the certificate is read
    // with a direct TLS handshake on the pool's SIP TLS port.
    let closed = support::free_port(support::Transport::Tcp);
    let path = failover_topology(dir.path(), closed, &ca_file);
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    value["pools"][1]["sip_tls_port"] = json!(direct);
    std::fs::write(&path, value.to_string()).unwrap();
    let topology = xmppdns::topology::Topology::load(&path).unwrap();
    let found = xmppdns::audit::tls::check_pool_certificate(
        &topology,
        &topology.pools[1],
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(
        found
            .checks
            .iter()
            .any(|c| c.mode == xmppdns::probe::tls::TlsMode::Direct
                && c.address.port() == direct
                && c.certificate.is_some()),
        "{found:#?}"
    );
    assert_eq!(found.missing, ["fabrikam.com"], "{found:#?}");
    assert!(!found.is_ready());
}

#[test]
fn the_topology_takes_a_private_ca_and_a_sip_tls_port_per_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = failover_topology(dir.path(), 5269, Path::new("private-ca.pem"));
    let topology = xmppdns::topology::Topology::load(&path).unwrap();
    // Relative to the topology's folder; 5061 unless a pool says otherwise.
    assert_eq!(
        topology.tls_ca_file.as_deref(),
        Some(dir.path().join("private-ca.pem").as_path())
    );
    assert!(topology.pools.iter().all(|p| p.sip_tls_port == 5061));

    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    value["pools"][0]["sip_tls_port"] = json!(0);
    value["pools"][1]["sip_tls_port"] = json!(5062);
    std::fs::write(&path, value.to_string()).unwrap();
    let error = xmppdns::topology::Topology::load(&path)
        .unwrap_err()
        .to_string();
    assert!(error.contains("pools[0].sip_tls_port"), "{error}");
    assert!(!error.contains("pools[1]"), "{error}");
}
