//! The field names the topology JSON may hold, section by section, so that unknown fields are
//! reported as problems of the topology (with their JSON path and a "did you mean" hint)
//! together with the validation problems, instead of stopping the parse at the first one.
//!
//! `raw` keeps `deny_unknown_fields` as a safety net: a field listed here but missing there is
//! refused by serde, and a test loads a topology with every field listed here.

use serde_json::{Map, Value};

use super::Problem;

const TOPOLOGY: &[&str] = &[
    "zones",
    "sip_domains",
    "pools",
    "active_pool",
    "federation",
    "ttl",
    "srv",
    "manage_target_addresses",
    "xmpps",
    "provider",
    "srv_leader",
    "nameservers",
    "rto_seconds",
];
const POOL: &[&str] = &[
    "name",
    "site",
    "fqdn",
    "ipv4",
    "ipv6",
    "servers",
    "preference",
    "placeholder",
];
const FEDERATION: &[&str] = &["name", "ttl"];
const SRV: &[&str] = &["port", "weight", "priority_step"];
const XMPPS: &[&str] = &["publish", "port"];
const ZONEFILE: &[&str] = &["kind", "directory", "files"];
const RFC2136: &[&str] = &[
    "kind",
    "server",
    "key_file",
    "key_env",
    "transfer_server",
    "transfer_key_file",
    "transfer_key_env",
    "timeout_ms",
    "attempts",
    "notify",
];
const POWERDNS: &[&str] = &[
    "kind",
    "api_url",
    "server_id",
    "api_key_env",
    "api_key_file",
    "timeout_ms",
    "notify",
];

/// Removes every unknown field from `document` and returns one problem per field, section by
/// section (fields of one object in name order). Sections of the wrong JSON type are left for serde to report.
pub(super) fn take_unknown(document: &mut Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(top) = document.as_object_mut() else {
        return problems;
    };
    strip(top, "", TOPOLOGY, &mut problems);
    if let Some(pools) = top.get_mut("pools").and_then(Value::as_array_mut) {
        for (i, pool) in pools.iter_mut().enumerate() {
            if let Some(pool) = pool.as_object_mut() {
                strip(pool, &format!("pools[{i}]."), POOL, &mut problems);
            }
        }
    }
    for (section, known) in [("federation", FEDERATION), ("srv", SRV), ("xmpps", XMPPS)] {
        if let Some(object) = top.get_mut(section).and_then(Value::as_object_mut) {
            strip(object, &format!("{section}."), known, &mut problems);
        }
    }
    if let Some(provider) = top.get_mut("provider").and_then(Value::as_object_mut) {
        // An unknown or missing `kind` is serde's to report (it lists the kinds).
        let known = match provider.get("kind").and_then(Value::as_str) {
            Some("zonefile") => Some(ZONEFILE),
            Some("rfc2136") => Some(RFC2136),
            Some("powerdns") => Some(POWERDNS),
            _ => None,
        };
        if let Some(known) = known {
            strip(provider, "provider.", known, &mut problems);
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
        assert_eq!(closest("activ_pool", TOPOLOGY), Some("active_pool"));
        assert_eq!(closest("api_key", POWERDNS), Some("api_key_env"));
        assert_eq!(closest("Zones", TOPOLOGY), Some("zones"));
        assert_eq!(closest("colour", TOPOLOGY), None);
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
