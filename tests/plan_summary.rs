//! A plan too long to read row by row: `plan` and `apply` show it by zone and action, `--all`
//! shows every row, and the JSON output is the same either way.

mod support;

use std::fs;
use std::path::Path;
use std::process::Output;

use serde_json::json;

/// A zone-file workspace whose plan creates the SRV RRsets of `domains` SIP domains (plus
/// the pool's and the federation's address records).
fn workspace(domains: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sip: Vec<String> = (0..domains)
        .map(|i| format!("sip{i:04}.contoso.com"))
        .collect();
    let topology = json!({
        "zones": ["contoso.com"],
        "sip_domains": sip,
        "active_pool": "EdgePool1",
        "federation": { "name": "xmpp.contoso.com", "ttl": 300 },
        "pools": [{ "name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
                    "ipv4": ["192.0.2.10"] }],
        "ttl": 3600,
        "manage_target_addresses": true,
        "provider": { "kind": "zonefile", "directory": "zones" }
    });
    fs::write(dir.path().join("topology.json"), topology.to_string()).unwrap();
    fs::create_dir(dir.path().join("zones")).unwrap();
    fs::write(
        dir.path().join("zones/contoso.com.zone"),
        "$ORIGIN contoso.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster ( 2026010101 7200 3600 1209600 300 )\n  IN NS ns1\nns1 IN A 192.0.2.53\n",
    )
    .unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let out = support::xmppdns()
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn a_long_plan_is_summarised_and_all_shows_every_row() {
    let dir = workspace(600);
    let summary = text(&run(dir.path(), &["plan", "topology.json"]));
    // 600 SRV creates, the federation A and the pool's A: 602 changes in 1 zone, 1 action.
    assert!(
        summary.starts_with("602 changes, by zone and action"),
        "{summary}"
    );
    assert!(summary.contains("`--all` shows every one"), "{summary}");
    assert!(
        summary.contains("│ contoso.com. │ + create │ 602     │ 2 A, 600 SRV │"),
        "{summary}"
    );
    assert!(summary.ends_with("Plan: 602 to create, 0 to update, 0 to delete.\n"));
    assert!(summary.lines().count() < 10, "{summary}");

    let all = text(&run(dir.path(), &["plan", "topology.json", "--all"]));
    assert!(
        all.contains("_xmpp-server._tcp.sip0599.contoso.com."),
        "{all}"
    );
    // A header, 602 rows and the 4 rules and the totals.
    assert_eq!(all.lines().count(), 1 + 602 + 3 + 1, "{all}");
    assert!(all.ends_with("Plan: 602 to create, 0 to update, 0 to delete.\n"));

    // JSON is the full plan whatever the table shows.
    let json = run(dir.path(), &["plan", "topology.json", "--format", "json"]);
    let json_all = run(
        dir.path(),
        &["plan", "topology.json", "--format", "json", "--all"],
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["changes"].as_array().unwrap().len(), 602);
    assert_eq!(json.stdout, json_all.stdout);

    // apply shows the same summary before it applies, or every row with --all.
    let applied = text(&run(dir.path(), &["apply", "topology.json", "--yes"]));
    assert!(applied.starts_with(&summary), "{applied}");
    let zone = fs::read_to_string(dir.path().join("zones/contoso.com.zone")).unwrap();
    assert!(zone.contains("_xmpp-server._tcp.sip0599"), "applied");
}

#[test]
fn apply_all_shows_every_row() {
    let dir = workspace(600);
    let applied = text(&run(
        dir.path(),
        &["apply", "topology.json", "--yes", "--all"],
    ));
    assert!(
        applied.contains("_xmpp-server._tcp.sip0599.contoso.com."),
        "{applied}"
    );
    assert!(!applied.contains("by zone and action"), "{applied}");
}

#[test]
fn a_plan_of_500_changes_is_a_table() {
    let dir = workspace(498);
    let table = text(&run(dir.path(), &["plan", "topology.json"]));
    assert!(
        table.contains("_xmpp-server._tcp.sip0497.contoso.com."),
        "{table}"
    );
    assert!(!table.contains("by zone and action"), "{table}");
}
