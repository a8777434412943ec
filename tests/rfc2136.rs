//! The rfc2136 provider against real BIND 9 and Knot DNS on 127.0.0.1: signed reads and
//! updates, every TSIG algorithm, each way a server says no, stale plans, large plans (counted
//! by BIND's statistics channel), key_env, a separate transfer server and key, the fallback to
//! queries when transfers are refused, UDP/TCP by size, fresh signatures on retries, error codes
//! in words (from a fake server that signs its replies), a forged unsigned reply and a server
//! that never answers.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{dig, nsupdate, zone_text, Bind, Knot, TsigKey as ServerKey};
use xmppdns::app;
use xmppdns::plan::{self, Plan};
use xmppdns::provider::{self, Environment, Provider, ProviderError};
use xmppdns::records::Fqdn;
use xmppdns::topology::Topology;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Bind,
    Knot,
}

enum Server {
    Bind(Bind),
    Knot(Knot),
}

impl Server {
    fn start(kind: Kind, zones: &[(&str, &str)], key: &ServerKey) -> Server {
        match kind {
            Kind::Bind => Server::Bind(Bind::primary(zones, key)),
            Kind::Knot => Server::Knot(Knot::primary(zones, key)),
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Server::Bind(s) => s.addr(),
            Server::Knot(s) => s.addr(),
        }
    }
}

/// A topology for contoso.com with `domains` SIP domains and `pools` pools, using the
/// rfc2136 provider at `server` with the key written to `dir/key.conf`.
fn topology(
    dir: &Path,
    server: SocketAddr,
    key: &ServerKey,
    domains: usize,
    pools: usize,
    active: usize,
) -> Topology {
    std::fs::write(dir.join("key.conf"), key.bind_conf()).unwrap();
    let sip: Vec<String> = (0..domains)
        .map(|i| {
            if i == 0 {
                "contoso.com".to_string()
            } else {
                format!("sip{i:05}.contoso.com")
            }
        })
        .collect();
    let pools: Vec<_> = (1..=pools)
        .map(|p| {
            json!({"name": format!("EdgePool{p}"), "site": format!("Site{p}"),
                   "fqdn": format!("edgepool{p}.contoso.com"), "ipv4": [format!("192.0.2.{p}")]})
        })
        .collect();
    let value = json!({
        "zones": ["contoso.com"],
        "sip_domains": sip,
        "active_pool": format!("EdgePool{active}"),
        "federation": {"name": "xmpp.contoso.com"},
        "pools": pools,
        "provider": {"kind": "rfc2136", "server": server.to_string(), "key_file": "key.conf",
                     "timeout_ms": 3000, "attempts": 2}
    });
    let path = dir.join("topology.json");
    std::fs::write(&path, value.to_string()).unwrap();
    Topology::load(&path).unwrap()
}

/// Records as dig prints them, sorted (servers may rotate the order of an RRset).
fn sorted(server: SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    let mut records = dig(server, name, rtype);
    records.sort();
    records
}

fn env() -> Environment {
    Environment::system()
}

fn plan_of(topology: &Topology) -> Plan {
    let mut provider = provider::open(topology, &env()).unwrap();
    app::plan(topology, provider.as_mut()).unwrap()
}

fn apply(topology: &Topology) -> Vec<provider::Applied> {
    let prepared = app::prepare_apply(&topology.path, &env(), false, None).unwrap();
    app::execute(prepared).unwrap().applied
}

const EMPTY: &str = "";
const OLD_STATE: &str = "xmpp 86400 IN A 198.51.100.99\n_xmpp-server._tcp IN SRV 0 0 5269 edgepool1.contoso.com.\nwww IN A 192.0.2.80";

