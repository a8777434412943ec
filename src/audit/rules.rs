//! The checks of docs/dns-rules.md (rules 1-17) as pure functions over a [`Snapshot`], plus
//! drift from a topology's plan. No network here: every rule is unit-testable with a
//! hand-built snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::audit::collect::{
    is_ip_literal, misplaced_owners, srv_records, xmpp_owner, xmpps_owner, Lookup, Snapshot,
};
use crate::dns::batch::{QueryType, RecordData, Response};
use crate::dns::transport::rcode_name;
use crate::plan::{self, Action, Plan, ZoneState};
use crate::records::{Fqdn, Rdata, RecordSet, RecordType, Srv};
use crate::topology::{Topology, XMPP_SERVER_PORT};

/// Above this TTL (seconds) on the federation A/AAAA record, a failover is slow (rule 17).
pub const FEDERATION_TTL_WARNING: u32 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing the audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// "1".."17" (docs/dns-rules.md), "drift" (differs from the topology's plan) or "reach"
    /// (the authoritative servers could not be asked).
    pub rule: String,
    pub severity: Severity,
    /// The SIP domain, zone or federation name the finding is about.
    pub domain: Fqdn,
    /// The record (owner and type, or owner and data) concerned.
    pub record: String,
    pub message: String,
    pub fix: String,
}

/// One observed SRV record, with its TTL (rule 17: TTLs are shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedSrv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: Fqdn,
    pub ttl: u32,
}

/// What an audited name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    SipDomain,
    Zone,
    Federation,
}

/// Everything found about one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameReport {
    pub name: Fqdn,
    pub kind: Subject,
    pub zone: Option<Fqdn>,
    /// For SIP domains: the `_xmpp-server._tcp` records the first server serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srv: Option<Vec<ObservedSrv>>,
    /// For SIP domains: the target with the lowest priority number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leading_target: Option<Fqdn>,
    /// With a topology: the pool that target belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leading_pool: Option<String>,
    /// For zones: the SOA serial each authoritative server serves (null: no answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serials: Option<BTreeMap<String, Option<u32>>>,
    /// For the federation record: the addresses it points to, with TTLs (rule 17: TTLs shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<ObservedAddress>>,
    pub findings: Vec<Finding>,
}

/// One observed A/AAAA record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedAddress {
    pub address: IpAddr,
    pub ttl: u32,
    /// With a topology: the pool that has this address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

impl NameReport {
    fn new(name: Fqdn, kind: Subject, zone: Option<Fqdn>) -> Self {
        NameReport {
            name,
            kind,
            zone,
            srv: None,
            leading_target: None,
            leading_pool: None,
            serials: None,
            addresses: None,
            findings: Vec::new(),
        }
    }
}

/// Collects findings about one name.
struct Findings<'a> {
    domain: &'a Fqdn,
    list: Vec<Finding>,
}

impl Findings<'_> {
    fn add(
        &mut self,
        rule: &str,
        severity: Severity,
        record: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.list.push(Finding {
            rule: rule.to_string(),
            severity,
            domain: self.domain.clone(),
            record: record.into(),
            message: message.into(),
            fix: fix.into(),
        });
    }
}

/// Sorts findings by rule number, then record, then message, so output is stable.
pub fn sort_findings(findings: &mut [Finding]) {
    let rank = |rule: &str| {
        rule.parse::<u32>().unwrap_or(match rule {
            "reach" => 0,
            _ => 100,
        })
    };
    findings.sort_by(|a, b| {
        (rank(&a.rule), &a.record, &a.message).cmp(&(rank(&b.rule), &b.record, &b.message))
    });
}

