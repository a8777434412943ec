//! The plan's table drawn straight into one string of the exact size: a first pass measures
//! every cell without writing it, the second writes each cell where it is shown.
//!
//! At 10,000 rows the general drawer ([`super::grid`]) spent its time on a string per cell,
//! `core::fmt`, splitting cells on line breaks twice and growing then copying 7 MB; here
//! there is one allocation, numbers go through `itoa`, and a record is a line of its cell.

use std::fmt::Write;

use super::{action_label, push_rule, width, Look};
use crate::plan::{Change, Plan};
use crate::records::{Rdata, RecordSet};

/// The columns of a plan's table.
pub(super) const HEADER: [&str; COLUMNS] =
    ["Zone", "Action", "Name", "Type", "TTL", "Before", "After"];
const COLUMNS: usize = 7;
/// The columns a change's second and later lines leave blank: all but Before and After.
const BLANK: usize = 5;

/// What the first pass learnt: how wide each column is, and how long the text is.
pub(super) struct Layout {
    widths: [usize; COLUMNS],
    /// All text but the colours is printable ASCII: its width is its length in bytes.
    plain: bool,
    /// The table and its totals line, in bytes.
    bytes: usize,
}

/// How long a piece of text is in bytes and how wide it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Size {
    bytes: usize,
    width: usize,
}

impl Size {
    fn ascii(bytes: usize) -> Size {
        Size {
            bytes,
            width: bytes,
        }
    }
}

/// Measures the table without drawing it; `None` when some text holds a line break, which
/// would make lines of its own (the general drawer splits cells on them).
pub(super) fn measure(plan: &Plan, look: Look, totals: &str) -> Option<Layout> {
    let mut widths = HEADER.map(str::len);
    let mut plain = true;
    // Bytes that take no width: colour sequences, characters of several bytes.
    let mut hidden = 0;
    let mut lines = 0;
    let mut scratch = String::new();
    for change in &plan.changes {
        let (label, code) = action_label(change.action);
        widths[1] = widths[1].max(label.len());
        if look.colour {
            hidden += code.len() + COLOUR_BYTES;
        }
        let mut cell = |column: usize, size: Option<Size>| -> Option<()> {
            let size = size?;
            widths[column] = widths[column].max(size.width);
            plain &= size.bytes == size.width;
            hidden += size.bytes - size.width;
            Some(())
        };
        cell(0, text_size(change.zone.as_str()))?;
        cell(2, text_size(change.name.as_str()))?;
        cell(3, Some(Size::ascii(change.rtype.as_str().len())))?;
        cell(4, Some(Size::ascii(ttl_width(change))))?;
        for (column, set) in [(5, &change.before), (6, &change.after)] {
            match set {
                None => cell(column, Some(Size::ascii(1)))?,
                Some(set) => {
                    for record in set.records() {
                        cell(column, rdata_size(record, &mut scratch))?;
                    }
                }
            }
        }
        lines += height(change);
    }
    let line = line_bytes(&widths);
    let rule = 3 * (widths.iter().sum::<usize>() + 3 * COLUMNS + 1) + 1;
    Some(Layout {
        widths,
        plain,
        bytes: 3 * rule + (1 + lines) * line + hidden + totals.len(),
    })
}

/// The bytes of a line of the table, less what its text holds beyond its width:
/// `│ ` + the columns, each padded to its width and closed by ` │ ` (` │` and `\n` for the last).
fn line_bytes(widths: &[usize; COLUMNS]) -> usize {
    widths.iter().sum::<usize>() + 5 * COLUMNS + 4
}

/// `ESC [`, `m` and `ESC [0m` around a coloured label (its code aside): what [`super::paint`]
/// adds.
const COLOUR_BYTES: usize = 7;

/// Draws the table measured by [`measure`], with `totals` as its last line.
pub(super) fn draw(plan: &Plan, look: Look, layout: &Layout, totals: &str) -> String {
    let widths = &layout.widths;
    let mut out = String::with_capacity(layout.bytes);
    push_rule(&mut out, widths, '┌', '┬', '┐');
    out.push_str("│ ");
    for (column, title) in HEADER.iter().enumerate() {
        out.push_str(title);
        close(&mut out, widths[column] - title.len(), column);
    }
    push_rule(&mut out, widths, '├', '┼', '┤');
    // The start of a change's second and later lines, the same for every change.
    let mut blank = String::from("│ ");
    for (column, width) in widths.iter().take(BLANK).enumerate() {
        close(&mut blank, *width, column);
    }
    for change in &plan.changes {
        push_change(&mut out, change, look, layout, &blank);
    }
    push_rule(&mut out, widths, '└', '┴', '┘');
    out.push_str(totals);
    debug_assert_eq!(out.len(), layout.bytes, "the table was measured exactly");
    out
}

