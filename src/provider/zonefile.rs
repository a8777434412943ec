//! The embedded default provider: BIND-format zone files on disk.
//!
//! Reading uses hickory's zone-file parser. Writing regenerates the whole file (records
//! sorted, names relative to the origin, comments not kept) and then proves the result
//! faithful: the new text is parsed again and every record that was not meant to change must
//! come back byte-for-byte on the wire, or nothing is written. The write is atomic (temporary
//! file + rename) and the previous file is kept as `<file>.bak`. The compare-and-swap check and
//! the rename are both ours: another writer between them is not seen.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{
    Name, RData, Record, RecordSet as HRecordSet, RecordType as HRecordType, RrKey as HRrKey,
};
use hickory_proto::serialize::binary::BinEncodable;
use hickory_proto::serialize::txt::Parser;

use crate::dns::convert::{self, hickory_type, our_type};
use crate::plan::{Change, Drift, ZoneState};
use crate::provider::{Applied, Provider, ProviderError};
use crate::records::{Fqdn, RecordSet, RecordType, RrKey};

mod managed;

/// What can go wrong with a zone file.
#[derive(Debug, thiserror::Error)]
pub enum ZoneFileError {
    #[error("zone {zone}: no zone file is configured for it")]
    NoZoneFile { zone: Fqdn },
    #[error("cannot read zone file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write zone file {}: {source}; the previous file is unchanged", path.display())]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("zone file {} does not parse: {message}", path.display())]
    ParseFile { path: PathBuf, message: String },
    #[error("zone file {}: {message}", path.display())]
    BadZone { path: PathBuf, message: String },
    #[error("zone file {}: rewriting it would not keep every record as it was ({message}); nothing was written", path.display())]
    NotFaithful { path: PathBuf, message: String },
}

impl From<ZoneFileError> for ProviderError {
    fn from(error: ZoneFileError) -> Self {
        let kind = match error {
            ZoneFileError::NoZoneFile { .. } => ProviderError::Config,
            ZoneFileError::ReadFile { .. } | ZoneFileError::WriteFile { .. } => {
                ProviderError::Transport
            }
            ZoneFileError::ParseFile { .. }
            | ZoneFileError::BadZone { .. }
            | ZoneFileError::NotFaithful { .. } => ProviderError::Rejected,
        };
        kind(Box::new(error))
    }
}

pub struct ZoneFileProvider {
    files: BTreeMap<Fqdn, PathBuf>,
    /// Today as YYYYMMDD, for date-based serials.
    today: u32,
}

/// A parsed zone file.
struct LoadedZone {
    path: PathBuf,
    origin: Name,
    /// The SOA's TTL as the file gives it (see [`soa_ttl`]).
    soa_ttl: Option<u32>,
    /// The first line (1-based) in a layout hickory misreads, if any: such a file is read
    /// (managed names do not use those layouts) but never rewritten.
    misread_line: Option<usize>,
    sets: BTreeMap<HRrKey, HRecordSet>,
}

impl ZoneFileProvider {
    pub fn new(files: BTreeMap<Fqdn, PathBuf>, today: u32) -> Self {
        ZoneFileProvider { files, today }
    }

    fn path(&self, zone: &Fqdn) -> Result<&Path, ZoneFileError> {
        self.files
            .get(zone)
            .map(PathBuf::as_path)
            .ok_or_else(|| ZoneFileError::NoZoneFile { zone: zone.clone() })
    }

    fn load(&self, zone: &Fqdn) -> Result<LoadedZone, ZoneFileError> {
        let text = self.text(zone)?;
        self.parse(zone, &text)
    }

