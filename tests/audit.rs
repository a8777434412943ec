//! `xmppdns audit` (and `init --from-dns`) against real BIND 9 on loopback.
//!
//! Every broken case of issue #5 is a zone file in `fixtures/audit/zones/` (its first line says
//! what is wrong), served by its own BIND; the audit's JSON is compared with
//! `fixtures/golden/audit/<case>.json` after normalising what changes from run to run: server
//! addresses become `<NS1>`/`<NS2>`, the topology path `<TOPOLOGY>`, and `stats` (query counts,
//! wall time) is dropped. Regenerate after an intended change and review the diff:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test --test audit
//! ```
//!
//! Besides the goldens, each case asserts the rule it is about, so a golden regenerated
//! carelessly cannot hide a lost finding.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::{free_port, Bind, Transport, TsigKey};
use xmppdns::audit::{self, Servers};
use xmppdns::dns::authority;
use xmppdns::dns::batch::{self, BatchSettings, QueryType, Question};
use xmppdns::records::Fqdn;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn zone_fixture(case: &str) -> String {
    let path = root()
        .join("fixtures/audit/zones")
        .join(format!("{case}.zone"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn topology_fixture() -> PathBuf {
    root().join("fixtures/audit/contoso.json")
}

/// A BIND primary serving contoso.com from the fixture `case`.
fn serve(case: &str) -> Bind {
    Bind::primary(
        &[("contoso.com", &zone_fixture(case))],
        &TsigKey::test_key(),
    )
}

fn xmppdns(args: &[&str]) -> Output {
    support::xmppdns()
        .args(args)
        .output()
        .expect("the xmppdns binary runs")
}

#[track_caller]
fn assert_exit(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The audit JSON with run-specific values replaced (see the module comment).
fn normalised(output: &Output, servers: &[SocketAddr]) -> (String, Value) {
    let mut text = String::from_utf8(output.stdout.clone()).expect("UTF-8");
    for (i, server) in servers.iter().enumerate() {
        text = text.replace(&server.to_string(), &format!("<NS{}>", i + 1));
    }
    let mut doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("audit JSON does not parse: {e}\n{text}"));
    let stats = doc
        .as_object_mut()
        .expect("object")
        .remove("stats")
        .expect("stats present");
    assert_eq!(
        stats["unanswered"], 0,
        "every question was answered: {stats}"
    );
    if doc["topology"].is_string() {
        doc["topology"] = Value::String("<TOPOLOGY>".into());
    }
    let mut pretty = serde_json::to_string_pretty(&doc).expect("serialize");
    pretty.push('\n');
    (pretty, doc)
}

#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = root().join("fixtures/golden/audit").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().unwrap()).expect("golden dir");
        fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test audit",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "output differs from {}; if intended, regenerate with UPDATE_GOLDEN=1 cargo test --test audit\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// (rule, severity) of every finding in an audit document.
fn rules(doc: &Value) -> Vec<(String, String)> {
    doc["names"]
        .as_array()
        .expect("names")
        .iter()
        .flat_map(|n| n["findings"].as_array().expect("findings").iter())
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(doc: &Value, rule: &str, severity: &str) -> bool {
    rules(doc).iter().any(|(r, s)| r == rule && s == severity)
}

/// Runs one fixture case through the CLI and compares its golden; returns the document.
fn audit_case(case: &str, with_topology: bool, domain: &str, exit: i32) -> Value {
    let bind = serve(case);
    let ns = bind.addr().to_string();
    let topology = topology_fixture();
    let mut args = vec!["audit", "--format", "json", "--nameserver", &ns];
    if with_topology {
        args.insert(1, topology.to_str().unwrap());
    } else {
        args.extend(["--domain", domain]);
    }
    let output = xmppdns(&args);
    assert_exit(&output, exit);
    let (text, doc) = normalised(&output, &[bind.addr()]);
    golden(&format!("{case}.json"), &text);
    doc
}

#[test]
fn correct_zone_has_zero_findings_with_and_without_topology() {
    let doc = audit_case("correct", true, "contoso.com", 0);
    assert_eq!(rules(&doc), vec![], "{doc:#}");
    let sip = &doc["names"][0];
    assert_eq!(sip["leading_pool"], "EdgePool1");
    assert_eq!(sip["leading_target"], "edgepool1.contoso.com.");

    let bind = serve("correct");
    let ns = bind.addr().to_string();
    let output = xmppdns(&["audit", "--domain", "contoso.com", "--nameserver", &ns]);
    assert_exit(&output, 0);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("Audit OK: 1 SIP domain(s), 0 error(s), 0 warning(s), 0 info."),
        "{table}"
    );
}

#[test]
fn srv_target_that_is_a_cname() {
    let doc = audit_case("srv-target-cname", false, "contoso.com", 4);
    assert_eq!(rules(&doc), vec![("5".into(), "error".into())]);
}

#[test]
fn port_5060_instead_of_5269() {
    let doc = audit_case("port-5060", false, "contoso.com", 4);
    assert_eq!(rules(&doc), vec![("2".into(), "error".into())]);
}

#[test]
fn single_target_dot() {
    let doc = audit_case("target-dot", false, "contoso.com", 4);
    assert_eq!(rules(&doc), vec![("3".into(), "error".into())]);
}

#[test]
fn every_target_dot_is_rule_3_not_a_mix() {
    let doc = audit_case("target-dot-twice", false, "contoso.com", 4);
    assert_eq!(rules(&doc), vec![("3".into(), "error".into())]);
}

#[test]
fn sip_domain_without_srv() {
    let doc = audit_case("no-srv", false, "contoso.com", 4);
    assert_eq!(
        rules(&doc),
        vec![
            ("1".into(), "error".into()),
            ("12".into(), "warning".into())
        ]
    );
}

#[test]
fn two_pools_with_the_same_priority() {
    let doc = audit_case("same-priority", false, "contoso.com", 4);
    assert_eq!(rules(&doc), vec![("6".into(), "error".into())]);
}

#[test]
fn lowest_priority_on_the_standby_pool() {
    let doc = audit_case("standby-leads", true, "contoso.com", 4);
    assert!(has(&doc, "7", "error"), "{doc:#}");
    assert!(has(&doc, "drift", "warning"), "{doc:#}");
    assert_eq!(doc["names"][0]["leading_pool"], "EdgePool2");
}

#[test]
fn federation_a_on_the_old_pool() {
    let doc = audit_case("federation-old-pool", true, "contoso.com", 4);
    assert!(has(&doc, "8", "error"), "{doc:#}");
    assert!(has(&doc, "drift", "warning"), "{doc:#}");
    assert!(
        !has(&doc, "7", "error"),
        "the SRV records are right: {doc:#}"
    );
}

#[test]
fn target_without_address_records() {
    let doc = audit_case("target-without-address", false, "contoso.com", 4);
    assert_eq!(rules(&doc), vec![("5".into(), "error".into())]);
}

#[test]
fn target_that_is_an_ip_literal() {
    let doc = audit_case("target-ip-literal", false, "contoso.com", 4);
    assert_eq!(rules(&doc), vec![("5".into(), "error".into())]);
}

#[test]
fn srv_record_at_the_wrong_owner_name() {
    let doc = audit_case("wrong-owner", false, "sub.contoso.com", 4);
    assert_eq!(
        rules(&doc),
        vec![("1".into(), "error".into()), ("10".into(), "error".into())]
    );
}

#[test]
fn xmpps_server_on_the_starttls_port() {
    let doc = audit_case("xmpps-5269", false, "contoso.com", 0);
    assert_eq!(rules(&doc), vec![("14".into(), "warning".into())]);
}

#[test]
fn one_day_ttl_on_the_federation_a_record() {
    let doc = audit_case("federation-ttl-86400", true, "contoso.com", 0);
    assert!(has(&doc, "17", "warning"), "{doc:#}");
    // The topology asks for TTL 300: the plan would change it too.
    assert!(has(&doc, "drift", "warning"), "{doc:#}");
}

#[test]
fn long_negative_caching_while_a_pool_is_not_pre_provisioned() {
    let doc = audit_case("negative-ttl-not-provisioned", true, "contoso.com", 4);
    assert!(has(&doc, "22", "warning"), "{doc:#}");
    // Rule 6 (a pool without its SRV record) is the error; rule 22 says why it matters more.
    assert!(has(&doc, "6", "error"), "{doc:#}");
    let text = doc.to_string();
    assert!(text.contains("negative-caching TTL 86400 s"), "{doc:#}");
    assert!(text.contains("has no record for EdgePool2"), "{doc:#}");
    // Pre-provisioned, the same SOA is fine: the correct zone (MINIMUM 300) has no rule 22.
    let fine = audit_case("correct", true, "contoso.com", 0);
    assert!(!has(&fine, "22", "warning"), "{fine:#}");
}

#[test]
fn ttls_above_the_topologys_rto() {
    let bind = serve("correct");
    let ns = bind.addr().to_string();
    let topology = root().join("fixtures/audit/contoso-rto.json");
    let output = xmppdns(&[
        "audit",
        topology.to_str().unwrap(),
        "--format",
        "json",
        "--nameserver",
        &ns,
    ]);
    assert_exit(&output, 0);
    let (text, doc) = normalised(&output, &[bind.addr()]);
    golden("rto-exceeded.json", &text);
    // The SRV TTL 3600 and the federation A TTL 300 are both above rto_seconds 120.
    let rule_23: Vec<&Value> = doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["findings"].as_array().unwrap())
        .filter(|f| f["rule"] == "23")
        .collect();
    assert_eq!(rule_23.len(), 2, "{doc:#}");
    assert!(rule_23.iter().all(|f| f["severity"] == "warning"));
}

#[test]
fn a_server_serving_an_older_serial() {
    let key = TsigKey::test_key();
    let newer = Bind::primary(&[("contoso.com", &zone_fixture("newer-serial"))], &key);
    let older = Bind::primary(&[("contoso.com", &zone_fixture("correct"))], &key);
    let (a, b) = (newer.addr().to_string(), older.addr().to_string());
    let output = xmppdns(&[
        "audit",
        "--domain",
        "contoso.com",
        "--format",
        "json",
        "--nameserver",
        &a,
        "--nameserver",
        &b,
    ]);
    assert_exit(&output, 4);
    let (text, doc) = normalised(&output, &[newer.addr(), older.addr()]);
    golden("older-serial.json", &text);
    assert!(has(&doc, "16", "error"), "answers differ: {doc:#}");
    assert!(has(&doc, "16", "warning"), "serials differ: {doc:#}");
    let zone = doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "zone")
        .expect("zone entry");
    assert_eq!(zone["serials"]["<NS1>"], 2026113002);
    assert_eq!(zone["serials"]["<NS2>"], 2026113001);
}

#[test]
fn table_groups_findings_per_name_with_a_summary() {
    let bind = serve("port-5060");
    let ns = bind.addr().to_string();
    let output = xmppdns(&["audit", "--domain", "contoso.com", "--nameserver", &ns]);
    assert_exit(&output, 4);
    let table = String::from_utf8_lossy(&output.stdout);
    golden("port-5060.txt", &table);
    assert!(
        table.starts_with("contoso.com. (SIP domain, leading target edgepool1.contoso.com.)\n"),
        "{table}"
    );
    assert!(table.contains("port 5060 instead of 5269"), "{table}");
    assert!(table.contains("1 name(s) without findings."), "{table}");
    assert!(
        table.ends_with("Audit FAILED: 1 SIP domain(s), 1 error(s), 0 warning(s), 0 info.\n"),
        "{table}"
    );
    // No progress bar or other noise on a non-terminal stderr.
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn bad_arguments_exit_1() {
    let output = xmppdns(&[
        "audit",
        "--domain",
        "contoso.com",
        "--nameserver",
        "not-an-address",
    ]);
    assert_exit(&output, 1);
    assert!(String::from_utf8_lossy(&output.stderr).contains("`not-an-address` is not an address"));
    // Refused before any query; still a port this process owns, never port 53 (where a
    // forwarding resolver could pass a query on).
    let owned = format!("127.0.0.1:{}", free_port(Transport::TcpAndUdp));
    let output = xmppdns(&["audit", "--nameserver", &owned]);
    assert_exit(&output, 1);
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to audit"));
}

// ---------------------------------------------------------------------------------------------
// Wire behaviour: discovery, truncation, loss.

fn name(text: &str) -> Fqdn {
    Fqdn::parse(text).unwrap()
}

#[test]
fn authoritative_servers_are_found_through_the_ns_rrset() {
    let bind = serve("correct");
    let settings = BatchSettings::default();
    let (found, _) = authority::discover(
        &[
            name("contoso.com"),
            name("sub.contoso.com"),
            name("edgepool1.contoso.com"),
        ],
        bind.addr(),
        bind.port(),
        &settings,
    );
    let queried: Vec<String> = found.keys().map(|q| q.to_string()).collect();
    assert_eq!(
        queried,
        ["contoso.com.", "edgepool1.contoso.com.", "sub.contoso.com."],
        "one answer per name asked (sorted by name)"
    );
    for (queried, authority) in &found {
        let authority = authority
            .as_ref()
            .unwrap_or_else(|e| panic!("{queried}: {e}"));
        assert_eq!(authority.zone, name("contoso.com"));
        assert_eq!(authority.name_servers.len(), 1);
        assert_eq!(authority.name_servers[0].name, name("ns1.contoso.com"));
        assert_eq!(authority.addresses(), vec![bind.addr()]);
    }

    // The audit through discovery reads the same as with --nameserver.
    let topology = xmppdns::topology::Topology::load(&topology_fixture()).unwrap();
    let run = |servers| {
        let options = audit::Options {
            domains: Vec::new(),
            servers,
            topology: Some(&topology),
            settings,
            probe: None,
        };
        audit::run(&options, &mut |_| {}).unwrap().0.names
    };
    let discovered = run(Servers::Discover {
        resolver: bind.addr(),
        port: bind.port(),
    });
    assert_eq!(discovered, run(Servers::Given(vec![bind.addr()])));
    assert!(
        discovered.iter().all(|n| n.findings.is_empty()),
        "{discovered:#?}"
    );

    let (zones, _) = authority::zones_of(&[name("fabrikam.com")], bind.addr(), false, &settings);
    let error = zones[0].as_ref().unwrap_err().to_string();
    assert!(error.contains("REFUSED"), "{error}");
}

#[test]
fn a_large_srv_rrset_is_read_over_tcp_after_truncation() {
    let mut records = String::new();
    for i in 1..=60 {
        records.push_str(&format!(
            "_xmpp-server._tcp IN SRV {} 0 5269 edge-pool-with-a-long-name-{i}.contoso.com.\n",
            i * 10
        ));
    }
    let zone = support::zone_text("contoso.com", 1, &records);
    let bind = Bind::primary(&[("contoso.com", &zone)], &TsigKey::test_key());
    let question = Question {
        server: bind.addr(),
        name: name("_xmpp-server._tcp.contoso.com"),
        qtype: QueryType::Srv,
        recursion_desired: false,
    };
    let (replies, stats) = batch::resolve_all(&[question], &BatchSettings::default(), &mut |_| {});
    let reply = replies[0].as_ref().expect("an answer");
    assert_eq!(reply.answers.len(), 60);
    assert_eq!(stats.tcp, 1, "{stats:?}");
}

/// Forwards datagrams between clients and `upstream`, dropping one query in `one_in`
/// pseudo-randomly (xorshift from `LOSS_SEED`), so the audit sees real loss in front of a real
/// server. (A drop pattern that is not random can hit the same retried question every time;
/// real loss does not.) The seed is fixed so a failure replays; set `XMPPDNS_TEST_LOSS_SEED` to
/// try another sequence.
fn lossy_proxy(
    upstream: SocketAddr,
    one_in: u64,
) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    front
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    back.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let addr = front.local_addr().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (dropped2, stop2) = (dropped.clone(), stop.clone());
    thread::spawn(move || {
        let mut clients = ReplyRoutes::default();
        let mut state = loss_seed();
        let mut buf = [0u8; 65535];
        while !stop2.load(Ordering::Relaxed) {
            while let Ok((n, from)) = front.recv_from(&mut buf) {
                clients.query(&buf[..n], from);
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state.is_multiple_of(one_in) {
                    dropped2.fetch_add(1, Ordering::Relaxed);
                } else {
                    back.send_to(&buf[..n], upstream).ok();
                }
            }
            while let Ok((n, _)) = back.recv_from(&mut buf) {
                if let Some(c) = clients.client(&buf[..n]) {
                    front.send_to(&buf[..n], c).ok();
                }
            }
        }
    });
    (addr, dropped, stop)
}

const LOSS_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// `XMPPDNS_TEST_LOSS_SEED` (decimal, non-zero) or `LOSS_SEED`.
fn loss_seed() -> u64 {
    std::env::var("XMPPDNS_TEST_LOSS_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s != 0)
        .unwrap_or(LOSS_SEED)
}

#[test]
fn lost_queries_are_retried_without_false_findings() {
    // 300 SIP domains, all correct, in one zone; a fifth of all queries lost.
    let mut records = String::from("edgepool1 IN A 192.0.2.10\nedgepool2 IN A 198.51.100.20\n");
    let mut domains = Vec::new();
    for i in 0..300 {
        records.push_str(&format!(
            "_xmpp-server._tcp.d{i} IN SRV 10 0 5269 edgepool1\n_xmpp-server._tcp.d{i} IN SRV 20 0 5269 edgepool2\n"
        ));
        domains.push(name(&format!("d{i}.contoso.com")));
    }
    let zone = support::zone_text("contoso.com", 7, &records);
    let bind = Bind::primary(&[("contoso.com", &zone)], &TsigKey::test_key());
    let (proxy, dropped, stop) = lossy_proxy(bind.addr(), 5);
    let options = audit::Options {
        domains: domains.clone(),
        servers: Servers::Given(vec![proxy]),
        topology: None,
        settings: BatchSettings {
            window: 50,
            // 20% loss: the chance that all 10 attempts of one of the ~900 questions are lost
            // is about 1e-4 per run.
            timeout: Duration::from_millis(100),
            attempts: 10,
        },
        probe: None,
    };
    let (report, _) = audit::run(&options, &mut |_| {}).unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(
        dropped.load(Ordering::Relaxed) > 100,
        "the proxy dropped queries"
    );
    assert!(report.stats.queries.retries > 100, "{:?}", report.stats);
    assert_eq!(report.stats.queries.unanswered, 0, "{:?}", report.stats);
    let findings: Vec<_> = report.findings().collect();
    assert!(findings.is_empty(), "false findings: {findings:#?}");
    assert_eq!(report.summary.sip_domains, 300);
    let audited: BTreeSet<_> = report
        .names
        .iter()
        .filter(|n| n.srv.as_ref().is_some_and(|s| s.len() == 2))
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(audited.len(), 300);
}

// ---------------------------------------------------------------------------------------------
// --probe (rule 9) against Prosody.

#[test]
fn probe_finds_the_xmpp_server_and_reports_the_closed_target() {
    let prosody = support::Prosody::start("contoso.com");
    // Reserved like every other test port: no server of this process is given it.
    let closed = free_port(Transport::Tcp);
    // Peers connect to the SRV port, so the records carry the test ports (rule 2 then fires
    // too: that is expected here).
    let records = format!(
        "_xmpp-server._tcp IN SRV 10 0 {} edgepool1\n_xmpp-server._tcp IN SRV 20 0 {closed} edgepool2\nedgepool1 IN A 127.0.0.1\nedgepool2 IN A 127.0.0.1\n",
        prosody.port()
    );
    let zone = support::zone_text("contoso.com", 3, &records);
    let bind = Bind::primary(&[("contoso.com", &zone)], &TsigKey::test_key());
    let ns = bind.addr().to_string();
    let output = xmppdns(&[
        "audit",
        "--domain",
        "contoso.com",
        "--nameserver",
        &ns,
        "--probe",
        "--format",
        "json",
    ]);
    assert_exit(&output, 4);
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let nines: Vec<&Value> = doc["names"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "9")
        .collect();
    assert_eq!(nines.len(), 1, "{doc:#}");
    assert_eq!(
        nines[0]["record"],
        format!("edgepool2.contoso.com. port {closed}")
    );
    let probes = doc["probes"].as_array().expect("probes listed");
    assert_eq!(probes.len(), 2, "{doc:#}");
    let by_target = |t: &str| probes.iter().find(|p| p["target"] == t).expect(t);
    let live = by_target("edgepool1.contoso.com.");
    assert_eq!(live["status"], "xmpp");
    assert_eq!(live["starttls"], true);
    assert_eq!(live["address"], prosody.addr().to_string());
    assert_eq!(by_target("edgepool2.contoso.com.")["status"], "closed");
}

// ---------------------------------------------------------------------------------------------
// init --from-dns

#[test]
fn init_from_dns_writes_a_topology_that_plans_no_srv_change() {
    let fabrikam = "$ORIGIN fabrikam.com.\n$TTL 3600\n@ IN SOA ns1.contoso.com. hostmaster.contoso.com. ( 7 3600 600 86400 300 )\n@ IN NS ns1.contoso.com.\n_xmpp-server._tcp IN SRV 10 0 5269 edgepool1.contoso.com.\n_xmpp-server._tcp IN SRV 20 0 5269 edgepool2.contoso.com.\n";
    let bind = Bind::primary(
        &[
            ("contoso.com", &zone_fixture("correct")),
            ("fabrikam.com", fabrikam),
        ],
        &TsigKey::test_key(),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("topology.json");
    let ns = bind.addr().to_string();
    let output = xmppdns(&[
        "init",
        "--from-dns",
        "--domain",
        "contoso.com",
        "--domain",
        "fabrikam.com",
        "--nameserver",
        &ns,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let notes = String::from_utf8_lossy(&output.stderr);
    let note_lines: Vec<&str> = notes.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(
        note_lines,
        [
            "note: pools are marked `\"placeholder\": true`: their sites (Site1, Site2, ...) and empty `servers` are guesses, as DNS does not tell them; fill them in and remove the marker before using the failover runbook".to_string(),
            format!("note: provider: RFC 2136 to {ns} with \"auth\": \"none\" (unsigned; reads work where queries are allowed); before `apply`, give key_file (TSIG) or \"auth\": \"gss-tsig\" (Kerberos)"),
        ],
        "{notes}"
    );
    assert_eq!(
        notes.lines().next(),
        Some(format!("wrote {}", out.display()).as_str()),
        "{notes}"
    );
    assert_eq!(
        notes.lines().count(),
        3,
        "`wrote` and the notes only: {notes}"
    );

    let topology = xmppdns::topology::Topology::load(&out)
        .unwrap_or_else(|e| panic!("{e}\n{}", fs::read_to_string(&out).unwrap()));
    assert_eq!(topology.active_pool().fqdn, name("edgepool1.contoso.com"));
    assert_eq!(
        topology.active_pool().ipv4,
        vec!["192.0.2.10".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    let pools: Vec<(&str, &str)> = topology
        .pools
        .iter()
        .map(|p| (p.name.as_str(), p.site.as_str()))
        .collect();
    assert_eq!(pools, [("edgepool1", "Site1"), ("edgepool2", "Site2")]);
    assert_eq!(topology.active_pool().name, "edgepool1");
    assert_eq!(topology.pools[1].fqdn, name("edgepool2.contoso.com"));
    assert_eq!(topology.federation.name, name("xmpp.contoso.com"));
    assert_eq!(topology.federation.ttl, 300);
    assert_eq!(
        topology.zones,
        vec![name("contoso.com"), name("fabrikam.com")]
    );
    // The servers it asked; the targets' addresses, served in the zones, are managed; every
    // pool is a placeholder until a person fills in its site and servers.
    assert_eq!(topology.nameservers, vec![bind.addr()]);
    assert!(topology.manage_target_addresses);
    assert!(topology.pools.iter().all(|p| p.placeholder));
    let written: Value = serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["pools"][0]["placeholder"], true);
    assert_eq!(written["nameservers"], serde_json::json!([ns]));

    // Planned against the same server (read by query: transfers need the key), nothing changes.
    let plan = xmppdns(&["plan", out.to_str().unwrap(), "--format", "json"]);
    assert_exit(&plan, 0);
    let doc: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(doc["changes"], Value::Array(vec![]), "{doc:#}");

    // And it audits clean with itself as the topology: no finding at all, drift included.
    let audit = xmppdns(&[
        "audit",
        out.to_str().unwrap(),
        "--nameserver",
        &ns,
        "--format",
        "json",
    ]);
    assert_exit(&audit, 0);
    let (_, doc) = normalised(&audit, &[bind.addr()]);
    assert_eq!(rules(&doc), vec![], "{doc:#}");
    assert_eq!(
        doc["summary"]["sip_domains"],
        2,
        "{doc:#}\n{}",
        fs::read_to_string(&out).unwrap()
    );
    let leading: Vec<&Value> = doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "sip-domain")
        .map(|n| &n["leading_pool"])
        .collect();
    assert_eq!(leading, ["edgepool1", "edgepool1"], "{doc:#}");

    // --federation names the record (one without an A record yet is noted); a name whose zone
    // is not served is refused and nothing is written.
    let named = dir.path().join("named.json");
    let output = xmppdns(&[
        "init",
        "--from-dns",
        "--domain",
        "fabrikam.com",
        "--nameserver",
        &ns,
        "--federation",
        "fed.contoso.com",
        "--out",
        named.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let notes = String::from_utf8_lossy(&output.stderr);
    assert!(
        notes.contains("note: fed.contoso.com. has no A record yet"),
        "{notes}"
    );
    let named = xmppdns::topology::Topology::load(&named).unwrap();
    assert!(named.manage_target_addresses);
    assert_eq!(named.federation.name, name("fed.contoso.com"));
    assert_eq!(named.zones, vec![name("fabrikam.com"), name("contoso.com")]);
    // Targets outside the zones it writes: their addresses are not managed.
    let outside = dir.path().join("outside.json");
    let output = xmppdns(&[
        "init",
        "--from-dns",
        "--domain",
        "fabrikam.com",
        "--nameserver",
        &ns,
        "--federation",
        "xmpp.fabrikam.com",
        "--out",
        outside.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let outside = xmppdns::topology::Topology::load(&outside).unwrap();
    assert_eq!(outside.zones, vec![name("fabrikam.com")]);
    assert!(!outside.manage_target_addresses);
    let other = dir.path().join("other.json");
    let output = xmppdns(&[
        "init",
        "--from-dns",
        "--domain",
        "fabrikam.com",
        "--nameserver",
        &ns,
        "--federation",
        "xmpp.example.org",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the zone of the federation record xmpp.example.org. could not be found"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!other.exists());

    // Never overwrites.
    let again = xmppdns(&[
        "init",
        "--from-dns",
        "--domain",
        "contoso.com",
        "--nameserver",
        &ns,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_exit(&again, 1);
    assert!(String::from_utf8_lossy(&again.stderr).contains("not overwriting"));
}

#[test]
fn targets_in_a_zone_on_other_servers_are_read_there() {
    let key = TsigKey::test_key();
    let fabrikam = "$ORIGIN fabrikam.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster ( 5 3600 600 86400 300 )\n@ IN NS ns1\nns1 IN A 127.0.0.1\n_xmpp-server._tcp IN SRV 10 0 5269 edgepool1.contoso.com.\n_xmpp-server._tcp IN SRV 20 0 5269 edgepool2.contoso.com.\n";
    let fabrikam_server = Bind::primary(&[("fabrikam.com", fabrikam)], &key);
    let contoso_server = Bind::primary(&[("contoso.com", &zone_fixture("correct"))], &key);
    let (a, b) = (
        fabrikam_server.addr().to_string(),
        contoso_server.addr().to_string(),
    );
    let output = xmppdns(&[
        "audit",
        "--domain",
        "fabrikam.com",
        "--format",
        "json",
        "--nameserver",
        &a,
        "--nameserver",
        &b,
    ]);
    assert_exit(&output, 0);
    let (text, doc) = normalised(&output, &[fabrikam_server.addr(), contoso_server.addr()]);
    golden("target-zone-elsewhere.json", &text);
    // The targets resolve (no rule 5), they are outside the record's zone (13), and each
    // server's refusal of the other zone is noted, not taken for disagreement (16 info only).
    assert_eq!(
        rules(&doc),
        vec![
            ("16".into(), "info".into()),
            ("13".into(), "warning".into()),
            ("13".into(), "warning".into()),
            ("16".into(), "info".into()),
        ],
        "{doc:#}"
    );
}

/// Where a test proxy sends each reply: back to the address its query came from, found by the
/// query ID (the audit asks from several sockets, so there is no one client to send to).
#[derive(Default)]
struct ReplyRoutes(std::collections::HashMap<[u8; 2], SocketAddr>);

impl ReplyRoutes {
    fn query(&mut self, query: &[u8], from: SocketAddr) {
        if let [a, b, ..] = *query {
            self.0.insert([a, b], from);
        }
    }

    fn client(&self, reply: &[u8]) -> Option<SocketAddr> {
        self.0.get(reply.get(..2)?).copied()
    }
}

/// Forwards datagrams between clients and `upstream`, holding every reply back for `delay`.
fn slow_proxy(upstream: SocketAddr, delay: Duration) -> (SocketAddr, Arc<AtomicBool>) {
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    front
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    back.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let addr = front.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    thread::spawn(move || {
        let mut clients = ReplyRoutes::default();
        let mut held: std::collections::VecDeque<(std::time::Instant, Vec<u8>)> =
            Default::default();
        let mut buf = [0u8; 65535];
        while !stop2.load(Ordering::Relaxed) {
            while let Ok((n, from)) = front.recv_from(&mut buf) {
                clients.query(&buf[..n], from);
                back.send_to(&buf[..n], upstream).ok();
            }
            while let Ok((n, _)) = back.recv_from(&mut buf) {
                held.push_back((std::time::Instant::now() + delay, buf[..n].to_vec()));
            }
            while held
                .front()
                .is_some_and(|(at, _)| *at <= std::time::Instant::now())
            {
                let (_, reply) = held.pop_front().unwrap();
                if let Some(c) = clients.client(&reply) {
                    front.send_to(&reply, c).ok();
                }
            }
        }
    });
    (addr, stop)
}

#[test]
fn replies_slower_than_the_first_timeout_still_count() {
    let bind = serve("correct");
    let (proxy, stop) = slow_proxy(bind.addr(), Duration::from_millis(150));
    let options = audit::Options {
        domains: vec![name("contoso.com")],
        servers: Servers::Given(vec![proxy]),
        topology: None,
        settings: BatchSettings {
            window: 10,
            timeout: Duration::from_millis(100),
            attempts: 4,
        },
        probe: None,
    };
    let (report, _) = audit::run(&options, &mut |_| {}).unwrap();
    stop.store(true, Ordering::Relaxed);
    let stats = report.stats.queries;
    assert!(stats.late > 0, "{stats:?}");
    assert_eq!(stats.unanswered, 0, "{stats:?}");
    let findings: Vec<_> = report.findings().collect();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn bind_primary_and_knot_secondary_in_step_agree() {
    // Two implementations serving the same zone must not look like a disagreement (record
    // order, TTLs, EDNS handling differ between them).
    let key = TsigKey::test_key();
    let (bind, knot) =
        support::bind_with_knot_secondary(&[("contoso.com", &zone_fixture("correct"))], &key);
    let topology = topology_fixture();
    let (a, b) = (bind.addr().to_string(), knot.addr().to_string());
    let output = xmppdns(&[
        "audit",
        topology.to_str().unwrap(),
        "--format",
        "json",
        "--nameserver",
        &a,
        "--nameserver",
        &b,
    ]);
    assert_exit(&output, 0);
    let (_, doc) = normalised(&output, &[bind.addr(), knot.addr()]);
    assert_eq!(rules(&doc), vec![], "{doc:#}");
    let zone = doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "zone")
        .expect("zone entry");
    assert_eq!(zone["serials"]["<NS1>"], zone["serials"]["<NS2>"]);
}

// ---------------------------------------------------------------------------------------------
// The progress bar: on a terminal, for table output only.

/// Runs the binary under a pseudo-terminal (`script` from util-linux, in every Debian) and
/// returns everything the terminal showed.
fn on_a_terminal(args: &[String]) -> String {
    let program = env!("CARGO_BIN_EXE_xmppdns");
    let command = std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn progress_bar_only_on_a_terminal_and_only_for_tables() {
    let mut records = String::from("edgepool1 IN A 192.0.2.10\n");
    let mut args = vec!["audit".to_string()];
    for i in 0..300 {
        records.push_str(&format!(
            "_xmpp-server._tcp.d{i} IN SRV 10 0 5269 edgepool1\n"
        ));
        args.push("--domain".into());
        args.push(format!("d{i}.contoso.com"));
    }
    let zone = support::zone_text("contoso.com", 9, &records);
    let bind = Bind::primary(&[("contoso.com", &zone)], &TsigKey::test_key());
    args.push("--nameserver".into());
    args.push(bind.addr().to_string());

    let table = on_a_terminal(&args);
    // One server: the zones and the SRV records are read in one round.
    assert!(table.contains("reading zones and SRV records"), "{table}");
    assert!(table.contains("Audit OK: 300 SIP domain(s)"), "{table}");

    args.extend(["--format".into(), "json".into()]);
    let json = on_a_terminal(&args);
    assert!(!json.contains("reading zones and SRV records"), "{json}");
    assert!(json.contains("\"format\": \"xmppdns-audit/1\""), "{json}");

    // Not a terminal (the other tests): no bar, nothing on stderr.
    let arg_refs: Vec<&str> = args[..args.len() - 2].iter().map(String::as_str).collect();
    let plain = xmppdns(&arg_refs);
    assert_exit(&plain, 0);
    assert_eq!(String::from_utf8_lossy(&plain.stderr), "");
}

#[test]
fn a_silent_server_is_reported_and_waited_for_only_once() {
    let bind = serve("correct");
    // A UDP socket that never answers: a server that is down without an ICMP error.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let (a, b) = (bind.addr().to_string(), silent_addr.to_string());
    let started = std::time::Instant::now();
    let output = xmppdns(&[
        "audit",
        "--domain",
        "contoso.com",
        "--format",
        "json",
        "--timeout-ms",
        "100",
        "--nameserver",
        &a,
        "--nameserver",
        &b,
    ]);
    let elapsed = started.elapsed();
    assert_exit(&output, 4);
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(has(&doc, "16", "error"), "{doc:#}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not asked again"), "{stderr}");
    // What the silent server was sent, counted rather than timed (a busy machine stretches
    // time, not datagrams): the first round's one question to it, tried 4 times, then nothing
    // (a second round, or a wait per question, would send more).
    silent.set_nonblocking(true).unwrap();
    let mut datagrams = 0;
    let mut buf = [0u8; 512];
    while silent.recv_from(&mut buf).is_ok() {
        datagrams += 1;
    }
    assert_eq!(datagrams, 4, "datagrams to the silent server");
    // A generous wall-clock bound only against hanging (one round of waiting is 1.5 s).
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// Rules the fixture cases do not reach, through the CLI.

/// The correct fixture's records (without SOA, NS and ns1) with `replace` lines swapped for
/// `with`, served by BIND; the audit's JSON for contoso.com with the fixture topology or none.
fn audit_records(replace: &[(&str, &str)], with_topology: bool, exit: i32) -> Value {
    let mut zone = zone_fixture("correct");
    for (old, new) in replace {
        assert!(zone.contains(old), "`{old}` not in the correct fixture");
        zone = zone.replace(old, new);
    }
    let bind = Bind::primary(&[("contoso.com", &zone)], &TsigKey::test_key());
    let ns = bind.addr().to_string();
    let topology = topology_fixture();
    let mut args = vec!["audit", "--format", "json", "--nameserver", &ns];
    if with_topology {
        args.insert(1, topology.to_str().unwrap());
    } else {
        args.extend(["--domain", "contoso.com"]);
    }
    let output = xmppdns(&args);
    assert_exit(&output, exit);
    normalised(&output, &[bind.addr()]).1
}

/// The findings of `rule` in an audit document.
fn findings_of<'a>(doc: &'a Value, rule: &str) -> Vec<&'a Value> {
    doc["names"]
        .as_array()
        .expect("names")
        .iter()
        .flat_map(|n| n["findings"].as_array().expect("findings").iter())
        .filter(|f| f["rule"] == rule)
        .collect()
}

#[test]
fn rule_4_a_dot_target_beside_real_targets_is_a_warning() {
    let doc = audit_records(
        &[(
            "_xmpp-server._tcp IN SRV 20 0 5269 edgepool2",
            "_xmpp-server._tcp IN SRV 20 0 5269 .",
        )],
        false,
        0,
    );
    assert_eq!(rules(&doc), vec![("4".into(), "warning".into())], "{doc:#}");
}

#[test]
fn rule_11_a_non_zero_weight_alone_at_its_priority_is_info() {
    let doc = audit_records(
        &[(
            "_xmpp-server._tcp IN SRV 10 0 5269 edgepool1",
            "_xmpp-server._tcp IN SRV 10 5 5269 edgepool1",
        )],
        false,
        0,
    );
    assert_eq!(rules(&doc), vec![("11".into(), "info".into())], "{doc:#}");
    assert_eq!(doc["summary"]["info"], 1);
}

#[test]
fn rule_15_a_tlsa_record_at_a_target_is_noted() {
    let tlsa = "_5269._tcp.edgepool1 IN TLSA 3 1 1 \
                0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6";
    let doc = audit_records(
        &[(
            "edgepool1 IN A 192.0.2.10",
            &format!("edgepool1 IN A 192.0.2.10\n{tlsa}"),
        )],
        false,
        0,
    );
    assert_eq!(rules(&doc), vec![("15".into(), "info".into())], "{doc:#}");
    let finding = findings_of(&doc, "15")[0];
    assert!(
        finding["record"]
            .as_str()
            .unwrap()
            .contains("_5269._tcp.edgepool1.contoso.com."),
        "{finding:#}"
    );
}

#[test]
fn rule_5_a_target_in_a_zone_the_audited_servers_do_not_serve_is_a_warning() {
    // BIND serves only contoso.com and refuses fabrikam.com: the target cannot be checked
    // here, which is a warning, not the error of a target without addresses.
    let doc = audit_records(
        &[(
            "_xmpp-server._tcp IN SRV 20 0 5269 edgepool2",
            "_xmpp-server._tcp IN SRV 20 0 5269 edge.fabrikam.com.",
        )],
        false,
        0,
    );
    let fives = findings_of(&doc, "5");
    assert_eq!(fives.len(), 1, "{doc:#}");
    assert_eq!(fives[0]["severity"], "warning", "{doc:#}");
    assert!(
        fives[0]["message"]
            .as_str()
            .unwrap()
            .contains("edge.fabrikam.com."),
        "{doc:#}"
    );
    assert_eq!(doc["summary"]["errors"], 0, "{doc:#}");
}

#[test]
fn rule_6_with_a_topology_an_unknown_target_is_an_error() {
    let doc = audit_records(
        &[(
            "edgepool2 IN A 198.51.100.20",
            "edgepool2 IN A 198.51.100.20\n_xmpp-server._tcp IN SRV 30 0 5269 edgepool3\nedgepool3 IN A 203.0.113.30",
        )],
        true,
        4,
    );
    let sixes = findings_of(&doc, "6");
    assert_eq!(sixes.len(), 1, "{doc:#}");
    assert_eq!(sixes[0]["severity"], "error");
    assert!(
        sixes[0]["message"]
            .as_str()
            .unwrap()
            .contains("edgepool3.contoso.com."),
        "{doc:#}"
    );
    // The plan would remove it: drift too.
    assert!(has(&doc, "drift", "warning"), "{doc:#}");
    // Without a topology, a third distinct target is no finding.
    let doc = audit_records(
        &[(
            "edgepool2 IN A 198.51.100.20",
            "edgepool2 IN A 198.51.100.20\n_xmpp-server._tcp IN SRV 30 0 5269 edgepool3\nedgepool3 IN A 203.0.113.30",
        )],
        false,
        0,
    );
    assert_eq!(rules(&doc), vec![], "{doc:#}");
}

#[test]
fn rule_8_a_target_resolving_to_another_address_than_its_pool_is_an_error() {
    let doc = audit_records(
        &[(
            "edgepool2 IN A 198.51.100.20",
            "edgepool2 IN A 198.51.100.99",
        )],
        true,
        4,
    );
    let eights = findings_of(&doc, "8");
    assert_eq!(eights.len(), 1, "{doc:#}");
    assert_eq!(eights[0]["severity"], "error");
    let message = eights[0]["message"].as_str().unwrap();
    assert!(
        message.contains("edgepool2.contoso.com.")
            && message.contains("198.51.100.99")
            && message.contains("198.51.100.20"),
        "{doc:#}"
    );
    // The federation record is right: the finding is the target's, not the federation's.
    assert_eq!(eights[0]["domain"], "contoso.com.", "{doc:#}");
}

#[test]
fn reach_a_zone_no_server_answers_is_an_error() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ns = silent.local_addr().unwrap().to_string();
    let output = xmppdns(&[
        "audit",
        "--domain",
        "contoso.com",
        "--format",
        "json",
        "--timeout-ms",
        "50",
        "--nameserver",
        &ns,
    ]);
    assert_exit(&output, 4);
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let reach = findings_of(&doc, "reach");
    assert!(!reach.is_empty(), "{doc:#}");
    assert!(reach.iter().all(|f| f["severity"] == "error"), "{doc:#}");
    assert!(doc["stats"]["unanswered"].as_u64().unwrap() > 0, "{doc:#}");
}

/// Forwards datagrams between clients and `upstream` and records the most queries that
/// were ever forwarded and not yet answered.
fn in_flight_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    front
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    back.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let addr = front.local_addr().unwrap();
    let most = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (most2, stop2) = (most.clone(), stop.clone());
    thread::spawn(move || {
        let mut clients = ReplyRoutes::default();
        let mut open = BTreeSet::new();
        let mut buf = [0u8; 65535];
        while !stop2.load(Ordering::Relaxed) {
            while let Ok((n, from)) = front.recv_from(&mut buf) {
                clients.query(&buf[..n], from);
                open.insert([buf[0], buf[1]]);
                most2.fetch_max(open.len(), Ordering::Relaxed);
                back.send_to(&buf[..n], upstream).ok();
            }
            while let Ok((n, _)) = back.recv_from(&mut buf) {
                open.remove(&[buf[0], buf[1]]);
                if let Some(c) = clients.client(&buf[..n]) {
                    front.send_to(&buf[..n], c).ok();
                }
            }
        }
    });
    (addr, most, stop)
}

#[test]
fn concurrency_bounds_the_queries_in_flight() {
    let mut records = String::from("edgepool1 IN A 192.0.2.10\nedgepool2 IN A 198.51.100.20\n");
    let mut args: Vec<String> = vec!["audit".into(), "--format".into(), "json".into()];
    for i in 0..60 {
        records.push_str(&format!(
            "_xmpp-server._tcp.d{i} IN SRV 10 0 5269 edgepool1\n_xmpp-server._tcp.d{i} IN SRV 20 0 5269 edgepool2\n"
        ));
        args.extend(["--domain".into(), format!("d{i}.contoso.com")]);
    }
    let zone = support::zone_text("contoso.com", 11, &records);
    let bind = Bind::primary(&[("contoso.com", &zone)], &TsigKey::test_key());
    for (concurrency, bound) in [("1", 1), ("3", 3), ("100", 100)] {
        let (proxy, most, stop) = in_flight_proxy(bind.addr());
        let mut run_args = args.clone();
        run_args.extend([
            "--nameserver".into(),
            proxy.to_string(),
            "--concurrency".into(),
            concurrency.into(),
        ]);
        let refs: Vec<&str> = run_args.iter().map(String::as_str).collect();
        let output = xmppdns(&refs);
        stop.store(true, Ordering::Relaxed);
        assert_exit(&output, 0);
        let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(doc["summary"]["sip_domains"], 60);
        let most = most.load(Ordering::Relaxed);
        assert!(
            (1..=bound).contains(&most),
            "--concurrency {concurrency}: {most} queries in flight at once"
        );
        if concurrency == "100" {
            assert!(most > 3, "the default window is really used: {most}");
        }
    }
}

/// A zone for the parts test: `kind` picks what is in it (see the test).
fn parts_zone(i: usize, kind: usize) -> String {
    let mut zone = String::from(
        "$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 127.0.0.1\n",
    );
    zone.push_str("edgepool1 IN A 192.0.2.10\n");
    zone.push_str(match kind {
        // Correct: one pool here, one in the provider's zone (a target outside every audited
        // zone, found late and shared by every domain of this kind).
        0 => "_xmpp-server._tcp IN SRV 10 0 5269 edgepool1\n_xmpp-server._tcp IN SRV 20 0 5269 edge.pools.test.\n",
        // No SRV record: the domain's own addresses and the misplaced owners are read.
        1 => "@ IN A 192.0.2.99\n",
        // The target is in the next audited domain's zone.
        2 => "",
        // "Service not offered".
        3 => "_xmpp-server._tcp IN SRV 0 0 0 .\n",
        // A target without addresses.
        _ => "_xmpp-server._tcp IN SRV 10 0 5269 nowhere\n",
    });
    if kind == 2 {
        zone.push_str(&format!(
            "_xmpp-server._tcp IN SRV 10 0 5269 edgepool1.d{}.test.\n",
            i + 1
        ));
    }
    zone
}

#[test]
fn an_audit_read_in_parts_finds_what_one_reading_finds() {
    // 30 one-domain zones of five kinds, a provider zone, a domain nobody serves, and a second
    // server that refuses some zones: the parts' merged snapshot must give the same report as
    // one reading, which the audit uses below twice `parts::DOMAINS_PER_PART` domains.
    let zones: Vec<(String, String)> = (0..30)
        .map(|i| (format!("d{i}.test"), parts_zone(i, i % 5)))
        .chain([(
            "pools.test".to_string(),
            "$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 127.0.0.1\nedge IN A 198.51.100.20\n".to_string(),
        )])
        .collect();
    let all: Vec<(&str, &str)> = zones
        .iter()
        .map(|(n, z)| (n.as_str(), z.as_str()))
        .collect();
    let key = TsigKey::test_key();
    let first = Bind::primary(&all, &key);
    let some: Vec<(&str, &str)> = all
        .iter()
        .copied()
        .filter(|(n, _)| !n.starts_with("d1"))
        .collect();
    let second = Bind::primary(&some, &key);
    let domains: Vec<Fqdn> = (0..30)
        .map(|i| name(&format!("d{i}.test")))
        .chain([name("missing.test")])
        .collect();
    let request = audit::collect::Request {
        domains: domains.clone(),
        servers: Servers::Given(vec![first.addr(), second.addr()]),
        extra_zones: Vec::new(),
        extra_keys: Default::default(),
        settings: BatchSettings::default(),
    };
    let read = |parts: usize| {
        let snapshot = audit::parts::collect_in_parts(&request, parts, &mut |_| {});
        let names = audit::rules::check(&snapshot, &domains, None);
        (snapshot, serde_json::to_string_pretty(&names).unwrap())
    };
    let (one, one_report) = read(1);
    let (two, two_report) = read(2);
    assert_eq!(two_report, one_report);
    assert_eq!(two.zone_of, one.zone_of);
    assert_eq!(two.servers, one.servers);
    assert_eq!(two.not_serving, one.not_serving);
    assert_eq!(two.down, one.down);
    // The cases are really there: a refused zone, an unknown one, rule 3's dot, a finding.
    assert!(
        one.not_serving.contains_key(&name("d1.test")),
        "{:?}",
        one.not_serving
    );
    assert!(one.zone_of[&name("missing.test")].is_err());
    assert!(one_report.contains("\"rule\": \"3\""), "{one_report}");
    // Only the provider zone's questions are asked by both parts: the SOA that finds its
    // zone, the zone's SOA at both servers, and its target's A, AAAA and TLSA at both.
    assert_eq!(
        two.stats.questions,
        one.stats.questions + 1 + 2 + 6,
        "{:?} {:?}",
        two.stats,
        one.stats
    );
}

#[test]
fn the_soa_that_finds_a_zone_is_not_asked_again_for_its_serial() {
    // contoso.com with two pools: its SOA (which both finds the zone and gives the serial),
    // the two SRV owners, and A, AAAA and TLSA of each target: 9 questions, no second SOA.
    let bind = serve("correct");
    let options = audit::Options {
        domains: vec![name("contoso.com")],
        servers: Servers::Given(vec![bind.addr()]),
        topology: None,
        settings: BatchSettings::default(),
        probe: None,
    };
    let (report, snapshot) = audit::run(&options, &mut |_| {}).unwrap();
    assert_eq!(
        report.stats.queries.questions,
        1 + 2 + 2 * 3,
        "{:?}",
        report.stats
    );
    let soa = snapshot.all(&name("contoso.com"), QueryType::Soa);
    assert_eq!(soa.len(), 1, "{soa:?}");
    assert_eq!(soa[0].0, bind.addr());
    assert_eq!(report.findings().count(), 0);
}

/// The SRV lookups of `owner`, as (server, answered).
fn srv_lookups(snapshot: &audit::collect::Snapshot, owner: &str) -> Vec<(SocketAddr, bool)> {
    snapshot
        .all(&name(owner), QueryType::Srv)
        .iter()
        .map(|(server, lookup)| {
            let answered = matches!(lookup, audit::collect::Lookup::Answered(_));
            (*server, answered)
        })
        .collect()
}

#[test]
fn srv_records_read_with_the_zones_are_dropped_where_the_first_server_does_not_serve_the_zone() {
    // The first server is asked each domain's SRV RRsets beside its SOA, before it is known to
    // serve the zone. It refuses d1.test: its answers for d1 must go, as if never asked.
    let key = TsigKey::test_key();
    let (d0, d1) = (parts_zone(0, 3), parts_zone(1, 3));
    let first = Bind::primary(&[("d0.test", d0.as_str())], &key);
    let second = Bind::primary(&[("d0.test", d0.as_str()), ("d1.test", d1.as_str())], &key);
    let request = audit::collect::Request {
        domains: vec![name("d0.test"), name("d1.test")],
        servers: Servers::Given(vec![first.addr(), second.addr()]),
        extra_zones: Vec::new(),
        extra_keys: Default::default(),
        settings: BatchSettings::default(),
    };
    let snapshot = audit::collect::collect(&request, &mut |_| {});
    assert_eq!(
        snapshot.not_serving[&name("d1.test")],
        vec![(first.addr(), 5)],
        "the first server refuses d1.test"
    );
    for owner in ["_xmpp-server._tcp.d1.test", "_xmpps-server._tcp.d1.test"] {
        assert_eq!(srv_lookups(&snapshot, owner), vec![(second.addr(), true)]);
    }
    // d0.test: both servers, the first one's answer first (the one the rules judge).
    for owner in ["_xmpp-server._tcp.d0.test", "_xmpps-server._tcp.d0.test"] {
        assert_eq!(
            srv_lookups(&snapshot, owner),
            vec![(first.addr(), true), (second.addr(), true)]
        );
    }
    // 6 with the zones at the first server, d1's SOA at the second, 3 serials, and each
    // domain's 2 SRV RRsets at the second (the 2 dropped are the only ones asked twice).
    assert_eq!(
        snapshot.stats.questions,
        6 + 1 + 3 + 4,
        "{:?}",
        snapshot.stats
    );
    // Rule 16 says only that d1.test is refused there; no server differs on an SRV RRset.
    let names = audit::rules::check(&snapshot, &request.domains, None);
    let doc = serde_json::to_value(&names).unwrap();
    let rule_16: Vec<&Value> = doc
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["findings"].as_array().unwrap())
        .filter(|f| f["rule"] == "16")
        .collect();
    assert_eq!(rule_16.len(), 1, "{rule_16:?}");
    assert_eq!(rule_16[0]["record"], "d1.test. SOA");
}

/// Reads `domain` with a silent server (a socket that never answers) given first and `bind`
/// second; the silent one is found down.
fn read_behind_a_silent_server(bind: &Bind, domain: &str) -> (UdpSocket, audit::collect::Snapshot) {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let request = audit::collect::Request {
        domains: vec![name(domain)],
        servers: Servers::Given(vec![silent.local_addr().unwrap(), bind.addr()]),
        extra_zones: Vec::new(),
        extra_keys: Default::default(),
        settings: BatchSettings {
            timeout: Duration::from_millis(50),
            ..Default::default()
        },
    };
    let snapshot = audit::collect::collect(&request, &mut |_| {});
    assert!(snapshot.down.contains(&silent.local_addr().unwrap()));
    (silent, snapshot)
}

#[test]
fn a_silent_first_server_keeps_no_srv_answer_from_the_zone_round() {
    let bind = serve("correct");
    let (silent, snapshot) = read_behind_a_silent_server(&bind, "contoso.com");
    // What separate rounds record for a server found down: "not asked again", not the
    // timeouts of the questions sent beside the zones'.
    let lookups = snapshot.all(&name("_xmpp-server._tcp.contoso.com"), QueryType::Srv);
    assert_eq!(lookups.len(), 2, "{lookups:?}");
    match &lookups[0] {
        (server, audit::collect::Lookup::Failed(why)) => {
            assert_eq!(*server, silent.local_addr().unwrap());
            assert!(why.contains("not asked again"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lookups[1].0, bind.addr());
    assert!(matches!(lookups[1].1, audit::collect::Lookup::Answered(_)));
}

#[test]
fn a_server_found_down_is_not_asked_for_the_zones_of_targets_either() {
    // d0.test's SRV target is in pools.test, whose zone is found after the domains' zones.
    // The first server is silent: it must not be asked (and waited for) about pools.test.
    let provider = "$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 127.0.0.1\nedge IN A 198.51.100.20\n";
    let d0 = parts_zone(0, 0);
    let bind = Bind::primary(
        &[("d0.test", d0.as_str()), ("pools.test", provider)],
        &TsigKey::test_key(),
    );
    let (silent, snapshot) = read_behind_a_silent_server(&bind, "d0.test");
    assert_eq!(snapshot.zone_of[&name("d0.test")], Ok(name("d0.test")));
    let target = snapshot.all(&name("edge.pools.test"), QueryType::A);
    assert!(
        target
            .iter()
            .any(|(s, l)| *s == bind.addr() && matches!(l, audit::collect::Lookup::Answered(_))),
        "{target:?}"
    );
    // What reached the silent server: questions about d0.test only.
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let mut datagrams = 0;
    while let Ok(n) = silent.recv(&mut buf) {
        datagrams += 1;
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(!text.contains("pools"), "asked about pools.test: {text:?}");
    }
    assert!(datagrams > 0, "the silent server was never asked");
}
