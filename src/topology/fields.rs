//! The field names the topology JSON may hold, section by section, so that unknown fields are
//! reported as problems of the topology (with their JSON path and a "did you mean" hint)
//! together with the validation problems, instead of stopping the parse at the first one.
//!
//! The names are asked of serde for `raw`'s structs, so a field added there is known here at
//! once; `raw` keeps `deny_unknown_fields` as the safety net.

use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::{Map, Value};

use super::raw::{
    RawAzure, RawFederation, RawPool, RawPowerdns, RawRfc2136, RawRoute53, RawSrv, RawTls,
    RawTopology, RawXmpps, RawZonefile,
};
use super::Problem;

/// The field names serde accepts for the struct `T`, asked of serde itself (its derive hands
/// them to `deserialize_struct`), so this list can never drift from `raw`'s structs.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The capture always ends in an error: only the recorded names matter.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that records the field names a struct asks for, and refuses everything.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs have field names"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A provider kind's fields: its struct's, plus the `kind` tag that chose it.
fn provider_fields<T: DeserializeOwned>() -> Vec<&'static str> {
    std::iter::once("kind")
        .chain(fields_of::<T>().iter().copied())
        .collect()
}

/// Removes every unknown field from `document` and returns one problem per field, section by
/// section (fields of one object in name order). Sections of the wrong JSON type are left for serde to report.
pub(super) fn take_unknown(document: &mut Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(top) = document.as_object_mut() else {
        return problems;
    };
    strip(top, "", fields_of::<RawTopology>(), &mut problems);
    if let Some(pools) = top.get_mut("pools").and_then(Value::as_array_mut) {
        for (i, pool) in pools.iter_mut().enumerate() {
            if let Some(pool) = pool.as_object_mut() {
                strip(
                    pool,
                    &format!("pools[{i}]."),
                    fields_of::<RawPool>(),
                    &mut problems,
                );
            }
        }
    }
    let sections = [
        ("federation", fields_of::<RawFederation>()),
        ("srv", fields_of::<RawSrv>()),
        ("xmpps", fields_of::<RawXmpps>()),
        ("tls", fields_of::<RawTls>()),
    ];
    for (section, known) in sections {
        if let Some(object) = top.get_mut(section).and_then(Value::as_object_mut) {
            strip(object, &format!("{section}."), known, &mut problems);
        }
    }
    if let Some(provider) = top.get_mut("provider").and_then(Value::as_object_mut) {
        // An unknown or missing `kind` is serde's to report (it lists the kinds).
        let known = match provider.get("kind").and_then(Value::as_str) {
            Some("zonefile") => Some(provider_fields::<RawZonefile>()),
            Some("rfc2136") => Some(provider_fields::<RawRfc2136>()),
            Some("powerdns") => Some(provider_fields::<RawPowerdns>()),
            Some("azure") => Some(provider_fields::<RawAzure>()),
            Some("route53") => Some(provider_fields::<RawRoute53>()),
            _ => None,
        };
        if let Some(known) = known {
            strip(provider, "provider.", &known, &mut problems);
        }
    }
    problems
}

fn strip(object: &mut Map<String, Value>, prefix: &str, known: &[&str], out: &mut Vec<Problem>) {
    let unknown: Vec<String> = object
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    for field in unknown {
        object.remove(&field);
        let hint = match closest(&field, known) {
            Some(near) => format!(" (did you mean `{near}`?)"),
            None => format!("; the fields here are: {}", known.join(", ")),
        };
        out.push(Problem {
            at: format!("{prefix}{field}"),
            message: format!("unknown field `{field}`{hint}"),
        });
    }
}

/// The known field nearest to a misspelt `field`: within two edits, or one that starts with
/// it (`api_key` for `api_key_env`), else none.
fn closest<'a>(field: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = field.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= 2 || (lower.len() >= 3 && k.starts_with(&lower)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn distance_and_suggestions() {
        assert_eq!(edit_distance("activ_pool", "active_pool"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let topology = fields_of::<RawTopology>();
        assert_eq!(closest("activ_pool", topology), Some("active_pool"));
        assert_eq!(
            closest("api_key", fields_of::<RawPowerdns>()),
            Some("api_key_env")
        );
        assert_eq!(closest("Zones", topology), Some("zones"));
        assert_eq!(closest("colour", topology), None);
    }

    #[test]
    fn field_names_come_from_serde_for_every_section() {
        // Fields added to `raw` after this list was written by hand (tls, sip_tls_port, the
        // cloud providers') were reported as unknown: the names now come from serde.
        assert!(fields_of::<RawTopology>().contains(&"tls"));
        assert!(fields_of::<RawPool>().contains(&"sip_tls_port"));
        assert!(fields_of::<RawTls>().contains(&"ca_file"));
        assert!(provider_fields::<RawRoute53>().contains(&"hosted_zone_ids"));
        assert!(provider_fields::<RawAzure>().contains(&"subscription_id"));
        let mut v = json!({
            "tls": {"ca_file": "ca.pem"},
            "pools": [{"name": "a", "sip_tls_port": 5061}],
            "provider": {"kind": "azure", "subscription_id": "s", "resource_group": "r"}
        });
        assert!(take_unknown(&mut v).is_empty());
    }

    #[test]
    fn unknown_fields_are_taken_out_with_their_paths() {
        let mut v = json!({
            "zones": [], "activ_pool": "x",
            "pools": [{"name": "a"}, {"name": "b", "prefrence": 1}],
            "srv": {"wieght": 1}, "federation": 3,
            "provider": {"kind": "rfc2136", "keyfile": "k"}
        });
        let found: Vec<String> = take_unknown(&mut v).iter().map(|p| p.to_string()).collect();
        assert_eq!(
            found,
            [
                "activ_pool: unknown field `activ_pool` (did you mean `active_pool`?)",
                "pools[1].prefrence: unknown field `prefrence` (did you mean `preference`?)",
                "srv.wieght: unknown field `wieght` (did you mean `weight`?)",
                "provider.keyfile: unknown field `keyfile` (did you mean `key_file`?)",
            ]
        );
        assert!(v.get("activ_pool").is_none() && v["pools"][1].get("prefrence").is_none());
    }
}
