//! The only place that touches the wire: TSIG, UPDATE messages, transfers, queries, transport.

pub mod authority;
pub mod batch;
pub mod convert;
pub mod encoder;
pub mod gss;
pub mod notify;
pub mod tkey;
pub mod transfer;
pub mod transport;
pub mod tsig;
pub mod update;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use crate::dns::transport::{rcode, rcode_name, Reply};
use crate::dns::tsig::{TsigError, TsigKey, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("{server}: {source}")]
    Io {
        server: SocketAddr,
        source: std::io::Error,
    },
    #[error("{server}: no answer in time")]
    Timeout { server: SocketAddr },
    #[error("server {server} did not answer ({attempts} attempt(s) over {:.1} s: {last}); is it running and reachable?", waited.as_secs_f64())]
    NoAnswer {
        server: SocketAddr,
        attempts: u32,
        waited: Duration,
        last: String,
    },
    /// This host cannot send to the server's address family at all (no IPv6 socket, no route
    /// to any IPv6 network, say). Says nothing about the server; only its family's questions
    /// fail this way.
    #[error("{server}: address family unavailable: this host cannot send to IPv{} addresses ({reason})", if server.is_ipv4() { 4 } else { 6 })]
    FamilyUnavailable { server: SocketAddr, reason: String },
    #[error("{0}")]
    Tsig(#[from] TsigError),
    #[error("{server} answered {} with TSIG error {}: {hint}", rcode_name(*rcode), tsig::error_name(*tsig_error))]
    TsigRejected {
        server: SocketAddr,
        rcode: u8,
        tsig_error: u16,
        hint: String,
    },
    #[error("{server} answered {} ({}){}", rcode_name(*rcode), rcode_meaning(*rcode), if *signed { "" } else { " in an unsigned reply" })]
    Rcode {
        server: SocketAddr,
        rcode: u8,
        signed: bool,
    },
    /// A GSS-TSIG reply whose signature does not verify. Samba AD DC and Windows DNS sign
    /// their UPDATE replies this way although they applied the update: the outcome is unknown
    /// until the records are read back.
    #[error("{server} answered {} in a reply whose GSS-TSIG signature does not verify ({source}); Samba AD DC and Windows DNS reply this way, so the outcome is settled by reading back", rcode_name(*rcode))]
    Unverifiable {
        server: SocketAddr,
        rcode: u8,
        source: TsigError,
    },
    #[error("{server} answered NOERROR without a TSIG signature to a signed request: the reply cannot be trusted (forged or a middlebox?)")]
    UnsignedSuccess { server: SocketAddr },
    #[error("malformed DNS data: {0}")]
    Malformed(String),
    /// Reading by query (the server refuses zone transfers), an answer that a wildcard may have
    /// made up: guarding an UPDATE on it would fail with NXRRSET on every run.
    #[error("{server} answers {name} {rtype} from a wildcard: a made-up name beside it ({probe}) gets the same records. The server refuses zone transfers, so xmppdns cannot tell whether this RRset really exists, and an UPDATE guarded on it would be refused (NXRRSET) on every run. Allow AXFR for the key (BIND: allow-transfer {{ key NAME; }}), or replace the wildcard's match with an explicit record at {name}")]
    WildcardAnswer {
        server: SocketAddr,
        name: String,
        rtype: String,
        probe: String,
    },
}

impl DnsError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, DnsError::Timeout { .. })
    }

    /// True when the question could not be sent because this host lacks the address family.
    pub fn is_family_unavailable(&self) -> bool {
        matches!(self, DnsError::FamilyUnavailable { .. })
    }

    /// The response code the server gave, if that is what this error is.
    pub fn rcode(&self) -> Option<u8> {
        match self {
            DnsError::Rcode { rcode, .. }
            | DnsError::TsigRejected { rcode, .. }
            | DnsError::Unverifiable { rcode, .. } => Some(*rcode),
            _ => None,
        }
    }
}

