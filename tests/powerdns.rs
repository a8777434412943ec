//! The powerdns provider against a real PowerDNS Authoritative server (sqlite backend, HTTP API)
//! on 127.0.0.1: plan and apply through the CLI, idempotence, stale plans (saved, and changed
//! between the provider's re-read and its PATCH), each way the API says no (wrong key, unknown
//! zone, a rejected record, nothing listening, a stalled server), NOTIFY, disabled records,
//! `dig` against the server's DNS port for what was really written; a reverse proxy (in this
//! file) that answers 502 to, or drops, a PATCH it forwarded: the provider re-reads the zone.
//!
//! In-process provider calls use `Environment::system_without_proxy()` and the CLI runs without
//! the proxy variables: the API key must never go through a proxy the machine happens to set.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::http::http_request;
use support::{dig, free_port, ready_timeout, soa_serial, PowerDns, Transport};
use xmppdns::app;
use xmppdns::error::exit;
use xmppdns::provider::{self, Environment, ProviderError};
use xmppdns::records::{Fqdn, RecordType, RrKey};
use xmppdns::topology::Topology;

const ZONE: &str = "contoso.com.";
/// Where every library-level test keeps the key (the CLI tests also use `api_key_env`).
const KEY_FILE: &str = "pdns.key";
/// The environment variable the CLI tests pass the key in.
const KEY_VAR: &str = "XMPPDNS_TEST_PDNS_API_KEY";

/// A PowerDNS server with contoso.com created through the API, and a scratch folder.
struct Lab {
    pdns: PowerDns,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let pdns = PowerDns::start();
        pdns.create_zone(ZONE, &["ns1.contoso.com"]);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(KEY_FILE), format!("{}\n", pdns.api_key()))
            .expect("write key file");
        Lab { pdns, dir }
    }

    /// The provider settings for this server, with `extra` merged in.
    fn provider(&self, extra: Value) -> Value {
        let mut provider = json!({
            "kind": "powerdns",
            "api_url": self.pdns.api_url(),
            "api_key_file": KEY_FILE,
            "timeout_ms": 5000,
        });
        for (k, v) in extra.as_object().expect("an object") {
            if v.is_null() {
                provider.as_object_mut().unwrap().remove(k);
            } else {
                provider[k] = v.clone();
            }
        }
        provider
    }

    /// Writes topology.json (contoso.com, two pools, target addresses managed) with these
    /// provider settings and returns its path.
    fn write_topology(&self, provider: Value, zones: &[&str]) -> PathBuf {
        let topology = json!({
            "zones": zones,
            "sip_domains": zones,
            "active_pool": "EdgePool1",
            "federation": {"name": "xmpp.contoso.com", "ttl": 300},
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
                 "ipv4": ["192.0.2.10"], "ipv6": ["2001:db8:1::10"]},
                {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com",
                 "ipv4": ["198.51.100.20"]}
            ],
            "ttl": 3600,
            "manage_target_addresses": true,
            "provider": provider,
        });
        let path = self.dir.path().join("topology.json");
        std::fs::write(&path, serde_json::to_string_pretty(&topology).unwrap())
            .expect("write topology");
        path
    }

    fn topology(&self) -> PathBuf {
        self.write_topology(self.provider(json!({})), &["contoso.com"])
    }

    fn path_arg(path: &Path) -> String {
        path.display().to_string()
    }

    /// Runs the binary in the scratch folder with the right key in `KEY_VAR`.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with_key(args, self.pdns.api_key())
    }

    fn run_with_key(&self, args: &[&str], key: &str) -> Output {
        support::xmppdns()
            .args(args)
            .current_dir(self.dir.path())
            .env(KEY_VAR, key)
            .output()
            .expect("the xmppdns binary runs")
    }

    /// One PATCH of rrsets through the API (someone else's change); asserts 204.
    fn patch(&self, rrsets: Value) {
        let response = self.pdns.api(
            "PATCH",
            &format!("/api/v1/servers/localhost/zones/{ZONE}"),
            Some(&json!({ "rrsets": rrsets })),
        );
        assert_eq!(response.status, 204, "PATCH: {}", response.body);
    }

    /// The zone's rrsets as the API returns them, sorted, without the SOA (its serial moves).
    fn rrsets(&self) -> Vec<Value> {
        let zone = self.zone_document();
        let mut rrsets: Vec<Value> = zone["rrsets"]
            .as_array()
            .expect("rrsets")
            .iter()
            .filter(|r| r["type"] != "SOA")
            .cloned()
            .collect();
        rrsets.sort_by_key(|r| format!("{} {}", r["name"], r["type"]));
        rrsets
    }

    fn zone_document(&self) -> Value {
        let response = self.pdns.api(
            "GET",
            &format!("/api/v1/servers/localhost/zones/{ZONE}"),
            None,
        );
        assert_eq!(response.status, 200, "GET zone: {}", response.body);
        response.json()
    }

    /// What the DNS port answers, sorted (PowerDNS may rotate record order).
    fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let mut answers = dig(self.pdns.addr(), name, rtype);
        answers.sort();
        answers
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "expected exit {expected}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(output),
        stderr(output)
    );
}

