//! The route53 provider against moto's server (a stand-in for Route 53, on 127.0.0.1): plan and
//! apply through the CLI, stale plans refused whole with nothing changed (saved, and a DELETE
//! that no longer matches), the tool's own guard for a CREATE of an RRset that exists (moto
//! accepts it where Route 53 refuses it), records outside the managed set untouched, hosted
//! zones found by name, failover and rollback, a lost answer settled by reading again (a proxy in
//! tests/support/moto.rs drops it after moto applied the batch), throttling retried, and the
//! secret key never printed.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use serde_json::{json, Value};
use support::moto::{BatchFault, FaultyProxy, Moto};
use xmppdns::app;
use xmppdns::error::exit;
use xmppdns::plan::{Action, Change};
use xmppdns::provider::route53::sigv4::Credentials;
use xmppdns::provider::route53::Route53Provider;
use xmppdns::provider::{Provider, ProviderError};
use xmppdns::records::{Fqdn, Rdata, RecordSet, RecordType, RrKey};
use xmppdns::topology::{ProviderConfig, Topology};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY-xmppdns-test";
const SRV_NAME: &str = "_xmpp-server._tcp.contoso.com.";

struct Lab {
    moto: Moto,
    zone_id: String,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let moto = Moto::start();
        let zone_id = moto.create_zone("contoso.com.");
        Lab {
            moto,
            zone_id,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// topology.json: contoso.com, two pools, target addresses managed; `ids`: give the hosted
    /// zone id (else it is looked up by name).
    fn topology(&self, ids: bool) -> PathBuf {
        let mut provider =
            json!({"kind": "route53", "endpoint": self.moto.endpoint(), "timeout_ms": 10000});
        if ids {
            provider["hosted_zone_ids"] = json!({"contoso.com": self.zone_id});
        }
        let topology = json!({
            "zones": ["contoso.com"],
            "sip_domains": ["contoso.com"],
            "active_pool": "EdgePool1",
            "federation": {"name": "xmpp.contoso.com", "ttl": 300},
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
                 "ipv4": ["192.0.2.10"], "ipv6": ["2001:db8:1::10"]},
                {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com",
                 "ipv4": ["198.51.100.20"]}
            ],
            "ttl": 3600,
            "manage_target_addresses": true,
            "provider": provider,
        });
        let path = self.dir.path().join("topology.json");
        std::fs::write(&path, serde_json::to_string_pretty(&topology).unwrap()).unwrap();
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("xmppdns runs")
    }

    fn command(&self) -> std::process::Command {
        let mut command = support::xmppdns();
        with_credentials(&mut command);
        command.current_dir(self.dir.path());
        command
    }

    fn provider(&self, topology: &Path) -> Route53Provider {
        let topology = Topology::load(topology).unwrap();
        let ProviderConfig::Route53(config) = &topology.provider else {
            panic!("route53")
        };
        Route53Provider::with_credentials(
            config,
            Credentials::new("AKIDTEST", SECRET, None),
            xmppdns::clock::system_clock(),
            false,
        )
    }

    fn rrsets(&self) -> Vec<String> {
        self.moto.rrsets(&self.zone_id)
    }
}

fn with_credentials(command: &mut std::process::Command) {
    command
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn all(o: &Output) -> String {
    format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr))
}

fn assert_exit(o: &Output, code: u8) {
    assert_eq!(o.status.code(), Some(i32::from(code)), "{}", all(o));
    assert!(
        !all(o).contains(SECRET),
        "the secret key was printed: {}",
        all(o)
    );
}

fn name(s: &str) -> Fqdn {
    Fqdn::parse(s).unwrap()
}

fn set(owner: &str, rtype: RecordType, ttl: u32, records: &[&str]) -> RecordSet {
    let records = records
        .iter()
        .map(|r| Rdata::parse(rtype, r).unwrap())
        .collect();
    RecordSet::new(name(owner), rtype, ttl, records).unwrap()
}

