//! The rfc2136 provider against real BIND 9 and Knot DNS on 127.0.0.1: signed reads and
//! updates, every TSIG algorithm, each way a server says no, stale plans, large plans, a forged
//! unsigned reply and a server that never answers.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{dig, nsupdate, zone_text, Bind, Knot, TsigKey as ServerKey};
use xmppdns::app;
use xmppdns::dns::update;
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

/// 2,000 SIP domains × 3 pools: more than 64 KiB of changes, sent in the fewest messages that
/// fit, then read back by a multi-message signed AXFR.
fn large_plan(kind: Kind) {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let zone = zone_text("contoso.com", 1, EMPTY);
    let server = Server::start(kind, &[("contoso.com", &zone)], &key);
    let topo = topology(dir.path(), server.addr(), &key, 2000, 3, 1);
    let plan = plan_of(&topo);
    assert_eq!(plan.changes.len(), 2001);
    let zone_name = Fqdn::parse("contoso.com").unwrap();
    let changes: Vec<_> = plan.changes_for(&zone_name).cloned().collect();
    let edits = provider::rfc2136::edits(&changes).unwrap();
    let minimum = update::batches(&zone_name, &edits, update::MAX_MESSAGE - 606)
        .unwrap()
        .len();
    assert!(minimum >= 2, "the plan must exceed one message");
    let applied = apply(&topo);
    assert!(
        applied[0]
            .detail
            .starts_with(&format!("{minimum} UPDATE message(s)")),
        "{}",
        applied[0].detail
    );
    assert_eq!(
        dig(
            server.addr(),
            "_xmpp-server._tcp.sip01999.contoso.com",
            "SRV"
        )
        .len(),
        3
    );
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
