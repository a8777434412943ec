//! RFC 2136 dynamic updates signed with TSIG: BIND, Knot, PowerDNS, Windows DNS, appliances.
//!
//! Reads with a signed AXFR (falling back to signed queries for exactly the managed names when
//! the transfer is refused); applies each zone in as few UPDATE messages as fit in 64 KiB,
//! every message guarded by prerequisites so the server itself refuses stale changes. Each
//! message is all-or-nothing; a zone that needs several is not, and its errors say how many
//! had been applied.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::clock::Clock;
use crate::dns::transfer;
use crate::dns::transport::Transport;
use crate::dns::tsig::{TsigError, TsigKey};
use crate::dns::update::{self, RrsetEdit, MAX_MESSAGE};
use crate::dns::{check_reply, DnsError};
use crate::plan::{Action, Change, ZoneState};
use crate::provider::notifier::Notifier;
use crate::provider::outcome::{self, Answer, Outcome};
use crate::provider::rfc2136_gss::GssSession;
use crate::provider::{Applied, Provider, ProviderError};
use crate::records::{Fqdn, RrKey};
use crate::topology::{KeySource, Rfc2136Auth, Rfc2136Config};

/// Room left in a message for the TSIG RR (owner + algorithm names, fixed fields, a SHA-512 MAC).
const TSIG_ROOM: usize = 255 + 255 + 32 + 64;

/// How the current state was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    Axfr { messages: usize },
    Queries { count: usize },
}

pub struct Rfc2136Provider {
    update: Transport,
    update_key: Option<TsigKey>,
    transfer: Transport,
    transfer_key: Option<TsigKey>,
    /// How the last read was done. The log says so at `-v`; this field is for callers that
    /// check it (the tests: a large zone arrives as a multi-message AXFR).
    pub last_read: Option<ReadPath>,
    /// `auth: gss-tsig`: the Kerberos settings and the context (then the keys above are unset).
    gss: Option<GssSession>,
    /// `"notify": true`: NOTIFYs after each zone's UPDATE.
    pub notifier: Option<Notifier>,
}

/// What can go wrong with the rfc2136 provider.
#[derive(Debug, thiserror::Error)]
pub enum Rfc2136Error {
    #[error("TSIG key: {message}")]
    Key { message: String },
    #[error("zone {zone}: {source}{}", if *total > 1 { format!(" ({done} of {total} UPDATE messages had been applied before this one; each message is all-or-nothing)") } else { String::new() })]
    Dns {
        zone: Fqdn,
        source: Box<DnsError>,
        done: usize,
        total: usize,
    },
    #[error("zone {zone}: {source}; reading the primary again to learn whether the UPDATE landed failed too ({reread}), so it may or may not have been applied{}", if *total > 1 { format!(" ({done} of {total} UPDATE messages had been applied before this one)") } else { String::new() })]
    Unsettled {
        zone: Fqdn,
        source: Box<DnsError>,
        reread: String,
        done: usize,
        total: usize,
    },
}

impl From<Rfc2136Error> for ProviderError {
    fn from(error: Rfc2136Error) -> Self {
        let kind = match &error {
            Rfc2136Error::Key { .. } => ProviderError::Config,
            Rfc2136Error::Unsettled { .. } => ProviderError::Ambiguous,
            Rfc2136Error::Dns { source, .. } => match **source {
                DnsError::Io { .. }
                | DnsError::Timeout { .. }
                | DnsError::NoAnswer { .. }
                | DnsError::FamilyUnavailable { .. } => ProviderError::Transport,
                DnsError::Tsig(TsigError::UnsupportedAlgorithm { .. } | TsigError::BadKey(_)) => {
                    ProviderError::Config
                }
                // A reply that cannot be trusted, to a message that may have been applied.
                DnsError::Tsig(_)
                | DnsError::UnsignedSuccess { .. }
                | DnsError::Unverifiable { .. } => ProviderError::Ambiguous,
                DnsError::TsigRejected { .. }
                | DnsError::Rcode { .. }
                | DnsError::Malformed(_)
                | DnsError::WildcardAnswer { .. } => ProviderError::Rejected,
            },
        };
        kind(Box::new(error))
    }
}

