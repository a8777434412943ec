//! The raw serde schema of the topology JSON: field for field what the file may hold, nothing
//! checked yet (`validate` turns it into a `Topology`). Unknown fields are taken out and
//! reported by `fields` first; `deny_unknown_fields` stays as its safety net.

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
    /// The recovery time objective: audit rule 23 warns of TTLs above it.
    #[serde(default)]
    pub(super) rto_seconds: Option<u64>,
    /// `"tls": {"ca_file": ...}`: a private CA for the certificate checks (#14).
    #[serde(default)]
    pub(super) tls: RawTls,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    #[serde(default)]
    pub(super) ca_file: Option<String>,
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
    /// Guessed by `init --from-dns`: the runbook comments out commands built from it.
    #[serde(default)]
    pub(super) placeholder: bool,
    /// The Edge's SIP federation TLS port, where its certificate is checked when port 5269
    /// does not answer (#14).
    #[serde(default)]
    pub(super) sip_tls_port: Option<u64>,
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

/// `provider`, by its `kind`; each kind's settings are a struct of their own so that each
/// has its own validator.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum RawProvider {
    Zonefile(RawZonefile),
    Rfc2136(RawRfc2136),
    Powerdns(RawPowerdns),
    Azure(RawAzure),
    Route53(RawRoute53),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZonefile {
    #[serde(default)]
    pub(super) directory: Option<String>,
    #[serde(default)]
    pub(super) files: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRfc2136 {
    pub(super) server: String,
    #[serde(default)]
    pub(super) key_file: Option<String>,
    #[serde(default)]
    pub(super) key_env: Option<String>,
    #[serde(default)]
    pub(super) transfer_server: Option<String>,
    #[serde(default)]
    pub(super) transfer_key_file: Option<String>,
    #[serde(default)]
    pub(super) transfer_key_env: Option<String>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
    #[serde(default)]
    pub(super) attempts: Option<u64>,
    #[serde(default)]
    pub(super) notify: bool,
    /// `tsig` (default when a key is given), `gss-tsig` or `none`.
    #[serde(default)]
    pub(super) auth: Option<String>,
    #[serde(default)]
    pub(super) keytab: Option<String>,
    #[serde(default)]
    pub(super) principal: Option<String>,
    #[serde(default)]
    pub(super) server_principal: Option<String>,
    #[serde(default)]
    pub(super) gss_algorithm: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPowerdns {
    pub(super) api_url: String,
    #[serde(default)]
    pub(super) server_id: Option<String>,
    #[serde(default)]
    pub(super) api_key_env: Option<String>,
    #[serde(default)]
    pub(super) api_key_file: Option<String>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
    #[serde(default)]
    pub(super) notify: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAzure {
    pub(super) subscription_id: String,
    pub(super) resource_group: String,
    #[serde(default)]
    pub(super) endpoint: Option<String>,
    #[serde(default)]
    pub(super) authority: Option<String>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute53 {
    #[serde(default)]
    pub(super) hosted_zone_ids: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) endpoint: Option<String>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
    #[serde(default)]
    pub(super) sync_timeout_ms: Option<u64>,
}
