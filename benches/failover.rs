//! Failover wall time against real servers: a BIND primary NOTIFYing a Knot secondary, and
//! Prosody as the new pool's XMPP endpoint, all on 127.0.0.1 (started by the test support
//! code). Each round runs the release binary's `failover --to EdgePool2` (probe included) and
//! records (a) the time from command start until every authoritative server served the new A
//! and SRV records, as the command measured it, and (b) the process's whole wall time; then
//! moves back with `--skip-probe` (not timed). Prints min / median / p90 / max of both.
//!
//! Beside them, in the same run, the servers' own floor: the same change sent with `nsupdate`
//! (one process, both zones), timed from its start until every server serves it. Both that and
//! the failover's "every server serves it" time are observed from outside by one watcher that
//! asks both servers every millisecond, so the two columns are measured the same way.
//!
//! `BENCH_NOTIFY=1` sets `"notify": true` on the provider (the floor stays plain nsupdate).
//!
//! Run with `bash bench/failover.sh [ROUNDS]` (or `cargo bench --bench failover -- ROUNDS`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{bind_with_knot_secondary, dig, nsupdate, zone_text, Prosody, TsigKey};
use xmppdns::dns::transfer;
use xmppdns::dns::transport::Transport;
use xmppdns::records::{Fqdn, RecordType};

const OLD_ADDRESS: &str = "127.0.0.2";
const NEW_ADDRESS: &str = "127.0.0.1";

fn run(dir: &Path, args: &[&str]) -> (String, Duration) {
    let started = Instant::now();
    let out = support::xmppdns()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the xmppdns binary runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if std::env::var_os("BENCH_TRACE").is_some() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        out.status.success(),
        "{args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, took)
}

/// "… the last after 37 ms)." in the propagation summary.
fn propagated_ms(stdout: &str) -> u64 {
    let at = stdout
        .find("the last after ")
        .unwrap_or_else(|| panic!("no propagation summary in:\n{stdout}"));
    stdout[at + 15..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number of milliseconds")
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[(sorted.len() - 1) / 2]
}

fn summary(label: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<48} min {:>7.1}  median {:>7.1}  p90 {:>7.1}  max {:>7.1}  (ms, n={})",
        values[0],
        at(0.5),
        at(0.9),
        values[values.len() - 1],
        values.len()
    );
}

/// What every server must serve once `pool` is active: (name, type, sorted rdata texts).
fn expected(pool: u8, port: u16) -> Vec<(Fqdn, RecordType, Vec<String>)> {
    let (address, other) = if pool == 2 {
        (NEW_ADDRESS, 1)
    } else {
        (OLD_ADDRESS, 2)
    };
    let mut srv = vec![
        format!("10 0 {port} edgepool{pool}.contoso.com."),
        format!("20 0 {port} edgepool{other}.contoso.com."),
    ];
    srv.sort();
    let mut list = vec![(
        Fqdn::parse("xmpp.contoso.com").unwrap(),
        RecordType::A,
        vec![address.to_string()],
    )];
    for zone in ["contoso.com", "fabrikam.com"] {
        let owner = Fqdn::parse(&format!("_xmpp-server._tcp.{zone}")).unwrap();
        list.push((owner, RecordType::Srv, srv.clone()));
    }
    list
}

fn serves(server: SocketAddr, want: &[(Fqdn, RecordType, Vec<String>)]) -> bool {
    let transport = Transport {
        server,
        timeout: Duration::from_millis(200),
        attempts: 1,
        clock: xmppdns::clock::system_clock(),
    };
    want.iter().all(|(name, rtype, records)| {
        let Ok(Some(set)) = transfer::query_rrset(&transport, None, name, *rtype) else {
            return false;
        };
        let mut got: Vec<String> = set.records().iter().map(ToString::to_string).collect();
        got.sort();
        &got == records
    })
}

/// Starts asking `servers` every millisecond until each serves `want`; the handle gives the
/// time from `started` until the last one did.
fn watch(
    servers: Vec<SocketAddr>,
    want: Vec<(Fqdn, RecordType, Vec<String>)>,
    started: Instant,
) -> std::thread::JoinHandle<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        let mut pending = servers;
        while !pending.is_empty() && !stop.load(Ordering::Relaxed) {
            pending.retain(|s| !serves(*s, &want));
            if started.elapsed() > Duration::from_secs(30) {
                panic!("servers {pending:?} did not serve the change in 30 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        started.elapsed()
    })
}