/// Loads a key from where the topology says it is.
pub fn load_key(source: &KeySource) -> Result<TsigKey, Rfc2136Error> {
    let key = match source {
        KeySource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Rfc2136Error::Key {
                message: format!("cannot read key file {}: {e}", path.display()),
            })?;
            TsigKey::from_bind_file(&text)
        }
        KeySource::Env(var) => {
            let spec = std::env::var(var).map_err(|_| Rfc2136Error::Key {
                message: format!(
                    "environment variable {var} is not set (expected ALGORITHM:NAME:BASE64SECRET)"
                ),
            })?;
            TsigKey::from_spec(&spec)
        }
    };
    key.map_err(|e| Rfc2136Error::Key {
        message: e.to_string(),
    })
}

/// Loads every key the configuration names, so that a missing or unreadable key file (or an
/// unset variable) is reported when the topology is loaded, before any probe, read or plan.
pub fn check_keys(config: &Rfc2136Config) -> Result<(), Rfc2136Error> {
    for (field, source) in [("key", &config.key), ("transfer_key", &config.transfer_key)] {
        if let Some(source) = source {
            match load_key(source) {
                Ok(_) => {}
                Err(Rfc2136Error::Key { message }) => {
                    return Err(Rfc2136Error::Key {
                        message: format!("provider.{field}_{}: {message}", source_kind(source)),
                    })
                }
                Err(other) => return Err(other),
            }
        }
    }
    Ok(())
}

fn source_kind(source: &KeySource) -> &'static str {
    match source {
        KeySource::File(_) => "file",
        KeySource::Env(_) => "env",
    }
}

/// The wire's view of plan changes (the RRset each must still find, the one it installs),
/// in order. A change whose action does not fit its `before` (a hand-edited saved plan) is
/// refused here, before anything is sent.
pub fn edits(changes: &[Change]) -> Result<Vec<RrsetEdit<'_>>, DnsError> {
    changes
        .iter()
        .map(|change| match (&change.before, change.action) {
            (Some(_), Action::Update | Action::Delete) | (None, Action::Create) => Ok(RrsetEdit {
                name: &change.name,
                rtype: change.rtype,
                before: change.before.as_ref(),
                after: change.after.as_ref(),
            }),
            _ => Err(DnsError::Malformed(format!(
                "{} {}: a {} needs {} `before`",
                change.name,
                change.rtype,
                change.action.as_str(),
                if change.action == Action::Create {
                    "no"
                } else {
                    "a"
                }
            ))),
        })
        .collect()
}

impl Rfc2136Provider {
    pub fn new(config: &Rfc2136Config, clock: Clock) -> Result<Self, Rfc2136Error> {
        let update_key = config.key.as_ref().map(load_key).transpose()?;
        let transfer_key = match &config.transfer_key {
            Some(source) => Some(load_key(source)?),
            None => update_key.clone(),
        };
        let transport = |server| Transport {
            server,
            timeout: config.timeout,
            attempts: config.attempts,
            clock: clock.clone(),
        };
        let gss = match &config.auth {
            Rfc2136Auth::GssTsig(gss) => Some(GssSession::new(gss)),
            Rfc2136Auth::None => {
                tracing::warn!("provider.auth is `none`: updates to {} are unsigned, so anyone on the network path can forge the server's replies; outcomes are confirmed by reading the records back", config.server);
                None
            }
            Rfc2136Auth::Tsig => None,
        };
        Ok(Rfc2136Provider {
            update: transport(config.server),
            update_key,
            transfer: transport(config.transfer_server.unwrap_or(config.server)),
            transfer_key,
            last_read: None,
            gss,
            notifier: None,
        })
    }

    /// With `"notify": true`: NOTIFY `nameservers` (or each zone's NS servers) but the
    /// primary after each zone's UPDATE.
    pub fn with_notify(mut self, nameservers: &[SocketAddr]) -> Self {
        self.notifier = Some(Notifier::new(
            nameservers,
            self.update.server,
            self.update_key.clone(),
            self.update.clock.clone(),
        ));
        self
    }

    fn dns_error(zone: &Fqdn, source: DnsError, done: usize, total: usize) -> ProviderError {
        Rfc2136Error::Dns {
            zone: zone.clone(),
            source: Box::new(source),
            done,
            total,
        }
        .into()
    }

    /// A refusal for the engine, with GSS-TSIG's principal hints when it is REFUSED.
    fn refusal(&self, zone: &Fqdn, error: DnsError, done: usize, total: usize) -> ProviderError {
        let error = match &self.gss {
            Some(gss) => match gss.explain(zone, error) {
                Err(explained) => return explained.into(),
                Ok(error) => error,
            },
            None => error,
        };
        Self::dns_error(zone, error, done, total)
    }