fn change(before: Option<RecordSet>, after: Option<RecordSet>) -> Change {
    let any = before.as_ref().or(after.as_ref()).unwrap().clone();
    Change {
        zone: name("contoso.com"),
        action: match (&before, &after) {
            (None, _) => Action::Create,
            (_, None) => Action::Delete,
            _ => Action::Update,
        },
        name: any.name.clone(),
        rtype: any.rtype,
        before,
        after,
    }
}

#[test]
fn cli_plan_apply_converges_finds_the_zone_by_name_and_leaves_other_records_alone() {
    let lab = Lab::new();
    let (status, text) = lab.moto.change(
        &lab.zone_id,
        &[
            ("CREATE", "www.contoso.com.", "A", 3600, &["192.0.2.80"]),
            (
                "CREATE",
                "xmpp.contoso.com.",
                "A",
                86400,
                &["198.51.100.99"],
            ),
        ],
    );
    assert_eq!(status, 200, "{text}");
    let topology = lab.topology(false).display().to_string();

    let plan = lab.run(&["plan", &topology, "--detailed-exitcode"]);
    assert_exit(&plan, exit::CHANGES_PENDING);
    assert!(stdout(&plan).contains("198.51.100.99"), "{}", all(&plan));

    let apply = lab.run(&["apply", &topology, "--yes", "-v"]);
    assert_exit(&apply, 0);
    let out = stdout(&apply);
    assert!(
        out.contains("1 ChangeResourceRecordSets batch(es) of 6 RRset(s)"),
        "{}",
        all(&apply)
    );
    assert!(out.contains("INSYNC"), "{out}");
    assert!(out.contains("Read back: DNS matches the plan."), "{out}");
    assert!(
        all(&apply).contains("credentials from environment (AWS_ACCESS_KEY_ID)"),
        "{}",
        all(&apply)
    );

    let rrsets = lab.rrsets();
    assert!(
        rrsets.contains(&"www.contoso.com. A 3600 [192.0.2.80]".to_string()),
        "{rrsets:?}"
    );
    assert!(
        rrsets.contains(&"xmpp.contoso.com. A 300 [192.0.2.10]".to_string()),
        "{rrsets:?}"
    );
    assert!(
        rrsets.contains(&format!("{SRV_NAME} SRV 3600 [10 0 5269 edgepool1.contoso.com., 20 0 5269 edgepool2.contoso.com.]")),
        "{rrsets:?}"
    );

    let again = lab.run(&["apply", &topology, "--yes"]);
    assert_exit(&again, 0);
    assert!(stdout(&again).contains("No changes"), "{}", all(&again));
    assert_eq!(lab.rrsets(), rrsets);
}

#[test]
fn saved_plan_gone_stale_is_refused_with_exit_3_and_nothing_changes() {
    let lab = Lab::new();
    let topology = lab.topology(true).display().to_string();
    assert_exit(&lab.run(&["plan", &topology, "--out", "plan.json"]), 0);
    let (status, text) = lab.moto.change(
        &lab.zone_id,
        &[("CREATE", "xmpp.contoso.com.", "A", 300, &["203.0.113.5"])],
    );
    assert_eq!(status, 200, "{text}");
    let before = lab.rrsets();

    let apply = lab.run(&["apply", "plan.json", "--yes"]);
    assert_exit(&apply, exit::REFUSED);
    assert!(
        all(&apply).contains("xmpp.contoso.com. A: expected absent, found ttl 300 [203.0.113.5]"),
        "{}",
        all(&apply)
    );
    assert_eq!(lab.rrsets(), before);
    assert_exit(&lab.run(&["apply", &topology, "--yes"]), 0);
}