/// The nsupdate script that makes `pool` active in both zones.
fn nsupdate_script(pool: u8, port: u16) -> String {
    let (address, other) = if pool == 2 {
        (NEW_ADDRESS, 1)
    } else {
        (OLD_ADDRESS, 2)
    };
    let mut script = format!(
        "zone contoso.com\nupdate delete xmpp.contoso.com A\nupdate add xmpp.contoso.com 300 A {address}\n"
    );
    for zone in ["contoso.com", "fabrikam.com"] {
        if zone == "fabrikam.com" {
            script.push_str("send\nzone fabrikam.com\n");
        }
        let owner = format!("_xmpp-server._tcp.{zone}");
        script.push_str(&format!(
            "update delete {owner} SRV\nupdate add {owner} 3600 SRV 10 0 {port} edgepool{pool}.contoso.com.\nupdate add {owner} 3600 SRV 20 0 {port} edgepool{other}.contoso.com.\n"
        ));
    }
    script.push_str("send\n");
    script
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let prosody = Prosody::start("contoso.com");
    let port = prosody.port();
    let srv = format!(
        "_xmpp-server._tcp 3600 IN SRV 10 0 {port} edgepool1.contoso.com.\n\
         _xmpp-server._tcp 3600 IN SRV 20 0 {port} edgepool2.contoso.com."
    );
    let contoso = zone_text(
        "contoso.com",
        1,
        &format!("xmpp 300 IN A {OLD_ADDRESS}\n{srv}"),
    );
    let fabrikam = zone_text("fabrikam.com", 1, &srv);
    let key = TsigKey::generate("xmppdns-bench", "hmac-sha256");
    let (bind, knot) = bind_with_knot_secondary(
        &[("contoso.com", &contoso), ("fabrikam.com", &fabrikam)],
        &key,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.conf"), key.bind_conf()).unwrap();
    let topology = json!({
        "zones": ["contoso.com", "fabrikam.com"],
        "sip_domains": ["contoso.com", "fabrikam.com"],
        "active_pool": "EdgePool1",
        "federation": {"name": "xmpp.contoso.com", "ttl": 300},
        "pools": [
            {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
             "ipv4": [OLD_ADDRESS], "servers": ["edge1a.contoso.com"]},
            {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com",
             "ipv4": [NEW_ADDRESS], "servers": ["edge2a.contoso.com"]}
        ],
        "srv": {"port": port},
        "nameservers": [bind.addr().to_string(), knot.addr().to_string()],
        // BENCH_NOTIFY=1: the tool NOTIFYs Knot itself right after each UPDATE.
        "provider": {"kind": "rfc2136", "server": bind.addr().to_string(), "key_file": "key.conf",
                     "notify": std::env::var_os("BENCH_NOTIFY").is_some_and(|v| v == "1")}
    });
    let path = dir.path().join("topology.json");
    std::fs::write(&path, serde_json::to_string_pretty(&topology).unwrap()).unwrap();
    let path = path.display().to_string();

    let mut propagated = Vec::new();
    let mut wall = Vec::new();
    let mut observed = Vec::new();
    let mut floor = Vec::new();
    let servers = vec![bind.addr(), knot.addr()];
    for _ in 0..rounds {
        let started = Instant::now();
        let watcher = watch(servers.clone(), expected(2, port), started);
        let (stdout, took) = run(
            dir.path(),
            &["failover", &path, "--to", "EdgePool2", "--yes", "-v"],
        );
        // The tool's own account is checked against what the secondary serves.
        assert_eq!(dig(knot.addr(), "xmpp.contoso.com", "A"), [NEW_ADDRESS]);
        propagated.push(propagated_ms(&stdout) as f64);
        wall.push(took.as_secs_f64() * 1000.0);
        observed.push(watcher.join().unwrap().as_secs_f64() * 1000.0);
        run(
            dir.path(),
            &[
                "failover",
                &path,
                "--to",
                "EdgePool1",
                "--yes",
                "--skip-probe",
            ],
        );
        assert_eq!(dig(knot.addr(), "xmpp.contoso.com", "A"), [OLD_ADDRESS]);

        // The floor: the same change by nsupdate, watched the same way; then undone.
        let started = Instant::now();
        let watcher = watch(servers.clone(), expected(2, port), started);
        nsupdate(bind.addr(), &key, &nsupdate_script(2, port));
        floor.push(watcher.join().unwrap().as_secs_f64() * 1000.0);
        nsupdate(bind.addr(), &key, &nsupdate_script(1, port));
        watch(servers.clone(), expected(1, port), Instant::now())
            .join()
            .unwrap();
    }
    println!("failover EdgePool1 -> EdgePool2, BIND primary + Knot secondary, probe on:");
    summary("command start -> every server serves new A/SRV", propagated);
    summary("whole command (process wall time)", wall);
    let ratio = median(&observed) / median(&floor);
    summary(
        "failover start -> every server serves it (watched)",
        observed,
    );
    summary("floor: nsupdate start -> every server serves it", floor);
    println!("failover / floor (medians): {ratio:.2}x");
}
