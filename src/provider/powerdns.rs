//! PowerDNS Authoritative through its HTTP API: one GET of the zone to read, one PATCH of
//! rrsets per zone to apply, and optionally a NOTIFY request afterwards.
//!
//! PowerDNS commits a PATCH in one backend transaction, so a zone's changes land together or
//! not at all. The API has no prerequisites, so the compare-and-swap is done here: the managed
//! RRsets are read again immediately before the PATCH, and nothing is sent if any of them
//! differs from the plan's `before`. A write by someone else between that read and the PATCH is
//! not detected (the README documents this window; the `rfc2136` provider against PowerDNS's
//! RFC 2136 support has server-side guards instead).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use ureq::http::{HeaderValue, Response};

use crate::plan::{Change, Drift, ZoneState};
use crate::provider::outcome::{self, Answer, Outcome};
use crate::provider::{Applied, Provider, ProviderError};
use crate::records::{Fqdn, Rdata, RecordSet, RecordType, RrKey};
use crate::topology::{ApiKeySource, PowerDnsConfig};

/// Upper bound on a zone document: a 40,000-record zone is about 6 MB of JSON, so this leaves
/// room for very large zones while still refusing an endless body.
const MAX_ZONE_BODY: u64 = 512 * 1024 * 1024;
/// Upper bound on an error or NOTIFY answer (PowerDNS sends a line or a small JSON object).
const MAX_SMALL_BODY: u64 = 64 * 1024;
/// How much of a server's error text is shown.
const MAX_SHOWN_TEXT: usize = 2_000;

/// The PowerDNS API key. Shown by neither Debug nor Display; read only to build the header.
#[derive(Clone)]
pub struct ApiKey(HeaderValue);

impl ApiKey {
    /// Checks that the key can travel in an HTTP header, without ever echoing it.
    pub fn new(key: &str) -> Result<Self, PowerDnsError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(PowerDnsError::ApiKey {
                message: "the key is empty".into(),
            });
        }
        let mut value = HeaderValue::from_str(key).map_err(|_| PowerDnsError::ApiKey {
            message: "the key holds characters that cannot be sent in an HTTP header (control characters or non-ASCII)".into(),
        })?;
        // Marks it for the http crate's own Debug output and for HPACK, should either see it.
        value.set_sensitive(true);
        Ok(ApiKey(value))
    }

    /// Loads the key from where the topology says it is.
    pub fn load(source: &ApiKeySource) -> Result<Self, PowerDnsError> {
        let text = match source {
            ApiKeySource::Env(var) => std::env::var(var).map_err(|e| PowerDnsError::ApiKey {
                message: match e {
                    std::env::VarError::NotPresent => format!(
                        "environment variable {var} is not set (it should hold the key set as `api-key` in pdns.conf)"
                    ),
                    std::env::VarError::NotUnicode(_) => {
                        format!("environment variable {var} is not valid UTF-8")
                    }
                },
            })?,
            ApiKeySource::File(path) => {
                std::fs::read_to_string(path).map_err(|e| PowerDnsError::ApiKey {
                    message: format!("cannot read key file {}: {e}", path.display()),
                })?
            }
        };
        ApiKey::new(&text).map_err(|e| match (e, source) {
            (PowerDnsError::ApiKey { message }, ApiKeySource::Env(var)) => PowerDnsError::ApiKey {
                message: format!("environment variable {var}: {message}"),
            },
            (PowerDnsError::ApiKey { message }, ApiKeySource::File(path)) => {
                PowerDnsError::ApiKey {
                    message: format!("key file {}: {message}", path.display()),
                }
            }
            (other, _) => other,
        })
    }

    /// The key as text, to remove it from anything a server sends back before showing that.
    fn text(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What went wrong talking to the PowerDNS API, in words. `request` is the method and URL
/// (never the key, which travels in a header).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{request}: PowerDNS refused the API key (HTTP {status}); check `api_key_env` / `api_key_file` against `api-key` in pdns.conf")]
    Unauthorized { request: String, status: u16 },
    #[error("{request}: PowerDNS server `{server_id}` has no zone {zone} (HTTP 404); create the zone first, or check the zone name, `server_id` and `api_url`")]
    ZoneNotFound {
        request: String,
        zone: Fqdn,
        server_id: String,
    },
    #[error("{request}: PowerDNS rejected the change (HTTP 422): {message}")]
    Rejected { request: String, message: String },
    #[error("{request}: PowerDNS could not read the request (HTTP 400): {message}")]
    BadRequest { request: String, message: String },
    #[error("{request}: PowerDNS (or a proxy in front of it) failed (HTTP {status}){}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    ServerError {
        request: String,
        status: u16,
        message: String,
    },
    #[error("{request}: unexpected HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Unexpected {
        request: String,
        status: u16,
        message: String,
    },
    #[error("{request}: connection refused: nothing is listening at {base} (is pdns_server running with `api=yes`, and are `webserver-address` / `webserver-port` what `api_url` says?)")]
    Refused { request: String, base: String },
    #[error("{request}: no complete answer within {} ms (`timeout_ms`)", timeout.as_millis())]
    Timeout { request: String, timeout: Duration },
    #[error("{request}: {message}")]
    Transport { request: String, message: String },
    #[error("{request}: the answer is not a PowerDNS zone: {message}")]
    BadAnswer { request: String, message: String },
    #[error("the PATCH got no usable answer ({cause}), and reading the zone again to learn whether it was applied failed too ({reread}); run `xmppdns plan` to see the state")]
    OutcomeUnknown { cause: String, reread: String },
}

