//! `drain`, `failover` after it, and `settle`, end to end: a BIND primary NOTIFYing a Knot
//! secondary, the CLI as users run it, and the TTLs each server serves read with dig.
//!
//! No test waits for a TTL to run out: the drain's completion is checked in the journal and
//! the output (its arithmetic is unit-tested in `failover::drain` with fixed times).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};
use support::{bind_with_knot_secondary, zone_text, Bind, Knot, TsigKey};
use xmppdns::error::exit;
use xmppdns::journal::{self, Journal};

const ZONES: [&str; 2] = ["contoso.com", "fabrikam.com"];

fn zones() -> Vec<(&'static str, String)> {
    let srv = "_xmpp-server._tcp 3600 IN SRV 10 0 5269 edgepool1.contoso.com.\n\
               _xmpp-server._tcp 3600 IN SRV 20 0 5269 edgepool2.contoso.com.";
    vec![
        (
            "contoso.com",
            zone_text("contoso.com", 1, &format!("xmpp 300 IN A 127.0.0.2\n{srv}")),
        ),
        ("fabrikam.com", zone_text("fabrikam.com", 1, srv)),
    ]
}

struct Lab {
    dir: tempfile::TempDir,
    path: PathBuf,
    bind: Bind,
    knot: Knot,
}

impl Lab {
    fn new() -> Lab {
        let key = TsigKey::generate("xmppdns-drain", "hmac-sha256");
        let zones = zones();
        let refs: Vec<(&str, &str)> = zones.iter().map(|(z, t)| (*z, t.as_str())).collect();
        let (bind, knot) = bind_with_knot_secondary(&refs, &key);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.conf"), key.bind_conf()).unwrap();
        let value = json!({
            "zones": ZONES,
            "sip_domains": ZONES,
            "active_pool": "EdgePool1",
            "federation": {"name": "xmpp.contoso.com", "ttl": 300},
            "ttl": 3600,
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com", "ipv4": ["127.0.0.2"]},
                {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com", "ipv4": ["127.0.0.1"]}
            ],
            "nameservers": [bind.addr().to_string(), knot.addr().to_string()],
            "provider": {"kind": "rfc2136", "server": bind.addr().to_string(),
                         "key_file": "key.conf", "timeout_ms": 2000, "attempts": 2},
        });
        let path = dir.path().join("topology.json");
        std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
        Lab {
            dir,
            path,
            bind,
            knot,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let path = self.path.display().to_string();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "T" { path.as_str() } else { a })
            .collect();
        support::xmppdns()
            .args(&args)
            .current_dir(self.dir.path())
            .output()
            .expect("the xmppdns binary runs")
    }

    fn servers(&self) -> [SocketAddr; 2] {
        [self.bind.addr(), self.knot.addr()]
    }

    fn journal(&self) -> Vec<journal::Entry> {
        Journal::open(&journal::default_path(&self.path))
            .unwrap()
            .entries()
            .unwrap()
    }

    /// Every server serves the federation A and every SRV RRset with TTL `fed`/`srv`.
    #[track_caller]
    fn assert_ttls(&self, fed: u32, srv: u32) {
        for server in self.servers() {
            assert_eq!(
                ttls(server, "xmpp.contoso.com", "A"),
                [fed],
                "A at {server}"
            );
            for zone in ZONES {
                let owner = format!("_xmpp-server._tcp.{zone}");
                assert_eq!(
                    ttls(server, &owner, "SRV"),
                    [srv, srv],
                    "{owner} at {server}"
                );
            }
        }
    }
}

/// The TTL of each answer record, as dig shows it (authoritative: the full TTL).
fn ttls(server: SocketAddr, name: &str, rtype: &str) -> Vec<u32> {
    let out = Command::new("dig")
        .args(["+norec", "+noall", "+answer", "+time=1", "+tries=2", "-p"])
        .arg(server.port().to_string())
        .arg(format!("@{}", server.ip()))
        .args([name, rtype])
        .output()
        .expect("dig runs (apt-get install bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn assert_ok(out: &Output, needles: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::OK)),
        "{}",
        text(out)
    );
    for needle in needles {
        assert!(
            text(out).contains(needle),
            "`{needle}` missing: {}",
            text(out)
        );
    }
}

