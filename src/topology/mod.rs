//! The input model: what the user has (zones, SIP domains, Edge pools, provider), parsed from
//! JSON and validated with every problem reported at once, each with its JSON path.
//!
//! - `raw`: the serde schema, field for field what the file may hold;
//! - `validate`: one validator per section, each recording its problems with JSON paths;
//! - `provider`: the provider configurations (zone files, RFC 2136, PowerDNS, Azure DNS, Route 53).
//!
//! It parses and validates, and does no I/O beyond reading the file, no logging and no
//! networking: callers log [`Topology::warnings`] themselves.

mod fields;
mod provider;
mod raw;
mod validate;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::records::Fqdn;
use raw::RawTopology;
use validate::{validate, Problems};

pub use provider::{
    ApiKeySource, AzureConfig, GssTsigConfig, KeySource, PowerDnsConfig, ProviderConfig,
    Rfc2136Auth, Rfc2136Config, Route53Config, DEFAULT_AZURE_AUTHORITY, DEFAULT_AZURE_ENDPOINT,
    DEFAULT_CLOUD_TIMEOUT_MS, DEFAULT_POWERDNS_SERVER_ID, DEFAULT_POWERDNS_TIMEOUT_MS,
    DEFAULT_ROUTE53_ENDPOINT, DEFAULT_ROUTE53_SYNC_TIMEOUT_MS,
};
pub use validate::server_address;

/// Default TTL of every record the tool writes, unless overridden.
pub const DEFAULT_TTL: u32 = 3600;
/// A short TTL on the federation A record is what makes a failover quick.
pub const DEFAULT_FEDERATION_TTL: u32 = 300;
/// The XMPP server-to-server port that Lync / Skype for Business Edge servers listen on.
pub const XMPP_SERVER_PORT: u16 = 5269;
/// The Edge's SIP federation TLS port, when a pool does not name another (`sip_tls_port`).
pub const SIP_TLS_PORT: u16 = 5061;
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
    /// `tls.ca_file`, resolved against the topology's folder: the private CA that the
    /// certificate checks trust instead of the public roots.
    pub tls_ca_file: Option<PathBuf>,
    /// `rto_seconds`: how soon after a failover partners must reach the new pool (audit rule
    /// 23 compares the TTLs with it).
    pub rto_seconds: Option<u32>,
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
    /// `"placeholder": true`: the site, FQDN and servers are guesses (`init --from-dns`) until
    /// someone checks them, so the runbook never emits live commands built from them.
    pub placeholder: bool,
    /// The SIP federation TLS port (default 5061): the same certificate as port 5269.
    pub sip_tls_port: u16,
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

/// Pool names compare without regard to case, everywhere: validation already refuses two pools
/// whose names differ only in case, so `--to edgepool2`, `active_pool` and the journal's pool
/// names all find `EdgePool2`.
pub fn same_pool_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

impl Topology {
    pub fn active_pool(&self) -> &Pool {
        &self.pools[self.active]
    }

    /// The pool called `name`, compared as [`same_pool_name`] does.
    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools
            .iter()
            .position(|p| same_pool_name(&p.name, name))
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

