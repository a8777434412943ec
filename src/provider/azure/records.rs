//! Azure's record-set JSON (api-version 2018-05-01) both ways, and its error bodies
//! (`{"error": {"code", "message"}}`, as in the spec's examples).

use serde_json::{json, Value};

use crate::records::{Fqdn, Rdata, RecordSet, RecordType, RrKey, Srv};

/// A record set as read: its ETag, what it holds, and its metadata (kept on rewrite).
#[derive(Debug, Clone)]
pub struct Read {
    pub key: RrKey,
    pub etag: String,
    pub ttl: u32,
    pub records: Vec<Rdata>,
    pub metadata: Option<Value>,
    /// Why the tool will not rewrite it (an alias record set).
    pub unmanageable: Option<String>,
}

impl Read {
    /// What DNS serves; `Ok(None)` for a record set with no records of the type.
    pub fn set(&self) -> Result<Option<RecordSet>, String> {
        if let Some(why) = &self.unmanageable {
            return Err(why.clone());
        }
        if self.records.is_empty() {
            return Ok(None);
        }
        RecordSet::new(
            self.key.name.clone(),
            self.key.rtype,
            self.ttl,
            self.records.clone(),
        )
        .map(Some)
        .map_err(|e| e.to_string())
    }
}

/// Parses a GET's body; the ETag is the body's `etag`, else the header's.
pub fn parse(key: &RrKey, body: &str, header_etag: Option<&str>) -> Result<Read, String> {
    let json: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let properties = json.get("properties").ok_or("no `properties`")?;
    let etag = json["etag"]
        .as_str()
        .or(header_etag)
        .ok_or("no `etag`")?
        .to_string();
    let ttl = properties["TTL"].as_u64().unwrap_or(0) as u32;
    let field = |name: &str| properties[name].as_array().cloned().unwrap_or_default();
    let text = |v: &Value, name: &str| v[name].as_str().unwrap_or_default().to_string();
    let records = match key.rtype {
        RecordType::A => field("ARecords")
            .iter()
            .map(|r| Rdata::parse(RecordType::A, &text(r, "ipv4Address")))
            .collect::<Result<Vec<_>, _>>()?,
        RecordType::Aaaa => field("AAAARecords")
            .iter()
            .map(|r| Rdata::parse(RecordType::Aaaa, &text(r, "ipv6Address")))
            .collect::<Result<Vec<_>, _>>()?,
        RecordType::Srv => field("SRVRecords")
            .iter()
            .map(srv)
            .collect::<Result<Vec<_>, _>>()?,
        RecordType::Cname => properties["CNAMERecord"]["cname"]
            .as_str()
            .map(|c| vec![Rdata::Cname(Fqdn::from_absolute(c))])
            .unwrap_or_default(),
    };
    let unmanageable = properties["targetResource"]["id"]
        .as_str()
        .map(|id| format!("it is an alias record set (target resource {id})"));
    Ok(Read {
        key: key.clone(),
        etag,
        ttl,
        records,
        metadata: properties.get("metadata").filter(|m| !m.is_null()).cloned(),
        unmanageable,
    })
}

fn srv(record: &Value) -> Result<Rdata, String> {
    let number = |name: &str| {
        record[name]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("SRV `{name}` is missing or out of range"))
    };
    Ok(Rdata::Srv(Srv {
        priority: number("priority")?,
        weight: number("weight")?,
        port: number("port")?,
        target: Fqdn::from_absolute(record["target"].as_str().unwrap_or_default()),
    }))
}

/// The PUT body for `set`, with the metadata read kept.
pub fn put_body(set: &RecordSet, metadata: Option<&Value>) -> Value {
    let records: Vec<Value> = set
        .records()
        .iter()
        .map(|r| match r {
            Rdata::A(ip) => json!({ "ipv4Address": ip.to_string() }),
            Rdata::Aaaa(ip) => json!({ "ipv6Address": ip.to_string() }),
            Rdata::Srv(s) => json!({
                "priority": s.priority, "weight": s.weight, "port": s.port,
                "target": s.target.as_str(),
            }),
            Rdata::Cname(c) => json!({ "cname": c.as_str() }),
        })
        .collect();
    let mut properties = json!({ "TTL": set.ttl });
    match set.rtype {
        RecordType::A => properties["ARecords"] = Value::from(records),
        RecordType::Aaaa => properties["AAAARecords"] = Value::from(records),
        RecordType::Srv => properties["SRVRecords"] = Value::from(records),
        RecordType::Cname => {
            properties["CNAMERecord"] = records.into_iter().next().unwrap_or(Value::Null)
        }
    }
    if let Some(metadata) = metadata {
        properties["metadata"] = metadata.clone();
    }
    json!({ "properties": properties })
}

/// `error.code` of an error body (empty when there is none).
pub fn error_code(body: &str) -> String {
    error_text(body).0
}

/// `error.code` and `error.message` of an error body, else the body itself (shortened).
pub fn error_text(body: &str) -> (String, String) {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = &json["error"];
    match (error["code"].as_str(), error["message"].as_str()) {
        (Some(code), message) => (code.to_string(), message.unwrap_or_default().to_string()),
        _ => (String::new(), body.trim().chars().take(500).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, rtype: RecordType) -> RrKey {
        RrKey::new(Fqdn::parse(name).unwrap(), rtype)
    }

    #[test]
    fn a_record_set_reads_and_writes_back_with_its_metadata() {
        let body = r#"{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnsZones/contoso.com/SRV/_xmpp-server._tcp",
            "name": "_xmpp-server._tcp", "type": "Microsoft.Network/dnsZones/SRV", "etag": "00000000-0000-0000-0000-000000000001",
            "properties": {"metadata": {"owner": "uc-team"}, "TTL": 3600, "fqdn": "_xmpp-server._tcp.contoso.com.",
              "SRVRecords": [{"priority": 10, "weight": 0, "port": 5269, "target": "edgepool1.contoso.com"}]}}"#;
        let k = key("_xmpp-server._tcp.contoso.com", RecordType::Srv);
        let read = parse(&k, body, None).unwrap();
        assert_eq!(read.etag, "00000000-0000-0000-0000-000000000001");
        let set = read.set().unwrap().unwrap();
        assert_eq!(
            set.records()[0].to_string(),
            "10 0 5269 edgepool1.contoso.com."
        );
        let put = put_body(&set, read.metadata.as_ref());
        assert_eq!(put["properties"]["metadata"]["owner"], "uc-team");
        assert_eq!(put["properties"]["SRVRecords"][0]["port"], 5269);
        assert_eq!(put["properties"]["TTL"], 3600);
    }

    #[test]
    fn alias_sets_are_unmanageable_and_errors_read_as_the_spec_shows() {
        let body = r#"{"etag": "e", "properties": {"TTL": 60, "targetResource": {"id": "/subscriptions/s/x"}, "ARecords": []}}"#;
        let read = parse(&key("xmpp.contoso.com", RecordType::A), body, None).unwrap();
        assert!(read.set().unwrap_err().contains("alias"));
        let error = r#"{"error": {"code": "PreconditionFailed", "message": "The Record set xmpp of type A cannot be updated because the ETag does not match."}}"#;
        assert_eq!(error_text(error).0, "PreconditionFailed");
        assert_eq!(error_text("Bad Gateway").1, "Bad Gateway");
    }
}
