//! Compares the desired state with what the provider holds, for managed names only. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plan::desired::DesiredState;
use crate::records::{Fqdn, RecordSet, RecordType, RrKey};

/// What the provider holds for the managed names of one zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneState {
    pub rrsets: BTreeMap<RrKey, RecordSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One RRset change, with the exact RRset it replaces (the compare-and-swap guard) and the
/// one it installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub zone: Fqdn,
    pub action: Action,
    pub name: Fqdn,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    pub before: Option<RecordSet>,
    pub after: Option<RecordSet>,
}

impl Change {
    pub fn key(&self) -> RrKey {
        RrKey::new(self.name.clone(), self.rtype)
    }

    /// Where the change goes in the plan. Within a zone: address records are created and
    /// updated first, then SRV records (so a new SRV target already resolves when it is
    /// published), then SRV deletes, then address deletes (so no SRV record is ever left
    /// pointing at a target without addresses). Every intermediate state still federates.
    fn phase(&self) -> u8 {
        let is_srv = self.rtype == RecordType::Srv;
        match (self.action, is_srv) {
            (Action::Create | Action::Update, false) => 0,
            (Action::Create | Action::Update, true) => 1,
            (Action::Delete, true) => 2,
            (Action::Delete, false) => 3,
        }
    }
}

/// Orders changes as described on [`Change::phase`], zone by zone.
pub fn order(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        (&a.zone, a.phase(), &a.name, a.rtype).cmp(&(&b.zone, b.phase(), &b.name, b.rtype))
    });
}

/// The changes that turn `current` into `desired`. Keys the topology does not manage are not
/// looked at, whatever `current` holds for them.
pub fn diff(desired: &DesiredState, current: &BTreeMap<Fqdn, ZoneState>) -> Vec<Change> {
    let empty = ZoneState::default();
    let mut changes = Vec::new();
    for (zone, want) in &desired.zones {
        let have = current.get(zone).unwrap_or(&empty);
        for key in &want.managed {
            let before = have.rrsets.get(key);
            let after = want.rrsets.get(key);
            let action = match (before, after) {
                (None, None) => continue,
                (None, Some(_)) => Action::Create,
                (Some(_), None) => Action::Delete,
                (Some(b), Some(a)) if b == a => continue,
                (Some(_), Some(_)) => Action::Update,
            };
            changes.push(Change {
                zone: zone.clone(),
                action,
                name: key.name.clone(),
                rtype: key.rtype,
                before: before.cloned(),
                after: after.cloned(),
            });
        }
    }
    order(&mut changes);
    changes
}

/// A CNAME at a name where the plan needs records (which it could never hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnameConflict {
    pub zone: Fqdn,
    pub name: Fqdn,
    /// The alias's target.
    pub target: String,
    /// The types the plan needs at `name`.
    pub wanted: Vec<RecordType>,
}

