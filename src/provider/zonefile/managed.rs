//! The read path of `plan`: the managed RRsets of a zone file, read without building
//! hickory's sorted map of every name in the zone (at 40,000 records, most of a plan's time).
//!
//! Hickory still decides everything it decides on the full path: each record's type and class
//! words, its TTL words, and its RDATA (`RData::parse`, cached by the RDATA's text, so 30,000
//! SRV records pointing at 3 pools parse 3 times). What this reader does itself is the
//! bookkeeping around them, the way hickory 0.25's `Parser` does it: `$ORIGIN`, `$TTL` (after
//! the same `normalise_ttls`), owner names and their inheritance, the TTL that sticks from one
//! record to the next, the SOA minimum as the default TTL, and an RRset's replacement rules.
//! Unmanaged records are checked (type, RDATA) but not kept, so a file that does not parse
//! still fails.
//!
//! Anything outside the plain layout (backslashes, `$INCLUDE` and other directives, a quoted
//! or parenthesised word before the type, a second SOA, any error) returns `None`: the caller
//! then reads the file with hickory's parser, whose result or error is the reference.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use hickory_proto::rr::{DNSClass, Name, RData, RecordType as HRecordType};
use hickory_proto::serialize::txt::{Parser, RDataParser};

use super::{normalise_ttls, scan};
use crate::dns::convert::{from_rdata, our_type};
use crate::records::{Fqdn, Rdata, RecordSet, RecordType, RrKey};

/// The RRsets of `keys` in the zone file `text` of zone `origin`, or `None` when the file
/// needs hickory's full parser (see the module doc).
pub(super) fn read(
    text: &str,
    origin: &Fqdn,
    keys: &BTreeSet<RrKey>,
) -> Option<BTreeMap<RrKey, RecordSet>> {
    let text = normalise_ttls(text);
    let mut reader = Reader::new(origin, keys)?;
    let lines = scan(&text);
    if lines.iter().any(|l| l.misread || l.depth_after < 0) || text.contains('\\') {
        return None;
    }
    let mut entry: Vec<&str> = Vec::new();
    for line in &lines {
        entry.push(line.code);
        if line.depth_after == 0 {
            reader.entry(&entry)?;
            entry.clear();
        }
    }
    if !entry.is_empty() {
        return None;
    }
    Some(reader.finish())
}

/// A record's RDATA as written, and what it means where it was read.
#[derive(Hash, PartialEq, Eq)]
struct RdataKey<'t> {
    rtype: HRecordType,
    /// Which `$ORIGIN` was in force (relative names in the RDATA depend on it).
    origin: u32,
    text: Cow<'t, str>,
}

/// A record of a managed RRset: TTL, class, data.
type Held = (u32, DNSClass, Rdata);

struct Reader<'k, 't> {
    /// Managed names (lower case, absolute) and their managed types.
    managed: HashMap<&'k str, Vec<RecordType>>,
    origin: Name,
    origin_text: String,
    origin_generation: u32,
    /// The owner of the current record (what a line starting with a blank inherits); its
    /// buffer is reused from record to record.
    owner: Option<String>,
    /// The managed RRset the last record went into, found again without a lookup when the
    /// next record belongs to it too (records of an RRset are usually written together).
    last_set: Option<RrKey>,
    /// hickory's current TTL: the last one written, `$TTL`, or the SOA minimum.
    ttl: Option<u32>,
    soa_seen: bool,
    /// RDATA already parsed: for managed types what it reads as, for others just that it
    /// parses (`None`).
    parsed: HashMap<RdataKey<'t>, Option<Rdata>>,
    /// hickory's current class: the last one written.
    class: DNSClass,
    /// Records of the managed RRsets, in file order.
    sets: BTreeMap<RrKey, Vec<Held>>,
}

impl<'k, 't> Reader<'k, 't> {
    fn new(origin: &Fqdn, keys: &'k BTreeSet<RrKey>) -> Option<Self> {
        let mut managed: HashMap<&str, Vec<RecordType>> = HashMap::new();
        for key in keys {
            managed
                .entry(key.name.as_str())
                .or_default()
                .push(key.rtype);
        }
        Some(Reader {
            managed,
            origin: Name::from_ascii(origin.as_str()).ok()?,
            origin_text: origin.as_str().to_string(),
            origin_generation: 0,
            owner: None,
            last_set: None,
            ttl: None,
            soa_seen: false,
            class: DNSClass::IN,
            parsed: HashMap::new(),
            sets: BTreeMap::new(),
        })
    }

