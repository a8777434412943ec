//! `xmppdns init --from-dns`: a starting topology inferred from what DNS serves today, so that
//! existing deployments adopt the tool without typing their setup. Pools are the distinct SRV
//! targets (ordered by the priority they get), their addresses what the targets resolve to, the
//! active pool the one that leads. What DNS cannot tell (sites, Edge server names, the TSIG key)
//! is left for the user, and said so in the notes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::audit::collect::{
    self, is_ip_literal, srv_records, xmpp_owner, Request, Servers, Snapshot,
};
use crate::audit::{AuditError, Progress};
use crate::dns::batch::{BatchSettings, QueryType, RecordData};
use crate::records::{Fqdn, Rdata, RecordType, RrKey, Srv};
use crate::topology::{
    DEFAULT_FEDERATION_TTL, DEFAULT_PRIORITY_STEP, DEFAULT_TTL, XMPP_SERVER_PORT,
};

/// What to infer from.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub domains: Vec<Fqdn>,
    pub servers: Servers,
    /// The federation A record's name; default `xmpp.<first domain>`.
    pub federation: Option<Fqdn>,
    pub settings: BatchSettings,
}

/// The topology JSON, field for field as `Topology::load` reads it (in a readable order).
#[derive(Debug, Clone, Serialize)]
pub struct TopologyJson {
    pub zones: Vec<String>,
    pub sip_domains: Vec<String>,
    pub active_pool: String,
    pub federation: FederationJson,
    pub pools: Vec<PoolJson>,
    pub ttl: u32,
    pub srv: SrvJson,
    /// True when every target's addresses are served in the listed zones (so the tool can
    /// keep them as the pools say).
    pub manage_target_addresses: bool,
    /// The authoritative servers that were asked, to check after each change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    pub provider: ProviderJson,
}

