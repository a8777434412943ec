//! `zones`: the DNS zones the tool may write, each once.

use super::Problems;
use crate::records::Fqdn;

pub(super) fn validate(raw: &[String], problems: &mut Problems) -> Vec<Fqdn> {
    let mut zones = Vec::new();
    if raw.is_empty() {
        problems.add("zones", "no zones: list the DNS zones the tool may write");
    }
    for (i, text) in raw.iter().enumerate() {
        if let Some(zone) = problems.name(format!("zones[{i}]"), text) {
            if zones.contains(&zone) {
                problems.add(
                    format!("zones[{i}]"),
                    format!("zone `{zone}` is listed twice"),
                );
            } else {
                zones.push(zone);
            }
        }
    }
    zones
}
