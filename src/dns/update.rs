//! RFC 2136 UPDATE messages: pure builders, each message a compare-and-swap of what it changes.

use std::ops::Range;

use crate::dns::encoder::{Section, UpdateEncoder, CLASS_ANY, CLASS_NONE};
use crate::dns::DnsError;
use crate::records::{Fqdn, RecordSet, RecordType};

/// The largest DNS message over TCP.
pub const MAX_MESSAGE: usize = 65_535;

/// One RRset change as an UPDATE carries it, borrowed from wherever the caller keeps its
/// changes (the wire layer knows RRsets, not plans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrsetEdit<'a> {
    pub name: &'a Fqdn,
    pub rtype: RecordType,
    /// What the server must still hold for the change to apply; `None`: the RRset must not
    /// exist.
    pub before: Option<&'a RecordSet>,
    /// What to install; `None`: the RRset is deleted.
    pub after: Option<&'a RecordSet>,
}

/// Encodes one UPDATE for `zone` carrying `edits`, unsigned.
///
/// Prerequisites (RFC 2136 §2.4) make the message a compare-and-swap: an edit with a `before`
/// requires "RRset exists (value dependent)" with exactly the records that were read; one
/// without requires "RRset does not exist". If any fails, the server applies nothing of the
/// message.
/// (Prerequisites compare data, not TTLs: a TTL-only change made by someone else is not seen.)
///
/// Changes that do not fit in 65,535 bytes are an error, never a silently shortened message.
pub fn message(zone: &Fqdn, edits: &[RrsetEdit<'_>], id: u16) -> Result<Vec<u8>, DnsError> {
    let mut encoder = UpdateEncoder::new(zone, id)?;
    for edit in edits {
        push(&mut encoder, edit)?;
    }
    if encoder.len() > MAX_MESSAGE {
        return Err(DnsError::Malformed(format!(
            "{} change(s) do not fit in one UPDATE message of {MAX_MESSAGE} bytes",
            edits.len()
        )));
    }
    encoder.finish()
}

/// Appends one edit: its prerequisite, then its update records.
fn push(encoder: &mut UpdateEncoder, edit: &RrsetEdit<'_>) -> Result<(), DnsError> {
    match edit.before {
        Some(before) => {
            for data in before.records() {
                encoder.record(Section::Prerequisite, &before.name, 0, data)?;
            }
            encoder.empty_record(Section::Update, edit.name, edit.rtype, CLASS_ANY)?;
        }
        None => encoder.empty_record(Section::Prerequisite, edit.name, edit.rtype, CLASS_NONE)?,
    }
    if let Some(after) = edit.after {
        for data in after.records() {
            encoder.record(Section::Update, &after.name, after.ttl, data)?;
        }
    }
    Ok(())
}

/// Splits `edits` into consecutive runs that each fit in `max_bytes` as one message,
/// using as few messages as possible: encoded size only grows with the run, so taking the
/// longest run that fits each time is optimal for order-preserving splits.
///
/// Each edit is encoded once: appended to the message being filled, and when that makes it
/// too long, rolled back and begun again in the next message.
pub fn batches(
    zone: &Fqdn,
    edits: &[RrsetEdit<'_>],
    max_bytes: usize,
) -> Result<Vec<Range<usize>>, DnsError> {
    Ok(batches_encoded(zone, edits, max_bytes)?
        .into_iter()
        .map(|(run, _)| run)
        .collect())
}

/// A run of edits and its encoded UPDATE (ID 0; see [`with_id`]).
pub type EncodedRun = (Range<usize>, Vec<u8>);

/// [`batches`], each run with its encoded message, which the split has already built:
/// sending it costs no second encoding.
pub fn batches_encoded(
    zone: &Fqdn,
    edits: &[RrsetEdit<'_>],
    max_bytes: usize,
) -> Result<Vec<EncodedRun>, DnsError> {
    let limit = max_bytes.min(MAX_MESSAGE);
    let mut out = Vec::new();
    let mut encoder = UpdateEncoder::new(zone, 0)?;
    let mut start = 0;
    for (index, edit) in edits.iter().enumerate() {
        let mark = encoder.mark();
        push(&mut encoder, edit)?;
        if encoder.len() <= limit {
            continue;
        }
        if index > start {
            encoder.rollback(mark);
            let full = std::mem::replace(&mut encoder, UpdateEncoder::new(zone, 0)?);
            out.push((start..index, full.finish()?));
            start = index;
            push(&mut encoder, edit)?;
        }
        if encoder.len() > limit {
            return Err(DnsError::Malformed(format!(
                "the change of {} {} alone does not fit in one UPDATE message",
                edit.name, edit.rtype
            )));
        }
    }
    if start < edits.len() {
        out.push((start..edits.len(), encoder.finish()?));
    }
    Ok(out)
}

/// An encoded message with another ID (the first two bytes).
pub fn with_id(mut message: Vec<u8>, id: u16) -> Vec<u8> {
    if let Some(head) = message.get_mut(..2) {
        head.copy_from_slice(&id.to_be_bytes());
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{convert, wire};
    use crate::records::Rdata;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{DNSClass, RecordType as HType};

    /// The encoder this module used before its own (hickory's `BinEncoder`), kept as the
    /// reference the new one must agree with record for record. `None` when it does not fit
    /// in 65,535 bytes.
    fn hickory_encode(zone: &Fqdn, edits: &[RrsetEdit<'_>], id: u16) -> Option<Vec<u8>> {
        let mut m = Message::new();
        m.set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Update);
        m.add_query(Query::query(convert::name(zone).unwrap(), HType::SOA));
        for edit in edits {
            match edit.before {
                Some(before) => {
                    m.add_answers(convert::records(before, 0).unwrap());
                    m.add_name_server(
                        convert::empty(edit.name, edit.rtype, DNSClass::ANY).unwrap(),
                    );
                }
                None => {
                    m.add_answer(convert::empty(edit.name, edit.rtype, DNSClass::NONE).unwrap());
                }
            }
            if let Some(after) = edit.after {
                m.add_name_servers(convert::records(after, after.ttl).unwrap());
            }
        }
        let bytes = m.to_vec().unwrap();
        (!wire::truncated(&bytes)).then_some(bytes)
    }

    fn srv_set(i: usize) -> RecordSet {
        srv_set_of(i, 3)
    }

    /// `_xmpp-server._tcp.sipNNNNN.contoso.com` SRV with `pools` records.
    fn srv_set_of(i: usize, pools: usize) -> RecordSet {
        let name = Fqdn::parse(&format!("_xmpp-server._tcp.sip{i:05}.contoso.com")).unwrap();
        let records = (1..=pools)
            .map(|p| {
                Rdata::parse(
                    RecordType::Srv,
                    &format!("{} 0 5269 edgepool{p}.contoso.com.", p * 10),
                )
                .unwrap()
            })
            .collect();
        RecordSet::new(name, RecordType::Srv, 3600, records).unwrap()
    }

    /// The creation of `set`.
    fn create(set: &RecordSet) -> RrsetEdit<'_> {
        RrsetEdit {
            name: &set.name,
            rtype: set.rtype,
            before: None,
            after: Some(set),
        }
    }

    fn creates(sets: &[RecordSet]) -> Vec<RrsetEdit<'_>> {
        sets.iter().map(create).collect()
    }

    #[test]
    fn batches_are_maximal_runs_that_fit() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let sets: Vec<RecordSet> = (0..2000).map(srv_set).collect();
        let changes = creates(&sets);
        let limit = MAX_MESSAGE - 606;
        let runs = batches(&zone, &changes, limit).unwrap();
        assert!(
            runs.len() >= 2,
            "2,000 SRV RRsets do not fit in one message"
        );
        assert_eq!(runs.first().unwrap().start, 0);
        assert_eq!(runs.last().unwrap().end, changes.len());
        for pair in runs.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            // Maximal: one more change would not have fitted.
            let longer = pair[0].start..pair[0].end + 1;
            assert!(message(&zone, &changes[longer], 0).unwrap().len() > limit);
        }
        for run in &runs {
            assert!(message(&zone, &changes[run.clone()], 0).unwrap().len() <= limit);
        }
        // Lower bound from bytes: no split can use fewer messages than total / limit.
        let total: usize = changes
            .iter()
            .map(|c| message(&zone, std::slice::from_ref(c), 0).unwrap().len() - 12)
            .sum();
        assert!(runs.len() <= total.div_ceil(limit - 64) + 1);
    }

    /// The longest run from each start by plain bisection over the whole rest: the reference
    /// the guessing search must agree with.
    fn bisected(zone: &Fqdn, changes: &[RrsetEdit<'_>], limit: usize) -> Vec<Range<usize>> {
        let fits = |r: Range<usize>| message(zone, &changes[r], 0).is_ok_and(|m| m.len() <= limit);
        let mut out = Vec::new();
        let mut start = 0;
        while start < changes.len() {
            let (mut low, mut high) = (start + 1, changes.len());
            while low < high {
                let mid = (low + high).div_ceil(2);
                if fits(start..mid) {
                    low = mid;
                } else {
                    high = mid - 1;
                }
            }
            out.push(start..low);
            start = low;
        }
        out
    }

    #[test]
    fn batches_of_changes_of_mixed_sizes_match_plain_bisection() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        // Small changes, then large ones (the guess from the previous run is far too long),
        // then small ones again (far too short), then irregular sizes.
        let sizes = (0..300)
            .map(|_| 1)
            .chain((0..200).map(|_| 9))
            .chain((0..400).map(|_| 1))
            .chain((0..300).map(|i| 1 + (i * 7) % 9));
        let sets: Vec<RecordSet> = sizes.enumerate().map(|(i, n)| srv_set_of(i, n)).collect();
        let changes = creates(&sets);
        let limit = 20_000;
        let runs = batches(&zone, &changes, limit).unwrap();
        assert!(runs.len() > 5, "{runs:?}");
        assert_eq!(runs, bisected(&zone, &changes, limit));
        // The messages the search kept are the ones `message` builds, for any ID.
        for (run, encoded) in batches_encoded(&zone, &changes, limit).unwrap() {
            assert_eq!(
                with_id(encoded, 0x1234),
                message(&zone, &changes[run], 0x1234).unwrap()
            );
        }
    }

    /// A mix of every record type and every kind of edit, in several zones' worth of names.
    fn mixed_sets() -> Vec<RecordSet> {
        let mut sets = Vec::new();
        for i in 0..1500 {
            let name = Fqdn::parse(&format!("host{i}.sub{}.contoso.com", i % 7)).unwrap();
            let (rtype, values) = match i % 4 {
                0 => (RecordType::A, vec![format!("192.0.2.{}", i % 250)]),
                1 => (RecordType::Aaaa, vec![format!("2001:db8::{i:x}")]),
                2 => (
                    RecordType::Cname,
                    vec![format!("target{}.contoso.com.", i % 3)],
                ),
                _ => (
                    RecordType::Srv,
                    (1..=1 + i % 4)
                        .map(|p| format!("{p} 0 5269 edgepool{p}.sub{}.contoso.com.", i % 5))
                        .collect(),
                ),
            };
            let records = values
                .iter()
                .map(|v| Rdata::parse(rtype, v).unwrap())
                .collect();
            sets.push(RecordSet::new(name, rtype, 300 + i as u32, records).unwrap());
        }
        sets
    }

    /// Creates, updates (from the next set's data onto this name) and deletes, in turn.
    fn mixed_edits<'a>(sets: &'a [RecordSet], olds: &'a [RecordSet]) -> Vec<RrsetEdit<'a>> {
        sets.iter()
            .zip(olds)
            .enumerate()
            .map(|(i, (set, old))| match i % 3 {
                0 => create(set),
                1 => RrsetEdit {
                    before: Some(old),
                    ..create(set)
                },
                _ => RrsetEdit {
                    before: Some(old),
                    after: None,
                    ..create(set)
                },
            })
            .collect()
    }

    /// Each set's name and type with other data: what an update or delete finds.
    fn older(sets: &[RecordSet]) -> Vec<RecordSet> {
        sets.iter()
            .map(|s| {
                let data = match s.rtype {
                    RecordType::A => "198.51.100.1",
                    RecordType::Aaaa => "2001:db8::1",
                    RecordType::Cname => "old.contoso.com.",
                    RecordType::Srv => "0 0 5269 old.contoso.com.",
                };
                let records = vec![Rdata::parse(s.rtype, data).unwrap()];
                RecordSet::new(s.name.clone(), s.rtype, 60, records).unwrap()
            })
            .collect()
    }

    /// Every SRV record's RDATA holds its target whole (RFC 2782), checked on the bytes.
    fn assert_srv_targets_uncompressed(bytes: &[u8]) {
        let mut r = wire::Reader::at(bytes, 12);
        r.name().unwrap();
        r.bytes(4).unwrap();
        let records = (6..12)
            .step_by(2)
            .map(|at| u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize)
            .sum::<usize>();
        for _ in 0..records {
            r.name().unwrap();
            let rtype = r.u16().unwrap();
            r.bytes(6).unwrap();
            let length = r.u16().unwrap() as usize;
            let rdata = r.bytes(length).unwrap();
            if rtype == 33 && length > 0 {
                let target = wire::Reader::at(rdata, 6).name().unwrap();
                let whole = wire::name_to_wire(&target).unwrap();
                assert_eq!(&rdata[6..], &whole[..], "SRV target {target} compressed");
            }
        }
    }

    #[test]
    fn every_message_decodes_to_the_records_of_hickorys_encoder() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let sets = mixed_sets();
        let olds = older(&sets);
        let edits = mixed_edits(&sets, &olds);
        for limit in [MAX_MESSAGE - 606, 20_000, 3_000] {
            let runs = batches_encoded(&zone, &edits, limit).unwrap();
            assert!(runs.len() > 1, "{limit}: {} run(s)", runs.len());
            for (run, bytes) in runs {
                assert!(bytes.len() <= limit);
                assert_srv_targets_uncompressed(&bytes);
                let ours = Message::from_vec(&with_id(bytes, 0x4242)).unwrap();
                let reference = hickory_encode(&zone, &edits[run.clone()], 0x4242).unwrap();
                let reference = Message::from_vec(&reference).unwrap();
                assert_eq!(ours.header(), reference.header(), "{run:?}");
                assert_eq!(ours.queries(), reference.queries());
                assert_eq!(ours.answers(), reference.answers(), "{run:?}");
                assert_eq!(ours.name_servers(), reference.name_servers(), "{run:?}");
                assert!(ours.additionals().is_empty());
            }
        }
    }

    #[test]
    fn the_benchs_2000_creates_take_the_fewest_messages_five() {
        let zone = Fqdn::parse("example.test").unwrap();
        let sets: Vec<RecordSet> = (1..=2000)
            .map(|i| {
                let name = Fqdn::parse(&format!("_xmpp-server._tcp.d{i:04}.example.test")).unwrap();
                let records = (1..=3)
                    .map(|p| {
                        let text = format!("{} 0 5269 edgepool{p}.example.test.", p * 10);
                        Rdata::parse(RecordType::Srv, &text).unwrap()
                    })
                    .collect();
                RecordSet::new(name, RecordType::Srv, 3600, records).unwrap()
            })
            .collect();
        let changes = creates(&sets);
        // rfc2136's room for the TSIG RR.
        let runs = batches_encoded(&zone, &changes, MAX_MESSAGE - 606).unwrap();
        assert_eq!(
            runs.len(),
            5,
            "{:?}",
            runs.iter().map(|r| &r.0).collect::<Vec<_>>()
        );
        for (run, bytes) in &runs {
            let decoded = Message::from_vec(bytes).unwrap();
            assert_eq!(decoded.answers().len(), run.len());
            assert_eq!(decoded.name_servers().len(), 3 * run.len());
        }
    }

    #[test]
    fn changes_beyond_64_kib_are_refused_not_truncated() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let sets: Vec<RecordSet> = (0..2000).map(srv_set).collect();
        let changes = creates(&sets);
        // hickory would drop what does not fit and set TC: a partial UPDATE.
        let err = message(&zone, &changes, 1).unwrap_err().to_string();
        assert!(err.contains("do not fit in one UPDATE message"), "{err}");
        assert!(message(&zone, &changes[..100], 1).is_ok());
    }

    #[test]
    fn prerequisites_match_the_guard() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let set = srv_set(1);
        let bytes = message(&zone, &[create(&set)], 1).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(
            m.answers().len(),
            1,
            "one 'RRset does not exist' prerequisite"
        );
        assert_eq!(m.answers()[0].dns_class(), DNSClass::NONE);
        assert_eq!(m.name_servers().len(), 3, "three records added");

        let update = RrsetEdit {
            before: Some(&set),
            ..create(&set)
        };
        let bytes = message(&zone, &[update], 1).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(
            m.answers().len(),
            3,
            "value-dependent prerequisite: every record read"
        );
        assert!(m
            .answers()
            .iter()
            .all(|r| r.ttl() == 0 && r.dns_class() == DNSClass::IN));
        assert_eq!(
            m.name_servers()[0].dns_class(),
            DNSClass::ANY,
            "delete the RRset first"
        );
        assert_eq!(m.name_servers().len(), 4);

        let delete = RrsetEdit {
            after: None,
            ..update
        };
        let bytes = message(&zone, &[delete], 1).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.answers().len(), 3);
        assert_eq!(m.name_servers().len(), 1, "only the delete of the RRset");
    }
}
