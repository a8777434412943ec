//! Amazon Route 53 through its REST API (2013-04-01), signed with SigV4: one
//! ListResourceRecordSets per managed RRset to read, one ChangeResourceRecordSets per zone to
//! apply, then GetChange until the change is INSYNC.
//!
//! The compare-and-swap is Route 53's own: an update is a `DELETE` of exactly the RRset that
//! was read (values and TTL as Route 53 wrote them) plus a `CREATE` of the new one, and the
//! batch is atomic, so a stale plan fails whole. A create is a `CREATE`, which Route 53 refuses
//! when the RRset exists; because some stand-ins (moto) accept it and overwrite, the RRsets to
//! create are also read just before the batch and any that exists refuses the apply here.
//! A zone whose batch would exceed Route 53's limits (1,000 records, 32,000 characters of
//! values) goes in several batches, in plan order; a failure part-way names what landed.

pub mod sigv4;
pub mod xml;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::plan::{Change, Drift, ZoneState};
use crate::provider::{Applied, Provider, ProviderError};
use crate::records::{Fqdn, RecordSet, RrKey};
use crate::topology::Route53Config;
use sigv4::{Credentials, CredentialsError};
use xml::{RawSet, Verb};

/// Route 53's limits on one ChangeResourceRecordSets request.
const MAX_RECORDS_PER_BATCH: usize = 1_000;
const MAX_VALUE_CHARS_PER_BATCH: usize = 32_000;
/// Tries of one request that Route 53 throttles (`Throttling`, `PriorRequestNotComplete`).
const MAX_ATTEMPTS: u32 = 6;
/// Upper bound on one answer (a page of record sets is a few hundred kB at most).
const MAX_BODY: u64 = 16 * 1024 * 1024;
const API: &str = "2013-04-01";

/// What went wrong with Route 53, in words; `request` is the method and URL (the signature and
/// keys travel in headers, and any secret a server echoes is removed).
#[derive(Debug, thiserror::Error)]
pub enum Route53Error {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("zone {zone}: {request}: Route 53 refused the request (HTTP {status} {code}): {message}{}", if *unchanged { "; nothing was changed in this zone" } else { "" })]
    Refused {
        zone: Fqdn,
        request: String,
        status: u16,
        code: String,
        message: String,
        unchanged: bool,
    },
    #[error("zone {zone}: {request}: {message}")]
    Transport {
        zone: Fqdn,
        request: String,
        message: String,
    },
    #[error("zone {zone}: no public hosted zone named {zone} is visible to these credentials{found}; give its id in `provider.hosted_zone_ids`")]
    NoHostedZone { zone: Fqdn, found: String },
    #[error("zone {zone}: {key} exists in Route 53 but this tool does not rewrite it: {why}; nothing was changed in this zone")]
    Unmanageable { zone: Fqdn, key: RrKey, why: String },
    #[error("zone {zone}: the change batch got no usable answer ({cause}), and reading again did not settle whether it was applied ({reread}); run `xmppdns plan` to see the state")]
    OutcomeUnknown {
        zone: Fqdn,
        cause: String,
        reread: String,
    },
    #[error(
        "zone {zone}: {landed} of {batches} change batches were applied ({done}); then: {source}"
    )]
    PartlyApplied {
        zone: Fqdn,
        landed: usize,
        batches: usize,
        done: String,
        source: Box<Route53Error>,
    },
}

impl From<Route53Error> for ProviderError {
    fn from(error: Route53Error) -> Self {
        let kind = match &error {
            Route53Error::Credentials(_) | Route53Error::NoHostedZone { .. } => {
                ProviderError::Config
            }
            Route53Error::Refused { code, .. } if is_auth_code(code) => ProviderError::Config,
            Route53Error::Refused { .. } | Route53Error::Unmanageable { .. } => {
                ProviderError::Rejected
            }
            Route53Error::Transport { .. } => ProviderError::Transport,
            Route53Error::OutcomeUnknown { .. } | Route53Error::PartlyApplied { .. } => {
                ProviderError::Ambiguous
            }
        };
        kind(Box::new(error))
    }
}

fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "UnrecognizedClientException"
            | "ExpiredToken"
            | "NoSuchHostedZone"
    )
}

/// Route 53 says it did not do it, and to try again later.
fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling" | "ThrottlingException" | "PriorRequestNotComplete" | "RequestLimitExceeded"
    )
}