#[test]
fn drain_then_failover_then_settle() {
    let lab = Lab::new();
    lab.assert_ttls(300, 3600);

    let out = lab.run(&["drain", "T", "--ttl", "60", "--yes"]);
    assert_ok(
        &out,
        &[
            "Drain to TTL 60 s",
            "Every authoritative server serves TTL 60 since",
            "the largest TTL replaced was 3600 s",
            "Drain complete at",
            "(1 h 0 min 0 s left)",
        ],
    );
    lab.assert_ttls(60, 60);
    let entries = lab.journal();
    assert!(entries.iter().all(|e| e.command == "drain" && e.applied));
    // Two zones lowered, then the moment every server served it.
    assert_eq!(entries.len(), 3, "{entries:#?}");
    assert!(entries[2].changes.is_empty());

    // Again: the time left, and nothing changes.
    let out = lab.run(&["drain", "T", "--ttl", "60", "--yes"]);
    assert_ok(&out, &["left). Nothing was changed."]);
    assert_eq!(lab.journal().len(), 3);

    // `plan` keeps the drained TTLs: settling is pending, not drift.
    let out = lab.run(&["plan", "T", "--detailed-exitcode"]);
    assert_ok(&out, &["settling is pending", "xmppdns settle"]);

    let summary = lab.dir.path().join("summary.json");
    let out = lab.run(&[
        "failover",
        "T",
        "--to",
        "EdgePool2",
        "--yes",
        "--skip-probe",
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert_ok(
        &out,
        &[
            "Drain: in progress, complete at",
            "When the world sees it: authoritative_at 20",
            "TTL 60 s)",
        ],
    );
    // The move kept the drained TTLs.
    lab.assert_ttls(60, 60);
    for server in lab.servers() {
        assert_eq!(support::dig(server, "xmpp.contoso.com", "A"), ["127.0.0.1"]);
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(doc["verified"], true, "{doc:#}");
    let at = |k: &str| xmppdns::failover::drain::parse_rfc3339(doc[k].as_str().unwrap());
    assert_eq!(
        at("world_at").unwrap() - at("authoritative_at").unwrap(),
        60,
        "{doc:#}"
    );
    assert_eq!(doc["world_bounded_by"]["ttl"], 60);

    let out = lab.run(&["settle", "T", "--yes"]);
    assert_ok(&out, &["Settle to the topology's TTLs", "Read back"]);
    // Settle does not poll the secondaries: wait for Knot to transfer the primary's serial.
    for zone in ZONES {
        let serial = support::soa_serial(lab.bind.addr(), zone);
        support::wait_for_serial(lab.knot.addr(), zone, serial, Duration::from_secs(10));
    }
    lab.assert_ttls(300, 3600);
    let out = lab.run(&["plan", "T", "--detailed-exitcode"]);
    assert_ok(&out, &[]);
    assert!(!text(&out).contains("settling"), "{}", text(&out));
}

#[test]
fn failover_without_a_drain_warns_how_long_the_old_pool_may_be_used() {
    let lab = Lab::new();
    let out = lab.run(&[
        "failover",
        "T",
        "--to",
        "EdgePool2",
        "--yes",
        "--skip-probe",
    ]);
    assert_ok(
        &out,
        &[
            "Warning: Drain: none. Remote servers may keep using the old pool for up to 1 h 0 min 0 s",
            "When the world sees it: authoritative_at",
            "TTL 3600 s)",
        ],
    );
    // Nothing to drain when the topology's TTLs are already low.
    let out = lab.run(&["drain", "T", "--ttl", "3600", "--yes"]);
    assert_ok(&out, &["Nothing to drain"]);
}
