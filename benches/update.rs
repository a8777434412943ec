//! UPDATE encoder benchmark: the 2,000 SRV creates of `bench/octodns-compare.sh` (3 records
//! each, "RRset does not exist" prerequisites) split into 65,535-byte messages less the TSIG
//! room, as `apply` does. Before the encoder of our own (hickory's, with a search over
//! candidate runs) this was most of an apply's CPU.
//!
//! Run with `cargo bench --bench update`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use xmppdns::dns::update::{self, RrsetEdit, MAX_MESSAGE};
use xmppdns::records::{Fqdn, Rdata, RecordSet, RecordType};

fn creates() -> Vec<RecordSet> {
    (1..=2000)
        .map(|i| {
            let name = Fqdn::parse(&format!("_xmpp-server._tcp.d{i:04}.example.test")).unwrap();
            let records = (1..=3)
                .map(|p| {
                    let text = format!("{} 0 5269 edgepool{p}.example.test.", p * 10);
                    Rdata::parse(RecordType::Srv, &text).unwrap()
                })
                .collect();
            RecordSet::new(name, RecordType::Srv, 3600, records).unwrap()
        })
        .collect()
}

fn bench_update(c: &mut Criterion) {
    let zone = Fqdn::parse("example.test").unwrap();
    let sets = creates();
    let edits: Vec<RrsetEdit<'_>> = sets
        .iter()
        .map(|set| RrsetEdit {
            name: &set.name,
            rtype: set.rtype,
            before: None,
            after: Some(set),
        })
        .collect();
    let mut group = c.benchmark_group("update");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("batches_encoded 2,000 SRV creates", |b| {
        b.iter(|| {
            let runs = update::batches_encoded(&zone, black_box(&edits), MAX_MESSAGE - 606);
            assert_eq!(runs.unwrap().len(), 5);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_update);
criterion_main!(benches);
