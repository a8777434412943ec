//! The DNS transport against real BIND 9 on 127.0.0.1: a small signed query goes over UDP, and
//! when BIND truncates the UDP answer (TC=1) the same query is asked again over TCP and the whole
//! RRset comes back. BIND's statistics channel tells which transports it saw.

mod support;

use std::time::Duration;

use serde_json::{Map, Value};
use support::{zone_text, Bind, TsigKey as ServerKey};
use xmppdns::dns::transfer::query_rrset;
use xmppdns::dns::transport::{system_clock, Transport};
use xmppdns::dns::tsig::TsigKey;
use xmppdns::records::{Fqdn, RecordType};

/// Records at `_xmpp-server._tcp.big`: far more than fit in a 512-byte UDP answer (~30 bytes
/// each), so BIND sets TC on the UDP reply to a query without EDNS.
const BIG: usize = 40;

fn zone() -> String {
    let mut records = String::new();
    for i in 1..=BIG {
        records.push_str(&format!(
            "_xmpp-server._tcp.big 3600 IN SRV {i} 0 5269 edgepool{i}.contoso.com.\n"
        ));
    }
    records.push_str("_xmpp-server._tcp.small 3600 IN SRV 10 0 5269 edgepool1.contoso.com.\n");
    zone_text("contoso.com", 1, &records)
}

fn start() -> (Bind, TsigKey) {
    let key = ServerKey::generate("test-key", "hmac-sha256");
    let bind = Bind::primary_with_statistics(&[("contoso.com", &zone())], &key);
    let ours = TsigKey::from_bind_file(&key.bind_conf()).unwrap();
    (bind, ours)
}

fn transport(bind: &Bind) -> Transport {
    Transport {
        server: bind.addr(),
        timeout: Duration::from_secs(3),
        attempts: 2,
        clock: system_clock(),
    }
}

/// How much each of BIND's counters grew between two readings (absent = 0).
fn grown(before: &Map<String, Value>, after: &Map<String, Value>, counter: &str) -> u64 {
    let read = |m: &Map<String, Value>| m.get(counter).and_then(Value::as_u64).unwrap_or(0);
    read(after) - read(before)
}

#[test]
fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    let (bind, key) = start();
    let name = Fqdn::parse("_xmpp-server._tcp.big.contoso.com").unwrap();
    let before = bind.nsstats();
    let set = query_rrset(&transport(&bind), Some(&key), &name, RecordType::Srv)
        .unwrap()
        .expect("the RRset exists (a truncated UDP answer holds none of its records)");
    let after = bind.nsstats();

    let mut got: Vec<String> = set.records().iter().map(|r| r.to_string()).collect();
    got.sort();
    let mut want: Vec<String> = (1..=BIG)
        .map(|i| format!("{i} 0 5269 edgepool{i}.contoso.com."))
        .collect();
    want.sort();
    assert_eq!(got, want, "the whole RRset, not what fitted in 512 bytes");

    // BIND's view: one query over UDP, answered truncated; the same query again over TCP.
    assert_eq!(grown(&before, &after, "QryUDP"), 1, "{after:?}");
    assert_eq!(grown(&before, &after, "TruncatedResp"), 1, "{after:?}");
    assert_eq!(grown(&before, &after, "QryTCP"), 1, "{after:?}");
    assert_eq!(grown(&before, &after, "ReqTCP"), 1, "{after:?}");
}

#[test]
fn an_answer_that_fits_stays_on_udp() {
    let (bind, key) = start();
    let name = Fqdn::parse("_xmpp-server._tcp.small.contoso.com").unwrap();
    let before = bind.nsstats();
    let set = query_rrset(&transport(&bind), Some(&key), &name, RecordType::Srv)
        .unwrap()
        .expect("the RRset exists");
    let after = bind.nsstats();

    assert_eq!(set.records().len(), 1);
    assert_eq!(grown(&before, &after, "QryUDP"), 1, "{after:?}");
    assert_eq!(grown(&before, &after, "TruncatedResp"), 0, "{after:?}");
    assert_eq!(grown(&before, &after, "ReqTCP"), 0, "{after:?}");
}
