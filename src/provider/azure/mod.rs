//! Azure DNS record sets through Azure Resource Manager (api-version 2018-05-01): one GET per
//! managed record set to read, and per change in plan order a `PUT` with `If-Match: <etag
//! read>` (update), `If-None-Match: *` (create) or a `DELETE` with `If-Match` (delete).
//!
//! The compare-and-swap is Azure's own: the ETag each record set had when it was read guards
//! its write, and Azure answers 412 when it changed. Azure has no multi-record-set
//! transaction, so a failure after the first write names what landed. A 429 or 5xx is tried
//! again after `Retry-After`, within a bounded budget; an answer that is lost (or a 5xx, which
//! may follow a commit) is settled by reading the record set again.

pub mod auth;
mod records;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::plan::{Change, Drift, ZoneState};
use crate::provider::{Applied, Provider, ProviderError};
use crate::records::{Fqdn, RecordSet, RrKey};
use crate::topology::AzureConfig;
use auth::{AuthError, Token};
use records::Read;

const API_VERSION: &str = "2018-05-01";
/// Tries of one request Azure throttles (429) or fails (5xx).
const MAX_ATTEMPTS: u32 = 5;
/// The longest `Retry-After` honoured, and the most waited in all for one request.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const MAX_WAIT: Duration = Duration::from_secs(120);
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// What went wrong with Azure DNS, in words; `request` is the method and URL (the token
/// travels in a header and is removed from anything shown).
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{request}: Azure refused the request (HTTP {status} {code}): {message}")]
    Refused {
        request: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{request}: {message}")]
    Transport { request: String, message: String },
    #[error("{key} exists in Azure DNS but this tool does not rewrite it: {why}")]
    Unmanageable { key: RrKey, why: String },
    #[error("{request}: no usable answer ({cause}), and reading {key} again did not settle whether it was written ({reread}); run `xmppdns plan` to see the state")]
    OutcomeUnknown {
        request: String,
        key: RrKey,
        cause: String,
        reread: String,
    },
    #[error("zone {zone}: {} of {total} record set change(s) landed ({}); then {key} failed: {source}; run `xmppdns plan` and apply again", landed.len(), if landed.is_empty() { "none".to_string() } else { landed.join(", ") })]
    PartlyApplied {
        zone: Fqdn,
        landed: Vec<String>,
        total: usize,
        key: RrKey,
        source: Box<ProviderError>,
    },
}

impl From<AzureError> for ProviderError {
    fn from(error: AzureError) -> Self {
        let kind = match &error {
            AzureError::Auth(_) => ProviderError::Config,
            AzureError::Refused {
                status: 401 | 403 | 404,
                ..
            } => ProviderError::Config,
            AzureError::Refused { .. } | AzureError::Unmanageable { .. } => ProviderError::Rejected,
            AzureError::Transport { .. } => ProviderError::Transport,
            AzureError::OutcomeUnknown { .. } | AzureError::PartlyApplied { .. } => {
                ProviderError::Ambiguous
            }
        };
        kind(Box::new(error))
    }
}

/// An answer, whatever its status.
struct Answer {
    status: u16,
    etag: Option<String>,
    retry_after: Option<Duration>,
    body: String,
}

/// The write of one change.
enum Write {
    Put {
        body: Value,
        if_match: Option<String>,
    },
    Delete {
        if_match: String,
    },
}

pub struct AzureProvider {
    agent: ureq::Agent,
    config: AzureConfig,
    token: Option<Token>,
    /// ETag and metadata of each record set as last read.
    read: BTreeMap<RrKey, Read>,
    /// HTTP requests made (the token request included), for the detail.
    requests: usize,
}

impl AzureProvider {
    /// No request is made, and no token fetched, until the first read.
    pub fn new(config: &AzureConfig, proxy_from_env: bool) -> Result<Self, AzureError> {
        let mut provider = Self::with_token(config, Token::new("", ""), proxy_from_env);
        provider.token = None;
        Ok(provider)
    }

    /// With a token already in hand (no source is consulted).
    pub fn with_token(config: &AzureConfig, token: Token, proxy_from_env: bool) -> Self {
        AzureProvider {
            agent: super::http_agent(config.timeout, proxy_from_env),
            config: config.clone(),
            token: Some(token),
            read: BTreeMap::new(),
            requests: 0,
        }
    }

