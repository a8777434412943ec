//! The provider configurations a topology names: where the records live and how to reach them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::records::Fqdn;

/// Where the records live and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderConfig {
    /// BIND-format zone files, one per zone.
    ZoneFile { files: BTreeMap<Fqdn, PathBuf> },
    /// RFC 2136 dynamic updates (TSIG-signed) to a primary server.
    Rfc2136(Rfc2136Config),
    /// The PowerDNS Authoritative HTTP API.
    PowerDns(PowerDnsConfig),
    /// Azure DNS record sets through Azure Resource Manager.
    Azure(AzureConfig),
    /// Amazon Route 53 hosted zones.
    Route53(Route53Config),
}

/// Where a TSIG key comes from. The secret itself never sits in the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A BIND key file (`tsig-keygen` / `xmppdns keygen` output).
    File(PathBuf),
    /// An environment variable holding `ALGORITHM:NAME:BASE64SECRET`.
    Env(String),
}

/// Default bound on one RFC 2136 exchange (an update or one transfer message).
pub(super) const DEFAULT_RFC2136_TIMEOUT_MS: u64 = 2_000;
/// Default number of tries of one RFC 2136 exchange.
pub(super) const DEFAULT_RFC2136_ATTEMPTS: u32 = 3;

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
    /// After each zone's UPDATE, send a signed NOTIFY to the zone's other authoritative
    /// servers, so secondaries that accept it refresh at once.
    pub notify: bool,
    pub auth: Rfc2136Auth,
}

/// How RFC 2136 messages are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rfc2136Auth {
    /// TSIG with the shared secret of `key`.
    Tsig,
    /// GSS-TSIG (RFC 3645): Kerberos, as Windows DNS / Active Directory "secure only" zones
    /// require.
    GssTsig(GssTsigConfig),
    /// Unsigned (written explicitly; every plan and apply warns).
    None,
}

/// GSS-TSIG settings: whose Kerberos credentials, and which server principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssTsigConfig {
    /// A keytab for unattended runs (with `principal`); else the user's ticket cache.
    pub keytab: Option<PathBuf>,
    pub principal: Option<String>,
    /// Default: `DNS/<the zone's SOA MNAME>`.
    pub server_principal: Option<String>,
    /// Sign as `gss.microsoft.com` (Windows 2000) instead of `gss-tsig`.
    pub microsoft_algorithm: bool,
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

/// Azure Resource Manager, where the record-set API lives (public cloud).
pub const DEFAULT_AZURE_ENDPOINT: &str = "https://management.azure.com";
/// The Microsoft identity platform, where a service principal gets its token (public cloud).
pub const DEFAULT_AZURE_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Default bound on one cloud API call, start to end.
pub const DEFAULT_CLOUD_TIMEOUT_MS: u64 = 30_000;

/// Azure DNS: the zones (the topology's `zones`) live in one resource group of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    pub subscription_id: String,
    pub resource_group: String,
    /// Azure Resource Manager's base URL (another for sovereign clouds, or a local stand-in).
    pub endpoint: String,
    /// The identity platform's base URL for the service principal's token.
    pub authority: String,
    /// Bound on each API call.
    pub timeout: Duration,
}

/// Route 53's global endpoint.
pub const DEFAULT_ROUTE53_ENDPOINT: &str = "https://route53.amazonaws.com";
/// Default bound on the wait for a change to be INSYNC.
pub const DEFAULT_ROUTE53_SYNC_TIMEOUT_MS: u64 = 300_000;

/// Amazon Route 53: one hosted zone per topology zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route53Config {
    /// Hosted zone ids (`Z...`, without `/hostedzone/`) by zone; a zone missing here is looked
    /// up with ListHostedZonesByName.
    pub hosted_zone_ids: BTreeMap<Fqdn, String>,
    /// The API's base URL.
    pub endpoint: String,
    /// Bound on each API call.
    pub timeout: Duration,
    /// Bound on the wait for each change to be INSYNC.
    pub sync_timeout: Duration,
}

impl ProviderConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::ZoneFile { .. } => "zonefile",
            ProviderConfig::Rfc2136(_) => "rfc2136",
            ProviderConfig::PowerDns(_) => "powerdns",
            ProviderConfig::Azure(_) => "azure",
            ProviderConfig::Route53(_) => "route53",
        }
    }
}