fn create_update_and_converge(kind: Kind) {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, OLD_STATE);
    let server = Server::start(kind, &[("contoso.com", &zone)], &key);
    let topo = topology(dir.path(), server.addr(), &key, 2, 2, 1);
    let plan = plan_of(&topo);
    assert_eq!(plan.summary().update, 2, "{:?}", plan.changes);
    assert_eq!(plan.summary().create, 1);
    apply(&topo);
    assert_eq!(
        sorted(server.addr(), "_xmpp-server._tcp.contoso.com", "SRV"),
        [
            "10 0 5269 edgepool1.contoso.com.",
            "20 0 5269 edgepool2.contoso.com."
        ]
    );
    assert_eq!(dig(server.addr(), "xmpp.contoso.com", "A"), ["192.0.2.1"]);
    assert_eq!(
        dig(server.addr(), "www.contoso.com", "A"),
        ["192.0.2.80"],
        "hands off"
    );
    assert!(
        plan_of(&topo).is_empty(),
        "a second run finds nothing to change"
    );

    // Moving the active pool is an update of the A record and of every SRV RRset.
    let moved = topology(dir.path(), server.addr(), &key, 2, 2, 2);
    apply(&moved);
    assert_eq!(dig(server.addr(), "xmpp.contoso.com", "A"), ["192.0.2.2"]);
    assert_eq!(
        sorted(
            server.addr(),
            "_xmpp-server._tcp.sip00001.contoso.com",
            "SRV"
        ),
        [
            "10 0 5269 edgepool2.contoso.com.",
            "20 0 5269 edgepool1.contoso.com."
        ]
    );
}

#[test]
fn bind_create_update_and_converge() {
    create_update_and_converge(Kind::Bind);
}

#[test]
fn knot_create_update_and_converge() {
    create_update_and_converge(Kind::Knot);
}

fn every_algorithm(kind: Kind) {
    for algorithm in ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"] {
        let key = ServerKey::generate("alg-key", algorithm);
        let dir = tempfile::tempdir().unwrap();
        let zone = zone_text("contoso.com", 1, EMPTY);
        let server = Server::start(kind, &[("contoso.com", &zone)], &key);
        let topo = topology(dir.path(), server.addr(), &key, 1, 2, 1);
        apply(&topo);
        assert_eq!(
            dig(server.addr(), "xmpp.contoso.com", "A"),
            ["192.0.2.1"],
            "{algorithm}"
        );
        assert!(plan_of(&topo).is_empty(), "{algorithm}");
    }
}

#[test]
fn bind_every_algorithm() {
    every_algorithm(Kind::Bind);
}

#[test]
fn knot_every_algorithm() {
    every_algorithm(Kind::Knot);
}

/// Error text of a plan with `topology`, which must fail.
fn plan_error(topology: &Topology, env: &Environment) -> String {
    let mut provider = provider::open(topology, env).unwrap();
    match app::plan(topology, provider.as_mut()) {
        Ok(plan) => panic!(
            "expected an error, got a plan of {} changes",
            plan.changes.len()
        ),
        Err(e) => e.to_string(),
    }
}

fn tsig_rejections(kind: Kind) {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let zone = zone_text("contoso.com", 1, EMPTY);
    let server = Server::start(kind, &[("contoso.com", &zone)], &key);

    let dir = tempfile::tempdir().unwrap();
    let wrong_secret = ServerKey::generate("test-key", "hmac-sha256");
    let topo = topology(dir.path(), server.addr(), &wrong_secret, 1, 2, 1);
    let text = plan_error(&topo, &env());
    assert!(
        text.contains("NOTAUTH") && text.contains("BADSIG") && text.contains("wrong secret"),
        "{text}"
    );
    assert!(
        !text.contains(&wrong_secret.secret_base64),
        "the secret never shows"
    );

    let unknown = ServerKey::generate("nobody-key", "hmac-sha256");
    let topo = topology(dir.path(), server.addr(), &unknown, 1, 2, 1);
    let text = plan_error(&topo, &env());
    assert!(
        text.contains("NOTAUTH") && text.contains("BADKEY") && text.contains("nobody-key"),
        "{text}"
    );

    // Our clock an hour behind: the server answers BADTIME (a signed reply).
    let topo = topology(dir.path(), server.addr(), &key, 1, 2, 1);
    let mut skewed = env();
    skewed.clock = Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 3600
    });
    let text = plan_error(&topo, &skewed);
    assert!(text.contains("BADTIME") && text.contains("clock"), "{text}");
}

#[test]
fn bind_names_tsig_rejections() {
    tsig_rejections(Kind::Bind);
}

#[test]
fn knot_names_tsig_rejections() {
    tsig_rejections(Kind::Knot);
}

