//! The one seam between plans and the places records live. Each adapter is one file, chosen
//! by matching the topology's provider settings (no registry).

pub mod azure;
pub mod notifier;
pub mod outcome;
pub mod powerdns;
pub mod rfc2136;
pub mod rfc2136_gss;
pub mod route53;
pub mod zonefile;

use std::collections::BTreeSet;

use crate::plan::{Change, Drift, ZoneState};
use crate::records::{Fqdn, RrKey};
use crate::topology::{ProviderConfig, Topology};

/// What one `apply` of one zone did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub zone: Fqdn,
    pub changes: usize,
    /// Adapter-specific detail for people and the journal (new serial, messages sent, ...).
    pub detail: String,
}

/// An adapter's own error, carried behind the common surface for its words.
pub type AdapterError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the apply engine sees of a provider's failure: one of a few kinds, each carrying the
/// adapter's own error (which says it in the adapter's words). The kinds are closed: a new
/// adapter maps its errors onto them and adds none here.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The store no longer holds what the plan was computed from, so it refused and nothing
    /// was changed in this zone: the user plans again (exit 3).
    #[error("zone {zone}: {} managed RRset(s) changed since they were read; nothing was changed in this zone:\n{}", drift.len(), describe_drift(drift))]
    Stale { zone: Fqdn, drift: Vec<Drift> },
    /// The store refused the request, or holds something the adapter will not rewrite.
    #[error(transparent)]
    Rejected(AdapterError),
    /// A write may or may not have landed, and reading again did not settle it.
    #[error(transparent)]
    Ambiguous(AdapterError),
    /// The store could not be reached, read or written.
    #[error(transparent)]
    Transport(AdapterError),
    /// The adapter's settings or credentials are unusable.
    #[error(transparent)]
    Config(AdapterError),
}

impl ProviderError {
    /// True when the store refused because it no longer holds what the plan was computed
    /// from: the user re-plans; nothing was changed.
    pub fn is_stale(&self) -> bool {
        matches!(self, ProviderError::Stale { .. })
    }

    /// The adapter's own error, to downcast (`None` for `Stale`).
    pub fn adapter_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            ProviderError::Rejected(e)
            | ProviderError::Ambiguous(e)
            | ProviderError::Transport(e)
            | ProviderError::Config(e) => Some(e.as_ref()),
            ProviderError::Stale { .. } => None,
        }
    }
}

/// One line per drifted RRset, for messages.
pub fn describe_drift(drift: &[Drift]) -> String {
    let show = |set: &Option<crate::records::RecordSet>| match set {
        None => "absent".to_string(),
        Some(set) => {
            let records: Vec<String> = set.records().iter().map(ToString::to_string).collect();
            format!("ttl {} [{}]", set.ttl, records.join(", "))
        }
    };
    drift
        .iter()
        .map(|d| {
            format!(
                "  - {}: expected {}, found {}",
                d.key,
                show(&d.expected),
                show(&d.found)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A place where records live.
pub trait Provider {
    /// Short name, as in the topology (`zonefile`, `rfc2136`, `powerdns`, `azure`, `route53`).
    fn kind(&self) -> &'static str;

    /// The current RRsets of `keys` in `zone` (absent keys are simply missing).
    fn read(&mut self, zone: &Fqdn, keys: &BTreeSet<RrKey>) -> Result<ZoneState, ProviderError>;

    /// Applies the changes of one zone. Each change's `before` is a guard: if the store no
    /// longer holds it, the adapter refuses with [`ProviderError::Stale`] and changes nothing.
    /// How much of a zone lands together, and whether the store or the adapter checks the
    /// guard, differs by adapter (its module says); a failure says what landed.
    fn apply(&mut self, zone: &Fqdn, changes: &[Change]) -> Result<Applied, ProviderError>;
}

/// Settings that come from outside the topology (the clock, so tests can control it).
#[derive(Clone)]
pub struct Environment {
    /// Today as YYYYMMDD, for date-based SOA serials.
    pub today: u32,
    /// Seconds since 1970, for TSIG.
    pub clock: crate::clock::Clock,
    /// Whether HTTP clients (the `powerdns`, `azure` and `route53` providers) use the proxy named by `ALL_PROXY` /
    /// `HTTPS_PROXY` / `HTTP_PROXY` (and `NO_PROXY`). True for real runs; tests that talk to a
    /// server on loopback turn it off so that the API key never goes through a proxy the
    /// machine happens to set.
    pub http_proxy_from_env: bool,
}

impl Environment {
    /// The real clock.
    pub fn system() -> Self {
        let clock = crate::clock::system_clock();
        Environment {
            today: crate::clock::yyyymmdd(clock()),
            clock,
            http_proxy_from_env: true,
        }
    }

    /// The real clock, and HTTP requests go straight to the server whatever proxy the
    /// environment names.
    pub fn system_without_proxy() -> Self {
        Environment {
            http_proxy_from_env: false,
            ..Environment::system()
        }
    }
}

/// Builds the adapter the topology asks for (loading its keys).
pub fn open(topology: &Topology, env: &Environment) -> Result<Box<dyn Provider>, ProviderError> {
    Ok(match &topology.provider {
        ProviderConfig::ZoneFile { files } => {
            Box::new(zonefile::ZoneFileProvider::new(files.clone(), env.today))
        }
        ProviderConfig::Rfc2136(config) => {
            let provider = rfc2136::Rfc2136Provider::new(config, env.clock.clone())?;
            if config.notify {
                Box::new(provider.with_notify(&topology.nameservers))
            } else {
                Box::new(provider)
            }
        }
        ProviderConfig::PowerDns(config) => Box::new(powerdns::PowerDnsProvider::new(
            config,
            env.http_proxy_from_env,
        )?),
        ProviderConfig::Azure(config) => {
            Box::new(azure::AzureProvider::new(config, env.http_proxy_from_env)?)
        }
        ProviderConfig::Route53(config) => Box::new(route53::Route53Provider::new(
            config,
            env.clock.clone(),
            env.http_proxy_from_env,
        )?),
    })
}

/// For a provider that itself confirms its name servers serve what was applied, what it
/// confirmed: it stands in when those servers cannot be asked (failover's propagation check).
pub fn sync_stand_in(config: &ProviderConfig) -> Option<&'static str> {
    match config {
        ProviderConfig::Route53(_) => Some(
            "Route 53's own change status stands in: the apply waited until it was INSYNC (every Route 53 name server serves it)",
        ),
        ProviderConfig::Azure(_) => Some(
            "Azure DNS's own answer stands in: each record set write was acknowledged (Azure DNS has no separate sync status; its name servers usually serve a change within 60 s)",
        ),
        _ => None,
    }
}

/// The HTTP client of the cloud providers: end-to-end `timeout`, no redirects (one would send
/// the credentials elsewhere), statuses left to the caller, the environment's proxy only when
/// `proxy_from_env`.
pub(crate) fn http_agent(timeout: std::time::Duration, proxy_from_env: bool) -> ureq::Agent {
    let proxy = if proxy_from_env {
        ureq::Proxy::try_from_env()
    } else {
        None
    };
    ureq::Agent::config_builder()
        .proxy(proxy)
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent(concat!("xmppdns/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}
