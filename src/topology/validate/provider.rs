//! `provider`: where the records live (zone files by default, RFC 2136, or the PowerDNS API;
//! Azure DNS and Route 53 are checked in `cloud`) and how to reach them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::api_url::parse_api_url;
use super::nameservers::parse_server;
use super::Problems;
use crate::records::Fqdn;
use crate::topology::provider::{DEFAULT_RFC2136_ATTEMPTS, DEFAULT_RFC2136_TIMEOUT_MS};
use crate::topology::raw::{RawPowerdns, RawProvider, RawRfc2136, RawZonefile};
use crate::topology::{
    ApiKeySource, KeySource, PowerDnsConfig, ProviderConfig, Rfc2136Config,
    DEFAULT_POWERDNS_SERVER_ID, DEFAULT_POWERDNS_TIMEOUT_MS,
};

/// The provider configuration; relative paths are relative to `base` (the topology's folder).
pub(super) fn validate(
    raw: Option<RawProvider>,
    zones: &[Fqdn],
    base: &Path,
    problems: &mut Problems,
) -> ProviderConfig {
    match raw {
        None => ProviderConfig::ZoneFile {
            files: default_zone_files(zones, base, None),
        },
        Some(RawProvider::Zonefile(raw)) => zonefile(raw, zones, base, problems),
        Some(RawProvider::Rfc2136(raw)) => ProviderConfig::Rfc2136(rfc2136(raw, base, problems)),
        Some(RawProvider::Powerdns(raw)) => ProviderConfig::PowerDns(powerdns(raw, base, problems)),
        Some(RawProvider::Azure(raw)) => ProviderConfig::Azure(super::cloud::azure(raw, problems)),
        Some(RawProvider::Route53(raw)) => {
            ProviderConfig::Route53(super::cloud::route53(raw, zones, problems))
        }
    }
}

/// The update server, the transfer server when separate, their keys, timeout and tries.
fn rfc2136(raw: RawRfc2136, base: &Path, problems: &mut Problems) -> Rfc2136Config {
    let raw_auth = super::rfc2136_auth::RawAuth::of(&raw);
    let server = parse_server(problems, "provider.server", &raw.server);
    let transfer_server = raw
        .transfer_server
        .and_then(|t| parse_server(problems, "provider.transfer_server", &t));
    let key = key_source(
        problems,
        "provider.key_file",
        base,
        raw.key_file,
        raw.key_env,
    );
    let transfer_key = key_source(
        problems,
        "provider.transfer_key_file",
        base,
        raw.transfer_key_file,
        raw.transfer_key_env,
    );
    let timeout = raw
        .timeout_ms
        .and_then(|t| problems.ranged("provider.timeout_ms", t, 10, 600_000))
        .unwrap_or(DEFAULT_RFC2136_TIMEOUT_MS);
    let attempts = raw
        .attempts
        .and_then(|a| problems.ranged("provider.attempts", a, 1, 10))
        .map_or(DEFAULT_RFC2136_ATTEMPTS, |a| a as u32);
    let auth = super::rfc2136_auth::validate(&raw_auth, base, problems);
    Rfc2136Config {
        server: server.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 53))),
        key,
        transfer_server,
        transfer_key,
        timeout: Duration::from_millis(timeout),
        attempts,
        auth,
        notify: raw.notify,
    }
}

/// The API's base URL, server id, key source and timeout.
fn powerdns(raw: RawPowerdns, base: &Path, problems: &mut Problems) -> PowerDnsConfig {
    let api_url = parse_api_url(problems, "provider.api_url", &raw.api_url);
    let server_id = powerdns_server_id(raw.server_id, problems);
    let api_key = api_key_source(raw.api_key_env, raw.api_key_file, base, problems);
    let timeout = raw
        .timeout_ms
        .and_then(|t| problems.ranged("provider.timeout_ms", t, 10, 600_000))
        .unwrap_or(DEFAULT_POWERDNS_TIMEOUT_MS);
    // Placeholders only stand in when a problem was recorded (the topology is then rejected
    // as a whole).
    PowerDnsConfig {
        api_url: api_url.unwrap_or_default(),
        server_id,
        api_key: api_key.unwrap_or_else(|| ApiKeySource::Env(String::new())),
        timeout: Duration::from_millis(timeout),
        notify: raw.notify,
    }
}

/// One file per zone: `<directory>/<zone>.zone` unless `files` names another.
fn zonefile(
    raw: RawZonefile,
    zones: &[Fqdn],
    base: &Path,
    problems: &mut Problems,
) -> ProviderConfig {
    let mut map = default_zone_files(zones, base, raw.directory.as_deref());
    for (zone_text, file) in raw.files {
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

fn powerdns_server_id(server_id: Option<String>, problems: &mut Problems) -> String {
    let Some(id) = server_id else {
        return DEFAULT_POWERDNS_SERVER_ID.to_string();
    };
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

/// Exactly one of `api_key_env` and `api_key_file`, not empty.
fn api_key_source(
    env: Option<String>,
    file: Option<String>,
    base: &Path,
    problems: &mut Problems,
) -> Option<ApiKeySource> {
    match (env, file) {
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
    }
}