/// The addresses an answer gives for `name` itself, sorted.
fn addresses(response: &Response, name: &Fqdn) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = response
        .answers
        .iter()
        .filter(|r| &r.name == name)
        .filter_map(|r| match &r.data {
            RecordData::Known(Rdata::A(ip)) => Some(IpAddr::from(*ip)),
            RecordData::Known(Rdata::Aaaa(ip)) => Some(IpAddr::from(*ip)),
            _ => None,
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// The CNAME chain starting at `name` within an answer (bounded: a loop ends it).
fn cname_chain(response: &Response, name: &Fqdn) -> Vec<Fqdn> {
    let mut chain: Vec<Fqdn> = Vec::new();
    let mut at = name;
    for _ in 0..16 {
        let next = response.answers.iter().find_map(|r| match &r.data {
            RecordData::Known(Rdata::Cname(to)) if r.name == *at => Some(to),
            _ => None,
        });
        match next {
            Some(to) if !chain.contains(to) => {
                chain.push(to.clone());
                at = to;
            }
            _ => break,
        }
    }
    chain
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How an answer from one server looks when compared with another's (rule 16): the record
/// data and TTLs of the answer section, or the response code, or the failure.
fn comparable(lookup: &Lookup) -> String {
    match lookup {
        Lookup::Failed(_) => "no answer".into(),
        Lookup::Answered(r) if r.rcode != 0 => rcode_name(r.rcode).into(),
        Lookup::Answered(r) => {
            let mut records: Vec<String> = r
                .answers
                .iter()
                .map(|rec| match &rec.data {
                    RecordData::Known(d) => format!("{} {} {d}", rec.name, rec.ttl),
                    RecordData::Soa { .. } => format!("{} SOA", rec.name),
                    RecordData::Ns(n) => format!("{} {} NS {n}", rec.name, rec.ttl),
                    RecordData::Other { rtype, hex } => {
                        format!("{} {} TYPE{rtype} {hex}", rec.name, rec.ttl)
                    }
                })
                .collect();
            records.sort();
            if records.is_empty() {
                "no records".into()
            } else {
                records.join("; ")
            }
        }
    }
}

/// Rule 16 for one question: every server gives the same answer.
fn compare_servers(f: &mut Findings<'_>, snapshot: &Snapshot, name: &Fqdn, qtype: QueryType) {
    let all = snapshot.all(name, qtype);
    // One server has nobody to disagree with (and describing its answer is the costly part).
    let [(first_server, first), others @ ..] = all else {
        return;
    };
    if others.is_empty() {
        return;
    }
    let reference = comparable(first);
    for (server, lookup) in others {
        let other = comparable(lookup);
        if other != reference {
            f.add(
                "16",
                Severity::Error,
                format!("{name} {qtype}"),
                format!("authoritative servers disagree: {first_server} serves {reference}, {server} serves {other}"),
                "wait for the zone transfer to finish, or find why this server does not get the zone's latest version (NOTIFY, allow-transfer, serial)",
            );
        }
    }
}

/// Reports a question no server answered usably; true when that is the case.
fn unreachable(f: &mut Findings<'_>, snapshot: &Snapshot, name: &Fqdn, qtype: QueryType) -> bool {
    if snapshot.answer(name, qtype).is_some() {
        return false;
    }
    let reasons: Vec<String> = snapshot
        .all(name, qtype)
        .iter()
        .filter_map(|(_, l)| match l {
            Lookup::Failed(e) => Some(e.clone()),
            Lookup::Answered(_) => None,
        })
        .collect();
    let unsendable: Vec<&String> = snapshot
        .known_zone(name)
        .and_then(|zone| snapshot.servers.get(zone))
        .into_iter()
        .flatten()
        .filter_map(|server| snapshot.family_unavailable.get(server))
        .collect();
    let message = if reasons.is_empty() && !unsendable.is_empty() {
        format!(
            "not asked: this host can reach none of the authoritative servers: {}",
            join(&unsendable)
        )
    } else if reasons.is_empty() {
        format!("not asked: the authoritative servers of {name}'s zone are unknown")
    } else {
        format!("no authoritative server answered: {}", reasons.join("; "))
    };
    f.add(
        "reach",
        Severity::Error,
        format!("{name} {qtype}"),
        message,
        "check that the servers are running and reachable on UDP and TCP port 53 (or the --nameserver given)",
    );
    true
}

/// What the topology says, when there is one.
struct Expected<'a> {
    topology: &'a Topology,
}

impl Expected<'_> {
    fn pool_of(&self, target: &Fqdn) -> Option<&crate::topology::Pool> {
        self.topology.pools.iter().find(|p| &p.fqdn == target)
    }

    fn in_topology_zone(&self, name: &Fqdn) -> bool {
        self.topology.zone_of(name).is_some()
    }
}

/// Checks one SIP domain against rules 1-8, 10-16.
fn check_domain(snapshot: &Snapshot, domain: &Fqdn, expected: Option<&Expected<'_>>) -> NameReport {
    let zone = snapshot.zone_of.get(domain).cloned();
    let mut report = NameReport::new(
        domain.clone(),
        Subject::SipDomain,
        zone.clone().and_then(Result::ok),
    );
    let mut f = Findings {
        domain,
        list: Vec::new(),
    };
    let zone = match zone {
        Some(Ok(zone)) => zone,
        Some(Err(reason)) => {
            f.add(
                "reach",
                Severity::Error,
                domain.to_string(),
                format!("the zone of {domain} could not be found: {reason}"),
                "give the authoritative servers with --nameserver, or check the domain's delegation (NS records)",
            );
            report.findings = f.list;
            return report;
        }
        None => {
            report.findings = f.list;
            return report;
        }
    };
    let port = expected
        .map(|e| e.topology.srv.port)
        .unwrap_or(XMPP_SERVER_PORT);

    let owner = xmpp_owner(domain);
    let Some(records) = read_srv(&mut f, snapshot, &owner) else {
        report.findings = f.list;
        return report;
    };
    report.srv = Some(observed_srv(&records));

    let check = DomainCheck {
        snapshot,
        domain,
        zone: &zone,
        owner,
        expected,
    };
    if records.is_empty() {
        no_srv(&mut f, snapshot, domain, &zone, &check.owner);
    } else {
        with_srv(&mut f, &mut report, &check, &records, port);
    }
    xmpps(&mut f, snapshot, domain);
    sort_findings(&mut f.list);
    report.findings = f.list;
    report
}

/// The `_xmpp-server._tcp` records at `owner`, sorted (servers rotate RRset order, the report
/// must not); `None`, with a finding, when no server answered usably.
fn read_srv(f: &mut Findings<'_>, snapshot: &Snapshot, owner: &Fqdn) -> Option<Vec<(u32, Srv)>> {
    if unreachable(f, snapshot, owner, QueryType::Srv) {
        return None;
    }
    compare_servers(f, snapshot, owner, QueryType::Srv);
    let response = snapshot
        .answer(owner, QueryType::Srv)
        .expect("checked above");
    if response.rcode != 0 && response.rcode != 3 {
        f.add(
            "reach",
            Severity::Error,
            format!("{owner} SRV"),
            format!("the server answered {}", rcode_name(response.rcode)),
            "check that the server is authoritative for the zone",
        );
        return None;
    }
    let mut records: Vec<(u32, Srv)> = srv_records(response, owner)
        .map(|(ttl, s)| (ttl, s.clone()))
        .collect();
    records.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    Some(records)
}

fn observed_srv(records: &[(u32, Srv)]) -> Vec<ObservedSrv> {
    records
        .iter()
        .map(|(ttl, s)| ObservedSrv {
            priority: s.priority,
            weight: s.weight,
            port: s.port,
            target: s.target.clone(),
            ttl: *ttl,
        })
        .collect()
}

/// One SIP domain under audit, for the rules about its SRV records and their targets.
struct DomainCheck<'a> {
    snapshot: &'a Snapshot,
    domain: &'a Fqdn,
    zone: &'a Fqdn,
    /// `_xmpp-server._tcp.<domain>`.
    owner: Fqdn,
    expected: Option<&'a Expected<'a>>,
}

/// Rules 1, 10 and 12: no `_xmpp-server._tcp` record at all.
fn no_srv(f: &mut Findings<'_>, snapshot: &Snapshot, domain: &Fqdn, zone: &Fqdn, owner: &Fqdn) {
    f.add(
        "1",
        Severity::Error,
        format!("{owner} SRV"),
        format!("no _xmpp-server._tcp SRV record for {domain}: remote XMPP servers cannot find the Edge pool"),
        format!("add `{owner} SRV <priority> 0 5269 <access-edge FQDN>.`, one record per Edge pool (xmppdns apply does this)"),
    );
    for misplaced in misplaced_owners(domain, zone) {
        let Some(response) = snapshot.answer(&misplaced, QueryType::Srv) else {
            continue;
        };
        let found: Vec<String> = srv_records(response, &misplaced)
            .map(|(_, s)| format!("{} {} {} {}", s.priority, s.weight, s.port, s.target))
            .collect();
        if !found.is_empty() {
            f.add(
                "10",
                Severity::Error,
                format!("{misplaced} SRV"),
                format!("the SRV record sits at the wrong owner name {misplaced} ({}); peers only look up {owner}", join(&found)),
                format!("move it: delete {misplaced} SRV and create {owner} SRV with the same data"),
            );
        }
    }
    let mut ips = Vec::new();
    for qtype in [QueryType::A, QueryType::Aaaa] {
        if let Some(r) = snapshot.answer(domain, qtype) {
            ips.extend(addresses(r, domain));
        }
    }
    if !ips.is_empty() {
        f.add(
            "12",
            Severity::Warning,
            format!("{domain} A/AAAA"),
            format!("without SRV records peers fall back to {domain}'s own addresses ({}) on port 5269, often a web server", join(&ips)),
            format!("publish {owner} SRV (rule 1)"),
        );
    }
}

/// Rules 2-8, 11, 13, 15 and 16 for a domain that has `_xmpp-server._tcp` records.
fn with_srv(
    f: &mut Findings<'_>,
    report: &mut NameReport,
    check: &DomainCheck<'_>,
    records: &[(u32, Srv)],
    port: u16,
) {
    let owner = &check.owner;
    if dot_targets(f, check, records) {
        return;
    }
    let real: Vec<&Srv> = records
        .iter()
        .map(|(_, s)| s)
        .filter(|s| !is_dot(s))
        .collect();
    wrong_ports(f, owner, &real, port);

    // Rule 6: distinct priorities; with a topology, one record per pool.
    let by_priority = shared_priorities(f, owner, &real);
    targets_listed_twice(f, owner, &real);

    // The leading target and, with a topology, rules 6, 7 and 8.
    let leading: Vec<&Srv> = by_priority.values().next().cloned().unwrap_or_default();
    if leading.len() == 1 {
        report.leading_target = Some(leading[0].target.clone());
    }
    if let Some(expected) = check.expected {
        report.leading_pool = report
            .leading_target
            .as_ref()
            .and_then(|t| expected.pool_of(t))
            .map(|p| p.name.clone());
        one_record_per_pool(f, owner, &real, expected);
        leader(f, owner, &leading, expected);
    }

    // Rules 5, 8, 13, 15 and 16 per target.
    let targets: BTreeSet<&Fqdn> = real.iter().map(|s| &s.target).collect();
    for target in targets {
        check_target(f, check, target);
    }
}