/// An answer, whatever its status.
struct Answer {
    status: u16,
    body: String,
}

/// A request that got no answer: whether it certainly never reached the server.
struct NoAnswer {
    message: String,
    not_sent: bool,
}

pub struct Route53Provider {
    agent: ureq::Agent,
    endpoint: String,
    host: String,
    credentials: Credentials,
    clock: Clock,
    sync_timeout: Duration,
    zone_ids: BTreeMap<Fqdn, String>,
    /// The RRsets as last read, values as Route 53 wrote them (for exact `DELETE`s).
    read: BTreeMap<RrKey, RawSet>,
    /// HTTP requests made, for the detail.
    requests: usize,
}

impl Route53Provider {
    /// Loads the credentials; no request is made until the first read.
    pub fn new(
        config: &Route53Config,
        clock: Clock,
        proxy_from_env: bool,
    ) -> Result<Self, Route53Error> {
        let credentials = Credentials::from_environment()?;
        tracing::info!(
            "Route 53: credentials from {}, access key id {}",
            credentials.source,
            credentials.access_key_id
        );
        Ok(Self::with_credentials(
            config,
            credentials,
            clock,
            proxy_from_env,
        ))
    }

    pub fn with_credentials(
        config: &Route53Config,
        credentials: Credentials,
        clock: Clock,
        proxy_from_env: bool,
    ) -> Self {
        let host = config
            .endpoint
            .split_once("://")
            .map_or(config.endpoint.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        Route53Provider {
            agent: super::http_agent(config.timeout, proxy_from_env),
            endpoint: config.endpoint.clone(),
            host,
            credentials,
            clock,
            sync_timeout: config.sync_timeout,
            zone_ids: config.hosted_zone_ids.clone(),
            read: BTreeMap::new(),
            requests: 0,
        }
    }

    /// One signed request; the status is left to the caller.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Answer, NoAnswer> {
        let mut url = format!("{}{path}", self.endpoint);
        if !query.is_empty() {
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", sigv4::uri_encode(k), sigv4::uri_encode(v)))
                .collect();
            url.push('?');
            url.push_str(&pairs.join("&"));
        }
        let payload = body.clone().unwrap_or_default();
        let request = sigv4::Request {
            method,
            host: &self.host,
            path,
            query,
            body: payload.as_bytes(),
        };
        let signed = sigv4::sign(
            &self.credentials,
            &request,
            (self.clock)(),
            "us-east-1",
            "route53",
        );
        self.requests += 1;
        let result = match body {
            None => {
                let mut builder = self.agent.get(&url);
                for (name, value) in &signed {
                    builder = builder.header(*name, value);
                }
                builder.call()
            }
            Some(body) => {
                let mut builder = self.agent.post(&url).content_type("application/xml");
                for (name, value) in &signed {
                    builder = builder.header(*name, value);
                }
                builder.send(body)
            }
        };
        let mut response = result.map_err(|e| NoAnswer {
            not_sent: matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused),
            message: self.credentials.scrub(&e.to_string()),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| NoAnswer {
                message: format!("reading the answer: {e}"),
                not_sent: false,
            })?;
        Ok(Answer {
            status,
            body: self.credentials.scrub(&body),
        })
    }