    /// What is allowed but worth a word, for the caller to log (validation itself does not).
    pub fn warnings(&self) -> Vec<Problem> {
        let mut warnings = Vec::new();
        if self.srv.port != XMPP_SERVER_PORT {
            // Allowed (labs, tests), but the Lync runbook requires 5269.
            warnings.push(Problem {
                at: "srv.port".into(),
                message: format!(
                    "{} is not 5269: Lync/Skype for Business Edge servers federate on 5269",
                    self.srv.port
                ),
            });
        }
        warnings
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
        let json_error = |e: serde_json::Error| TopologyError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        };
        let mut document: serde_json::Value = serde_json::from_str(text).map_err(json_error)?;
        let unknown = fields::take_unknown(&mut document);
        // Parsed from the text when nothing was taken out, so that serde's type errors keep
        // their line and column.
        let raw: RawTopology = if unknown.is_empty() {
            serde_json::from_str(text).map_err(json_error)?
        } else {
            serde_json::from_value(document).map_err(|e| TopologyError::Invalid {
                path: path.to_path_buf(),
                problems: unknown
                    .iter()
                    .cloned()
                    .chain([Problem {
                        at: "(topology)".into(),
                        message: e.to_string(),
                    }])
                    .collect(),
            })?
        };
        let mut problems = Problems(unknown);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::time::Duration;

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
    fn unknown_fields_are_problems_reported_with_the_others() {
        let mut v = base();
        v["activ_pool"] = json!("EdgePool2");
        v["pools"][0]["placeholder"] = json!(true);
        v["pools"][1]["prefernce"] = json!(2);
        v["federation"]["name"] = json!("xmpp..contoso.com");
        let p = problems(&v);
        assert!(
            has(
                &p,
                "activ_pool",
                "unknown field `activ_pool` (did you mean `active_pool`?)"
            ),
            "{p:?}"
        );
        assert!(
            has(&p, "pools[1].prefernce", "did you mean `preference`?"),
            "{p:?}"
        );
        assert!(has(&p, "federation.name", "empty label"), "{p:?}");
        assert_eq!(p.len(), 3, "{p:?}");
        let text = load(&v).unwrap_err().to_string();
        assert!(!text.contains("malformed"), "{text}");
    }

    #[test]
    fn every_listed_field_is_known_to_the_schema() {
        let mut v = base();
        v["ttl"] = json!(600);
        v["federation"]["ttl"] = json!(60);
        v["srv"] = json!({"port": 5269, "weight": 0, "priority_step": 10});
        v["xmpps"] = json!({"publish": false, "port": 5270});
        v["manage_target_addresses"] = json!(false);
        v["srv_leader"] = json!("EdgePool1");
        v["nameservers"] = json!(["192.0.2.53"]);
        v["rto_seconds"] = json!(300);
        v["pools"][1]["servers"] = json!([]);
        v["pools"][1]["preference"] = json!(1);
        v["pools"][1]["placeholder"] = json!(true);
        for provider in [
            json!({"kind": "zonefile", "directory": ".", "files": {}}),
            json!({"kind": "rfc2136", "server": "192.0.2.1", "key_file": "k",
                   "transfer_server": "192.0.2.2", "transfer_key_env": "T",
                   "timeout_ms": 100, "attempts": 2, "notify": true}),
            json!({"kind": "rfc2136", "server": "192.0.2.1", "key_env": "K",
                   "transfer_key_file": "t"}),
            json!({"kind": "powerdns", "api_url": "http://h", "server_id": "localhost",
                   "api_key_env": "K", "timeout_ms": 100, "notify": true}),
            json!({"kind": "powerdns", "api_url": "http://h", "api_key_file": "k"}),
        ] {
            v["provider"] = provider;
            load(&v).unwrap();
        }
        assert!(load(&v).unwrap().pools[1].placeholder);
    }

    #[test]
    fn a_type_error_still_names_line_and_column() {
        assert!(err_text("{\"zones\": 1}").contains("x.json:1:"));
        let mut v = base();
        v["zones"] = json!(1);
        v["activ_pool"] = json!("x");
        let text = load(&v).unwrap_err().to_string();
        assert!(text.contains("unknown field `activ_pool`"), "{text}");
        assert!(text.contains("invalid type: integer `1`"), "{text}");
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
            "duplicate preference 1 (also pools[0])"
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
    fn a_port_other_than_5269_is_a_warning_for_the_caller() {
        assert!(load(&base()).unwrap().warnings().is_empty());
        let mut v = base();
        v["srv"] = json!({"port": 5299});
        let warnings = load(&v).unwrap().warnings();
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].to_string(),
            "srv.port: 5299 is not 5269: Lync/Skype for Business Edge servers federate on 5269"
        );
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
