//! The input model: what the user has (zones, SIP domains, Edge pools, provider), parsed from
//! JSON and validated with every problem reported at once, each with its JSON path.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::records::{Fqdn, NameError};

/// Default TTL of every record the tool writes, unless overridden.
pub const DEFAULT_TTL: u32 = 3600;
/// A short TTL on the federation A record is what makes a failover quick.
pub const DEFAULT_FEDERATION_TTL: u32 = 300;
/// The XMPP server-to-server port that Lync / Skype for Business Edge servers listen on.
pub const XMPP_SERVER_PORT: u16 = 5269;
pub const DEFAULT_PRIORITY_STEP: u16 = 10;
/// RFC 2181 §8: TTLs are 31-bit values.
const MAX_TTL: u64 = 2_147_483_647;

/// A validated topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The file it was read from (relative paths in it are relative to its folder).
    pub path: PathBuf,
    pub zones: Vec<Fqdn>,
    pub sip_domains: Vec<SipDomain>,
    /// Pools in the order they were written; see [`Topology::pools_by_preference`].
    pub pools: Vec<Pool>,
    /// Index into `pools`: the pool the federation A/AAAA record points to.
    pub active: usize,
    /// Index into `pools`: the pool whose SRV record has the lowest priority number. The active
    /// pool unless `srv_leader` says otherwise (failover `--no-promote` keeps the old leader).
    pub leader: usize,
    /// The authoritative servers to check after a change (`nameservers`); empty = find them
    /// through the zone's NS RRset.
    pub nameservers: Vec<SocketAddr>,
    pub federation: Federation,
    pub ttl: u32,
    pub srv: SrvSettings,
    pub manage_target_addresses: bool,
    /// Port for `_xmpps-server._tcp` (XEP-0368), when it is published.
    pub xmpps_port: Option<u16>,
    pub provider: ProviderConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipDomain {
    pub name: Fqdn,
    /// The managed zone the domain's SRV record lives in (the longest one that holds it).
    pub zone: Fqdn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub site: String,
    /// The access-edge external FQDN: the SRV target.
    pub fqdn: Fqdn,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    /// Edge servers of the pool, for the runbook.
    pub servers: Vec<Fqdn>,
    /// Lower is preferred among standby pools.
    pub preference: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    /// The federation A (and AAAA) record's owner, e.g. `xmpp.contoso.com.`.
    pub name: Fqdn,
    pub zone: Fqdn,
    pub ttl: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrvSettings {
    pub port: u16,
    pub weight: u16,
    pub priority_step: u16,
}

/// Where the records live and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderConfig {
    /// BIND-format zone files, one per zone.
    ZoneFile { files: BTreeMap<Fqdn, PathBuf> },
    /// RFC 2136 dynamic updates (TSIG-signed) to a primary server.
    Rfc2136(Rfc2136Config),
    /// The PowerDNS Authoritative HTTP API.
    PowerDns(PowerDnsConfig),
}

/// Where a TSIG key comes from. The secret itself never sits in the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A BIND key file (`tsig-keygen` / `xmppdns keygen` output).
    File(PathBuf),
    /// An environment variable holding `ALGORITHM:NAME:BASE64SECRET`.
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc2136Config {
    /// The primary that takes updates.
    pub server: SocketAddr,
    pub key: Option<KeySource>,
    /// Where to read zones with AXFR, when not the update server (many setups separate them).
    pub transfer_server: Option<SocketAddr>,
    pub transfer_key: Option<KeySource>,
    pub timeout: Duration,
    pub attempts: u32,
}

/// Where the PowerDNS API key comes from. The key itself never sits in the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeySource {
    /// An environment variable holding the key (pdns.conf's `api-key`).
    Env(String),
    /// A file holding the key (surrounding whitespace, such as the final newline, is ignored).
    File(PathBuf),
}

/// Default PowerDNS server id: the only one a PowerDNS Authoritative server has.
pub const DEFAULT_POWERDNS_SERVER_ID: &str = "localhost";
/// Default bound on one PowerDNS API call, start to end (reading a large zone included).
pub const DEFAULT_POWERDNS_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerDnsConfig {
    /// The webserver's base URL, `http(s)://HOST:PORT[/prefix]`, without a trailing slash or
    /// `/api/v1` (the provider appends that).
    pub api_url: String,
    /// The `{server_id}` of `/api/v1/servers/{server_id}/...`.
    pub server_id: String,
    pub api_key: ApiKeySource,
    /// Bound on each API call.
    pub timeout: Duration,
    /// Ask PowerDNS to send NOTIFY to the zone's secondaries after each apply.
    pub notify: bool,
}

impl ProviderConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::ZoneFile { .. } => "zonefile",
            ProviderConfig::Rfc2136(_) => "rfc2136",
            ProviderConfig::PowerDns(_) => "powerdns",
        }
    }
}

