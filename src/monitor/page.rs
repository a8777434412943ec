//! The monitor's `GET /` status page: a small self-contained HTML page (no script, no external
//! asset) with what a person checks first: each SIP domain and its leading pool, the findings,
//! and the certificates' expiry. Every text from the network is HTML-escaped.

use std::fmt::Write as _;

use crate::audit::rules::Subject;
use crate::audit::Report;

/// What the page shows of the last cycle.
pub struct PageInput<'a> {
    pub report: Option<&'a Report>,
    /// Why the last cycle failed, when it did.
    pub error: Option<&'a str>,
    /// RFC 3339 time of the last cycle's end, or "not yet".
    pub last_cycle: &'a str,
    pub cycles: u64,
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page.
pub fn render(input: &PageInput<'_>) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>xmppdns monitor</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
         .error{color:#b00}.warning{color:#a60}.ok{color:#070}</style></head><body>\n\
         <h1>XMPP federation: xmppdns monitor</h1>\n",
    );
    let _ = writeln!(
        out,
        "<p>Last cycle: {} ({} cycle(s) so far). <a href=\"/metrics\">metrics</a></p>",
        esc(input.last_cycle),
        input.cycles
    );
    if let Some(error) = input.error {
        let _ = writeln!(
            out,
            "<p class=\"error\">The last cycle failed: {}</p>",
            esc(error)
        );
    }
    if let Some(report) = input.report {
        domains(&mut out, report);
        findings(&mut out, report);
        certificates(&mut out, report);
    }
    out.push_str("</body></html>\n");
    out
}

fn domains(out: &mut String, report: &Report) {
    out.push_str("<h2>SIP domains</h2>\n<table><tr><th>domain</th><th>leading pool</th><th>leading target</th><th>status</th></tr>\n");
    for name in report.names.iter().filter(|n| n.kind == Subject::SipDomain) {
        let errors = name
            .findings
            .iter()
            .filter(|f| f.severity == crate::audit::Severity::Error)
            .count();
        let (class, status) = if errors == 0 {
            ("ok", "ok".to_string())
        } else {
            ("error", format!("{errors} error(s)"))
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{status}</td></tr>",
            esc(name.name.bare()),
            esc(name.leading_pool.as_deref().unwrap_or("-")),
            esc(&name
                .leading_target
                .as_ref()
                .map_or("-".into(), |t| t.to_string())),
        );
    }
    out.push_str("</table>\n");
}

fn findings(out: &mut String, report: &Report) {
    let s = &report.summary;
    let _ = writeln!(
        out,
        "<h2>Findings: {} error(s), {} warning(s), {} info</h2>",
        s.errors, s.warnings, s.info
    );
    out.push_str("<table><tr><th>severity</th><th>rule</th><th>name</th><th>record</th><th>finding</th></tr>\n");
    for f in report.findings() {
        let severity = f.severity.as_str();
        let _ = writeln!(
            out,
            "<tr><td class=\"{severity}\">{severity}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.rule),
            esc(f.domain.bare()),
            esc(&f.record),
            esc(&f.message)
        );
    }
    out.push_str("</table>\n");
}

fn certificates(out: &mut String, report: &Report) {
    let Some(checks) = &report.tls else { return };
    out.push_str("<h2>Certificates</h2>\n<table><tr><th>target</th><th>address</th><th>domain</th><th>covers</th><th>expires</th><th>days left</th></tr>\n");
    for checked in checks {
        let check = &checked.check;
        let (expires, days) = match &check.certificate {
            Some(facts) => (
                crate::clock::rfc3339(u64::try_from(facts.not_after).unwrap_or(0)),
                facts.days_left(check.checked_at).to_string(),
            ),
            None => (esc(&check.detail), "-".to_string()),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&checked.target.to_string()),
            check.address,
            esc(&check.domain),
            if check.covers_domain { "yes" } else { "no" },
            expires,
            days
        );
    }
    out.push_str("</table>\n");
}
