//! Conversions between the shared record vocabulary and hickory's wire types.

use hickory_proto::rr::rdata::{A, AAAA, CNAME, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType as HType};

use crate::dns::DnsError;
use crate::records::{Fqdn, Rdata, RecordSet, RecordType, Srv};

pub fn name(fqdn: &Fqdn) -> Result<Name, DnsError> {
    Name::from_ascii(fqdn.as_str()).map_err(|e| DnsError::Malformed(format!("{fqdn}: {e}")))
}

pub fn hickory_type(rtype: RecordType) -> HType {
    match rtype {
        RecordType::A => HType::A,
        RecordType::Aaaa => HType::AAAA,
        RecordType::Srv => HType::SRV,
        RecordType::Cname => HType::CNAME,
    }
}

pub fn our_type(rtype: HType) -> Option<RecordType> {
    match rtype {
        HType::A => Some(RecordType::A),
        HType::AAAA => Some(RecordType::Aaaa),
        HType::SRV => Some(RecordType::Srv),
        HType::CNAME => Some(RecordType::Cname),
        _ => None,
    }
}

fn rdata(data: &Rdata) -> Result<RData, DnsError> {
    Ok(match data {
        Rdata::A(ip) => RData::A(A(*ip)),
        Rdata::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        Rdata::Srv(s) => RData::SRV(SRV::new(s.priority, s.weight, s.port, name(&s.target)?)),
        Rdata::Cname(target) => RData::CNAME(CNAME(name(target)?)),
    })
}

/// The records of an RRset with the given TTL and class IN (TTL 0 for prerequisites).
pub fn records(set: &RecordSet, ttl: u32) -> Result<Vec<Record>, DnsError> {
    let owner = name(&set.name)?;
    set.records()
        .iter()
        .map(|r| Ok(Record::from_rdata(owner.clone(), ttl, rdata(r)?)))
        .collect()
}

/// An empty-RDATA record of `class` (RFC 2136 "RRset does not exist" / "delete RRset").
pub fn empty(owner: &Fqdn, rtype: RecordType, class: DNSClass) -> Result<Record, DnsError> {
    let mut record = Record::update0(name(owner)?, 0, hickory_type(rtype));
    record.set_dns_class(class);
    Ok(record)
}

/// One wire record in the vocabulary, if it is of a type this tool handles.
pub fn from_record(record: &Record) -> Option<(Fqdn, u32, Rdata)> {
    let data = from_rdata(record.data())?;
    Some((
        Fqdn::from_absolute(&record.name().to_ascii()),
        record.ttl(),
        data,
    ))
}

/// Record data in the vocabulary, if it is of a type this tool handles.
pub fn from_rdata(data: &RData) -> Option<Rdata> {
    Some(match data {
        RData::A(a) => Rdata::A(a.0),
        RData::AAAA(a) => Rdata::Aaaa(a.0),
        RData::SRV(s) => Rdata::Srv(Srv {
            priority: s.priority(),
            weight: s.weight(),
            port: s.port(),
            target: Fqdn::from_absolute(&s.target().to_ascii()),
        }),
        RData::CNAME(c) => Rdata::Cname(Fqdn::from_absolute(&c.0.to_ascii())),
        _ => return None,
    })
}
