//! `drill`: the disaster-recovery drill, unattended with `--yes`; prints each step and writes
//! the report (`--report FILE.json` or `FILE.html`).

use std::time::Duration;

use xmppdns::drill::{self, report};
use xmppdns::error::exit;
use xmppdns::provider::Environment;
use xmppdns::{failover, Error};

use super::{confirm, write_output};
use crate::cli::DrillArgs;

pub(crate) fn drill(args: DrillArgs) -> Result<u8, Error> {
    let nameservers = failover::parse_nameservers(&args.nameservers)?;
    let request = drill::Request {
        topology: args.topology.clone(),
        to: args.to.clone(),
        hold: Duration::from_secs(args.hold),
        drain_ttl: args.drain.then_some(args.drain_ttl),
        skip_probe: args.skip_probe,
        probe_timeout: Duration::from_secs(args.probe_timeout),
        verify_timeout: Duration::from_secs(args.verify_timeout),
        nameservers,
        journal: args.journal.clone(),
    };
    println!(
        "DR drill: fail over to {} and back, holding {} s; DNS changes twice.",
        args.to, args.hold
    );
    if !args.yes {
        confirm()?;
    }
    let report = drill::run(&request, &Environment::system())?;
    for step in &report.steps {
        println!(
            "{:>2}. {:<14} {:<6} {:>7} ms  {}",
            step.number,
            step.name,
            if step.passed { "ok" } else { "FAILED" },
            step.took_ms,
            xmppdns::probe::printable(&step.detail)
        );
    }
    for times in &report.times {
        println!(
            "{}: authoritative_at {}, world_at {} (bounded by {} TTL {} s)",
            times.command,
            times.authoritative_at.as_deref().unwrap_or("not reached"),
            times.world_at.as_deref().unwrap_or("not reached"),
            times.bounded_by,
            times.bounding_ttl
        );
    }
    if let Some(path) = &args.report {
        let html = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
        let text = if html {
            report::html(&report)
        } else {
            report::json(&report)
        };
        write_output(path, &text)?;
        println!("Report written to {}.", path.display());
    }
    match &report.stopped {
        None => {
            println!("Drill passed.");
            Ok(exit::OK)
        }
        Some(stopped) => {
            println!("Drill FAILED: {}", xmppdns::probe::printable(stopped));
            Ok(exit::NOT_PROPAGATED)
        }
    }
}
