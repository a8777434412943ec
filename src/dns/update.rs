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