    /// One entry: a directive, or a record over one line or several (parentheses).
    fn entry(&mut self, lines: &[&'t str]) -> Option<()> {
        let first = lines[0];
        let blank_owner = first.starts_with([' ', '\t']);
        let words = words(lines)?;
        let Some(&(head, _, _)) = words.first() else {
            return Some(());
        };
        match head {
            "$TTL" if words.len() == 2 => {
                self.ttl = Some(Parser::parse_time(words[1].0).ok()?);
                return Some(());
            }
            "$ORIGIN" if words.len() == 2 && words[1].0.ends_with('.') => {
                self.origin = Name::parse(words[1].0, None).ok()?;
                if !absolute_into(words[1].0, "", &mut self.origin_text) {
                    return None;
                }
                self.origin_generation += 1;
                return Some(());
            }
            _ if head.starts_with('$') => return None,
            _ => {}
        }
        let mut rest = &words[..];
        if !blank_owner {
            let mut owner = self.owner.take().unwrap_or_default();
            if head == "@" {
                owner.clone_from(&self.origin_text);
            } else if !absolute_into(head, &self.origin_text, &mut owner) {
                return None;
            }
            self.owner = Some(owner);
            rest = &words[1..];
        }
        self.record(first, rest, lines.len() > 1)
    }

    /// `[TTL] [class] type RDATA` (in either order of TTL and class), as hickory reads it.
    fn record(&mut self, line: &'t str, words: &[Word<'t>], several_lines: bool) -> Option<()> {
        let mut rtype = None;
        let mut at = 0;
        while let Some(&(word, quoted, _)) = words.get(at) {
            at += 1;
            if quoted || word == "(" || word == ")" {
                return None;
            }
            if let Ok(ttl) = Parser::parse_time(word) {
                self.ttl = Some(ttl);
                continue;
            }
            let mut buffer = [0u8; 16];
            let upper = upper_case(word, &mut buffer)?;
            if let Ok(class) = DNSClass::from_str(upper) {
                self.class = class;
                continue;
            }
            rtype = Some(HRecordType::from_str(upper).ok()?);
            break;
        }
        // A line with an owner and TTL or class but no type is accepted and adds nothing.
        let Some(rtype) = rtype else {
            return Some(());
        };
        let data: Vec<&str> = words[at..]
            .iter()
            .map(|&(w, _, _)| w)
            .filter(|w| *w != "(" && *w != ")")
            .collect();
        if rtype == HRecordType::SOA {
            return self.soa(&data);
        }
        let ttl = self.ttl?;
        let owner = self.owner.as_deref()?;
        let managed_type = our_type(rtype).filter(|t| {
            self.managed
                .get(owner)
                .is_some_and(|types| types.contains(t))
        });
        let key = RdataKey {
            rtype,
            origin: self.origin_generation,
            text: if several_lines {
                Cow::Owned(data.join(" "))
            } else {
                // The RDATA as written: the rest of the line (comments are already cut).
                Cow::Borrowed(line[words.get(at)?.2..].trim_end())
            },
        };
        let parsed = match self.parsed.get(&key) {
            Some(parsed) => parsed.clone(),
            None => {
                let rdata = RData::parse(rtype, data.iter().copied(), Some(&self.origin)).ok()?;
                let ours = from_rdata(&rdata);
                self.parsed.insert(key, ours.clone());
                ours
            }
        };
        if let Some(rtype) = managed_type {
            let held = (ttl, self.class, parsed?);
            let same = self
                .last_set
                .as_ref()
                .is_some_and(|k| k.rtype == rtype && k.name.as_str() == owner);
            if !same {
                let key = RrKey::new(Fqdn::from_absolute(owner), rtype);
                self.sets.entry(key.clone()).or_default();
                self.last_set = Some(key);
            }
            let key = self.last_set.as_ref().expect("set above");
            insert(self.sets.get_mut(key).expect("entry made above"), held);
        }
        Some(())
    }

