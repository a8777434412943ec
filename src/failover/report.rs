//! Turns probe and propagation results into tables for people. Returns strings, with what a
//! peer or DNS controls stripped of control characters.

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::failover::propagation::ServerStatus;
use crate::probe::{printable, ProbeResult, ProbeStatus};

fn status_word(status: ProbeStatus) -> &'static str {
    match status {
        ProbeStatus::Xmpp => "XMPP answered",
        ProbeStatus::NotXmpp => "not XMPP",
        ProbeStatus::Closed => "closed",
        ProbeStatus::Timeout => "timeout",
        ProbeStatus::Unreachable => "unreachable",
    }
}

fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v} ms"))
}

/// One row per probed address.
pub fn probes(results: &[ProbeResult]) -> String {
    let mut builder = Builder::default();
    builder.push_record([
        "Address",
        "Connected",
        "XMPP",
        "STARTTLS",
        "Connect",
        "Total",
        "Detail",
    ]);
    for r in results {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        builder.push_record([
            r.address.to_string(),
            yes_no(r.connect_ms.is_some()),
            status_word(r.status).to_string(),
            yes_no(r.starttls),
            ms(r.connect_ms),
            format!("{} ms", r.total_ms),
            printable(&r.detail),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::sharp());
    format!("{table}\n")
}

/// One row per (zone, server), with a summary line.
pub fn propagation(statuses: &[ServerStatus]) -> String {
    let mut builder = Builder::default();
    builder.push_record([
        "Zone",
        "Server",
        "Serves the change",
        "Serial",
        "After",
        "Polls",
        "Detail",
    ]);
    for s in statuses {
        builder.push_record([
            s.zone.to_string(),
            s.server.to_string(),
            if s.converged { "yes" } else { "NO" }.to_string(),
            s.serial.map_or_else(|| "-".to_string(), |v| v.to_string()),
            ms(s.after_ms),
            s.polls.to_string(),
            // What a server served (names from the wire) is shown, never interpreted.
            printable(&s.detail),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::sharp());
    let late = statuses.iter().filter(|s| !s.converged).count();
    let slowest = statuses.iter().filter_map(|s| s.after_ms).max();
    let summary = if late == 0 {
        format!(
            "Every authoritative server serves the change ({} zone/server pairs checked, the last after {}).",
            statuses.len(),
            ms(slowest)
        )
    } else {
        format!(
            "{late} of {} zone/server pair(s) did NOT serve the change in time.",
            statuses.len()
        )
    };
    format!("{table}\n{summary}\n")
}