    fn token(&mut self) -> Result<Token, AzureError> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let token = auth::token(&self.agent, &self.config.authority, &self.config.endpoint)?;
        if token.source.starts_with("service principal") {
            self.requests += 1;
        }
        tracing::info!("Azure DNS: token from {}", token.source);
        self.token = Some(token.clone());
        Ok(token)
    }

    /// `.../dnsZones/{zone}/{type}/{relative name}?api-version=...`.
    fn url(&self, zone: &Fqdn, key: &RrKey) -> String {
        let relative = key.name.relative_to(zone).unwrap_or("@");
        format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnsZones/{}/{}/{}?api-version={API_VERSION}",
            self.config.endpoint,
            self.config.subscription_id,
            self.config.resource_group,
            zone.bare(),
            key.rtype,
            relative
        )
    }

    /// One request, once; statuses are left to the caller. `Err` is no answer at all, with
    /// whether it certainly never reached the server.
    fn once(
        &mut self,
        method: &str,
        url: &str,
        write: Option<&Write>,
    ) -> Result<Answer, (String, bool)> {
        let token = self.token().map_err(|e| (e.to_string(), true))?;
        self.requests += 1;
        let result = match (method, write) {
            ("GET", _) => self
                .agent
                .get(url)
                .header("Authorization", &token.bearer())
                .call(),
            (_, Some(Write::Put { body, if_match })) => {
                let builder = self.agent.put(url).header("Authorization", &token.bearer());
                let builder = match if_match {
                    Some(etag) => builder.header("If-Match", etag),
                    None => builder.header("If-None-Match", "*"),
                };
                builder
                    .content_type("application/json")
                    .send(body.to_string())
            }
            (_, Some(Write::Delete { if_match })) => self
                .agent
                .delete(url)
                .header("Authorization", &token.bearer())
                .header("If-Match", if_match)
                .call(),
            _ => unreachable!("GET, PUT or DELETE"),
        };
        let mut response = result.map_err(|e| {
            let refused = matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused);
            (token.scrub(&e.to_string()), refused)
        })?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("ETag");
        let retry_after = header("Retry-After")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| (format!("reading the answer: {e}"), false))?;
        Ok(Answer {
            status,
            etag,
            retry_after,
            body: token.scrub(&body),
        })
    }

    /// A request retried on 429 and 5xx after `Retry-After` (else a short backoff), within
    /// the budget. `Err` is no answer at all.
    fn call(
        &mut self,
        method: &str,
        url: &str,
        write: Option<&Write>,
    ) -> Result<Answer, (String, bool)> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let answer = self.once(method, url, write)?;
            let again = answer.status == 429 || answer.status >= 500;
            // A write's 5xx may follow a commit: the caller settles it by reading.
            let may_retry = answer.status == 429 || method == "GET";
            if !(again && may_retry) || attempt >= MAX_ATTEMPTS {
                return Ok(answer);
            }
            let pause = answer
                .retry_after
                .unwrap_or(Duration::from_millis(250 << attempt));
            if started.elapsed() + pause > MAX_WAIT {
                return Ok(answer);
            }
            tracing::info!(
                "{method} {url}: HTTP {}; trying again in {pause:?}",
                answer.status
            );
            std::thread::sleep(pause);
            attempt += 1;
        }
    }

    /// The record set at `key`, as read (also remembered, for its ETag).
    fn fetch_one(&mut self, zone: &Fqdn, key: &RrKey) -> Result<Option<Read>, AzureError> {
        let url = self.url(zone, key);
        let request = format!("GET {url}");
        let answer =
            self.call("GET", &url, None)
                .map_err(|(message, _)| AzureError::Transport {
                    request: request.clone(),
                    message,
                })?;
        self.read.remove(key);
        match answer.status {
            200 => {
                let read = records::parse(key, &answer.body, answer.etag.as_deref()).map_err(
                    |message| AzureError::Transport {
                        request,
                        message: format!("the answer is not a record set: {message}"),
                    },
                )?;
                self.read.insert(key.clone(), read.clone());
                Ok(Some(read))
            }
            404 if records::error_code(&answer.body) != "ParentResourceNotFound" => Ok(None),
            _ => Err(refused(request, &answer)),
        }
    }

    /// The parsed record set at `key` (None when absent).
    fn current(&mut self, zone: &Fqdn, key: &RrKey) -> Result<Option<RecordSet>, AzureError> {
        match self.fetch_one(zone, key)? {
            None => Ok(None),
            Some(read) => read.set().map_err(|why| AzureError::Unmanageable {
                key: key.clone(),
                why,
            }),
        }
    }
}

fn refused(request: String, answer: &Answer) -> AzureError {
    let (code, message) = records::error_text(&answer.body);
    AzureError::Refused {
        request,
        status: answer.status,
        code,
        message,
    }
}

mod apply;

impl Provider for AzureProvider {
    fn kind(&self) -> &'static str {
        "azure"
    }

    fn read(&mut self, zone: &Fqdn, keys: &BTreeSet<RrKey>) -> Result<ZoneState, ProviderError> {
        let mut rrsets = BTreeMap::new();
        for key in keys {
            if let Some(set) = self.current(zone, key)? {
                rrsets.insert(key.clone(), set);
            }
        }
        tracing::info!(
            "read {zone} from Azure DNS ({} requests so far): {} of {} managed record sets exist",
            self.requests,
            rrsets.len(),
            keys.len()
        );
        Ok(ZoneState { rrsets })
    }

    fn apply(&mut self, zone: &Fqdn, changes: &[Change]) -> Result<Applied, ProviderError> {
        let started = (self.requests, Instant::now());
        let notes = self.apply_zone(zone, changes)?;
        let detail =
            format!(
            "{} record set write(s){}; {} HTTP requests to Azure DNS {} in {:.1} s (token from {})",
            changes.len(),
            notes,
            self.requests - started.0,
            self.config.endpoint,
            started.1.elapsed().as_secs_f64(),
            self.token.as_ref().map_or("none needed", |t| t.source.as_str())
        );
        tracing::info!("{zone}: {detail}");
        Ok(Applied {
            zone: zone.clone(),
            changes: changes.len(),
            detail,
        })
    }
}

/// The change's drift, for a stale refusal.
fn drift_of(change: &Change, found: Option<RecordSet>) -> Drift {
    Drift {
        key: change.key(),
        expected: change.before.clone(),
        found,
    }
}