#[derive(Debug, Clone, Serialize)]
pub struct FederationJson {
    pub name: String,
    pub ttl: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolJson {
    pub name: String,
    pub site: String,
    pub fqdn: String,
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    pub servers: Vec<String>,
    pub preference: u32,
    /// Always true here: the site and servers are guesses until a person fills them in.
    pub placeholder: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SrvJson {
    pub port: u16,
    pub weight: u16,
    pub priority_step: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderJson {
    pub kind: &'static str,
    pub server: String,
    /// `none`: written explicitly, so plans read unsigned (with a warning) until a key or
    /// Kerberos is set; a topology with neither a key nor `auth` is refused.
    pub auth: &'static str,
}

/// An inferred topology and what the user should check in it.
#[derive(Debug, Clone)]
pub struct Inferred {
    pub topology: TopologyJson,
    pub notes: Vec<String>,
}

impl Inferred {
    /// The topology as pretty JSON, newline-terminated.
    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.topology).expect("serializes");
        text.push('\n');
        text
    }
}

/// The value most often seen (the smallest among equals), or `default`.
fn most_common<T: Ord + Copy>(values: &[T], default: T) -> T {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(*v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(v, _)| v)
        .unwrap_or(default)
}

/// A pool name from its FQDN's first label (`edgepool1.contoso.com` -> `edgepool1`), unique.
fn pool_name(fqdn: &Fqdn, taken: &BTreeSet<String>) -> String {
    let base = fqdn.bare().split('.').next().unwrap_or("pool").to_string();
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// Reads the domains' SRV records and their targets, and infers a topology.
pub fn from_dns(
    options: &InitOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Inferred, AuditError> {
    let first = options.domains.first().ok_or(AuditError::NoDomains)?;
    let federation = options
        .federation
        .clone()
        .unwrap_or_else(|| first.prepend("xmpp"));
    let snapshot = collect::collect(&request(options, &federation), progress);
    let mut notes = Vec::new();

    let mut survey = SrvSurvey::default();
    for domain in &options.domains {
        survey.add_domain(domain, &snapshot, &mut notes)?;
    }
    if survey.best_rank.is_empty() {
        return Err(AuditError::Init(
            "no SRV target found in any domain: nothing to infer pools from".into(),
        ));
    }
    let (pools, active_pool) = survey.pools(&snapshot, &mut notes);
    notes.push(
        "pools are marked `\"placeholder\": true`: their sites (Site1, Site2, ...) and empty `servers` are guesses, as DNS does not tell them; fill them in and remove the marker before using the failover runbook".into(),
    );
    let mut zones = survey.zones;
    let federation_ttl = federation_record(&snapshot, &federation, &mut zones, &mut notes)?;

    let step = most_common(&survey.steps, DEFAULT_PRIORITY_STEP);
    let step = if step == 0 {
        DEFAULT_PRIORITY_STEP
    } else {
        step
    };
    let server = provider_server(&options.servers, &snapshot, &zones);
    let manage_target_addresses = targets_served(&pools, &zones, &federation);
    let nameservers = servers_asked(&options.servers, &snapshot, &zones);
    notes.push(format!(
        "provider: RFC 2136 to {server} with \"auth\": \"none\" (unsigned; reads work where queries are allowed); before `apply`, give key_file (TSIG) or \"auth\": \"gss-tsig\" (Kerberos)"
    ));

    Ok(Inferred {
        topology: TopologyJson {
            zones: zones.iter().map(|z| z.bare().to_string()).collect(),
            sip_domains: options
                .domains
                .iter()
                .map(|d| d.bare().to_string())
                .collect(),
            active_pool,
            federation: FederationJson {
                name: federation.bare().to_string(),
                ttl: federation_ttl.unwrap_or(DEFAULT_FEDERATION_TTL),
            },
            pools,
            ttl: most_common(&survey.srv_ttls, DEFAULT_TTL),
            srv: SrvJson {
                port: most_common(&survey.ports, XMPP_SERVER_PORT),
                weight: most_common(&survey.weights, 0),
                priority_step: step,
            },
            manage_target_addresses,
            nameservers,
            provider: ProviderJson {
                kind: "rfc2136",
                server: server.to_string(),
                auth: "none",
            },
        },
        notes,
    })
}

/// The domains' SRV RRsets, plus the federation record's zone and A/AAAA records.
fn request(options: &InitOptions, federation: &Fqdn) -> Request {
    Request {
        domains: options.domains.clone(),
        servers: options.servers.clone(),
        extra_zones: vec![federation.clone()],
        extra_keys: [RecordType::A, RecordType::Aaaa]
            .into_iter()
            .map(|t| RrKey::new(federation.clone(), t))
            .collect(),
        settings: options.settings,
    }
}

/// What the domains' SRV records say, gathered domain by domain.
#[derive(Default)]
struct SrvSurvey {
    /// The domains' zones, in the order met.
    zones: Vec<Fqdn>,
    srv_ttls: Vec<u32>,
    ports: Vec<u16>,
    weights: Vec<u16>,
    /// Per target: the best (lowest) rank it has in any domain, and how often it leads.
    best_rank: BTreeMap<Fqdn, (usize, u16)>,
    leads: BTreeMap<Fqdn, usize>,
    /// The priority of each domain's leading record (the step between pools, usually).
    steps: Vec<u16>,
}

impl SrvSurvey {
    /// Adds one domain's usable records (real targets, not `.` nor IP literals); a domain
    /// without any gets a note.
    fn add_domain(
        &mut self,
        domain: &Fqdn,
        snapshot: &Snapshot,
        notes: &mut Vec<String>,
    ) -> Result<(), AuditError> {
        let zone = match snapshot.zone_of.get(domain) {
            Some(Ok(zone)) => zone.clone(),
            Some(Err(reason)) => {
                return Err(AuditError::Init(format!(
                    "the zone of {domain} could not be found: {reason}"
                )))
            }
            None => return Err(AuditError::Init(format!("{domain} was not read"))),
        };
        if !self.zones.contains(&zone) {
            self.zones.push(zone.clone());
        }
        let owner = xmpp_owner(domain);
        let Some(response) = snapshot.answer(&owner, QueryType::Srv) else {
            return Err(AuditError::Init(format!(
                "no authoritative server answered for {owner} SRV"
            )));
        };
        let mut records: Vec<(u32, Srv)> = srv_records(response, &owner)
            .filter(|(_, s)| s.target.as_str() != "." && !is_ip_literal(&s.target))
            .map(|(ttl, s)| (ttl, s.clone()))
            .collect();
        if records.is_empty() {
            notes.push(format!(
                "{domain} has no usable _xmpp-server._tcp record; `xmppdns plan` will create it"
            ));
            return Ok(());
        }
        records.sort_by(|a, b| a.1.cmp(&b.1));
        *self.leads.entry(records[0].1.target.clone()).or_default() += 1;
        for (rank, (ttl, srv)) in records.iter().enumerate() {
            self.srv_ttls.push(*ttl);
            self.ports.push(srv.port);
            self.weights.push(srv.weight);
            let entry = self
                .best_rank
                .entry(srv.target.clone())
                .or_insert((rank, srv.priority));
            *entry = (*entry).min((rank, srv.priority));
            if rank == 0 {
                self.steps.push(srv.priority);
            }
        }
        Ok(())
    }

    /// The target that leads the most domains (the smallest name among equals).
    fn active_target(&self) -> Fqdn {
        self.leads
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(t, _)| t.clone())
            .expect("some domain has records")
    }

    /// One pool per target: the active pool first, then the others in priority order
    /// (preference 1, 2, ...), with what the targets resolve to; and the active pool's name.
    fn pools(&self, snapshot: &Snapshot, notes: &mut Vec<String>) -> (Vec<PoolJson>, String) {
        let mut targets: Vec<(&Fqdn, (usize, u16))> =
            self.best_rank.iter().map(|(t, r)| (t, *r)).collect();
        targets.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
        let active_target = self.active_target();
        let ordered: Vec<&Fqdn> = std::iter::once(&active_target)
            .chain(
                targets
                    .iter()
                    .map(|(t, _)| *t)
                    .filter(|t| **t != active_target),
            )
            .collect();
        let mut taken = BTreeSet::new();
        let mut pools = Vec::new();
        let mut active_pool = String::new();
        for (i, target) in ordered.iter().enumerate() {
            let name = pool_name(target, &taken);
            taken.insert(name.clone());
            let ipv4 = addresses(snapshot, target, QueryType::A);
            let ipv6 = addresses(snapshot, target, QueryType::Aaaa);
            if ipv4.is_empty() && ipv6.is_empty() {
                notes.push(format!(
                    "{target} has no address records; add the pool's addresses to `{name}`"
                ));
            }
            if *target == &active_target {
                active_pool = name.clone();
            }
            if !self.zones.iter().any(|z| target.is_within(z)) {
                notes.push(format!(
                    "{target} is outside the listed zones; its address records are not managed"
                ));
            }
            pools.push(PoolJson {
                name,
                site: format!("Site{}", i + 1),
                fqdn: target.bare().to_string(),
                ipv4,
                ipv6,
                servers: Vec::new(),
                preference: i as u32,
                placeholder: true,
            });
        }
        (pools, active_pool)
    }
}

/// The addresses of `qtype` that `name` resolves to, sorted, as text.
fn addresses(snapshot: &Snapshot, name: &Fqdn, qtype: QueryType) -> Vec<String> {
    snapshot
        .answer(name, qtype)
        .map(|r| {
            let mut ips: Vec<IpAddr> = r
                .answers
                .iter()
                .filter(|rec| &rec.name == name)
                .filter_map(|rec| match &rec.data {
                    RecordData::Known(Rdata::A(ip)) => Some(IpAddr::from(*ip)),
                    RecordData::Known(Rdata::Aaaa(ip)) => Some(IpAddr::from(*ip)),
                    _ => None,
                })
                .collect();
            ips.sort();
            ips.iter().map(ToString::to_string).collect()
        })
        .unwrap_or_default()
}

/// The federation record: its zone joins `zones` (it must be found), and the TTL of its A
/// record when it has one (a note otherwise).
fn federation_record(
    snapshot: &Snapshot,
    federation: &Fqdn,
    zones: &mut Vec<Fqdn>,
    notes: &mut Vec<String>,
) -> Result<Option<u32>, AuditError> {
    match snapshot.zone_of.get(federation) {
        Some(Ok(zone)) => {
            if !zones.contains(zone) {
                zones.push(zone.clone());
            }
        }
        _ => {
            return Err(AuditError::Init(format!(
            "the zone of the federation record {federation} could not be found; give --federation"
        )))
        }
    }
    let federation_ttl = snapshot.answer(federation, QueryType::A).and_then(|r| {
        r.answers
            .iter()
            .filter(|rec| &rec.name == federation && rec.rtype == QueryType::A.code())
            .map(|rec| rec.ttl)
            .min()
    });
    if federation_ttl.is_none() {
        notes.push(format!(
            "{federation} has no A record yet; `xmppdns plan` will create it for the active pool (give --federation if the record has another name)"
        ));
    }
    Ok(federation_ttl)
}

/// Whether every pool's target is inside the zones, has addresses served there, and is not
/// the federation record (which the tool keeps apart).
fn targets_served(pools: &[PoolJson], zones: &[Fqdn], federation: &Fqdn) -> bool {
    pools.iter().all(|pool| {
        let in_zones = Fqdn::parse(&pool.fqdn)
            .is_ok_and(|target| &target != federation && zones.iter().any(|z| target.is_within(z)));
        in_zones && !(pool.ipv4.is_empty() && pool.ipv6.is_empty())
    })
}

/// The authoritative servers asked: the given ones, else those found for the zones, each once.
fn servers_asked(servers: &Servers, snapshot: &Snapshot, zones: &[Fqdn]) -> Vec<String> {
    let asked: Vec<SocketAddr> = match servers {
        Servers::Given(servers) => servers.clone(),
        Servers::Discover { .. } => zones
            .iter()
            .filter_map(|zone| snapshot.servers.get(zone))
            .flatten()
            .copied()
            .collect(),
    };
    let mut seen = BTreeSet::new();
    asked
        .into_iter()
        .filter(|server| seen.insert(*server))
        .map(|server| server.to_string())
        .collect()
}

/// The server the RFC 2136 provider writes to: the first given one, else the first
/// authoritative server found for the first zone.
fn provider_server(servers: &Servers, snapshot: &Snapshot, zones: &[Fqdn]) -> SocketAddr {
    match servers {
        Servers::Given(servers) => servers[0],
        Servers::Discover { .. } => snapshot
            .servers
            .get(&zones[0])
            .and_then(|s| s.first().copied())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 53))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_common_prefers_the_smallest_among_equals() {
        assert_eq!(most_common(&[20u16, 10, 20, 10], 0), 10);
        assert_eq!(most_common(&[3600u32, 300, 3600], 0), 3600);
        assert_eq!(most_common::<u16>(&[], 5269), 5269);
    }

    #[test]
    fn pool_names_come_from_the_first_label_and_stay_unique() {
        let mut taken = BTreeSet::new();
        let a = pool_name(&Fqdn::parse("edge.contoso.com").unwrap(), &taken);
        taken.insert(a.clone());
        let b = pool_name(&Fqdn::parse("edge.fabrikam.com").unwrap(), &taken);
        assert_eq!((a.as_str(), b.as_str()), ("edge", "edge-2"));
    }
}