impl Topology {
    pub fn active_pool(&self) -> &Pool {
        &self.pools[self.active]
    }

    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name == name)
    }

    /// Pools in SRV priority order: the leader (normally the active pool) first, then the
    /// others by preference (ties impossible: validation rejects duplicate preferences).
    pub fn pools_by_preference(&self) -> Vec<&Pool> {
        let mut standby: Vec<&Pool> = self
            .pools
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.leader)
            .map(|(_, p)| p)
            .collect();
        standby.sort_by_key(|p| p.preference);
        let mut ordered = Vec::with_capacity(self.pools.len());
        ordered.push(&self.pools[self.leader]);
        ordered.extend(standby);
        ordered
    }

    /// The longest managed zone that holds `name`.
    pub fn zone_of(&self, name: &Fqdn) -> Option<&Fqdn> {
        zone_of(&self.zones, name)
    }

    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Topology::from_json(&text, path)
    }

    /// Parses and validates topology JSON; `path` names the file in messages and anchors the
    /// relative paths inside it.
    pub fn from_json(text: &str, path: &Path) -> Result<Topology, TopologyError> {
        let raw: RawTopology = serde_json::from_str(text).map_err(|e| TopologyError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        let mut problems = Problems::default();
        let topology = validate(raw, path, &mut problems);
        if problems.0.is_empty() {
            Ok(topology.expect("a topology without problems is complete"))
        } else {
            Err(TopologyError::Invalid {
                path: path.to_path_buf(),
                problems: problems.0,
            })
        }
    }
}

fn zone_of<'a>(zones: &'a [Fqdn], name: &Fqdn) -> Option<&'a Fqdn> {
    zones
        .iter()
        .filter(|zone| name.is_within(zone))
        .max_by_key(|zone| zone.as_str().len())
}

/// serde_json appends " at line L column C" to its messages; we report those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// One thing wrong with a topology, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path, e.g. `pools[1].fqdn`.
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: malformed topology JSON: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{} has {} problem(s):\n{}", path.display(), problems.len(), list(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            at: at.into(),
            message: message.into(),
        });
    }

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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    zones: Vec<String>,
    sip_domains: Vec<String>,
    pools: Vec<RawPool>,
    active_pool: String,
    federation: RawFederation,
    #[serde(default)]
    ttl: Option<u64>,
    #[serde(default)]
    srv: RawSrv,
    #[serde(default)]
    manage_target_addresses: bool,
    #[serde(default)]
    xmpps: RawXmpps,
    #[serde(default)]
    provider: Option<RawProvider>,
    #[serde(default)]
    srv_leader: Option<String>,
    #[serde(default)]
    nameservers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    name: String,
    site: String,
    fqdn: String,
    #[serde(default)]
    ipv4: Vec<String>,
    #[serde(default)]
    ipv6: Vec<String>,
    #[serde(default)]
    servers: Vec<String>,
    #[serde(default)]
    preference: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFederation {
    name: String,
    #[serde(default)]
    ttl: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSrv {
    port: Option<u64>,
    weight: Option<u64>,
    priority_step: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawXmpps {
    #[serde(default)]
    publish: bool,
    port: Option<u64>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawProvider {
    Zonefile {
        #[serde(default)]
        directory: Option<String>,
        #[serde(default)]
        files: BTreeMap<String, String>,
    },
    Rfc2136 {
        server: String,
        #[serde(default)]
        key_file: Option<String>,
        #[serde(default)]
        key_env: Option<String>,
        #[serde(default)]
        transfer_server: Option<String>,
        #[serde(default)]
        transfer_key_file: Option<String>,
        #[serde(default)]
        transfer_key_env: Option<String>,
        #[serde(default)]
        timeout_ms: Option<u64>,
        #[serde(default)]
        attempts: Option<u64>,
    },
    Powerdns {
        api_url: String,
        #[serde(default)]
        server_id: Option<String>,
        #[serde(default)]
        api_key_env: Option<String>,
        #[serde(default)]
        api_key_file: Option<String>,
        #[serde(default)]
        timeout_ms: Option<u64>,
        #[serde(default)]
        notify: bool,
    },
}

/// `ADDR` or `ADDR:PORT` (IPv6 as `[::1]:53`); port 53 by default.
fn parse_server(problems: &mut Problems, at: &str, text: &str) -> Option<SocketAddr> {
    match server_address(text) {
        Ok(addr) => Some(addr),
        Err(message) => {
            problems.add(at, message);
            None
        }
    }
}

/// A DNS server's address: `ADDR` (port 53) or `ADDR:PORT` (`[V6]:PORT` for IPv6).
pub fn server_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "`{text}` is not an address (ADDR or ADDR:PORT, e.g. 192.0.2.53:53)"
    ))
}

