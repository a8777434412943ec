//! RFC 2136 UPDATE messages: pure builders, each message a compare-and-swap of what it changes.

use std::ops::Range;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, RecordType as HType};

use crate::dns::convert;
use crate::dns::DnsError;
use crate::plan::{Action, Change};
use crate::records::Fqdn;

/// The largest DNS message over TCP.
pub const MAX_MESSAGE: usize = 65_535;

/// Encodes one UPDATE for `zone` carrying `changes`, unsigned.
///
/// Prerequisites (RFC 2136 §2.4) make the message a compare-and-swap: an update or delete
/// requires "RRset exists (value dependent)" with exactly the records that were read; a create
/// requires "RRset does not exist". If any fails, the server applies nothing of the message.
/// (Prerequisites compare data, not TTLs: a TTL-only change made by someone else is not seen.)
pub fn message(zone: &Fqdn, changes: &[Change], id: u16) -> Result<Vec<u8>, DnsError> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Update);
    m.add_query(Query::query(convert::name(zone)?, HType::SOA));
    for change in changes {
        match (&change.before, change.action) {
            (Some(before), Action::Update | Action::Delete) => {
                m.add_answers(convert::records(before, 0)?);
            }
            (None, Action::Create) => {
                m.add_answer(convert::empty(&change.name, change.rtype, DNSClass::NONE)?);
            }
            _ => {
                return Err(DnsError::Malformed(format!(
                    "{} {}: a {} needs {} `before`",
                    change.name,
                    change.rtype,
                    change.action.as_str(),
                    if change.action == Action::Create {
                        "no"
                    } else {
                        "a"
                    }
                )))
            }
        }
        if change.action != Action::Create {
            m.add_name_server(convert::empty(&change.name, change.rtype, DNSClass::ANY)?);
        }
        if let Some(after) = &change.after {
            m.add_name_servers(convert::records(after, after.ttl)?);
        }
    }
    m.to_vec()
        .map_err(|e| DnsError::Malformed(format!("encoding the UPDATE: {e}")))
}

/// Splits `changes` into consecutive runs that each fit in `max_bytes` as one message,
/// using as few messages as possible: encoded size only grows with the run, so the longest
/// run that fits, found by binary search, is optimal for order-preserving splits.
pub fn batches(
    zone: &Fqdn,
    changes: &[Change],
    max_bytes: usize,
) -> Result<Vec<Range<usize>>, DnsError> {
    let fits = |range: Range<usize>| -> Result<bool, DnsError> {
        Ok(message(zone, &changes[range], 0)?.len() <= max_bytes)
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < changes.len() {
        if !fits(start..start + 1)? {
            let c = &changes[start];
            return Err(DnsError::Malformed(format!(
                "the change of {} {} alone does not fit in one UPDATE message",
                c.name, c.rtype
            )));
        }
        let (mut low, mut high) = (start + 1, changes.len());
        while low < high {
            let mid = (low + high).div_ceil(2);
            if fits(start..mid)? {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        out.push(start..low);
        start = low;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Rdata, RecordSet, RecordType};

    fn srv_change(i: usize) -> Change {
        let name = Fqdn::parse(&format!("_xmpp-server._tcp.sip{i:05}.contoso.com")).unwrap();
        let records = (1..=3)
            .map(|p| {
                Rdata::parse(
                    RecordType::Srv,
                    &format!("{} 0 5269 edgepool{p}.contoso.com.", p * 10),
                )
                .unwrap()
            })
            .collect();
        Change {
            zone: Fqdn::parse("contoso.com").unwrap(),
            action: Action::Create,
            name: name.clone(),
            rtype: RecordType::Srv,
            before: None,
            after: Some(RecordSet::new(name, RecordType::Srv, 3600, records).unwrap()),
        }
    }

    #[test]
    fn batches_are_maximal_runs_that_fit() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let changes: Vec<Change> = (0..2000).map(srv_change).collect();
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

    #[test]
    fn prerequisites_match_the_action() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let create = srv_change(1);
        let bytes = message(&zone, std::slice::from_ref(&create), 1).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(
            m.answers().len(),
            1,
            "one 'RRset does not exist' prerequisite"
        );
        assert_eq!(m.answers()[0].dns_class(), DNSClass::NONE);
        assert_eq!(m.name_servers().len(), 3, "three records added");

        let mut update = srv_change(1);
        update.action = Action::Update;
        update.before = create.after.clone();
        let bytes = message(&zone, std::slice::from_ref(&update), 1).unwrap();
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

        let mut bad = srv_change(1);
        bad.action = Action::Delete;
        assert!(message(&zone, &[bad], 1).is_err());
    }
}
