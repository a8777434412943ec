//! Planner benchmark: `plan::desired` + `Plan::compute` for 10,000 SIP domains × 4 Edge pools
//! against a current state of the same size in which every SRV RRset exists with old priorities
//! (so every one of them is a real update). Target: under 50 ms. Also times `Topology::from_json`
//! on the same topology, for reference, and reading a journal of 20,000 applies (every command
//! reads its topology's journal: before the id index, that read was quadratic in its entries).
//!
//! Run with `cargo bench --bench plan`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use xmppdns::plan::{self, Plan, ZoneState};
use xmppdns::records::{Fqdn, Rdata, RecordSet, RecordType, Srv};
use xmppdns::topology::Topology;

const DOMAINS: usize = 10_000;
const POOLS: usize = 4;
const ZONE: &str = "example.com";

fn pool_fqdn(i: usize) -> String {
    format!("edgepool{}.{ZONE}", i + 1)
}

/// The topology as JSON: one zone, 10,000 SIP domains inside it, 4 pools with addresses.
fn topology_json() -> String {
    let pools: Vec<_> = (0..POOLS)
        .map(|i| {
            json!({
                "name": format!("EdgePool{}", i + 1),
                "site": format!("Site{}", i + 1),
                "fqdn": pool_fqdn(i),
                "ipv4": [format!("192.0.2.{}", 10 + i)],
                "ipv6": [format!("2001:db8:{}::10", i + 1)],
                "servers": [format!("edge{}.{ZONE}", i + 1)],
            })
        })
        .collect();
    let domains: Vec<String> = (0..DOMAINS).map(|i| format!("sip{i:05}.{ZONE}")).collect();
    json!({
        "zones": [ZONE],
        "sip_domains": domains,
        "active_pool": "EdgePool1",
        "federation": { "name": format!("xmpp.{ZONE}"), "ttl": 300 },
        "pools": pools,
        "ttl": 3600,
        "manage_target_addresses": true,
    })
    .to_string()
}

/// What the provider holds: every domain's SRV RRset with all 4 pools but the old priorities
/// 0, 1, 2, 3 (the plan wants 10, 20, 30, 40), the federation A record as wanted, and the
/// targets' A records but not their AAAA.
fn current_state() -> BTreeMap<Fqdn, ZoneState> {
    let mut rrsets = BTreeMap::new();
    let targets: Vec<Fqdn> = (0..POOLS)
        .map(|i| Fqdn::parse(&pool_fqdn(i)).unwrap())
        .collect();
    for i in 0..DOMAINS {
        let owner = Fqdn::parse(&format!("_xmpp-server._tcp.sip{i:05}.{ZONE}")).unwrap();
        let records = targets
            .iter()
            .enumerate()
            .map(|(p, target)| {
                Rdata::Srv(Srv {
                    priority: p as u16,
                    weight: 0,
                    port: 5269,
                    target: target.clone(),
                })
            })
            .collect();
        let set = RecordSet::new(owner, RecordType::Srv, 3600, records).unwrap();
        rrsets.insert(set.key(), set);
    }
    let address = |name: &str, ttl: u32, ip: &str| {
        RecordSet::new(
            Fqdn::parse(name).unwrap(),
            RecordType::A,
            ttl,
            vec![Rdata::A(ip.parse().unwrap())],
        )
        .unwrap()
    };
    let mut sets = vec![address(&format!("xmpp.{ZONE}"), 300, "192.0.2.10")];
    for i in 0..POOLS {
        sets.push(address(&pool_fqdn(i), 3600, &format!("192.0.2.{}", 10 + i)));
    }
    for set in sets {
        rrsets.insert(set.key(), set);
    }
    [(Fqdn::parse(ZONE).unwrap(), ZoneState { rrsets })].into()
}

fn bench_plan(c: &mut Criterion) {
    let text = topology_json();
    let path = Path::new("bench-topology.json");
    let topology = Topology::from_json(&text, path).expect("the generated topology is valid");
    let current = current_state();

    // Sanity: the work is real and the plan is what we expect.
    let plan = Plan::compute(&plan::desired(&topology), current.clone());
    let summary = plan.summary();
    assert_eq!(summary.update, DOMAINS, "every SRV RRset is updated");
    assert_eq!(
        summary.create,
        POOLS + 1,
        "targets' AAAA and the federation AAAA"
    );
    assert_eq!(summary.delete, 0);

    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("desired+compute 10k domains x 4 pools", |b| {
        b.iter_batched(
            || current.clone(),
            |current| {
                let desired = plan::desired(black_box(&topology));
                black_box(Plan::compute(&desired, current))
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("Topology::from_json 10k domains x 4 pools", |b| {
        b.iter(|| Topology::from_json(black_box(&text), path).unwrap())
    });
    group.finish();
}

/// A journal of `entries` one-zone applies, each an intent line and its outcome, as `apply`
/// writes them.
fn journal_text(entries: u64) -> String {
    let mut text = String::new();
    for id in 1..=entries {
        for (applied, intent, answer) in [(false, true, "interrupted"), (true, false, "written")] {
            text.push_str(&format!(
                r#"{{"format":"xmppdns-journal/1","id":{id},"run":"r{}","time":"2026-12-02T15:02:00Z","command":"apply","provider":"zonefile","zone":"d{id}.example.com.","applied":{applied},"answer":"{answer}","intent":{intent},"changes":[{{"zone":"d{id}.example.com.","action":"create","name":"_xmpp-server._tcp.d{id}.example.com.","type":"SRV","before":null,"after":{{"name":"_xmpp-server._tcp.d{id}.example.com.","type":"SRV","ttl":3600,"records":["10 0 5269 edgepool1.example.com.","20 0 5269 edgepool2.example.com."]}}}}]}}"#,
                id / 1000
            ));
            text.push('\n');
        }
    }
    text
}

fn bench_journal(c: &mut Criterion) {
    const ENTRIES: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    // Two copies read in turn: the process keeps its last parse of one file.
    let paths = [dir.path().join("a.jsonl"), dir.path().join("b.jsonl")];
    let text = journal_text(ENTRIES);
    for path in &paths {
        std::fs::write(path, &text).unwrap();
    }
    let entries = xmppdns::journal::read_entries(&paths[0]).unwrap();
    assert_eq!(entries.len() as u64, ENTRIES, "every intent superseded");
    assert!(entries.iter().all(|e| e.applied && !e.interrupted()));
    let mut group = c.benchmark_group("journal");
    group.sample_size(20);
    let mut turn = 0;
    group.bench_function("read 20,000 entries (40,000 lines)", |b| {
        b.iter(|| {
            turn += 1;
            black_box(xmppdns::journal::shared_entries(&paths[turn % 2]).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_plan, bench_journal);
criterion_main!(benches);