fn is_dot(srv: &Srv) -> bool {
    srv.target.as_str() == "."
}

/// `OWNER SRV PRIORITY WEIGHT PORT TARGET`, how findings name one record.
fn srv_record(owner: &Fqdn, srv: &Srv) -> String {
    format!(
        "{owner} SRV {} {} {} {}",
        srv.priority, srv.weight, srv.port, srv.target
    )
}

/// Rules 3 and 4: records with target `.`; true when every record has it (federation is
/// switched off, and nothing else is worth checking).
fn dot_targets(f: &mut Findings<'_>, check: &DomainCheck<'_>, records: &[(u32, Srv)]) -> bool {
    let (owner, domain) = (&check.owner, check.domain);
    let dots = records.iter().filter(|(_, s)| is_dot(s)).count();
    // No real target at all (one `.` record, or several): federation is switched off.
    if dots > 0 && dots == records.len() {
        let which = if dots == 1 {
            "the only record has".to_string()
        } else {
            format!("all {dots} records have")
        };
        f.add(
            "3",
            Severity::Error,
            format!("{owner} SRV"),
            format!("{which} target `.`: {domain} says XMPP federation is decidedly not available, so remote servers stop trying"),
            "replace it with one record per Edge pool pointing at the access-edge FQDN on port 5269",
        );
        return true;
    }
    if dots > 0 {
        f.add(
            "4",
            Severity::Warning,
            format!("{owner} SRV"),
            "a record with target `.` is mixed with real targets: RFC 2782 defines `.` only as the single record, peers may do anything",
            "delete the `.` record",
        );
    }
    false
}

/// Rule 2: every record on the expected port.
fn wrong_ports(f: &mut Findings<'_>, owner: &Fqdn, real: &[&Srv], port: u16) {
    for srv in real {
        if srv.port != port {
            f.add(
                "2",
                Severity::Error,
                srv_record(owner, srv),
                format!(
                    "port {} instead of {port}: the Edge pool's XMPP federation listens on {port}",
                    srv.port
                ),
                format!("set the port to {port}"),
            );
        }
    }
}

/// Rules 6 (a priority shared by several records) and 11 (weight on a record alone at its
/// priority); the records by priority, lowest first.
fn shared_priorities<'s>(
    f: &mut Findings<'_>,
    owner: &Fqdn,
    real: &[&'s Srv],
) -> BTreeMap<u16, Vec<&'s Srv>> {
    let mut by_priority: BTreeMap<u16, Vec<&Srv>> = BTreeMap::new();
    for srv in real {
        by_priority.entry(srv.priority).or_default().push(srv);
    }
    for (priority, group) in &by_priority {
        if group.len() > 1 {
            let targets: Vec<&Fqdn> = group.iter().map(|s| &s.target).collect();
            f.add(
                "6",
                Severity::Error,
                format!("{owner} SRV"),
                format!("priority {priority} is shared by {}: remote servers split traffic between pools instead of using one and failing over to the next", join(&targets)),
                "give each Edge pool its own priority (active pool lowest, e.g. 10, 20, 30)",
            );
        } else if group[0].weight != 0 {
            f.add(
                "11",
                Severity::Info,
                srv_record(owner, group[0]),
                format!("weight {} on the only record of priority {priority}: weight only shares load within a priority", group[0].weight),
                "use weight 0 (RFC 2782)",
            );
        }
    }
    by_priority
}

/// Rule 6: each target in one record.
fn targets_listed_twice(f: &mut Findings<'_>, owner: &Fqdn, real: &[&Srv]) {
    let mut by_target: BTreeMap<&Fqdn, Vec<u16>> = BTreeMap::new();
    for srv in real {
        by_target.entry(&srv.target).or_default().push(srv.priority);
    }
    for (target, priorities) in by_target.iter().filter(|(_, p)| p.len() > 1) {
        f.add(
            "6",
            Severity::Error,
            format!("{owner} SRV"),
            format!("{target} has {} records (priorities {}): one record per Edge pool, or a failover leaves it both first and fallback", priorities.len(), join(priorities)),
            format!("keep one record for {target}"),
        );
    }
}

/// Rule 6 with a topology: a record for every pool, and none for a target outside it.
fn one_record_per_pool(f: &mut Findings<'_>, owner: &Fqdn, real: &[&Srv], expected: &Expected<'_>) {
    for pool in &expected.topology.pools {
        if !real.iter().any(|s| s.target == pool.fqdn) {
            f.add(
                "6",
                Severity::Error,
                format!("{owner} SRV"),
                format!(
                    "no record for pool {} ({}): it cannot take over federation without a DNS edit",
                    pool.name, pool.fqdn
                ),
                "add one SRV record per Edge pool (xmppdns apply)",
            );
        }
    }
    for srv in real {
        if expected.pool_of(&srv.target).is_none() && !is_ip_literal(&srv.target) {
            f.add(
                "6",
                Severity::Error,
                srv_record(owner, srv),
                format!(
                    "{} is not the access-edge FQDN of any pool in the topology",
                    srv.target
                ),
                "point the record at a pool's FQDN or delete it (xmppdns apply)",
            );
        }
    }
}

/// Rule 7: the lowest priority number leads to the active pool, or to `srv_leader` when the
/// topology names one (failover --no-promote; then a warning that the two routes differ).
fn leader(f: &mut Findings<'_>, owner: &Fqdn, leading: &[&Srv], expected: &Expected<'_>) {
    let topology = expected.topology;
    let active = topology.active_pool();
    // Normally the active pool leads; `srv_leader` (failover --no-promote) names another.
    let leader = &topology.pools[topology.leader];
    let leads_as_planned = leading.len() == 1 && leading[0].target == leader.fqdn;
    if leads_as_planned && topology.leader != topology.active {
        f.add(
            "7",
            Severity::Warning,
            format!("{owner} SRV"),
            format!("the lowest priority number points to {} ({}) as `srv_leader` says, while the federation record points to the active pool {}", leader.fqdn, leader.name, active.name),
            format!("once {} is confirmed, `xmppdns failover --to {}` promotes its SRV records", active.name, active.name),
        );
    }
    if leads_as_planned || leading.is_empty() {
        return;
    }
    if topology.leader != topology.active {
        let targets: Vec<String> = leading.iter().map(|s| s.target.to_string()).collect();
        f.add(
            "7",
            Severity::Error,
            format!("{owner} SRV"),
            format!(
                "the lowest priority number ({}) points to {}, but `srv_leader` is {} ({})",
                leading[0].priority,
                join(&targets),
                leader.name,
                leader.fqdn
            ),
            format!(
                "give {} the lowest priority number (xmppdns apply)",
                leader.fqdn
            ),
        );
    } else {
        let leaders: Vec<String> = leading
            .iter()
            .map(|s| match expected.pool_of(&s.target) {
                Some(p) => format!("{} ({})", s.target, p.name),
                None => s.target.to_string(),
            })
            .collect();
        f.add(
            "7",
            Severity::Error,
            format!("{owner} SRV"),
            format!("the lowest priority number ({}) points to {}, but the active federation route is {} ({})", leading[0].priority, join(&leaders), active.name, active.fqdn),
            format!("give {} the lowest priority number (xmppdns apply)", active.fqdn),
        );
    }
}

