//! `"notify": true` on the rfc2136 provider: after each zone's UPDATE the tool NOTIFYs the
//! other authoritative servers. A Knot secondary that its primary does *not* notify (and whose
//! refresh timer is an hour) follows at once; a server whose ACL does not allow NOTIFY (a Knot
//! primary of the same zones) refuses, which is said once and not retried for the next zone.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::{wait_for_rdata, zone_text, Bind, Knot, TsigKey};

const ZONES: [&str; 2] = ["contoso.com", "fabrikam.com"];

fn zones(address: &str) -> Vec<(&'static str, String)> {
    let srv = "_xmpp-server._tcp 300 IN SRV 10 0 5269 edgepool1.contoso.com.\n\
               _xmpp-server._tcp 300 IN SRV 20 0 5269 edgepool2.contoso.com.";
    vec![
        (
            "contoso.com",
            zone_text("contoso.com", 1, &format!("xmpp 300 IN A {address}\n{srv}")),
        ),
        ("fabrikam.com", zone_text("fabrikam.com", 1, srv)),
    ]
}

fn topology(dir: &std::path::Path, primary: SocketAddr, nameservers: &[SocketAddr], notify: bool) {
    let value = json!({
        "zones": ZONES,
        "sip_domains": ZONES,
        "active_pool": "EdgePool2",
        "federation": {"name": "xmpp.contoso.com", "ttl": 300},
        "ttl": 600,
        "pools": [
            {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com", "ipv4": ["127.0.0.2"]},
            {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com", "ipv4": ["127.0.0.1"]}
        ],
        "nameservers": nameservers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "provider": {"kind": "rfc2136", "server": primary.to_string(), "key_file": "key.conf",
                     "timeout_ms": 2000, "attempts": 2, "notify": notify},
    });
    std::fs::write(
        dir.join("topology.json"),
        serde_json::to_string_pretty(&value).unwrap(),
    )
    .unwrap();
}

#[test]
fn notify_is_accepted_by_a_knot_secondary_and_a_refusal_is_noted_once() {
    let key = TsigKey::generate("xmppdns-notify", "hmac-sha256");
    let zones = zones("127.0.0.2");
    let refs: Vec<(&str, &str)> = zones.iter().map(|(z, t)| (*z, t.as_str())).collect();
    // The primary does not NOTIFY Knot: only the tool's NOTIFY can make it follow quickly.
    let bind = Bind::primary(&refs, &key);
    let knot = Knot::secondary_of(bind.addr(), &ZONES, &key);
    // A Knot primary of the same zones whose ACL allows update and transfer, not notify.
    let other = Knot::primary(&refs, &key);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.conf"), key.bind_conf()).unwrap();
    topology(
        dir.path(),
        bind.addr(),
        &[bind.addr(), knot.addr(), other.addr()],
        true,
    );
    let out = support::xmppdns()
        .args(["apply", "topology.json", "--yes"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("NOTIFY accepted by 1 server(s)").count(),
        2,
        "Knot took the NOTIFY of each zone: {text}"
    );
    let refusal = format!("NOTIFY refused by {}", other.addr());
    assert_eq!(text.matches(&refusal).count(), 1, "said once: {text}");
    assert!(
        !text.contains(&format!("NOTIFY to {}", bind.addr())),
        "{text}"
    );
    // Knot's refresh timer is an hour: serving the change in seconds is the NOTIFY's doing.
    wait_for_rdata(
        knot.addr(),
        "xmpp.contoso.com",
        "A",
        &["127.0.0.1"],
        Duration::from_secs(5),
    );
    wait_for_rdata(
        knot.addr(),
        "_xmpp-server._tcp.fabrikam.com",
        "SRV",
        &[
            "10 0 5269 edgepool2.contoso.com.",
            "20 0 5269 edgepool1.contoso.com.",
        ],
        Duration::from_secs(5),
    );
}
