//! Pins the whole problem list of topologies with many problems at once: every message, its
//! JSON path and its place in the list. Written before `topology` was split by section, so it
//! proves the split kept the order.

use std::path::Path;

use serde_json::{json, Value};
use xmppdns::topology::{Topology, TopologyError};

/// Something wrong in every section, several things in some, and sections that depend on
/// each other (zones → domains, pools → active pool → federation, srv → xmpps).
fn broken(provider: Value) -> Value {
    json!({
        "zones": ["contoso.com", "contoso.com", "bad..zone"],
        "sip_domains": ["contoso.com", "contoso.com", "northwind.com", "10.0.0.1"],
        "active_pool": "Missing",
        "srv_leader": "Nowhere",
        "federation": {"name": "edgepool1.contoso.com", "ttl": 4_000_000_000u64},
        "ttl": 2_147_483_648u64,
        "manage_target_addresses": true,
        "srv": {"port": 0, "weight": 70000, "priority_step": 30000},
        "xmpps": {"publish": true, "port": 5269},
        "nameservers": ["192.0.2.53", "not-an-address", "[2001:db8::53]:5353"],
        "pools": [
            {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
             "ipv4": ["192.0.2.10", "2001:db8::1"], "preference": 3},
            {"name": "edgepool1", "site": " ", "fqdn": "edgepool1.contoso.com",
             "ipv6": ["192.0.2.11", "zz"], "servers": ["ok.contoso.com", "bad..server"],
             "preference": 3},
            {"name": "", "site": "Site3", "fqdn": "edge.partner.net", "preference": 70000},
            {"name": "P4", "site": "Site4", "fqdn": "192.0.2.99", "ipv4": ["192.0.2.300"]}
        ],
        "provider": provider
    })
}

