//! An on-path attacker between the tool and a real BIND 9 on 127.0.0.1 (a relay in
//! tests/support/relay.rs): records forged into a signed AXFR must never reach a plan, and
//! forged UDP replies must be discarded while the genuine reply is still taken.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::relay::{
    bare_reply, now, push_answer, push_unsigned_tsig_error, srv_rdata, TcpRelay, UdpRelay,
};
use support::{zone_text, Bind, TsigKey as ServerKey};
use xmppdns::app;
use xmppdns::dns::transfer::query_rrset;
use xmppdns::dns::transport::{system_clock, Transport};
use xmppdns::dns::tsig::{self, Algorithm, Secret, TsigKey};
use xmppdns::plan::Plan;
use xmppdns::provider::{self, Environment};
use xmppdns::records::{Fqdn, RecordType};
use xmppdns::topology::Topology;

/// Filler records: enough that BIND needs several messages for the transfer (it packs at most
/// 20 KiB into each by default), so there is a "middle" to inject into.
const FILLER: usize = 3000;
/// The target an attacker would like remote servers to federate with.
const EVIL: &str = "evil.attacker.example.";

fn zone() -> String {
    let mut records = String::from(
        "_xmpp-server._tcp 3600 IN SRV 10 0 5269 edgepool1.contoso.com.\nxmpp 300 IN A 192.0.2.1\n",
    );
    for i in 0..FILLER {
        records.push_str(&format!("host{i} IN A 198.51.100.{}\n", i % 250 + 1));
    }
    zone_text("contoso.com", 1, &records)
}

/// A topology for contoso.com read through `server`, with the key written to `dir/key.conf`.
fn topology(dir: &Path, server: SocketAddr, key: &ServerKey) -> Topology {
    std::fs::write(dir.join("key.conf"), key.bind_conf()).unwrap();
    let value = json!({
        "zones": ["contoso.com"],
        "sip_domains": ["contoso.com"],
        "active_pool": "EdgePool1",
        "federation": {"name": "xmpp.contoso.com"},
        "pools": [{"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
                   "ipv4": ["192.0.2.1"]}],
        "provider": {"kind": "rfc2136", "server": server.to_string(), "key_file": "key.conf",
                     "timeout_ms": 3000, "attempts": 1}
    });
    let path = dir.join("topology.json");
    std::fs::write(&path, value.to_string()).unwrap();
    Topology::load(&path).unwrap()
}

fn plan_through(server: SocketAddr, key: &ServerKey) -> Result<Plan, String> {
    let dir = tempfile::tempdir().unwrap();
    let topo = topology(dir.path(), server, key);
    let mut provider = provider::open(&topo, &Environment::system()).unwrap();
    app::plan(&topo, provider.as_mut()).map_err(|e| e.to_string())
}

/// A message as an attacker would slip into the stream: the transfer's ID, a forged SRV for
/// the federation domain and a changed federation A record, and `tsig` appended by the caller.
fn forged_message(genuine: &[u8]) -> Vec<u8> {
    let mut message = genuine[..12].to_vec();
    message[4..12].fill(0);
    push_answer(
        &mut message,
        "_xmpp-server._tcp.contoso.com",
        33,
        3600,
        &srv_rdata(0, 0, 5269, EVIL),
    );
    push_answer(
        &mut message,
        "xmpp.contoso.com",
        1,
        3600,
        &[203, 0, 113, 66],
    );
    message
}

/// A relay that forwards the transfer and injects `forge(first message)` after the first
/// message.
fn injecting_relay(
    bind: &Bind,
    forge: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
) -> TcpRelay {
    TcpRelay::start(bind.addr(), move |index, message| {
        if index == 0 {
            let forged = forge(&message);
            vec![message, forged]
        } else {
            vec![message]
        }
    })
}

/// (That BIND sends this zone in several messages, so that there is a middle to inject into,
/// is checked by `an_honest_relay_changes_nothing`: the tool may stop reading before the relay
/// has seen them all.)
fn assert_refused_without_the_forgery(result: Result<Plan, String>) {
    match result {
        Ok(plan) => panic!(
            "the forged message was accepted; the plan is built on it: {:?}",
            plan.changes
        ),
        Err(text) => {
            eprintln!("refused: {text}");
            assert!(!text.contains("evil"), "{text}");
            assert!(
                text.contains("TSIG") && text.contains("cannot be trusted"),
                "a clear error: {text}"
            );
        }
    }
}