/// Someone changes the A record with nsupdate between plan and apply: the server refuses the
/// UPDATE (NXRRSET), nothing of it is applied, and the error names the RRset.
fn stale_plan_is_refused_by_the_server(kind: Kind) {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, OLD_STATE);
    let server = Server::start(kind, &[("contoso.com", &zone)], &key);
    let topo = topology(dir.path(), server.addr(), &key, 1, 2, 1);
    let plan = plan_of(&topo);
    assert!(!plan.is_empty());

    nsupdate(
        server.addr(),
        &key,
        "zone contoso.com\nupdate delete xmpp.contoso.com A\nupdate add xmpp.contoso.com 300 A 203.0.113.7\n",
    );
    let mut provider = provider::open(&topo, &env()).unwrap();
    let zone_name = Fqdn::parse("contoso.com").unwrap();
    let changes: Vec<_> = plan.changes_for(&zone_name).cloned().collect();
    let err = provider.apply(&zone_name, &changes).unwrap_err();
    assert!(matches!(err, ProviderError::Stale { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("xmpp.contoso.com. A") && text.contains("203.0.113.7"),
        "{text}"
    );
    assert_eq!(dig(server.addr(), "xmpp.contoso.com", "A"), ["203.0.113.7"]);
    assert_eq!(
        sorted(server.addr(), "_xmpp-server._tcp.contoso.com", "SRV"),
        ["0 0 5269 edgepool1.contoso.com."],
        "nothing of the refused message was applied"
    );
    // Re-planning sees the other writer's change and converges.
    apply(&topo);
    assert!(plan_of(&topo).is_empty());
}

#[test]
fn bind_refuses_a_stale_plan() {
    stale_plan_is_refused_by_the_server(Kind::Bind);
}

#[test]
fn knot_refuses_a_stale_plan() {
    stale_plan_is_refused_by_the_server(Kind::Knot);
}

/// A counter of BIND's statistics channel (absent: 0).
fn counter(bind: &Bind, name: &str) -> u64 {
    bind.nsstats()
        .get(name)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// The fewest UPDATE messages `domains` new SRV RRsets of `pools` records each can fit in,
/// from the wire format alone (RFC 1035 §4.1.3, RFC 2136 §2): every record costs at least a
/// compressed owner (2), type, class, TTL and RDLENGTH (10), priority, weight and port (6) and
/// a compressed target (2); each owner's own labels (`_xmpp-server`, `_tcp`, `sipNNNNN`: 27)
/// appear once. Independent of the tool's encoder, so a wrong batching cannot move it.
fn fewest_update_messages(domains: u64, pools: u64) -> u64 {
    let bytes = domains * (27 + pools * (2 + 10 + 6 + 2));
    bytes.div_ceil(u64::from(u16::MAX))
}

/// The most messages the same changes could need with no name compression at all (owner 40
/// bytes, target 23, one "RRset does not exist" prerequisite per RRset): an upper bound.
fn most_update_messages(domains: u64, pools: u64) -> u64 {
    let bytes = domains * ((40 + 10) + pools * (40 + 10 + 6 + 23)) + 12 + 16;
    bytes.div_ceil(u64::from(u16::MAX) - 512)
}

/// The `N` of "N UPDATE message(s)" in an apply's detail.
fn reported_messages(detail: &str) -> u64 {
    detail
        .split(" UPDATE message(s)")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no message count in {detail:?}"))
}

/// 2,000 SIP domains × 3 pools: more than 64 KiB of changes, sent in few messages, counted by
/// the server where it can (BIND's statistics channel), then read back by a multi-message
/// signed AXFR.
fn large_plan(kind: Kind) {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, EMPTY);
    let server = match kind {
        Kind::Bind => Server::Bind(Bind::primary_with_statistics(
            &[("contoso.com", &zone)],
            &key,
        )),
        Kind::Knot => Server::start(kind, &[("contoso.com", &zone)], &key),
    };
    let topo = topology(dir.path(), server.addr(), &key, 2000, 3, 1);
    let plan = plan_of(&topo);
    assert_eq!(plan.changes.len(), 2001);
    let zone_name = Fqdn::parse("contoso.com").unwrap();
    let (fewest, most) = (
        fewest_update_messages(1999, 3),
        most_update_messages(2000, 3),
    );
    assert!(fewest >= 2, "the plan must exceed one message");

    let updates_before = match &server {
        Server::Bind(bind) => counter(bind, "UpdateDone"),
        Server::Knot(_) => 0,
    };
    let applied = apply(&topo);
    let reported = reported_messages(&applied[0].detail);
    assert!(
        (fewest..=most).contains(&reported),
        "{reported} messages, expected {fewest}..={most}: {}",
        applied[0].detail
    );
    if let Server::Bind(bind) = &server {
        assert_eq!(
            counter(bind, "UpdateDone") - updates_before,
            reported,
            "UPDATE messages BIND completed"
        );
    }
    // Several RRsets, first, middle and last, hold exactly the three pools in order.
    for domain in [
        "contoso.com",
        "sip00001.contoso.com",
        "sip01000.contoso.com",
        "sip01998.contoso.com",
        "sip01999.contoso.com",
    ] {
        assert_eq!(
            sorted(server.addr(), &format!("_xmpp-server._tcp.{domain}"), "SRV"),
            [
                "10 0 5269 edgepool1.contoso.com.",
                "20 0 5269 edgepool2.contoso.com.",
                "30 0 5269 edgepool3.contoso.com."
            ],
            "{domain}"
        );
    }
    assert_eq!(dig(server.addr(), "xmpp.contoso.com", "A"), ["192.0.2.1"]);
    let mut provider = provider::rfc2136::Rfc2136Provider::new(
        match &topo.provider {
            xmppdns::topology::ProviderConfig::Rfc2136(c) => c,
            _ => unreachable!(),
        },
        env().clock,
    )
    .unwrap();
    let desired = plan::desired(&topo);
    let read = provider
        .read(&zone_name, &desired.zones[&zone_name].managed)
        .unwrap();
    assert_eq!(read.rrsets.len(), 2001);
    match provider.last_read {
        Some(provider::rfc2136::ReadPath::Axfr { messages }) => assert!(messages > 1, "{messages}"),
        other => panic!("expected a multi-message AXFR, got {other:?}"),
    }
}

#[test]
fn bind_large_plan_in_few_messages() {
    large_plan(Kind::Bind);
}

#[test]
fn knot_large_plan_in_few_messages() {
    large_plan(Kind::Knot);
}

/// A rfc2136 topology pointing at `server` (not a real DNS server).
fn fake_topology(dir: &Path, server: SocketAddr) -> Topology {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let topo = topology(dir, server, &key, 1, 1, 1);
    let mut text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&topo.path).unwrap()).unwrap();
    text["provider"]["timeout_ms"] = json!(200);
    std::fs::write(&topo.path, text.to_string()).unwrap();
    Topology::load(&topo.path).unwrap()
}