    /// A GET retried while Route 53 throttles; any other failure is an error.
    fn get(
        &mut self,
        zone: &Fqdn,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<String, Route53Error> {
        let request = format!("GET {}{path}", self.endpoint);
        for attempt in 1..=MAX_ATTEMPTS {
            let answer =
                self.call("GET", path, query, None)
                    .map_err(|e| Route53Error::Transport {
                        zone: zone.clone(),
                        request: request.clone(),
                        message: e.message,
                    })?;
            if answer.status == 200 {
                return Ok(answer.body);
            }
            let (code, messages) = xml::error(&answer.body);
            if (is_retryable_code(&code) || answer.status == 429 || answer.status >= 500)
                && attempt < MAX_ATTEMPTS
            {
                std::thread::sleep(backoff(attempt));
                continue;
            }
            return Err(refused(zone, request, &answer, code, messages, true));
        }
        unreachable!("the last attempt returns")
    }

    /// The hosted zone id of `zone`: from the topology, else ListHostedZonesByName.
    fn zone_id(&mut self, zone: &Fqdn) -> Result<String, Route53Error> {
        if let Some(id) = self.zone_ids.get(zone) {
            return Ok(id.clone());
        }
        let path = format!("/{API}/hostedzonesbyname");
        let body = self.get(
            zone,
            &path,
            &[("dnsname", zone.as_str()), ("maxitems", "10")],
        )?;
        let matching: Vec<String> = xml::public_hosted_zones(&body)
            .into_iter()
            .filter(|(_, name)| Fqdn::from_absolute(name) == *zone)
            .map(|(id, _)| id)
            .collect();
        match matching.as_slice() {
            [id] => {
                tracing::info!("Route 53: hosted zone {id} is {zone}");
                self.zone_ids.insert(zone.clone(), id.clone());
                Ok(id.clone())
            }
            [] => Err(Route53Error::NoHostedZone {
                zone: zone.clone(),
                found: String::new(),
            }),
            several => Err(Route53Error::NoHostedZone {
                zone: zone.clone(),
                found: format!(
                    " alone (there are {}: {})",
                    several.len(),
                    several.join(", ")
                ),
            }),
        }
    }

    /// The RRsets of `keys`, as Route 53 wrote them; remembers them for exact `DELETE`s.
    fn fetch(
        &mut self,
        zone: &Fqdn,
        keys: &BTreeSet<RrKey>,
    ) -> Result<BTreeMap<RrKey, RawSet>, Route53Error> {
        let id = self.zone_id(zone)?;
        let path = format!("/{API}/hostedzone/{id}/rrset");
        let mut found = BTreeMap::new();
        for key in keys {
            let query = [
                ("name", key.name.as_str()),
                ("type", key.rtype.as_str()),
                ("maxitems", "1"),
            ];
            let body = self.get(zone, &path, &query)?;
            let set = xml::rrset_at(&body, key).map_err(|message| Route53Error::Transport {
                zone: zone.clone(),
                request: format!("GET {}{path}", self.endpoint),
                message: format!("the answer is not a record set list: {message}"),
            })?;
            self.read.remove(key);
            if let Some(set) = set {
                self.read.insert(key.clone(), set.clone());
                found.insert(key.clone(), set);
            }
        }
        Ok(found)
    }

    /// Parsed, for plans; an RRset this tool cannot rewrite refuses.
    fn state(
        zone: &Fqdn,
        raw: &BTreeMap<RrKey, RawSet>,
    ) -> Result<BTreeMap<RrKey, RecordSet>, Route53Error> {
        let mut sets = BTreeMap::new();
        for (key, set) in raw {
            if let Some(why) = &set.unmanageable {
                return Err(Route53Error::Unmanageable {
                    zone: zone.clone(),
                    key: key.clone(),
                    why: why.clone(),
                });
            }
            let parsed = set.parsed().map_err(|why| Route53Error::Unmanageable {
                zone: zone.clone(),
                key: key.clone(),
                why,
            })?;
            sets.insert(key.clone(), parsed);
        }
        Ok(sets)
    }

    /// What to `DELETE` for a change's `before`: exactly what was read when it is that set,
    /// else the plan's own rendering (which Route 53 refuses if it is not what it holds).
    fn delete_of(&self, before: &RecordSet) -> RawSet {
        match self.read.get(&before.key()) {
            Some(raw) if raw.parsed().ok().as_ref() == Some(before) => raw.clone(),
            _ => RawSet::from_set(before),
        }
    }
}

fn refused(
    zone: &Fqdn,
    request: String,
    answer: &Answer,
    code: String,
    messages: Vec<String>,
    unchanged: bool,
) -> Route53Error {
    let mut message = messages.join("; ");
    if message.is_empty() {
        message = answer.body.chars().take(500).collect();
    }
    Route53Error::Refused {
        zone: zone.clone(),
        request,
        status: answer.status,
        code,
        message,
        unchanged,
    }
}

/// 0.2 s, 0.4 s, 0.8 s ... at most 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(5)).min(5_000))
}

/// The managed RRsets whose current state is not a change's `before`.
fn drift(changes: &[Change], now: &BTreeMap<RrKey, RecordSet>) -> Vec<Drift> {
    crate::plan::drift_from_before(changes, now)
}

/// One change's part of a batch: its index in the plan, and its `DELETE` and/or `CREATE`.
type Group = (usize, Vec<(Verb, RawSet)>);

