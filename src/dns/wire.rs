//! Small readers for DNS wire format: the parts of a message hickory's parsed `Message` does
//! not expose (where the TSIG RR starts, raw header fields).

/// Malformed wire data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message truncated at byte {0}")]
    Short(usize),
    #[error("bad name at byte {0}")]
    BadName(usize),
    #[error("name `{0}` cannot be encoded")]
    Unencodable(String),
}

/// A name read off the wire as dotted text, held on the stack. 254 bytes: the dotted form of
/// a name is one byte shorter than its wire form, which RFC 1035 limits to 255.
pub struct NameText {
    bytes: [u8; 254],
    len: usize,
}

impl NameText {
    pub fn new() -> Self {
        NameText {
            bytes: [0; 254],
            len: 0,
        }
    }

    /// The text as read (not case-folded).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The text as a string (a byte that is not UTF-8 becomes U+FFFD).
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// Appends `part` of the name that starts at byte `at` of the message; a name longer than
    /// any valid one is malformed.
    fn push(&mut self, part: &[u8], at: usize) -> Result<(), WireError> {
        let end = self.len + part.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(WireError::BadName(at))?
            .copy_from_slice(part);
        self.len = end;
        Ok(())
    }
}

impl Default for NameText {
    fn default() -> Self {
        NameText::new()
    }
}

/// A cursor over a message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Short(self.pos))?;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Short(self.pos))?;
        self.pos = end;
        Ok(slice)
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a possibly compressed name as dotted text (absolute, with trailing dot).
    pub fn name(&mut self) -> Result<String, WireError> {
        let mut text = NameText::new();
        self.name_into(&mut text)?;
        Ok(text.to_string_lossy())
    }

    /// [`Reader::name`] into a buffer on the stack: reading a reply's names allocates only
    /// the strings that are kept (malloc and free were about a fifth of an audit's CPU).
    pub fn name_into(&mut self, text: &mut NameText) -> Result<(), WireError> {
        text.len = 0;
        let mut pos = self.pos;
        let mut jumped = false;
        // A name has at most 127 labels; more hops than that is a pointer loop.
        for _ in 0..128 {
            let len = *self.buf.get(pos).ok_or(WireError::Short(pos))? as usize;
            match len {
                0 => {
                    if !jumped {
                        self.pos = pos + 1;
                    }
                    if text.len == 0 {
                        text.push(b".", pos)?;
                    }
                    return Ok(());
                }
                l if l & 0xC0 == 0xC0 => {
                    let low = *self.buf.get(pos + 1).ok_or(WireError::Short(pos))? as usize;
                    if !jumped {
                        self.pos = pos + 2;
                    }
                    jumped = true;
                    pos = ((l & 0x3F) << 8) | low;
                }
                l if l < 64 => {
                    let label = self
                        .buf
                        .get(pos + 1..pos + 1 + l)
                        .ok_or(WireError::Short(pos))?;
                    text.push(label, pos)?;
                    text.push(b".", pos)?;
                    pos += 1 + l;
                }
                _ => return Err(WireError::BadName(pos)),
            }
        }
        Err(WireError::BadName(self.pos))
    }

    fn skip_name(&mut self) -> Result<(), WireError> {
        loop {
            let len = *self.buf.get(self.pos).ok_or(WireError::Short(self.pos))? as usize;
            match len {
                0 => {
                    self.pos += 1;
                    return Ok(());
                }
                l if l & 0xC0 == 0xC0 => {
                    self.pos += 2;
                    return Ok(());
                }
                l if l < 64 => self.pos += 1 + l,
                _ => return Err(WireError::BadName(self.pos)),
            }
        }
    }

    fn skip_record(&mut self) -> Result<(), WireError> {
        self.skip_name()?;
        self.bytes(8)?;
        let rdlength = self.u16()? as usize;
        self.bytes(rdlength)?;
        Ok(())
    }
}

/// Encodes a dotted absolute name as uncompressed lower-case wire labels (TSIG needs the
/// canonical form, RFC 8945 §4.3.3).
pub fn name_to_wire(name: &str) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(name.len() + 2);
    push_name(&mut out, name)?;
    Ok(out)
}

/// [`name_to_wire`], appended to `out` (a message being built: no buffer of its own). On an
/// error `out` is left as it was.
///
/// One pass over the bytes into a buffer on the stack, each label's length written into the
/// byte kept for it when its dot is reached: splitting into labels and extending `out` byte by
/// byte cost about 880 instructions per name, a sixteenth of an audit's own (callgrind,
/// 10,000 domains).
pub fn push_name(out: &mut Vec<u8>, name: &str) -> Result<(), WireError> {
    let unencodable = || Err(WireError::Unencodable(name.to_string()));
    let mut text = name.as_bytes();
    while let [rest @ .., b'.'] = text {
        text = rest;
    }
    if text.is_empty() {
        out.push(0);
        return Ok(());
    }
    // Text byte `i` goes to wire byte `i + 1`; a label starting at text byte `s` has its
    // length at wire byte `s` (the first label's at 0, the others' where their dot was).
    // RFC 1035 allows 255 octets: the text and one length before it, and the root's 0.
    let wire_length = text.len() + 2;
    if wire_length > 255 {
        return unencodable();
    }
    let mut wire = [0u8; 255];
    let mut label_start = 0;
    for (i, &byte) in text.iter().enumerate() {
        if byte == b'.' {
            let length = i - label_start;
            if !(1..=63).contains(&length) {
                return unencodable();
            }
            wire[label_start] = length as u8;
            label_start = i + 1;
        } else {
            wire[i + 1] = byte.to_ascii_lowercase();
        }
    }
    let length = text.len() - label_start;
    if !(1..=63).contains(&length) {
        return unencodable();
    }
    wire[label_start] = length as u8;
    out.extend_from_slice(&wire[..wire_length]);
    Ok(())
}