/// Every guarded name (see `ZoneDesired::guarded`) that holds a CNAME.
pub fn cname_conflicts(
    desired: &DesiredState,
    current: &BTreeMap<Fqdn, ZoneState>,
) -> Vec<CnameConflict> {
    let mut conflicts = Vec::new();
    for (zone, want) in &desired.zones {
        let Some(have) = current.get(zone) else {
            continue;
        };
        for key in &want.guarded {
            let Some(alias) = have.rrsets.get(key) else {
                continue;
            };
            let target = alias.records().iter().map(ToString::to_string).collect();
            conflicts.push(CnameConflict {
                zone: zone.clone(),
                name: key.name.clone(),
                target,
                wanted: want
                    .rrsets
                    .keys()
                    .filter(|k| k.name == key.name)
                    .map(|k| k.rtype)
                    .collect(),
            });
        }
    }
    conflicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::ZoneDesired;
    use crate::records::Rdata;

    fn name(s: &str) -> Fqdn {
        Fqdn::parse(s).unwrap()
    }

    fn a(owner: &str, ttl: u32, ips: &[&str]) -> RecordSet {
        RecordSet::new(
            name(owner),
            RecordType::A,
            ttl,
            ips.iter().map(|ip| Rdata::A(ip.parse().unwrap())).collect(),
        )
        .unwrap()
    }

    fn srv(owner: &str, targets: &[&str]) -> RecordSet {
        let records = targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Rdata::parse(RecordType::Srv, &format!("{} 0 5269 {t}.", (i + 1) * 10)).unwrap()
            })
            .collect();
        RecordSet::new(name(owner), RecordType::Srv, 3600, records).unwrap()
    }

    fn desired(zone: &str, managed: &[RrKey], sets: &[RecordSet]) -> DesiredState {
        let mut want = ZoneDesired::default();
        want.managed.extend(managed.iter().cloned());
        for set in sets {
            want.managed.insert(set.key());
            want.rrsets.insert(set.key(), set.clone());
        }
        DesiredState {
            zones: [(name(zone), want)].into(),
        }
    }

    fn current(zone: &str, sets: &[RecordSet]) -> BTreeMap<Fqdn, ZoneState> {
        let state = ZoneState {
            rrsets: sets.iter().map(|s| (s.key(), s.clone())).collect(),
        };
        [(name(zone), state)].into()
    }

    #[test]
    fn a_cname_where_records_are_wanted_is_a_conflict() {
        let federation = a("xmpp.contoso.com", 300, &["192.0.2.1"]);
        let mut want = desired("contoso.com", &[], std::slice::from_ref(&federation));
        let zone = want.zones.get_mut(&name("contoso.com")).unwrap();
        zone.guarded
            .insert(RrKey::new(name("xmpp.contoso.com"), RecordType::Cname));
        let alias = RecordSet::new(
            name("xmpp.contoso.com"),
            RecordType::Cname,
            300,
            vec![Rdata::Cname(name("lb.contoso.net"))],
        )
        .unwrap();
        assert!(cname_conflicts(&want, &current("contoso.com", &[federation])).is_empty());
        assert_eq!(
            cname_conflicts(&want, &current("contoso.com", &[alias])),
            [CnameConflict {
                zone: name("contoso.com"),
                name: name("xmpp.contoso.com"),
                target: "lb.contoso.net.".into(),
                wanted: vec![RecordType::A],
            }]
        );
    }

    #[test]
    fn create_update_delete_and_nothing() {
        let fed_aaaa = RrKey::new(name("xmpp.contoso.com"), RecordType::Aaaa);
        let old_aaaa = RecordSet::new(
            name("xmpp.contoso.com"),
            RecordType::Aaaa,
            300,
            vec![Rdata::Aaaa("2001:db8::1".parse().unwrap())],
        )
        .unwrap();
        let want = desired(
            "contoso.com",
            &[fed_aaaa],
            &[
                a("xmpp.contoso.com", 300, &["192.0.2.2"]),
                srv(
                    "_xmpp-server._tcp.contoso.com",
                    &["e1.contoso.com", "e2.contoso.com"],
                ),
                a("same.contoso.com", 300, &["192.0.2.9"]),
            ],
        );
        let have = current(
            "contoso.com",
            &[
                a("xmpp.contoso.com", 300, &["192.0.2.1"]),
                old_aaaa.clone(),
                a("same.contoso.com", 300, &["192.0.2.9"]),
            ],
        );
        let changes = diff(&want, &have);
        let summary: Vec<(Action, &str, RecordType)> = changes
            .iter()
            .map(|c| (c.action, c.name.as_str(), c.rtype))
            .collect();
        assert_eq!(
            summary,
            [
                (Action::Update, "xmpp.contoso.com.", RecordType::A),
                (
                    Action::Create,
                    "_xmpp-server._tcp.contoso.com.",
                    RecordType::Srv
                ),
                (Action::Delete, "xmpp.contoso.com.", RecordType::Aaaa),
            ]
        );
        assert_eq!(changes[2].before.as_ref(), Some(&old_aaaa));
        assert_eq!(changes[2].after, None);
        assert_eq!(
            changes[0].before.as_ref().unwrap().records()[0].to_string(),
            "192.0.2.1"
        );
    }

    #[test]
    fn ttl_alone_is_an_update() {
        let want = desired(
            "contoso.com",
            &[],
            &[a("xmpp.contoso.com", 300, &["192.0.2.1"])],
        );
        let have = current(
            "contoso.com",
            &[a("xmpp.contoso.com", 86400, &["192.0.2.1"])],
        );
        let changes = diff(&want, &have);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action, Action::Update);
    }

    #[test]
    fn unmanaged_names_are_hands_off() {
        let want = desired(
            "contoso.com",
            &[],
            &[a("xmpp.contoso.com", 300, &["192.0.2.1"])],
        );
        let have = current(
            "contoso.com",
            &[
                a("xmpp.contoso.com", 300, &["192.0.2.1"]),
                a("www.contoso.com", 300, &["192.0.2.80"]),
                srv("_xmpp-server._tcp.old.contoso.com", &["e9.contoso.com"]),
            ],
        );
        assert!(diff(&want, &have).is_empty());
    }

    #[test]
    fn deletes_come_after_creates_and_srv_after_addresses() {
        let managed = [
            RrKey::new(name("old.contoso.com"), RecordType::A),
            RrKey::new(name("_xmpp-server._tcp.b.contoso.com"), RecordType::Srv),
        ];
        let want = desired(
            "contoso.com",
            &managed,
            &[
                srv("_xmpp-server._tcp.contoso.com", &["new.contoso.com"]),
                a("new.contoso.com", 300, &["192.0.2.3"]),
            ],
        );
        let have = current(
            "contoso.com",
            &[
                a("old.contoso.com", 300, &["192.0.2.4"]),
                srv("_xmpp-server._tcp.b.contoso.com", &["old.contoso.com"]),
            ],
        );
        let order: Vec<(Action, RecordType)> = diff(&want, &have)
            .iter()
            .map(|c| (c.action, c.rtype))
            .collect();
        assert_eq!(
            order,
            [
                (Action::Create, RecordType::A),
                (Action::Create, RecordType::Srv),
                (Action::Delete, RecordType::Srv),
                (Action::Delete, RecordType::A),
            ]
        );
    }
}
