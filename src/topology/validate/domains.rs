//! `sip_domains`: the domains that federate, each once and inside a managed zone.

use std::collections::HashSet;

use super::Problems;
use crate::records::Fqdn;
use crate::topology::{zone_of, SipDomain};

/// The longest owner built from a SIP domain: `_xmpps-server._tcp.` is one octet longer than
/// `_xmpp-server._tcp.`, and may be published later, so domains leave room for it.
const LONGEST_OWNER_PREFIX: &str = "_xmpps-server._tcp.";

/// The most octets a name takes on the wire (RFC 1035 §2.3.4).
const MAX_WIRE_NAME: usize = 255;

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
        // A name's wire form is its text (with the final dot) plus one length octet up front.
        let owner_octets = LONGEST_OWNER_PREFIX.len() + name.as_str().len() + 1;
        if owner_octets > MAX_WIRE_NAME {
            problems.add(
                at,
                format!(
                    "SIP domain `{name}` is too long for its SRV owner: `{LONGEST_OWNER_PREFIX}{name}` would take {owner_octets} octets, over DNS's {MAX_WIRE_NAME}"
                ),
            );
            continue;
        }
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