fn key_source(
    problems: &mut Problems,
    at: &str,
    base: &Path,
    file: Option<String>,
    env: Option<String>,
) -> Option<KeySource> {
    match (file, env) {
        (Some(_), Some(_)) => {
            problems.add(
                at,
                "give either a key file or a key environment variable, not both",
            );
            None
        }
        (Some(file), None) => Some(KeySource::File(base.join(file))),
        (None, Some(var)) => Some(KeySource::Env(var)),
        (None, None) => None,
    }
}

/// The PowerDNS webserver's base URL: http or https, a host, no credentials (the key goes in
/// a header, from `api_key_env` / `api_key_file`), no query; a trailing `/` or `/api/v1` is
/// dropped because the provider appends `/api/v1/...` itself.
///
/// Credentials are looked for first, before anything echoes the URL: any `@` is refused
/// without showing the text. Only looking in the authority part would miss a password holding
/// `/`, `?` or `#` (`http://admin:pa/ss@h` parses as host `admin`), and a base URL has no use
/// for `@` elsewhere (`%40` still works in a path).
fn parse_api_url(problems: &mut Problems, at: &str, text: &str) -> Option<String> {
    let text = text.trim();
    if text.contains('@') {
        // Not echoed, not even in part: whatever precedes the `@` may be a password.
        problems.add(
            at,
            "the URL holds `@`: credentials (`user@` or `user:password@`) are not allowed; give the API key with `api_key_env` or `api_key_file` instead (an `@` in a path must be written %40)",
        );
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        problems.add(
            at,
            format!("`{text}` is not an http:// or https:// URL (e.g. http://192.0.2.53:8081)"),
        );
        return None;
    }
    let after_scheme = &text[text.find("://").map_or(0, |i| i + 3)..];
    if after_scheme.is_empty() || after_scheme.starts_with('/') {
        problems.add(at, format!("`{text}` has no host"));
        return None;
    }
    let uri = match text.parse::<ureq::http::Uri>() {
        Ok(uri) => uri,
        Err(e) => {
            problems.add(at, format!("`{text}` is not a URL: {e}"));
            return None;
        }
    };
    let Some(authority) = uri.authority() else {
        problems.add(at, format!("`{text}` has no host"));
        return None;
    };
    let mut problem_found = false;
    if authority.host().is_empty() {
        problems.add(at, format!("`{text}` has no host"));
        problem_found = true;
    }
    let has_port = authority.as_str().contains(':') && !authority.as_str().ends_with(']');
    if has_port && authority.port_u16().is_none_or(|p| p == 0) {
        problems.add(
            at,
            format!("`{text}`: the port is not a number from 1 to 65535"),
        );
        problem_found = true;
    }
    if uri.query().is_some() || text.contains('#') {
        problems.add(
            at,
            format!("`{text}`: give the webserver's base URL, without `?` or `#` parts"),
        );
        problem_found = true;
    }
    if problem_found {
        return None;
    }
    let mut base = text.trim_end_matches('/').to_string();
    if base.to_ascii_lowercase().ends_with("/api/v1") {
        base.truncate(base.len() - "/api/v1".len());
    }
    Some(base.trim_end_matches('/').to_string())
}

