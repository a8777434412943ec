//! Smoke tests of the real-server harness in tests/support: each server starts on its own loopback port and really answers.

mod support;

use std::panic;
use std::path::Path;
use std::thread;
use std::time::Duration;

use support::*;

const CONTOSO: &str = "contoso.com";
const FABRIKAM: &str = "fabrikam.com";
const SRV_NAME: &str = "_xmpp-server._tcp.contoso.com.";
const SRV_EDGE1: &str = "10 0 5269 edge1.contoso.com.";
const ADD_SRV_EDGE1: &str =
    "zone contoso.com\nupdate add _xmpp-server._tcp.contoso.com. 300 IN SRV 10 0 5269 edge1.contoso.com.";

/// Starts two servers at the same time on two threads (as parallel tests do).
fn two_at_once<T: Send>(start: impl Fn(u32) -> T + Sync) -> (T, T) {
    thread::scope(|scope| {
        let first = scope.spawn(|| start(1));
        let second = scope.spawn(|| start(2));
        let first = first.join().unwrap_or_else(|e| panic::resume_unwind(e));
        let second = second.join().unwrap_or_else(|e| panic::resume_unwind(e));
        (first, second)
    })
}

fn no_records() -> Vec<String> {
    Vec::new()
}

#[test]
fn bind_primary_serves_two_zones_and_takes_only_signed_updates() {
    let key = TsigKey::test_key();
    let contoso = zone_text(CONTOSO, 2024010101, "");
    let fabrikam = zone_text(FABRIKAM, 7, "");
    let bind = Bind::primary(&[(CONTOSO, &contoso), (FABRIKAM, &fabrikam)], &key);
    assert_eq!(soa_serial(bind.addr(), CONTOSO), 2024010101);
    assert_eq!(soa_serial(bind.addr(), FABRIKAM), 7);
    assert_eq!(dig(bind.addr(), SRV_NAME, "SRV"), no_records());

    nsupdate(bind.addr(), &key, ADD_SRV_EDGE1);
    assert_eq!(dig(bind.addr(), SRV_NAME, "SRV"), [SRV_EDGE1]);
    assert_eq!(soa_serial(bind.addr(), CONTOSO), 2024010102);
    let records = axfr(bind.addr(), CONTOSO, &key);
    let srv = format!("{SRV_NAME} 300 IN SRV {SRV_EDGE1}");
    assert!(records.contains(&srv), "{srv} not in {records:#?}");

    let add_a = "zone contoso.com\nupdate add x.contoso.com. 300 IN A 192.0.2.1";
    let unsigned = try_nsupdate(bind.addr(), None, add_a).unwrap_err();
    assert!(unsigned.contains("REFUSED"), "{unsigned}");
    let forged = TsigKey::generate(&key.name, &key.algorithm); // same name, other secret
    assert!(try_nsupdate(bind.addr(), Some(&forged), add_a).is_err());
    assert!(try_axfr(bind.addr(), CONTOSO, &forged).is_err());
    assert_eq!(dig(bind.addr(), "x.contoso.com", "A"), no_records());
    assert_eq!(soa_serial(bind.addr(), CONTOSO), 2024010102);
}

#[test]
fn knot_secondary_follows_bind_primary_by_notify_and_ixfr() {
    let key = TsigKey::test_key();
    let contoso = zone_text(CONTOSO, 100, "");
    let fabrikam = zone_text(FABRIKAM, 200, "");
    let (bind, knot) =
        bind_with_knot_secondary(&[(CONTOSO, &contoso), (FABRIKAM, &fabrikam)], &key);
    assert_ne!(bind.port(), knot.port());
    assert_eq!(soa_serial(knot.addr(), CONTOSO), 100);
    assert_eq!(soa_serial(knot.addr(), FABRIKAM), 200);

    nsupdate(bind.addr(), &key, ADD_SRV_EDGE1);
    let timeout = Duration::from_secs(5);
    wait_for_rdata(knot.addr(), SRV_NAME, "SRV", &[SRV_EDGE1], timeout);
    assert_eq!(soa_serial(knot.addr(), CONTOSO), 101);
    wait_for("Knot logging an incoming IXFR", timeout, || {
        let logs = knot.logs();
        let ixfr = logs
            .lines()
            .any(|l| l.contains("[contoso.com.] IXFR, incoming") && l.contains("finished"));
        ixfr.then_some(()).ok_or(logs)
    });
}

