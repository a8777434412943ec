//! The desired state: which RRsets the topology manages and what they should hold. Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::records::{Fqdn, Rdata, RecordSet, RecordType, RrKey, Srv};
use crate::topology::{Pool, Topology};

/// Owner-name prefix of the XMPP server-to-server SRV record (RFC 6120 §3.2.1).
pub const XMPP_SERVER_SRV: &str = "_xmpp-server._tcp";
/// Owner-name prefix of the direct-TLS variant (XEP-0368).
pub const XMPPS_SERVER_SRV: &str = "_xmpps-server._tcp";

/// What one zone should hold, limited to the names the topology manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneDesired {
    /// Every RRset the tool owns in this zone, including those that must be absent (e.g. the
    /// federation AAAA when the active pool has no IPv6 address). Nothing else is touched.
    pub managed: BTreeSet<RrKey>,
    /// The RRsets that must exist, keyed like `managed`.
    pub rrsets: BTreeMap<RrKey, RecordSet>,
    /// A CNAME key at each name that must hold records: read, never written. A name with a
    /// CNAME holds nothing else (RFC 1034 §3.6.2), and servers such as BIND silently ignore an
    /// update that adds to one, so the plan refuses it (see `diff::cname_conflicts`).
    pub guarded: BTreeSet<RrKey>,
}

impl ZoneDesired {
    fn want(&mut self, set: RecordSet) {
        let key = set.key();
        self.managed.insert(key.clone());
        if !set.is_empty() {
            self.guarded
                .insert(RrKey::new(set.name.clone(), RecordType::Cname));
            self.rrsets.insert(key, set);
        }
    }

    /// What to read of the zone: the managed keys and the guarding CNAME keys.
    pub fn keys_to_read(&self) -> BTreeSet<RrKey> {
        self.managed.union(&self.guarded).cloned().collect()
    }
}

/// The desired state of every managed zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub zones: BTreeMap<Fqdn, ZoneDesired>,
}

impl DesiredState {
    fn zone(&mut self, zone: &Fqdn) -> &mut ZoneDesired {
        self.zones.entry(zone.clone()).or_default()
    }
}

/// The SRV priority of the pool at `rank` (0 = the active pool): step, 2×step, ...
/// Validation guarantees the largest fits in 16 bits.
pub fn priority_for_rank(step: u16, rank: usize) -> u16 {
    let priority = u32::from(step) * (rank as u32 + 1);
    u16::try_from(priority).unwrap_or(u16::MAX)
}

/// The SRV records of every pool, lowest priority number (most preferred) first.
pub fn srv_records(topology: &Topology, port: u16) -> Vec<Rdata> {
    topology
        .pools_by_preference()
        .iter()
        .enumerate()
        .map(|(rank, pool)| {
            Rdata::Srv(Srv {
                priority: priority_for_rank(topology.srv.priority_step, rank),
                weight: topology.srv.weight,
                port,
                target: pool.fqdn.clone(),
            })
        })
        .collect()
}

fn address_sets(name: &Fqdn, ttl: u32, pool: Option<&Pool>) -> [RecordSet; 2] {
    let v4 = pool
        .map(|p| p.ipv4.iter().copied().map(Rdata::A).collect())
        .unwrap_or_default();
    let v6 = pool
        .map(|p| p.ipv6.iter().copied().map(Rdata::Aaaa).collect())
        .unwrap_or_default();
    [
        RecordSet::new(name.clone(), RecordType::A, ttl, v4).expect("A data"),
        RecordSet::new(name.clone(), RecordType::Aaaa, ttl, v6).expect("AAAA data"),
    ]
}

