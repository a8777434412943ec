//! The little XML Route 53 speaks here: the change batch sent, and the few answers read
//! (record sets, change status, hosted zones, errors). The documents are flat and generated
//! by AWS, so a small extractor does; no XML crate for it.

#[cfg(test)]
use crate::records::RecordType;
use crate::records::{Fqdn, Rdata, RecordSet, RrKey};

/// One RRset as Route 53 holds it: its values exactly as Route 53 wrote them, so that a
/// `DELETE` can repeat them exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSet {
    pub key: RrKey,
    pub ttl: u32,
    pub values: Vec<String>,
    /// Set for weighted, latency, failover... records and alias records, which this tool does
    /// not manage: why.
    pub unmanageable: Option<String>,
}

impl RawSet {
    /// The values parsed.
    pub fn parsed(&self) -> Result<RecordSet, String> {
        let records = self
            .values
            .iter()
            .map(|v| Rdata::parse(self.key.rtype, v).map_err(|e| format!("{}: {e}", self.key)))
            .collect::<Result<Vec<_>, _>>()?;
        RecordSet::new(self.key.name.clone(), self.key.rtype, self.ttl, records)
            .map_err(|e| format!("{}: {e}", self.key))
    }

    /// As the plan's record set says it.
    pub fn from_set(set: &RecordSet) -> RawSet {
        RawSet {
            key: set.key(),
            ttl: set.ttl,
            values: set.records().iter().map(ToString::to_string).collect(),
            unmanageable: None,
        }
    }
}

/// `CREATE` or `DELETE` of one RRset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Delete,
}

/// The ChangeResourceRecordSets request for `changes`, in order.
pub fn change_batch(changes: &[(Verb, &RawSet)], comment: &str) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeBatch>",
    );
    out.push_str(&format!("<Comment>{}</Comment><Changes>", escape(comment)));
    for (verb, set) in changes {
        let action = match verb {
            Verb::Create => "CREATE",
            Verb::Delete => "DELETE",
        };
        out.push_str(&format!(
            "<Change><Action>{action}</Action><ResourceRecordSet><Name>{}</Name><Type>{}</Type><TTL>{}</TTL><ResourceRecords>",
            escape(set.key.name.as_str()),
            set.key.rtype,
            set.ttl
        ));
        for value in &set.values {
            out.push_str(&format!(
                "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                escape(value)
            ));
        }
        out.push_str("</ResourceRecords></ResourceRecordSet></Change>");
    }
    out.push_str("</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>");
    out
}

/// The first RRset of a ListResourceRecordSets answer when it is `key` (the list starts at
/// the name and type asked for, and goes on past them when they are absent).
pub fn rrset_at(body: &str, key: &RrKey) -> Result<Option<RawSet>, String> {
    let Some(first) = elements(body, "ResourceRecordSet").into_iter().next() else {
        if body.contains("ResourceRecordSets") {
            return Ok(None);
        }
        return Err("the answer is not a ListResourceRecordSets response".into());
    };
    let name = text(first, "Name").ok_or("a record set without a Name")?;
    let rtype = text(first, "Type").ok_or("a record set without a Type")?;
    if Fqdn::from_absolute(&unescape_name(&name)) != key.name
        || !rtype.eq_ignore_ascii_case(key.rtype.as_str())
    {
        return Ok(None);
    }
    let unmanageable = if first.contains("<AliasTarget>") {
        Some("it is an alias record".to_string())
    } else {
        text(first, "SetIdentifier").map(|id| {
            format!("it has a routing policy (SetIdentifier `{id}`: weighted, latency, failover, geolocation...)")
        })
    };
    let ttl = match text(first, "TTL") {
        Some(ttl) => ttl
            .parse()
            .map_err(|_| format!("{key}: TTL `{ttl}` is not a number"))?,
        None => 0,
    };
    Ok(Some(RawSet {
        key: key.clone(),
        ttl,
        values: elements(first, "Value").into_iter().map(decode).collect(),
        unmanageable,
    }))
}

/// The change's id (without `/change/`) and status from a ChangeInfo.
pub fn change_info(body: &str) -> Option<(String, String)> {
    let info = elements(body, "ChangeInfo").into_iter().next()?;
    let id = text(info, "Id")?;
    let id = id.trim_start_matches("/change/").to_string();
    Some((id, text(info, "Status")?))
}

/// A public hosted zone from a ListHostedZonesByName answer: `(id, name)` of each.
pub fn public_hosted_zones(body: &str) -> Vec<(String, String)> {
    elements(body, "HostedZone")
        .into_iter()
        .filter(|zone| text(zone, "PrivateZone").as_deref() != Some("true"))
        .filter_map(|zone| {
            let id = text(zone, "Id")?;
            Some((
                id.trim_start_matches("/hostedzone/").to_string(),
                text(zone, "Name")?,
            ))
        })
        .collect()
}