/// An `error:` line for people, and neither key anywhere in what the tool printed.
#[track_caller]
fn assert_clean_error(output: &Output, keys: &[&str]) {
    let (out, err) = (stdout(output), stderr(output));
    assert!(err.starts_with("error: "), "stderr: {err}");
    for bad in ["panicked", "RUST_BACKTRACE", "Error {", "Some(", "kind: "] {
        assert!(!err.contains(bad), "stderr has `{bad}`:\n{err}");
    }
    for key in keys {
        assert!(
            !out.contains(key) && !err.contains(key),
            "the API key was printed:\n{out}\n{err}"
        );
    }
}

const SRV_NAME: &str = "_xmpp-server._tcp.contoso.com.";

/// Everything the topology asks for, as dig shows it.
fn assert_serves_the_topology(lab: &Lab) {
    assert_eq!(
        lab.dig(SRV_NAME, "SRV"),
        [
            "10 0 5269 edgepool1.contoso.com.",
            "20 0 5269 edgepool2.contoso.com."
        ]
    );
    assert_eq!(lab.dig("xmpp.contoso.com.", "A"), ["192.0.2.10"]);
    assert_eq!(lab.dig("xmpp.contoso.com.", "AAAA"), ["2001:db8:1::10"]);
    assert_eq!(lab.dig("edgepool1.contoso.com.", "A"), ["192.0.2.10"]);
    assert_eq!(
        lab.dig("edgepool1.contoso.com.", "AAAA"),
        ["2001:db8:1::10"]
    );
    assert_eq!(lab.dig("edgepool2.contoso.com.", "A"), ["198.51.100.20"]);
}

#[test]
fn cli_plan_apply_converges_and_dig_sees_what_was_written() {
    let lab = Lab::new();
    // An unmanaged record, and a managed one that is out of date.
    lab.patch(json!([
        {"name": "www.contoso.com.", "type": "A", "ttl": 3600, "changetype": "REPLACE",
         "records": [{"content": "192.0.2.80", "disabled": false}]},
        {"name": "xmpp.contoso.com.", "type": "A", "ttl": 86400, "changetype": "REPLACE",
         "records": [{"content": "198.51.100.99", "disabled": false}]}
    ]));
    // The key from the environment this time.
    let topology = lab.write_topology(
        lab.provider(json!({"api_key_file": null, "api_key_env": KEY_VAR})),
        &["contoso.com"],
    );
    let topology = Lab::path_arg(&topology);
    let serial_before = soa_serial(lab.pdns.addr(), ZONE);

    let plan = lab.run(&["plan", &topology, "--detailed-exitcode"]);
    assert_exit(&plan, exit::CHANGES_PENDING as i32);
    let table = stdout(&plan);
    assert!(table.contains("198.51.100.99"), "{table}");
    assert!(table.contains("edgepool2.contoso.com."), "{table}");

    let apply = lab.run(&["apply", &topology, "--yes"]);
    assert_exit(&apply, 0);
    let out = stdout(&apply);
    assert!(
        out.contains("Applied 6 change(s) to contoso.com.: 1 PATCH of 6 RRset(s) to PowerDNS"),
        "{out}"
    );
    assert!(out.contains("Read back: DNS matches the plan."), "{out}");
    assert!(!out.contains(lab.pdns.api_key()) && !stderr(&apply).contains(lab.pdns.api_key()));

    assert_serves_the_topology(&lab);
    assert_eq!(lab.dig("www.contoso.com.", "A"), ["192.0.2.80"]);
    assert!(soa_serial(lab.pdns.addr(), ZONE) > serial_before);
    let rrsets = lab.rrsets();
    let federation = rrsets
        .iter()
        .find(|r| r["name"] == "xmpp.contoso.com." && r["type"] == "A")
        .expect("federation A");
    assert_eq!(federation["ttl"], 300);

    // A second run finds nothing to do and sends nothing.
    let again = lab.run(&["apply", &topology, "--yes"]);
    assert_exit(&again, 0);
    assert!(
        stdout(&again).contains("No changes: DNS already matches the topology."),
        "{}",
        stdout(&again)
    );
    assert_eq!(lab.rrsets(), rrsets);
    assert_exit(&lab.run(&["plan", &topology, "--detailed-exitcode"]), 0);
}

