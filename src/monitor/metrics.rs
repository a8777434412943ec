//! The Prometheus text exposition (format 0.0.4) of one monitor cycle: pure, from the audit
//! report and the topology. Only names, addresses, rule numbers and numbers are exported, never
//! a finding's text or anything from the provider settings, so no secret can reach a scrape.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::audit::rules::Subject;
use crate::audit::Report;
use crate::records::Fqdn;
use crate::topology::Topology;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a cycle produced, for the exposition.
pub struct CycleOutcome<'a> {
    /// `None` when the cycle could not run (`xmppdns_up` 0).
    pub report: Option<&'a Report>,
    pub topology: Option<&'a Topology>,
    /// Unix seconds at the end of the cycle.
    pub finished_at: f64,
    pub duration_seconds: f64,
}

/// One metric family: its samples are `(labels, value)`.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        for (labels, value) in &self.samples {
            out.push_str(self.name);
            if !labels.is_empty() {
                let inner: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", inner.join(","));
            }
            let _ = writeln!(out, " {}", number(*value));
        }
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The pool whose SRV target is `target`, else the target's name.
fn pool_of(topology: Option<&Topology>, target: &Fqdn) -> String {
    topology
        .and_then(|t| t.pools.iter().find(|p| &p.fqdn == target))
        .map_or_else(|| target.bare().to_string(), |p| p.name.clone())
}

/// The whole exposition of a cycle.
pub fn render(outcome: &CycleOutcome<'_>) -> String {
    let mut up = Family::new(
        "xmppdns_up",
        "1 when the last audit cycle ran, 0 when it failed.",
    );
    up.add(vec![], bool_value(outcome.report.is_some()));
    let mut last = Family::new(
        "xmppdns_last_cycle_timestamp_seconds",
        "When the last cycle ended (Unix time).",
    );
    last.add(vec![], outcome.finished_at);
    let mut duration = Family::new(
        "xmppdns_cycle_duration_seconds",
        "How long the last cycle took.",
    );
    duration.add(vec![], outcome.duration_seconds);
    let mut families = vec![up, last, duration];
    if let Some(report) = outcome.report {
        families.extend(audit_families(report, outcome.topology));
        families.extend(probe_families(report, outcome.topology));
        families.extend(tls_families(report, outcome.topology));
    }
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        family.write(&mut out);
    }
    out
}

/// Findings, domains, leading and federation pools, serials.
fn audit_families(report: &Report, topology: Option<&Topology>) -> Vec<Family> {
    let mut findings = Family::new(
        "xmppdns_audit_findings",
        "Audit findings of the last cycle, by severity and rule.",
    );
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for f in report.findings() {
        *counts
            .entry((f.severity.as_str(), f.rule.as_str()))
            .or_default() += 1;
    }
    for ((severity, rule), n) in counts {
        let labels = vec![
            ("severity", severity.to_string()),
            ("rule", rule.to_string()),
        ];
        findings.add(labels, n as f64);
    }
    let mut domain_ok = Family::new(
        "xmppdns_domain_ok",
        "1 when a SIP domain has no error-level finding.",
    );
    let mut leading = Family::new(
        "xmppdns_leading_pool",
        "1 for the pool whose SRV record leads a SIP domain, 0 for the other pools.",
    );
    let mut federation = Family::new(
        "xmppdns_federation_pool_info",
        "1 for each pool the federation A/AAAA record points to.",
    );
    let mut serial = Family::new(
        "xmppdns_soa_serial",
        "The SOA serial each authoritative server serves for a zone.",
    );
    let pools: Vec<&str> = topology.map_or_else(Vec::new, |t| {
        t.pools.iter().map(|p| p.name.as_str()).collect()
    });
    for name in &report.names {
        let label = name.name.bare().to_string();
        match name.kind {
            Subject::SipDomain => {
                let ok = !name
                    .findings
                    .iter()
                    .any(|f| f.severity == crate::audit::Severity::Error);
                domain_ok.add(vec![("domain", label.clone())], bool_value(ok));
                for pool in &pools {
                    let leads = name.leading_pool.as_deref() == Some(*pool);
                    let labels = vec![("domain", label.clone()), ("pool", pool.to_string())];
                    leading.add(labels, bool_value(leads));
                }
            }
            Subject::Federation => {
                let mut named: Vec<&str> = name
                    .addresses
                    .iter()
                    .flatten()
                    .filter_map(|a| a.pool.as_deref())
                    .collect();
                named.sort_unstable();
                named.dedup();
                for pool in named {
                    federation.add(vec![("pool", pool.to_string())], 1.0);
                }
            }
            Subject::Zone => {
                for (server, value) in name.serials.iter().flatten() {
                    if let Some(value) = value {
                        let labels = vec![("zone", label.clone()), ("server", server.clone())];
                        serial.add(labels, f64::from(*value));
                    }
                }
            }
        }
    }
    vec![findings, domain_ok, leading, federation, serial]
}