/// Builds the desired state: per SIP domain one SRV RRset holding every pool, the federation
/// A/AAAA pointing to the active pool, and optionally the targets' own address records.
pub fn desired(topology: &Topology) -> DesiredState {
    let mut state = DesiredState::default();
    for zone in &topology.zones {
        state.zone(zone);
    }

    let srv = srv_records(topology, topology.srv.port);
    let xmpps = topology.xmpps_port.map(|port| srv_records(topology, port));
    for domain in &topology.sip_domains {
        let zone = state.zone(&domain.zone);
        let owner = domain.name.prepend(XMPP_SERVER_SRV);
        zone.want(
            RecordSet::new(owner, RecordType::Srv, topology.ttl, srv.clone()).expect("SRV data"),
        );
        // When not published, `_xmpps-server` is left alone (hands-off): a record someone
        // else manages is never deleted just because this topology does not mention it.
        if let Some(records) = &xmpps {
            let owner = domain.name.prepend(XMPPS_SERVER_SRV);
            zone.want(
                RecordSet::new(owner, RecordType::Srv, topology.ttl, records.clone())
                    .expect("SRV data"),
            );
        }
    }

    let federation = &topology.federation;
    let zone = state.zone(&federation.zone);
    for set in address_sets(
        &federation.name,
        federation.ttl,
        Some(topology.active_pool()),
    ) {
        zone.want(set);
    }

    if topology.manage_target_addresses {
        for pool in &topology.pools {
            let zone_name = topology
                .zone_of(&pool.fqdn)
                .expect("validated: managed targets lie in managed zones")
                .clone();
            let zone = state.zone(&zone_name);
            for set in address_sets(&pool.fqdn, topology.ttl, Some(pool)) {
                zone.want(set);
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn topology(value: serde_json::Value) -> Topology {
        Topology::from_json(&value.to_string(), Path::new("t.json")).unwrap()
    }

    fn contoso_json() -> serde_json::Value {
        json!({
            "zones": ["contoso.com", "fabrikam.com"],
            "sip_domains": ["contoso.com", "fabrikam.com", "sip.fabrikam.com"],
            "active_pool": "EdgePool2",
            "federation": {"name": "xmpp.contoso.com", "ttl": 60},
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
                 "ipv4": ["192.0.2.10", "192.0.2.11"]},
                {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com",
                 "ipv4": ["198.51.100.20"], "ipv6": ["2001:db8::20"]},
                {"name": "EdgePool3", "site": "Site3", "fqdn": "edgepool3.contoso.com",
                 "ipv4": ["203.0.113.30"]}
            ]
        })
    }

    fn key(name: &str, rtype: RecordType) -> RrKey {
        RrKey::new(Fqdn::parse(name).unwrap(), rtype)
    }

    #[test]
    fn active_pool_leads_and_priorities_are_distinct() {
        let state = desired(&topology(contoso_json()));
        let contoso = &state.zones[&Fqdn::parse("contoso.com").unwrap()];
        let srv = &contoso.rrsets[&key("_xmpp-server._tcp.contoso.com", RecordType::Srv)];
        let lines: Vec<String> = srv.records().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "10 0 5269 edgepool2.contoso.com.",
                "20 0 5269 edgepool1.contoso.com.",
                "30 0 5269 edgepool3.contoso.com."
            ]
        );
        assert_eq!(srv.ttl, 3600);
    }

    #[test]
    fn every_domain_gets_its_srv_in_its_own_zone() {
        let state = desired(&topology(contoso_json()));
        let fabrikam = &state.zones[&Fqdn::parse("fabrikam.com").unwrap()];
        assert!(fabrikam
            .rrsets
            .contains_key(&key("_xmpp-server._tcp.fabrikam.com", RecordType::Srv)));
        assert!(fabrikam
            .rrsets
            .contains_key(&key("_xmpp-server._tcp.sip.fabrikam.com", RecordType::Srv)));
        assert_eq!(fabrikam.rrsets.len(), 2);
    }

    #[test]
    fn federation_points_at_the_active_pool_with_ipv6() {
        let state = desired(&topology(contoso_json()));
        let contoso = &state.zones[&Fqdn::parse("contoso.com").unwrap()];
        let a = &contoso.rrsets[&key("xmpp.contoso.com", RecordType::A)];
        assert_eq!(a.ttl, 60);
        assert_eq!(a.records()[0].to_string(), "198.51.100.20");
        let aaaa = &contoso.rrsets[&key("xmpp.contoso.com", RecordType::Aaaa)];
        assert_eq!(aaaa.records()[0].to_string(), "2001:db8::20");
    }

    #[test]
    fn missing_ipv6_means_a_managed_but_absent_aaaa() {
        let mut value = contoso_json();
        value["active_pool"] = json!("EdgePool1");
        let state = desired(&topology(value));
        let contoso = &state.zones[&Fqdn::parse("contoso.com").unwrap()];
        let aaaa = key("xmpp.contoso.com", RecordType::Aaaa);
        assert!(contoso.managed.contains(&aaaa));
        assert!(!contoso.rrsets.contains_key(&aaaa));
        assert_eq!(
            contoso.rrsets[&key("xmpp.contoso.com", RecordType::A)]
                .records()
                .len(),
            2
        );
    }

    #[test]
    fn target_addresses_and_xmpps_only_when_asked() {
        let state = desired(&topology(contoso_json()));
        let contoso = &state.zones[&Fqdn::parse("contoso.com").unwrap()];
        assert!(!contoso
            .managed
            .contains(&key("edgepool1.contoso.com", RecordType::A)));
        assert!(!contoso
            .managed
            .contains(&key("_xmpps-server._tcp.contoso.com", RecordType::Srv)));

        let mut value = contoso_json();
        value["manage_target_addresses"] = json!(true);
        value["xmpps"] = json!({"publish": true, "port": 5270});
        let state = desired(&topology(value));
        let contoso = &state.zones[&Fqdn::parse("contoso.com").unwrap()];
        assert_eq!(
            contoso.rrsets[&key("edgepool3.contoso.com", RecordType::A)].records()[0].to_string(),
            "203.0.113.30"
        );
        let xmpps = &contoso.rrsets[&key("_xmpps-server._tcp.contoso.com", RecordType::Srv)];
        assert!(xmpps.srv_records().all(|s| s.port == 5270));
    }

    #[test]
    fn every_name_that_must_hold_records_is_guarded_against_a_cname() {
        let mut value = contoso_json();
        value["manage_target_addresses"] = json!(true);
        let state = desired(&topology(value));
        let contoso = &state.zones[&Fqdn::parse("contoso.com").unwrap()];
        let guarded: Vec<String> = contoso.guarded.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            guarded,
            [
                "_xmpp-server._tcp.contoso.com. CNAME",
                "edgepool1.contoso.com. CNAME",
                "edgepool2.contoso.com. CNAME",
                "edgepool3.contoso.com. CNAME",
                "xmpp.contoso.com. CNAME",
            ]
        );
        assert!(contoso.managed.iter().all(|k| k.rtype != RecordType::Cname));
        assert!(contoso.keys_to_read().is_superset(&contoso.guarded));
    }

    #[test]
    fn custom_step_weight_and_port() {
        let mut value = contoso_json();
        value["srv"] = json!({"priority_step": 5, "weight": 7, "port": 5299});
        let state = desired(&topology(value));
        let contoso = &state.zones[&Fqdn::parse("contoso.com").unwrap()];
        let srv = &contoso.rrsets[&key("_xmpp-server._tcp.contoso.com", RecordType::Srv)];
        let prios: Vec<(u16, u16, u16)> = srv
            .srv_records()
            .map(|s| (s.priority, s.weight, s.port))
            .collect();
        assert_eq!(prios, [(5, 7, 5299), (10, 7, 5299), (15, 7, 5299)]);
    }
}