fn one_change(topo: &Topology) -> (Fqdn, Vec<plan::Change>) {
    let desired = plan::desired(topo);
    let plan = Plan::compute(&desired, Default::default());
    let zone = Fqdn::parse("contoso.com").unwrap();
    let change = plan
        .changes
        .iter()
        .find(|c| c.name.as_str() == "xmpp.contoso.com.")
        .unwrap()
        .clone();
    (zone, vec![change])
}

/// A UDP responder that answers every query with NOERROR and no signature: a forged success.
#[test]
fn a_forged_unsigned_noerror_is_not_success() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let responder = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut answered = 0;
        // Bounded: a handful of datagrams, then stop.
        while answered < 5 {
            let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                break;
            };
            // The header alone, every count zeroed as RFC 2136 §3.8 allows (a QDCOUNT with no
            // question would be malformed, and is not taken as an answer at all).
            let mut reply = buf[..12].to_vec();
            reply[2] |= 0x80; // QR
            reply[3] &= 0xF0; // NOERROR
            reply[4..12].fill(0);
            let _ = n;
            socket.send_to(&reply, peer).unwrap();
            answered += 1;
        }
        answered
    });
    let dir = tempfile::tempdir().unwrap();
    let topo = fake_topology(dir.path(), addr);
    let (zone, changes) = one_change(&topo);
    let mut provider = provider::open(&topo, &env()).unwrap();
    let err = provider.apply(&zone, &changes).unwrap_err().to_string();
    assert!(
        err.contains("without a TSIG signature") && err.contains("cannot be trusted"),
        "{err}"
    );
    assert!(responder.join().unwrap() >= 1, "the forged reply was sent");
}

/// A server that never answers: a clear error within a bounded time.
#[test]
fn a_silent_server_gives_a_clear_error() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let topo = fake_topology(dir.path(), silent.local_addr().unwrap());
    let (zone, changes) = one_change(&topo);
    let mut provider = provider::open(&topo, &env()).unwrap();
    let started = Instant::now();
    let err = provider.apply(&zone, &changes).unwrap_err().to_string();
    assert!(err.contains("did not answer"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
    drop(silent);
}

// ---------------------------------------------------------------------------------------------
// Keys, transfer settings and the read path, through the CLI.

fn cli(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut command = support::xmppdns();
    command.args(args).current_dir(dir);
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().expect("the xmppdns binary runs")
}

fn out_text(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Rewrites the topology file's provider settings with `edit`.
fn edit_provider(topo: &Topology, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&topo.path).unwrap()).unwrap();
    edit(&mut value["provider"]);
    std::fs::write(&topo.path, value.to_string()).unwrap();
    topo.path.display().to_string()
}