/// Rules 5, 8, 13, 15, 16 for one SRV target.
fn check_target(f: &mut Findings<'_>, check: &DomainCheck<'_>, target: &Fqdn) {
    let (owner, domain, zone) = (&check.owner, check.domain, check.zone);
    if is_ip_literal(target) {
        f.add(
            "5",
            Severity::Error,
            format!("{owner} SRV -> {target}"),
            format!("the target {} is an IP address written as a name; SRV targets must be host names with A/AAAA records (RFC 2782)", target.bare()),
            "point the record at the access-edge FQDN and give that name the address",
        );
        return;
    }
    if !target.is_within(zone) && !check.expected.is_some_and(|e| e.in_topology_zone(target)) {
        f.add(
            "13",
            Severity::Warning,
            format!("{owner} SRV -> {target}"),
            format!("the target {target} is outside {domain}'s zone {zone}: its records are managed elsewhere and may change without notice"),
            format!("use a target inside {zone}, or make sure whoever runs {target}'s zone keeps it pointing at the Edge pool"),
        );
    }
    let Some((v4, v6)) = target_addresses(f, check.snapshot, target) else {
        return;
    };
    if let Some(pool) = check.expected.and_then(|e| e.pool_of(target)) {
        if !v4.is_empty() || !v6.is_empty() {
            pool_addresses(f, target, pool, &v4, &v6);
        }
    }
    tlsa(f, check.snapshot, target);
}

/// Rules 5 and 16 for a target's addresses: the servers agree, and the target has A/AAAA
/// records of its own (no CNAME). `None` when they could not be judged (no answer, an alias,
/// servers outside the target's zone), after saying why.
fn target_addresses(
    f: &mut Findings<'_>,
    snapshot: &Snapshot,
    target: &Fqdn,
) -> Option<(Vec<IpAddr>, Vec<IpAddr>)> {
    for qtype in [QueryType::A, QueryType::Aaaa] {
        compare_servers(f, snapshot, target, qtype);
    }
    let a = snapshot.answer(target, QueryType::A);
    let aaaa = snapshot.answer(target, QueryType::Aaaa);
    if a.is_none() && aaaa.is_none() {
        f.add(
            "5",
            Severity::Warning,
            format!("{target} A/AAAA"),
            format!("the addresses of {target} could not be read: no server answered"),
            "check that the target's zone is served and reachable",
        );
        return None;
    }
    if is_alias(f, target, a, aaaa) {
        return None;
    }
    let refused = [a, aaaa]
        .into_iter()
        .flatten()
        .all(|r| r.rcode != 0 && r.rcode != 3);
    if refused {
        let code = a.or(aaaa).map(|r| rcode_name(r.rcode)).unwrap_or("?");
        f.add(
            "5",
            Severity::Warning,
            format!("{target} A/AAAA"),
            format!("the addresses of {target} were not checked: the audited servers answered {code} (it is outside their zones)"),
            format!("audit {target}'s zone too (add its servers with --nameserver)"),
        );
        return None;
    }
    let v4: Vec<IpAddr> = a.map(|r| addresses(r, target)).unwrap_or_default();
    let v6: Vec<IpAddr> = aaaa.map(|r| addresses(r, target)).unwrap_or_default();
    if v4.is_empty() && v6.is_empty() {
        f.add(
            "5",
            Severity::Error,
            format!("{target} A/AAAA"),
            format!(
                "the target {target} has no A or AAAA record: remote servers cannot connect to it"
            ),
            format!("add {target} A <access-edge external address>"),
        );
    }
    Some((v4, v6))
}

/// Rule 5: the target is a CNAME (reported with its chain); true when it is.
fn is_alias(
    f: &mut Findings<'_>,
    target: &Fqdn,
    a: Option<&Response>,
    aaaa: Option<&Response>,
) -> bool {
    let chain = a
        .into_iter()
        .chain(aaaa)
        .map(|r| cname_chain(r, target))
        .find(|c| !c.is_empty());
    let Some(chain) = chain else {
        return false;
    };
    f.add(
        "5",
        Severity::Error,
        format!("{target} CNAME"),
        format!("the target {target} is an alias (CNAME -> {}); SRV targets must not be aliases (RFC 2782) and some peers will not follow it", chain.iter().map(ToString::to_string).collect::<Vec<_>>().join(" -> ")),
        format!("point the SRV record at {} directly, or replace the CNAME with A/AAAA records", chain.last().expect("non-empty")),
    );
    true
}

/// Rule 8 for a target: it resolves to its pool's addresses (each family the pool has).
fn pool_addresses(
    f: &mut Findings<'_>,
    target: &Fqdn,
    pool: &crate::topology::Pool,
    v4: &[IpAddr],
    v6: &[IpAddr],
) {
    let want4: Vec<IpAddr> = sorted(pool.ipv4.iter().map(|ip| IpAddr::from(*ip)));
    let want6: Vec<IpAddr> = sorted(pool.ipv6.iter().map(|ip| IpAddr::from(*ip)));
    if !want4.is_empty() && v4 != want4 {
        f.add(
            "8",
            Severity::Error,
            format!("{target} A"),
            format!(
                "{target} resolves to {}, but pool {}'s access-edge address is {}",
                or_none(v4),
                pool.name,
                join(&want4)
            ),
            format!(
                "set {target} A to {} (xmppdns apply, with manage_target_addresses)",
                join(&want4)
            ),
        );
    }
    if !want6.is_empty() && v6 != want6 {
        f.add(
            "8",
            Severity::Error,
            format!("{target} AAAA"),
            format!(
                "{target} resolves to {}, but pool {}'s access-edge IPv6 address is {}",
                or_none(v6),
                pool.name,
                join(&want6)
            ),
            format!("set {target} AAAA to {}", join(&want6)),
        );
    }
}

/// Rule 15: TLSA records at `_5269._tcp.<target>`, to keep in step with the pool.
fn tlsa(f: &mut Findings<'_>, snapshot: &Snapshot, target: &Fqdn) {
    let tlsa_owner = target.prepend("_5269._tcp");
    if let Some(r) = snapshot.answer(&tlsa_owner, QueryType::Tlsa) {
        let n = r.answers.iter().filter(|rec| rec.rtype == 52).count();
        if n > 0 {
            f.add(
                "15",
                Severity::Info,
                format!("{tlsa_owner} TLSA"),
                format!("{n} TLSA record(s) pin the certificate of {target}: they must change with the pool or its certificate (DNSSEC validation is not checked by this audit)"),
                "update the TLSA record before changing the Edge pool's certificate or moving federation to another pool",
            );
        }
    }
}

fn sorted(ips: impl Iterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = ips.collect();
    v.sort();
    v.dedup();
    v
}

fn or_none(ips: &[IpAddr]) -> String {
    if ips.is_empty() {
        "nothing".into()
    } else {
        join(ips)
    }
}

/// Rule 14: `_xmpps-server._tcp` (direct TLS) must not use the STARTTLS port.
fn xmpps(f: &mut Findings<'_>, snapshot: &Snapshot, domain: &Fqdn) {
    let owner = xmpps_owner(domain);
    compare_servers(f, snapshot, &owner, QueryType::Srv);
    let Some(response) = snapshot.answer(&owner, QueryType::Srv) else {
        return;
    };
    for (_, srv) in srv_records(response, &owner) {
        if srv.port == XMPP_SERVER_PORT && srv.target.as_str() != "." {
            f.add(
                "14",
                Severity::Warning,
                format!("{owner} SRV {} {} {} {}", srv.priority, srv.weight, srv.port, srv.target),
                format!("_xmpps-server (direct TLS, XEP-0368) points at port {XMPP_SERVER_PORT}, the STARTTLS port: peers will open TLS there and fail"),
                "use the Edge pool's direct-TLS port, or delete the _xmpps-server record (or give it target `.`)",
            );
        }
    }
}

