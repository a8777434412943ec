//! NOTIFY (RFC 1996): tell a secondary that a zone changed, so it asks for the new serial at
//! once instead of at its next refresh. Building is pure; sending goes through `Transport`.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::RecordType as HType;

use crate::dns::transport::Transport;
use crate::dns::tsig::TsigKey;
use crate::dns::{check_reply, convert, DnsError};
use crate::records::Fqdn;

/// A NOTIFY for `zone`: opcode 4, AA set, one question `zone IN SOA` (RFC 1996 §3.7).
pub fn message(zone: &Fqdn, id: u16) -> Result<Vec<u8>, DnsError> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Notify)
        .set_authoritative(true);
    m.add_query(Query::query(convert::name(zone)?, HType::SOA));
    m.to_vec()
        .map_err(|e| DnsError::Malformed(format!("encoding the NOTIFY: {e}")))
}

/// Sends a NOTIFY for `zone` (signed with `key` when given) and checks the answer: `Ok` when
/// the server took it (NOERROR), the server's refusal or the transport's failure otherwise.
pub fn send(transport: &Transport, key: Option<&TsigKey>, zone: &Fqdn) -> Result<(), DnsError> {
    let reply = transport.exchange(key, &|id| message(zone, id))?;
    check_reply(transport.server, key, &reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_is_opcode_4_with_aa_and_the_zones_soa_question() {
        let bytes = message(&Fqdn::parse("contoso.com").unwrap(), 0x1234).unwrap();
        assert_eq!(&bytes[..2], &[0x12, 0x34]);
        // QR=0, opcode 4, AA=1: 0x24 in the first flag byte.
        assert_eq!(bytes[2], 0x24);
        assert_eq!(
            &bytes[4..12],
            &[0, 1, 0, 0, 0, 0, 0, 0],
            "one question only"
        );
        let question = &bytes[12..];
        assert!(question.starts_with(b"\x07contoso\x03com\x00"));
        assert_eq!(&question[13..17], &[0, 6, 0, 1], "SOA IN");
    }
}