impl ApiError {
    /// True when PowerDNS itself refused the request with a status that means it did not
    /// apply it (a PATCH is one transaction): 400, 401/403, 404, 422. Any other status (5xx
    /// above all: typically 502/503/504 from a reverse proxy that gave up while PowerDNS may
    /// still commit the PATCH), like no answer at all, leaves the outcome to be learned by
    /// reading the zone again.
    fn refused(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized { .. }
                | ApiError::ZoneNotFound { .. }
                | ApiError::Rejected { .. }
                | ApiError::BadRequest { .. }
        )
    }

    /// True when the request certainly never reached the server.
    fn not_sent(&self) -> bool {
        matches!(self, ApiError::Refused { .. })
    }
}

/// What can go wrong with the PowerDNS provider.
#[derive(Debug, thiserror::Error)]
pub enum PowerDnsError {
    #[error("PowerDNS API key: {message}")]
    ApiKey { message: String },
    #[error("zone {zone}: {source}{}", if *unchanged { "; nothing was changed in this zone" } else { "" })]
    Api {
        zone: Fqdn,
        source: Box<ApiError>,
        /// Known for certain: the zone was not changed (the PATCH was refused or never sent).
        unchanged: bool,
    },
}

impl From<PowerDnsError> for ProviderError {
    fn from(error: PowerDnsError) -> Self {
        let kind = match &error {
            PowerDnsError::ApiKey { .. } => ProviderError::Config,
            PowerDnsError::Api { source, .. } => match **source {
                ApiError::Unauthorized { .. } | ApiError::ZoneNotFound { .. } => {
                    ProviderError::Config
                }
                ApiError::Rejected { .. } | ApiError::BadRequest { .. } => ProviderError::Rejected,
                ApiError::OutcomeUnknown { .. } => ProviderError::Ambiguous,
                ApiError::ServerError { .. }
                | ApiError::Unexpected { .. }
                | ApiError::Refused { .. }
                | ApiError::Timeout { .. }
                | ApiError::Transport { .. }
                | ApiError::BadAnswer { .. } => ProviderError::Transport,
            },
        };
        kind(Box::new(error))
    }
}

/// The zone document, reduced to what is read (serde ignores the other fields). Both fields
/// are required: a 200 answer without them (a proxy's page, say) must not read as an empty zone.
#[derive(Deserialize)]
pub(crate) struct ZoneJson {
    name: String,
    rrsets: Vec<RrsetJson>,
}

#[derive(Deserialize)]
struct RrsetJson {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    ttl: u32,
    #[serde(default)]
    records: Vec<RecordJson>,
}

#[derive(Deserialize)]
struct RecordJson {
    content: String,
    #[serde(default)]
    disabled: bool,
}