/// Every case, its problems one a line in order, compared with
/// `fixtures/golden/topology-problems.txt` (regenerate with `UPDATE_GOLDEN=1`).
#[test]
fn every_problem_of_every_section_in_order() {
    let mut cases: Vec<(String, Value)> = vec![
        (
            "zonefile".into(),
            broken(json!({
                "kind": "zonefile", "directory": "zones",
                "files": {"contoso.com": "c.zone", "other.com": "o.zone", "bad..x": "b.zone"}
            })),
        ),
        ("rfc2136".into(), {
            let mut v = broken(json!({
                "kind": "rfc2136", "server": "primary", "key_file": "k", "key_env": "K",
                "transfer_server": "[2001:db8::1", "transfer_key_file": "t",
                "transfer_key_env": "T", "timeout_ms": 1, "attempts": 20
            }));
            v["xmpps"] = json!({"publish": true});
            v["srv"] = json!({"port": 70000, "priority_step": 0});
            v
        }),
        ("powerdns".into(), {
            let mut v = broken(json!({
                "kind": "powerdns", "api_url": "ftp://h", "server_id": "a b",
                "api_key_env": "K", "api_key_file": "k", "timeout_ms": 700000
            }));
            v["srv"] = json!({"port": 5270, "weight": 1});
            v["xmpps"] = json!({"publish": true, "port": 5270});
            v["zones"] = json!([]);
            v["sip_domains"] = json!([]);
            v["pools"] = json!([]);
            v
        }),
        ("powerdns-keys".into(), {
            let mut v = broken(json!({"kind": "powerdns", "api_url": "http://h", "server_id": ""}));
            v["xmpps"] = json!({"publish": false, "port": 0});
            v
        }),
    ];
    for (i, key) in [json!({"api_key_env": " "}), json!({"api_key_file": ""})]
        .into_iter()
        .enumerate()
    {
        let mut provider = json!({"kind": "powerdns", "api_url": "http://h"});
        provider
            .as_object_mut()
            .unwrap()
            .extend(key.as_object().unwrap().clone());
        cases.push((format!("powerdns-empty-key-{i}"), broken(provider)));
    }
    // Unknown fields: problems with their paths, reported with every other problem.
    cases.push(("unknown fields".into(), {
        let mut v = broken(json!({"kind": "rfc2136", "server": "192.0.2.1", "key_fil": "k"}));
        v["activ_pool"] = json!("EdgePool1");
        v["pools"][3]["prefrence"] = json!(4);
        v["federation"]["tll"] = json!(60);
        v["xmpps"]["colour"] = json!("blue");
        v
    }));
    // Malformed provider settings: serde's words and position (unknown fields: as above).
    for provider in [
        json!({"kind": "powerdns", "api_url": "http://h", "api_key_env": "K", "api_key": "x"}),
        json!({"kind": "powerdns", "api_key_env": "K"}),
        json!({"kind": "rfc2136", "server": 53}),
        json!({"kind": "rfc2136", "server": "192.0.2.1", "keyfile": "k"}),
        json!({"kind": "zonefile", "files": []}),
        json!({"kind": "cloudflare"}),
        json!({"kind": "azure", "subscription_id": "s"}),
        json!({"server": "192.0.2.1"}),
    ] {
        let mut v = broken(provider.clone());
        v["zones"] = json!(["contoso.com"]);
        cases.push((format!("provider {provider}"), v));
    }
    // The cloud providers' own checks.
    for provider in [
        json!({"kind": "azure", "subscription_id": "a/b", "resource_group": " ", "endpoint": "ftp://x", "timeout_ms": 1}),
        json!({"kind": "route53", "hosted_zone_ids": {"northwind.com": "Z1", "contoso.com": "/hostedzone/Z 1"},
               "endpoint": "https://user:pw@route53.example", "sync_timeout_ms": 1}),
    ] {
        let mut v = broken(provider.clone());
        v["zones"] = json!(["contoso.com"]);
        v["sip_domains"] = json!(["contoso.com"]);
        cases.push((format!("cloud {provider}"), v));
    }
    // The API URL checks, one URL at a time, on an otherwise good topology.
    for url in [
        "http://h:99999",
        "http://h:0",
        "http://h:",
        "http://h:8081?x=1",
        "http://h:8081/p#frag",
        "http://h#frag",
        "http://h/p?q#f",
        "http://",
        "https:///x",
        "127.0.0.1:8081",
        "ftp://h",
        "http://h h",
        "http://h/pa th",
        "http://h/p?q r",
        "http://[::1:8081",
        "http://::1]:8081",
        "http://[::1]]",
        "http://a:1:2",
        "http://?x",
        "http://#x",
        "http://:8081",
        "http://h%41",
        "http://[fe80::1%25eth0]:8081",
        "http://h/%zz",
        "http://hé/",
        "http://h/é",
        "http://h<",
        "http://h/<",
        "http://h/{}\"",
        "http://h/a\\b",
        "http://h?a\\b",
        "http://[::1]:8081/x/api/v1/",
        "http://h:8081/api/v1",
        "HTTPS://H:8081//",
        "  http://h  ",
        "http://a:b:c:d:e:f:g:h:i:j",
        "http://[a:b:c:d:e:f:g:h:i:j]:1",
        "http://h:65536",
        "http://h:-1",
        "http://h:+80",
        "http://[::1]",
        "http://[::1]x:80",
    ] {
        cases.push((
            format!("api_url {url:?}"),
            json!({
                "zones": ["contoso.com"], "sip_domains": ["contoso.com"],
                "active_pool": "P1", "federation": {"name": "xmpp.contoso.com"},
                "pools": [{"name": "P1", "site": "S1", "fqdn": "p1.contoso.com",
                           "ipv4": ["192.0.2.1"]}],
                "provider": {"kind": "powerdns", "api_url": url, "api_key_env": "K"}
            }),
        ));
    }
    let mut text = String::new();
    for (name, value) in &cases {
        text.push_str(&format!("== {name}\n"));
        match Topology::from_json(&value.to_string(), Path::new("/t/topology.json")) {
            Ok(t) => text.push_str(&format!("ok: {:?}\n", t.provider)),
            Err(TopologyError::Invalid { problems, .. }) => {
                for p in problems {
                    text.push_str(&format!("{p}\n"));
                }
            }
            Err(other) => text.push_str(&format!("error: {other}\n")),
        }
    }
    golden("topology-problems.txt", &text);
}