/// Header fields.
pub fn id(message: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*message.first()?, *message.get(1)?]))
}

/// True when the TC bit is set.
pub fn truncated(message: &[u8]) -> bool {
    message.get(2).is_some_and(|b| b & 0x02 != 0)
}

/// The byte offset of the last record in the additional section, if any.
pub fn last_additional_start(message: &[u8]) -> Result<Option<usize>, WireError> {
    let mut r = Reader::at(message, 4);
    let qd = r.u16()?;
    let an = r.u16()?;
    let ns = r.u16()?;
    let ar = r.u16()?;
    if ar == 0 {
        return Ok(None);
    }
    for _ in 0..qd {
        r.skip_name()?;
        r.bytes(4)?;
    }
    for _ in 0..(u32::from(an) + u32::from(ns) + u32::from(ar) - 1) {
        r.skip_record()?;
    }
    Ok(Some(r.pos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_lowercase_and_decode_with_pointers() {
        assert_eq!(name_to_wire("Key.").unwrap(), b"\x03key\x00");
        assert_eq!(name_to_wire(".").unwrap(), b"\x00");
        assert!(name_to_wire(&format!("{}.", "a".repeat(64))).is_err());
        let buf = b"\x03www\x07contoso\x03com\x00\x04mail\xc0\x04";
        let mut r = Reader::at(buf, 17);
        assert_eq!(r.name().unwrap(), "mail.contoso.com.");
        assert_eq!(r.pos(), buf.len());
        let looped = b"\xc0\x00";
        assert!(Reader::at(looped, 0).name().is_err());
    }

    #[test]
    fn names_encode_as_hickory_encodes_them_lowercased() {
        use hickory_proto::rr::Name;
        use hickory_proto::serialize::binary::BinEncodable;
        let long = "b".repeat(63);
        for text in [
            "Edge.Contoso.com.",
            "_xmpp-server._TCP.d00042.test.",
            "a.",
            "x.y.z.w.v.u.t.s.r.q.p.",
            &format!("{long}.{long}.{long}.c.example."),
            "no-trailing-dot.example",
        ] {
            let mut ours = b"prefix".to_vec();
            push_name(&mut ours, text).unwrap();
            let theirs = Name::from_ascii(text)
                .unwrap()
                .to_lowercase()
                .to_bytes()
                .unwrap();
            assert_eq!(&ours[6..], theirs.as_slice(), "{text}");
        }
    }

    #[test]
    fn a_name_longer_than_any_valid_one_is_malformed() {
        // Labels of 63, 63, 63 and 62 octets: 256 octets of wire name, one more than RFC 1035
        // allows.
        let wire = |last: u8| {
            let mut name = Vec::new();
            for len in [63, 63, 63, last] {
                name.push(len);
                name.extend(std::iter::repeat_n(b'a', usize::from(len)));
            }
            name.push(0);
            name
        };
        assert_eq!(
            Reader::at(&wire(62), 0).name(),
            Err(WireError::BadName(192))
        );
        // One octet shorter is the longest name there is: 254 characters written out.
        assert_eq!(Reader::at(&wire(61), 0).name().unwrap().len(), 254);
    }

    #[test]
    fn a_name_that_cannot_be_encoded_leaves_the_message_as_it_was() {
        let mut message = b"header".to_vec();
        push_name(&mut message, "Edge.Contoso.com.").unwrap();
        assert_eq!(&message[6..], b"\x04edge\x07contoso\x03com\x00");
        let before = message.clone();
        assert!(push_name(&mut message, &format!("ok.{}.com.", "a".repeat(64))).is_err());
        assert_eq!(message, before);
        for empty_label in ["a..b.", ".a."] {
            assert!(
                push_name(&mut message, empty_label).is_err(),
                "{empty_label}"
            );
            assert_eq!(message, before);
        }
        // 63 octets is the longest label; the whole name is limited to 255 octets.
        push_name(&mut message, &format!("{}.", "a".repeat(63))).unwrap();
        assert_eq!(message.len(), before.len() + 65);
        let label = "a".repeat(63);
        let too_long = format!("{label}.{label}.{label}.{}.", "a".repeat(62));
        assert!(push_name(&mut message, &too_long).is_err());
        assert_eq!(message.len(), before.len() + 65);
    }
}