#[test]
fn saved_plan_gone_stale_is_refused_with_exit_3_and_nothing_changes() {
    let lab = Lab::new();
    let topology = Lab::path_arg(&lab.topology());
    assert_exit(&lab.run(&["plan", &topology, "--out", "plan.json"]), 0);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(saved["provider"], "powerdns");

    // Someone else publishes the federation record between plan and apply.
    lab.patch(json!([
        {"name": "xmpp.contoso.com.", "type": "A", "ttl": 300, "changetype": "REPLACE",
         "records": [{"content": "203.0.113.5", "disabled": false}]}
    ]));
    let before = lab.rrsets();

    let apply = lab.run(&["apply", "plan.json", "--yes"]);
    assert_exit(&apply, exit::REFUSED as i32);
    assert_clean_error(&apply, &[lab.pdns.api_key()]);
    let err = stderr(&apply);
    assert!(err.contains("the saved plan is stale"), "{err}");
    assert!(
        err.contains("xmpp.contoso.com. A: expected absent, found ttl 300 [203.0.113.5]"),
        "{err}"
    );
    assert_eq!(lab.rrsets(), before);
    assert!(lab.dig(SRV_NAME, "SRV").is_empty());

    // Planned again, it applies.
    assert_exit(&lab.run(&["apply", &topology, "--yes"]), 0);
    assert_serves_the_topology(&lab);
}

#[test]
fn a_change_between_plan_and_apply_is_caught_by_the_providers_re_read() {
    let lab = Lab::new();
    let topology = Topology::load(&lab.topology()).unwrap();
    let env = Environment::system_without_proxy();
    let mut provider = provider::open(&topology, &env).unwrap();
    assert_eq!(provider.kind(), "powerdns");

    let plan = app::plan(&topology, provider.as_mut()).unwrap();
    let zone = Fqdn::parse(ZONE).unwrap();
    let changes: Vec<_> = plan.changes_for(&zone).cloned().collect();
    assert_eq!(changes.len(), 6);

    // The plan was computed; now someone else writes one managed and one unmanaged RRset.
    lab.patch(json!([
        {"name": "edgepool2.contoso.com.", "type": "A", "ttl": 60, "changetype": "REPLACE",
         "records": [{"content": "198.51.100.21", "disabled": false}]},
        {"name": "www.contoso.com.", "type": "A", "ttl": 60, "changetype": "REPLACE",
         "records": [{"content": "192.0.2.80", "disabled": false}]}
    ]));
    let before = lab.rrsets();

    let error = provider.apply(&zone, &changes).unwrap_err();
    let ProviderError::Stale { drift, .. } = &error else {
        panic!("expected Stale, got {error}")
    };
    assert_eq!(
        drift.iter().map(|d| d.key.clone()).collect::<Vec<_>>(),
        [RrKey::new(
            Fqdn::parse("edgepool2.contoso.com").unwrap(),
            RecordType::A
        )],
        "only the managed RRset that changed is named"
    );
    let text = error.to_string();
    assert!(
        text.contains("edgepool2.contoso.com. A: expected absent, found ttl 60 [198.51.100.21]"),
        "{text}"
    );
    assert_eq!(xmppdns::Error::Provider(error).exit_code(), exit::REFUSED);
    assert_eq!(lab.rrsets(), before, "nothing was written");
    assert!(lab.dig(SRV_NAME, "SRV").is_empty());

    // A fresh plan from the same provider goes through.
    let plan = app::plan(&topology, provider.as_mut()).unwrap();
    let changes: Vec<_> = plan.changes_for(&zone).cloned().collect();
    let applied = provider.apply(&zone, &changes).unwrap();
    assert_eq!(applied.changes, 6);
    assert!(app::plan(&topology, provider.as_mut()).unwrap().is_empty());
    assert_serves_the_topology(&lab);
    assert_eq!(lab.dig("www.contoso.com.", "A"), ["192.0.2.80"]);
}