    /// The SOA: its minimum becomes the TTL when none was set (hickory's rule); a second one
    /// is for hickory to judge.
    fn soa(&mut self, data: &[&str]) -> Option<()> {
        if self.soa_seen || self.owner.is_none() {
            return None;
        }
        self.soa_seen = true;
        let RData::SOA(soa) =
            RData::parse(HRecordType::SOA, data.iter().copied(), Some(&self.origin)).ok()?
        else {
            return None;
        };
        if self.ttl.is_none() {
            self.ttl = Some(soa.minimum());
        }
        Some(())
    }

    fn finish(self) -> BTreeMap<RrKey, RecordSet> {
        self.sets
            .into_iter()
            .filter_map(|(key, records)| {
                let ttl = records.iter().map(|(ttl, _, _)| *ttl).min()?;
                let data = records.into_iter().map(|(_, _, data)| data).collect();
                let set = RecordSet::new(key.name.clone(), key.rtype, ttl, data).ok()?;
                Some((key, set))
            })
            .collect()
    }
}

/// `word` in upper case, in `buffer`; `None` when longer than any class or type word.
fn upper_case<'b>(word: &str, buffer: &'b mut [u8; 16]) -> Option<&'b str> {
    let out = buffer.get_mut(..word.len())?;
    out.copy_from_slice(word.as_bytes());
    out.make_ascii_uppercase();
    std::str::from_utf8(out).ok()
}

/// Adds a record as hickory's `RecordSet::insert` does: a CNAME replaces the one before; the
/// same data again is ignored (its TTL too) unless its class differs, which replaces it.
fn insert(records: &mut Vec<Held>, held: Held) {
    if matches!(held.2, Rdata::Cname(_)) {
        records.clear();
    }
    if records.iter().any(|old| old.1 == held.1 && old.2 == held.2) {
        return;
    }
    records.retain(|old| old.2 != held.2);
    records.push(held);
}

/// A word of an entry: its text (without quotes), whether it was quoted, and where it starts
/// in its line.
type Word<'t> = (&'t str, bool, usize);

/// The words of an entry; parentheses are words of their own. `None` for a quote that does not
/// close on its line.
fn words<'t>(lines: &[&'t str]) -> Option<Vec<Word<'t>>> {
    let mut out = Vec::new();
    for line in lines {
        let mut rest = *line;
        loop {
            rest = rest.trim_start();
            let start = line.len() - rest.len();
            let Some(first) = rest.chars().next() else {
                break;
            };
            let (word, quoted, after) = match first {
                '"' => {
                    let end = rest[1..].find('"')? + 1;
                    (&rest[1..end], true, &rest[end + 1..])
                }
                '(' | ')' => (&rest[..1], false, &rest[1..]),
                _ => {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || "()\"".contains(c))
                        .unwrap_or(rest.len());
                    (&rest[..end], false, &rest[end..])
                }
            };
            out.push((word, quoted, start));
            rest = after;
        }
    }
    Some(out)
}