#[test]
fn knot_secondary_follows_knot_primary_by_notify() {
    let key = TsigKey::generate("knot-key", "hmac-sha384");
    let contoso = zone_text(CONTOSO, 10, "");
    let (primary, secondary) = knot_with_knot_secondary(&[(CONTOSO, &contoso)], &key);
    nsupdate(primary.addr(), &key, ADD_SRV_EDGE1);
    assert_eq!(dig(primary.addr(), SRV_NAME, "SRV"), [SRV_EDGE1]);
    // Knot 3.2 NOTIFYs about 1 s after the update.
    wait_for_rdata(
        secondary.addr(),
        SRV_NAME,
        "SRV",
        &[SRV_EDGE1],
        Duration::from_secs(5),
    );
    assert_eq!(soa_serial(secondary.addr(), CONTOSO), 11);
}

#[test]
fn a_secondary_of_a_primary_that_does_not_notify_it_serves_the_initial_zone() {
    let key = TsigKey::test_key();
    let contoso = zone_text(CONTOSO, 2024010101, "edge1 IN A 192.0.2.10");
    let bind = Bind::primary(&[(CONTOSO, &contoso)], &key);
    let knot = Knot::secondary_of(bind.addr(), &[CONTOSO], &key);
    assert_eq!(soa_serial(knot.addr(), CONTOSO), 2024010101);
    assert_eq!(dig(knot.addr(), "edge1.contoso.com", "A"), ["192.0.2.10"]);
}

#[test]
#[should_panic(expected = "not loaded due to errors")]
fn a_bad_zone_fails_at_once_with_the_server_log() {
    let key = TsigKey::test_key();
    let broken = zone_text(CONTOSO, 1, "edge1 IN A 192.0.2.300");
    Bind::primary(&[(CONTOSO, &broken)], &key);
}

#[test]
fn knot_primary_takes_only_signed_updates_and_transfers() {
    let key = TsigKey::generate("knot-key", "hmac-sha512");
    let contoso = zone_text(CONTOSO, 5, "edge1 IN A 192.0.2.10");
    let knot = Knot::primary(&[(CONTOSO, &contoso)], &key);
    assert_eq!(dig(knot.addr(), "edge1.contoso.com", "A"), ["192.0.2.10"]);

    let replace = "zone contoso.com\nupdate delete edge1.contoso.com. A\n\
                   update add edge1.contoso.com. 300 IN A 192.0.2.11";
    nsupdate(knot.addr(), &key, replace);
    assert_eq!(dig(knot.addr(), "edge1.contoso.com", "A"), ["192.0.2.11"]);
    assert_eq!(soa_serial(knot.addr(), CONTOSO), 6);
    let records = axfr(knot.addr(), CONTOSO, &key);
    assert!(
        records.contains(&"edge1.contoso.com. 300 IN A 192.0.2.11".to_owned()),
        "{records:#?}"
    );

    let add = "zone contoso.com\nupdate add x.contoso.com. 300 IN A 192.0.2.1";
    assert!(try_nsupdate(knot.addr(), None, add).is_err());
    let other = TsigKey::generate("other-key", "hmac-sha512");
    assert!(try_axfr(knot.addr(), CONTOSO, &other).is_err());
    assert_eq!(dig(knot.addr(), "x.contoso.com", "A"), no_records());
}