#[test]
fn wrong_api_key_is_said_in_words_and_no_key_is_printed() {
    let lab = Lab::new();
    let wrong = "wrong-key-0123456789abcdef";
    std::fs::write(lab.dir.path().join(KEY_FILE), wrong).unwrap();
    let topology = Lab::path_arg(&lab.topology());
    for args in [
        vec!["plan", topology.as_str()],
        vec!["apply", topology.as_str(), "--yes", "-vvv"],
    ] {
        let output = lab.run_with_key(&args, wrong);
        assert_exit(&output, exit::ERROR as i32);
        assert_clean_error(&output, &[wrong, lab.pdns.api_key()]);
        let err = stderr(&output);
        assert!(
            err.contains("PowerDNS refused the API key (HTTP 401)"),
            "{err}"
        );
        assert!(err.contains("api_key_file"), "{err}");
    }

    // An unset variable is named, nothing is sent.
    let topology = lab.write_topology(
        lab.provider(json!({"api_key_file": null, "api_key_env": "XMPPDNS_TEST_UNSET_VARIABLE"})),
        &["contoso.com"],
    );
    let output = lab.run(&["plan", &Lab::path_arg(&topology)]);
    assert_exit(&output, exit::ERROR as i32);
    assert!(
        stderr(&output).contains("environment variable XMPPDNS_TEST_UNSET_VARIABLE is not set"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_zone_and_unknown_server_id_are_404s_that_name_both() {
    let lab = Lab::new();
    let topology = lab.write_topology(lab.provider(json!({})), &["contoso.com", "fabrikam.com"]);
    let output = lab.run(&["plan", &Lab::path_arg(&topology)]);
    assert_exit(&output, exit::ERROR as i32);
    assert_clean_error(&output, &[lab.pdns.api_key()]);
    let err = stderr(&output);
    assert!(
        err.contains("PowerDNS server `localhost` has no zone fabrikam.com. (HTTP 404)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "GET {}/api/v1/servers/localhost/zones/fabrikam.com.",
            lab.pdns.api_url()
        )),
        "{err}"
    );

    let topology = lab.write_topology(
        lab.provider(json!({"server_id": "primary-2"})),
        &["contoso.com"],
    );
    let output = lab.run(&["apply", &Lab::path_arg(&topology), "--yes"]);
    assert_exit(&output, exit::ERROR as i32);
    assert!(
        stderr(&output).contains("PowerDNS server `primary-2` has no zone contoso.com."),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_rejected_record_shows_the_servers_text_and_nothing_of_the_patch_lands() {
    let lab = Lab::new();
    // Planned while the zone was clean; then the federation name becomes an alias: PowerDNS
    // refuses A records next to it, and with them the whole PATCH, SRV records included. (A
    // plan made now refuses the alias itself: see the CNAME test below.)
    let topology = Topology::load(&lab.topology()).unwrap();
    let mut provider = provider::open(&topology, &Environment::system_without_proxy()).unwrap();
    let plan = app::plan(&topology, provider.as_mut()).unwrap();
    lab.patch(json!([
        {"name": "xmpp.contoso.com.", "type": "CNAME", "ttl": 300, "changetype": "REPLACE",
         "records": [{"content": "edgepool1.contoso.com.", "disabled": false}]}
    ]));
    let before = lab.rrsets();
    let zone = Fqdn::parse(ZONE).unwrap();
    let changes: Vec<_> = plan.changes_for(&zone).cloned().collect();
    let err = provider.apply(&zone, &changes).unwrap_err().to_string();
    assert!(
        err.contains("PowerDNS rejected the change (HTTP 422): RRset xmpp.contoso.com. IN A: Conflicts with pre-existing RRset"),
        "{err}"
    );
    assert!(err.contains("nothing was changed in this zone"), "{err}");
    assert!(!err.contains(lab.pdns.api_key()), "{err}");
    assert_eq!(lab.rrsets(), before);
    assert!(lab.dig(SRV_NAME, "SRV").is_empty());
    assert!(lab.dig("edgepool2.contoso.com.", "A").is_empty());
}

#[test]
fn nothing_listening_is_a_connection_refused_that_names_the_url() {
    let lab = Lab::new();
    let closed = format!("http://127.0.0.1:{}", free_port(Transport::Tcp));
    let topology = lab.write_topology(
        lab.provider(json!({"api_url": closed.clone()})),
        &["contoso.com"],
    );
    let output = lab.run(&["plan", &Lab::path_arg(&topology)]);
    assert_exit(&output, exit::ERROR as i32);
    assert_clean_error(&output, &[lab.pdns.api_key()]);
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "connection refused: nothing is listening at {closed}"
        )),
        "{err}"
    );
}

/// Resumes a stopped process on every way out of the test, so the harness can stop it.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        signal("CONT", self.0);
    }
}