/// One change: its first line with every column, then the rest of its records.
fn push_change(out: &mut String, change: &Change, look: Look, layout: &Layout, blank: &str) {
    let widths = &layout.widths;
    let shown = |text: &str| {
        if layout.plain {
            text.len()
        } else {
            width(text)
        }
    };
    let text = |out: &mut String, column: usize, text: &str| {
        out.push_str(text);
        close(out, widths[column] - shown(text), column);
    };
    out.push_str("│ ");
    text(out, 0, change.zone.as_str());
    let (label, code) = action_label(change.action);
    if look.colour {
        // What `paint` writes, without a string of its own.
        for piece in ["\x1b[", code, "m", label, "\x1b[0m"] {
            out.push_str(piece);
        }
    } else {
        out.push_str(label);
    }
    close(out, widths[1] - label.len(), 1);
    text(out, 2, change.name.as_str());
    text(out, 3, change.rtype.as_str());
    let start = out.len();
    push_ttl(out, change);
    close(out, widths[4] - (out.len() - start), 4);
    for line in 0..height(change) {
        if line > 0 {
            out.push_str(blank);
        }
        for (column, set) in [(5, &change.before), (6, &change.after)] {
            let start = out.len();
            push_record(out, set.as_ref(), line);
            close(out, widths[column] - shown(&out[start..]), column);
        }
    }
}

/// Pads a cell's line by `pad` spaces and closes it: ` │ ` before the next column, ` │` and
/// the line break after the last.
fn close(out: &mut String, pad: usize, column: usize) {
    macro_rules! spaces {
        () => {
            "                                                                "
        };
    }
    const NEXT: &str = concat!(spaces!(), "│ ");
    const LAST: &str = concat!(spaces!(), "│\n");
    const ROOM: usize = spaces!().len();
    let tail = if column + 1 == COLUMNS { LAST } else { NEXT };
    let mut spaces = pad + 1;
    while spaces > ROOM {
        out.push_str(spaces!());
        spaces -= ROOM;
    }
    out.push_str(&tail[ROOM - spaces..]);
}

/// How many lines a change takes: one per record of its longer RRset, at least one.
fn height(change: &Change) -> usize {
    let lines = |set: &Option<RecordSet>| set.as_ref().map_or(1, |s| s.records().len().max(1));
    lines(&change.before).max(lines(&change.after))
}

/// Line `line` of a Before or After cell: a record, `-` for no RRset, or nothing below.
fn push_record(out: &mut String, set: Option<&RecordSet>, line: usize) {
    match set {
        None if line == 0 => out.push('-'),
        None => {}
        Some(set) => {
            if let Some(record) = set.records().get(line) {
                push_rdata(out, record);
            }
        }
    }
}

/// A record in presentation format, as its `Display` writes it.
fn push_rdata(out: &mut String, record: &Rdata) {
    let mut number = itoa::Buffer::new();
    match record {
        Rdata::A(ip) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(number.format(octet));
            }
        }
        // Rare in plans, and its shortening rules are std's: written by std.
        Rdata::Aaaa(ip) => write!(out, "{ip}").expect("writing to a String cannot fail"),
        Rdata::Srv(srv) => {
            for value in [srv.priority, srv.weight, srv.port] {
                out.push_str(number.format(value));
                out.push(' ');
            }
            out.push_str(srv.target.as_str());
        }
        Rdata::Cname(name) => out.push_str(name.as_str()),
    }
}

/// The size of what [`push_rdata`] writes, counted rather than written (`scratch` holds an
/// IPv6 address while it is measured).
fn rdata_size(record: &Rdata, scratch: &mut String) -> Option<Size> {
    match record {
        Rdata::A(ip) => Some(Size::ascii(
            ip.octets().map(|o| digits(o.into())).iter().sum::<usize>() + 3,
        )),
        Rdata::Aaaa(ip) => {
            scratch.clear();
            write!(scratch, "{ip}").expect("writing to a String cannot fail");
            Some(Size::ascii(scratch.len()))
        }
        Rdata::Srv(srv) => {
            let numbers = [srv.priority, srv.weight, srv.port].map(|n| digits(n.into()) + 1);
            let target = text_size(srv.target.as_str())?;
            let numbers: usize = numbers.iter().sum();
            Some(Size {
                bytes: numbers + target.bytes,
                width: numbers + target.width,
            })
        }
        Rdata::Cname(name) => text_size(name.as_str()),
    }
}