/// The managed RRsets of a zone as PowerDNS holds them.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// What DNS serves: the enabled records.
    served: BTreeMap<RrKey, RecordSet>,
    /// Disabled records at managed keys (content as PowerDNS gives it) with their RRset's TTL.
    /// DNS does not serve them, so plans ignore them; a PATCH carries them over so that
    /// replacing an RRset does not destroy what someone parked there.
    disabled: BTreeMap<RrKey, (u32, Vec<String>)>,
}

/// The three requests this provider makes.
enum Call {
    Get,
    /// With its JSON body.
    Patch(String),
    /// Without a body (the NOTIFY request).
    Put,
}

impl Call {
    fn method(&self) -> &'static str {
        match self {
            Call::Get => "GET",
            Call::Patch(_) => "PATCH",
            Call::Put => "PUT",
        }
    }
}

pub struct PowerDnsProvider {
    agent: ureq::Agent,
    api_url: String,
    server_id: String,
    key: ApiKey,
    timeout: Duration,
    notify: bool,
}

impl PowerDnsProvider {
    /// Loads the key; no request is made until the first read. `proxy_from_env`: use the
    /// proxy the environment names (`ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), else
    /// always connect to `api_url` directly.
    pub fn new(config: &PowerDnsConfig, proxy_from_env: bool) -> Result<Self, PowerDnsError> {
        let key = ApiKey::load(&config.api_key)?;
        let proxy = if proxy_from_env {
            ureq::Proxy::try_from_env()
        } else {
            None
        };
        let agent = ureq::Agent::config_builder()
            .proxy(proxy)
            // End to end, body included: a stalled server cannot hang a run.
            .timeout_global(Some(config.timeout))
            // Statuses are mapped to words below, with the server's text.
            .http_status_as_error(false)
            // The API never redirects; following one would send the key elsewhere.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("xmppdns/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(PowerDnsProvider {
            agent,
            api_url: config.api_url.clone(),
            server_id: config.server_id.clone(),
            key,
            timeout: config.timeout,
            notify: config.notify,
        })
    }

    /// `.../api/v1/servers/{server_id}/zones/{zone}` (the zone id is the absolute name; our
    /// names hold only letters, digits, `-`, `_` and dots, which need no escaping).
    fn zone_url(&self, zone: &Fqdn) -> String {
        format!(
            "{}/api/v1/servers/{}/zones/{}",
            self.api_url,
            self.server_id,
            zone.as_str()
        )
    }

    /// One request; transport failures are mapped, HTTP statuses are left to the caller.
    fn send(&self, call: Call, url: &str) -> Result<Response<ureq::Body>, ApiError> {
        let request = format!("{} {url}", call.method());
        let key = self.key.0.clone();
        let result = match call {
            Call::Get => self
                .agent
                .get(url)
                .header("X-API-Key", key)
                .header("Accept", "application/json")
                .call(),
            Call::Patch(body) => self
                .agent
                .patch(url)
                .header("X-API-Key", key)
                .header("Accept", "application/json")
                .content_type("application/json")
                .send(body),
            Call::Put => self
                .agent
                .put(url)
                .header("X-API-Key", key)
                .header("Accept", "application/json")
                .send_empty(),
        };
        result.map_err(|e| self.transport_error(request, e))
    }

    fn transport_error(&self, request: String, error: ureq::Error) -> ApiError {
        use std::io::ErrorKind;
        match error {
            ureq::Error::Io(e) if e.kind() == ErrorKind::ConnectionRefused => ApiError::Refused {
                request,
                base: self.api_url.clone(),
            },
            ureq::Error::Io(e)
                if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
            {
                ApiError::Timeout {
                    request,
                    timeout: self.timeout,
                }
            }
            ureq::Error::Timeout(_) => ApiError::Timeout {
                request,
                timeout: self.timeout,
            },
            ureq::Error::HostNotFound => ApiError::Transport {
                request,
                message: "the host name in `api_url` does not resolve".into(),
            },
            other => ApiError::Transport {
                request,
                message: scrub(&other.to_string(), self.key.text()),
            },
        }
    }

    /// Maps a status PowerDNS answered with to an error, with its own words.
    fn status_error(
        &self,
        request: String,
        zone: &Fqdn,
        mut response: Response<ureq::Body>,
    ) -> ApiError {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_SMALL_BODY)
            .read_to_string()
            .unwrap_or_default();
        let message = server_message(&body, self.key.text());
        match status {
            401 | 403 => ApiError::Unauthorized { request, status },
            404 => ApiError::ZoneNotFound {
                request,
                zone: zone.clone(),
                server_id: self.server_id.clone(),
            },
            422 => ApiError::Rejected { request, message },
            400 => ApiError::BadRequest { request, message },
            500..=599 => ApiError::ServerError {
                request,
                status,
                message,
            },
            _ => ApiError::Unexpected {
                request,
                status,
                message,
            },
        }
    }

    /// GETs the zone and keeps the RRsets of `keys`.
    fn fetch(&self, zone: &Fqdn, keys: &BTreeSet<RrKey>) -> Result<Snapshot, ApiError> {
        let url = self.zone_url(zone);
        let request = format!("GET {url}");
        let mut response = self.send(Call::Get, &url)?;
        if response.status().as_u16() != 200 {
            return Err(self.status_error(request, zone, response));
        }
        let reader = response
            .body_mut()
            .with_config()
            .limit(MAX_ZONE_BODY)
            .reader();
        let document: ZoneJson = serde_json::from_reader(reader).map_err(|e| {
            // A body cut short by the timeout surfaces here as an I/O error.
            let timed_out = e.io_error_kind().is_some_and(|k| {
                matches!(
                    k,
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                )
            });
            if timed_out {
                ApiError::Timeout {
                    request: request.clone(),
                    timeout: self.timeout,
                }
            } else {
                ApiError::BadAnswer {
                    request: request.clone(),
                    message: e.to_string(),
                }
            }
        })?;
        if Fqdn::from_absolute(&document.name) != *zone {
            return Err(ApiError::BadAnswer {
                request,
                message: format!("it describes zone `{}`", document.name),
            });
        }
        snapshot(document, keys).map_err(|message| ApiError::BadAnswer { request, message })
    }

    /// Sends the one PATCH of a zone; returns the new SOA serial when PowerDNS reports it.
    fn patch(&self, zone: &Fqdn, body: &Value) -> Result<Option<String>, ApiError> {
        let url = self.zone_url(zone);
        let response = self.send(Call::Patch(body.to_string()), &url)?;
        match response.status().as_u16() {
            200 | 204 => Ok(response
                .headers()
                .get("X-PDNS-New-Serial")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)),
            _ => Err(self.status_error(format!("PATCH {url}"), zone, response)),
        }
    }

    /// Asks PowerDNS to NOTIFY the zone's secondaries.
    fn send_notify(&self, zone: &Fqdn) -> Result<(), ApiError> {
        let url = format!("{}/notify", self.zone_url(zone));
        let response = self.send(Call::Put, &url)?;
        match response.status().as_u16() {
            200 | 204 => Ok(()),
            _ => Err(self.status_error(format!("PUT {url}"), zone, response)),
        }
    }

    /// Sends the PATCH and makes sure of its outcome; returns what the detail adds when it
    /// was applied (the new serial, or how the outcome was learned).
    fn patch_settled(
        &self,
        zone: &Fqdn,
        changes: &[Change],
        keys: &BTreeSet<RrKey>,
        body: &Value,
    ) -> Result<String, PowerDnsError> {
        match self.patch(zone, body) {
            Ok(serial) => Ok(serial
                .map(|serial| format!(", new serial {serial}"))
                .unwrap_or_default()),
            Err(e) if e.refused() || e.not_sent() => Err(Self::error(zone, e, true)),
            Err(e) => self.settle(zone, changes, keys, e),
        }
    }

    /// No answer, or one that does not say PowerDNS refused it (a 5xx from a proxy that gave
    /// up waiting, say): the PATCH may or may not have been committed. It is one transaction,
    /// so the zone holds either every `before` or every `after`: reading it again tells which.
    fn settle(
        &self,
        zone: &Fqdn,
        changes: &[Change],
        keys: &BTreeSet<RrKey>,
        error: ApiError,
    ) -> Result<String, PowerDnsError> {
        let cause = error.to_string();
        let reread = || self.fetch(zone, keys).map(|now| now.served);
        match outcome::settle(Answer::Unsure(error), changes, reread) {
            Outcome::Applied { .. } => Ok(format!(
                "; the PATCH got no usable answer ({cause}) but reading the zone again shows it applied"
            )),
            Outcome::NotApplied(error) => Err(Self::error(zone, error, true)),
            Outcome::Drifted { .. } => Err(Self::error(
                zone,
                ApiError::OutcomeUnknown {
                    cause,
                    reread:
                        "the zone matches neither the plan's before nor its after (another writer?)"
                            .into(),
                },
                false,
            )),
            Outcome::Unknown { reread, .. } => Err(Self::error(
                zone,
                ApiError::OutcomeUnknown { cause, reread },
                false,
            )),
        }
    }

    /// Asks for a NOTIFY after a committed PATCH; what the detail adds. A failed request only
    /// delays secondaries until their next SOA refresh, so it is a warning, not a failed apply.
    fn notify_note(&self, zone: &Fqdn) -> String {
        match self.send_notify(zone) {
            Ok(()) => "; NOTIFY queued".to_string(),
            Err(e) => {
                tracing::warn!(
                    "zone {zone}: applied, but the NOTIFY request failed: {e}; secondaries will see the change at their next SOA refresh"
                );
                format!("; warning: NOTIFY request failed: {e}")
            }
        }
    }

    fn error(zone: &Fqdn, source: ApiError, unchanged: bool) -> PowerDnsError {
        PowerDnsError::Api {
            zone: zone.clone(),
            source: Box::new(source),
            unchanged,
        }
    }
}