/// Sends a signal to one process this test started (sh's builtin kill: no extra package).
fn signal(name: &str, pid: u32) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -{name} {pid}")])
        .status()
        .expect("sh runs");
    assert!(status.success(), "kill -{name} {pid}");
}

#[test]
fn a_server_that_stops_answering_times_out_within_timeout_ms() {
    let lab = Lab::new();
    let topology = lab.write_topology(lab.provider(json!({"timeout_ms": 300})), &["contoso.com"]);
    // Frozen, the server's kernel still accepts the connection; no answer ever comes.
    signal("STOP", lab.pdns.pid());
    let resume = Resume(lab.pdns.pid());
    let started = Instant::now();
    let output = lab.run(&["plan", &Lab::path_arg(&topology)]);
    let took = started.elapsed();
    drop(resume);
    assert_exit(&output, exit::ERROR as i32);
    assert_clean_error(&output, &[lab.pdns.api_key()]);
    let err = stderr(&output);
    assert!(
        err.contains("no complete answer within 300 ms (`timeout_ms`)"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Resumed, it answers again.
    assert_exit(&lab.run(&["plan", &Lab::path_arg(&topology)]), 0);
}

/// The opcode and the question name of a DNS message (enough to recognise a NOTIFY).
fn opcode_and_question(message: &[u8]) -> Option<(u8, String)> {
    let opcode = (message.get(2)? >> 3) & 0x0f;
    let mut name = String::new();
    let mut at = 12;
    loop {
        let length = usize::from(*message.get(at)?);
        if length == 0 {
            break;
        }
        let label = message.get(at + 1..at + 1 + length)?;
        name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        name.push('.');
        at += 1 + length;
    }
    Some((opcode, name))
}

const OPCODE_NOTIFY: u8 = 4;

#[test]
fn notify_reaches_the_zones_also_notify_address_for_the_right_zone() {
    let lab = Lab::new();
    // The "secondary" is a UDP socket this test owns; only-notify= is empty, so PowerDNS sends
    // nothing to the addresses of the zone's NS name (ns1.contoso.com).
    let secondary = UdpSocket::bind("127.0.0.1:0").expect("bind the secondary's socket");
    secondary
        .set_read_timeout(Some(ready_timeout()))
        .expect("read timeout");
    lab.pdns
        .also_notify(ZONE, secondary.local_addr().expect("local address"));
    let topology = lab.write_topology(lab.provider(json!({"notify": true})), &["contoso.com"]);

    let output = lab.run(&["apply", &Lab::path_arg(&topology), "--yes"]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("; NOTIFY queued"),
        "{}",
        stdout(&output)
    );
    let mut message = [0u8; 512];
    let (length, from) = secondary.recv_from(&mut message).unwrap_or_else(|e| {
        panic!(
            "no NOTIFY arrived within {:?}: {e}\n{}",
            ready_timeout(),
            lab.pdns.logs()
        )
    });
    assert!(from.ip().is_loopback(), "from {from}");
    assert_eq!(
        opcode_and_question(&message[..length]),
        Some((OPCODE_NOTIFY, ZONE.to_string()))
    );
    // Answer it (QR set, NOERROR) so PowerDNS stops resending.
    message[2] |= 0x80;
    let _ = secondary.send_to(&message[..length], from);
    let zone = lab.zone_document();
    assert_eq!(zone["notified_serial"], zone["serial"], "{zone}");
}

#[test]
fn a_failed_notify_request_is_a_warning_and_the_apply_still_exits_0() {
    let lab = Lab::new();
    let proxy = ReverseProxy::start(lab.pdns.api_addr(), OnPatch::ForwardButFailNotify);
    let topology = lab.write_topology(
        lab.provider(json!({"api_url": proxy.url(), "notify": true})),
        &["contoso.com"],
    );
    let output = lab.run(&["apply", &Lab::path_arg(&topology), "--yes"]);
    assert_exit(&output, 0);
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        out.contains("; warning: NOTIFY request failed") && out.contains("HTTP 502"),
        "{out}"
    );
    assert!(
        err.contains("WARN")
            && err.contains("applied, but the NOTIFY request failed")
            && err.contains("secondaries will see the change at their next SOA refresh"),
        "{err}"
    );
    assert!(!out.contains(lab.pdns.api_key()) && !err.contains(lab.pdns.api_key()));
    let notify = format!("PUT /api/v1/servers/localhost/zones/{ZONE}/notify");
    assert!(proxy.seen().contains(&notify), "{:?}", proxy.seen());
    assert_serves_the_topology(&lab);
}

#[test]
fn disabled_records_at_a_managed_name_are_ignored_by_plans_and_kept_by_apply() {
    let lab = Lab::new();
    lab.patch(json!([
        {"name": "xmpp.contoso.com.", "type": "A", "ttl": 300, "changetype": "REPLACE",
         "records": [{"content": "192.0.2.10", "disabled": false},
                     {"content": "203.0.113.7", "disabled": true}]},
        {"name": "xmpp.contoso.com.", "type": "AAAA", "ttl": 300, "changetype": "REPLACE",
         "records": [{"content": "2001:db8::dead", "disabled": true}]}
    ]));
    let topology = lab.topology();
    let loaded = Topology::load(&topology).unwrap();
    let mut provider = provider::open(&loaded, &Environment::system_without_proxy()).unwrap();
    let plan = app::plan(&loaded, provider.as_mut()).unwrap();
    let federation: BTreeSet<_> = plan
        .changes
        .iter()
        .filter(|c| c.name.as_str() == "xmpp.contoso.com.")
        .map(|c| (c.rtype, c.action))
        .collect();
    // A is already right (its disabled record is not served); AAAA is created.
    assert_eq!(
        federation,
        BTreeSet::from([(RecordType::Aaaa, xmppdns::plan::Action::Create)])
    );

    assert_exit(&lab.run(&["apply", &Lab::path_arg(&topology), "--yes"]), 0);
    assert_serves_the_topology(&lab);
    let rrsets = lab.rrsets();
    let aaaa = rrsets
        .iter()
        .find(|r| r["name"] == "xmpp.contoso.com." && r["type"] == "AAAA")
        .expect("AAAA");
    let mut records: Vec<(String, bool)> = aaaa["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["content"].as_str().unwrap().to_string(),
                r["disabled"].as_bool().unwrap(),
            )
        })
        .collect();
    records.sort();
    assert_eq!(
        records,
        [
            ("2001:db8:1::10".to_string(), false),
            ("2001:db8::dead".to_string(), true)
        ]
    );
}