    fn text(&self, zone: &Fqdn) -> Result<String, ZoneFileError> {
        let path = self.path(zone)?;
        fs::read_to_string(path).map_err(|source| ZoneFileError::ReadFile {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The whole file through hickory's parser: what a rewrite starts from.
    fn parse(&self, zone: &Fqdn, text: &str) -> Result<LoadedZone, ZoneFileError> {
        let path = self.path(zone)?;
        let origin = Name::from_ascii(zone.as_str()).map_err(|e| ZoneFileError::BadZone {
            path: path.to_path_buf(),
            message: format!("zone name {zone}: {e}"),
        })?;
        let sets = parse_zone(text, path, &origin)?;
        Ok(LoadedZone {
            path: path.to_path_buf(),
            origin,
            soa_ttl: soa_ttl(text),
            misread_line: scan(text).iter().position(|l| l.misread).map(|i| i + 1),
            sets,
        })
    }
}

pub(crate) fn parse_zone(
    text: &str,
    path: &Path,
    origin: &Name,
) -> Result<BTreeMap<HRrKey, HRecordSet>, ZoneFileError> {
    let (_, sets) = Parser::new(
        normalise_ttls(text),
        Some(path.to_path_buf()),
        Some(origin.clone()),
    )
    .parse()
    .map_err(|e| ZoneFileError::ParseFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(sets)
}

/// One physical line of a zone file, split the way a TTL-aware reader needs.
struct ZoneLine<'a> {
    /// The line without its comment.
    code: &'a str,
    /// True when a new record (or directive) starts on this line: outside parentheses.
    at_top: bool,
    /// Parenthesis depth after the line.
    depth_after: i32,
    /// A layout hickory 0.25's lexer misreads: a quoted string inside parentheses, or a
    /// backslash escape outside quotes.
    misread: bool,
}

/// Splits zone-file text into lines, tracking comments, quotes and parentheses.
fn scan(text: &str) -> Vec<ZoneLine<'_>> {
    let mut depth = 0;
    text.lines()
        .map(|line| {
            let at_top = depth == 0;
            let (mut in_quote, mut escaped, mut end) = (false, false, line.len());
            let mut misread = false;
            for (i, c) in line.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => {
                        escaped = true;
                        misread |= !in_quote;
                    }
                    '"' => {
                        in_quote = !in_quote;
                        misread |= depth > 0;
                    }
                    ';' if !in_quote => {
                        end = i;
                        break;
                    }
                    '(' if !in_quote => depth += 1,
                    ')' if !in_quote => depth -= 1,
                    _ => {}
                }
            }
            ZoneLine {
                code: &line[..end],
                at_top,
                depth_after: depth,
                misread,
            }
        })
        .collect()
}

/// The explicit TTL of a record that starts on this line, if it has one.
fn explicit_ttl(code: &str) -> Option<u32> {
    let mut words = code.split_whitespace();
    // A line starting in column 0 begins with its owner name, which is not a TTL.
    if !code.starts_with([' ', '\t']) {
        words.next();
    }
    words
        .take(2)
        .filter(|w| {
            !["IN", "CH", "HS", "CS"]
                .iter()
                .any(|c| w.eq_ignore_ascii_case(c))
        })
        .find_map(|w| Parser::parse_time(w).ok())
}

fn is_soa(code: &str) -> bool {
    code.split_whitespace()
        .take(4)
        .any(|w| w.eq_ignore_ascii_case("SOA"))
}

/// The TTL of the zone's SOA record as written: the explicit TTL on the SOA line, else the
/// `$TTL` in force there. Needed because hickory 0.25's parser gives the SOA the TTL of its
/// `expire` field, which a rewrite would then make real. `None` when neither is written, in
/// which case servers (BIND) use the SOA minimum.
fn soa_ttl(text: &str) -> Option<u32> {
    let mut default_ttl = None;
    for line in scan(text).iter().filter(|l| l.at_top) {
        if let Some(value) = line.code.strip_prefix("$TTL") {
            default_ttl = value
                .split_whitespace()
                .next()
                .and_then(|t| Parser::parse_time(t).ok());
        } else if is_soa(line.code) {
            return explicit_ttl(line.code).or(default_ttl);
        }
    }
    None
}