/// What a response code means, in words.
fn rcode_meaning(code: u8) -> &'static str {
    match code {
        1 => "the server could not parse the request",
        2 => "the server failed internally",
        3 => "the name does not exist",
        4 => "the server does not implement this request",
        5 => "the server refused; the likely causes, in order: (1) the zone is not on that server (is it the zone's primary?); (2) the key is missing from the topology (`key_file` / `key_env`) or unknown to the server; (3) the server's `allow-update` / `update-policy` (or `allow-transfer`, for reads) does not grant this key this zone",
        6 => "a name that must not exist exists",
        7 => "an RRset that must not exist exists: it was created since it was read",
        8 => "an RRset is not as it was read: it changed since it was read",
        9 => "the server is not authoritative for the zone, or did not accept the key",
        10 => "a name is outside the zone",
        _ => "unexpected",
    }
}

/// Turns a reply into success or a precise error. A reply to a signed request counts as
/// success only when it is signed and verifies.
pub fn check_reply(
    server: SocketAddr,
    key: Option<&TsigKey>,
    reply: &Reply,
) -> Result<(), DnsError> {
    check_message(server, key, &reply.bytes, &reply.verdict)
}

/// `check_reply` for one message and what its TSIG said (a message of a stream, say).
pub fn check_message(
    server: SocketAddr,
    key: Option<&TsigKey>,
    message: &[u8],
    verdict: &Verdict,
) -> Result<(), DnsError> {
    let code = rcode(message);
    match (verdict, key) {
        (
            Verdict::ServerError {
                code: tsig_error,
                server_time,
                signed,
            },
            Some(key),
        ) => Err(DnsError::TsigRejected {
            server,
            rcode: code,
            tsig_error: *tsig_error,
            hint: tsig_hint(key, *tsig_error, *server_time, *signed),
        }),
        (Verdict::Unsigned, Some(_)) if code == 0 => Err(DnsError::UnsignedSuccess { server }),
        (verdict, _) if code != 0 => Err(DnsError::Rcode {
            server,
            rcode: code,
            signed: matches!(verdict, Verdict::Verified),
        }),
        _ => Ok(()),
    }
}

/// What to do about a TSIG error the server answered with.
fn tsig_hint(key: &TsigKey, tsig_error: u16, server_time: Option<u64>, signed: bool) -> String {
    match tsig_error {
        tsig::BADSIG => format!(
            "the server knows key {} but the signature did not verify: wrong secret",
            key.name()
        ),
        tsig::BADKEY => format!(
            "the server does not know key {} ({}): check the key name and algorithm",
            key.name(),
            key.algorithm()
        ),
        // RFC 8945 §5.2.3: a server signs its BADTIME replies, so an unsigned one may be
        // forged, and the time it claims is not the server's clock.
        tsig::BADTIME if !signed => "clock skew, in an unsigned reply (it may be forged, and the time in it cannot be trusted); check NTP on this machine and on the server".into(),
        tsig::BADTIME => match server_time {
            Some(t) => {
                format!("clock skew: the server's clock says {t}; check NTP on this machine")
            }
            None => "clock skew between this machine and the server; check NTP".into(),
        },
        tsig::BADTRUNC => "the server refused a truncated MAC".into(),
        _ => "the server rejected the signature".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tsig::{Algorithm, Secret};

    fn badtime(signed: bool) -> String {
        let key = TsigKey::new("k", Algorithm::HmacSha256, Secret::new(vec![1; 32])).unwrap();
        let mut reply = vec![0u8; 12];
        reply[2] = 0x80;
        reply[3] = 9; // NOTAUTH
        let verdict = Verdict::ServerError {
            code: tsig::BADTIME,
            server_time: signed.then_some(1_700_000_000),
            signed,
        };
        let server = "127.0.0.1:53".parse().unwrap();
        check_message(server, Some(&key), &reply, &verdict)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_unsigned_badtime_is_reported_as_unsigned_without_a_server_clock() {
        let signed = badtime(true);
        assert!(
            signed.contains("BADTIME") && signed.contains("server's clock says 1700000000"),
            "{signed}"
        );
        let unsigned = badtime(false);
        assert!(
            unsigned.contains("BADTIME")
                && unsigned.contains("unsigned")
                && !unsigned.contains("server's clock says"),
            "{unsigned}"
        );
    }
}
