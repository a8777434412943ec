//! `plan`: what would change in DNS, as a table or JSON, optionally saved for `apply`.

use xmppdns::error::exit;
use xmppdns::plan::render::{self, Look};
use xmppdns::provider::{self, Environment};
use xmppdns::{app, Error};

use super::{write_output, write_stdout};
use crate::cli::{Format, PlanArgs};

pub(crate) fn plan(args: PlanArgs, look: Look) -> Result<u8, Error> {
    let topology = app::load_topology(&args.topology)?;
    let journal = xmppdns::journal::default_path(&args.topology);
    // During a drain its lower TTLs are what DNS should hold: settling is pending, not drift.
    let drain = xmppdns::failover::drain::state(&journal)?;
    let topology = xmppdns::failover::drain::effective(&topology, drain.as_ref());
    if let Some(drain) = &drain {
        eprintln!(
            "note: a drain is in force (TTL {} s); settling is pending: `xmppdns settle {}` restores the topology's TTLs after the move.",
            drain.ttl,
            args.topology.display()
        );
    }
    let mut provider = provider::open(&topology, &Environment::system())?;
    let plan = app::plan(&topology, provider.as_mut())?;
    // The plan file (checksums over the whole plan) only when it is shown or saved.
    let file = || app::plan_file(&plan, &topology, provider.kind());
    app::warn_interrupted(&journal);
    if let Some(p) = xmppdns::failover::verify::pending_move(&topology, &journal)? {
        eprintln!(
            "warning: a {} {} -> {} is pending (it changed DNS but did not finish); this plan would revert it. Complete it with `xmppdns {} {}{}`; `apply` refuses this plan without --force.",
            p.command, p.from, p.to, p.command, args.topology.display(),
            if p.command == "failover" { format!(" --to {}", p.to) } else { String::new() }
        );
    }
    match args.format {
        Format::Table => write_stdout(&render::table_or_summary(&plan, look, args.all))?,
        Format::Json => write_stdout(&render::json(&file()))?,
    }
    if let Some(out) = &args.out {
        write_output(out, &render::json(&file()))?;
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}