#[test]
fn key_env_holds_the_key_and_it_never_shows() {
    let key = ServerKey::generate("env-key", "hmac-sha384");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, OLD_STATE);
    let bind = Bind::primary(&[("contoso.com", &zone)], &key);
    let topo = topology(dir.path(), bind.addr(), &key, 1, 2, 1);
    std::fs::remove_file(dir.path().join("key.conf")).unwrap();
    let path = edit_provider(&topo, |provider| {
        provider.as_object_mut().unwrap().remove("key_file");
        provider["key_env"] = json!("XMPPDNS_TEST_TSIG_KEY");
    });
    let output = cli(
        dir.path(),
        &["apply", &path, "--yes", "-vv"],
        &[("XMPPDNS_TEST_TSIG_KEY", &key.dig_arg())],
    );
    assert_eq!(output.status.code(), Some(0), "{}", out_text(&output));
    assert!(
        !out_text(&output).contains(&key.secret_base64),
        "the secret was printed"
    );
    assert_eq!(
        sorted(bind.addr(), "_xmpp-server._tcp.contoso.com", "SRV"),
        [
            "10 0 5269 edgepool1.contoso.com.",
            "20 0 5269 edgepool2.contoso.com."
        ]
    );
    // Unset, it is named and nothing is sent.
    let output = cli(dir.path(), &["plan", &path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", out_text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("XMPPDNS_TEST_TSIG_KEY"),
        "{}",
        out_text(&output)
    );
}

#[test]
fn transfer_server_and_transfer_key_file_are_where_and_how_zones_are_read() {
    let update_key = ServerKey::generate("update-key", "hmac-sha256");
    let transfer_key = ServerKey::generate("transfer-key", "hmac-sha512");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, OLD_STATE);
    // Two servers with the same data: updates go to the first, transfers come from the second,
    // which knows only the transfer key.
    let primary = Bind::primary_with_statistics(&[("contoso.com", &zone)], &update_key);
    let reader = Bind::primary_with_statistics(&[("contoso.com", &zone)], &transfer_key);
    let topo = topology(dir.path(), primary.addr(), &update_key, 1, 2, 1);
    std::fs::write(dir.path().join("xfr.key"), transfer_key.bind_conf()).unwrap();
    let path = edit_provider(&topo, |provider| {
        provider["transfer_server"] = json!(reader.addr().to_string());
        provider["transfer_key_file"] = json!("xfr.key");
    });
    let (primary_before, reader_before) = (
        counter(&primary, "XfrReqDone"),
        counter(&reader, "XfrReqDone"),
    );

    let output = cli(dir.path(), &["plan", &path, "--format", "json", "-v"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", out_text(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        doc["summary"],
        json!({"create": 0, "update": 2, "delete": 0}),
        "{doc:#}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&format!("read contoso.com. by AXFR from {}", reader.addr())),
        "{}",
        out_text(&output)
    );
    assert_eq!(
        counter(&reader, "XfrReqDone") - reader_before,
        1,
        "one signed AXFR from the transfer server"
    );
    assert_eq!(
        counter(&primary, "XfrReqDone"),
        primary_before,
        "nothing transferred from the update server"
    );
}

