//! The raw serde schema of the topology JSON: field for field what the file may hold, unknown
//! fields refused, nothing checked yet (`validate` turns it into a `Topology`).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    pub(super) zones: Vec<String>,
    pub(super) sip_domains: Vec<String>,
    pub(super) pools: Vec<RawPool>,
    pub(super) active_pool: String,
    pub(super) federation: RawFederation,
    #[serde(default)]
    pub(super) ttl: Option<u64>,
    #[serde(default)]
    pub(super) srv: RawSrv,
    #[serde(default)]
    pub(super) manage_target_addresses: bool,
    #[serde(default)]
    pub(super) xmpps: RawXmpps,
    #[serde(default)]
    pub(super) provider: Option<RawProvider>,
    #[serde(default)]
    pub(super) srv_leader: Option<String>,
    #[serde(default)]
    pub(super) nameservers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub(super) name: String,
    pub(super) site: String,
    pub(super) fqdn: String,
    #[serde(default)]
    pub(super) ipv4: Vec<String>,
    #[serde(default)]
    pub(super) ipv6: Vec<String>,
    #[serde(default)]
    pub(super) servers: Vec<String>,
    #[serde(default)]
    pub(super) preference: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFederation {
    pub(super) name: String,
    #[serde(default)]
    pub(super) ttl: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSrv {
    pub(super) port: Option<u64>,
    pub(super) weight: Option<u64>,
    pub(super) priority_step: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawXmpps {
    #[serde(default)]
    pub(super) publish: bool,
    pub(super) port: Option<u64>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum RawProvider {
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
