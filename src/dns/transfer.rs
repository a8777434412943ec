//! Reading zones: TSIG-signed AXFR over TCP, and signed queries for exact names.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{RData, Record, RecordType as HType};

use crate::dns::transport::{rcode, Transport};
use crate::dns::tsig::{self, TsigKey, Verdict};
use crate::dns::{check_message, check_reply, convert, DnsError};
use crate::records::{Fqdn, Rdata, RecordSet, RecordType, RrKey};

/// What a read returned for the requested keys.
#[derive(Debug, Clone, Default)]
pub struct ZoneData {
    pub serial: Option<u32>,
    pub rrsets: BTreeMap<RrKey, RecordSet>,
    /// Messages the transfer took.
    pub messages: usize,
}

fn query_message(name: &Fqdn, rtype: HType, id: u16) -> Result<Vec<u8>, DnsError> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(false);
    m.add_query(Query::query(convert::name(name)?, rtype));
    m.to_vec()
        .map_err(|e| DnsError::Malformed(format!("encoding a query: {e}")))
}

fn parse(bytes: &[u8]) -> Result<Message, DnsError> {
    let bare = match tsig::find(bytes)? {
        Some(t) => tsig::strip(bytes, &t),
        None => bytes.to_vec(),
    };
    Message::from_vec(&bare).map_err(|e| DnsError::Malformed(e.to_string()))
}

/// Groups records into RRsets of the vocabulary, keeping those whose key `keep` accepts.
struct Collector<'a> {
    keep: &'a dyn Fn(&RrKey) -> bool,
    sets: BTreeMap<RrKey, (u32, Vec<Rdata>)>,
}

impl Collector<'_> {
    fn add(&mut self, record: &Record) {
        let Some(rtype) = convert::our_type(record.record_type()) else {
            return;
        };
        let Some((name, ttl, data)) = convert::from_record(record) else {
            return;
        };
        let key = RrKey::new(name, rtype);
        if (self.keep)(&key) {
            let entry = self.sets.entry(key).or_insert((u32::MAX, Vec::new()));
            entry.0 = entry.0.min(ttl);
            entry.1.push(data);
        }
    }

    fn finish(self) -> BTreeMap<RrKey, RecordSet> {
        self.sets
            .into_iter()
            .filter_map(|(key, (ttl, records))| {
                let set = RecordSet::new(key.name.clone(), key.rtype, ttl, records).ok()?;
                Some((key, set))
            })
            .collect()
    }
}

/// What `axfr` does with the messages of a transfer, apart from the network: each message's
/// checks (the first like a reply, the later ones against the stream's TSIG), its records
/// grouped into RRsets, and the second SOA that ends the zone. Separate from the socket so the
/// fuzzing target `axfr-collector` runs the very code a transfer runs.
pub struct TransferCollector<'a> {
    server: SocketAddr,
    key: Option<&'a TsigKey>,
    collector: Collector<'a>,
    serial: Option<u32>,
    soa_seen: usize,
    messages: usize,
    last_verdict: Verdict,
}

impl<'a> TransferCollector<'a> {
    /// A transfer from `server`, signed with `key` when given, keeping the RRsets `keep` accepts.
    pub fn new(
        server: SocketAddr,
        key: Option<&'a TsigKey>,
        keep: &'a dyn Fn(&RrKey) -> bool,
    ) -> Self {
        TransferCollector {
            server,
            key,
            collector: Collector {
                keep,
                sets: BTreeMap::new(),
            },
            serial: None,
            soa_seen: 0,
            messages: 0,
            last_verdict: Verdict::Unsigned,
        }
    }

    /// Takes one message and what the verifier said of it; true once the zone has ended.
    pub fn message(&mut self, bytes: &[u8], verdict: &Verdict) -> Result<bool, DnsError> {
        self.messages += 1;
        if self.messages == 1 {
            check_message(self.server, self.key, bytes, verdict)?;
        } else if self.key.is_some() && !matches!(verdict, Verdict::Verified | Verdict::Unsigned) {
            // RFC 8945 §5.3.1: inside a signed stream only verified messages and unsigned ones
            // (chained into the next MAC) may be kept; anything else ends the transfer. The
            // verifier already refuses these; this keeps it so whatever it says.
            return Err(DnsError::Tsig(tsig::TsigError::ErrorInStream {
                code: match verdict {
                    Verdict::ServerError { code, .. } => *code,
                    _ => 0,
                },
                signed: false,
            }));
        } else if rcode(bytes) != 0 {
            return Err(DnsError::Rcode {
                server: self.server,
                rcode: rcode(bytes),
                signed: matches!(verdict, Verdict::Verified),
            });
        }
        self.last_verdict = verdict.clone();
        let message = parse(bytes)?;
        for record in message.answers() {
            if let RData::SOA(soa) = record.data() {
                self.soa_seen += 1;
                self.serial.get_or_insert(soa.serial());
                if self.soa_seen == 2 {
                    return Ok(true);
                }
                continue;
            }
            self.collector.add(record);
        }
        Ok(false)
    }