/// Rule 16 (serials) for one zone.
fn check_zone(snapshot: &Snapshot, zone: &Fqdn) -> NameReport {
    let mut report = NameReport::new(zone.clone(), Subject::Zone, Some(zone.clone()));
    let mut f = Findings {
        domain: zone,
        list: Vec::new(),
    };
    let mut serials: BTreeMap<String, Option<u32>> = BTreeMap::new();
    // In the order the servers were given (the first is the reference), for the message.
    let mut listed: Vec<(SocketAddr, u32)> = Vec::new();
    for (server, lookup) in snapshot.all(zone, QueryType::Soa) {
        let serial = match lookup {
            Lookup::Answered(r) if r.rcode == 0 => {
                r.answers.iter().find_map(|rec| match rec.data {
                    RecordData::Soa { serial, .. } if &rec.name == zone => Some(serial),
                    _ => None,
                })
            }
            _ => None,
        };
        if serial.is_none() {
            let why = match lookup {
                Lookup::Failed(e) => e.clone(),
                Lookup::Answered(r) => {
                    format!("answered {} without the zone's SOA", rcode_name(r.rcode))
                }
            };
            f.add(
                "16",
                Severity::Error,
                format!("{zone} SOA"),
                format!("{server} gave no serial for {zone}: {why}"),
                "check that this server is running and serves the zone",
            );
        }
        if let Some(n) = serial {
            listed.push((*server, n));
        }
        serials.insert(server.to_string(), serial);
    }
    for server in snapshot.servers.get(zone).into_iter().flatten() {
        if let Some(why) = snapshot.family_unavailable.get(server) {
            f.add(
                "16",
                Severity::Info,
                format!("{zone} SOA"),
                format!("{server} was not asked, so it is left out of the comparison: {why}"),
                format!("nothing to do about {server} itself; to check it too, run the audit from a host that can reach it"),
            );
        }
    }
    for (server, code) in snapshot.not_serving.get(zone).into_iter().flatten() {
        f.add(
            "16",
            Severity::Info,
            format!("{zone} SOA"),
            format!("{server} answered {} for {zone}: it is not one of the zone's servers, so it is left out of the comparison", rcode_name(*code)),
            format!("nothing to do if {server} is not meant to serve {zone}; otherwise configure the zone there"),
        );
    }
    if listed.iter().any(|(_, n)| *n != listed[0].1) {
        let listed: Vec<String> = listed
            .iter()
            .map(|(server, n)| format!("{server} has {n}"))
            .collect();
        f.add(
            "16",
            Severity::Warning,
            format!("{zone} SOA"),
            format!("authoritative servers serve different serials ({}): a change has not reached all of them", listed.join(", ")),
            "check NOTIFY and zone transfers from the primary to the lagging server(s)",
        );
    }
    report.serials = Some(serials);
    sort_findings(&mut f.list);
    report.findings = f.list;
    report
}

/// Rules 8, 16 and 17 for the federation A/AAAA record of a topology.
fn check_federation(snapshot: &Snapshot, topology: &Topology) -> NameReport {
    let name = &topology.federation.name;
    let mut report = NameReport::new(
        name.clone(),
        Subject::Federation,
        Some(topology.federation.zone.clone()),
    );
    let mut f = Findings {
        domain: name,
        list: Vec::new(),
    };
    let active = topology.active_pool();
    for (qtype, want) in [
        (
            QueryType::A,
            sorted(active.ipv4.iter().map(|ip| IpAddr::from(*ip))),
        ),
        (
            QueryType::Aaaa,
            sorted(active.ipv6.iter().map(|ip| IpAddr::from(*ip))),
        ),
    ] {
        let Some(response) = federation_answer(&mut f, snapshot, name, qtype) else {
            continue;
        };
        let have = addresses(response, name);
        if have != want && !(want.is_empty() && have.is_empty()) {
            federation_points_elsewhere(&mut f, topology, qtype, &have, &want);
        }
        let ttl = response
            .answers
            .iter()
            .filter(|r| &r.name == name && r.rtype == qtype.code())
            .map(|r| r.ttl)
            .min();
        let observed = report.addresses.get_or_insert_with(Vec::new);
        observe_addresses(observed, response, topology);
        if let Some(ttl) = ttl.filter(|t| *t > FEDERATION_TTL_WARNING) {
            f.add(
                "17",
                Severity::Warning,
                format!("{name} {qtype}"),
                format!("TTL {ttl} s: after a failover, remote servers may keep the old address for up to {}", human(ttl)),
                format!("lower the TTL to {} s (the topology's federation ttl) well before any failover", topology.federation.ttl),
            );
        }
    }
    sort_findings(&mut f.list);
    report.findings = f.list;
    report
}

/// The federation record's answer for `qtype`; `None`, with a finding, when no server
/// answered usably.
fn federation_answer<'s>(
    f: &mut Findings<'_>,
    snapshot: &'s Snapshot,
    name: &Fqdn,
    qtype: QueryType,
) -> Option<&'s Response> {
    if unreachable(f, snapshot, name, qtype) {
        return None;
    }
    compare_servers(f, snapshot, name, qtype);
    let response = snapshot.answer(name, qtype).expect("checked");
    if response.rcode != 0 && response.rcode != 3 {
        f.add(
            "reach",
            Severity::Error,
            format!("{name} {qtype}"),
            format!("the server answered {}", rcode_name(response.rcode)),
            "check that the server is authoritative for the federation record's zone",
        );
        return None;
    }
    Some(response)
}

/// The pool that has `address`, if any.
fn pool_with(topology: &Topology, address: IpAddr) -> Option<&crate::topology::Pool> {
    topology.pools.iter().find(|p| {
        p.ipv4.iter().any(|ip| IpAddr::from(*ip) == address)
            || p.ipv6.iter().any(|ip| IpAddr::from(*ip) == address)
    })
}

/// Rule 8 for the federation record: it has addresses other than the active pool's.
fn federation_points_elsewhere(
    f: &mut Findings<'_>,
    topology: &Topology,
    qtype: QueryType,
    have: &[IpAddr],
    want: &[IpAddr],
) {
    let name = &topology.federation.name;
    let active = topology.active_pool();
    let owners: Vec<String> = topology
        .pools
        .iter()
        .filter(|p| {
            p.ipv4.iter().any(|ip| have.contains(&IpAddr::from(*ip)))
                || p.ipv6.iter().any(|ip| have.contains(&IpAddr::from(*ip)))
        })
        .map(|p| p.name.clone())
        .collect();
    let whose = if owners.is_empty() {
        String::new()
    } else {
        format!(" (pool {})", owners.join(", "))
    };
    f.add(
        "8",
        Severity::Error,
        format!("{name} {qtype}"),
        format!(
            "the federation {qtype} record points to {}{whose}, but the active pool {} has {}",
            or_none(have),
            active.name,
            or_none(want)
        ),
        format!("set {name} {qtype} to {} (xmppdns apply)", or_none(want)),
    );
}

/// Adds the federation record's addresses in `response` to `observed` (sorted by address),
/// each with the pool that has it.
fn observe_addresses(
    observed: &mut Vec<ObservedAddress>,
    response: &Response,
    topology: &Topology,
) {
    let name = &topology.federation.name;
    for record in response.answers.iter().filter(|r| &r.name == name) {
        let address = match &record.data {
            RecordData::Known(Rdata::A(ip)) => IpAddr::from(*ip),
            RecordData::Known(Rdata::Aaaa(ip)) => IpAddr::from(*ip),
            _ => continue,
        };
        observed.push(ObservedAddress {
            address,
            ttl: record.ttl,
            pool: pool_with(topology, address).map(|p| p.name.clone()),
        });
    }
    observed.sort_by_key(|a| a.address);
}