/// What the reverse proxy does with a PATCH (every other request is passed through).
#[derive(Clone, Copy, PartialEq)]
enum OnPatch {
    /// Forwards it to PowerDNS (which commits it), then answers the client 502.
    ForwardThen502,
    /// Forwards it, then closes the client's connection without any answer.
    ForwardThenDrop,
    /// Answers 502 without forwarding it.
    Only502,
    /// Forwards the PATCH as is, answers the NOTIFY request (PUT .../notify) 502 unforwarded.
    ForwardButFailNotify,
}

/// A minimal reverse proxy on 127.0.0.1 in front of the PowerDNS API: one request per
/// connection (it answers `Connection: close`), requests served one after another, every
/// read bounded. Records `METHOD /path` of each request it saw.
struct ReverseProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReverseProxy {
    fn start(upstream: SocketAddr, on_patch: OnPatch) -> ReverseProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            if let Err(e) = Self::serve(client, upstream, on_patch, &seen) {
                                seen.lock().unwrap().push(format!("proxy error: {e}"));
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => panic!("proxy accept: {e}"),
                    }
                }
            })
        };
        ReverseProxy {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn serve(
        client: TcpStream,
        upstream: SocketAddr,
        on_patch: OnPatch,
        seen: &Mutex<Vec<String>>,
    ) -> Result<(), String> {
        client.set_nonblocking(false).map_err(|e| e.to_string())?;
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(client.try_clone().map_err(|e| e.to_string())?);
        let mut request_line = String::new();
        reader
            .read_line(&mut request_line)
            .map_err(|e| e.to_string())?;
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let path = words.next().unwrap_or_default().to_string();
        let (mut key, mut length) = (String::new(), 0usize);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "x-api-key" => key = value.trim().to_string(),
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        let body = String::from_utf8(body).map_err(|e| e.to_string())?;
        seen.lock().unwrap().push(format!("{method} {path}"));

        let mut client = client;
        let notify_request = method == "PUT" && path.ends_with("/notify");
        if notify_request && on_patch == OnPatch::ForwardButFailNotify {
            return Self::answer(&mut client, 502, "Bad Gateway");
        }
        if method == "PATCH" && on_patch == OnPatch::Only502 {
            return Self::answer(&mut client, 502, "Bad Gateway");
        }
        let upstream_answer = http_request(
            upstream,
            &method,
            &path,
            &[("X-API-Key", &key)],
            (!body.is_empty()).then_some(body.as_str()),
        )?;
        match (method.as_str(), on_patch) {
            ("PATCH", OnPatch::ForwardThen502) => {
                seen.lock()
                    .unwrap()
                    .push(format!("upstream answered {}", upstream_answer.status));
                Self::answer(&mut client, 502, "Bad Gateway")
            }
            // Dropped: closed without a byte of answer.
            ("PATCH", OnPatch::ForwardThenDrop) => {
                seen.lock()
                    .unwrap()
                    .push(format!("upstream answered {}", upstream_answer.status));
                Ok(())
            }
            _ => Self::answer(&mut client, upstream_answer.status, &upstream_answer.body),
        }
    }

    fn answer(client: &mut TcpStream, status: u16, body: &str) -> Result<(), String> {
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        client
            .write_all(head.as_bytes())
            .and_then(|()| client.write_all(body.as_bytes()))
            .map_err(|e| e.to_string())
    }
}