/// The control: the same relay, forwarding only, gives the same plan as BIND itself (none).
#[test]
fn an_honest_relay_changes_nothing() {
    let key = ServerKey::test_key();
    let bind = Bind::primary(&[("contoso.com", &zone())], &key);
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let relay = TcpRelay::start(bind.addr(), move |_, message| {
        counter.fetch_add(1, Ordering::SeqCst);
        vec![message]
    });
    let plan = plan_through(relay.addr(), &key).unwrap();
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert!(
        sent.load(Ordering::SeqCst) >= 2,
        "a transfer of several messages"
    );
}

#[test]
fn a_tsig_error_message_inside_a_signed_transfer_is_fatal() {
    let key = ServerKey::test_key();
    let bind = Bind::primary(&[("contoso.com", &zone())], &key);
    let relay = injecting_relay(&bind, |first| {
        let mut forged = forged_message(first);
        push_unsigned_tsig_error(&mut forged, "test-key", "hmac-sha256", now(), tsig::BADSIG);
        forged
    });
    assert_refused_without_the_forgery(plan_through(relay.addr(), &key));
}

/// RFC 8945 §5.3.1 lets a server leave up to 99 messages in a row unsigned, but each one is
/// covered by the MAC of the next signed message: an injected unsigned message makes that MAC
/// fail, and the whole read fails.
#[test]
fn an_unsigned_message_injected_inside_a_signed_transfer_is_caught_by_the_next_mac() {
    let key = ServerKey::test_key();
    let bind = Bind::primary(&[("contoso.com", &zone())], &key);
    let relay = injecting_relay(&bind, forged_message);
    assert_refused_without_the_forgery(plan_through(relay.addr(), &key));
}

fn udp_transport(server: SocketAddr, timeout: Duration) -> Transport {
    Transport {
        server,
        timeout,
        attempts: 1,
        clock: system_clock(),
    }
}

fn ours(key: &ServerKey) -> TsigKey {
    TsigKey::from_bind_file(&key.bind_conf()).unwrap()
}

fn federation_srv() -> Fqdn {
    Fqdn::parse("_xmpp-server._tcp.contoso.com").unwrap()
}

/// Where the first answer's SRV priority sits in a reply to one question (the owner is a
/// 2-byte pointer to the question; then type, class, TTL, RDLENGTH).
fn first_priority(reply: &[u8]) -> usize {
    support::relay::question_end(reply) + 12
}

/// `genuine` with its first SRV's priority changed and its TSIG left as it was.
fn with_changed_priority(genuine: &[u8]) -> Vec<u8> {
    let mut forged = genuine.to_vec();
    let at = first_priority(&forged);
    forged[at..at + 2].copy_from_slice(&0u16.to_be_bytes());
    forged
}

/// `genuine` with its first SRV's priority changed, signed again (chained to the query's MAC,
/// as a server does) with another key.
fn signed_by_another_key(query: &[u8], genuine: &[u8]) -> Vec<u8> {
    let other = TsigKey::new("other-key", Algorithm::HmacSha256, Secret::new(vec![7; 32])).unwrap();
    let record = tsig::find(genuine).unwrap().unwrap();
    let bare = with_changed_priority(&tsig::strip(genuine, &record));
    let request_mac = tsig::find(query).unwrap().unwrap().mac;
    tsig::sign_chained(&other, bare, now(), Some(&request_mac))
        .unwrap()
        .bytes
}

/// `genuine` asking another question (one letter of the owner changed), MAC untouched.
fn for_another_question(genuine: &[u8]) -> Vec<u8> {
    let mut forged = genuine.to_vec();
    forged[13] = b'y'; // "_xmpp-server" -> "_ympp-server"
    forged
}

