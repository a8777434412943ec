//! GSS-TSIG for the rfc2136 provider: one security context per server per command,
//! negotiated on first use, renegotiated once when the server has forgotten it.

use std::net::SocketAddr;

use crate::dns::gss::Credentials;
use crate::dns::tkey::{self, TkeyError};
use crate::dns::transport::Transport;
use crate::dns::tsig::{self, Algorithm, TsigError, TsigKey};
use crate::dns::DnsError;
use crate::provider::ProviderError;
use crate::records::Fqdn;
use crate::topology::GssTsigConfig;

/// The settings and, once negotiated, the context.
pub struct GssSession {
    credentials: Credentials,
    server_principal: Option<String>,
    algorithm: Algorithm,
    key: Option<TsigKey>,
    /// The client principal, for refusal hints.
    client: Option<String>,
    renegotiated: bool,
    /// False once a signed reply failed to verify: the server (Samba AD DC, Windows DNS)
    /// signs nothing verifiably, so reads go unsigned.
    pub replies_verify: bool,
}

/// GSS-TSIG failures, in Kerberos terms.
#[derive(Debug, thiserror::Error)]
pub enum GssTsigError {
    #[error("zone {zone}: GSS-TSIG with {server}: {source}")]
    Negotiation {
        zone: Fqdn,
        server: SocketAddr,
        source: Box<TkeyError>,
    },
    #[error("zone {zone}: {source}; nothing was changed: the server did not let principal {principal} change this zone. BIND: `update-policy {{ grant {principal} ... }};` must allow it; Windows DNS / Samba AD DC (Samba answers SERVFAIL here): the account needs Create All Child Objects and Write on the zone, and Write on records another account created (or membership of DnsAdmins), and the zone must allow secure dynamic updates")]
    Refused {
        zone: Fqdn,
        principal: String,
        source: Box<DnsError>,
    },
}

impl From<GssTsigError> for ProviderError {
    fn from(error: GssTsigError) -> Self {
        let kind = match &error {
            GssTsigError::Negotiation { source, .. } => match **source {
                TkeyError::Dns(ref e) if e.rcode().is_none() => ProviderError::Transport,
                TkeyError::Gss(_) => ProviderError::Config,
                _ => ProviderError::Rejected,
            },
            GssTsigError::Refused { .. } => ProviderError::Rejected,
        };
        kind(Box::new(error))
    }
}

impl GssSession {
    pub fn new(config: &GssTsigConfig) -> Self {
        let credentials = match (&config.keytab, &config.principal) {
            (Some(path), Some(principal)) => Credentials::Keytab {
                path: path.clone(),
                principal: principal.clone(),
            },
            (_, principal) => Credentials::TicketCache {
                principal: principal.clone(),
            },
        };
        GssSession {
            credentials,
            server_principal: config.server_principal.clone(),
            algorithm: if config.microsoft_algorithm {
                Algorithm::GssMicrosoft
            } else {
                Algorithm::GssTsig
            },
            key: None,
            client: config.principal.clone(),
            renegotiated: false,
            replies_verify: true,
        }
    }

    /// The context's key, negotiated with the server `transport` reaches on first use.
    pub fn key(&mut self, transport: &Transport, zone: &Fqdn) -> Result<TsigKey, ProviderError> {
        if let Some(key) = &self.key {
            return Ok(key.clone());
        }
        let negotiation = |source: TkeyError| GssTsigError::Negotiation {
            zone: zone.clone(),
            server: transport.server,
            source: Box::new(source),
        };
        let principal = match &self.server_principal {
            Some(p) => p.clone(),
            None => default_server_principal(transport, zone).map_err(negotiation)?,
        };
        let done = tkey::negotiate(transport, &self.credentials, &principal, self.algorithm)
            .map_err(negotiation)?;
        tracing::info!(
            "GSS-TSIG context with {} ({principal}) established in {} TKEY round trip(s), {:.1} ms",
            transport.server,
            done.rounds,
            done.took.as_secs_f64() * 1000.0
        );
        if done.client.is_some() {
            self.client = done.client;
        }
        self.key = Some(done.key.clone());
        Ok(done.key)
    }

    /// True (once per command) when `error` says the server or our library no longer holds
    /// the context: it is dropped, and the caller negotiates again and resends.
    pub fn forget_if_expired(&mut self, error: &DnsError) -> bool {
        let expired = matches!(
            error,
            DnsError::TsigRejected {
                tsig_error: tsig::BADKEY,
                ..
            } | DnsError::Tsig(TsigError::Context(_))
        );
        if expired && !self.renegotiated {
            tracing::info!("the GSS-TSIG context expired ({error}); negotiating a new one");
            self.renegotiated = true;
            self.key = None;
            return true;
        }
        false
    }

    /// A refusal (REFUSED; SERVFAIL in a reply that does not verify, as Samba answers a
    /// principal without rights), with what to check for the principal; other errors unchanged.
    pub fn explain(&self, zone: &Fqdn, error: DnsError) -> Result<DnsError, GssTsigError> {
        let refused =
            error.rcode() == Some(5) || matches!(error, DnsError::Unverifiable { rcode: 2, .. });
        if refused {
            return Err(GssTsigError::Refused {
                zone: zone.clone(),
                principal: self
                    .client
                    .clone()
                    .unwrap_or_else(|| "(the ticket's principal)".into()),
                source: Box::new(error),
            });
        }
        Ok(error)
    }
}

/// `DNS/<SOA MNAME>`, as nsupdate -g derives it.
fn default_server_principal(transport: &Transport, zone: &Fqdn) -> Result<String, TkeyError> {
    match tkey::soa_mname(transport, zone)? {
        Some(mname) if !mname.is_empty() => Ok(format!("DNS/{mname}")),
        _ => Err(TkeyError::Dns(DnsError::Malformed(format!(
            "{} gave no SOA for {zone} to derive the server principal DNS/<MNAME> from; set `server_principal`",
            transport.server
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> GssSession {
        GssSession::new(&GssTsigConfig {
            keytab: None,
            principal: Some("svc@CONTOSO.COM".into()),
            server_principal: None,
            microsoft_algorithm: false,
        })
    }

    #[test]
    fn refusals_name_the_principal_and_only_refusals() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let server = "127.0.0.1:53".parse().unwrap();
        let refused = DnsError::Rcode {
            server,
            rcode: 5,
            signed: true,
        };
        let err = session().explain(&zone, refused).unwrap_err();
        assert!(err
            .to_string()
            .contains("did not let principal svc@CONTOSO.COM"));
        assert!(matches!(
            ProviderError::from(err),
            ProviderError::Rejected(_)
        ));
        let samba = DnsError::Unverifiable {
            server,
            rcode: 2,
            source: TsigError::BadMac { key: "k.".into() },
        };
        assert!(session().explain(&zone, samba).is_err());
        let failed = DnsError::Rcode {
            server,
            rcode: 2,
            signed: true,
        };
        assert!(
            session().explain(&zone, failed).is_ok(),
            "a verified SERVFAIL is a failure"
        );
    }

    #[test]
    fn a_forgotten_context_is_renegotiated_once_per_command() {
        let badkey = DnsError::TsigRejected {
            server: "127.0.0.1:53".parse().unwrap(),
            rcode: 9,
            tsig_error: tsig::BADKEY,
            hint: String::new(),
        };
        let mut gss = session();
        assert!(gss.forget_if_expired(&badkey));
        assert!(!gss.forget_if_expired(&badkey), "only once");
        assert!(!session().forget_if_expired(&DnsError::Malformed("x".into())));
    }
}
