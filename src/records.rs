//! The one record vocabulary shared by the planner, the providers and the audit.
//!
//! Names are kept as lower-case absolute strings (`edge1.contoso.com.`) so that comparing and
//! sorting tens of thousands of RRsets is plain string work; conversion to and from hickory's
//! types happens only at the edges (zone-file parser, wire code).

use std::cmp::Ordering;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a domain name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("`{0}` is an IP address, not a host name")]
    IpLiteral(String),
    #[error(
        "`{0}` is a relative name: write the fully-qualified name (for example `{0}.contoso.com`)"
    )]
    Relative(String),
    #[error("`{name}` has an empty label")]
    EmptyLabel { name: String },
    #[error("`{name}`: label `{label}` is longer than 63 characters")]
    LabelTooLong { name: String, label: String },
    #[error("`{name}` is longer than 253 characters")]
    TooLong { name: String },
    #[error("`{name}`: label `{label}` has a character that is not a letter, digit, hyphen or underscore")]
    BadCharacter { name: String, label: String },
    #[error("`{name}`: label `{label}` starts or ends with a hyphen")]
    Hyphen { name: String, label: String },
    #[error("`{name}` is not a valid internationalised domain name (IDNA, UTS #46); write it in its A-label (`xn--`) form")]
    Idna { name: String },
}

/// An absolute, lower-case domain name that always ends with a dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Fqdn(String);

/// Written as its text, borrowed: `serde(into = "String")` copied every name of a report to
/// write it (ten thousand domains: some 70,000 copies).
impl Serialize for Fqdn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl Fqdn {
    /// Parses a name written in configuration: the trailing dot is optional, but the name
    /// must have at least two labels (a single label is almost always a forgotten domain).
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed == "." {
            return Err(NameError::Empty);
        }
        let bare = trimmed.strip_suffix('.').unwrap_or(trimmed);
        // U-labels (`bücher.example`) become A-labels (`xn--bcher-kva.example`), as DNS holds
        // them; the checks below then apply to what goes on the wire.
        let ascii;
        let bare = if bare.is_ascii() {
            bare
        } else {
            ascii = idna::domain_to_ascii(bare).map_err(|_| NameError::Idna {
                name: bare.to_string(),
            })?;
            ascii.as_str()
        };
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return Err(NameError::IpLiteral(bare.to_string()));
        }
        if bare.len() > 253 {
            return Err(NameError::TooLong {
                name: bare.to_string(),
            });
        }
        let labels: Vec<&str> = bare.split('.').collect();
        for label in &labels {
            Self::check_label(bare, label)?;
        }
        if labels.len() < 2 {
            return Err(NameError::Relative(bare.to_string()));
        }
        let mut name = bare.to_ascii_lowercase();
        name.push('.');
        Ok(Fqdn(name))
    }

    /// Builds a name from a source that is already known to be a valid absolute name
    /// (hickory's parser, the wire), keeping only the normalisation.
    pub fn from_absolute(text: &str) -> Self {
        let mut name = text.to_ascii_lowercase();
        if !name.ends_with('.') {
            name.push('.');
        }
        Fqdn(name)
    }

    fn check_label(name: &str, label: &str) -> Result<(), NameError> {
        if label.is_empty() {
            return Err(NameError::EmptyLabel {
                name: name.to_string(),
            });
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong {
                name: name.to_string(),
                label: label.to_string(),
            });
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NameError::BadCharacter {
                name: name.to_string(),
                label: label.to_string(),
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Hyphen {
                name: name.to_string(),
                label: label.to_string(),
            });
        }
        Ok(())
    }

    /// The name with its trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without its trailing dot, as people usually write it.
    pub fn bare(&self) -> &str {
        &self.0[..self.0.len() - 1]
    }

    /// True when `self` is `zone` or a name below it.
    pub fn is_within(&self, zone: &Fqdn) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(&zone.0)
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// `prefix` + `.` + this name, for owner names like `_xmpp-server._tcp.<domain>`.
    pub fn prepend(&self, prefix: &str) -> Fqdn {
        let mut name = String::with_capacity(prefix.len() + 1 + self.0.len());
        name.push_str(prefix);
        name.push('.');
        name.push_str(&self.0);
        Fqdn(name)
    }

    /// The name relative to `zone` (`@` for the apex), for zone files.
    pub fn relative_to(&self, zone: &Fqdn) -> Option<&str> {
        if self == zone {
            Some("@")
        } else if self.is_within(zone) {
            Some(&self.0[..self.0.len() - zone.0.len() - 1])
        } else {
            None
        }
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps and sets of names can be searched with a `&str` (no name built for the search): a
/// name compares and hashes exactly as its text does.
impl std::borrow::Borrow<str> for Fqdn {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Fqdn {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Fqdn::parse(&value)
    }
}

impl From<Fqdn> for String {
    fn from(value: Fqdn) -> Self {
        value.0
    }
}

/// The record types this tool reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "SRV")]
    Srv,
    #[serde(rename = "CNAME")]
    Cname,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Srv => "SRV",
            RecordType::Cname => "CNAME",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "A" => Ok(RecordType::A),
            "AAAA" => Ok(RecordType::Aaaa),
            "SRV" => Ok(RecordType::Srv),
            "CNAME" => Ok(RecordType::Cname),
            other => Err(format!(
                "record type `{other}` is not one this tool manages"
            )),
        }
    }
}

