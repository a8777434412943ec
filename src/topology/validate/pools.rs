//! `pools`, `active_pool` and `srv_leader`: the Edge pools (names, targets, addresses,
//! servers, preferences) and which of them the federation record and the SRV records lead to.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Problems;
use crate::records::Fqdn;
use crate::topology::raw::{RawPool, RawTopology};
use crate::topology::{same_pool_name, zone_of, Pool};

/// What earlier pools claimed: names (case-insensitively) and preferences, with the index of
/// the first pool that claimed each.
#[derive(Default)]
struct Claimed {
    names: HashMap<String, usize>,
    preferences: HashMap<u64, usize>,
}

/// Every pool whose target is a valid name, in the order written.
pub(super) fn validate(
    raw: &[RawPool],
    zones: &[Fqdn],
    manage_targets: bool,
    problems: &mut Problems,
) -> Vec<Pool> {
    let mut pools: Vec<Pool> = Vec::new();
    let mut claimed = Claimed::default();
    if raw.is_empty() {
        problems.add("pools", "no pools: describe at least one Edge pool");
    }
    for (i, rp) in raw.iter().enumerate() {
        let context = PoolContext {
            index: i,
            zones,
            manage_targets,
            earlier: &pools,
        };
        if let Some(pool) = context.validate(rp, &mut claimed, problems) {
            pools.push(pool);
        }
    }
    pools
}

/// One pool's place in the topology: what its checks compare it with.
struct PoolContext<'a> {
    index: usize,
    zones: &'a [Fqdn],
    manage_targets: bool,
    /// The valid pools before this one.
    earlier: &'a [Pool],
}

impl PoolContext<'_> {
    fn at(&self, field: &str) -> String {
        format!("pools[{}].{field}", self.index)
    }

    fn validate(
        &self,
        rp: &RawPool,
        claimed: &mut Claimed,
        problems: &mut Problems,
    ) -> Option<Pool> {
        let i = self.index;
        if rp.name.trim().is_empty() {
            problems.add(self.at("name"), "the pool name is empty");
        } else if let Some(first) = claimed.names.insert(rp.name.to_lowercase(), i) {
            problems.add(
                self.at("name"),
                format!("duplicate pool name `{}` (also pools[{first}])", rp.name),
            );
        }
        if rp.site.trim().is_empty() {
            problems.add(self.at("site"), "the site is empty");
        }
        let fqdn = self.target(&rp.fqdn, problems);
        let ipv4 = addresses(
            &rp.ipv4,
            &format!("pools[{i}].ipv4"),
            "IPv4",
            problems,
            |ip| match ip {
                IpAddr::V4(ip) => Ok(ip),
                IpAddr::V6(_) => Err("is an IPv6 address; put it under `ipv6`"),
            },
        );
        let ipv6 = addresses(
            &rp.ipv6,
            &format!("pools[{i}].ipv6"),
            "IPv6",
            problems,
            |ip| match ip {
                IpAddr::V6(ip) => Ok(ip),
                IpAddr::V4(_) => Err("is an IPv4 address; put it under `ipv4`"),
            },
        );
        if rp.ipv4.is_empty() && rp.ipv6.is_empty() && self.manage_targets {
            problems.add(
                self.at("ipv4"),
                "the pool has no addresses, so its SRV target would have no A/AAAA records",
            );
        }
        let mut servers = Vec::new();
        for (j, text) in rp.servers.iter().enumerate() {
            if let Some(server) = problems.name(format!("pools[{i}].servers[{j}]"), text) {
                servers.push(server);
            }
        }
        let preference = self.preference(rp.preference, claimed, problems);
        Some(Pool {
            name: rp.name.clone(),
            site: rp.site.clone(),
            fqdn: fqdn?,
            ipv4,
            ipv6,
            servers,
            preference,
            placeholder: rp.placeholder,
            sip_tls_port: rp
                .sip_tls_port
                .map(|p| problems.ranged(&self.at("sip_tls_port"), p, 1, 65_535))
                .unwrap_or(Some(u64::from(crate::topology::SIP_TLS_PORT)))
                .map_or(crate::topology::SIP_TLS_PORT, |p| p as u16),
        })
    }

    /// The SRV target: a name no earlier pool uses, inside a managed zone when the tool
    /// manages the target's addresses.
    fn target(&self, text: &str, problems: &mut Problems) -> Option<Fqdn> {
        let fqdn = problems.name(self.at("fqdn"), text)?;
        if let Some(other) = self.earlier.iter().find(|p| p.fqdn == fqdn) {
            problems.add(
                self.at("fqdn"),
                format!(
                    "target `{fqdn}` is also the target of pool `{}`",
                    other.name
                ),
            );
        }
        if self.manage_targets && zone_of(self.zones, &fqdn).is_none() {
            problems.add(
                self.at("fqdn"),
                format!(
                    "`manage_target_addresses` is on but `{fqdn}` is outside every managed zone"
                ),
            );
        }
        Some(fqdn)
    }

    fn preference(
        &self,
        value: Option<u64>,
        claimed: &mut Claimed,
        problems: &mut Problems,
    ) -> u32 {
        match value {
            Some(value) => {
                if let Some(first) = claimed.preferences.insert(value, self.index) {
                    problems.add(
                        self.at("preference"),
                        format!("duplicate preference {value} (also pools[{first}]): give each pool its own"),
                    );
                }
                problems
                    .ranged(&self.at("preference"), value, 0, 65535)
                    .unwrap_or(0) as u32
            }
            // Unnumbered pools follow numbered ones, in the order they are written.
            None => 65536 + self.index as u32,
        }
    }
}

