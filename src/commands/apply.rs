//! `apply` (a topology or a saved plan) and `rollback` (journal entries): show the plan,
//! confirm, apply, read back.

use xmppdns::error::exit;
use xmppdns::plan::render::{self, Look};
use xmppdns::provider::Environment;
use xmppdns::{app, Error};

use super::{confirm, print_applied};
use crate::cli::{ApplyArgs, Format, RollbackArgs};

pub(crate) fn apply(args: ApplyArgs, look: Look) -> Result<u8, Error> {
    let prepared = app::prepare_apply(
        &args.input,
        &Environment::system(),
        args.force,
        args.journal.as_deref(),
    )?;
    if prepared.plan.is_empty() {
        println!("No changes: DNS already matches the topology.");
        return Ok(exit::OK);
    }
    // A failover that changed DNS but did not finish: this apply would quietly revert it.
    let pending =
        xmppdns::failover::verify::pending_move(&prepared.topology, prepared.journal_path())?;
    if let (Some(p), false) = (pending, args.force) {
        return Err(Error::MovePending {
            command: p.command,
            from: p.from,
            to: p.to,
            entries: p.applied_entries,
        });
    }
    match args.format {
        Format::Table => print!(
            "{}",
            render::table_or_summary(&prepared.plan, look, args.all)
        ),
        Format::Json => {
            let file = app::plan_file(&prepared.plan, &prepared.topology, prepared.provider_kind());
            print!("{}", render::json(&file))
        }
    }
    if !args.yes {
        confirm()?;
    }
    print_applied(&app::execute(prepared)?);
    Ok(exit::OK)
}

pub(crate) fn rollback(args: RollbackArgs, look: Look) -> Result<u8, Error> {
    let steps = app::prepare_rollback(
        &args.topology,
        args.to,
        args.journal.as_deref(),
        &Environment::system(),
        args.force,
    )?;
    for step in steps {
        match step {
            app::RollbackStep::AlreadyRestored { entry } => {
                println!("Journal entry {entry}: already restored, nothing to do.")
            }
            app::RollbackStep::Ready { entry, prepared } => {
                println!("Journal entry {entry}: restoring what it replaced.");
                print!("{}", render::table(&prepared.plan, look));
                if !args.yes {
                    confirm()?;
                }
                print_applied(&app::execute(*prepared)?);
            }
        }
    }
    println!(
        "Note: rollback does not edit the topology; `xmppdns plan {}` shows where it and DNS now differ.",
        args.topology.display()
    );
    Ok(exit::OK)
}