#[test]
fn a_refused_transfer_falls_back_to_queries_and_verbose_says_so() {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, OLD_STATE);
    let bind = Bind::primary_refusing_transfers(&[("contoso.com", &zone)], &key);
    let topo = topology(dir.path(), bind.addr(), &key, 1, 2, 1);
    let path = topo.path.display().to_string();
    let queries_before = counter(&bind, "QryUDP") + counter(&bind, "QryTCP");

    let output = cli(dir.path(), &["plan", &path, "-v", "--format", "json"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", out_text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("AXFR of contoso.com. refused by {}", bind.addr()))
            && stderr.contains("managed RRsets by query"),
        "{}",
        out_text(&output)
    );
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        doc["summary"],
        json!({"create": 0, "update": 2, "delete": 0}),
        "the same plan as from a transfer: {doc:#}"
    );
    assert_eq!(counter(&bind, "XfrReqDone"), 0, "no transfer was allowed");
    assert!(
        counter(&bind, "QryUDP") + counter(&bind, "QryTCP") > queries_before,
        "the managed names were queried"
    );

    // And it applies and converges the same way.
    let output = cli(dir.path(), &["apply", &path, "--yes"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", out_text(&output));
    assert_eq!(dig(bind.addr(), "xmpp.contoso.com", "A"), ["192.0.2.1"]);
    let output = cli(dir.path(), &["plan", &path, "--detailed-exitcode"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", out_text(&output));
}

// ---------------------------------------------------------------------------------------------
// The wire: TCP for large UPDATEs, fresh signatures on retries, error codes in words.

#[test]
fn an_update_above_512_bytes_goes_over_tcp_and_a_small_one_over_udp() {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, EMPTY);
    let bind = Bind::primary_with_statistics(&[("contoso.com", &zone)], &key);
    let zone_name = Fqdn::parse("contoso.com").unwrap();
    // (SIP domains, whether the one UPDATE message exceeds 512 bytes)
    for (domains, large) in [(1, false), (12, true)] {
        let topo = topology(dir.path(), bind.addr(), &key, domains, 3, 1);
        let desired = plan::desired(&topo);
        let plan = Plan::compute(&desired, Default::default());
        let changes: Vec<_> = plan
            .changes_for(&zone_name)
            .filter(|c| c.name.as_str().starts_with("_xmpp-server._tcp."))
            .filter(|c| domains == 1 || c.name.as_str() != "_xmpp-server._tcp.contoso.com.")
            .cloned()
            .collect();
        let expected = if domains == 1 { 1 } else { domains - 1 };
        assert_eq!(changes.len(), expected);
        let (tcp, udp, done) = (
            counter(&bind, "ReqTCP"),
            counter(&bind, "Requestv4"),
            counter(&bind, "UpdateDone"),
        );
        let mut provider = provider::open(&topo, &env()).unwrap();
        let applied = provider.apply(&zone_name, &changes).unwrap();
        assert_eq!(reported_messages(&applied.detail), 1, "{}", applied.detail);
        assert_eq!(counter(&bind, "UpdateDone") - done, 1);
        let requests = counter(&bind, "Requestv4") - udp;
        let over_tcp = counter(&bind, "ReqTCP") - tcp;
        assert_eq!(
            (requests, over_tcp),
            (1, u64::from(large)),
            "{domains} domain(s): one request, over TCP only when above 512 bytes"
        );
    }
    assert_eq!(
        sorted(bind.addr(), "_xmpp-server._tcp.sip00011.contoso.com", "SRV").len(),
        3
    );
}

/// The UPDATE datagrams a proxy received, in order.
type UpdateLog = Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// Forwards UDP between one client and `upstream`, dropping the first UPDATE (opcode 5) it
/// sees; keeps every UPDATE datagram it received. Stops when the flag is set.
fn dropping_first_update(
    upstream: SocketAddr,
) -> (SocketAddr, UpdateLog, Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    front
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    back.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let addr = front.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (seen2, stop2) = (seen.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut client = None;
        let mut buf = [0u8; 65535];
        while !stop2.load(Ordering::Relaxed) {
            while let Ok((n, from)) = front.recv_from(&mut buf) {
                client = Some(from);
                let is_update = n > 2 && (buf[2] >> 3) & 0x0f == 5;
                if is_update {
                    let mut seen = seen2.lock().unwrap();
                    seen.push(buf[..n].to_vec());
                    if seen.len() == 1 {
                        continue; // lost
                    }
                }
                back.send_to(&buf[..n], upstream).ok();
            }
            while let Ok((n, _)) = back.recv_from(&mut buf) {
                if let Some(c) = client {
                    front.send_to(&buf[..n], c).ok();
                }
            }
        }
    });
    (addr, seen, stop)
}

#[test]
fn a_retried_update_is_signed_afresh_and_accepted() {
    use std::sync::atomic::Ordering;
    use xmppdns::dns::tsig;
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, EMPTY);
    let bind = Bind::primary_with_statistics(&[("contoso.com", &zone)], &key);
    let (proxy, seen, stop) = dropping_first_update(bind.addr());
    // Updates through the proxy, reads straight from BIND.
    let topo = topology(dir.path(), proxy, &key, 1, 2, 1);
    edit_provider(&topo, |provider| {
        provider["transfer_server"] = json!(bind.addr().to_string());
        provider["timeout_ms"] = json!(300);
        provider["attempts"] = json!(3);
    });
    let topo = Topology::load(&topo.path).unwrap();
    let (zone_name, changes) = one_change(&topo);
    let done = counter(&bind, "UpdateDone");
    let mut provider = provider::open(&topo, &env()).unwrap();
    let applied = provider.apply(&zone_name, &changes);
    stop.store(true, Ordering::Relaxed);
    applied.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dig(bind.addr(), "xmpp.contoso.com", "A"), ["192.0.2.1"]);
    assert_eq!(
        counter(&bind, "UpdateDone") - done,
        1,
        "BIND applied the retry"
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "the lost UPDATE and its retry");
    let signatures: Vec<(u16, tsig::TsigRecord)> = seen
        .iter()
        .map(|datagram| {
            let id = u16::from_be_bytes([datagram[0], datagram[1]]);
            (id, tsig::find(datagram).unwrap().expect("signed"))
        })
        .collect();
    let ((first_id, first), (second_id, second)) = (&signatures[0], &signatures[1]);
    assert_ne!(first_id, second_id, "a new message ID");
    assert_eq!(first.original_id, *first_id);
    assert_eq!(second.original_id, *second_id, "signed for its own ID");
    assert_ne!(first.mac, second.mac, "a new MAC");
    assert!(second.time >= first.time);
    assert_eq!(
        tsig::strip(&seen[0], first)[2..],
        tsig::strip(&seen[1], second)[2..],
        "the same update, apart from the ID"
    );
}