/// The batches of a zone's changes, in plan order, each within Route 53's limits; an
/// update's `DELETE` and `CREATE` always go together.
fn batches(groups: Vec<Group>) -> Vec<Vec<Group>> {
    let mut out: Vec<Vec<Group>> = Vec::new();
    let (mut records, mut chars) = (0, 0);
    for group in groups {
        let group_records: usize = group.1.iter().map(|(_, s)| s.values.len()).sum();
        let group_chars: usize = group
            .1
            .iter()
            .flat_map(|(_, s)| s.values.iter().map(String::len))
            .sum();
        let full = records + group_records > MAX_RECORDS_PER_BATCH
            || chars + group_chars > MAX_VALUE_CHARS_PER_BATCH;
        if out.is_empty() || full {
            out.push(Vec::new());
            (records, chars) = (0, 0);
        }
        records += group_records;
        chars += group_chars;
        out.last_mut().expect("pushed above").push(group);
    }
    out
}

mod apply;

impl Provider for Route53Provider {
    fn kind(&self) -> &'static str {
        "route53"
    }

    fn read(&mut self, zone: &Fqdn, keys: &BTreeSet<RrKey>) -> Result<ZoneState, ProviderError> {
        let raw = self.fetch(zone, keys)?;
        let rrsets = Self::state(zone, &raw)?;
        tracing::info!(
            "read {zone} from Route 53 ({} requests so far): {} of {} managed RRsets exist",
            self.requests,
            rrsets.len(),
            keys.len()
        );
        Ok(ZoneState { rrsets })
    }

    fn apply(&mut self, zone: &Fqdn, changes: &[Change]) -> Result<Applied, ProviderError> {
        if changes.is_empty() {
            return Ok(Applied {
                zone: zone.clone(),
                changes: 0,
                detail: "nothing to send".into(),
            });
        }
        let started = (self.requests, Instant::now());
        let note = self.apply_zone(zone, changes)?;
        let detail = format!(
            "{note}; {} HTTP requests to Route 53 {} in {:.1} s (credentials from {})",
            self.requests - started.0,
            self.endpoint,
            started.1.elapsed().as_secs_f64(),
            self.credentials.source
        );
        tracing::info!("{zone}: {detail}");
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
    use crate::records::RecordType;

    fn group(index: usize, records: usize, chars: usize) -> Group {
        let set = RawSet {
            key: RrKey::new(Fqdn::parse("x.contoso.com").unwrap(), RecordType::A),
            ttl: 300,
            values: vec!["v".repeat(chars / records.max(1)); records],
            unmanageable: None,
        };
        (
            index,
            vec![(Verb::Delete, set.clone()), (Verb::Create, set)],
        )
    }

    #[test]
    fn batches_keep_within_route_53_limits_and_keep_pairs_together() {
        // 3 changes of 2 x 300 records: 600 + 600 > 1,000, so each goes alone.
        let split = batches(vec![
            group(0, 300, 300),
            group(1, 300, 300),
            group(2, 100, 100),
        ]);
        let sizes: Vec<Vec<usize>> = split
            .iter()
            .map(|b| b.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(sizes, [vec![0], vec![1, 2]]);
        assert!(split
            .iter()
            .all(|b| b.iter().all(|(_, parts)| parts.len() == 2)));
        // Characters of values count too: 2 x 20,000 > 32,000.
        let by_chars = batches(vec![group(0, 1, 20_000), group(1, 1, 20_000)]);
        assert_eq!(by_chars.len(), 2);
        assert_eq!(batches(vec![group(0, 1, 10)]).len(), 1);
    }

    #[test]
    fn errors_map_to_the_engine_kinds() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let refused = |code: &str| Route53Error::Refused {
            zone: zone.clone(),
            request: "POST x".into(),
            status: 400,
            code: code.into(),
            message: "m".into(),
            unchanged: true,
        };
        assert!(matches!(
            ProviderError::from(refused("AccessDenied")),
            ProviderError::Config(_)
        ));
        assert!(matches!(
            ProviderError::from(refused("InvalidChangeBatch")),
            ProviderError::Rejected(_)
        ));
        assert!(refused("InvalidChangeBatch")
            .to_string()
            .ends_with("; nothing was changed in this zone"));
        assert!(is_retryable_code("Throttling") && is_retryable_code("PriorRequestNotComplete"));
        assert!(!is_retryable_code("InvalidChangeBatch"));
        assert_eq!(backoff(1), Duration::from_millis(400));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }
}
