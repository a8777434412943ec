//! TKEY (RFC 2930) in GSS-API mode (RFC 3645 §3): negotiating a GSS-TSIG security context
//! with a DNS server over TCP, as many rounds as the mechanism asks for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{RData, RecordType as HType};

use crate::dns::gss::{Credentials, GssError, Initiator};
use crate::dns::transport::{rcode, rcode_name, Transport};
use crate::dns::tsig::{self, Algorithm, TsigKey};
use crate::dns::wire::{self, Reader, WireError};
use crate::dns::{convert, DnsError};
use crate::records::Fqdn;

/// The TKEY RR type.
pub const TKEY_TYPE: u16 = 249;
const CLASS_ANY: u16 = 255;
/// RFC 2930 §2.5: mode 3 is GSS-API negotiation.
const MODE_GSSAPI: u16 = 3;
/// Kerberos takes one round (two with SPNEGO's mechListMIC); more than this is a loop.
const MAX_ROUNDS: usize = 8;
/// How long we ask the server to keep the context (it may shorten it).
const LIFETIME: u32 = 3600;

/// Why a context could not be negotiated.
#[derive(Debug, thiserror::Error)]
pub enum TkeyError {
    #[error("{0}")]
    Gss(#[from] GssError),
    #[error("{0}")]
    Dns(#[from] DnsError),
    #[error("{server} refused the TKEY negotiation: {} (TKEY error {}){}", rcode_name(*rcode), tsig::error_name(*error), tkey_hint(*rcode, *error))]
    Refused {
        server: std::net::SocketAddr,
        rcode: u8,
        error: u16,
    },
    #[error("{server}: malformed TKEY reply: {reason}")]
    Malformed {
        server: std::net::SocketAddr,
        reason: String,
    },
    #[error("{server}: the GSS-API negotiation did not finish within {MAX_ROUNDS} TKEY rounds")]
    TooManyRounds { server: std::net::SocketAddr },
}

fn tkey_hint(rcode: u8, error: u16) -> &'static str {
    match (rcode, error) {
        (_, tsig::BADKEY) | (_, 19) => {
            "; the server could not accept the Kerberos ticket: is it configured for GSS-TSIG (BIND: tkey-gssapi-keytab; Windows/Samba: an AD-integrated zone) and does its keytab hold the server principal?"
        }
        (_, 21) => "; the server does not know this GSS-TSIG algorithm name: try `gss_algorithm` gss-tsig or gss.microsoft.com",
        (4, _) | (5, _) => "; the server does not do TKEY here: is GSS-TSIG enabled for this zone?",
        _ => "",
    }
}

/// A negotiated context and what negotiating it took.
pub struct Negotiated {
    pub key: TsigKey,
    /// The client principal the context speaks for.
    pub client: Option<String>,
    pub rounds: usize,
    pub took: Duration,
}

/// The TKEY query carrying `token` for the context named `key_name` (RFC 3645 §3.1.1).
pub fn query(
    key_name: &str,
    algorithm: Algorithm,
    token: &[u8],
    now: u64,
    id: u16,
) -> Result<Vec<u8>, WireError> {
    let owner = wire::name_to_wire(key_name)?;
    let mut m = Vec::with_capacity(64 + owner.len() * 2 + token.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend_from_slice(&owner);
    m.extend_from_slice(&TKEY_TYPE.to_be_bytes());
    m.extend_from_slice(&CLASS_ANY.to_be_bytes());
    let mut rdata = wire::name_to_wire(&format!("{}.", algorithm.name()))?;
    let inception = now as u32;
    rdata.extend_from_slice(&inception.to_be_bytes());
    rdata.extend_from_slice(&inception.wrapping_add(LIFETIME).to_be_bytes());
    rdata.extend_from_slice(&MODE_GSSAPI.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());
    let token_len = u16::try_from(token.len()).map_err(|_| WireError::Short(token.len()))?;
    rdata.extend_from_slice(&token_len.to_be_bytes());
    rdata.extend_from_slice(token);
    rdata.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&owner);
    m.extend_from_slice(&TKEY_TYPE.to_be_bytes());
    m.extend_from_slice(&CLASS_ANY.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(&rdata);
    Ok(m)
}

/// The TKEY record of a reply: its error field and the server's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TkeyAnswer {
    pub error: u16,
    pub token: Vec<u8>,
}

/// Finds the TKEY RR in a reply (answer section, or additional for old servers).
pub fn answer(reply: &[u8]) -> Result<Option<TkeyAnswer>, WireError> {
    let mut r = Reader::at(reply, 4);
    let questions = r.u16()?;
    let records = u32::from(r.u16()?) + u32::from(r.u16()?) + u32::from(r.u16()?);
    for _ in 0..questions {
        r.name()?;
        r.bytes(4)?;
    }
    for _ in 0..records {
        r.name()?;
        let rtype = r.u16()?;
        r.bytes(6)?;
        let rdlength = usize::from(r.u16()?);
        let end = r.pos() + rdlength;
        if rtype != TKEY_TYPE {
            r.bytes(rdlength)?;
            continue;
        }
        r.name()?;
        r.bytes(8)?; // inception, expiration
        let _mode = r.u16()?;
        let error = r.u16()?;
        let token_len = usize::from(r.u16()?);
        let token = r.bytes(token_len)?.to_vec();
        let other_len = usize::from(r.u16()?);
        r.bytes(other_len)?;
        if r.pos() != end {
            return Err(WireError::Short(end));
        }
        return Ok(Some(TkeyAnswer { error, token }));
    }
    Ok(None)
}

fn random_label() -> String {
    let mut b = [0u8; 8];
    // A failing RNG leaves a fixed name: still valid, only more likely to collide.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    data_encoding::HEXLOWER.encode(&b)
}

/// Negotiates a context with the server `transport` reaches, as `credentials`, for
/// `server_principal`. Every round is its own TCP exchange (servers keep the half-made
/// context by key name); the context's mutual authentication proves the server.
pub fn negotiate(
    transport: &Transport,
    credentials: &Credentials,
    server_principal: &str,
    algorithm: Algorithm,
) -> Result<Negotiated, TkeyError> {
    let started = Instant::now();
    let server = transport.server;
    let key_name = format!("{}.sig-xmppdns.", random_label());
    let mut initiator = Initiator::new(credentials, server_principal)?;
    let mut input: Option<Vec<u8>> = None;
    let mut rounds = 0;
    loop {
        let step = initiator.step(input.as_deref())?;
        if !step.token.is_empty() {
            rounds += 1;
            if rounds > MAX_ROUNDS {
                return Err(TkeyError::TooManyRounds { server });
            }
            input = Some(round(transport, &key_name, algorithm, &step.token)?);
        }
        if step.complete {
            break;
        }
        if step.token.is_empty() {
            return Err(TkeyError::Malformed {
                server,
                reason: "the GSS-API wants more but gave nothing to send".into(),
            });
        }
    }
    let client = initiator.client().map(str::to_string);
    let context = Arc::new(initiator.finish());
    let key = TsigKey::from_context(&key_name, algorithm, context).map_err(DnsError::Tsig)?;
    Ok(Negotiated {
        key,
        client,
        rounds,
        took: started.elapsed(),
    })
}

/// One TKEY query and its answer's token.
fn round(
    transport: &Transport,
    key_name: &str,
    algorithm: Algorithm,
    token: &[u8],
) -> Result<Vec<u8>, TkeyError> {
    let server = transport.server;
    let malformed = |reason: String| TkeyError::Malformed { server, reason };
    let id = crate::dns::transport::new_id();
    let now = (transport.clock)();
    let message =
        query(key_name, algorithm, token, now, id).map_err(|e| malformed(e.to_string()))?;
    let reply = transport.tcp_exchange(&message)?;
    if wire::id(&reply) != Some(id) || reply.get(2).is_none_or(|b| b & 0x80 == 0) {
        return Err(malformed("the reply does not answer the query".into()));
    }
    let tkey = answer(&reply).map_err(|e| malformed(e.to_string()))?;
    match tkey {
        Some(TkeyAnswer { error: 0, token }) if rcode(&reply) == 0 => Ok(token),
        Some(TkeyAnswer { error, .. }) => Err(TkeyError::Refused {
            server,
            rcode: rcode(&reply),
            error,
        }),
        None if rcode(&reply) != 0 => Err(TkeyError::Refused {
            server,
            rcode: rcode(&reply),
            error: 0,
        }),
        None => Err(malformed("no TKEY record in the reply".into())),
    }
}

/// The zone's primary master (SOA MNAME), by an unsigned query: the host name in the
/// default server principal `DNS/<MNAME>`, as nsupdate -g chooses it.
pub fn soa_mname(transport: &Transport, zone: &Fqdn) -> Result<Option<String>, DnsError> {
    let reply = transport.exchange(None, &|id| {
        let mut m = Message::new();
        m.set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query);
        m.add_query(Query::query(convert::name(zone)?, HType::SOA));
        m.to_vec()
            .map_err(|e| DnsError::Malformed(format!("encoding a query: {e}")))
    })?;
    let message =
        Message::from_vec(&reply.bytes).map_err(|e| DnsError::Malformed(e.to_string()))?;
    Ok(message.answers().iter().find_map(|r| match r.data() {
        RData::SOA(soa) => Some(soa.mname().to_ascii().trim_end_matches('.').to_string()),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_carries_its_token_in_a_gss_tkey_record_that_parses_back() {
        let q = query("abc.sig-xmppdns.", Algorithm::GssTsig, b"token", 1000, 7).unwrap();
        assert_eq!(&q[..2], &7u16.to_be_bytes());
        assert_eq!(&q[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        let parsed = answer(&q).unwrap().unwrap();
        assert_eq!(parsed.error, 0);
        assert_eq!(parsed.token, b"token");
        let text = String::from_utf8_lossy(&q);
        assert!(text.contains("gss-tsig"), "{text}");
    }
}