#[test]
fn a_delete_that_no_longer_matches_is_refused_whole_by_route_53_as_stale() {
    let lab = Lab::new();
    let topology = lab.topology(true);
    let (status, text) = lab.moto.change(
        &lab.zone_id,
        &[
            ("CREATE", "xmpp.contoso.com.", "A", 300, &["203.0.113.5"]),
            (
                "CREATE",
                "edgepool2.contoso.com.",
                "A",
                300,
                &["198.51.100.20"],
            ),
        ],
    );
    assert_eq!(status, 200, "{text}");
    let before = lab.rrsets();
    let mut provider = lab.provider(&topology);
    // The plan thinks the federation record holds another address (someone changed it after
    // the plan was read), and also moves edgepool2: the batch is refused whole.
    let changes = [
        change(
            Some(set(
                "edgepool2.contoso.com",
                RecordType::A,
                300,
                &["198.51.100.20"],
            )),
            Some(set(
                "edgepool2.contoso.com",
                RecordType::A,
                300,
                &["198.51.100.21"],
            )),
        ),
        change(
            Some(set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"])),
            Some(set(
                "xmpp.contoso.com",
                RecordType::A,
                300,
                &["198.51.100.20"],
            )),
        ),
    ];
    let err = provider.apply(&name("contoso.com"), &changes).unwrap_err();
    let ProviderError::Stale { drift, .. } = &err else {
        panic!("expected a stale refusal, got {err:?}")
    };
    assert_eq!(drift.len(), 1, "{err}");
    assert_eq!(
        drift[0].key,
        RrKey::new(name("xmpp.contoso.com"), RecordType::A)
    );
    assert!(
        err.to_string().contains("found ttl 300 [203.0.113.5]"),
        "{err}"
    );
    assert_eq!(lab.rrsets(), before, "nothing of the batch landed");
}

#[test]
fn the_tools_own_guard_refuses_a_create_of_an_rrset_that_exists_which_moto_would_accept() {
    let lab = Lab::new();
    let topology = lab.topology(true);
    // moto overwrites on a CREATE of an existing RRset (Route 53 refuses it): shown here so
    // that the test below cannot pass through moto.
    let (status, _) = lab.moto.change(
        &lab.zone_id,
        &[("CREATE", "a.contoso.com.", "A", 60, &["192.0.2.1"])],
    );
    assert_eq!(status, 200);
    let (status, text) = lab.moto.change(
        &lab.zone_id,
        &[("CREATE", "a.contoso.com.", "A", 60, &["192.0.2.2"])],
    );
    assert_eq!(
        status, 200,
        "moto now refuses a CREATE of an existing RRset: {text}"
    );

    let (status, _) = lab.moto.change(
        &lab.zone_id,
        &[("CREATE", "xmpp.contoso.com.", "A", 300, &["203.0.113.5"])],
    );
    assert_eq!(status, 200);
    let before = lab.rrsets();
    let mut provider = lab.provider(&topology);
    let changes = [
        change(
            None,
            Some(set(
                "edgepool2.contoso.com",
                RecordType::A,
                300,
                &["198.51.100.20"],
            )),
        ),
        change(
            None,
            Some(set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"])),
        ),
    ];
    let err = provider.apply(&name("contoso.com"), &changes).unwrap_err();
    assert!(err.is_stale(), "{err:?}");
    assert!(
        err.to_string()
            .contains("xmpp.contoso.com. A: expected absent, found ttl 300 [203.0.113.5]"),
        "{err}"
    );
    assert_eq!(lab.rrsets(), before, "nothing was sent");
}

/// moto checks a batch against its journal of earlier changes, not against the zone: it
/// refuses a `CREATE` identical to one it took before (even right after a `DELETE` of it in the
/// same batch, which Route 53 accepts), and takes a `DELETE` only when it repeats an earlier
/// `CREATE` exactly. A rollback re-creates exactly what was there, so here the starting records
/// are written by "someone else" in a form the tool does not write (values in another order,
/// IPv6 in capitals); the tool deletes them exactly as read, and re-creates them in its own form.
#[test]
fn failover_and_rollback_through_route_53() {
    let lab = Lab::new();
    let (status, text) = lab.moto.change(
        &lab.zone_id,
        &[
            (
                "CREATE",
                "xmpp.contoso.com.",
                "A",
                300,
                &["192.0.2.11", "192.0.2.10"],
            ),
            (
                "CREATE",
                "xmpp.contoso.com.",
                "AAAA",
                300,
                &["2001:DB8:1::10"],
            ),
            (
                "CREATE",
                SRV_NAME,
                "SRV",
                3600,
                &[
                    "20 0 5269 edgepool2.contoso.com.",
                    "10 0 5269 edgepool1.contoso.com.",
                ],
            ),
        ],
    );
    assert_eq!(status, 200, "{text}");
    let topology = lab.topology(true);
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(&topology).unwrap()).unwrap();
    value["pools"][0]["ipv4"] = json!(["192.0.2.10", "192.0.2.11"]);
    std::fs::write(&topology, value.to_string()).unwrap();
    let path = topology.display().to_string();
    let first = lab.run(&["apply", &path, "--yes"]);
    assert_exit(&first, 0);
    assert!(
        stdout(&first).contains("Plan: 3 to create, 0 to update"),
        "only the target addresses are new: {}",
        all(&first)
    );
    let start = lab.rrsets();
    let empty = lab.dir.path().join("resolv.conf");
    std::fs::write(&empty, "# no nameserver\n").unwrap();

    let mut command = support::xmppdns_with_resolv_conf(&empty);
    with_credentials(&mut command);
    let out = command
        .args([
            "failover",
            &path,
            "--to",
            "EdgePool2",
            "--yes",
            "--skip-probe",
        ])
        .current_dir(lab.dir.path())
        .output()
        .expect("unshare runs");
    assert_exit(&out, 0);
    let text = all(&out);
    assert!(
        text.contains("Route 53's own change status stands in"),
        "{text}"
    );
    let rrsets = lab.rrsets();
    assert!(
        rrsets.contains(&"xmpp.contoso.com. A 300 [198.51.100.20]".to_string()),
        "{rrsets:?}"
    );
    assert!(
        !rrsets
            .iter()
            .any(|r| r.starts_with("xmpp.contoso.com. AAAA")),
        "{rrsets:?}"
    );
    assert!(
        rrsets.contains(&format!("{SRV_NAME} SRV 3600 [10 0 5269 edgepool2.contoso.com., 20 0 5269 edgepool1.contoso.com.]")),
        "{rrsets:?}"
    );

    let back = lab.run(&["rollback", &path, "--yes"]);
    assert_exit(&back, 0);
    let rrsets = lab.rrsets();
    let lower = |v: &[String]| v.iter().map(|r| r.to_lowercase()).collect::<Vec<_>>();
    assert_eq!(lower(&rrsets), lower(&start), "{}", all(&back));
}

#[test]
fn missing_credentials_and_an_unknown_zone_are_said_in_words() {
    let lab = Lab::new();
    let path = lab.topology(false).display().to_string();
    let out = support::xmppdns()
        .args(["plan", &path])
        .current_dir(lab.dir.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("AWS_SHARED_CREDENTIALS_FILE", lab.dir.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains(
            "AWS credentials: AWS_ACCESS_KEY_ID is not set, and the shared credentials file"
        ),
        "{}",
        all(&out)
    );

    let other = Moto::start();
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    value["provider"]["endpoint"] = json!(other.endpoint());
    std::fs::write(&path, value.to_string()).unwrap();
    let out = lab.run(&["plan", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("no public hosted zone named contoso.com. is visible"),
        "{}",
        all(&out)
    );
}

/// Not a timing assertion: prints the request count and wall time of a plan+apply of 200 SIP
/// domains x 3 pools (for the README and the issue), and checks the count against the
/// provider's shape (one read per RRset; one batch and one INSYNC check per zone).
#[test]
fn two_hundred_domains_three_pools_request_count() {
    let moto = Moto::start();
    let zone_id = moto.create_zone("contoso.com.");
    let dir = tempfile::tempdir().unwrap();
    let domains: Vec<String> = (0..200).map(|i| format!("d{i}.contoso.com")).collect();
    let topology = json!({
        "zones": ["contoso.com"],
        "sip_domains": domains,
        "active_pool": "P1",
        "federation": {"name": "xmpp.contoso.com"},
        "pools": [
            {"name": "P1", "site": "S1", "fqdn": "e1.contoso.com", "ipv4": ["192.0.2.1"]},
            {"name": "P2", "site": "S2", "fqdn": "e2.contoso.com", "ipv4": ["192.0.2.2"]},
            {"name": "P3", "site": "S3", "fqdn": "e3.contoso.com", "ipv4": ["192.0.2.3"]}
        ],
        "provider": {"kind": "route53", "endpoint": moto.endpoint(), "hosted_zone_ids": {"contoso.com": zone_id}},
    });
    let path = dir.path().join("topology.json");
    std::fs::write(&path, topology.to_string()).unwrap();
    let topology = Topology::load(&path).unwrap();
    let ProviderConfig::Route53(config) = &topology.provider else {
        unreachable!()
    };
    let mut provider = Route53Provider::with_credentials(
        config,
        Credentials::new("AKIDTEST", SECRET, None),
        xmppdns::clock::system_clock(),
        false,
    );
    let before = moto.request_count();
    let started = Instant::now();
    let plan = app::plan(&topology, &mut provider).unwrap();
    let keys: BTreeSet<RrKey> = plan.changes.iter().map(Change::key).collect();
    provider.apply(&name("contoso.com"), &plan.changes).unwrap();
    let elapsed = started.elapsed();
    let requests = moto.request_count() - before;
    eprintln!(
        "route53: plan+apply of 200 SIP domains x 3 pools ({} RRsets): {requests} HTTP requests, {elapsed:?}",
        keys.len()
    );
    // Reads: one per key the plan reads (the managed RRsets and the CNAME at each name that
    // needs records), one per created RRset for the guard; one batch (or more, at 1,000
    // records each) and one GetChange at most.
    let read: usize = plan.observed.iter().map(|zone| zone.keys().len()).sum();
    assert!(
        requests <= read + keys.len() + 4,
        "{requests} requests for {read} keys read and {} RRsets changed",
        keys.len()
    );
}

#[test]
fn a_lost_answer_is_settled_by_reading_again_and_throttling_is_retried() {
    let lab = Lab::new();
    let proxy = FaultyProxy::start(&lab.moto);
    let topology = lab.topology(true);
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(&topology).unwrap()).unwrap();
    value["provider"]["endpoint"] = json!(proxy.endpoint());
    std::fs::write(&topology, value.to_string()).unwrap();
    let mut provider = lab.provider(&topology);
    let zone = name("contoso.com");

    proxy.push(BatchFault::LoseAnswer);
    let create = [change(
        None,
        Some(set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"])),
    )];
    let applied = provider.apply(&zone, &create).unwrap();
    assert!(
        applied.detail.contains("reading again shows it applied"),
        "{}",
        applied.detail
    );
    assert!(lab
        .rrsets()
        .contains(&"xmpp.contoso.com. A 300 [192.0.2.10]".to_string()));

    proxy.push(BatchFault::Throttle);
    proxy.push(BatchFault::Throttle);
    let update = [change(
        Some(set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"])),
        Some(set(
            "xmpp.contoso.com",
            RecordType::A,
            300,
            &["198.51.100.20"],
        )),
    )];
    let applied = provider.apply(&zone, &update).unwrap();
    assert!(applied.detail.contains("INSYNC"), "{}", applied.detail);
    let posts = proxy.log().iter().filter(|l| l.starts_with("POST")).count();
    assert_eq!(
        posts,
        4,
        "one lost, two throttled, one through: {:?}",
        proxy.log()
    );
    assert!(lab
        .rrsets()
        .contains(&"xmpp.contoso.com. A 300 [198.51.100.20]".to_string()));
}
