//! `xmppdns drill` end to end: a BIND primary NOTIFYing a Knot secondary, Prosody as the new
//! pool's XMPP endpoint. A full drill with `--hold 1`, and one whose new pool does not answer:
//! it stops at the probe, before any DNS change.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use support::{bind_with_knot_secondary, dig, zone_text, Bind, Knot, Prosody, TsigKey};
use xmppdns::journal::{self, Journal};

const OLD_ADDRESS: &str = "127.0.0.2";
const ZONES: [&str; 2] = ["contoso.com", "fabrikam.com"];

/// EdgePool1's XMPP endpoint: 127.0.0.2 on Prosody's port, forwarded to Prosody (which listens
/// on 127.0.0.1 only), so both pools answer and the failback's verify can probe the old pool.
fn forward_old_pool(port: u16) {
    let listener = TcpListener::bind((OLD_ADDRESS, port)).expect("bind 127.0.0.2");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let (mut upstream, mut downstream) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut upstream, &mut downstream));
            std::thread::spawn(move || {
                let (mut from, mut to) = (server, client);
                std::io::copy(&mut from, &mut to)
            });
        }
    });
}

struct Lab {
    dir: tempfile::TempDir,
    path: PathBuf,
    bind: Bind,
    knot: Knot,
    _prosody: Prosody,
}

/// The zones with EdgePool1 active and both pools pre-provisioned; EdgePool2 at `new_address`.
fn zones(port: u16, new_address: &str) -> Vec<(&'static str, String)> {
    let srv = format!(
        "_xmpp-server._tcp 3600 IN SRV 10 0 {port} edgepool1.contoso.com.\n\
         _xmpp-server._tcp 3600 IN SRV 20 0 {port} edgepool2.contoso.com."
    );
    let contoso = format!(
        "xmpp 300 IN A {OLD_ADDRESS}\nedgepool1 IN A {OLD_ADDRESS}\nedgepool2 IN A {new_address}\n{srv}"
    );
    vec![
        ("contoso.com", zone_text("contoso.com", 1, &contoso)),
        ("fabrikam.com", zone_text("fabrikam.com", 1, &srv)),
    ]
}

impl Lab {
    /// Prosody listens on 127.0.0.1; `new_address` is EdgePool2's address.
    fn new(new_address: &str) -> Lab {
        let prosody = Prosody::start("contoso.com");
        let port = prosody.port();
        forward_old_pool(port);
        let key = TsigKey::generate("xmppdns-drill", "hmac-sha256");
        let zones = zones(port, new_address);
        let refs: Vec<(&str, &str)> = zones.iter().map(|(z, t)| (*z, t.as_str())).collect();
        let (bind, knot) = bind_with_knot_secondary(&refs, &key);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.conf"), key.bind_conf()).unwrap();
        let value = json!({
            "zones": ZONES,
            "sip_domains": ZONES,
            "active_pool": "EdgePool1",
            "federation": {"name": "xmpp.contoso.com", "ttl": 300},
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
                 "ipv4": [OLD_ADDRESS], "servers": ["edge1a.contoso.com"]},
                {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com",
                 "ipv4": [new_address], "servers": ["edge2a.contoso.com"]}
            ],
            "srv": {"port": port},
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
            _prosody: prosody,
        }
    }

    fn drill(&self, extra: &[&str]) -> Output {
        support::xmppdns()
            .args(["drill", self.path.to_str().unwrap(), "--to", "EdgePool2"])
            .args(extra)
            .current_dir(self.dir.path())
            .output()
            .expect("the xmppdns binary runs")
    }

    fn servers(&self) -> [SocketAddr; 2] {
        [self.bind.addr(), self.knot.addr()]
    }

    fn journal(&self) -> Vec<journal::Entry> {
        let path = journal::default_path(&self.path);
        if !path.exists() {
            return Vec::new();
        }
        Journal::open(&path).unwrap().entries().unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_full_drill_fails_over_holds_and_fails_back() {
    let lab = Lab::new("127.0.0.1");
    let html = lab.file("drill.html");
    let out = lab.drill(&["--hold", "1", "--yes", "--report", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = text(&out);
    for step in [
        "audit",
        "probe the new pool",
        "failover",
        "verify",
        "hold",
        "failback",
        "verify again",
    ] {
        assert!(stdout.contains(step), "step {step}: {stdout}");
    }
    assert!(stdout.contains("failover: authoritative_at 20"), "{stdout}");
    assert!(stdout.contains("failback: authoritative_at 20"), "{stdout}");
    assert!(stdout.contains("Drill passed."), "{stdout}");

    // Back where it started, everywhere; the journal holds the failover and the failback.
    for server in lab.servers() {
        assert_eq!(dig(server, "xmpp.contoso.com", "A"), [OLD_ADDRESS]);
    }
    let topology = read_json(&lab.path);
    assert_eq!(topology["active_pool"], "EdgePool1");
    let commands: Vec<String> = lab.journal().into_iter().map(|e| e.command).collect();
    assert!(commands.contains(&"failover".to_string()), "{commands:?}");
    assert_eq!(commands.last().map(String::as_str), Some("failback"));

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("PASSED"), "{page}");
    assert!(
        page.contains("type=\"checkbox\""),
        "manual steps with checkboxes"
    );
    assert!(page.contains("world_at"), "{page}");
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
    eprintln!("drill.html: {} bytes", page.len());

    // The same drill again with a JSON report: every step passed, and its times are there.
    let json_path = lab.file("drill.json");
    let out = lab.drill(&[
        "--hold",
        "1",
        "--yes",
        "--report",
        json_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc = read_json(&json_path);
    assert_eq!(doc["passed"], true, "{doc:#}");
    assert_eq!(doc["steps"].as_array().unwrap().len(), 7, "{doc:#}");
    assert_eq!(doc["times"].as_array().unwrap().len(), 2, "{doc:#}");
    assert!(doc["times"][0]["world_at"].is_string(), "{doc:#}");
    assert!(!doc["manual_steps"].as_array().unwrap().is_empty());
    let took: Vec<u64> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["took_ms"].as_u64().unwrap())
        .collect();
    eprintln!(
        "drill.json: {} bytes, steps took {took:?} ms",
        std::fs::read(&json_path).unwrap().len()
    );
}

#[test]
fn a_drill_whose_new_pool_does_not_answer_stops_at_the_probe_and_changes_nothing() {
    // EdgePool2 at 127.0.0.3: nothing listens there.
    let lab = Lab::new("127.0.0.3");
    let report = lab.file("drill.json");
    let out = lab.drill(&["--hold", "1", "--yes", "--report", report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("stopped at step 2 (probe the new pool)"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("nothing was changed in DNS"),
        "{}",
        text(&out)
    );
    let doc = read_json(&report);
    assert_eq!(doc["passed"], false);
    assert_eq!(doc["steps"].as_array().unwrap().len(), 2, "{doc:#}");
    assert_eq!(doc["probes"][0]["pool"], "EdgePool2");
    // Nothing moved: DNS, the topology and the journal are as they were.
    for server in lab.servers() {
        assert_eq!(dig(server, "xmpp.contoso.com", "A"), [OLD_ADDRESS]);
        assert_eq!(support::soa_serial(server, "contoso.com"), 1);
    }
    assert_eq!(read_json(&lab.path)["active_pool"], "EdgePool1");
    assert!(lab.journal().is_empty());
}
