//! Refuses plans that would break federation, however small the plan is.
//!
//! Percentage thresholds (octoDNS style) miss the dangerous case here: one change that drops
//! the only SRV record of a domain is 100% of nothing. So the checks are about meaning.

use std::collections::BTreeSet;

use crate::plan::diff::{Action, Change};
use crate::records::{Fqdn, RecordType};
use crate::topology::Topology;

/// Why a plan is unsafe; `--force` overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hazard {
    pub name: Fqdn,
    pub message: String,
}

/// Every hazard in `changes`, judged against the pools `topology` still has.
pub fn check(changes: &[Change], topology: &Topology) -> Vec<Hazard> {
    let pool_targets: BTreeSet<&Fqdn> = topology.pools.iter().map(|p| &p.fqdn).collect();
    let mut hazards = Vec::new();
    for change in changes {
        match change.rtype {
            RecordType::Srv => {
                let before = change.before.iter().flat_map(|s| s.srv_records());
                let after: BTreeSet<&Fqdn> = change
                    .after
                    .iter()
                    .flat_map(|s| s.srv_records())
                    .map(|s| &s.target)
                    .collect();
                for srv in before {
                    if pool_targets.contains(&srv.target) && !after.contains(&srv.target) {
                        hazards.push(Hazard {
                            name: change.name.clone(),
                            message: format!(
                                "removes the SRV record of pool target {} although the pool is still in the topology",
                                srv.target
                            ),
                        });
                    }
                }
                if change.action == Action::Delete || after.is_empty() {
                    hazards.push(Hazard {
                        name: change.name.clone(),
                        message: "removes every SRV record of the domain: remote servers would fall back to the domain's A record".into(),
                    });
                }
            }
            RecordType::A | RecordType::Aaaa => {
                let fed = &topology.federation.name;
                let other = if change.rtype == RecordType::A {
                    RecordType::Aaaa
                } else {
                    RecordType::A
                };
                let sibling_kept = changes
                    .iter()
                    .find(|c| &c.name == fed && c.rtype == other)
                    .map(|c| c.after.is_some())
                    // No change to the sibling: it stays as it is, and exists if the pool has
                    // addresses of that family.
                    .unwrap_or(true);
                if &change.name == fed && change.action == Action::Delete && !sibling_kept {
                    hazards.push(Hazard {
                        name: change.name.clone(),
                        message: "removes every address of the federation record".into(),
                    });
                }
            }
            RecordType::Cname => {}
        }
    }
    hazards
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Rdata, RecordSet};
    use std::path::Path;

    fn topology() -> Topology {
        let json = serde_json::json!({
            "zones": ["contoso.com"],
            "sip_domains": ["contoso.com"],
            "active_pool": "EdgePool1",
            "federation": {"name": "xmpp.contoso.com"},
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "e1.contoso.com", "ipv4": ["192.0.2.1"]},
                {"name": "EdgePool2", "site": "Site2", "fqdn": "e2.contoso.com", "ipv4": ["192.0.2.2"]}
            ]
        });
        Topology::from_json(&json.to_string(), Path::new("t.json")).unwrap()
    }

    fn srv(targets: &[&str]) -> RecordSet {
        let records = targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Rdata::parse(RecordType::Srv, &format!("{} 0 5269 {t}", i * 10 + 10)).unwrap()
            })
            .collect();
        RecordSet::new(
            Fqdn::parse("_xmpp-server._tcp.contoso.com").unwrap(),
            RecordType::Srv,
            3600,
            records,
        )
        .unwrap()
    }

    fn change(action: Action, before: Option<RecordSet>, after: Option<RecordSet>) -> Change {
        let set = before.as_ref().or(after.as_ref()).unwrap();
        Change {
            zone: Fqdn::parse("contoso.com").unwrap(),
            action,
            name: set.name.clone(),
            rtype: set.rtype,
            before,
            after,
        }
    }

    #[test]
    fn dropping_a_live_pool_is_refused() {
        let c = change(
            Action::Update,
            Some(srv(&["e1.contoso.com.", "e2.contoso.com."])),
            Some(srv(&["e1.contoso.com."])),
        );
        let hazards = check(&[c], &topology());
        assert_eq!(hazards.len(), 1);
        assert!(hazards[0].message.contains("e2.contoso.com."));
    }

    #[test]
    fn dropping_a_decommissioned_target_is_fine() {
        let c = change(
            Action::Update,
            Some(srv(&["e1.contoso.com.", "old.contoso.com."])),
            Some(srv(&["e1.contoso.com.", "e2.contoso.com."])),
        );
        assert!(check(&[c], &topology()).is_empty());
    }

    #[test]
    fn deleting_every_srv_record_is_refused_even_alone() {
        let c = change(Action::Delete, Some(srv(&["old.contoso.com."])), None);
        let hazards = check(&[c], &topology());
        assert!(hazards[0].message.contains("every SRV record"));
    }

    #[test]
    fn deleting_the_federation_a_without_aaaa_is_refused() {
        let a = RecordSet::new(
            Fqdn::parse("xmpp.contoso.com").unwrap(),
            RecordType::A,
            300,
            vec![Rdata::A("192.0.2.1".parse().unwrap())],
        )
        .unwrap();
        let aaaa = RecordSet::new(
            a.name.clone(),
            RecordType::Aaaa,
            300,
            vec![Rdata::Aaaa("2001:db8::1".parse().unwrap())],
        )
        .unwrap();
        let del_a = change(Action::Delete, Some(a), None);
        assert!(check(std::slice::from_ref(&del_a), &topology()).is_empty());
        let del_aaaa = change(Action::Delete, Some(aaaa), None);
        assert_eq!(check(&[del_a, del_aaaa], &topology()).len(), 2);
    }
}