    /// `auth: gss-tsig`: the managed RRsets by GSS-signed queries (Windows DNS and Samba do
    /// not serve AXFR to these clients).
    fn read_signed_queries(
        &mut self,
        zone: &Fqdn,
        keys: &BTreeSet<RrKey>,
    ) -> Result<ZoneState, ProviderError> {
        let gss = self.gss.as_mut().expect("only called with gss");
        let key = Some(gss.key(&self.update, zone)?).filter(|_| gss.replies_verify);
        let rrsets = match transfer::query_keys(&self.update, key.as_ref(), keys) {
            Err(e) if gss.forget_if_expired(&e) => {
                let key = gss.key(&self.update, zone)?;
                transfer::query_keys(&self.update, Some(&key), keys)
            }
            // Samba AD DC and Windows DNS sign no reply verifiably: a signed query gains
            // nothing over an unsigned one there, and they answer queries from anyone.
            Err(DnsError::Unverifiable { .. }) => {
                tracing::info!("{}: GSS-signed replies do not verify (Samba AD DC / Windows DNS); reading with unsigned queries", self.update.server);
                gss.replies_verify = false;
                transfer::query_keys(&self.update, None, keys)
            }
            other => other,
        }
        .map_err(|e| Self::dns_error(zone, e, 0, 0))?;
        tracing::info!(
            "read {zone}: {} managed RRsets by {} query to {}",
            keys.len(),
            if gss.replies_verify {
                "GSS-signed"
            } else {
                "unsigned"
            },
            self.update.server
        );
        self.last_read = Some(ReadPath::Queries { count: keys.len() });
        Ok(ZoneState { rrsets })
    }

    /// Reads `keys` from `server`: a signed AXFR, or signed queries for exactly the managed
    /// names when the transfer is refused by policy.
    fn read_from(
        &mut self,
        server: &Transport,
        key: Option<&TsigKey>,
        zone: &Fqdn,
        keys: &BTreeSet<RrKey>,
    ) -> Result<ZoneState, ProviderError> {
        match transfer::axfr(server, key, zone, keys) {
            Ok(data) => {
                tracing::info!(
                    "read {zone} by AXFR from {} ({} messages)",
                    server.server,
                    data.messages
                );
                self.last_read = Some(ReadPath::Axfr {
                    messages: data.messages,
                });
                Ok(ZoneState {
                    rrsets: data.rrsets,
                })
            }
            // Transfers refused by policy: ask for exactly the managed names instead.
            Err(DnsError::Rcode { rcode: 5 | 9, .. }) => {
                tracing::info!(
                    "AXFR of {zone} refused by {}; reading {} managed RRsets by query",
                    server.server,
                    keys.len()
                );
                let rrsets = transfer::query_keys(&self.update, self.update_key.as_ref(), keys)
                    .map_err(|e| Self::dns_error(zone, e, 0, 0))?;
                self.last_read = Some(ReadPath::Queries { count: keys.len() });
                Ok(ZoneState { rrsets })
            }
            Err(e) => Err(Self::dns_error(zone, e, 0, 0)),
        }
    }

    /// Sends one UPDATE and checks the reply, with the key it was signed with: the outer error
    /// is a failure to get a GSS-TSIG context, the inner one what the exchange said. A context
    /// the server forgot (BADKEY) is negotiated again once and the message resent (BADKEY means
    /// it was not applied).
    fn exchange_update(
        &mut self,
        zone: &Fqdn,
        encoded: &[u8],
    ) -> Result<(Option<TsigKey>, Result<(), DnsError>), ProviderError> {
        loop {
            let key = match self.gss.as_mut() {
                Some(gss) => Some(gss.key(&self.update, zone)?),
                None => self.update_key.clone(),
            };
            let started = std::time::Instant::now();
            let result = self
                .update
                .exchange(key.as_ref(), &|id| {
                    Ok(update::with_id(encoded.to_vec(), id))
                })
                .and_then(|reply| check_reply(self.update.server, key.as_ref(), &reply));
            tracing::info!(
                "UPDATE to {}: answered in {:.1} ms",
                self.update.server,
                started.elapsed().as_secs_f64() * 1000.0
            );
            if let (Err(e), Some(gss)) = (&result, self.gss.as_mut()) {
                if gss.forget_if_expired(e) {
                    continue;
                }
            }
            return Ok((key, result));
        }
    }

