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
/// message; counts the messages BIND sent.
fn injecting_relay(
    bind: &Bind,
    forge: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
) -> (TcpRelay, Arc<AtomicUsize>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let relay = TcpRelay::start(bind.addr(), move |index, message| {
        counter.fetch_add(1, Ordering::SeqCst);
        if index == 0 {
            let forged = forge(&message);
            vec![message, forged]
        } else {
            vec![message]
        }
    });
    (relay, sent)
}

fn assert_refused_without_the_forgery(result: Result<Plan, String>, sent: &AtomicUsize) {
    assert!(
        sent.load(Ordering::SeqCst) >= 2,
        "the transfer must span several messages for the test to mean anything"
    );
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
    let (relay, sent) = injecting_relay(&bind, |first| {
        let mut forged = forged_message(first);
        push_unsigned_tsig_error(&mut forged, "test-key", "hmac-sha256", now(), tsig::BADSIG);
        forged
    });
    assert_refused_without_the_forgery(plan_through(relay.addr(), &key), &sent);
}

/// RFC 8945 §5.3.1 lets a server leave up to 99 messages in a row unsigned, but each one is
/// covered by the MAC of the next signed message: an injected unsigned message makes that MAC
/// fail, and the whole read fails.
#[test]
fn an_unsigned_message_injected_inside_a_signed_transfer_is_caught_by_the_next_mac() {
    let key = ServerKey::test_key();
    let bind = Bind::primary(&[("contoso.com", &zone())], &key);
    let (relay, sent) = injecting_relay(&bind, forged_message);
    assert_refused_without_the_forgery(plan_through(relay.addr(), &key), &sent);
}