/// A name as written in the file, made absolute against `origin` and lower-cased into `name`:
/// what hickory's `Name::parse` and the key's `Fqdn` make of it. `false` for a name hickory
/// would refuse or this reader does not handle.
fn absolute_into(word: &str, origin: &str, name: &mut String) -> bool {
    name.clear();
    name.push_str(word);
    name.make_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
        name.push_str(origin);
    }
    let Some(body) = name.strip_suffix('.') else {
        return false;
    };
    let labels_ok = body.is_empty() || body.split('.').all(|l| (1..=63).contains(&l.len()));
    labels_ok && name.len() <= 254 && !name.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::zonefile::{managed_sets, parse_zone, to_record_set};
    use std::path::Path;

    /// Every RRset of a managed type in the file, by hickory's full parse, and a few keys
    /// the file does not hold.
    fn all_keys(text: &str, zone: &Fqdn) -> BTreeSet<RrKey> {
        let origin = Name::from_ascii(zone.as_str()).unwrap();
        let sets = parse_zone(text, Path::new("t.zone"), &origin).unwrap();
        let mut keys: BTreeSet<RrKey> = sets
            .values()
            .filter_map(to_record_set)
            .map(|s| s.key())
            .collect();
        for name in ["absent", "www", "mail"] {
            let name = Fqdn::parse(&format!("{name}.{zone}")).unwrap();
            keys.insert(RrKey::new(name.clone(), RecordType::Aaaa));
            keys.insert(RrKey::new(name, RecordType::Srv));
        }
        keys
    }

    /// The fast reader's RRsets are hickory's, for every key; `false` when it declined.
    fn agrees(text: &str, zone: &str) -> bool {
        let zone = Fqdn::parse(zone).unwrap();
        let keys = all_keys(text, &zone);
        let origin = Name::from_ascii(zone.as_str()).unwrap();
        let sets = parse_zone(text, Path::new("t.zone"), &origin).unwrap();
        let Some(fast) = read(text, &zone, &keys) else {
            return false;
        };
        assert_eq!(fast, managed_sets(&sets, &keys), "{text}");
        assert!(!fast.is_empty());
        true
    }

    #[test]
    fn the_fixture_zones_read_as_hickory_reads_them() {
        for name in ["contoso.com", "fabrikam.com"] {
            let path = format!("{}/fixtures/zones/{name}.zone", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(path).unwrap();
            assert!(agrees(&text, name), "{name} declined");
        }
    }

    #[test]
    fn ttls_owners_origins_and_replacements_read_as_hickory_reads_them() {
        // No $TTL: the SOA minimum, then each explicit TTL sticks (hickory's rule, kept).
        let sticky = "@ IN SOA ns1 h ( 1 2 3 4 300 )\n  IN NS ns1\nns1 IN A 192.0.2.53\n\
            a 60 IN A 192.0.2.1\nb IN A 192.0.2.2\nB IN 90 AAAA 2001:DB8::1\n";
        assert!(agrees(sticky, "contoso.com"));
        let tricky = "; comment (\n$ORIGIN contoso.com.\n$TTL 1h ; one hour\n\
            @ 86400 IN SOA ns1.contoso.com. h.contoso.com. (\n  2026 ; serial\n  7200 3600\n  1209600 300 )\n\
            \tIN TXT \"v=spf1; not a comment\" \"(\"\n\
            EdgePool1 60 IN A 192.0.2.10\n\tIN AAAA 2001:DB8:1::10\n\
            _xmpp-server._tcp IN SRV 10 0 5269 EdgePool1\n\
            _xmpp-server._tcp IN SRV ( 20 0 5269\n  edgepool2.contoso.com. )\n\
            _xmpp-server._tcp 30 IN SRV 10 0 5269 edgepool1.contoso.com.\n\
            alias IN CNAME a\nalias IN CNAME b.contoso.com.\n\
            ns1 20 CH A 192.0.2.53\nns1 IN A 192.0.2.53\nns1 10 IN A 192.0.2.53\n\
            $ORIGIN sub.contoso.com.\nx IN A 192.0.2.7\n\
            other.example. IN A 192.0.2.9\n\
            xmpp.contoso.com. 300 IN A 192.0.2.10\n";
        assert!(agrees(tricky, "contoso.com"));
    }

    #[test]
    fn a_bench_sized_zone_reads_as_hickory_reads_it() {
        let mut text = String::from(
            "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 h ( 1 7200 3600 1209600 300 )\n\
             xmpp 86400 IN A 192.0.2.10\n",
        );
        for i in 0..500 {
            for p in 1..=3 {
                let line = format!(
                    "_xmpp-server._tcp.sip{i:05} IN SRV {} 0 5269 edgepool{p}.example.com.\n",
                    p - 1
                );
                text.push_str(&line);
            }
            text.push_str(&format!(
                "host{i:05} IN TXT \"owner=team-{}; note=x\"\n",
                i % 7
            ));
        }
        assert!(agrees(&text, "example.com"));
    }

    #[test]
    fn what_it_does_not_handle_is_left_to_hickory() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let keys = BTreeSet::new();
        let soa = "@ IN SOA ns1 h 1 2 3 4 5\n";
        for text in [
            // A record hickory refuses: its error is the one to report.
            format!("{soa}www IN A 999.0.2.80\n"),
            format!("{soa}www IN BOGUS 1\n"),
            format!("{soa}x 3600 IN TXT \"a \\\"quoted\\\" word\"\n"),
            format!("$INCLUDE other.zone\n{soa}"),
            format!("{soa}{soa}"),
            // No TTL anywhere before the record, no owner yet.
            "www IN A 192.0.2.1\n".to_string(),
            format!("  IN A 192.0.2.1\n{soa}"),
            format!("{soa}www IN ( A 192.0.2.1 )\n"),
            format!("{soa}www IN TXT ( \"a\"\n"),
        ] {
            assert_eq!(read(&text, &zone, &keys), None, "{text}");
        }
    }
}
