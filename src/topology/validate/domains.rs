//! `sip_domains`: the domains that federate, each once and inside a managed zone.

use std::collections::HashSet;

use super::Problems;
use crate::records::Fqdn;
use crate::topology::{zone_of, SipDomain};

pub(super) fn validate(raw: &[String], zones: &[Fqdn], problems: &mut Problems) -> Vec<SipDomain> {
    let mut sip_domains: Vec<SipDomain> = Vec::new();
    if raw.is_empty() {
        problems.add(
            "sip_domains",
            "no SIP domains: list the domains that federate over XMPP",
        );
    }
    // A set, not a scan of `sip_domains`: hosting providers list tens of thousands.
    let mut domains_seen = HashSet::new();
    for (i, text) in raw.iter().enumerate() {
        let at = format!("sip_domains[{i}]");
        let Some(name) = problems.name(at.clone(), text) else {
            continue;
        };
        if !domains_seen.insert(name.clone()) {
            problems.add(at, format!("SIP domain `{name}` is listed twice"));
            continue;
        }
        match zone_of(zones, &name) {
            Some(zone) => sip_domains.push(SipDomain {
                zone: zone.clone(),
                name,
            }),
            None => problems.add(
                at,
                format!(
                    "SIP domain `{name}` is outside every managed zone; add its zone to `zones`"
                ),
            ),
        }
    }
    sip_domains
}
