//! Turns an audit report into text: a table per name for people (names without findings are
//! only counted, so 10,000 healthy domains do not scroll by), the `xmppdns-audit/1` JSON for
//! monitoring. Returns strings; printing is `main`'s job.

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::audit::rules::{NameReport, Severity, Subject};
use crate::audit::Report;
use crate::plan::render::Look;

/// Column widths that keep a finding's table within about 120 columns.
const RECORD_WIDTH: usize = 36;
const FINDING_WIDTH: usize = 64;

/// Wraps at spaces so that lines stay within `width` (a longer word gets a line of its own),
/// instead of one finding making a 300-column table.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut line = 0;
    for word in text.split(' ') {
        let len = word.chars().count();
        if line > 0 && line + 1 + len > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += len;
    }
    out
}

fn paint(text: &str, code: &str, look: Look) -> String {
    if look.colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn severity_cell(severity: Severity, look: Look) -> String {
    match severity {
        Severity::Error => paint("error", "31", look),
        Severity::Warning => paint("warning", "33", look),
        Severity::Info => paint("info", "36", look),
    }
}

fn heading(name: &NameReport) -> String {
    let kind = match name.kind {
        Subject::SipDomain => "SIP domain",
        Subject::Zone => "zone",
        Subject::Federation => "federation record",
    };
    let mut text = format!("{} ({kind}", name.name);
    if let Some(zone) = name.zone.as_ref().filter(|z| **z != name.name) {
        text.push_str(&format!(", zone {zone}"));
    }
    match (&name.leading_target, &name.leading_pool) {
        (Some(t), Some(p)) => text.push_str(&format!(", leading target {t} = {p}")),
        (Some(t), None) => text.push_str(&format!(", leading target {t}")),
        _ => {}
    }
    text.push(')');
    text
}

/// Who leads how many domains, where the federation record points, how the probes went: the
/// facts a table of findings does not show for healthy names.
fn overview(report: &Report) -> String {
    let mut out = String::new();
    let mut leaders: std::collections::BTreeMap<String, usize> = Default::default();
    for name in report.names.iter().filter(|n| n.kind == Subject::SipDomain) {
        let leader = match (&name.leading_pool, &name.leading_target) {
            (Some(pool), Some(target)) => format!("{pool} ({target})"),
            (None, Some(target)) => target.to_string(),
            _ => continue,
        };
        *leaders.entry(leader).or_default() += 1;
    }
    for (leader, count) in &leaders {
        out.push_str(&format!("Leading: {leader} in {count} SIP domain(s).\n"));
    }
    for name in report
        .names
        .iter()
        .filter(|n| n.kind == Subject::Federation)
    {
        let Some(addresses) = &name.addresses else {
            continue;
        };
        let shown: Vec<String> = addresses
            .iter()
            .map(|a| match &a.pool {
                Some(pool) => format!("{} ({pool}, TTL {})", a.address, a.ttl),
                None => format!("{} (TTL {})", a.address, a.ttl),
            })
            .collect();
        let shown = if shown.is_empty() {
            "nothing".to_string()
        } else {
            shown.join(", ")
        };
        out.push_str(&format!("Federation record: {} -> {shown}.\n", name.name));
    }
    if let Some(probes) = &report.probes {
        let xmpp = probes.iter().filter(|p| p.result.is_xmpp()).count();
        out.push_str(&format!(
            "Probes: {} address(es), {xmpp} answered as XMPP.\n",
            probes.len()
        ));
    }
    out
}

/// The report as tables grouped per name, then a summary line.
pub fn table(report: &Report, look: Look) -> String {
    let mut out = String::new();
    let mut clean = 0;
    for name in &report.names {
        if name.findings.is_empty() {
            clean += 1;
            continue;
        }
        out.push_str(&heading(name));
        out.push('\n');
        let mut builder = Builder::default();
        builder.push_record(["Severity", "Rule", "Record", "Finding and fix"]);
        for f in &name.findings {
            builder.push_record([
                severity_cell(f.severity, look),
                f.rule.clone(),
                wrap(&f.record, RECORD_WIDTH),
                format!(
                    "{}\n{}",
                    wrap(&f.message, FINDING_WIDTH),
                    wrap(&format!("fix: {}", f.fix), FINDING_WIDTH)
                ),
            ]);
        }
        let mut table = builder.build();
        table.with(Style::sharp());
        out.push_str(&table.to_string());
        out.push_str("\n\n");
    }
    if clean > 0 {
        out.push_str(&format!("{clean} name(s) without findings.\n"));
    }
    out.push_str(&overview(report));
    let s = report.summary;
    let verdict = if s.errors > 0 {
        paint("FAILED", "31", look)
    } else {
        paint("OK", "32", look)
    };
    out.push_str(&format!(
        "Audit {verdict}: {} SIP domain(s), {} error(s), {} warning(s), {} info.\n",
        s.sip_domains, s.errors, s.warnings, s.info
    ));
    out
}

/// The report as the `xmppdns-audit/1` JSON document (pretty-printed, newline-terminated).
pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("reports serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrapping_keeps_words_whole() {
        assert_eq!(super::wrap("aaa bbb ccc", 7), "aaa bbb\nccc");
        assert_eq!(super::wrap("a verylongword b", 4), "a\nverylongword\nb");
        assert_eq!(super::wrap("", 4), "");
    }
}
