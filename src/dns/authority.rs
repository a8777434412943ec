//! Which servers are authoritative for a name: its zone (from the SOA a server returns), the
//! zone's NS RRset and the addresses of those name servers, all asked of a recursive resolver.
//! The audit queries the servers found here directly, never a cache; the failover's
//! propagation check can use the same calls.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use crate::dns::batch::{
    self, BatchSettings, BatchStats, QueryType, Question, RecordData, Response,
};
use crate::dns::transport::rcode_name;
use crate::dns::DnsError;
use crate::records::{Fqdn, Rdata};

/// One name server of a zone and the addresses it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameServer {
    pub name: Fqdn,
    pub addresses: Vec<SocketAddr>,
}

/// The authoritative servers of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub zone: Fqdn,
    pub name_servers: Vec<NameServer>,
}

impl Authority {
    /// Every address of every name server, each once, in a stable order: IPv4 and IPv6 alike,
    /// even on a host without one of them (the batch then fails that family's questions with
    /// `DnsError::FamilyUnavailable`, which the audit reports as info, not as a server fault).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let set: BTreeSet<SocketAddr> = self
            .name_servers
            .iter()
            .flat_map(|ns| ns.addresses.iter().copied())
            .collect();
        set.into_iter().collect()
    }
}

/// Why the authority of a name could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("{server} did not answer the SOA query for {name}: {reason}")]
    NoAnswer {
        server: SocketAddr,
        name: Fqdn,
        reason: String,
    },
    /// This host cannot send to `server`'s address family (IPv6 on an IPv4-only host).
    #[error("{server} could not be asked the SOA query for {name}: {reason}")]
    FamilyUnavailable {
        server: SocketAddr,
        name: Fqdn,
        reason: String,
    },
    #[error("{server} answered {rcode} to the SOA query for {name} (not authoritative for it?)")]
    Rcode {
        server: SocketAddr,
        name: Fqdn,
        rcode: &'static str,
    },
    #[error("{server} is not authoritative for {name} (its answer lacks the AA bit)")]
    NotAuthoritative { server: SocketAddr, name: Fqdn },
    #[error("{server} gave no SOA record for {name}, so its zone is unknown")]
    NoSoa { server: SocketAddr, name: Fqdn },
    #[error("zone {zone}: no NS records found through {server}")]
    NoNameServers { server: SocketAddr, zone: Fqdn },
    #[error("zone {zone}: none of its name servers ({names}) has an address")]
    NoAddresses { zone: Fqdn, names: String },
}

/// The `nameserver` lines of resolv.conf text, on port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            // A scoped IPv6 address (fe80::1%eth0) cannot be parsed by std; skip it.
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The system's resolvers from /etc/resolv.conf.
pub fn system_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| parse_resolv_conf(&text))
        .unwrap_or_default()
}

/// The zone of each name, from the SOA record `server` returns for it (in the answer when the
/// name is a zone apex, else in the authority section). `recursive` when `server` is a resolver.
pub fn zones_of(
    names: &[Fqdn],
    server: SocketAddr,
    recursive: bool,
    settings: &BatchSettings,
) -> (Vec<Result<Fqdn, AuthorityError>>, BatchStats) {
    let (found, stats) = zones_and_replies(names, server, recursive, settings);
    (found.into_iter().map(|(zone, _)| zone).collect(), stats)
}

/// A name's zone (or why it is unknown) and the reply it was read from, if any came.
pub type ZoneReply = (Result<Fqdn, AuthorityError>, Option<Response>);

/// [`zones_of`], each zone with the reply it was read from: a zone apex's reply is the zone's
/// SOA as `server` serves it, which the audit then need not ask again.
pub fn zones_and_replies(
    names: &[Fqdn],
    server: SocketAddr,
    recursive: bool,
    settings: &BatchSettings,
) -> (Vec<ZoneReply>, BatchStats) {
    let questions: Vec<Question> = names
        .iter()
        .map(|name| soa_question(name, server, recursive))
        .collect();
    let (replies, stats) = batch::resolve_all(&questions, settings, &mut |_| {});
    let zones = names
        .iter()
        .zip(replies)
        .map(|(name, reply)| zone_reply(name, server, recursive, reply))
        .collect();
    (zones, stats)
}

/// The SOA question that finds `name`'s zone at `server` (for callers that ask it in a batch
/// of their own, beside other questions).
pub fn soa_question(name: &Fqdn, server: SocketAddr, recursive: bool) -> Question {
    Question {
        server,
        name: name.clone(),
        qtype: QueryType::Soa,
        recursion_desired: recursive,
    }
}

/// What `server`'s reply to [`soa_question`] says of `name`'s zone.
pub fn zone_reply(
    name: &Fqdn,
    server: SocketAddr,
    recursive: bool,
    reply: Result<Response, DnsError>,
) -> ZoneReply {
    match reply {
        Ok(reply) => (zone_in_reply(name, server, recursive, &reply), Some(reply)),
        Err(e) => {
            let (name, reason) = (name.clone(), e.to_string());
            // No answer says nothing of the zone; no way to ask says nothing of the server.
            let error = if e.is_family_unavailable() {
                AuthorityError::FamilyUnavailable {
                    server,
                    name,
                    reason,
                }
            } else {
                AuthorityError::NoAnswer {
                    server,
                    name,
                    reason,
                }
            };
            (Err(error), None)
        }
    }
}

