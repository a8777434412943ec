//! `federation.name`: the federation A/AAAA record's owner, inside a managed zone and not a
//! pool's SRV target whose addresses the tool manages. (Its TTL is checked with the others.)

use super::Problems;
use crate::records::Fqdn;
use crate::topology::raw::RawFederation;
use crate::topology::{zone_of, Pool};

/// The record's name and its zone, when both are known.
pub(super) fn validate(
    raw: &RawFederation,
    zones: &[Fqdn],
    pools: &[Pool],
    manage_targets: bool,
    problems: &mut Problems,
) -> Option<(Fqdn, Fqdn)> {
    let name = problems.name("federation.name".into(), &raw.name)?;
    let zone = zone_of(zones, &name).cloned();
    if zone.is_none() {
        problems.add(
            "federation.name",
            format!("the federation record `{name}` is outside every managed zone"),
        );
    }
    if manage_targets {
        if let Some(pool) = pools.iter().find(|p| p.fqdn == name) {
            problems.add(
                "federation.name",
                format!("`{name}` is also the SRV target of pool `{}`, whose addresses the tool manages; use a separate name", pool.name),
            );
        }
    }
    Some((name, zone?))
}