    /// What an UPDATE's failure says on its own. Only errors that prove nothing left this host
    /// (a key that cannot sign, an address family this host lacks, a connection refused) are
    /// final; anything else may follow a message that landed (a lost or unverifiable answer,
    /// SERVFAIL, a prerequisite failure or any other answer to a retry), so it is settled by
    /// reading the primary.
    fn answer(error: DnsError) -> Answer<DnsError> {
        let unsent = match &error {
            DnsError::Tsig(TsigError::UnsupportedAlgorithm { .. } | TsigError::BadKey(_))
            | DnsError::FamilyUnavailable { .. } => true,
            DnsError::Io { source, .. } => source.kind() == std::io::ErrorKind::ConnectionRefused,
            _ => false,
        };
        if unsent {
            Answer::Refused(error)
        } else {
            Answer::Unsure(error)
        }
    }

    /// Sends one UPDATE message and settles its outcome; `Ok(Some(note))` when an unsure
    /// answer was overruled by reading the primary again.
    fn send(
        &mut self,
        zone: &Fqdn,
        batch: &[Change],
        encoded: &[u8],
        (done, total): (usize, usize),
    ) -> Result<Option<String>, ProviderError> {
        let (key, result) = self.exchange_update(zone, encoded)?;
        let answer = match result {
            Ok(()) => Answer::Done,
            Err(error) => Self::answer(error),
        };
        let stale = matches!(&answer, Answer::Unsure(e) if matches!(e.rcode(), Some(7 | 8)));
        let keys: BTreeSet<RrKey> = batch.iter().map(Change::key).collect();
        // Settled against the primary (the server UPDATEs go to), never `transfer_server`:
        // a lagging secondary would make a landed message look lost.
        let primary = self.update.clone();
        let reread = || {
            if self.gss.is_some() {
                self.read_signed_queries(zone, &keys)
            } else {
                self.read_from(&primary, key.as_ref(), zone, &keys)
            }
            .map(|now| now.rrsets)
        };
        match outcome::settle(answer, batch, reread) {
            Outcome::Applied { overruled } => Ok(overruled
                .map(|error| format!("message {} confirmed by re-reading ({error})", done + 1))),
            Outcome::Drifted { drift, .. } if stale && done == 0 => Err(ProviderError::Stale {
                zone: zone.clone(),
                drift,
            }),
            // A GSS-TSIG refusal whose signature did not verify, which the records confirm:
            // the server's real answer, no longer ambiguous.
            Outcome::NotApplied(error) if unverified_refusal(&error) => {
                Err(match self.refusal(zone, error, done, total) {
                    ProviderError::Ambiguous(e) => ProviderError::Rejected(e),
                    other => other,
                })
            }
            Outcome::NotApplied(error) => Err(self.refusal(zone, error, done, total)),
            Outcome::Drifted { error, .. } => Err(Self::dns_error(zone, error, done, total)),
            Outcome::Unknown { error, reread } => Err(Rfc2136Error::Unsettled {
                zone: zone.clone(),
                source: Box::new(error),
                reread,
                done,
                total,
            }
            .into()),
        }
    }
}

/// A GSS-TSIG reply that did not verify, saying the update was not done.
fn unverified_refusal(error: &DnsError) -> bool {
    matches!(error, DnsError::Unverifiable { rcode, .. } if *rcode != 0)
}