/// A UDP server that answers every signed request with `rcode`, signed with `key` (the reply
/// a real server gives once the request's TSIG verified). Counts the requests; an empty
/// datagram stops it.
fn answering_with(rcode: u8, key: &ServerKey) -> (SocketAddr, std::thread::JoinHandle<usize>) {
    use xmppdns::dns::{tsig, wire};
    let signer = tsig::TsigKey::from_spec(&key.dig_arg()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 65535];
        let mut answered = 0;
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            if n == 0 {
                break;
            }
            let request = &buf[..n];
            let Ok(Some(signature)) = tsig::find(request) else {
                continue;
            };
            let bare = tsig::strip(request, &signature);
            // Header and the zone (question) section, nothing else.
            let mut reader = wire::Reader::at(&bare, 12);
            reader.name().unwrap();
            reader.bytes(4).unwrap();
            let mut reply = bare[..reader.pos()].to_vec();
            reply[2] |= 0x80;
            reply[3] = (reply[3] & 0xf0) | rcode;
            reply[4..6].copy_from_slice(&1u16.to_be_bytes());
            reply[6..12].fill(0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let signed = tsig::sign_chained(&signer, reply, now, Some(&signature.mac)).unwrap();
            socket.send_to(&signed.bytes, peer).unwrap();
            answered += 1;
        }
        answered
    });
    (addr, thread)
}

#[test]
fn server_error_codes_are_said_in_words() {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    for (rcode, name, meaning) in [
        (1, "FORMERR", "the server could not parse the request"),
        (2, "SERVFAIL", "the server failed internally"),
        (
            5,
            "REFUSED",
            "the server refused; the likely causes, in order: (1) the zone is not on that server \
             (is it the zone's primary?); (2) the key is missing from the topology (`key_file` / \
             `key_env`) or unknown to the server; (3) the server's `allow-update` / \
             `update-policy` (or `allow-transfer`, for reads) does not grant this key this zone",
        ),
        (10, "NOTZONE", "a name is outside the zone"),
    ] {
        let (addr, server) = answering_with(rcode, &key);
        let dir = tempfile::tempdir().unwrap();
        let topo = topology(dir.path(), addr, &key, 1, 1, 1);
        let (zone, changes) = one_change(&topo);
        let mut provider = provider::open(&topo, &env()).unwrap();
        let text = provider.apply(&zone, &changes).unwrap_err().to_string();
        assert!(
            text.contains(&format!("{addr} answered {name} ({meaning})")),
            "{name}: {text}"
        );
        assert!(!text.contains("unsigned"), "the reply was signed: {text}");
        assert!(!text.contains(&key.secret_base64));
        drop(provider);
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(&[], addr)
            .unwrap();
        assert!(server.join().unwrap() >= 1, "{name}: answered");
    }
}