fn human(seconds: u32) -> String {
    if seconds >= 3600 && seconds.is_multiple_of(3600) {
        format!("{} h", seconds / 3600)
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

/// The managed RRsets as the first answering server serves them, per zone of the plan; keys
/// no server answered are left out (reported by "reach" instead of as false drift).
fn observed_state(
    snapshot: &Snapshot,
    desired: &plan::DesiredState,
) -> (BTreeMap<Fqdn, ZoneState>, BTreeSet<crate::records::RrKey>) {
    let mut current = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for (zone, want) in &desired.zones {
        let mut state = ZoneState::default();
        for key in &want.managed {
            let qtype = match key.rtype {
                RecordType::A => QueryType::A,
                RecordType::Aaaa => QueryType::Aaaa,
                RecordType::Srv => QueryType::Srv,
                RecordType::Cname => QueryType::Cname,
            };
            // No answer, or a refusal: what the server holds is unknown, not absent.
            let Some(response) = snapshot
                .answer(&key.name, qtype)
                .filter(|r| r.rcode == 0 || r.rcode == 3)
            else {
                unknown.insert(key.clone());
                continue;
            };
            let mut ttl = u32::MAX;
            let records: Vec<Rdata> = response
                .answers
                .iter()
                .filter(|r| r.name == key.name && r.rtype == qtype.code())
                .filter_map(|r| match &r.data {
                    RecordData::Known(d) => {
                        ttl = ttl.min(r.ttl);
                        Some(d.clone())
                    }
                    _ => None,
                })
                .collect();
            if !records.is_empty() {
                if let Ok(set) = RecordSet::new(key.name.clone(), key.rtype, ttl, records) {
                    state.rrsets.insert(key.clone(), set);
                }
            }
        }
        current.insert(zone.clone(), state);
    }
    (current, unknown)
}

/// Drift: what `xmppdns plan` would change, as findings on the name they concern.
fn drift(snapshot: &Snapshot, topology: &Topology) -> Vec<Finding> {
    let desired = plan::desired(topology);
    let (current, unknown) = observed_state(snapshot, &desired);
    let plan = Plan::compute(&desired, current);
    let show = |set: &Option<RecordSet>| match set {
        None => "nothing".to_string(),
        Some(s) => format!(
            "{} (TTL {})",
            s.records()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            s.ttl
        ),
    };
    plan.changes
        .iter()
        .filter(|c| !unknown.contains(&c.key()))
        .map(|change| {
            let subject = topology
                .sip_domains
                .iter()
                .find(|d| {
                    change.name == xmpp_owner(&d.name) || change.name == xmpps_owner(&d.name)
                })
                .map(|d| d.name.clone())
                .unwrap_or_else(|| change.name.clone());
            let verb = match change.action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Delete => "delete",
            };
            Finding {
                rule: "drift".into(),
                severity: Severity::Warning,
                domain: subject,
                record: format!("{} {}", change.name, change.rtype),
                message: format!(
                    "differs from the topology: the plan would {verb} it (now {}; planned {})",
                    show(&change.before),
                    show(&change.after)
                ),
                fix: "review with `xmppdns plan`, then `xmppdns apply` (or update the topology if DNS is right)".into(),
            }
        })
        .collect()
}

/// Above this negative-caching TTL (seconds), a remote cache told "no such SRV record" keeps
/// saying it too long for a pool that is not pre-provisioned (rule 22).
pub const NEGATIVE_TTL_WARNING: u32 = 3600;

/// Rules 22 and 23: what makes a planned move reach remote servers late.
fn move_readiness(snapshot: &Snapshot, topology: &Topology) -> Vec<Finding> {
    let mut findings = negative_caching(snapshot, topology);
    if let Some(rto) = topology.rto_seconds {
        findings.extend(ttls_above_rto(snapshot, topology, rto));
    }
    findings
}

/// The largest TTL any server served for `name`/`qtype` (records at `name` of that type).
fn served_ttl(snapshot: &Snapshot, name: &Fqdn, qtype: QueryType) -> Option<u32> {
    snapshot
        .all(name, qtype)
        .iter()
        .filter_map(|(_, lookup)| match lookup {
            Lookup::Answered(r) if r.rcode == 0 => Some(r),
            _ => None,
        })
        .flat_map(|r| &r.answers)
        .filter(|rec| &rec.name == name && rec.rtype == qtype.code())
        .map(|rec| rec.ttl)
        .max()
}

/// Rule 22: a zone whose negative-caching TTL (the smaller of the SOA's TTL and MINIMUM, RFC
/// 2308) is above an hour while some SIP domain in it lacks a pool's SRV record.
fn negative_caching(snapshot: &Snapshot, topology: &Topology) -> Vec<Finding> {
    let mut findings = Vec::new();
    for zone in &topology.zones {
        let negative = snapshot
            .all(zone, QueryType::Soa)
            .iter()
            .filter_map(|(_, lookup)| match lookup {
                Lookup::Answered(r) => Some(r),
                Lookup::Failed(_) => None,
            })
            .flat_map(|r| &r.answers)
            .filter_map(|rec| match rec.data {
                RecordData::Soa { minimum, .. } if &rec.name == zone => Some(minimum.min(rec.ttl)),
                _ => None,
            })
            .max();
        let Some(negative) = negative.filter(|n| *n > NEGATIVE_TTL_WARNING) else {
            continue;
        };
        for domain in topology.sip_domains.iter().filter(|d| &d.zone == zone) {
            let owner = xmpp_owner(&domain.name);
            let missing = pools_without_srv(snapshot, topology, &owner);
            if missing.is_empty() {
                continue;
            }
            findings.push(Finding {
                rule: "22".into(),
                severity: Severity::Warning,
                domain: domain.name.clone(),
                record: format!("{zone} SOA"),
                message: format!("negative-caching TTL {negative} s while {owner} has no record for {}: a remote cache told \"no such record\" keeps saying it for up to {}", missing.join(", "), human(negative)),
                fix: format!("pre-provision every pool's SRV record (`xmppdns apply`), or lower the SOA MINIMUM of {zone} to {NEGATIVE_TTL_WARNING} s or less"),
            });
        }
    }
    findings
}

/// The pools none of whose SRV records any server serves at `owner`.
fn pools_without_srv(snapshot: &Snapshot, topology: &Topology, owner: &Fqdn) -> Vec<String> {
    let targets: BTreeSet<Fqdn> = snapshot
        .all(owner, QueryType::Srv)
        .iter()
        .filter_map(|(_, lookup)| match lookup {
            Lookup::Answered(r) => Some(r),
            Lookup::Failed(_) => None,
        })
        .flat_map(|r| &r.answers)
        .filter_map(|rec| match &rec.data {
            RecordData::Known(Rdata::Srv(srv)) => Some(srv.target.clone()),
            _ => None,
        })
        .collect();
    topology
        .pools
        .iter()
        .filter(|p| !targets.contains(&p.fqdn))
        .map(|p| p.name.clone())
        .collect()
}

/// Rule 23: the federation A/AAAA or an SRV TTL is above the topology's `rto_seconds`.
fn ttls_above_rto(snapshot: &Snapshot, topology: &Topology, rto: u32) -> Vec<Finding> {
    let federation = &topology.federation.name;
    let mut checked = vec![
        (federation.clone(), federation.clone(), QueryType::A),
        (federation.clone(), federation.clone(), QueryType::Aaaa),
    ];
    for domain in &topology.sip_domains {
        checked.push((
            domain.name.clone(),
            xmpp_owner(&domain.name),
            QueryType::Srv,
        ));
    }
    checked
        .into_iter()
        .filter_map(|(subject, name, qtype)| {
            let ttl = served_ttl(snapshot, &name, qtype).filter(|t| *t > rto)?;
            Some(Finding {
                rule: "23".into(),
                severity: Severity::Warning,
                domain: subject,
                record: format!("{name} {qtype}"),
                message: format!("TTL {ttl} s is above the topology's rto_seconds {rto}: remote servers may keep the old pool for up to {} after a failover", human(ttl)),
                fix: format!("lower the TTL to {rto} s or less in the topology and apply, or `xmppdns drain --ttl {rto}` well before a planned move"),
            })
        })
        .collect()
}

/// The whole audit over a snapshot: every SIP domain, every zone's serials, and with a
/// topology the federation record and drift.
pub fn check(
    snapshot: &Snapshot,
    domains: &[Fqdn],
    topology: Option<&Topology>,
) -> Vec<NameReport> {
    let expected = topology.map(|topology| Expected { topology });
    // Both lists sorted by name, then merged: the report lists names in order. (A sorted map
    // of the twenty thousand reports of ten thousand domains, each key a copied name, was a
    // fifth of the rules' time, all of it after the parallel part; domains usually come
    // sorted, which the sort finds in one pass.)
    let mut domain_reports = in_parallel(domains, |domain| {
        check_domain(snapshot, domain, expected.as_ref())
    });
    domain_reports.sort_by(|a, b| a.name.cmp(&b.name));
    let mut zones: Vec<&Fqdn> = snapshot.servers.keys().collect();
    zones.sort_unstable();
    let zone_reports = in_parallel(&zones, |zone| check_zone(snapshot, zone));
    let mut reports = merge_by_name(domain_reports, zone_reports);
    if let Some(topology) = topology {
        let fed = check_federation(snapshot, topology);
        if let Err(at) = place(&reports, &fed.name, Subject::Federation) {
            reports.insert(at, fed);
        }
        let readiness = move_readiness(snapshot, topology);
        for finding in drift(snapshot, topology).into_iter().chain(readiness) {
            let subject = [Subject::SipDomain, Subject::Federation]
                .into_iter()
                .find(|k| place(&reports, &finding.domain, *k).is_ok())
                .unwrap_or(Subject::Zone);
            let at = match place(&reports, &finding.domain, subject) {
                Ok(at) => at,
                Err(at) => {
                    let zone = snapshot.known_zone(&finding.domain).cloned();
                    let report = NameReport::new(finding.domain.clone(), subject, zone);
                    reports.insert(at, report);
                    at
                }
            };
            reports[at].findings.push(finding);
            sort_findings(&mut reports[at].findings);
        }
    }
    reports
}

/// Where the report of `name` as `kind` is in `reports` (sorted by name, then kind), or where
/// it would go.
fn place(reports: &[NameReport], name: &Fqdn, kind: Subject) -> Result<usize, usize> {
    reports.binary_search_by(|r| (&r.name, r.kind).cmp(&(name, kind)))
}

/// Two lists of reports, each sorted by name and each with one kind, as one sorted list.
fn merge_by_name(first: Vec<NameReport>, second: Vec<NameReport>) -> Vec<NameReport> {
    let mut merged = Vec::with_capacity(first.len() + second.len());
    let (mut first, mut second) = (first.into_iter().peekable(), second.into_iter().peekable());
    loop {
        let take_first = match (first.peek(), second.peek()) {
            (Some(a), Some(b)) => (&a.name, a.kind) <= (&b.name, b.kind),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return merged,
        };
        let next = if take_first {
            first.next()
        } else {
            second.next()
        };
        merged.extend(next);
    }
}

/// `check` of every item, in order, spread over the machine's cores when there are many: the
/// rules only read the snapshot, and at ten thousand domains they took as long as a round of
/// queries on one core, while the servers (their work done) leave the others idle.
fn in_parallel<T: Sync, R: Send>(items: &[T], check: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const FEWEST_PER_THREAD: usize = 1_000;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = cores.min(8).min(items.len() / FEWEST_PER_THREAD);
    if threads < 2 {
        return items.iter().map(check).collect();
    }
    let check = &check;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|part| scope.spawn(move || part.iter().map(check).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("a rule check panicked"))
            .collect()
    })
}