/// Validates everything it can, recording problems; returns a topology only when every part
/// it needs could be built (the caller still checks `problems`).
fn validate(raw: RawTopology, path: &Path, problems: &mut Problems) -> Option<Topology> {
    let base = path.parent().unwrap_or(Path::new("")).to_path_buf();

    let mut zones = Vec::new();
    if raw.zones.is_empty() {
        problems.add("zones", "no zones: list the DNS zones the tool may write");
    }
    for (i, text) in raw.zones.iter().enumerate() {
        if let Some(zone) = problems.name(format!("zones[{i}]"), text) {
            if zones.contains(&zone) {
                problems.add(
                    format!("zones[{i}]"),
                    format!("zone `{zone}` is listed twice"),
                );
            } else {
                zones.push(zone);
            }
        }
    }

    let mut sip_domains: Vec<SipDomain> = Vec::new();
    if raw.sip_domains.is_empty() {
        problems.add(
            "sip_domains",
            "no SIP domains: list the domains that federate over XMPP",
        );
    }
    // A set, not a scan of `sip_domains`: hosting providers list tens of thousands.
    let mut domains_seen = std::collections::HashSet::new();
    for (i, text) in raw.sip_domains.iter().enumerate() {
        let at = format!("sip_domains[{i}]");
        let Some(name) = problems.name(at.clone(), text) else {
            continue;
        };
        if !domains_seen.insert(name.clone()) {
            problems.add(at, format!("SIP domain `{name}` is listed twice"));
            continue;
        }
        match zone_of(&zones, &name) {
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

    let manage_targets = raw.manage_target_addresses;
    let mut pools: Vec<Pool> = Vec::new();
    let mut names_seen: HashMap<String, usize> = HashMap::new();
    let mut preferences_seen: HashMap<u64, usize> = HashMap::new();
    if raw.pools.is_empty() {
        problems.add("pools", "no pools: describe at least one Edge pool");
    }
    for (i, rp) in raw.pools.iter().enumerate() {
        let at = |field: &str| format!("pools[{i}].{field}");
        if rp.name.trim().is_empty() {
            problems.add(at("name"), "the pool name is empty");
        } else if let Some(first) = names_seen.insert(rp.name.to_lowercase(), i) {
            problems.add(
                at("name"),
                format!("duplicate pool name `{}` (also pools[{first}])", rp.name),
            );
        }
        if rp.site.trim().is_empty() {
            problems.add(at("site"), "the site is empty");
        }
        let fqdn = problems.name(at("fqdn"), &rp.fqdn);
        if let Some(fqdn) = &fqdn {
            if let Some(other) = pools.iter().find(|p| &p.fqdn == fqdn) {
                problems.add(
                    at("fqdn"),
                    format!(
                        "target `{fqdn}` is also the target of pool `{}`",
                        other.name
                    ),
                );
            }
            if manage_targets && zone_of(&zones, fqdn).is_none() {
                problems.add(
                    at("fqdn"),
                    format!("`manage_target_addresses` is on but `{fqdn}` is outside every managed zone"),
                );
            }
        }
        let mut ipv4 = Vec::new();
        for (j, text) in rp.ipv4.iter().enumerate() {
            match text.trim().parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => ipv4.push(ip),
                Ok(IpAddr::V6(_)) => problems.add(
                    format!("pools[{i}].ipv4[{j}]"),
                    format!("`{text}` is an IPv6 address; put it under `ipv6`"),
                ),
                Err(_) => problems.add(
                    format!("pools[{i}].ipv4[{j}]"),
                    format!("`{text}` is not an IPv4 address"),
                ),
            }
        }
        let mut ipv6 = Vec::new();
        for (j, text) in rp.ipv6.iter().enumerate() {
            match text.trim().parse::<IpAddr>() {
                Ok(IpAddr::V6(ip)) => ipv6.push(ip),
                Ok(IpAddr::V4(_)) => problems.add(
                    format!("pools[{i}].ipv6[{j}]"),
                    format!("`{text}` is an IPv4 address; put it under `ipv4`"),
                ),
                Err(_) => problems.add(
                    format!("pools[{i}].ipv6[{j}]"),
                    format!("`{text}` is not an IPv6 address"),
                ),
            }
        }
        if rp.ipv4.is_empty() && rp.ipv6.is_empty() && manage_targets {
            problems.add(
                at("ipv4"),
                "the pool has no addresses, so its SRV target would have no A/AAAA records",
            );
        }
        let mut servers = Vec::new();
        for (j, text) in rp.servers.iter().enumerate() {
            if let Some(server) = problems.name(format!("pools[{i}].servers[{j}]"), text) {
                servers.push(server);
            }
        }
        let preference = match rp.preference {
            Some(value) => {
                if let Some(first) = preferences_seen.insert(value, i) {
                    problems.add(
                        at("preference"),
                        format!("duplicate priority: preference {value} is also given to pools[{first}]"),
                    );
                }
                problems
                    .ranged(&at("preference"), value, 0, 65535)
                    .unwrap_or(0) as u32
            }
            // Unnumbered pools follow numbered ones, in the order they are written.
            None => 65536 + i as u32,
        };
        if let Some(fqdn) = fqdn {
            pools.push(Pool {
                name: rp.name.clone(),
                site: rp.site.clone(),
                fqdn,
                ipv4,
                ipv6,
                servers,
                preference,
            });
        }
    }

    let active = raw.pools.iter().position(|p| p.name == raw.active_pool);
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
            let index = raw.pools.iter().position(|p| &p.name == name);
            if index.is_none() {
                problems.add("srv_leader", format!("unknown pool `{name}`"));
            }
            index
        }
    };
    let nameservers: Vec<SocketAddr> = raw
        .nameservers
        .iter()
        .enumerate()
        .filter_map(|(i, text)| parse_server(problems, &format!("nameservers[{i}]"), text))
        .collect();

    let federation_name = problems.name("federation.name".into(), &raw.federation.name);
    let federation_zone = federation_name.as_ref().and_then(|name| {
        let zone = zone_of(&zones, name).cloned();
        if zone.is_none() {
            problems.add(
                "federation.name",
                format!("the federation record `{name}` is outside every managed zone"),
            );
        }
        zone
    });
    if let Some(name) = &federation_name {
        if manage_targets {
            if let Some(pool) = pools.iter().find(|p| &p.fqdn == name) {
                problems.add(
                    "federation.name",
                    format!("`{name}` is also the SRV target of pool `{}`, whose addresses the tool manages; use a separate name", pool.name),
                );
            }
        }
    }

    let ttl = raw
        .ttl
        .map(|t| problems.ranged("ttl", t, 0, MAX_TTL).unwrap_or(0) as u32)
        .unwrap_or(DEFAULT_TTL);
    let federation_ttl = raw
        .federation
        .ttl
        .map(|t| {
            problems
                .ranged("federation.ttl", t, 0, MAX_TTL)
                .unwrap_or(0) as u32
        })
        .unwrap_or(DEFAULT_FEDERATION_TTL);

    let port = raw
        .srv
        .port
        .map(|p| problems.ranged("srv.port", p, 1, 65535).unwrap_or(0) as u16)
        .unwrap_or(XMPP_SERVER_PORT);
    if port != XMPP_SERVER_PORT && raw.srv.port.is_some_and(|p| p <= 65535 && p > 0) {
        // Allowed (labs, tests), but the Lync runbook requires 5269; the audit flags it too.
        tracing::warn!("srv.port is {port}; Lync/Skype for Business Edge servers federate on 5269");
    }
    let weight = raw
        .srv
        .weight
        .map(|w| problems.ranged("srv.weight", w, 0, 65535).unwrap_or(0) as u16)
        .unwrap_or(0);
    let priority_step = raw
        .srv
        .priority_step
        .map(|s| {
            problems
                .ranged("srv.priority_step", s, 1, 65535)
                .unwrap_or(1) as u16
        })
        .unwrap_or(DEFAULT_PRIORITY_STEP);
    let highest = u64::from(priority_step) * raw.pools.len() as u64;
    if highest > 65535 {
        problems.add(
            "srv.priority_step",
            format!(
                "priorities out of range: {} pools with step {priority_step} need priority {highest}, above 65535",
                raw.pools.len()
            ),
        );
    }

    let xmpps_port = if raw.xmpps.publish {
        match raw.xmpps.port {
            None => {
                problems.add(
                    "xmpps.port",
                    "publishing `_xmpps-server._tcp` needs its direct-TLS port (e.g. 5270)",
                );
                None
            }
            Some(p) => {
                let p = problems.ranged("xmpps.port", p, 1, 65535).map(|p| p as u16);
                if p == Some(port) {
                    problems.add(
                        "xmpps.port",
                        format!("`_xmpps-server._tcp` must not use {port}, the STARTTLS port (XEP-0368)"),
                    );
                }
                p
            }
        }
    } else {
        None
    };

    let provider = match raw.provider {
        None => ProviderConfig::ZoneFile {
            files: default_zone_files(&zones, &base, None),
        },
        Some(RawProvider::Zonefile { directory, files }) => {
            let mut map = default_zone_files(&zones, &base, directory.as_deref());
            for (zone_text, file) in files {
                let at = format!("provider.files.{zone_text}");
                if let Some(zone) = problems.name(at.clone(), &zone_text) {
                    if !zones.contains(&zone) {
                        problems.add(at, format!("`{zone}` is not one of `zones`"));
                    } else {
                        map.insert(zone, base.join(file));
                    }
                }
            }
            ProviderConfig::ZoneFile { files: map }
        }
        Some(RawProvider::Rfc2136 {
            server,
            key_file,
            key_env,
            transfer_server,
            transfer_key_file,
            transfer_key_env,
            timeout_ms,
            attempts,
        }) => {
            let server = parse_server(problems, "provider.server", &server);
            let transfer_server = transfer_server
                .and_then(|t| parse_server(problems, "provider.transfer_server", &t));
            let key = key_source(problems, "provider.key_file", &base, key_file, key_env);
            let transfer_key = key_source(
                problems,
                "provider.transfer_key_file",
                &base,
                transfer_key_file,
                transfer_key_env,
            );
            let timeout = timeout_ms
                .and_then(|t| problems.ranged("provider.timeout_ms", t, 10, 600_000))
                .unwrap_or(2_000);
            let attempts = attempts
                .and_then(|a| problems.ranged("provider.attempts", a, 1, 10))
                .unwrap_or(3) as u32;
            ProviderConfig::Rfc2136(Rfc2136Config {
                server: server.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 53))),
                key,
                transfer_server,
                transfer_key,
                timeout: Duration::from_millis(timeout),
                attempts,
            })
        }
        Some(RawProvider::Powerdns {
            api_url,
            server_id,
            api_key_env,
            api_key_file,
            timeout_ms,
            notify,
        }) => {
            let api_url = parse_api_url(problems, "provider.api_url", &api_url);
            let server_id = match server_id {
                None => DEFAULT_POWERDNS_SERVER_ID.to_string(),
                Some(id) => {
                    // It becomes a URL path segment: keep to characters that need no escaping.
                    let plain = !id.is_empty()
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                    if !plain {
                        problems.add(
                            "provider.server_id",
                            format!("`{id}` is not a PowerDNS server id (letters, digits, `-`, `_`, `.`; PowerDNS Authoritative uses `localhost`)"),
                        );
                    }
                    id
                }
            };
            let api_key = match (api_key_env, api_key_file) {
                (Some(_), Some(_)) => {
                    problems.add(
                        "provider.api_key_env",
                        "give either `api_key_env` or `api_key_file`, not both",
                    );
                    None
                }
                (None, None) => {
                    problems.add(
                        "provider.api_key_env",
                        "the PowerDNS API needs a key: give `api_key_env` (an environment variable holding it) or `api_key_file` (a file holding it)",
                    );
                    None
                }
                (Some(var), None) if var.trim().is_empty() => {
                    problems.add("provider.api_key_env", "the variable name is empty");
                    None
                }
                (Some(var), None) => Some(ApiKeySource::Env(var)),
                (None, Some(file)) if file.trim().is_empty() => {
                    problems.add("provider.api_key_file", "the file name is empty");
                    None
                }
                (None, Some(file)) => Some(ApiKeySource::File(base.join(file))),
            };
            let timeout = timeout_ms
                .and_then(|t| problems.ranged("provider.timeout_ms", t, 10, 600_000))
                .unwrap_or(DEFAULT_POWERDNS_TIMEOUT_MS);
            // Placeholders only stand in when a problem was recorded (the topology is then
            // rejected as a whole).
            ProviderConfig::PowerDns(PowerDnsConfig {
                api_url: api_url.unwrap_or_default(),
                server_id,
                api_key: api_key.unwrap_or_else(|| ApiKeySource::Env(String::new())),
                timeout: Duration::from_millis(timeout),
                notify,
            })
        }
    };

    Some(Topology {
        path: path.to_path_buf(),
        zones,
        sip_domains,
        active: active?,
        leader: leader?,
        nameservers,
        pools,
        federation: Federation {
            name: federation_name?,
            zone: federation_zone?,
            ttl: federation_ttl,
        },
        ttl,
        srv: SrvSettings {
            port,
            weight,
            priority_step,
        },
        manage_target_addresses: manage_targets,
        xmpps_port,
        provider,
    })
}