/// Keeps the managed RRsets of a zone document, split into served and disabled records.
pub(crate) fn snapshot(document: ZoneJson, keys: &BTreeSet<RrKey>) -> Result<Snapshot, String> {
    let mut snapshot = Snapshot::default();
    for rrset in document.rrsets {
        // Types this tool does not manage (SOA, NS, TXT, ...) are never keys.
        let Ok(rtype) = rrset.rtype.parse::<RecordType>() else {
            continue;
        };
        let key = RrKey::new(Fqdn::from_absolute(&rrset.name), rtype);
        if !keys.contains(&key) {
            continue;
        }
        let mut served = Vec::new();
        let mut disabled = Vec::new();
        for record in rrset.records {
            if record.disabled {
                disabled.push(record.content);
            } else {
                served
                    .push(Rdata::parse(rtype, &record.content).map_err(|e| format!("{key}: {e}"))?);
            }
        }
        if !disabled.is_empty() {
            snapshot.disabled.insert(key.clone(), (rrset.ttl, disabled));
        }
        if !served.is_empty() {
            let set = RecordSet::new(key.name.clone(), rtype, rrset.ttl, served)?;
            snapshot.served.insert(key, set);
        }
    }
    Ok(snapshot)
}

/// The PATCH document for `changes`: REPLACE with the planned records, DELETE for an RRset
/// planned away, with the key's disabled records kept (as disabled) in both cases.
pub fn patch_body(changes: &[Change], disabled: &BTreeMap<RrKey, (u32, Vec<String>)>) -> Value {
    let rrsets: Vec<Value> = changes
        .iter()
        .map(|change| {
            let key = change.key();
            let planned: Vec<&Rdata> = change
                .after
                .as_ref()
                .map(|set| set.records().iter().collect())
                .unwrap_or_default();
            let mut records: Vec<Value> = planned
                .iter()
                .map(|r| json!({ "content": r.to_string(), "disabled": false }))
                .collect();
            let parked = disabled.get(&key);
            if let Some((_, contents)) = parked {
                // A disabled record the plan now publishes is sent once, enabled.
                records.extend(
                    contents
                        .iter()
                        .filter(|c| {
                            Rdata::parse(key.rtype, c).map_or(true, |r| !planned.contains(&&r))
                        })
                        .map(|c| json!({ "content": c, "disabled": true })),
                );
            }
            if records.is_empty() {
                json!({
                    "name": key.name.as_str(),
                    "type": key.rtype.as_str(),
                    "changetype": "DELETE",
                })
            } else {
                let ttl = change
                    .after
                    .as_ref()
                    .map(|set| set.ttl)
                    .or(parked.map(|(ttl, _)| *ttl))
                    .unwrap_or_default();
                json!({
                    "name": key.name.as_str(),
                    "type": key.rtype.as_str(),
                    "ttl": ttl,
                    "changetype": "REPLACE",
                    "records": records,
                })
            }
        })
        .collect();
    json!({ "rrsets": rrsets })
}

