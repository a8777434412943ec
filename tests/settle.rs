//! The outcome engine on the wire (#12 items 2 and 3): an rfc2136 UPDATE whose answer is lost,
//! forged or refused on a retry is settled by reading the PRIMARY again (never the
//! `transfer_server`, which may lag), TTLs included. A front on 127.0.0.1 stands between the
//! tool and a real BIND: UDP (where small UPDATEs go) through a test-controlled tamper, TCP
//! (where the settling AXFR goes) relayed honestly on the same port.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;
use support::relay::{bare_reply, TcpRelay};
use support::{dig, zone_text, Bind, TsigKey as ServerKey, LOOPBACK};
use xmppdns::app;
use xmppdns::provider::{self, Applied, Environment, ProviderError};
use xmppdns::records::Fqdn;
use xmppdns::topology::Topology;

/// What the front does with an UPDATE (every other message passes unchanged).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Mode {
    Forward,
    /// Forwarded; the server's answer is dropped.
    DropReply,
    /// Forwarded the first time only its answer is dropped; later ones pass.
    DropFirstReply,
    /// Never forwarded, never answered.
    Swallow,
    /// Forwarded; the answer replaced by an unsigned SERVFAIL.
    ServfailAfter,
    /// Not forwarded; answered with an unsigned SERVFAIL.
    ServfailInstead,
}

struct Front {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    updates: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    tcp: Option<TcpRelay>,
}

fn is_update(message: &[u8]) -> bool {
    message.len() > 2 && (message[2] >> 3) & 0x0F == 5
}