/// `<directory>/<zone>.zone` for every zone, relative to the topology's folder.
fn default_zone_files(
    zones: &[Fqdn],
    base: &Path,
    directory: Option<&str>,
) -> BTreeMap<Fqdn, PathBuf> {
    let dir = base.join(directory.unwrap_or("."));
    zones
        .iter()
        .map(|zone| (zone.clone(), dir.join(format!("{}.zone", zone.bare()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn base() -> Value {
        json!({
            "zones": ["contoso.com", "fabrikam.com"],
            "sip_domains": ["contoso.com", "fabrikam.com"],
            "active_pool": "EdgePool1",
            "federation": {"name": "xmpp.contoso.com"},
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
                 "ipv4": ["192.0.2.10"], "servers": ["EdgeServer1.contoso.com"]},
                {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com",
                 "ipv4": ["198.51.100.20"], "ipv6": ["2001:db8::20"]}
            ]
        })
    }

    fn load(value: &Value) -> Result<Topology, TopologyError> {
        Topology::from_json(&value.to_string(), Path::new("/t/topology.json"))
    }

    fn problems(value: &Value) -> Vec<Problem> {
        match load(value) {
            Err(TopologyError::Invalid { problems, .. }) => problems,
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    fn has(problems: &[Problem], at: &str, needle: &str) -> bool {
        problems
            .iter()
            .any(|p| p.at == at && p.message.contains(needle))
    }

    #[test]
    fn a_good_topology_loads_with_defaults() {
        let t = load(&base()).unwrap();
        assert_eq!(t.active_pool().name, "EdgePool1");
        assert_eq!(t.srv.port, 5269);
        assert_eq!(t.srv.priority_step, 10);
        assert_eq!(t.ttl, DEFAULT_TTL);
        assert_eq!(t.federation.ttl, DEFAULT_FEDERATION_TTL);
        assert_eq!(t.federation.zone.as_str(), "contoso.com.");
        assert_eq!(t.sip_domains[1].zone.as_str(), "fabrikam.com.");
        let ProviderConfig::ZoneFile { files } = &t.provider else {
            panic!("zonefile is the default")
        };
        assert_eq!(
            files[&Fqdn::parse("contoso.com").unwrap()],
            Path::new("/t/./contoso.com.zone")
        );
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = Topology::from_json("{\n  \"zones\": [\"a.com\",,]\n}", Path::new("x.json"))
            .unwrap_err();
        match err {
            TopologyError::Json { line, column, .. } => assert_eq!((line, column), (2, 21)),
            other => panic!("{other:?}"),
        }
        assert!(err_text("{\"zones\": 1}").contains("x.json:1:"));
    }

    fn err_text(json: &str) -> String {
        Topology::from_json(json, Path::new("x.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_fields_are_rejected_with_position() {
        let mut v = base();
        v["pool"] = json!([]);
        let text = load(&v).unwrap_err().to_string();
        assert!(text.contains("unknown field `pool`"), "{text}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut v = base();
        v["active_pool"] = json!("EdgePool3");
        v["pools"][1]["name"] = json!("edgepool1");
        v["pools"][0]["fqdn"] = json!("192.0.2.10");
        v["pools"][1]["ipv4"] = json!(["198.51.100.300"]);
        v["pools"][1]["ipv6"] = json!(["192.0.2.1"]);
        v["sip_domains"] = json!(["contoso.com", "northwind.com", "edge"]);
        v["federation"]["name"] = json!("xmpp..contoso.com");
        let p = problems(&v);
        assert!(
            has(&p, "active_pool", "unknown active pool `EdgePool3`"),
            "{p:?}"
        );
        assert!(has(&p, "pools[1].name", "duplicate pool name"), "{p:?}");
        assert!(has(&p, "pools[0].fqdn", "is an IP address"), "{p:?}");
        assert!(has(&p, "pools[1].ipv4[0]", "not an IPv4 address"), "{p:?}");
        assert!(has(&p, "pools[1].ipv6[0]", "is an IPv4 address"), "{p:?}");
        assert!(
            has(&p, "sip_domains[1]", "outside every managed zone"),
            "{p:?}"
        );
        assert!(has(&p, "sip_domains[2]", "relative name"), "{p:?}");
        assert!(has(&p, "federation.name", "empty label"), "{p:?}");
        assert!(p.len() >= 8);
    }

    #[test]
    fn priorities_must_be_distinct_and_in_range() {
        let mut v = base();
        v["pools"][0]["preference"] = json!(1);
        v["pools"][1]["preference"] = json!(1);
        assert!(has(
            &problems(&v),
            "pools[1].preference",
            "duplicate priority"
        ));

        let mut v = base();
        v["pools"][0]["preference"] = json!(70000);
        assert!(has(&problems(&v), "pools[0].preference", "out of range"));

        let mut v = base();
        v["srv"] = json!({"priority_step": 40000});
        assert!(has(
            &problems(&v),
            "srv.priority_step",
            "priorities out of range"
        ));

        let mut v = base();
        v["srv"] = json!({"priority_step": 0});
        assert!(has(&problems(&v), "srv.priority_step", "out of range"));
    }

    #[test]
    fn empty_lists_are_problems() {
        let mut v = base();
        v["pools"] = json!([]);
        v["zones"] = json!([]);
        let p = problems(&v);
        assert!(has(&p, "pools", "no pools"));
        assert!(has(&p, "zones", "no zones"));
    }

    #[test]
    fn targets_outside_zones_matter_only_when_managed() {
        let mut v = base();
        v["pools"][1]["fqdn"] = json!("edge.partner.net");
        assert!(load(&v).is_ok());
        v["manage_target_addresses"] = json!(true);
        assert!(has(
            &problems(&v),
            "pools[1].fqdn",
            "outside every managed zone"
        ));
    }

    #[test]
    fn xmpps_must_not_use_the_starttls_port() {
        let mut v = base();
        v["xmpps"] = json!({"publish": true, "port": 5269});
        assert!(has(&problems(&v), "xmpps.port", "STARTTLS"));
        v["xmpps"] = json!({"publish": true, "port": 5270});
        assert_eq!(load(&v).unwrap().xmpps_port, Some(5270));
    }

    #[test]
    fn active_pool_needs_addresses() {
        let mut v = base();
        v["pools"][0]["ipv4"] = json!([]);
        assert!(has(&problems(&v), "pools[0].ipv4", "no addresses"));
    }

    #[test]
    fn preference_orders_standby_pools() {
        let mut v = base();
        v["pools"] = json!([
            {"name": "P1", "site": "S1", "fqdn": "p1.contoso.com", "ipv4": ["192.0.2.1"]},
            {"name": "P2", "site": "S2", "fqdn": "p2.contoso.com", "preference": 5},
            {"name": "P3", "site": "S3", "fqdn": "p3.contoso.com", "preference": 2},
            {"name": "P4", "site": "S4", "fqdn": "p4.contoso.com", "ipv4": ["192.0.2.4"]}
        ]);
        v["active_pool"] = json!("P4");
        let t = load(&v).unwrap();
        let order: Vec<&str> = t
            .pools_by_preference()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(order, ["P4", "P3", "P2", "P1"]);
    }

    fn powerdns(provider: Value) -> Value {
        let mut v = base();
        v["provider"] = provider;
        v
    }

    #[test]
    fn powerdns_settings_load_with_defaults() {
        let t = load(&powerdns(json!({
            "kind": "powerdns", "api_url": "http://127.0.0.1:8081/", "api_key_env": "PDNS_KEY"
        })))
        .unwrap();
        assert_eq!(t.provider.kind(), "powerdns");
        assert_eq!(
            t.provider,
            ProviderConfig::PowerDns(PowerDnsConfig {
                api_url: "http://127.0.0.1:8081".into(),
                server_id: "localhost".into(),
                api_key: ApiKeySource::Env("PDNS_KEY".into()),
                timeout: Duration::from_millis(DEFAULT_POWERDNS_TIMEOUT_MS),
                notify: false,
            })
        );

        let t = load(&powerdns(json!({
            "kind": "powerdns", "api_url": "https://dns.contoso.com/pdns/api/v1",
            "server_id": "primary-1", "api_key_file": "keys/pdns.key",
            "timeout_ms": 2500, "notify": true
        })))
        .unwrap();
        let ProviderConfig::PowerDns(config) = t.provider else {
            panic!("powerdns")
        };
        assert_eq!(config.api_url, "https://dns.contoso.com/pdns");
        assert_eq!(config.server_id, "primary-1");
        assert_eq!(
            config.api_key,
            ApiKeySource::File(PathBuf::from("/t/keys/pdns.key"))
        );
        assert_eq!(config.timeout, Duration::from_millis(2500));
        assert!(config.notify);

        let t = load(&powerdns(json!({
            "kind": "powerdns", "api_url": "http://[::1]:8081", "api_key_env": "K"
        })))
        .unwrap();
        let ProviderConfig::PowerDns(config) = t.provider else {
            panic!("powerdns")
        };
        assert_eq!(config.api_url, "http://[::1]:8081");
    }

    #[test]
    fn powerdns_settings_problems_are_all_reported_with_their_paths() {
        let p = problems(&powerdns(json!({
            "kind": "powerdns", "api_url": "ftp://127.0.0.1", "server_id": "a/b",
            "api_key_env": "K", "api_key_file": "k", "timeout_ms": 1
        })));
        assert!(
            has(&p, "provider.api_url", "not an http:// or https:// URL"),
            "{p:?}"
        );
        assert!(
            has(&p, "provider.server_id", "not a PowerDNS server id"),
            "{p:?}"
        );
        assert!(has(&p, "provider.api_key_env", "not both"), "{p:?}");
        assert!(has(&p, "provider.timeout_ms", "out of range"), "{p:?}");

        let p = problems(&powerdns(
            json!({"kind": "powerdns", "api_url": "http://h:8081"}),
        ));
        assert!(has(&p, "provider.api_key_env", "needs a key"), "{p:?}");

        for (url, needle) in [
            ("http://h:99999", "port"),
            ("http://h:8081?x=1", "base URL"),
            ("http://", "has no host"),
            ("127.0.0.1:8081", "not an http"),
        ] {
            let p = problems(&powerdns(
                json!({"kind": "powerdns", "api_url": url, "api_key_env": "K"}),
            ));
            assert!(has(&p, "provider.api_url", needle), "{url}: {p:?}");
        }

        // Credentials in the URL are refused and not echoed.
        let p = problems(&powerdns(json!({
            "kind": "powerdns", "api_url": "http://admin:hunter2@h:8081", "api_key_env": "K"
        })));
        assert!(has(&p, "provider.api_url", "credentials"), "{p:?}");
        assert!(!format!("{p:?}").contains("hunter2"));

        // Malformed in other ways too: the credentials are still found first, and neither the
        // password nor the user nor the host is echoed by any message.
        for url in [
            "http://admin:pa/ss@h:8081",
            "admin:s3cret@h:8081",
            "ftp://admin:s3cret@h",
            "http://admin:s3cret@h:99999",
            "http://admin:s3cret@h:8081?x=1",
            "http://admin:s3cr#et@h:8081",
            "http://admin:s3cr?et@h:8081",
            "http://admin:s3 cret@h:8081",
            "https://admin:s3cret@",
            "http://:s3cret@h:8081",
            "HTTP://admin:s3cret@[::1:8081",
            "//admin:s3cret@h:8081",
        ] {
            let p = problems(&powerdns(
                json!({"kind": "powerdns", "api_url": url, "api_key_env": "K"}),
            ));
            assert!(has(&p, "provider.api_url", "credentials"), "{url}: {p:?}");
            let all = format!("{p:?}");
            for secret in ["pa/ss", "s3cret", "s3cr", "admin", "@h"] {
                assert!(!all.contains(secret), "{url}: `{secret}` echoed in {all}");
            }
        }

        let text = load(&powerdns(json!({
            "kind": "powerdns", "api_url": "http://h", "api_key_env": "K", "api_key": "x"
        })))
        .unwrap_err()
        .to_string();
        assert!(text.contains("unknown field `api_key`"), "{text}");
    }
}