/// hickory 0.25's parser lets a record's explicit TTL become the default for the records
/// after it, even under a `$TTL` directive; BIND (RFC 2308) keeps using `$TTL`. To read
/// files as BIND does, `$TTL` is stated again after every record that has its own TTL.
fn normalise_ttls(text: &str) -> std::borrow::Cow<'_, str> {
    let lines = scan(text);
    let mut default_ttl: Option<&str> = None;
    let mut out = String::new();
    let mut pending: Option<&str> = None;
    let mut touched = false;
    for (line, raw) in lines.iter().zip(text.lines()) {
        out.push_str(raw);
        out.push('\n');
        if line.at_top {
            if let Some(value) = line.code.strip_prefix("$TTL") {
                default_ttl = value.split_whitespace().next();
            } else if !line.code.trim().is_empty()
                && !line.code.starts_with('$')
                && explicit_ttl(line.code).is_some()
            {
                pending = default_ttl;
            }
        }
        if line.depth_after == 0 {
            if let Some(ttl) = pending.take() {
                out.push_str("$TTL ");
                out.push_str(ttl);
                out.push('\n');
                touched = true;
            }
        }
    }
    if touched {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn fqdn(name: &Name) -> Fqdn {
    Fqdn::from_absolute(&name.to_ascii())
}

/// Converts one of hickory's RRsets into the shared vocabulary (types this tool manages only).
/// A zone file may give the records of one RRset different TTLs; resolvers treat the set as
/// having the smallest, and so do we.
fn to_record_set(set: &HRecordSet) -> Option<RecordSet> {
    let rtype = our_type(set.record_type())?;
    let mut ttl = u32::MAX;
    let mut records = Vec::new();
    for (_, record_ttl, data) in set
        .records_without_rrsigs()
        .filter_map(convert::from_record)
    {
        ttl = ttl.min(record_ttl);
        records.push(data);
    }
    if records.is_empty() {
        return None;
    }
    RecordSet::new(fqdn(set.name()), rtype, ttl, records).ok()
}

/// The RRsets of `keys` among hickory's parse of a whole file.
fn managed_sets(
    sets: &BTreeMap<HRrKey, HRecordSet>,
    keys: &BTreeSet<RrKey>,
) -> BTreeMap<RrKey, RecordSet> {
    let mut rrsets = BTreeMap::new();
    for set in sets.values() {
        let Some(rtype) = our_type(set.record_type()) else {
            continue;
        };
        let key = RrKey::new(fqdn(set.name()), rtype);
        if keys.contains(&key) {
            if let Some(converted) = to_record_set(set) {
                rrsets.insert(key, converted);
            }
        }
    }
    rrsets
}

/// The next SOA serial: date-based `YYYYMMDDnn` when the old one looks like one, else +1.
pub fn next_serial(old: u32, today: u32) -> u32 {
    let date = old / 100;
    let (year, month, day) = (date / 10_000, date / 100 % 100, date % 100);
    let looks_dated =
        (1990..=2099).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day);
    if looks_dated && date < today {
        today * 100
    } else {
        // RFC 1982 serial arithmetic: wrapping is how serials move past 2^32.
        old.wrapping_add(1)
    }
}

/// A character-string in presentation format, quoted and escaped (RFC 1035 §5.1). hickory's
/// own Display for TXT drops the quotes, which would not parse back the same.
fn quote(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() + 2);
    text.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                text.push('\\');
                text.push(b as char);
            }
            0x20..=0x7e => text.push(b as char),
            _ => text.push_str(&format!("\\{b:03}")),
        }
    }
    text.push('"');
    text
}

