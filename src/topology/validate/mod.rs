//! Turns the raw schema into a [`Topology`], one validator per section, every problem recorded
//! with its JSON path. The sections run in a fixed order (zones, SIP domains, pools, the active
//! pool and SRV leader, nameservers, federation, TTLs, SRV and XEP-0368, provider): later ones
//! use what earlier ones built, and the order of the problem list is part of the interface.

mod api_url;
mod cloud;
mod domains;
mod federation;
mod nameservers;
mod pools;
mod provider;
mod rfc2136_auth;
mod srv;
mod zones;

use std::path::Path;

use super::raw::RawTopology;
use super::{Federation, Problem, Topology, DEFAULT_FEDERATION_TTL, DEFAULT_TTL, MAX_TTL};
use crate::records::{Fqdn, NameError};

pub use nameservers::server_address;

/// Validates everything it can, recording problems; returns a topology only when every part
/// it needs could be built (the caller still checks `problems`).
pub(super) fn validate(raw: RawTopology, path: &Path, problems: &mut Problems) -> Option<Topology> {
    let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let manage_targets = raw.manage_target_addresses;

    let zones = zones::validate(&raw.zones, problems);
    let sip_domains = domains::validate(&raw.sip_domains, &zones, problems);
    let pools = pools::validate(&raw.pools, &zones, manage_targets, problems);
    let (active, leader) = pools::select(&raw, problems);
    let nameservers = nameservers::validate(&raw.nameservers, problems);
    let federation =
        federation::validate(&raw.federation, &zones, &pools, manage_targets, problems);
    let ttl = problems.ttl("ttl", raw.ttl, DEFAULT_TTL);
    let federation_ttl = problems.ttl("federation.ttl", raw.federation.ttl, DEFAULT_FEDERATION_TTL);
    let srv = srv::validate(&raw.srv, raw.pools.len(), problems);
    let xmpps_port = srv::xmpps_port(&raw.xmpps, srv.port, problems);
    let provider = provider::validate(raw.provider, &zones, &base, problems);
    let rto_seconds = raw
        .rto_seconds
        .and_then(|r| problems.ranged("rto_seconds", r, 1, MAX_TTL))
        .map(|r| r as u32);

    let (federation_name, federation_zone) = federation?;
    Some(Topology {
        path: path.to_path_buf(),
        zones,
        sip_domains,
        active: active?,
        leader: leader?,
        nameservers,
        pools,
        federation: Federation {
            name: federation_name,
            zone: federation_zone,
            ttl: federation_ttl,
        },
        ttl,
        srv,
        manage_target_addresses: manage_targets,
        xmpps_port,
        provider,
        tls_ca_file: raw.tls.ca_file.map(|f| base.join(f)),
        rto_seconds,
    })
}

/// The problems found so far, in the order they were found.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            at: at.into(),
            message: message.into(),
        });
    }

    /// A DNS name, or a problem at `at`.
    fn name(&mut self, at: String, text: &str) -> Option<Fqdn> {
        match Fqdn::parse(text) {
            Ok(name) => Some(name),
            Err(NameError::IpLiteral(ip)) => {
                self.add(
                    at,
                    format!("`{ip}` is an IP address; a DNS name is required here (RFC 2782: SRV targets are host names with address records)"),
                );
                None
            }
            Err(e) => {
                self.add(at, e.to_string());
                None
            }
        }
    }

    fn ranged(&mut self, at: &str, value: u64, low: u64, high: u64) -> Option<u64> {
        if (low..=high).contains(&value) {
            Some(value)
        } else {
            self.add(
                at,
                format!("{value} is out of range (allowed: {low} to {high})"),
            );
            None
        }
    }

    /// A TTL when given (0 stands in when it is out of range), else `default`.
    fn ttl(&mut self, at: &str, value: Option<u64>, default: u32) -> u32 {
        value
            .map(|t| self.ranged(at, t, 0, MAX_TTL).unwrap_or(0) as u32)
            .unwrap_or(default)
    }
}