    /// The zone's data, once `message` has said the zone ended.
    pub fn finish(self) -> Result<ZoneData, DnsError> {
        // The last message must be signed, or the end of the zone could have been forged.
        if self.key.is_some() && self.last_verdict != Verdict::Verified {
            return Err(DnsError::Tsig(tsig::TsigError::Unsigned));
        }
        Ok(ZoneData {
            serial: self.serial,
            rrsets: self.collector.finish(),
            messages: self.messages,
        })
    }
}

/// Transfers `zone` with AXFR, verifying every signed message (RFC 8945 §5.3.1), and keeps
/// the RRsets of `keys`.
pub fn axfr(
    transport: &Transport,
    key: Option<&TsigKey>,
    zone: &Fqdn,
    keys: &BTreeSet<RrKey>,
) -> Result<ZoneData, DnsError> {
    let request = query_message(zone, HType::AXFR, 0)?;
    let keep = |k: &RrKey| keys.contains(k);
    let mut transfer = TransferCollector::new(transport.server, key, &keep);
    transport.stream(key, request, &mut |bytes, verdict| {
        transfer.message(bytes, verdict)
    })?;
    transfer.finish()
}

/// Asks for each key in turn (the fallback when transfers are refused). Authoritative
/// NXDOMAIN or an empty answer both mean "absent". An answer a wildcard may have made up is
/// refused ([`DnsError::WildcardAnswer`]): only a transfer shows what really exists.
pub fn query_keys(
    transport: &Transport,
    key: Option<&TsigKey>,
    keys: &BTreeSet<RrKey>,
) -> Result<BTreeMap<RrKey, RecordSet>, DnsError> {
    let mut found = BTreeMap::new();
    for wanted in keys {
        if let Some(set) = query_rrset(transport, key, &wanted.name, wanted.rtype)? {
            refuse_wildcard_match(transport, key, &set)?;
            found.insert(wanted.clone(), set);
        }
    }
    Ok(found)
}

/// A label no zone of ours is expected to hold, for asking whether a wildcard answers beside a
/// name.
const WILDCARD_PROBE_LABEL: &str = "xmppdns-wildcard-check";

/// Refuses `set` when a made-up sibling of its name gets the same records: a wildcard
/// (RFC 4592) then answers for both, and a query cannot tell a real RRset from a synthesised
/// one. The sibling has the same closest encloser as the name, so the same wildcard applies.
fn refuse_wildcard_match(
    transport: &Transport,
    key: Option<&TsigKey>,
    set: &RecordSet,
) -> Result<(), DnsError> {
    let Some((_, parent)) = set.name.as_str().split_once('.') else {
        return Ok(());
    };
    if parent.is_empty() || parent == "." {
        return Ok(());
    }
    let probe = Fqdn::from_absolute(&format!("{WILDCARD_PROBE_LABEL}.{parent}"));
    match query_rrset(transport, key, &probe, set.rtype)? {
        Some(made_up) if made_up.records() == set.records() => Err(DnsError::WildcardAnswer {
            server: transport.server,
            name: set.name.to_string(),
            rtype: set.rtype.to_string(),
            probe: probe.to_string(),
        }),
        _ => Ok(()),
    }
}

/// One RRset by query; `None` when the name or the type does not exist.
pub fn query_rrset(
    transport: &Transport,
    key: Option<&TsigKey>,
    name: &Fqdn,
    rtype: RecordType,
) -> Result<Option<RecordSet>, DnsError> {
    let reply = transport.exchange(key, &|id| {
        query_message(name, convert::hickory_type(rtype), id)
    })?;
    if rcode(&reply.bytes) == 3 {
        // NXDOMAIN: absent. Still refuse an unsigned answer to a signed question.
        if key.is_some() && reply.verdict != Verdict::Verified {
            return Err(DnsError::Tsig(tsig::TsigError::Unsigned));
        }
        return Ok(None);
    }
    check_reply(transport.server, key, &reply)?;
    let wanted = RrKey::new(name.clone(), rtype);
    let keep = |k: &RrKey| *k == wanted;
    let mut collector = Collector {
        keep: &keep,
        sets: BTreeMap::new(),
    };
    for record in parse(&reply.bytes)?.answers() {
        collector.add(record);
    }
    Ok(collector.finish().remove(&wanted))
}

/// The zone's SOA serial, by query.
pub fn soa_serial(
    transport: &Transport,
    key: Option<&TsigKey>,
    zone: &Fqdn,
) -> Result<Option<u32>, DnsError> {
    let reply = transport.exchange(key, &|id| query_message(zone, HType::SOA, id))?;
    check_reply(transport.server, key, &reply)?;
    Ok(parse(&reply.bytes)?
        .answers()
        .iter()
        .find_map(|r| match r.data() {
            RData::SOA(soa) => Some(soa.serial()),
            _ => None,
        }))
}