impl Drop for ReverseProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Plans through `proxy` and applies the plan's changes to contoso.com. through it.
fn apply_through(
    lab: &Lab,
    proxy: &ReverseProxy,
) -> Result<xmppdns::provider::Applied, ProviderError> {
    let topology = lab.write_topology(
        lab.provider(json!({"api_url": proxy.url()})),
        &["contoso.com"],
    );
    let topology = Topology::load(&topology).unwrap();
    let mut provider = provider::open(&topology, &Environment::system_without_proxy()).unwrap();
    let plan = app::plan(&topology, provider.as_mut()).unwrap();
    let zone = Fqdn::parse(ZONE).unwrap();
    let changes: Vec<_> = plan.changes_for(&zone).cloned().collect();
    assert_eq!(changes.len(), 6);
    provider.apply(&zone, &changes)
}

#[test]
fn a_502_after_powerdns_committed_the_patch_is_settled_by_re_reading_as_applied() {
    let lab = Lab::new();
    let proxy = ReverseProxy::start(lab.pdns.api_addr(), OnPatch::ForwardThen502);
    let applied = apply_through(&lab, &proxy)
        .unwrap_or_else(|e| panic!("expected applied, got: {e}\nproxy saw {:?}", proxy.seen()));
    assert_eq!(applied.changes, 6);
    assert!(
        applied.detail.contains("HTTP 502")
            && applied
                .detail
                .contains("reading the zone again shows it applied"),
        "{}",
        applied.detail
    );
    let seen = proxy.seen();
    let path = format!("/api/v1/servers/localhost/zones/{ZONE}");
    assert_eq!(
        seen,
        [
            format!("GET {path}"),
            format!("GET {path}"),
            format!("PATCH {path}"),
            "upstream answered 204".to_string(),
            format!("GET {path}"),
        ],
        "plan, compare-and-swap re-read, PATCH, re-read after the 502"
    );
    assert_serves_the_topology(&lab);
}