#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test topology",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "problems differ from {}; if intended, regenerate with UPDATE_GOLDEN=1 cargo test --test topology\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// A port other than 5269 is allowed (labs) but said: the topology returns it as a warning and
/// the command logs it on stderr, where the user sees it without `-v`.
#[test]
fn a_port_other_than_5269_is_a_warning_on_stderr() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut topology: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("contoso.json")).unwrap())
            .unwrap();
    topology["srv"]["port"] = json!(5270);
    topology["provider"]["directory"] = json!(fixtures.join("zones"));
    let path = dir.path().join("topology.json");
    std::fs::write(&path, topology.to_string()).unwrap();
    let loaded = Topology::load(&path).expect("a valid topology");
    let warnings: Vec<String> = loaded.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("srv.port"), "{warnings:?}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xmppdns"))
        .args(["plan", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("run xmppdns");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains(&warnings[0]),
        "the warning on stderr: {stderr}"
    );
}

fn contoso() -> Value {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    serde_json::from_str(&std::fs::read_to_string(fixtures.join("contoso.json")).unwrap()).unwrap()
}

fn problems_of(topology: &Value) -> Vec<String> {
    match Topology::from_json(&topology.to_string(), Path::new("/t/topology.json")) {
        Ok(_) => Vec::new(),
        Err(TopologyError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => panic!("{other}"),
    }
}

/// A domain whose SRV owner (`_xmpps-server._tcp.` + domain) would pass 255 octets on the wire
/// is refused at its JSON path; one octet shorter is accepted.
#[test]
fn a_sip_domain_too_long_for_its_srv_owner_is_refused_with_its_path() {
    // contoso.com. is 12 octets of text; labels of 63 make up the rest.
    let long_domain = |total: usize| {
        let mut labels = Vec::new();
        let mut left = total - "contoso.com.".len();
        while left > 0 {
            let label = left.min(64) - 1; // each label costs its length plus a dot
            labels.push("a".repeat(label.max(1)));
            left -= label.max(1) + 1;
        }
        format!("{}.contoso.com", labels.join("."))
    };
    // text with final dot + 19 (prefix) + 1 (length octet) = 255 is the limit.
    let fits = long_domain(235);
    let too_long = long_domain(236);
    assert_eq!(fits.len() + 1, 235);
    let mut topology = contoso();
    topology["sip_domains"] = json!([fits, too_long]);
    let problems = problems_of(&topology);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("sip_domains[1]"), "{problems:?}");
    assert!(
        problems[0].contains("would take 256 octets, over DNS's 255"),
        "{problems:?}"
    );
}

/// U-labels are accepted and become A-labels, which is what DNS holds and what is planned.
#[test]
fn internationalised_sip_domains_are_planned_as_a_labels() {
    let mut topology = contoso();
    topology["zones"] = json!(["contoso.com", "bücher.example"]);
    topology["sip_domains"] = json!(["contoso.com", "Bücher.example"]);
    let loaded = Topology::from_json(&topology.to_string(), Path::new("/t/topology.json"))
        .expect("a valid topology");
    let names: Vec<&str> = loaded.sip_domains.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["contoso.com.", "xn--bcher-kva.example."]);
    let desired = xmppdns::plan::desired(&loaded);
    assert!(desired
        .zones
        .keys()
        .any(|z| z.as_str() == "xn--bcher-kva.example."));

    topology["sip_domains"] = json!(["contoso.com", "\u{0300}ab.contoso.com"]);
    let problems = problems_of(&topology);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("A-label"), "{problems:?}");
}

/// Pool names compare without regard to case everywhere: validation already calls two pools
/// differing only in case duplicates, so every lookup finds a pool whatever the case.
#[test]
fn pool_names_compare_without_case_everywhere() {
    let mut topology = contoso();
    topology["active_pool"] = json!("EDGEPOOL2");
    topology["srv_leader"] = json!("edgepool1");
    let loaded = Topology::from_json(&topology.to_string(), Path::new("/t/topology.json"))
        .expect("case does not matter for active_pool and srv_leader");
    assert_eq!(loaded.active_pool().name, "EdgePool2");
    assert_eq!(loaded.pool_index("edgePOOL1"), Some(0));
    assert_eq!(loaded.pool_index("EdgePool9"), None);

    topology["pools"][1]["name"] = json!("edgepool1");
    topology["active_pool"] = json!("EdgePool1");
    topology.as_object_mut().unwrap().remove("srv_leader");
    let problems = problems_of(&topology);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("duplicate pool name `edgepool1`")),
        "{problems:?}"
    );
}