/// SRV data (RFC 2782). Field order gives the order remote servers try targets in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: Fqdn,
}

/// One record's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv(Srv),
    Cname(Fqdn),
}

impl Rdata {
    pub fn record_type(&self) -> RecordType {
        match self {
            Rdata::A(_) => RecordType::A,
            Rdata::Aaaa(_) => RecordType::Aaaa,
            Rdata::Srv(_) => RecordType::Srv,
            Rdata::Cname(_) => RecordType::Cname,
        }
    }

    /// Parses presentation format (`10 0 5269 edge1.contoso.com.`, `192.0.2.1`).
    pub fn parse(rtype: RecordType, text: &str) -> Result<Self, String> {
        let text = text.trim();
        match rtype {
            RecordType::A => text
                .parse()
                .map(Rdata::A)
                .map_err(|_| format!("`{text}` is not an IPv4 address")),
            RecordType::Aaaa => text
                .parse()
                .map(Rdata::Aaaa)
                .map_err(|_| format!("`{text}` is not an IPv6 address")),
            RecordType::Cname => Ok(Rdata::Cname(Fqdn::from_absolute(text))),
            RecordType::Srv => {
                let fields: Vec<&str> = text.split_whitespace().collect();
                let [priority, weight, port, target] = fields[..] else {
                    return Err(format!(
                        "`{text}` is not SRV data (priority weight port target)"
                    ));
                };
                let number = |field: &str, what: &str| {
                    field.parse::<u16>().map_err(|_| {
                        format!("SRV {what} `{field}` is not a number from 0 to 65535")
                    })
                };
                Ok(Rdata::Srv(Srv {
                    priority: number(priority, "priority")?,
                    weight: number(weight, "weight")?,
                    port: number(port, "port")?,
                    target: Fqdn::from_absolute(target),
                }))
            }
        }
    }
}

impl fmt::Display for Rdata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rdata::A(ip) => write!(f, "{ip}"),
            Rdata::Aaaa(ip) => write!(f, "{ip}"),
            Rdata::Srv(srv) => write!(
                f,
                "{} {} {} {}",
                srv.priority, srv.weight, srv.port, srv.target
            ),
            Rdata::Cname(name) => write!(f, "{name}"),
        }
    }
}

/// Identifies an RRset: owner name and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RrKey {
    pub name: Fqdn,
    #[serde(rename = "type")]
    pub rtype: RecordType,
}

impl RrKey {
    pub fn new(name: Fqdn, rtype: RecordType) -> Self {
        RrKey { name, rtype }
    }
}

impl fmt::Display for RrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
    }
}

/// All records of one name and type, with their TTL. Records are kept sorted and free of
/// duplicates so that two RRsets compare equal exactly when DNS would consider them equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "RecordSetJson", try_from = "RecordSetJson")]
pub struct RecordSet {
    pub name: Fqdn,
    pub rtype: RecordType,
    pub ttl: u32,
    records: Vec<Rdata>,
}

impl RecordSet {
    /// Builds an RRset; records of another type than `rtype` are a programming error upstream
    /// and are reported rather than silently dropped.
    pub fn new(
        name: Fqdn,
        rtype: RecordType,
        ttl: u32,
        mut records: Vec<Rdata>,
    ) -> Result<Self, String> {
        if let Some(bad) = records.iter().find(|r| r.record_type() != rtype) {
            return Err(format!(
                "{name} {rtype}: record `{bad}` is of type {}",
                bad.record_type()
            ));
        }
        records.sort();
        records.dedup();
        Ok(RecordSet {
            name,
            rtype,
            ttl,
            records,
        })
    }

    pub fn key(&self) -> RrKey {
        RrKey::new(self.name.clone(), self.rtype)
    }

    pub fn records(&self) -> &[Rdata] {
        &self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The SRV data of this set, in priority order.
    pub fn srv_records(&self) -> impl Iterator<Item = &Srv> {
        self.records.iter().filter_map(|r| match r {
            Rdata::Srv(srv) => Some(srv),
            _ => None,
        })
    }
}

impl PartialOrd for RecordSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RecordSet {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.name, self.rtype, self.ttl, &self.records).cmp(&(
            &other.name,
            other.rtype,
            other.ttl,
            &other.records,
        ))
    }
}