/// Port 5269 probes: success and the connect/stream phases.
fn probe_families(report: &Report, topology: Option<&Topology>) -> Vec<Family> {
    let mut success = Family::new(
        "xmppdns_probe_success",
        "1 when the address answered as a ready XMPP server on its SRV port.",
    );
    let mut phases = Family::new(
        "xmppdns_probe_duration_seconds",
        "Time of each phase of the last probe of an address: connect, stream, tls.",
    );
    for probe in report.probes.iter().flatten() {
        let pool = pool_of(topology, &probe.target);
        let address = probe.result.address.to_string();
        let labels = || vec![("pool", pool.clone()), ("address", address.clone())];
        success.add(labels(), bool_value(probe.result.is_ready()));
        if let Some(connect) = probe.result.connect_ms {
            let mut l = labels();
            l.push(("phase", "connect".to_string()));
            phases.add(l, connect as f64 / 1000.0);
            let mut l = labels();
            l.push(("phase", "stream".to_string()));
            let stream = probe.result.total_ms.saturating_sub(connect);
            phases.add(l, stream as f64 / 1000.0);
        }
        let tls_ms = report
            .tls
            .iter()
            .flatten()
            .filter(|t| t.check.address == probe.result.address)
            .filter_map(|t| t.check.tls_ms)
            .max();
        if let Some(ms) = tls_ms {
            let mut l = labels();
            l.push(("phase", "tls".to_string()));
            phases.add(l, ms as f64 / 1000.0);
        }
    }
    vec![success, phases]
}

/// Certificates: notAfter per address, coverage per domain.
fn tls_families(report: &Report, topology: Option<&Topology>) -> Vec<Family> {
    let mut not_after = Family::new(
        "xmppdns_tls_cert_not_after_seconds",
        "notAfter of the certificate an address presents (Unix time; the earliest if several).",
    );
    let mut covers = Family::new(
        "xmppdns_tls_cert_covers_domain",
        "1 when the certificate an address presents for a SIP domain covers it (RFC 6125).",
    );
    let mut earliest: BTreeMap<(String, String), i64> = BTreeMap::new();
    for checked in report.tls.iter().flatten() {
        let Some(facts) = &checked.check.certificate else {
            continue;
        };
        let pool = pool_of(topology, &checked.target);
        let address = checked.check.address.to_string();
        let entry = earliest
            .entry((pool.clone(), address.clone()))
            .or_insert(facts.not_after);
        *entry = (*entry).min(facts.not_after);
        let labels = vec![
            ("pool", pool),
            ("address", address),
            ("domain", checked.check.domain.clone()),
        ];
        covers.add(labels, bool_value(checked.check.covers_domain));
    }
    for ((pool, address), at) in earliest {
        not_after.add(vec![("pool", pool), ("address", address)], at as f64);
    }
    vec![not_after, covers]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_integers_printed_plainly() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }

    #[test]
    fn a_failed_cycle_exports_up_0_and_the_cycle_metrics_only() {
        let text = render(&CycleOutcome {
            report: None,
            topology: None,
            finished_at: 1_700_000_000.5,
            duration_seconds: 0.25,
        });
        assert!(text.contains("\nxmppdns_up 0\n"), "{text}");
        assert!(text.contains("xmppdns_last_cycle_timestamp_seconds 1700000000.5"));
        assert!(!text.contains("xmppdns_probe_success"));
    }
}
