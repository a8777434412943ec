//! RFC 2136 UPDATE messages: pure builders, each message a compare-and-swap of what it changes.

use std::ops::Range;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, RecordType as HType};

use crate::dns::DnsError;
use crate::dns::{convert, wire};
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
    encode(zone, edits, id)?.ok_or_else(|| {
        DnsError::Malformed(format!(
            "{} change(s) do not fit in one UPDATE message of {MAX_MESSAGE} bytes",
            edits.len()
        ))
    })
}

/// The encoded message, or `None` when it does not fit in 65,535 bytes (hickory then drops
/// the records that did not fit and sets TC: such a message must never be sent).
fn encode(zone: &Fqdn, edits: &[RrsetEdit<'_>], id: u16) -> Result<Option<Vec<u8>>, DnsError> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Update);
    m.add_query(Query::query(convert::name(zone)?, HType::SOA));
    for edit in edits {
        match edit.before {
            Some(before) => {
                m.add_answers(convert::records(before, 0)?);
                m.add_name_server(convert::empty(edit.name, edit.rtype, DNSClass::ANY)?);
            }
            None => {
                m.add_answer(convert::empty(edit.name, edit.rtype, DNSClass::NONE)?);
            }
        }
        if let Some(after) = edit.after {
            m.add_name_servers(convert::records(after, after.ttl)?);
        }
    }
    let bytes = m
        .to_vec()
        .map_err(|e| DnsError::Malformed(format!("encoding the UPDATE: {e}")))?;
    Ok((!wire::truncated(&bytes)).then_some(bytes))
}

/// Splits `edits` into consecutive runs that each fit in `max_bytes` as one message,
/// using as few messages as possible: encoded size only grows with the run, so taking the
/// longest run that fits each time is optimal for order-preserving splits.
///
/// Encoding is what costs (hickory's name compression scans every stored name), so the
/// longest run is searched from a guess: the length of the previous run (runs of similar
/// changes are alike), first a short prefix's size scaled up to `max_bytes`. From the guess,
/// steps of 1, 2, 4, ... find a bracket, then bisection: two encodings per run when the guess
/// is right, a few more when it is off.
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

/// [`batches`], each run with its encoded message, which the search has already built:
/// sending it costs no second encoding.
pub fn batches_encoded(
    zone: &Fqdn,
    edits: &[RrsetEdit<'_>],
    max_bytes: usize,
) -> Result<Vec<EncodedRun>, DnsError> {
    // The message for start..end when it fits.
    let fitting = |start: usize, end: usize| -> Result<Option<Vec<u8>>, DnsError> {
        Ok(encode(zone, &edits[start..end], 0)?.filter(|m| m.len() <= max_bytes))
    };
    let mut guess = first_guess(zone, edits, max_bytes)?;
    let mut out = Vec::new();
    let mut start = 0;
    while start < edits.len() {
        let Some(mut kept) = fitting(start, start + 1)? else {
            let c = &edits[start];
            return Err(DnsError::Malformed(format!(
                "the change of {} {} alone does not fit in one UPDATE message",
                c.name, c.rtype
            )));
        };
        // start..low fits (its message is `kept`); no run longer than start..high does.
        let (mut low, mut high) = (start + 1, edits.len());
        let probe = (start + guess).min(high);
        if probe > low {
            if let Some(m) = fitting(start, probe)? {
                (low, kept) = (probe, m);
                let mut step = 1;
                while low < high {
                    let next = (low + step).min(high);
                    match fitting(start, next)? {
                        Some(m) => {
                            (low, kept) = (next, m);
                            step *= 2;
                        }
                        None => {
                            high = next - 1;
                            break;
                        }
                    }
                }
            } else {
                high = probe - 1;
                let mut step = 1;
                while low < high {
                    let next = high.saturating_sub(step).max(low);
                    if next == low {
                        break;
                    }
                    if let Some(m) = fitting(start, next)? {
                        (low, kept) = (next, m);
                        break;
                    }
                    high = next - 1;
                    step *= 2;
                }
            }
        }
        while low < high {
            let mid = (low + high).div_ceil(2);
            match fitting(start, mid)? {
                Some(m) => (low, kept) = (mid, m),
                None => high = mid - 1,
            }
        }
        out.push((start..low, kept));
        guess = low - start;
        start = low;
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

/// How many edits a first message may hold: the size of up to 32 of them, scaled up.
fn first_guess(zone: &Fqdn, edits: &[RrsetEdit<'_>], max_bytes: usize) -> Result<usize, DnsError> {
    let sample = edits.len().min(32);
    let empty = message(zone, &[], 0)?.len();
    Ok(match encode(zone, &edits[..sample], 0)? {
        Some(m) if m.len() > empty => {
            (max_bytes.saturating_sub(empty) * sample / (m.len() - empty)).max(1)
        }
        _ => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Rdata;

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
        let fits = |r: Range<usize>| {
            encode(zone, &changes[r], 0)
                .unwrap()
                .is_some_and(|m| m.len() <= limit)
        };
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