/// The zone a reply to the SOA query for `name` names, if the reply can be trusted for it.
fn zone_in_reply(
    name: &Fqdn,
    server: SocketAddr,
    recursive: bool,
    reply: &Response,
) -> Result<Fqdn, AuthorityError> {
    if reply.rcode != 0 && reply.rcode != 3 {
        return Err(AuthorityError::Rcode {
            server,
            name: name.clone(),
            rcode: rcode_name(reply.rcode),
        });
    }
    if !recursive && !reply.authoritative {
        return Err(AuthorityError::NotAuthoritative {
            server,
            name: name.clone(),
        });
    }
    reply
        .soa()
        .map(|(zone, _)| zone)
        .ok_or_else(|| AuthorityError::NoSoa {
            server,
            name: name.clone(),
        })
}

/// Finds the authoritative servers of the zone of each name through `resolver`: the zone from
/// the SOA, then its NS RRset, then the A and AAAA records of each name server. Discovered
/// servers get `port` (53 on the Internet; tests serve on high ports).
pub fn discover(
    names: &[Fqdn],
    resolver: SocketAddr,
    port: u16,
    settings: &BatchSettings,
) -> (
    BTreeMap<Fqdn, Result<Authority, AuthorityError>>,
    BatchStats,
) {
    let (zones, mut stats) = zones_of(names, resolver, true, settings);
    let distinct: BTreeSet<Fqdn> = zones
        .iter()
        .filter_map(|z| z.as_ref().ok())
        .cloned()
        .collect();
    let ns_names = name_servers_of(&distinct, resolver, settings, &mut stats);
    let hosts: BTreeSet<Fqdn> = ns_names.values().flatten().cloned().collect();
    let addresses = addresses_of(&hosts, resolver, port, settings, &mut stats);

    let mut found = BTreeMap::new();
    for (name, zone) in names.iter().zip(zones) {
        let result = zone.and_then(|zone| authority(zone, &ns_names, &addresses, resolver));
        found.insert(name.clone(), result);
    }
    (found, stats)
}

/// A recursive question to `resolver`.
fn recursive(resolver: SocketAddr, name: &Fqdn, qtype: QueryType) -> Question {
    Question {
        server: resolver,
        name: name.clone(),
        qtype,
        recursion_desired: true,
    }
}

/// The NS RRset of each zone (names sorted, each once; empty when it could not be read).
fn name_servers_of(
    zones: &BTreeSet<Fqdn>,
    resolver: SocketAddr,
    settings: &BatchSettings,
    stats: &mut BatchStats,
) -> BTreeMap<Fqdn, Vec<Fqdn>> {
    let questions: Vec<Question> = zones
        .iter()
        .map(|z| recursive(resolver, z, QueryType::Ns))
        .collect();
    let (replies, ns_stats) = batch::resolve_all(&questions, settings, &mut |_| {});
    stats.add(&ns_stats);
    let mut ns_names: BTreeMap<Fqdn, Vec<Fqdn>> = BTreeMap::new();
    for (zone, reply) in zones.iter().zip(replies) {
        let names = reply
            .map(|r| {
                r.answers
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        RecordData::Ns(name) if &rec.name == zone => Some(name.clone()),
                        _ => None,
                    })
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default();
        ns_names.insert(zone.clone(), names.into_iter().collect());
    }
    ns_names
}

/// The A and AAAA addresses of each host, on `port`.
fn addresses_of(
    hosts: &BTreeSet<Fqdn>,
    resolver: SocketAddr,
    port: u16,
    settings: &BatchSettings,
    stats: &mut BatchStats,
) -> BTreeMap<Fqdn, Vec<SocketAddr>> {
    let questions: Vec<Question> = hosts
        .iter()
        .flat_map(|h| {
            [
                recursive(resolver, h, QueryType::A),
                recursive(resolver, h, QueryType::Aaaa),
            ]
        })
        .collect();
    let (replies, address_stats) = batch::resolve_all(&questions, settings, &mut |_| {});
    stats.add(&address_stats);
    let mut addresses: BTreeMap<Fqdn, Vec<SocketAddr>> = BTreeMap::new();
    for (question, reply) in questions.iter().zip(replies) {
        let Ok(reply) = reply else { continue };
        for record in &reply.answers {
            let ip: IpAddr = match &record.data {
                RecordData::Known(Rdata::A(ip)) => (*ip).into(),
                RecordData::Known(Rdata::Aaaa(ip)) => (*ip).into(),
                _ => continue,
            };
            addresses
                .entry(question.name.clone())
                .or_default()
                .push(SocketAddr::new(ip, port));
        }
    }
    addresses
}

/// The authority of `zone` from what was found: it needs name servers, and an address for
/// at least one of them.
fn authority(
    zone: Fqdn,
    ns_names: &BTreeMap<Fqdn, Vec<Fqdn>>,
    addresses: &BTreeMap<Fqdn, Vec<SocketAddr>>,
    resolver: SocketAddr,
) -> Result<Authority, AuthorityError> {
    let hosts = ns_names.get(&zone).cloned().unwrap_or_default();
    if hosts.is_empty() {
        return Err(AuthorityError::NoNameServers {
            server: resolver,
            zone,
        });
    }
    let name_servers: Vec<NameServer> = hosts
        .iter()
        .map(|h| NameServer {
            name: h.clone(),
            addresses: addresses.get(h).cloned().unwrap_or_default(),
        })
        .collect();
    if name_servers.iter().all(|ns| ns.addresses.is_empty()) {
        return Err(AuthorityError::NoAddresses {
            names: hosts
                .iter()
                .map(Fqdn::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            zone,
        });
    }
    Ok(Authority { zone, name_servers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_on_port_53() {
        let text = "# comment\nsearch example.com\nnameserver 192.0.2.53\nnameserver ::1\nnameserver fe80::1%eth0\noptions edns0\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