/// An error answer's code and messages: `<ErrorResponse><Error><Code>` or, for a refused
/// batch, `<InvalidChangeBatch><Messages><Message>`.
pub fn error(body: &str) -> (String, Vec<String>) {
    let code = text(body, "Code").unwrap_or_else(|| {
        if body.contains("<InvalidChangeBatch") {
            "InvalidChangeBatch".into()
        } else {
            String::new()
        }
    });
    let messages = elements(body, "Message").into_iter().map(decode).collect();
    (code, messages)
}

/// The contents of each `<tag>...</tag>` (not nested in themselves), in order.
fn elements<'a>(body: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

fn text(body: &str, tag: &str) -> Option<String> {
    elements(body, tag).into_iter().next().map(decode)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn decode(text: &str) -> String {
    text.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Route 53 writes characters outside `a-z0-9-_.` in names as `\NNN` (octal).
fn unescape_name(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, rtype: RecordType) -> RrKey {
        RrKey::new(Fqdn::parse(name).unwrap(), rtype)
    }

    #[test]
    fn a_listed_rrset_is_kept_only_when_it_is_the_key_asked_for() {
        let body = r#"<?xml version="1.0"?><ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets><ResourceRecordSet><Name>_xmpp-server._tcp.contoso.com.</Name><Type>SRV</Type><TTL>3600</TTL><ResourceRecords><ResourceRecord><Value>10 0 5269 edgepool1.contoso.com.</Value></ResourceRecord><ResourceRecord><Value>20 0 5269 edgepool2.contoso.com</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>"#;
        let srv = key("_xmpp-server._tcp.contoso.com", RecordType::Srv);
        let set = rrset_at(body, &srv).unwrap().unwrap();
        assert_eq!(set.ttl, 3600);
        assert_eq!(set.values[1], "20 0 5269 edgepool2.contoso.com");
        assert_eq!(set.parsed().unwrap().records().len(), 2);
        assert_eq!(
            rrset_at(body, &key("xmpp.contoso.com", RecordType::A)).unwrap(),
            None
        );
        let empty = "<ListResourceRecordSetsResponse><ResourceRecordSets/></ListResourceRecordSetsResponse>";
        assert_eq!(rrset_at(empty, &srv).unwrap(), None);
        assert!(rrset_at("<html>proxy</html>", &srv).is_err());
    }

    #[test]
    fn alias_and_routing_policy_sets_are_marked_unmanageable() {
        let body = "<ResourceRecordSets><ResourceRecordSet><Name>xmpp.contoso.com.</Name><Type>A</Type><SetIdentifier>east</SetIdentifier><Weight>1</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></ResourceRecordSets>";
        let set = rrset_at(body, &key("xmpp.contoso.com", RecordType::A))
            .unwrap()
            .unwrap();
        assert!(set.unmanageable.unwrap().contains("east"));
    }

    #[test]
    fn the_batch_deletes_exactly_what_was_read_and_creates() {
        let old = RawSet {
            key: key("xmpp.contoso.com", RecordType::A),
            ttl: 300,
            values: vec!["192.0.2.10".into()],
            unmanageable: None,
        };
        let new = RawSet {
            values: vec!["198.51.100.20".into()],
            ..old.clone()
        };
        let body = change_batch(
            &[(Verb::Delete, &old), (Verb::Create, &new)],
            "xmppdns & co",
        );
        assert!(body.contains("<Comment>xmppdns &amp; co</Comment>"));
        assert!(body.contains("<Change><Action>DELETE</Action><ResourceRecordSet><Name>xmpp.contoso.com.</Name><Type>A</Type><TTL>300</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.10</Value>"));
        assert!(body.find("DELETE").unwrap() < body.find("CREATE").unwrap());
    }

    #[test]
    fn errors_change_info_and_zones_are_read() {
        let refused = "<InvalidChangeBatch xmlns=\"x\"><Messages><Message>Tried to create resource record set [name='xmpp.contoso.com.', type='A'] but it already exists</Message></Messages></InvalidChangeBatch>";
        let (code, messages) = error(refused);
        assert_eq!(code, "InvalidChangeBatch");
        assert!(messages[0].contains("already exists"));
        let throttled = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(error(throttled).0, "Throttling");
        let info = "<ChangeResourceRecordSetsResponse><ChangeInfo><Id>/change/C2682N5HXP0BZ4</Id><Status>PENDING</Status></ChangeInfo></ChangeResourceRecordSetsResponse>";
        assert_eq!(
            change_info(info),
            Some(("C2682N5HXP0BZ4".into(), "PENDING".into()))
        );
        let zones = "<HostedZones><HostedZone><Id>/hostedzone/ZPRIV</Id><Name>contoso.com.</Name><Config><PrivateZone>true</PrivateZone></Config></HostedZone><HostedZone><Id>/hostedzone/Z1</Id><Name>contoso.com.</Name><Config><PrivateZone>false</PrivateZone></Config></HostedZone></HostedZones>";
        assert_eq!(
            public_hosted_zones(zones),
            [("Z1".to_string(), "contoso.com.".to_string())]
        );
        assert_eq!(unescape_name("\\052.contoso.com."), "*.contoso.com.");
    }
}
