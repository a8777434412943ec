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
        let mut text = String::new();
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
                    if text.is_empty() {
                        text.push('.');
                    }
                    return Ok(text);
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
                    text.push_str(&String::from_utf8_lossy(label));
                    text.push('.');
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
    let trimmed = name.trim_end_matches('.');
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(WireError::Unencodable(name.to_string()));
            }
            out.push(label.len() as u8);
            out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
    }
    out.push(0);
    if out.len() > 255 {
        return Err(WireError::Unencodable(name.to_string()));
    }
    Ok(out)
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
}