/// Each forgery arrives first, then BIND's genuine reply: the tool takes the genuine one.
#[test]
fn forged_udp_replies_are_discarded_and_the_genuine_one_is_taken() {
    type Forge = fn(&[u8], &[u8]) -> Vec<u8>;
    let forgeries: [(&str, Forge); 5] = [
        ("unsigned NOERROR", |query, _| bare_reply(query, 0)),
        ("bad MAC", |_, genuine| with_changed_priority(genuine)),
        ("another key", signed_by_another_key),
        ("another question", |_, genuine| {
            for_another_question(genuine)
        }),
        ("unsigned BADSIG", |query, _| {
            let mut forged = bare_reply(query, 9);
            push_unsigned_tsig_error(&mut forged, "test-key", "hmac-sha256", now(), tsig::BADSIG);
            forged
        }),
    ];
    let key = ServerKey::test_key();
    let bind = Bind::primary(&[("contoso.com", &zone())], &key);
    for (what, forge) in forgeries {
        let relay = UdpRelay::start(bind.addr(), move |query, genuine| {
            vec![forge(query, &genuine), genuine]
        });
        let transport = udp_transport(relay.addr(), Duration::from_secs(5));
        let set = query_rrset(
            &transport,
            Some(&ours(&key)),
            &federation_srv(),
            RecordType::Srv,
        )
        .unwrap_or_else(|e| panic!("{what}: the forgery ended the exchange: {e}"))
        .unwrap_or_else(|| panic!("{what}: the RRset exists"));
        let records: Vec<String> = set.records().iter().map(|r| r.to_string()).collect();
        assert_eq!(
            records,
            ["10 0 5269 edgepool1.contoso.com."],
            "{what}: the genuine reply"
        );
    }
}

/// A genuine unsigned error from the server (a wrong secret: BADSIG) is still reported by
/// name once no verified reply has come within the timeout.
#[test]
fn an_unsigned_badsig_from_the_server_is_still_reported() {
    let key = ServerKey::test_key();
    let bind = Bind::primary(&[("contoso.com", &zone())], &key);
    let wrong = ServerKey::generate("test-key", "hmac-sha256");
    let direct = udp_transport(bind.addr(), Duration::from_millis(300));
    // A forged unsigned NOERROR ahead of the server's BADSIG does not hide it.
    let relay = UdpRelay::start(bind.addr(), |query, genuine| {
        vec![bare_reply(query, 0), genuine]
    });
    let forged_first = udp_transport(relay.addr(), Duration::from_millis(300));
    for transport in [direct, forged_first] {
        let err = query_rrset(
            &transport,
            Some(&ours(&wrong)),
            &federation_srv(),
            RecordType::Srv,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("NOTAUTH") && err.contains("BADSIG") && err.contains("wrong secret"),
            "{err}"
        );
    }
}

/// When the server refuses transfers, names are read by query, and a wildcard (RFC 4592) makes
/// up an answer for a name that holds nothing: guarding an UPDATE on that "RRset" would fail
/// with NXRRSET on every run, and the tool would call the plan stale forever. It says so.
#[test]
fn a_wildcard_answer_read_by_query_is_named_not_trusted() {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let records = "* 300 IN A 198.51.100.99\n_xmpp-server._tcp 3600 IN SRV 10 0 5269 edgepool1.contoso.com.\n";
    let bind = Bind::primary_refusing_transfers(
        &[("contoso.com", &zone_text("contoso.com", 1, records))],
        &key,
    );
    let error = plan_through(bind.addr(), &key).expect_err("a wildcard answer is refused");
    for expected in [
        "answers xmpp.contoso.com. A from a wildcard",
        "xmppdns-wildcard-check.contoso.com.",
        "NXRRSET",
        "allow-transfer",
    ] {
        assert!(error.contains(expected), "`{expected}` in: {error}");
    }

    // An explicit record beside the wildcard is read as it is: the made-up sibling gets the
    // wildcard's other address.
    let records = "* 300 IN A 198.51.100.99\nxmpp 300 IN A 192.0.2.1\n_xmpp-server._tcp 3600 IN SRV 10 0 5269 edgepool1.contoso.com.\n";
    let bind = Bind::primary_refusing_transfers(
        &[("contoso.com", &zone_text("contoso.com", 1, records))],
        &key,
    );
    let plan = plan_through(bind.addr(), &key).expect("no wildcard match");
    assert!(
        plan.changes
            .iter()
            .all(|c| c.name.as_str() != "xmpp.contoso.com."),
        "xmpp.contoso.com. A already holds 192.0.2.1: {:?}",
        plan.changes
    );
}
