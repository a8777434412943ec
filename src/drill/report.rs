//! The drill report as JSON and as one self-contained HTML page (inline style, no scripts, no
//! external assets) that a manager can read and file. Everything from DNS or a peer is escaped.

use std::fmt::Write as _;

use crate::drill::Report;

/// The report as pretty JSON, ending in a newline.
pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("the drill report serializes");
    text.push('\n');
    text
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c if c.is_control() && c != '\n' => "\u{FFFD}".to_string(),
            c => c.to_string(),
        })
        .collect()
}

const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}\
table{border-collapse:collapse;width:100%;margin-bottom:1.5em}\
th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#eee}.ok{color:#070}.bad{color:#b00;font-weight:bold}\
code{font-size:90%}";

/// The report as a standalone HTML page.
pub fn html(report: &Report) -> String {
    let mut page = String::new();
    let verdict = if report.passed {
        "<p class=\"ok\">PASSED: every step succeeded.</p>".to_string()
    } else {
        format!(
            "<p class=\"bad\">FAILED: {}</p>",
            escape(report.stopped.as_deref().unwrap_or("a step failed"))
        )
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>XMPP federation DR drill {from} to {to}</title><style>{STYLE}</style></head><body>\n\
         <h1>XMPP federation DR drill: {from} &rarr; {to} &rarr; {from}</h1>\n\
         <p>Topology <code>{topology}</code>, from {start} to {end} (UTC).</p>\n{verdict}\n",
        from = escape(&report.from),
        to = escape(&report.to),
        topology = escape(&report.topology),
        start = escape(&report.started_at),
        end = escape(&report.finished_at),
    );
    steps(&mut page, report);
    times(&mut page, report);
    probes(&mut page, report);
    findings(&mut page, report);
    manual(&mut page, report);
    page.push_str("</body></html>\n");
    page
}

fn table(page: &mut String, title: &str, head: &[&str], rows: Vec<Vec<String>>) {
    let _ = write!(page, "<h2>{}</h2>\n<table><tr>", escape(title));
    for h in head {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr>\n");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            // Cells are escaped by the callers (a checkbox cell holds markup).
            let _ = write!(page, "<td>{cell}</td>");
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

fn steps(page: &mut String, report: &Report) {
    let rows = report
        .steps
        .iter()
        .map(|s| {
            let result = if s.passed {
                "<span class=\"ok\">passed</span>"
            } else {
                "<span class=\"bad\">FAILED</span>"
            };
            vec![
                s.number.to_string(),
                escape(&s.name),
                escape(&s.started_at),
                format!("{} ms", s.took_ms),
                result.to_string(),
                escape(&s.detail),
            ]
        })
        .collect();
    table(
        page,
        "Steps",
        &["#", "Step", "Started", "Took", "Result", "Detail"],
        rows,
    );
}

fn times(page: &mut String, report: &Report) {
    let rows = report
        .times
        .iter()
        .map(|t| {
            vec![
                escape(&t.command),
                escape(t.authoritative_at.as_deref().unwrap_or("not reached")),
                escape(t.world_at.as_deref().unwrap_or("not reached")),
                escape(&format!("{} (TTL {} s)", t.bounded_by, t.bounding_ttl)),
            ]
        })
        .collect();
    table(
        page,
        "When the world sees each move",
        &[
            "Move",
            "Every authoritative server (authoritative_at)",
            "Remote resolvers (world_at)",
            "Bounded by",
        ],
        rows,
    );
}

fn probes(page: &mut String, report: &Report) {
    let rows = report
        .probes
        .iter()
        .flat_map(|p| {
            p.results.iter().map(|r| {
                vec![
                    escape(&p.step),
                    escape(&p.pool),
                    r.address.to_string(),
                    if r.is_ready() { "ready" } else { "NOT ready" }.to_string(),
                    format!("{} ms", r.total_ms),
                    escape(&crate::probe::printable(&r.detail)),
                ]
            })
        })
        .collect();
    table(
        page,
        "Port 5269 probes",
        &["Step", "Pool", "Address", "XMPP", "Took", "Detail"],
        rows,
    );
}

fn findings(page: &mut String, report: &Report) {
    let rows = report
        .findings
        .iter()
        .map(|f| vec![escape(&crate::probe::printable(f))])
        .collect();
    table(
        page,
        "Audit findings (errors and warnings)",
        &["Finding"],
        rows,
    );
}

fn manual(page: &mut String, report: &Report) {
    let rows = report
        .manual_steps
        .iter()
        .map(|m| {
            vec![
                "<input type=\"checkbox\" aria-label=\"done\">".to_string(),
                escape(&m.command),
                escape(&m.title),
                format!(
                    "<code>{}</code>",
                    m.commands
                        .iter()
                        .map(|c| escape(c))
                        .collect::<Vec<_>>()
                        .join("<br>")
                ),
            ]
        })
        .collect();
    table(
        page,
        "Runbook steps done by hand",
        &["Done", "Move", "Step", "Commands"],
        rows,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::Step;

    #[test]
    fn the_page_is_self_contained_and_escapes_what_it_shows() {
        let report = Report {
            format: "xmppdns-drill/1",
            topology: "t.json".into(),
            from: "P1".into(),
            to: "<script>".into(),
            started_at: "2026-12-02T09:00:00Z".into(),
            finished_at: "2026-12-02T09:01:00Z".into(),
            passed: false,
            stopped: Some("stopped at step 2 (probe)".into()),
            steps: vec![Step {
                number: 1,
                name: "audit".into(),
                started_at: "2026-12-02T09:00:00Z".into(),
                took_ms: 12,
                passed: true,
                detail: "0 error(s)".into(),
            }],
            times: Vec::new(),
            probes: Vec::new(),
            findings: vec!["7 error x: <b>".into()],
            manual_steps: Vec::new(),
        };
        let page = html(&report);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(page.contains("FAILED: stopped at step 2 (probe)"));
        assert!(json(&report).contains("\"format\": \"xmppdns-drill/1\""));
    }
}