#[test]
fn powerdns_api_creates_a_zone_that_dns_serves_and_takes_signed_updates() {
    let key = TsigKey::generate("pdns-key", "hmac-sha256");
    let pdns = PowerDns::start_with_dnsupdate(&key);
    assert_ne!(pdns.dns_port(), pdns.api_port());

    let zone = pdns.create_zone(CONTOSO, &["ns1.contoso.com"]);
    let serial = u32::try_from(zone["serial"].as_u64().unwrap()).unwrap();
    assert_eq!(soa_serial(pdns.addr(), CONTOSO), serial);
    assert_eq!(dig(pdns.addr(), CONTOSO, "NS"), ["ns1.contoso.com."]);
    let listed = pdns.api("GET", "/api/v1/servers/localhost/zones", None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()[0]["name"], "contoso.com.");
    let wrong_key = http_request(
        pdns.api_addr(),
        "GET",
        "/api/v1/servers/localhost/zones",
        &[("X-API-Key", "not-the-key")],
        None,
    )
    .unwrap();
    assert_eq!(wrong_key.status, 401);

    nsupdate(pdns.addr(), &key, ADD_SRV_EDGE1);
    assert_eq!(dig(pdns.addr(), SRV_NAME, "SRV"), [SRV_EDGE1]);
    assert!(soa_serial(pdns.addr(), CONTOSO) > serial);
    let add = "zone contoso.com\nupdate add x.contoso.com. 300 IN A 192.0.2.1";
    assert!(try_nsupdate(pdns.addr(), None, add).is_err());
    assert_eq!(dig(pdns.addr(), "x.contoso.com", "A"), no_records());
}

#[test]
fn prosody_offers_starttls_and_dialback_on_its_s2s_port() {
    let prosody = Prosody::start(CONTOSO);
    let timeout = Duration::from_secs(5);
    let reply = xmpp_stream_features(prosody.addr(), CONTOSO, timeout).unwrap();
    assert!(reply.contains("from='contoso.com'"), "{reply}");
    assert!(
        reply.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"),
        "{reply}"
    );
    assert!(reply.contains("urn:xmpp:features:dialback"), "{reply}");

    let unknown = xmpp_stream_features(prosody.addr(), FABRIKAM, timeout).unwrap();
    assert!(unknown.contains("host-unknown"), "{unknown}");
}

#[test]
fn two_bind_primaries_in_parallel_have_their_own_ports_dirs_and_data() {
    let key = TsigKey::test_key();
    let (a, b) = two_at_once(|n| Bind::primary(&[(CONTOSO, &zone_text(CONTOSO, n, ""))], &key));
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_eq!(soa_serial(a.addr(), CONTOSO), 1);
    assert_eq!(soa_serial(b.addr(), CONTOSO), 2);
    nsupdate(a.addr(), &key, ADD_SRV_EDGE1);
    assert_eq!(dig(a.addr(), SRV_NAME, "SRV"), [SRV_EDGE1]);
    assert_eq!(dig(b.addr(), SRV_NAME, "SRV"), no_records());
}

#[test]
fn two_knot_primaries_in_parallel_have_their_own_ports_dirs_and_data() {
    let key = TsigKey::test_key();
    let (a, b) = two_at_once(|n| Knot::primary(&[(CONTOSO, &zone_text(CONTOSO, n, ""))], &key));
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_eq!(soa_serial(a.addr(), CONTOSO), 1);
    assert_eq!(soa_serial(b.addr(), CONTOSO), 2);
    nsupdate(b.addr(), &key, ADD_SRV_EDGE1);
    assert_eq!(dig(b.addr(), SRV_NAME, "SRV"), [SRV_EDGE1]);
    assert_eq!(dig(a.addr(), SRV_NAME, "SRV"), no_records());
}

#[test]
fn two_powerdns_in_parallel_have_their_own_ports_dirs_and_data() {
    let (a, b) = two_at_once(|_| PowerDns::start());
    let ports = [a.dns_port(), a.api_port(), b.dns_port(), b.api_port()];
    for (i, port) in ports.iter().enumerate() {
        assert!(
            !ports[i + 1..].contains(port),
            "port {port} used twice: {ports:?}"
        );
    }
    assert_ne!(a.dir(), b.dir());
    assert_ne!(a.api_key(), b.api_key());
    a.create_zone(CONTOSO, &["ns1.contoso.com"]);
    b.create_zone(FABRIKAM, &["ns1.fabrikam.com"]);
    assert!(try_soa_serial(a.addr(), CONTOSO).is_ok());
    assert!(try_soa_serial(b.addr(), CONTOSO).is_err()); // REFUSED: not its zone
    assert!(try_soa_serial(b.addr(), FABRIKAM).is_ok());
}