/// The addresses of one `family` (`keep` takes them or says why not), each problem at
/// `<at>[j]`.
fn addresses<T>(
    texts: &[String],
    at: &str,
    family: &str,
    problems: &mut Problems,
    keep: impl Fn(IpAddr) -> Result<T, &'static str>,
) -> Vec<T> {
    let mut kept = Vec::new();
    for (j, text) in texts.iter().enumerate() {
        match text.trim().parse::<IpAddr>() {
            Ok(ip) => match keep(ip) {
                Ok(ip) => kept.push(ip),
                Err(why) => problems.add(format!("{at}[{j}]"), format!("`{text}` {why}")),
            },
            Err(_) => problems.add(
                format!("{at}[{j}]"),
                format!("`{text}` is not an {family} address"),
            ),
        }
    }
    kept
}

/// `active_pool` and `srv_leader`, as indexes into the raw pools (every pool written counts,
/// even one with an invalid target). The active pool needs addresses for the federation record.
pub(super) fn select(raw: &RawTopology, problems: &mut Problems) -> (Option<usize>, Option<usize>) {
    let active = raw
        .pools
        .iter()
        .position(|p| same_pool_name(&p.name, &raw.active_pool));
    if active.is_none() && !raw.pools.is_empty() {
        let known: Vec<&str> = raw.pools.iter().map(|p| p.name.as_str()).collect();
        problems.add(
            "active_pool",
            format!(
                "unknown active pool `{}`; the pools are: {}",
                raw.active_pool,
                known.join(", ")
            ),
        );
    }
    if let Some(index) = active {
        let pool = &raw.pools[index];
        if pool.ipv4.is_empty() && pool.ipv6.is_empty() {
            problems.add(
                format!("pools[{index}].ipv4"),
                format!(
                    "the active pool `{}` has no addresses for the federation A record",
                    pool.name
                ),
            );
        }
    }
    let leader = match &raw.srv_leader {
        None => active,
        Some(name) => {
            let index = raw.pools.iter().position(|p| same_pool_name(&p.name, name));
            if index.is_none() {
                problems.add("srv_leader", format!("unknown pool `{name}`"));
            }
            index
        }
    };
    (active, leader)
}
