//! The azure provider against a local stand-in of the Azure DNS record-set API (tests/support/
//! azure.rs: the documented semantics, not Azure itself): plan and apply through the CLI with a
//! service principal or AZURE_ACCESS_TOKEN, ETag guards (a stale plan is refused, nothing
//! written), 429 with Retry-After, a lost answer and a 504 settled by reading again, a failure
//! part-way naming what landed, records outside the managed set untouched, failover and
//! rollback, and neither token nor client secret ever printed.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use serde_json::{json, Value};
use support::azure::{
    AzureStandIn, Fault, CLIENT_ID, CLIENT_SECRET, RESOURCE_GROUP, SUBSCRIPTION, TENANT, TOKEN,
};
use xmppdns::app;
use xmppdns::error::exit;
use xmppdns::plan::{Action, Change};
use xmppdns::provider::azure::auth::Token;
use xmppdns::provider::azure::AzureProvider;
use xmppdns::provider::{Provider, ProviderError};
use xmppdns::records::{Fqdn, Rdata, RecordSet, RecordType, RrKey};
use xmppdns::topology::{ProviderConfig, Topology};

struct Lab {
    azure: AzureStandIn,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            azure: AzureStandIn::start(&["contoso.com"]),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn topology(&self) -> PathBuf {
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
            "provider": {"kind": "azure", "subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP,
                         "endpoint": self.azure.endpoint(), "authority": self.azure.endpoint(), "timeout_ms": 10000},
        });
        let path = self.dir.path().join("topology.json");
        std::fs::write(&path, serde_json::to_string_pretty(&topology).unwrap()).unwrap();
        path
    }

    fn command(&self) -> std::process::Command {
        let mut command = support::xmppdns();
        service_principal(&mut command);
        command.current_dir(self.dir.path());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("xmppdns runs")
    }

    fn provider(&self, topology: &Path) -> AzureProvider {
        let topology = Topology::load(topology).unwrap();
        let ProviderConfig::Azure(config) = &topology.provider else {
            panic!("azure")
        };
        AzureProvider::with_token(config, Token::new(TOKEN, "the test"), false)
    }
}

fn service_principal(command: &mut std::process::Command) {
    command
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
        .env_remove("AZURE_ACCESS_TOKEN");
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn all(o: &Output) -> String {
    format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr))
}