#[test]
fn two_prosody_in_parallel_have_their_own_ports_and_dirs() {
    let (a, b) = two_at_once(|n| Prosody::start(if n == 1 { CONTOSO } else { FABRIKAM }));
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    let timeout = Duration::from_secs(5);
    let from_a = xmpp_stream_features(a.addr(), CONTOSO, timeout).unwrap();
    let from_b = xmpp_stream_features(b.addr(), FABRIKAM, timeout).unwrap();
    assert!(from_a.contains("from='contoso.com'"), "{from_a}");
    assert!(from_b.contains("from='fabrikam.com'"), "{from_b}");
}

#[test]
fn dropping_a_server_stops_and_reaps_it_and_removes_its_dir() {
    let key = TsigKey::test_key();
    let bind = Bind::primary(&[(CONTOSO, &zone_text(CONTOSO, 1, ""))], &key);
    let prosody = Prosody::start(CONTOSO);
    let gone = [
        (bind.pid(), bind.dir().to_path_buf()),
        (prosody.pid(), prosody.dir().to_path_buf()),
    ];
    let (dns, xmpp) = (bind.addr(), prosody.addr());
    for (pid, dir) in &gone {
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(dir.is_dir());
    }
    drop(bind);
    drop(prosody);
    for (pid, dir) in &gone {
        // A zombie would still have /proc/PID: gone means stopped and reaped.
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} left"
        );
        assert!(!dir.exists(), "{} left", dir.display());
    }
    assert!(query(dns, CONTOSO, "SOA").is_err());
    assert!(xmpp_stream_features(xmpp, CONTOSO, Duration::from_secs(1)).is_err());
}

#[test]
fn tsig_keygen_keys_of_every_algorithm_work_with_bind_and_knot() {
    for (algorithm, bytes) in TSIG_ALGORITHMS.into_iter().zip([20, 32, 48, 64]) {
        let key = TsigKey::generate(&format!("{algorithm}.key"), algorithm);
        assert_eq!(key.secret_len(), bytes, "{key:?}");
        let zone = zone_text(CONTOSO, 1, "");
        let (bind, knot) = thread::scope(|scope| {
            let bind = scope.spawn(|| Bind::primary(&[(CONTOSO, &zone)], &key));
            let knot = scope.spawn(|| Knot::primary(&[(CONTOSO, &zone)], &key));
            (
                bind.join().unwrap_or_else(|e| panic::resume_unwind(e)),
                knot.join().unwrap_or_else(|e| panic::resume_unwind(e)),
            )
        });
        for server in [bind.addr(), knot.addr()] {
            nsupdate(server, &key, ADD_SRV_EDGE1);
            assert_eq!(
                dig(server, SRV_NAME, "SRV"),
                [SRV_EDGE1],
                "{algorithm} at {server}"
            );
            assert_eq!(soa_serial(server, CONTOSO), 2, "{algorithm} at {server}");
        }
    }
}

#[test]
#[should_panic(expected = "apt-get install")]
fn a_missing_program_fails_the_test() {
    require("xmppdns-no-such-program");
}

#[test]
fn missing_programs_name_their_debian_packages() {
    for (program, package) in [
        ("named", "bind9"),
        ("tsig-keygen", "bind9"),
        ("dig", "bind9-dnsutils"),
        ("nsupdate", "bind9-dnsutils"),
        ("knotd", "knot"),
        ("prosody", "prosody"),
        ("pdns_server", "pdns-server"),
        ("pdnsutil", "pdns-server"),
        ("sqlite3", "sqlite3"),
        ("openssl", "openssl"),
    ] {
        let message = missing_program_message(program);
        assert!(
            message.contains(&format!("apt-get install {package}`")),
            "{message}"
        );
    }
}

#[test]
fn soa_serial_is_found_in_zone_text() {
    let text = "$ORIGIN contoso.com.\n$TTL 300\n; a comment with SOA in it\n\
                @ IN TXT \"SOA 1 2 3\"\n\
                @ 3600 IN SOA ns1 hostmaster ( ; primary, mailbox\n  2024123101 ; serial\n  3600 600 86400 300 )\n";
    assert_eq!(soa_serial_in_zone_text(text), Some(2024123101));
    assert_eq!(
        soa_serial_in_zone_text(&zone_text(CONTOSO, 42, "")),
        Some(42)
    );
    assert_eq!(soa_serial_in_zone_text("@ IN A 192.0.2.1"), None);
}