/// The text a PowerDNS error answer carries: the JSON `error` field as it is, else the plain
/// body; never the key, even if a server (or a proxy in front of it) echoed it.
fn server_message(body: &str, key: &str) -> String {
    let text = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    let mut text = scrub(&text, key);
    if text.len() > MAX_SHOWN_TEXT {
        let mut cut = MAX_SHOWN_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [...]");
    }
    text
}

fn scrub(text: &str, key: &str) -> String {
    if key.is_empty() {
        text.to_string()
    } else {
        text.replace(key, "<redacted>")
    }
}

/// The managed RRsets whose current state is not a change's `before`.
fn drift(changes: &[Change], now: &Snapshot) -> Vec<Drift> {
    crate::plan::drift_from_before(changes, &now.served)
}

impl Provider for PowerDnsProvider {
    fn kind(&self) -> &'static str {
        "powerdns"
    }

    fn read(&mut self, zone: &Fqdn, keys: &BTreeSet<RrKey>) -> Result<ZoneState, ProviderError> {
        let snapshot = self
            .fetch(zone, keys)
            .map_err(|e| Self::error(zone, e, false))?;
        tracing::info!(
            "read {zone} from PowerDNS {} (server {}): {} of {} managed RRsets exist",
            self.api_url,
            self.server_id,
            snapshot.served.len(),
            keys.len()
        );
        Ok(ZoneState {
            rrsets: snapshot.served,
        })
    }

    fn apply(&mut self, zone: &Fqdn, changes: &[Change]) -> Result<Applied, ProviderError> {
        if changes.is_empty() {
            return Ok(Applied {
                zone: zone.clone(),
                changes: 0,
                detail: "nothing to send".into(),
            });
        }
        let keys: BTreeSet<RrKey> = changes.iter().map(Change::key).collect();

        // The compare-and-swap PowerDNS does not offer: read again, right before writing.
        let now = self
            .fetch(zone, &keys)
            .map_err(|e| Self::error(zone, e, true))?;
        let drifted = drift(changes, &now);
        if !drifted.is_empty() {
            return Err(ProviderError::Stale {
                zone: zone.clone(),
                drift: drifted,
            });
        }

        let body = patch_body(changes, &now.disabled);
        let mut detail = format!(
            "1 PATCH of {} RRset(s) to PowerDNS {} (server {})",
            changes.len(),
            self.api_url,
            self.server_id
        );
        detail.push_str(&self.patch_settled(zone, changes, &keys, &body)?);
        tracing::info!("{zone}: {detail}");
        if self.notify {
            detail.push_str(&self.notify_note(zone));
        }
        Ok(Applied {
            zone: zone.clone(),
            changes: changes.len(),
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    fn name(s: &str) -> Fqdn {
        Fqdn::parse(s).unwrap()
    }

    fn set(owner: &str, rtype: RecordType, ttl: u32, records: &[&str]) -> RecordSet {
        let records = records
            .iter()
            .map(|r| Rdata::parse(rtype, r).unwrap())
            .collect();
        RecordSet::new(name(owner), rtype, ttl, records).unwrap()
    }

    fn change(before: Option<RecordSet>, after: Option<RecordSet>) -> Change {
        let any = before.as_ref().or(after.as_ref()).unwrap();
        Change {
            zone: name("contoso.com"),
            action: match (&before, &after) {
                (None, _) => Action::Create,
                (_, None) => Action::Delete,
                _ => Action::Update,
            },
            name: any.name.clone(),
            rtype: any.rtype,
            before,
            after,
        }
    }

    #[test]
    fn patch_replaces_with_absolute_presentation_content_and_deletes() {
        let srv = set(
            "_xmpp-server._tcp.contoso.com",
            RecordType::Srv,
            3600,
            &[
                "20 0 5269 edgepool2.contoso.com.",
                "10 0 5269 edgepool1.contoso.com.",
            ],
        );
        let aaaa = set(
            "xmpp.contoso.com",
            RecordType::Aaaa,
            300,
            &["2001:db8:1::10"],
        );
        let body = patch_body(
            &[change(None, Some(srv)), change(Some(aaaa), None)],
            &BTreeMap::new(),
        );
        assert_eq!(
            body,
            json!({"rrsets": [
                {"name": "_xmpp-server._tcp.contoso.com.", "type": "SRV", "ttl": 3600,
                 "changetype": "REPLACE", "records": [
                    {"content": "10 0 5269 edgepool1.contoso.com.", "disabled": false},
                    {"content": "20 0 5269 edgepool2.contoso.com.", "disabled": false}]},
                {"name": "xmpp.contoso.com.", "type": "AAAA", "changetype": "DELETE"}
            ]})
        );
    }

    #[test]
    fn disabled_records_are_carried_over() {
        let a = set("xmpp.contoso.com", RecordType::A, 300, &["192.0.2.10"]);
        let key = a.key();
        let disabled = BTreeMap::from([(
            key,
            (
                600,
                vec!["192.0.2.99".to_string(), "192.0.2.10".to_string()],
            ),
        )]);
        let replace = patch_body(&[change(None, Some(a.clone()))], &disabled);
        assert_eq!(
            replace["rrsets"][0]["records"],
            json!([{"content": "192.0.2.10", "disabled": false},
                   {"content": "192.0.2.99", "disabled": true}])
        );
        let delete = patch_body(&[change(Some(a), None)], &disabled);
        assert_eq!(delete["rrsets"][0]["changetype"], "REPLACE");
        assert_eq!(delete["rrsets"][0]["ttl"], 600);
        assert_eq!(
            delete["rrsets"][0]["records"],
            json!([{"content": "192.0.2.99", "disabled": true},
                   {"content": "192.0.2.10", "disabled": true}])
        );
    }

    #[test]
    fn snapshot_keeps_managed_keys_and_served_records_only() {
        let document: ZoneJson = serde_json::from_value(json!({"name": "contoso.com.", "rrsets": [
            {"name": "contoso.com.", "type": "SOA", "ttl": 3600, "records": [{"content": "a. b. 1 2 3 4 5", "disabled": false}]},
            {"name": "XMPP.contoso.com.", "type": "A", "ttl": 300, "records": [
                {"content": "192.0.2.10", "disabled": false}, {"content": "192.0.2.11", "disabled": true}]},
            {"name": "xmpp.contoso.com.", "type": "AAAA", "ttl": 300, "records": [
                {"content": "2001:db8::1", "disabled": true}]},
            {"name": "www.contoso.com.", "type": "A", "ttl": 300, "records": [{"content": "192.0.2.80", "disabled": false}]}
        ]}))
        .unwrap();
        let a = RrKey::new(name("xmpp.contoso.com"), RecordType::A);
        let aaaa = RrKey::new(name("xmpp.contoso.com"), RecordType::Aaaa);
        let snap = snapshot(document, &BTreeSet::from([a.clone(), aaaa.clone()])).unwrap();
        assert_eq!(
            snap.served.values().collect::<Vec<_>>(),
            [&set(
                "xmpp.contoso.com",
                RecordType::A,
                300,
                &["192.0.2.10"]
            )]
        );
        assert_eq!(snap.disabled[&a], (300, vec!["192.0.2.11".to_string()]));
        assert_eq!(snap.disabled[&aaaa], (300, vec!["2001:db8::1".to_string()]));
    }

    #[test]
    fn server_text_is_shown_as_is_but_never_the_key() {
        let json =
            r#"{"error": "RRset xmpp.contoso.com. IN A: Conflicts with pre-existing RRset"}"#;
        assert_eq!(
            server_message(json, "k3y"),
            "RRset xmpp.contoso.com. IN A: Conflicts with pre-existing RRset"
        );
        assert_eq!(server_message("Not Found\n", "k3y"), "Not Found");
        assert_eq!(
            server_message("bad key k3y here", "k3y"),
            "bad key <redacted> here"
        );
        assert!(server_message(&"é".repeat(5_000), "k3y").ends_with(" [...]"));
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let key = ApiKey::new("  s3cret-api-key\n").unwrap();
        assert_eq!(format!("{key:?}"), "<redacted>");
        assert_eq!(key.text(), "s3cret-api-key");
        let err = ApiKey::new("bad\u{1}key").unwrap_err().to_string();
        assert!(!err.contains("bad"), "{err}");
        assert!(ApiKey::new(" \n").is_err());
    }

    #[test]
    fn only_refused_or_unsent_patches_are_known_not_applied() {
        let request = "PATCH http://127.0.0.1:1/x".to_string();
        assert!(ApiError::Rejected {
            request: request.clone(),
            message: String::new()
        }
        .refused());
        // A 5xx (from a proxy, typically) or any other status says nothing about the commit.
        for status in [500, 502, 503, 504] {
            let e = ApiError::ServerError {
                request: request.clone(),
                status,
                message: String::new(),
            };
            assert!(!e.refused() && !e.not_sent(), "{status}");
        }
        assert!(!ApiError::Unexpected {
            request: request.clone(),
            status: 302,
            message: String::new()
        }
        .refused());
        assert!(ApiError::Refused {
            request: request.clone(),
            base: String::new()
        }
        .not_sent());
        let timeout = ApiError::Timeout {
            request,
            timeout: Duration::from_millis(5),
        };
        assert!(!timeout.refused() && !timeout.not_sent());
        assert!(timeout.to_string().contains("within 5 ms"));
    }

    #[test]
    fn without_proxy_from_env_the_agent_has_no_proxy_whatever_the_environment_says() {
        let dir = std::env::temp_dir().join(format!("xmppdns-pdns-key-{}", std::process::id()));
        std::fs::write(&dir, "k3y").unwrap();
        let config = PowerDnsConfig {
            api_url: "http://127.0.0.1:8081".into(),
            server_id: "localhost".into(),
            api_key: ApiKeySource::File(dir.clone()),
            timeout: Duration::from_secs(1),
            notify: false,
        };
        let direct = PowerDnsProvider::new(&config, false);
        let _ = std::fs::remove_file(&dir);
        assert!(direct.unwrap().agent.config().proxy().is_none());
    }

    #[test]
    fn api_errors_map_to_the_engine_kinds_with_the_same_words() {
        let zone = name("contoso.com");
        let request = "PATCH http://127.0.0.1:1/x".to_string();
        let refused = ProviderError::from(PowerDnsProvider::error(
            &zone,
            ApiError::Rejected {
                request: request.clone(),
                message: "bad content".into(),
            },
            true,
        ));
        assert!(matches!(refused, ProviderError::Rejected(_)), "{refused:?}");
        assert_eq!(
            refused.to_string(),
            "zone contoso.com.: PATCH http://127.0.0.1:1/x: PowerDNS rejected the change (HTTP 422): bad content; nothing was changed in this zone"
        );
        let unknown = ProviderError::from(PowerDnsProvider::error(
            &zone,
            ApiError::OutcomeUnknown {
                cause: "timeout".into(),
                reread: "refused".into(),
            },
            false,
        ));
        assert!(matches!(unknown, ProviderError::Ambiguous(_)));
        let down = ProviderError::from(PowerDnsProvider::error(
            &zone,
            ApiError::Refused {
                request,
                base: "http://127.0.0.1:1".into(),
            },
            true,
        ));
        assert!(matches!(down, ProviderError::Transport(_)));
        let key = ProviderError::from(ApiKey::new("").unwrap_err());
        assert!(matches!(key, ProviderError::Config(_)));
        assert_eq!(key.to_string(), "PowerDNS API key: the key is empty");
    }
}