fn rdata_text(rdata: &RData) -> String {
    match rdata {
        RData::TXT(txt) => txt
            .txt_data()
            .iter()
            .map(|s| quote(s))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn owner_text(name: &str, origin: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower == origin {
        "@".to_string()
    } else if lower.len() > origin.len() + 1
        && lower.ends_with(origin)
        && lower.as_bytes()[lower.len() - origin.len() - 1] == b'.'
    {
        name[..name.len() - origin.len() - 1].to_string()
    } else {
        name.to_string()
    }
}

/// One line of the rewritten file, with what it sorts by.
struct Line {
    soa_first: u8,
    name: Name,
    rtype: u16,
    text: String,
}

impl Line {
    /// A record of the file as it is (or the new SOA), in presentation format.
    fn of_record(record: &Record, origin_text: &str) -> Self {
        Line {
            soa_first: u8::from(record.record_type() != HRecordType::SOA),
            name: record.name().clone(),
            rtype: record.record_type().into(),
            text: format!(
                "{}\t{}\t{}\t{}\t{}",
                owner_text(&record.name().to_ascii(), origin_text),
                record.ttl(),
                record.dns_class(),
                record.record_type(),
                rdata_text(record.data())
            ),
        }
    }
}

impl Provider for ZoneFileProvider {
    fn kind(&self) -> &'static str {
        "zonefile"
    }

    /// Only the managed RRsets, by [`managed::read`] when the file's layout allows, else from
    /// hickory's parse of the whole file.
    fn read(&mut self, zone: &Fqdn, keys: &BTreeSet<RrKey>) -> Result<ZoneState, ProviderError> {
        let text = self.text(zone)?;
        if let Some(rrsets) = managed::read(&text, zone, keys) {
            return Ok(ZoneState { rrsets });
        }
        let loaded = self.parse(zone, &text)?;
        Ok(ZoneState {
            rrsets: managed_sets(&loaded.sets, keys),
        })
    }

    fn apply(&mut self, zone: &Fqdn, changes: &[Change]) -> Result<Applied, ProviderError> {
        let loaded = self.load(zone)?;
        loaded.check_rewritable()?;

        // Compare-and-swap: every change's `before` must still be what the file holds.
        let drift = loaded.drift(changes);
        if !drift.is_empty() {
            return Err(ProviderError::Stale {
                zone: zone.clone(),
                drift,
            });
        }
        loaded.check_cnames(changes)?;

        let changed: BTreeSet<(Fqdn, HRecordType)> = changes
            .iter()
            .map(|c| (c.name.clone(), hickory_type(c.rtype)))
            .collect();
        let mut rewrite = loaded.keep_unchanged(&changed, self.today)?;
        rewrite.lines.extend(loaded.changed_lines(changes)?);
        let (old_serial, new_serial) = rewrite.serial;
        let text = loaded.text(zone, rewrite.lines);

        verify(&text, &loaded, changes, &changed, rewrite.kept, new_serial)?;
        let path = &loaded.path;
        write_atomically(path, &text).map_err(|source| ZoneFileError::WriteFile {
            path: path.clone(),
            source,
        })?;
        Ok(Applied {
            zone: zone.clone(),
            changes: changes.len(),
            detail: format!(
                "{} written, serial {old_serial} -> {new_serial}",
                path.display()
            ),
        })
    }
}

/// The new file's lines for what stays, and what proves them kept.
struct Rewrite {
    lines: Vec<Line>,
    /// Every kept record (all but the SOA) on the wire, to compare with the new text's.
    kept: Vec<Vec<u8>>,
    /// The SOA serial, before and after.
    serial: (u32, u32),
}

impl LoadedZone {
    fn bad(&self, message: String) -> ZoneFileError {
        ZoneFileError::BadZone {
            path: self.path.clone(),
            message,
        }
    }

    /// Refuses a file that uses a layout hickory misreads: rewriting it could change it.
    fn check_rewritable(&self) -> Result<(), ZoneFileError> {
        match self.misread_line {
            None => Ok(()),
            Some(line) => Err(self.bad(format!(
                "line {line} writes a record in a layout that hickory 0.25's zone-file reader misreads \
                 (a quoted string inside parentheses, as DKIM keys often are, or a backslash escape outside \
                 quotes), so rewriting the file could change it; nothing was written. Put that record's \
                 quoted strings on one line without parentheses, or manage this zone with the rfc2136 provider"
            ))),
        }
    }

    /// The changes whose `before` is not what the file holds now.
    fn drift(&self, changes: &[Change]) -> Vec<Drift> {
        let mut current: BTreeMap<RrKey, RecordSet> = BTreeMap::new();
        for set in self.sets.values() {
            if let Some(converted) = to_record_set(set) {
                current.insert(converted.key(), converted);
            }
        }
        crate::plan::drift_from_before(changes, &current)
    }

    /// A name with a CNAME holds nothing else (RFC 1034 §3.6.2): refuse to add to one.
    fn check_cnames(&self, changes: &[Change]) -> Result<(), ZoneFileError> {
        for change in changes.iter().filter(|c| c.after.is_some()) {
            if change.rtype != RecordType::Cname
                && self
                    .sets
                    .values()
                    .any(|s| s.record_type() == HRecordType::CNAME && fqdn(s.name()) == change.name)
            {
                return Err(self.bad(format!(
                    "{} has a CNAME, so it cannot also hold {} records (RFC 1034 §3.6.2); remove the CNAME first",
                    change.name, change.rtype
                )));
            }
        }
        Ok(())
    }

    /// The lines of every RRset not in `changed`, the SOA with its next serial.
    fn keep_unchanged(
        &self,
        changed: &BTreeSet<(Fqdn, HRecordType)>,
        today: u32,
    ) -> Result<Rewrite, ZoneFileError> {
        let origin_text = self.origin_text();
        let mut lines: Vec<Line> = Vec::new();
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let mut serial = None;
        for set in self.sets.values() {
            if changed.contains(&(fqdn(set.name()), set.record_type())) {
                continue;
            }
            for record in set.records_without_rrsigs() {
                let record = if let RData::SOA(soa) = record.data() {
                    let new = next_serial(soa.serial(), today);
                    serial = Some((soa.serial(), new));
                    self.next_soa(record, soa, new)
                } else {
                    kept.push(wire(record, &self.path)?);
                    record.clone()
                };
                lines.push(Line::of_record(&record, &origin_text));
            }
        }
        let serial = serial.ok_or_else(|| self.bad("the zone has no SOA record".into()))?;
        Ok(Rewrite {
            lines,
            kept,
            serial,
        })
    }

    /// The SOA record with serial `new`, at the TTL the file gives it (see [`soa_ttl`]).
    fn next_soa(&self, record: &Record, soa: &SOA, new: u32) -> Record {
        let data = SOA::new(
            soa.mname().clone(),
            soa.rname().clone(),
            new,
            soa.refresh(),
            soa.retry(),
            soa.expire(),
            soa.minimum(),
        );
        let ttl = self.soa_ttl.unwrap_or(soa.minimum());
        Record::from_rdata(record.name().clone(), ttl, RData::SOA(data))
    }

    /// The lines of the RRsets the changes install.
    fn changed_lines(&self, changes: &[Change]) -> Result<Vec<Line>, ZoneFileError> {
        let origin_text = self.origin_text();
        let mut lines = Vec::new();
        for set in changes.iter().filter_map(|c| c.after.as_ref()) {
            let name = Name::from_ascii(set.name.as_str())
                .map_err(|e| self.bad(format!("{}: {e}", set.name)))?;
            for rdata in set.records() {
                lines.push(Line {
                    soa_first: 1,
                    name: name.clone(),
                    rtype: hickory_type(set.rtype).into(),
                    text: format!(
                        "{}\t{}\tIN\t{}\t{}",
                        owner_text(set.name.as_str(), &origin_text),
                        set.ttl,
                        set.rtype,
                        rdata
                    ),
                });
            }
        }
        Ok(lines)
    }

    fn origin_text(&self) -> String {
        self.origin.to_ascii().to_ascii_lowercase()
    }

    /// The whole new file: a header naming the backup, `$ORIGIN`, then the lines sorted (SOA
    /// first, then by name and type).
    fn text(&self, zone: &Fqdn, mut lines: Vec<Line>) -> String {
        lines.sort_by(|a, b| (a.soa_first, &a.name, a.rtype).cmp(&(b.soa_first, &b.name, b.rtype)));
        let mut text = format!(
            "; Zone {zone} written by xmppdns {}. Previous version: {}.bak\n$ORIGIN {}\n",
            env!("CARGO_PKG_VERSION"),
            self.path
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default(),
            self.origin.to_ascii()
        );
        for line in &lines {
            text.push_str(&line.text);
            text.push('\n');
        }
        text
    }
}

fn wire(record: &Record, path: &Path) -> Result<Vec<u8>, ZoneFileError> {
    record.to_bytes().map_err(|e| ZoneFileError::NotFaithful {
        path: path.to_path_buf(),
        message: format!("{} {}: {e}", record.name(), record.record_type()),
    })
}

/// Parses the new text and checks that it holds exactly what was intended: the kept records
/// unchanged on the wire, the changed RRsets as planned, and the new serial.
fn verify(
    text: &str,
    loaded: &LoadedZone,
    changes: &[Change],
    changed: &BTreeSet<(Fqdn, HRecordType)>,
    mut kept: Vec<Vec<u8>>,
    new_serial: u32,
) -> Result<(), ZoneFileError> {
    let path = &loaded.path;
    let unfaithful = |message: String| ZoneFileError::NotFaithful {
        path: path.clone(),
        message,
    };
    let sets = parse_zone(text, path, &loaded.origin)
        .map_err(|e| unfaithful(format!("the new text does not parse: {e}")))?;
    let mut again: Vec<Vec<u8>> = Vec::new();
    let mut serial = None;
    for set in sets.values() {
        if changed.contains(&(fqdn(set.name()), set.record_type())) {
            continue;
        }
        for record in set.records_without_rrsigs() {
            if let RData::SOA(soa) = record.data() {
                serial = Some(soa.serial());
            } else {
                again.push(wire(record, path)?);
            }
        }
    }
    kept.sort();
    again.sort();
    if kept != again {
        let lost = kept.iter().filter(|r| !again.contains(r)).count();
        return Err(unfaithful(format!(
            "{lost} record(s) would not read back the same; a record type this tool cannot rewrite?"
        )));
    }
    if serial != Some(new_serial) {
        return Err(unfaithful(format!(
            "the SOA serial would read back as {serial:?}"
        )));
    }
    for change in changes {
        let found = sets
            .values()
            .find(|s| {
                s.record_type() == hickory_type(change.rtype) && fqdn(s.name()) == change.name
            })
            .and_then(to_record_set);
        if found != change.after {
            return Err(unfaithful(format!(
                "{} {} would not read back as planned",
                change.name, change.rtype
            )));
        }
    }
    Ok(())
}

/// Writes `text` to `path` so that readers see either the old or the new file, never a part;
/// the old file is kept as `<path>.bak`.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    crate::files::replace_keeping_backup(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::records::Rdata;

    #[test]
    fn serials_follow_dates_or_count() {
        assert_eq!(next_serial(2026010103, 20261130), 2026113000);
        assert_eq!(next_serial(2026113000, 20261130), 2026113001);
        // A date in the future (clock skew or a hand edit) is never moved backwards.
        assert_eq!(next_serial(2027010100, 20261130), 2027010101);
        assert_eq!(next_serial(7, 20261130), 8);
        assert_eq!(next_serial(u32::MAX, 20261130), 0);
    }

    #[test]
    fn soa_ttl_comes_from_the_soa_line_or_dollar_ttl() {
        assert_eq!(soa_ttl("$TTL 1h\n@ IN SOA a. b. 1 2 3 4 5\n"), Some(3600));
        assert_eq!(
            soa_ttl("$TTL 1h\n@ 600 IN SOA a. b. 1 2 3 4 5\n"),
            Some(600)
        );
        assert_eq!(
            soa_ttl("$TTL 1h\n  IN 900 SOA a. b. ( 1 2 3 4 5 )\n"),
            Some(900)
        );
        assert_eq!(soa_ttl("; $TTL 1h\n@ IN SOA a. b. 1 2 3 4 5\n"), None);
    }

    #[test]
    fn a_records_own_ttl_does_not_become_the_default() {
        let text = "$TTL 3600\n@ IN SOA a. b. ( 1 2\n 3 4 5 )\nx 60 IN A 192.0.2.1\ny IN A 192.0.2.2 ; (\n";
        let path = Path::new("t.zone");
        let origin = Name::from_ascii("contoso.com.").unwrap();
        let sets = parse_zone(text, path, &origin).unwrap();
        let ttl = |owner: &str| {
            sets.values()
                .find(|s| fqdn(s.name()).as_str() == owner)
                .map(|s| s.ttl())
                .unwrap()
        };
        assert_eq!(ttl("x.contoso.com."), 60);
        assert_eq!(ttl("y.contoso.com."), 3600);
    }

    #[test]
    fn layouts_hickory_misreads_are_found() {
        let misread = |t: &str| scan(t).iter().any(|l| l.misread);
        assert!(misread("k IN TXT ( \"v=DKIM1; k=rsa; \"\n \"p=MIIB\" )\n"));
        assert!(misread("e IN TXT unquoted\\;semicolon\n"));
        assert!(!misread("a IN TXT \"v=DKIM1; k=rsa; p=abc\"\n"));
        assert!(!misread("f IN TXT \"with \\\"quote\\\"\"\n"));
        assert!(!misread("@ IN SOA a. b. ( 1 2\n 3 4 5 ) ; \"comment\"\n"));
    }

    #[test]
    fn txt_strings_are_quoted_and_escaped() {
        assert_eq!(quote(b"v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(quote(b"a\"b\\c\x01"), "\"a\\\"b\\\\c\\001\"");
    }

    const ZONE: &str = r#"$ORIGIN contoso.com.
$TTL 3600
@   IN SOA ns1.contoso.com. hostmaster.contoso.com. ( 2026010101 7200 3600 1209600 300 )
    IN NS  ns1
    IN MX  10 mail
    IN TXT "v=spf1 mx -all" "second \"part\""
ns1 IN A 192.0.2.53
www IN CNAME web.contoso.com.
WEB IN A 192.0.2.80 ; a comment
_sip._tls IN SRV 100 1 443 sip.contoso.com.
xmpp 300 IN A 192.0.2.10
"#;

    fn setup() -> (tempfile::TempDir, ZoneFileProvider, Fqdn) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contoso.com.zone");
        fs::write(&path, ZONE).unwrap();
        let zone = Fqdn::parse("contoso.com").unwrap();
        let provider = ZoneFileProvider::new([(zone.clone(), path)].into(), 20261130);
        (dir, provider, zone)
    }

    fn a(name: &str, ttl: u32, ip: &str) -> RecordSet {
        RecordSet::new(
            Fqdn::parse(name).unwrap(),
            RecordType::A,
            ttl,
            vec![Rdata::A(ip.parse().unwrap())],
        )
        .unwrap()
    }

    fn key(name: &str, rtype: RecordType) -> RrKey {
        RrKey::new(Fqdn::parse(name).unwrap(), rtype)
    }

    #[test]
    fn reads_only_the_managed_keys() {
        let (_dir, mut provider, zone) = setup();
        let keys = [
            key("xmpp.contoso.com", RecordType::A),
            key("xmpp.contoso.com", RecordType::Aaaa),
        ]
        .into_iter()
        .collect();
        let state = provider.read(&zone, &keys).unwrap();
        assert_eq!(state.rrsets.len(), 1);
        assert_eq!(
            state.rrsets[&key("xmpp.contoso.com", RecordType::A)],
            a("xmpp.contoso.com", 300, "192.0.2.10")
        );
    }

    #[test]
    fn rewrite_keeps_every_unmanaged_record_and_bumps_the_serial() {
        let (dir, mut provider, zone) = setup();
        let change = Change {
            zone: zone.clone(),
            action: Action::Update,
            name: Fqdn::parse("xmpp.contoso.com").unwrap(),
            rtype: RecordType::A,
            before: Some(a("xmpp.contoso.com", 300, "192.0.2.10")),
            after: Some(a("xmpp.contoso.com", 300, "198.51.100.20")),
        };
        let applied = provider.apply(&zone, &[change]).unwrap();
        assert!(
            applied.detail.contains("2026010101 -> 2026113000"),
            "{}",
            applied.detail
        );
        let path = dir.path().join("contoso.com.zone");
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"v=spf1 mx -all\" \"second \\\"part\\\"\""),
            "{text}"
        );
        assert!(text.contains("xmpp\t300\tIN\tA\t198.51.100.20"), "{text}");
        assert!(text.contains("web\t3600\tIN\tA\t192.0.2.80"), "{text}");
        assert!(text.contains("@\t3600\tIN\tSOA\tns1.contoso.com. hostmaster.contoso.com. 2026113000 7200 3600 1209600 300"), "{text}");
        assert_eq!(
            fs::read_to_string(dir.path().join("contoso.com.zone.bak")).unwrap(),
            ZONE
        );

        // Every record other than the changed one and the SOA survives on the wire.
        let origin = Name::from_ascii("contoso.com.").unwrap();
        let before = parse_zone(ZONE, &path, &origin).unwrap();
        let after = parse_zone(&text, &path, &origin).unwrap();
        assert_eq!(before.len(), after.len());
        for (k, set) in &before {
            if set.record_type() == HRecordType::SOA
                || k.record_type == HRecordType::A
                    && fqdn(set.name()).as_str() == "xmpp.contoso.com."
            {
                continue;
            }
            assert_eq!(Some(set), after.get(k), "{k:?}");
        }
    }

    #[test]
    fn stale_before_is_refused_and_nothing_is_written() {
        let (dir, mut provider, zone) = setup();
        let change = Change {
            zone: zone.clone(),
            action: Action::Update,
            name: Fqdn::parse("xmpp.contoso.com").unwrap(),
            rtype: RecordType::A,
            before: Some(a("xmpp.contoso.com", 300, "192.0.2.99")),
            after: Some(a("xmpp.contoso.com", 300, "198.51.100.20")),
        };
        let err = provider.apply(&zone, &[change]).unwrap_err();
        assert!(err.is_stale());
        assert!(
            err.to_string()
                .contains("expected ttl 300 [192.0.2.99], found ttl 300 [192.0.2.10]"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("contoso.com.zone")).unwrap(),
            ZONE
        );
        assert!(!dir.path().join("contoso.com.zone.bak").exists());
    }

    #[test]
    fn a_name_with_a_cname_cannot_take_other_records() {
        let (_dir, mut provider, zone) = setup();
        let change = Change {
            zone: zone.clone(),
            action: Action::Create,
            name: Fqdn::parse("www.contoso.com").unwrap(),
            rtype: RecordType::A,
            before: None,
            after: Some(a("www.contoso.com", 300, "192.0.2.1")),
        };
        let err = provider.apply(&zone, &[change]).unwrap_err();
        assert!(err.to_string().contains("has a CNAME"), "{err}");
    }

    #[test]
    fn errors_reach_the_engine_as_their_kind_with_the_same_words() {
        let (_dir, mut provider, _zone) = setup();
        let other = Fqdn::parse("fabrikam.com").unwrap();
        let err = provider.read(&other, &BTreeSet::new()).unwrap_err();
        assert!(matches!(err, ProviderError::Config(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "zone fabrikam.com.: no zone file is configured for it"
        );
        let own = err.adapter_error().unwrap().downcast_ref::<ZoneFileError>();
        assert!(matches!(own, Some(ZoneFileError::NoZoneFile { .. })));
    }
}