fn ask(upstream: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((LOOPBACK, 0)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    socket.send_to(query, upstream).ok()?;
    let mut buf = vec![0u8; 65535];
    let n = socket.recv(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

impl Front {
    fn start(upstream: SocketAddr) -> Front {
        let tcp = TcpRelay::start(upstream, |_, message| vec![message]);
        let socket = UdpSocket::bind(tcp.addr()).expect("UDP on the TCP relay's port");
        let (mode, updates, stop) = (
            Arc::new(AtomicU8::new(Mode::Forward as u8)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (m, u, s) = (mode.clone(), updates.clone(), stop.clone());
        let worker = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while let Ok((n, client)) = socket.recv_from(&mut buf) {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let query = buf[..n].to_vec();
                let reply = if is_update(&query) {
                    let seen = u.fetch_add(1, Ordering::SeqCst);
                    match m.load(Ordering::SeqCst) {
                        x if x == Mode::Swallow as u8 => None,
                        x if x == Mode::ServfailInstead as u8 => Some(bare_reply(&query, 2)),
                        x if x == Mode::DropReply as u8 => ask(upstream, &query).and(None),
                        x if x == Mode::DropFirstReply as u8 && seen == 0 => {
                            ask(upstream, &query).and(None)
                        }
                        x if x == Mode::ServfailAfter as u8 => {
                            ask(upstream, &query).map(|_| bare_reply(&query, 2))
                        }
                        _ => ask(upstream, &query),
                    }
                } else {
                    ask(upstream, &query)
                };
                if let Some(reply) = reply {
                    let _ = socket.send_to(&reply, client);
                }
            }
        });
        Front {
            addr: tcp.addr(),
            mode,
            updates,
            stop,
            worker: Some(worker),
            tcp: Some(tcp),
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        self.updates.store(0, Ordering::SeqCst);
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(waker) = UdpSocket::bind((LOOPBACK, 0)) {
            let _ = waker.send_to(b"stop", self.addr);
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        drop(self.tcp.take());
    }
}

const OLD: &str =
    "xmpp 300 IN A 198.51.100.99\n_xmpp-server._tcp 300 IN SRV 0 0 5269 edgepool1.contoso.com.";

/// A primary and a stale "secondary" (same starting data, never updated), the front before
/// the primary, and a topology that updates through the front and reads from the secondary.
struct Setup {
    dir: tempfile::TempDir,
    primary: Bind,
    _secondary: Bind,
    front: Front,
    key: ServerKey,
}

fn setup() -> Setup {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let zone = zone_text("contoso.com", 1, OLD);
    let primary = Bind::primary(&[("contoso.com", &zone)], &key);
    let secondary = Bind::primary(&[("contoso.com", &zone)], &key);
    let front = Front::start(primary.addr());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.conf"), key.bind_conf()).unwrap();
    let setup = Setup {
        dir,
        primary,
        _secondary: secondary,
        front,
        key,
    };
    write_topology(&setup, 1, 60);
    setup
}

/// The topology; `transfer_server` (where plans read) is the stale secondary.
fn write_topology(setup: &Setup, attempts: u32, ttl: u32) -> Topology {
    write_topology_reading(setup, attempts, ttl, true)
}

/// The topology, reading from the stale secondary (`secondary`) or from the primary.
fn write_topology_reading(setup: &Setup, attempts: u32, ttl: u32, secondary: bool) -> Topology {
    let path = setup.dir.path().join("topology.json");
    let mut value = json!({
        "zones": ["contoso.com"],
        "sip_domains": ["contoso.com"],
        "active_pool": "EdgePool2",
        "federation": {"name": "xmpp.contoso.com", "ttl": ttl},
        "pools": [
            {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com", "ipv4": ["192.0.2.1"]},
            {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com", "ipv4": ["192.0.2.2"]}
        ],
        "provider": {"kind": "rfc2136", "server": setup.front.addr.to_string(),
                     "transfer_server": setup._secondary.addr().to_string(),
                     "key_file": "key.conf", "timeout_ms": 300, "attempts": attempts}
    });
    if !secondary {
        value["provider"]
            .as_object_mut()
            .unwrap()
            .remove("transfer_server");
    }
    std::fs::write(&path, value.to_string()).unwrap();
    Topology::load(&path).unwrap()
}

fn zone() -> Fqdn {
    Fqdn::parse("contoso.com").unwrap()
}

/// Plans through the (stale) transfer server and applies zone contoso.com once.
fn apply(topology: &Topology) -> Result<Applied, ProviderError> {
    let env = Environment::system();
    let mut provider = provider::open(topology, &env).unwrap();
    let plan = app::plan(topology, provider.as_mut()).unwrap();
    assert!(!plan.changes.is_empty(), "something to apply");
    provider.apply(&zone(), &plan.changes)
}

fn primary_a(setup: &Setup) -> Vec<String> {
    dig(setup.primary.addr(), "xmpp.contoso.com", "A")
}

#[test]
fn a_lost_answer_is_settled_against_the_primary_not_the_lagging_transfer_server() {
    let setup = setup();
    setup.front.set(Mode::DropReply);
    let topology = write_topology(&setup, 1, 60);
    let applied = apply(&topology).expect("the re-read of the primary shows it landed");
    assert!(
        applied.detail.contains("confirmed by re-reading"),
        "{}",
        applied.detail
    );
    assert!(primary_a(&setup).iter().any(|r| r.contains("192.0.2.2")));
}

#[test]
fn a_forged_servfail_to_an_update_that_landed_is_settled_as_applied() {
    let setup = setup();
    setup.front.set(Mode::ServfailAfter);
    let applied = apply(&write_topology(&setup, 1, 60)).expect("landed");
    assert!(applied.detail.contains("SERVFAIL"), "{}", applied.detail);
}

#[test]
fn a_servfail_to_an_update_that_never_arrived_is_reported_as_not_applied() {
    let setup = setup();
    setup.front.set(Mode::ServfailInstead);
    let error = apply(&write_topology(&setup, 1, 60)).unwrap_err();
    assert!(
        matches!(error, ProviderError::Rejected(_)),
        "settled, so not ambiguous: {error:?}"
    );
    assert!(error.to_string().contains("SERVFAIL"), "{error}");
    assert!(primary_a(&setup)
        .iter()
        .any(|r| r.contains("198.51.100.99")));
}

#[test]
fn a_retry_refused_by_its_prerequisites_after_the_first_attempt_landed_is_success() {
    let setup = setup();
    setup.front.set(Mode::DropFirstReply);
    let applied = apply(&write_topology(&setup, 2, 60)).expect("the first attempt landed");
    assert!(
        applied.detail.contains("confirmed by re-reading"),
        "{}",
        applied.detail
    );
    assert_eq!(setup.front.updates.load(Ordering::SeqCst), 2, "one retry");
}

#[test]
fn a_swallowed_ttl_only_change_is_not_called_applied() {
    let setup = setup();
    // Everything is read from the primary (through the front) here.
    apply(&write_topology_reading(&setup, 1, 60, false)).expect("the honest first apply");
    // Now only the federation record's TTL changes: its records before and after are equal,
    // so a records-only settlement would call a lost UPDATE applied.
    setup.front.set(Mode::Swallow);
    let topology = write_topology_reading(&setup, 1, 120, false);
    let error = apply(&topology).unwrap_err();
    assert!(
        error.to_string().contains("did not answer"),
        "not confirmed: {error}"
    );
    let records = support::axfr(setup.primary.addr(), "contoso.com", &setup.key);
    let federation: Vec<_> = records
        .iter()
        .filter(|r| {
            let fields: Vec<&str> = r.split_whitespace().collect();
            fields.first() == Some(&"xmpp.contoso.com.") && fields.get(3) == Some(&"A")
        })
        .collect();
    assert!(
        !federation.is_empty()
            && federation
                .iter()
                .all(|r| r.split_whitespace().nth(1) == Some("60")),
        "the primary still holds TTL 60: {federation:?}"
    );
}

#[test]
fn an_unsettled_outcome_is_ambiguous() {
    let mut setup = setup();
    setup.front.set(Mode::DropReply);
    let topology = write_topology(&setup, 1, 60);
    let env = Environment::system();
    let mut provider = provider::open(&topology, &env).unwrap();
    let plan = app::plan(&topology, provider.as_mut()).unwrap();
    // The primary cannot be read any more (no TCP behind the front): nothing settles it.
    drop(setup.front.tcp.take());
    let error = provider.apply(&zone(), &plan.changes).unwrap_err();
    assert!(matches!(error, ProviderError::Ambiguous(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("may or may not have been applied"),
        "{error}"
    );
}