#[test]
fn a_patch_whose_answer_is_lost_is_settled_by_re_reading_as_applied() {
    let lab = Lab::new();
    let proxy = ReverseProxy::start(lab.pdns.api_addr(), OnPatch::ForwardThenDrop);
    let applied = apply_through(&lab, &proxy)
        .unwrap_or_else(|e| panic!("expected applied, got: {e}\nproxy saw {:?}", proxy.seen()));
    assert_eq!(applied.changes, 6);
    assert!(
        applied
            .detail
            .contains("but reading the zone again shows it applied"),
        "{}",
        applied.detail
    );
    let seen = proxy.seen();
    assert!(
        seen.ends_with(&[
            "upstream answered 204".to_string(),
            format!("GET /api/v1/servers/localhost/zones/{ZONE}")
        ]),
        "{seen:?}"
    );
    assert_serves_the_topology(&lab);
}

#[test]
fn a_502_for_a_patch_that_never_reached_powerdns_is_not_applied_after_re_reading() {
    let lab = Lab::new();
    let before = lab.rrsets();
    let proxy = ReverseProxy::start(lab.pdns.api_addr(), OnPatch::Only502);
    let error = apply_through(&lab, &proxy).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("(HTTP 502)") && text.contains("nothing was changed in this zone"),
        "{text}"
    );
    assert!(!text.contains(lab.pdns.api_key()), "{text}");
    assert_eq!(
        proxy.seen().last().map(String::as_str),
        Some(format!("GET /api/v1/servers/localhost/zones/{ZONE}").as_str()),
        "the zone was read again after the 502"
    );
    assert_eq!(lab.rrsets(), before);
    assert!(lab.dig(SRV_NAME, "SRV").is_empty());
}

/// The PowerDNS read sees a CNAME at a name the plan needs records at: plan refuses with
/// exit 3 and names it; nothing is sent.
#[test]
fn a_cname_where_the_plan_needs_records_is_refused_at_plan_time() {
    let lab = Lab::new();
    lab.patch(json!([
        {"name": "edgepool2.contoso.com.", "type": "CNAME", "ttl": 3600, "changetype": "REPLACE",
         "records": [{"content": "lb.contoso.net.", "disabled": false}]}
    ]));
    let topology = Lab::path_arg(&lab.topology());
    let before = lab.rrsets();
    for args in [
        &["plan", &topology, "--detailed-exitcode"][..],
        &["apply", &topology, "--yes"],
    ] {
        let out = lab.run(args);
        assert_exit(&out, exit::REFUSED as i32);
        let err = stderr(&out);
        assert!(
            err.contains("edgepool2.contoso.com. (zone contoso.com.) is a CNAME to lb.contoso.net., but the topology needs A records there"),
            "{err}"
        );
    }
    assert_eq!(lab.rrsets(), before, "nothing sent");
}