fn assert_exit(o: &Output, code: u8) {
    assert_eq!(o.status.code(), Some(i32::from(code)), "{}", all(o));
    let text = all(o);
    assert!(
        !text.contains(TOKEN) && !text.contains(CLIENT_SECRET),
        "a secret was printed: {text}"
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

fn a_records(ips: &[&str]) -> Value {
    json!({"TTL": 300, "ARecords": ips.iter().map(|ip| json!({"ipv4Address": ip})).collect::<Vec<_>>()})
}

#[test]
fn cli_plan_apply_converges_with_a_service_principal_and_leaves_other_records_alone() {
    let lab = Lab::new();
    lab.azure.put(
        "contoso.com",
        "A",
        "www",
        json!({"TTL": 3600, "ARecords": [{"ipv4Address": "192.0.2.80"}]}),
    );
    lab.azure.put("contoso.com", "A", "xmpp", json!({"TTL": 86400, "metadata": {"owner": "uc"}, "ARecords": [{"ipv4Address": "198.51.100.99"}]}));
    let topology = lab.topology().display().to_string();

    let plan = lab.run(&["plan", &topology, "--detailed-exitcode"]);
    assert_exit(&plan, exit::CHANGES_PENDING);
    assert!(stdout(&plan).contains("198.51.100.99"), "{}", all(&plan));

    let apply = lab.run(&["apply", &topology, "--yes"]);
    assert_exit(&apply, 0);
    let out = stdout(&apply);
    assert!(out.contains("6 record set write(s)"), "{}", all(&apply));
    assert!(
        out.contains("token from service principal 11111111-2222-3333-4444-555555555555"),
        "{out}"
    );
    assert!(out.contains("Read back: DNS matches the plan."), "{out}");

    let sets = lab.azure.sets();
    assert!(
        sets.contains(&r#"www.contoso.com A 3600 [{"ipv4Address":"192.0.2.80"}]"#.to_string()),
        "{sets:?}"
    );
    assert!(
        sets.contains(&r#"xmpp.contoso.com A 300 [{"ipv4Address":"192.0.2.10"}]"#.to_string()),
        "{sets:?}"
    );
    assert!(
        sets.iter()
            .any(|s| s.starts_with("_xmpp-server._tcp.contoso.com SRV 3600")
                && s.contains(r#""priority":10"#)
                && s.contains("edgepool1.contoso.com.")),
        "{sets:?}"
    );
    // The metadata someone put on the federation record set survives the rewrite.
    let log = lab.azure.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("PUT ") && l.ends_with("/A/xmpp")),
        "{log:?}"
    );

    let again = lab.run(&["apply", &topology, "--yes"]);
    assert_exit(&again, 0);
    assert!(stdout(&again).contains("No changes"), "{}", all(&again));
}

#[test]
fn an_access_token_from_the_environment_works_and_a_bad_one_is_said_in_words() {
    let lab = Lab::new();
    let topology = lab.topology().display().to_string();
    let run = |token: &str| {
        support::xmppdns()
            .args(["plan", &topology, "-v"])
            .current_dir(lab.dir.path())
            .env_remove("AZURE_TENANT_ID")
            .env_remove("AZURE_CLIENT_ID")
            .env_remove("AZURE_CLIENT_SECRET")
            .env("AZURE_ACCESS_TOKEN", token)
            .output()
            .unwrap()
    };
    let good = run(TOKEN);
    assert_exit(&good, 0);
    assert!(
        all(&good).contains("token from AZURE_ACCESS_TOKEN"),
        "{}",
        all(&good)
    );
    let bad_token = "not-the-t0ken-xyz";
    let bad = run(bad_token);
    assert_eq!(bad.status.code(), Some(1), "{}", all(&bad));
    assert!(
        all(&bad).contains("HTTP 401 AuthenticationFailed"),
        "{}",
        all(&bad)
    );
    assert!(!all(&bad).contains(bad_token), "{}", all(&bad));

    let wrong_secret = lab
        .command()
        .args(["plan", &topology])
        .env("AZURE_CLIENT_SECRET", "wrong-s3cret-value")
        .output()
        .unwrap();
    assert_eq!(
        wrong_secret.status.code(),
        Some(1),
        "{}",
        all(&wrong_secret)
    );
    assert!(
        all(&wrong_secret).contains("AADSTS7000215"),
        "{}",
        all(&wrong_secret)
    );
    assert!(
        !all(&wrong_secret).contains("wrong-s3cret-value"),
        "{}",
        all(&wrong_secret)
    );
}

#[test]
fn saved_plan_gone_stale_is_refused_with_exit_3_and_nothing_changes() {
    let lab = Lab::new();
    let topology = lab.topology().display().to_string();
    assert_exit(&lab.run(&["plan", &topology, "--out", "plan.json"]), 0);
    lab.azure
        .put("contoso.com", "A", "xmpp", a_records(&["203.0.113.5"]));
    let before = lab.azure.sets();
    let apply = lab.run(&["apply", "plan.json", "--yes"]);
    assert_exit(&apply, exit::REFUSED);
    assert!(
        all(&apply).contains("xmpp.contoso.com. A: expected absent, found ttl 300 [203.0.113.5]"),
        "{}",
        all(&apply)
    );
    assert_eq!(lab.azure.sets(), before);
}

#[test]
fn a_write_between_read_and_put_is_a_412_refused_as_stale_naming_the_rrset() {
    let lab = Lab::new();
    lab.azure
        .put("contoso.com", "A", "xmpp", a_records(&["192.0.2.10"]));
    let mut provider = lab.provider(&lab.topology());
    let key = RrKey::new(name("xmpp.contoso.com"), RecordType::A);
    provider
        .read(&name("contoso.com"), &BTreeSet::from([key]))
        .unwrap();
    // Someone else rewrites it with the same content: only the ETag tells.
    lab.azure
        .put("contoso.com", "A", "xmpp", a_records(&["192.0.2.10"]));
    let changes = [change(
        Some(set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"])),
        Some(set(
            "xmpp.contoso.com",
            RecordType::A,
            300,
            &["198.51.100.20"],
        )),
    )];
    let before = lab.azure.sets();
    let err = provider.apply(&name("contoso.com"), &changes).unwrap_err();
    assert!(err.is_stale(), "{err:?}");
    assert!(err.to_string().contains("xmpp.contoso.com. A"), "{err}");
    assert_eq!(lab.azure.sets(), before, "nothing written");
    assert!(
        lab.azure.log().iter().any(|l| l.starts_with("PUT")),
        "the guard was Azure's If-Match"
    );
}

#[test]
fn throttling_is_retried_after_retry_after_and_a_lost_answer_or_504_is_settled_by_reading() {
    let lab = Lab::new();
    let mut provider = lab.provider(&lab.topology());
    let zone = name("contoso.com");
    lab.azure.push_fault(Fault::TooManyRequests(1));
    lab.azure.push_fault(Fault::LoseAnswer);
    let first = [change(
        None,
        Some(set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"])),
    )];
    let applied = provider.apply(&zone, &first).unwrap();
    assert!(
        applied.detail.contains("reading again shows it written"),
        "{}",
        applied.detail
    );
    let log = lab.azure.log();
    assert_eq!(
        log.iter().filter(|l| l.starts_with("PUT")).count(),
        2,
        "429 then the lost one: {log:?}"
    );

    lab.azure.push_fault(Fault::GatewayTimeout);
    let second = [change(
        Some(set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"])),
        Some(set(
            "xmpp.contoso.com",
            RecordType::A,
            300,
            &["198.51.100.20"],
        )),
    )];
    let applied = provider.apply(&zone, &second).unwrap();
    assert!(applied.detail.contains("HTTP 504"), "{}", applied.detail);
    assert!(lab
        .azure
        .sets()
        .contains(&r#"xmpp.contoso.com A 300 [{"ipv4Address":"198.51.100.20"}]"#.to_string()));
}

#[test]
fn a_failure_part_way_names_what_landed() {
    let lab = Lab::new();
    lab.azure
        .put("contoso.com", "A", "xmpp", a_records(&["192.0.2.10"]));
    let mut provider = lab.provider(&lab.topology());
    let zone = name("contoso.com");
    let key = RrKey::new(name("xmpp.contoso.com"), RecordType::A);
    provider.read(&zone, &BTreeSet::from([key])).unwrap();
    // Rewritten by someone else after the read: only its ETag changes.
    lab.azure
        .put("contoso.com", "A", "xmpp", a_records(&["192.0.2.10"]));
    let changes = [
        change(
            None,
            Some(set(
                "edgepool3.contoso.com",
                RecordType::A,
                300,
                &["198.51.100.30"],
            )),
        ),
        change(
            Some(set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"])),
            Some(set(
                "xmpp.contoso.com",
                RecordType::A,
                300,
                &["198.51.100.30"],
            )),
        ),
    ];
    let err = provider.apply(&zone, &changes).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ProviderError::Ambiguous(_)), "{err:?}");
    assert!(
        text.contains("1 of 2 record set change(s) landed (create edgepool3.contoso.com. A); then xmpp.contoso.com. A failed"),
        "{text}"
    );
    let sets = lab.azure.sets();
    assert!(
        sets.contains(
            &r#"edgepool3.contoso.com A 300 [{"ipv4Address":"198.51.100.30"}]"#.to_string()
        ),
        "{sets:?}"
    );
    assert!(
        sets.contains(&r#"xmpp.contoso.com A 300 [{"ipv4Address":"192.0.2.10"}]"#.to_string()),
        "{sets:?}"
    );
}

#[test]
fn failover_and_rollback_through_azure_dns() {
    let lab = Lab::new();
    let path = lab.topology().display().to_string();
    assert_exit(&lab.run(&["apply", &path, "--yes"]), 0);
    let start = lab.azure.sets();
    let empty = lab.dir.path().join("resolv.conf");
    std::fs::write(&empty, "# no nameserver\n").unwrap();
    let mut command = support::xmppdns_with_resolv_conf(&empty);
    service_principal(&mut command);
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
    assert!(
        all(&out).contains("Azure DNS's own answer stands in"),
        "{}",
        all(&out)
    );
    assert!(lab
        .azure
        .sets()
        .contains(&r#"xmpp.contoso.com A 300 [{"ipv4Address":"198.51.100.20"}]"#.to_string()));

    let back = lab.run(&["rollback", &path, "--yes"]);
    assert_exit(&back, 0);
    assert_eq!(lab.azure.sets(), start, "{}", all(&back));
}

/// Not a timing assertion: prints the request count and wall time of a plan+apply of 200 SIP
/// domains x 3 pools, and checks the count: one GET per record set, one write per change, and
/// the token.
#[test]
fn two_hundred_domains_three_pools_request_count() {
    let azure = AzureStandIn::start(&["contoso.com"]);
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
        "provider": {"kind": "azure", "subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP,
                     "endpoint": azure.endpoint(), "authority": azure.endpoint()},
    });
    let path = dir.path().join("topology.json");
    std::fs::write(&path, topology.to_string()).unwrap();
    let topology = Topology::load(&path).unwrap();
    let ProviderConfig::Azure(config) = &topology.provider else {
        unreachable!()
    };
    let mut provider = AzureProvider::with_token(config, Token::new(TOKEN, "the test"), false);
    let started = Instant::now();
    let plan = app::plan(&topology, &mut provider).unwrap();
    provider.apply(&name("contoso.com"), &plan.changes).unwrap();
    let elapsed = started.elapsed();
    let requests = azure.log().len();
    eprintln!(
        "azure: plan+apply of 200 SIP domains x 3 pools ({} record sets): {requests} HTTP requests, {elapsed:?}",
        plan.changes.len()
    );
    let log = azure.log();
    let gets: Vec<&String> = log.iter().filter(|l| l.starts_with("GET ")).collect();
    let distinct: BTreeSet<&String> = gets.iter().copied().collect();
    let puts = log.iter().filter(|l| l.starts_with("PUT ")).count();
    // One GET per managed record set (each once) and one PUT per change, nothing else.
    assert_eq!(gets.len(), distinct.len(), "a record set read twice");
    assert_eq!(puts, plan.changes.len());
    assert_eq!(gets.len() + puts, requests);
}