/// The stable JSON shape of an RRset: records in presentation format.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordSetJson {
    name: Fqdn,
    #[serde(rename = "type")]
    rtype: RecordType,
    ttl: u32,
    records: Vec<String>,
}

impl From<RecordSet> for RecordSetJson {
    fn from(set: RecordSet) -> Self {
        RecordSetJson {
            records: set.records.iter().map(ToString::to_string).collect(),
            name: set.name,
            rtype: set.rtype,
            ttl: set.ttl,
        }
    }
}

impl TryFrom<RecordSetJson> for RecordSet {
    type Error = String;
    fn try_from(json: RecordSetJson) -> Result<Self, Self::Error> {
        let records = json
            .records
            .iter()
            .map(|text| Rdata::parse(json.rtype, text))
            .collect::<Result<Vec<_>, _>>()?;
        RecordSet::new(json.name, json.rtype, json.ttl, records)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn u_labels_become_a_labels() {
        let name = Fqdn::parse("Bücher.Example").unwrap();
        assert_eq!(name.as_str(), "xn--bcher-kva.example.");
        assert_eq!(Fqdn::parse("xn--bcher-kva.example.").unwrap(), name);
        let err = Fqdn::parse("\u{0300}ab.example").unwrap_err().to_string();
        assert!(
            err.contains("not a valid internationalised domain name"),
            "{err}"
        );
        assert!(err.contains("A-label"), "{err}");
    }

    use super::*;

    #[test]
    fn names_are_normalised_and_validated() {
        assert_eq!(Fqdn::parse("Contoso.COM").unwrap().as_str(), "contoso.com.");
        assert_eq!(
            Fqdn::parse("contoso.com.").unwrap().as_str(),
            "contoso.com."
        );
        assert!(matches!(Fqdn::parse("edge1"), Err(NameError::Relative(_))));
        assert!(matches!(
            Fqdn::parse("192.0.2.1"),
            Err(NameError::IpLiteral(_))
        ));
        assert!(matches!(
            Fqdn::parse("a..b"),
            Err(NameError::EmptyLabel { .. })
        ));
        assert!(matches!(
            Fqdn::parse("bad name.com"),
            Err(NameError::BadCharacter { .. })
        ));
        assert!(matches!(
            Fqdn::parse("-a.com"),
            Err(NameError::Hyphen { .. })
        ));
        assert!(matches!(
            Fqdn::parse(&format!("{}.com", "a".repeat(64))),
            Err(NameError::LabelTooLong { .. })
        ));
    }

    #[test]
    fn containment_respects_label_boundaries() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        assert!(Fqdn::parse("contoso.com").unwrap().is_within(&zone));
        assert!(Fqdn::parse("a.contoso.com").unwrap().is_within(&zone));
        assert!(!Fqdn::parse("notcontoso.com").unwrap().is_within(&zone));
        assert_eq!(
            Fqdn::parse("xmpp.contoso.com").unwrap().relative_to(&zone),
            Some("xmpp")
        );
        assert_eq!(zone.relative_to(&zone), Some("@"));
    }

    #[test]
    fn record_sets_ignore_order_and_duplicates() {
        let name = Fqdn::parse("xmpp.contoso.com").unwrap();
        let a = |s: &str| Rdata::A(s.parse().unwrap());
        let one = RecordSet::new(
            name.clone(),
            RecordType::A,
            300,
            vec![a("192.0.2.2"), a("192.0.2.1")],
        )
        .unwrap();
        let two = RecordSet::new(
            name,
            RecordType::A,
            300,
            vec![a("192.0.2.1"), a("192.0.2.2"), a("192.0.2.1")],
        )
        .unwrap();
        assert_eq!(one, two);
        assert!(
            RecordSet::new(one.name.clone(), RecordType::Srv, 1, vec![a("192.0.2.1")]).is_err()
        );
    }

    #[test]
    fn srv_round_trips_through_text_and_json() {
        let srv = Rdata::parse(RecordType::Srv, "10 0 5269 Edge1.Contoso.com.").unwrap();
        assert_eq!(srv.to_string(), "10 0 5269 edge1.contoso.com.");
        assert!(Rdata::parse(RecordType::Srv, "10 0 70000 x.com.").is_err());
        let set = RecordSet::new(
            Fqdn::parse("_xmpp-server._tcp.contoso.com").unwrap(),
            RecordType::Srv,
            3600,
            vec![srv],
        )
        .unwrap();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(
            json,
            r#"{"name":"_xmpp-server._tcp.contoso.com.","type":"SRV","ttl":3600,"records":["10 0 5269 edge1.contoso.com."]}"#
        );
        assert_eq!(serde_json::from_str::<RecordSet>(&json).unwrap(), set);
    }
}