impl Provider for Rfc2136Provider {
    fn kind(&self) -> &'static str {
        "rfc2136"
    }

    fn read(&mut self, zone: &Fqdn, keys: &BTreeSet<RrKey>) -> Result<ZoneState, ProviderError> {
        if self.gss.is_some() {
            return self.read_signed_queries(zone, keys);
        }
        let (server, key) = (self.transfer.clone(), self.transfer_key.clone());
        self.read_from(&server, key.as_ref(), zone, keys)
    }

    fn apply(&mut self, zone: &Fqdn, changes: &[Change]) -> Result<Applied, ProviderError> {
        let batches = edits(changes)
            .and_then(|edits| update::batches_encoded(zone, &edits, MAX_MESSAGE - TSIG_ROOM))
            .map_err(|e| Self::dns_error(zone, e, 0, 0))?;
        let total = batches.len();
        let mut notes = Vec::new();
        for (done, (range, encoded)) in batches.into_iter().enumerate() {
            let span = || {
                format!(
                    "message {} changes {}..{}",
                    done + 1,
                    range.start,
                    range.end
                )
            };
            crate::failpoint::hit("update-send", span);
            let note = self.send(zone, &changes[range.clone()], &encoded, (done, total))?;
            crate::failpoint::hit("update-answered", span);
            notes.extend(note);
        }
        if let Some(notifier) = &mut self.notifier {
            notes.push(notifier.after_update(zone));
            notes.retain(|n| !n.is_empty());
        }
        let mut detail = format!("{} UPDATE message(s) to {}", total, self.update.server);
        if !notes.is_empty() {
            detail.push_str("; ");
            detail.push_str(&notes.join("; "));
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
    use crate::records::{Rdata, RecordSet, RecordType};

    #[test]
    fn a_change_whose_action_does_not_fit_its_guard_is_refused() {
        let name = Fqdn::parse("xmpp.contoso.com").unwrap();
        let set = RecordSet::new(
            name.clone(),
            RecordType::A,
            300,
            vec![Rdata::A("192.0.2.10".parse().unwrap())],
        )
        .unwrap();
        let change = |action, before: Option<&RecordSet>| Change {
            zone: Fqdn::parse("contoso.com").unwrap(),
            action,
            name: name.clone(),
            rtype: RecordType::A,
            before: before.cloned(),
            after: Some(set.clone()),
        };
        let good = [
            change(Action::Create, None),
            change(Action::Update, Some(&set)),
        ];
        let edits = edits(&good).unwrap();
        assert_eq!(edits[0].before, None);
        assert_eq!(edits[1].before, Some(&set));
        let err = super::edits(&[change(Action::Delete, None)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed DNS data: xmpp.contoso.com. A: a delete needs a `before`"
        );
        let err = super::edits(&[change(Action::Create, Some(&set))]).unwrap_err();
        assert!(
            err.to_string().ends_with("a create needs no `before`"),
            "{err}"
        );
    }

    /// Only a failure that proves nothing left this host is final; everything else after a
    /// send (EOF or a reset on TCP, an unsigned or unverifiable reply, SERVFAIL, a prerequisite
    /// failure that may answer a retry) is settled by reading the primary (#12 item 2).
    #[test]
    fn only_failures_before_sending_are_final() {
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let io = |kind| DnsError::Io {
            server,
            source: std::io::Error::from(kind),
        };
        let unsure = [
            io(std::io::ErrorKind::UnexpectedEof),
            io(std::io::ErrorKind::ConnectionReset),
            DnsError::UnsignedSuccess { server },
            DnsError::Unverifiable {
                server,
                rcode: 0,
                source: TsigError::Unsigned,
            },
            DnsError::Tsig(TsigError::Unsigned),
            DnsError::Rcode {
                server,
                rcode: 2,
                signed: false,
            },
            DnsError::Rcode {
                server,
                rcode: 8,
                signed: true,
            },
            DnsError::Timeout { server },
        ];
        for error in unsure {
            let shown = error.to_string();
            assert!(
                matches!(Rfc2136Provider::answer(error), Answer::Unsure(_)),
                "settled by reading: {shown}"
            );
        }
        let refused = [
            io(std::io::ErrorKind::ConnectionRefused),
            DnsError::FamilyUnavailable {
                server,
                reason: "no IPv6".into(),
            },
        ];
        for error in refused {
            let shown = error.to_string();
            assert!(
                matches!(Rfc2136Provider::answer(error), Answer::Refused(_)),
                "final, nothing was sent: {shown}"
            );
        }
    }

    #[test]
    fn dns_errors_map_to_the_engine_kinds_with_the_same_words() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let server = "127.0.0.1:53".parse().unwrap();
        let of = |source, done, total| Rfc2136Provider::dns_error(&zone, source, done, total);
        let lost = of(
            DnsError::NoAnswer {
                server,
                attempts: 2,
                waited: std::time::Duration::from_secs(3),
                last: "no answer in time".into(),
            },
            1,
            3,
        );
        assert!(matches!(lost, ProviderError::Transport(_)), "{lost:?}");
        assert!(lost.to_string().ends_with(
            "(1 of 3 UPDATE messages had been applied before this one; each message is all-or-nothing)"
        ));
        let refused = of(
            DnsError::Rcode {
                server,
                rcode: 5,
                signed: true,
            },
            0,
            1,
        );
        assert!(matches!(refused, ProviderError::Rejected(_)));
        assert!(refused
            .to_string()
            .starts_with("zone contoso.com.: 127.0.0.1:53 answered REFUSED"));
        let untrusted = of(DnsError::UnsignedSuccess { server }, 0, 1);
        assert!(matches!(untrusted, ProviderError::Ambiguous(_)));
        let key: ProviderError = Rfc2136Error::Key {
            message: "no such file".into(),
        }
        .into();
        assert!(matches!(key, ProviderError::Config(_)));
        assert_eq!(key.to_string(), "TSIG key: no such file");
    }
}
