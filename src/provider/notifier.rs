//! The rfc2136 provider's `"notify": true`: after each zone's UPDATE, a signed NOTIFY (RFC
//! 1996) to the zone's other authoritative servers, so secondaries that accept it ask for the
//! new serial at once instead of waiting for the primary's own NOTIFY or their refresh timer.
//! A server that refuses is noted once and not asked again by this provider.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::clock::Clock;
use crate::dns::authority;
use crate::dns::batch::BatchSettings;
use crate::dns::notify;
use crate::dns::transport::Transport;
use crate::dns::tsig::TsigKey;
use crate::dns::DnsError;
use crate::records::Fqdn;

/// Per NOTIFY attempt: a secondary answers at once or not at all.
const NOTIFY_TIMEOUT: Duration = Duration::from_millis(300);

pub struct Notifier {
    /// The topology's `nameservers`; empty = each zone's NS records, asked of the primary.
    listed: Vec<SocketAddr>,
    primary: SocketAddr,
    key: Option<TsigKey>,
    clock: Clock,
    /// Servers that refused, with their answer: not sent to again.
    refused: BTreeMap<SocketAddr, String>,
}

impl Notifier {
    pub fn new(
        listed: &[SocketAddr],
        primary: SocketAddr,
        key: Option<TsigKey>,
        clock: Clock,
    ) -> Self {
        Notifier {
            listed: listed.to_vec(),
            primary,
            key,
            clock,
            refused: BTreeMap::new(),
        }
    }

    /// Every authoritative server of `zone` but the primary: the ones `failover` polls.
    fn targets(&self, zone: &Fqdn) -> Vec<SocketAddr> {
        let mut servers = self.listed.clone();
        if servers.is_empty() {
            let settings = BatchSettings {
                attempts: 2,
                ..BatchSettings::default()
            };
            let (found, _) =
                authority::discover(std::slice::from_ref(zone), self.primary, 53, &settings);
            servers = found
                .into_values()
                .filter_map(Result::ok)
                .flat_map(|a| a.addresses())
                .collect();
        }
        servers.retain(|s| *s != self.primary);
        servers
    }

    /// Sends the NOTIFYs for `zone` and says what happened, in words (empty when nothing to
    /// say: no other server).
    pub fn after_update(&mut self, zone: &Fqdn) -> String {
        let mut accepted = 0;
        let mut notes = Vec::new();
        for server in self.targets(zone) {
            if self.refused.contains_key(&server) {
                continue;
            }
            let transport = Transport {
                server,
                timeout: NOTIFY_TIMEOUT,
                attempts: 2,
                clock: self.clock.clone(),
            };
            match notify::send(&transport, self.key.as_ref(), zone) {
                Ok(()) => accepted += 1,
                Err(error @ (DnsError::Rcode { .. } | DnsError::TsigRejected { .. })) => {
                    let said = error.to_string();
                    notes.push(format!(
                        "NOTIFY refused by {server} ({said}); not sent to it again"
                    ));
                    self.refused.insert(server, said);
                }
                Err(error) => notes.push(format!("NOTIFY to {server}: {error}")),
            }
        }
        if accepted > 0 {
            notes.insert(0, format!("NOTIFY accepted by {accepted} server(s)"));
        }
        notes.join("; ")
    }

    /// The servers that refused, with their answers.
    pub fn refused(&self) -> &BTreeMap<SocketAddr, String> {
        &self.refused
    }
}
