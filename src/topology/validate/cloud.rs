//! `provider` of kind `azure` or `route53`: the cloud DNS services' settings. No secret sits
//! here: both take their credentials from the environment (the provider modules say how).

use std::collections::BTreeMap;
use std::time::Duration;

use super::api_url::parse_api_url;
use super::Problems;
use crate::records::Fqdn;
use crate::topology::raw::{RawAzure, RawRoute53};
use crate::topology::{
    AzureConfig, Route53Config, DEFAULT_AZURE_AUTHORITY, DEFAULT_AZURE_ENDPOINT,
    DEFAULT_CLOUD_TIMEOUT_MS, DEFAULT_ROUTE53_ENDPOINT, DEFAULT_ROUTE53_SYNC_TIMEOUT_MS,
};

/// The subscription, resource group, endpoints and timeout.
pub(super) fn azure(raw: RawAzure, problems: &mut Problems) -> AzureConfig {
    let subscription_id = path_segment(problems, "provider.subscription_id", raw.subscription_id);
    let resource_group = path_segment(problems, "provider.resource_group", raw.resource_group);
    AzureConfig {
        subscription_id,
        resource_group,
        endpoint: url_or(
            problems,
            "provider.endpoint",
            raw.endpoint,
            DEFAULT_AZURE_ENDPOINT,
        ),
        authority: url_or(
            problems,
            "provider.authority",
            raw.authority,
            DEFAULT_AZURE_AUTHORITY,
        ),
        timeout: timeout(
            problems,
            "provider.timeout_ms",
            raw.timeout_ms,
            DEFAULT_CLOUD_TIMEOUT_MS,
        ),
    }
}

/// The hosted zone ids (each for one of `zones`), endpoint and timeouts.
pub(super) fn route53(raw: RawRoute53, zones: &[Fqdn], problems: &mut Problems) -> Route53Config {
    let mut hosted_zone_ids = BTreeMap::new();
    for (zone_text, id) in raw.hosted_zone_ids {
        let at = format!("provider.hosted_zone_ids.{zone_text}");
        let Some(zone) = problems.name(at.clone(), &zone_text) else {
            continue;
        };
        if !zones.contains(&zone) {
            problems.add(at, format!("`{zone}` is not one of `zones`"));
            continue;
        }
        // Accepted as AWS prints it, with or without the `/hostedzone/` prefix.
        let id = id.trim().trim_start_matches("/hostedzone/").to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.add(
                at,
                format!("`{id}` is not a hosted zone id (letters and digits, like Z0123456789ABCDEFGHIJ)"),
            );
            continue;
        }
        hosted_zone_ids.insert(zone, id);
    }
    Route53Config {
        hosted_zone_ids,
        endpoint: url_or(
            problems,
            "provider.endpoint",
            raw.endpoint,
            DEFAULT_ROUTE53_ENDPOINT,
        ),
        timeout: timeout(
            problems,
            "provider.timeout_ms",
            raw.timeout_ms,
            DEFAULT_CLOUD_TIMEOUT_MS,
        ),
        sync_timeout: timeout(
            problems,
            "provider.sync_timeout_ms",
            raw.sync_timeout_ms,
            DEFAULT_ROUTE53_SYNC_TIMEOUT_MS,
        ),
    }
}

/// A value that becomes one URL path segment: letters, digits, `-`, `_`, `.`, `(`, `)` (what
/// Azure allows in subscription ids and resource group names), so it needs no escaping.
fn path_segment(problems: &mut Problems, at: &str, text: String) -> String {
    let text = text.trim().to_string();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'(' | b')'));
    if !plain {
        problems.add(
            at,
            format!("`{text}` is empty or holds characters other than letters, digits, `-`, `_`, `.`, `(`, `)`"),
        );
    }
    text
}

fn url_or(problems: &mut Problems, at: &str, text: Option<String>, default: &str) -> String {
    match text {
        Some(text) => parse_api_url(problems, at, &text).unwrap_or_default(),
        None => default.to_string(),
    }
}

fn timeout(problems: &mut Problems, at: &str, value: Option<u64>, default: u64) -> Duration {
    let ms = value
        .and_then(|t| problems.ranged(at, t, 10, 3_600_000))
        .unwrap_or(default);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use crate::topology::{ProviderConfig, Topology};
    use serde_json::{json, Value};
    use std::path::Path;
    use std::time::Duration;

    fn with(provider: Value) -> Topology {
        let value = json!({
            "zones": ["contoso.com"], "sip_domains": ["contoso.com"],
            "pools": [{"name": "P1", "site": "S1", "fqdn": "e1.contoso.com", "ipv4": ["192.0.2.1"]}],
            "active_pool": "P1", "federation": {"name": "xmpp.contoso.com"},
            "provider": provider,
        });
        Topology::from_json(&value.to_string(), Path::new("t.json")).unwrap()
    }

    #[test]
    fn cloud_defaults_and_ids_as_aws_prints_them() {
        let ProviderConfig::Azure(azure) =
            with(json!({"kind": "azure", "subscription_id": "s-1", "resource_group": "rg(dns)"}))
                .provider
        else {
            panic!("azure")
        };
        assert_eq!(azure.endpoint, "https://management.azure.com");
        assert_eq!(azure.authority, "https://login.microsoftonline.com");
        assert_eq!(azure.timeout, Duration::from_secs(30));
        let topology = with(json!({"kind": "route53",
            "hosted_zone_ids": {"Contoso.com.": "/hostedzone/Z0123456789ABC"}}));
        assert_eq!(topology.provider.kind(), "route53");
        let ProviderConfig::Route53(route53) = topology.provider else {
            panic!("route53")
        };
        assert_eq!(
            route53.hosted_zone_ids.values().collect::<Vec<_>>(),
            ["Z0123456789ABC"]
        );
        assert_eq!(route53.endpoint, "https://route53.amazonaws.com");
        assert_eq!(route53.sync_timeout, Duration::from_secs(300));
    }
}