/// Rule 9: an error on every domain whose SRV record points at an address (on the record's
/// port) that did not answer as an XMPP server.
pub fn probe_findings(reports: &mut [NameReport], outcomes: &[ProbeOutcome]) {
    for report in reports.iter_mut() {
        let Some(srv) = &report.srv else { continue };
        let mut f = Findings {
            domain: &report.name,
            list: Vec::new(),
        };
        for record in srv {
            for outcome in outcomes
                .iter()
                .filter(|o| o.target == record.target && o.port == record.port)
            {
                if !outcome.xmpp {
                    f.add(
                        "9",
                        Severity::Error,
                        format!("{} port {}", record.target, record.port),
                        format!("{} ({}) does not answer as an XMPP server: {}", record.target, outcome.address, outcome.detail),
                        format!("open TCP {} to the Edge pool from outside and check the Edge service is running", record.port),
                    );
                }
            }
        }
        report.findings.extend(f.list);
        sort_findings(&mut report.findings);
    }
}

/// One port 5269 probe, as the rules need it.
#[derive(Debug, Clone)]
pub struct ProbeOutcome {
    pub target: Fqdn,
    pub port: u16,
    pub address: SocketAddr,
    pub xmpp: bool,
    pub detail: String,
}

/// Every (target, port, address, first domain) the probe should try: the real targets of every
/// domain's SRV records, at each address the snapshot has for them, each once.
pub fn probe_targets(
    reports: &[NameReport],
    snapshot: &Snapshot,
) -> Vec<(Fqdn, u16, SocketAddr, Fqdn)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for report in reports {
        let Some(srv) = &report.srv else { continue };
        for record in srv {
            if record.target.as_str() == "." || is_ip_literal(&record.target) {
                continue;
            }
            for qtype in [QueryType::A, QueryType::Aaaa] {
                let Some(r) = snapshot.answer(&record.target, qtype) else {
                    continue;
                };
                for ip in addresses(r, &record.target) {
                    let address = SocketAddr::new(ip, record.port);
                    if seen.insert((record.target.clone(), address)) {
                        out.push((
                            record.target.clone(),
                            record.port,
                            address,
                            report.name.clone(),
                        ));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::batch::WireRecord;

    fn name(s: &str) -> Fqdn {
        Fqdn::parse(s).unwrap()
    }

    fn server() -> SocketAddr {
        "127.0.0.1:53".parse().unwrap()
    }

    #[test]
    fn reports_are_listed_by_name_then_kind_and_found_where_they_are() {
        let report = |n: &str, kind| NameReport::new(name(n), kind, None);
        let domains = vec![
            report("a.contoso.com", Subject::SipDomain),
            report("c.contoso.com", Subject::SipDomain),
        ];
        let zones = vec![
            report("a.contoso.com", Subject::Zone),
            report("b.contoso.com", Subject::Zone),
        ];
        let merged = merge_by_name(domains, zones);
        let listed: Vec<(&str, Subject)> =
            merged.iter().map(|r| (r.name.as_str(), r.kind)).collect();
        assert_eq!(
            listed,
            [
                ("a.contoso.com.", Subject::SipDomain),
                ("a.contoso.com.", Subject::Zone),
                ("b.contoso.com.", Subject::Zone),
                ("c.contoso.com.", Subject::SipDomain),
            ]
        );
        assert_eq!(place(&merged, &name("b.contoso.com"), Subject::Zone), Ok(2));
        // A federation record of a.contoso.com goes after its zone, before b.
        assert_eq!(
            place(&merged, &name("a.contoso.com"), Subject::Federation),
            Err(2)
        );
    }

    fn record(owner: &str, rtype: u16, ttl: u32, data: RecordData) -> WireRecord {
        WireRecord {
            name: Fqdn::from_absolute(owner),
            rtype,
            ttl,
            data,
        }
    }

    fn srv(owner: &str, text: &str) -> WireRecord {
        record(
            owner,
            33,
            3600,
            RecordData::Known(Rdata::parse(RecordType::Srv, text).unwrap()),
        )
    }

    fn a(owner: &str, ip: &str) -> WireRecord {
        record(
            owner,
            1,
            300,
            RecordData::Known(Rdata::A(ip.parse().unwrap())),
        )
    }

    fn answered(answers: Vec<WireRecord>) -> Lookup {
        Lookup::Answered(Response {
            rcode: 0,
            authoritative: true,
            answers,
            authority: Vec::new(),
        })
    }

    /// contoso.com with the given SRV records; every target edgeN.contoso.com has 192.0.2.N.
    fn snapshot(srv_data: &[&str]) -> Snapshot {
        let mut s = Snapshot::default();
        let zone = name("contoso.com");
        s.zone_of.insert(zone.clone(), Ok(zone.clone()));
        s.servers.insert(zone.clone(), vec![server()]);
        let owner = "_xmpp-server._tcp.contoso.com.";
        s.insert(
            server(),
            &name(owner),
            QueryType::Srv,
            answered(srv_data.iter().map(|d| srv(owner, d)).collect()),
        );
        s.insert(
            server(),
            &name("_xmpps-server._tcp.contoso.com"),
            QueryType::Srv,
            answered(vec![]),
        );
        for n in 1..=3 {
            let target = format!("edge{n}.contoso.com.");
            s.insert(
                server(),
                &name(&target),
                QueryType::A,
                answered(vec![a(&target, &format!("192.0.2.{n}"))]),
            );
            s.insert(server(), &name(&target), QueryType::Aaaa, answered(vec![]));
        }
        s
    }

    fn rules(snapshot: &Snapshot) -> Vec<(String, Severity)> {
        let reports = check(snapshot, &[name("contoso.com")], None);
        reports
            .iter()
            .flat_map(|r| r.findings.iter().map(|f| (f.rule.clone(), f.severity)))
            .collect()
    }

    #[test]
    fn a_correct_domain_has_no_findings() {
        let s = snapshot(&[
            "10 0 5269 edge1.contoso.com.",
            "20 0 5269 edge2.contoso.com.",
        ]);
        assert_eq!(rules(&s), vec![]);
    }

    #[test]
    fn wrong_port_shared_priority_and_weight() {
        let s = snapshot(&[
            "10 0 5060 edge1.contoso.com.",
            "10 0 5269 edge2.contoso.com.",
            "20 5 5269 edge3.contoso.com.",
        ]);
        assert_eq!(
            rules(&s),
            vec![
                ("2".into(), Severity::Error),
                ("6".into(), Severity::Error),
                ("11".into(), Severity::Info)
            ]
        );
    }

    #[test]
    fn one_target_twice() {
        let s = snapshot(&[
            "10 0 5269 edge1.contoso.com.",
            "20 0 5269 edge1.contoso.com.",
        ]);
        assert_eq!(rules(&s), vec![("6".into(), Severity::Error)]);
    }

    #[test]
    fn dot_alone_and_mixed() {
        assert_eq!(
            rules(&snapshot(&["0 0 0 ."])),
            vec![("3".into(), Severity::Error)]
        );
        assert_eq!(
            rules(&snapshot(&["0 0 0 .", "10 0 5269 edge1.contoso.com."])),
            vec![("4".into(), Severity::Warning)]
        );
        // Several `.` records and no real target: still "not available", not "mixed".
        let s = snapshot(&["0 0 0 .", "10 0 0 ."]);
        assert_eq!(rules(&s), vec![("3".into(), Severity::Error)]);
        let text = format!("{:?}", check(&s, &[name("contoso.com")], None));
        assert!(text.contains("all 2 records have target `.`"), "{text}");
    }

    #[test]
    fn missing_target_addresses_and_ip_literal() {
        let mut s = snapshot(&["10 0 5269 nowhere.contoso.com.", "20 0 5269 192.0.2.7."]);
        s.insert(
            server(),
            &name("nowhere.contoso.com"),
            QueryType::A,
            answered(vec![]),
        );
        s.insert(
            server(),
            &name("nowhere.contoso.com"),
            QueryType::Aaaa,
            answered(vec![]),
        );
        assert_eq!(
            rules(&s),
            vec![("5".into(), Severity::Error), ("5".into(), Severity::Error)]
        );
    }

    #[test]
    fn servers_that_disagree() {
        let mut s = snapshot(&["10 0 5269 edge1.contoso.com."]);
        let other: SocketAddr = "127.0.0.2:53".parse().unwrap();
        s.insert(
            other,
            &name("_xmpp-server._tcp.contoso.com"),
            QueryType::Srv,
            answered(vec![srv(
                "_xmpp-server._tcp.contoso.com.",
                "10 0 5269 edge2.contoso.com.",
            )]),
        );
        assert_eq!(rules(&s), vec![("16".into(), Severity::Error)]);
    }

    #[test]
    fn a_server_this_host_cannot_send_to_is_info_not_a_disagreement() {
        let mut s = snapshot(&[
            "10 0 5269 edge1.contoso.com.",
            "20 0 5269 edge2.contoso.com.",
        ]);
        let v6: SocketAddr = "[2001:db8::53]:53".parse().unwrap();
        s.servers.get_mut(&name("contoso.com")).unwrap().push(v6);
        // What the batch gives for every question to it on an IPv4-only host.
        let questions: Vec<(Fqdn, QueryType)> = s.lookups.keys().cloned().collect();
        for (qname, qtype) in questions {
            let question = crate::dns::batch::Question {
                server: v6,
                name: qname,
                qtype,
                recursion_desired: false,
            };
            let error = crate::dns::DnsError::FamilyUnavailable {
                server: v6,
                reason: "Network is unreachable (os error 101)".into(),
            };
            assert_eq!(s.record(&question, Err(error)), None);
        }
        assert_eq!(rules(&s), vec![("16".into(), Severity::Info)]);
        let reports = check(&s, &[name("contoso.com")], None);
        let text = format!("{reports:?}");
        assert!(
            text.contains("[2001:db8::53]:53 was not asked, so it is left out of the comparison: [2001:db8::53]:53: address family unavailable: this host cannot send to IPv6 addresses"),
            "{text}"
        );

        // With no server it can send to, the audit says it could ask none, as an error.
        let mut only_v6 = s.clone();
        only_v6.lookups.clear();
        only_v6.servers.insert(name("contoso.com"), vec![v6]);
        let reports = check(&only_v6, &[name("contoso.com")], None);
        let text = format!("{reports:?}");
        assert!(
            text.contains("not asked: this host can reach none of the authoritative servers"),
            "{text}"
        );
    }
}