/// The TTL column: the TTL, or the old and new one when an update changes it.
fn push_ttl(out: &mut String, change: &Change) {
    let mut number = itoa::Buffer::new();
    match (&change.before, &change.after) {
        (Some(b), Some(a)) if b.ttl != a.ttl => {
            out.push_str(number.format(b.ttl));
            out.push_str(" -> ");
            out.push_str(number.format(a.ttl));
        }
        (_, Some(a)) => out.push_str(number.format(a.ttl)),
        (Some(b), None) => out.push_str(number.format(b.ttl)),
        (None, None) => out.push('-'),
    }
}

/// The width of what [`push_ttl`] writes.
fn ttl_width(change: &Change) -> usize {
    match (&change.before, &change.after) {
        (Some(b), Some(a)) if b.ttl != a.ttl => digits(b.ttl) + 4 + digits(a.ttl),
        (_, Some(a)) => digits(a.ttl),
        (Some(b), None) => digits(b.ttl),
        (None, None) => 1,
    }
}

/// How many decimal digits `n` has.
fn digits(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// The size of text shown on one line; `None` when it holds a line break.
fn text_size(text: &str) -> Option<Size> {
    // Without an early exit the check runs over whole words at a time.
    let printable = text
        .bytes()
        .fold(true, |ok, b| ok & (b' '..=b'~').contains(&b));
    if printable {
        return Some(Size::ascii(text.len()));
    }
    if text.contains('\n') {
        return None;
    }
    Some(Size {
        bytes: text.len(),
        width: width(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordType;

    #[test]
    fn records_and_ttls_are_written_and_measured_as_display_shows_them() {
        let records = [
            (RecordType::A, "0.0.0.0"),
            (RecordType::A, "255.255.255.255"),
            (RecordType::A, "10.0.9.100"),
            (RecordType::Aaaa, "::1"),
            (RecordType::Aaaa, "2001:db8::10"),
            (RecordType::Aaaa, "::ffff:192.0.2.1"),
            (RecordType::Aaaa, "2001:db8:1:2:3:4:5:6"),
            (RecordType::Srv, "0 0 0 a.example."),
            (RecordType::Srv, "9 10 99 edge.example.com."),
            (RecordType::Srv, "65535 65535 65535 edgepool1.example.com."),
            (RecordType::Cname, "xmpp.example.com."),
        ];
        let mut scratch = String::new();
        for (rtype, text) in records {
            let record = Rdata::parse(rtype, text).unwrap();
            let mut out = String::from("│ ");
            push_rdata(&mut out, &record);
            assert_eq!(out, format!("│ {record}"));
            assert_eq!(
                rdata_size(&record, &mut scratch),
                Some(Size::ascii(record.to_string().len())),
                "{record}"
            );
        }
        let name = crate::records::Fqdn::parse("a.example").unwrap();
        let set = |ttl| Some(RecordSet::new(name.clone(), RecordType::A, ttl, vec![]).unwrap());
        for (before, after) in [
            (None, set(0)),
            (set(60), set(4294967295)),
            (set(300), set(300)),
            (set(9), None),
            (None, None),
        ] {
            let change = Change {
                zone: name.clone(),
                action: crate::plan::Action::Update,
                name: name.clone(),
                rtype: RecordType::A,
                before,
                after,
            };
            let mut out = String::new();
            push_ttl(&mut out, &change);
            assert_eq!(out, super::super::ttl_cell(&change));
            assert_eq!(ttl_width(&change), out.len());
        }
    }

    #[test]
    fn text_is_measured_by_what_it_shows() {
        assert_eq!(text_size("a.example."), Some(Size::ascii(10)));
        assert_eq!(text_size(""), Some(Size::ascii(0)));
        // `ü` is two bytes wide one; a colour sequence takes no width.
        let size = |bytes, width| Some(Size { bytes, width });
        assert_eq!(text_size("bücher.example."), size(16, 15));
        assert_eq!(text_size("\x1b[1mb\x1b[0m.example."), size(18, 10));
        assert_eq!(text_size("a\nb.example."), None);
    }
}
