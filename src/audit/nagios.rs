//! `audit --format nagios`: the report as a Nagios/Icinga check, per the Monitoring Plugins
//! development guidelines: one status line `XMPPDNS STATE - text | perfdata`, the findings on
//! the following lines (long output), and the plugin exit codes 0/1/2/3.

use std::fmt::Write as _;

use crate::audit::rules::Severity;
use crate::audit::Report;

/// The plugin exit codes (Monitoring Plugins guidelines, "Plugin Return Codes").
pub mod state {
    pub const OK: u8 = 0;
    pub const WARNING: u8 = 1;
    pub const CRITICAL: u8 = 2;
    pub const UNKNOWN: u8 = 3;
}

/// Most findings listed after the status line: a check's output is read by a person.
const LONG_OUTPUT_LINES: usize = 20;

/// The check's output and exit code for a report.
pub fn render(report: &Report, warn_days: i64) -> (String, u8) {
    let s = &report.summary;
    let (name, code) = if s.errors > 0 {
        ("CRITICAL", state::CRITICAL)
    } else if s.warnings > 0 {
        ("WARNING", state::WARNING)
    } else {
        ("OK", state::OK)
    };
    let mut text = format!(
        "{} error(s), {} warning(s) in {} SIP domain(s)",
        s.errors, s.warnings, s.sip_domains
    );
    let worst = report
        .findings()
        .filter(|f| f.severity != Severity::Info)
        .min_by_key(|f| f.severity);
    if let Some(f) = worst {
        let _ = write!(text, "; rule {} {}: {}", f.rule, f.domain.bare(), f.message);
    }
    let mut out = format!(
        "XMPPDNS {name} - {} | {}\n",
        clean(&text),
        perfdata(report, warn_days)
    );
    for f in report
        .findings()
        .filter(|f| f.severity != Severity::Info)
        .take(LONG_OUTPUT_LINES)
    {
        let line = format!(
            "{} rule {} {}: {}",
            f.severity.as_str(),
            f.rule,
            f.domain.bare(),
            f.message
        );
        let _ = writeln!(out, "{}", clean(&line));
    }
    (out, code)
}

/// The status line of an audit that could not run.
pub fn unknown(reason: &str) -> String {
    format!("XMPPDNS UNKNOWN - {}\n", clean(reason))
}

/// `'label'=value[UOM];[warn];[crit];[min];[max]`, space-separated.
fn perfdata(report: &Report, warn_days: i64) -> String {
    let s = &report.summary;
    let mut items = vec![
        format!("errors={};;1;0", s.errors),
        format!("warnings={};1;;0", s.warnings),
        format!("info={};;;0", s.info),
    ];
    let days = report
        .tls
        .iter()
        .flatten()
        .filter_map(|t| {
            let facts = t.check.certificate.as_ref()?;
            Some(facts.days_left(t.check.checked_at))
        })
        .min();
    if let Some(days) = days {
        items.push(format!("cert_days_left={days};{warn_days};0"));
    }
    let probe_ms = report
        .probes
        .iter()
        .flatten()
        .map(|p| p.result.total_ms)
        .max();
    if let Some(ms) = probe_ms {
        items.push(format!("probe_time={:.3}s;;;0", ms as f64 / 1000.0));
    }
    items.join(" ")
}

/// One line, without the perfdata separator.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}
