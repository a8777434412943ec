//! `drain` (lower the TTLs a move touches, and say when remote caches have let go of the old
//! ones) and `settle` (restore the topology's TTLs after the move).

use std::time::Duration;

use xmppdns::clock::rfc3339;
use xmppdns::error::exit;
use xmppdns::failover::drain::{self, human, DrainState, DrainStatus};
use xmppdns::journal::{self, Journal};
use xmppdns::plan::render::{self, Look};
use xmppdns::provider::{self, Environment};
use xmppdns::topology::Topology;
use xmppdns::{app, failover, Error};

use super::{confirm, print_applied};
use crate::cli::{DrainArgs, SettleArgs};

pub(crate) fn drain(args: DrainArgs, look: Look) -> Result<u8, Error> {
    let nameservers = failover::parse_nameservers(&args.nameservers)?;
    let env = Environment::system();
    let topology = app::load_topology(&args.topology)?;
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| journal::default_path(&args.topology));
    let state = drain::state(&journal_path)?;
    let now = (env.clock)();
    if let Some(state) = state.as_ref().filter(|s| s.ttl <= args.ttl) {
        if state.authoritative_at.is_some() {
            print_status(state, now);
            return Ok(exit::OK);
        }
    }
    let drained = drain::drained(&topology, args.ttl);
    let mut provider = provider::open(&drained, &env)?;
    let plan = app::plan(&drained, provider.as_mut())?;
    let kind = provider.kind();
    if plan.is_empty() && state.is_none() {
        println!(
            "Nothing to drain: every managed RRset already has a TTL of at most {} s.",
            args.ttl
        );
        return Ok(exit::OK);
    }
    if !plan.is_empty() {
        println!("Drain to TTL {} s:", args.ttl);
        print!("{}", render::table(&plan, look));
        let prepared = app::prepare_plan(
            drained.clone(),
            plan,
            provider,
            &env,
            args.force,
            Some(&journal_path),
            drain::DRAIN,
            None,
        )?;
        if !args.yes {
            confirm()?;
        }
        print_applied(&app::execute(prepared)?);
    }
    confirm_served(&drained, &args, &nameservers, &env, kind, &journal_path)
}

/// Waits until every authoritative server serves the lower TTL, records that moment in the
/// journal and says when the drain is complete.
fn confirm_served(
    drained: &Topology,
    args: &DrainArgs,
    nameservers: &[std::net::SocketAddr],
    env: &Environment,
    provider_kind: &str,
    journal_path: &std::path::Path,
) -> Result<u8, Error> {
    let authority = failover::authoritative_servers(drained, nameservers);
    if let Some(note) = &authority.note {
        println!("Note: {note}.");
    }
    println!(
        "Waiting up to {} s for every authoritative server to serve TTL {}...",
        args.wait, args.ttl
    );
    let lagging = drain::wait_for_ttl(
        drained,
        &authority.zones,
        args.ttl,
        Duration::from_secs(args.wait),
        &env.clock,
    );
    if !lagging.is_empty() {
        for l in &lagging {
            println!("  {} serves {}: {}", l.server, l.record, l.served);
        }
        println!("The drain is applied but not yet served everywhere: run `xmppdns drain` again to confirm it.");
        return Ok(exit::NOT_PROPAGATED);
    }
    let served_at = (env.clock)();
    let mut journal = Journal::open(journal_path)?;
    journal.append(
        drain::DRAIN,
        provider_kind,
        &drained.federation.zone,
        true,
        format!("every authoritative server serves TTL {}", args.ttl),
        None,
        Vec::new(),
        served_at,
    )?;
    let state = drain::state(journal_path)?.ok_or_else(|| {
        Error::NotConfirmed("the journal holds no drain after writing one".into())
    })?;
    print_status(&state, served_at);
    Ok(exit::OK)
}

fn print_status(state: &DrainState, now: u64) {
    let served = state.authoritative_at.map(rfc3339).unwrap_or_default();
    println!(
        "Every authoritative server serves TTL {} since {served}; the largest TTL replaced was {} s ({}).",
        state.ttl, state.old_ttl, state.bounded_by
    );
    match state.status(now) {
        DrainStatus::Complete { at } => println!(
            "Drain complete since {}: a move now reaches remote servers within {} s.",
            rfc3339(at),
            state.ttl
        ),
        DrainStatus::InProgress { at, left } => println!(
            "Drain complete at {} ({} left). Nothing was changed.",
            rfc3339(at),
            human(left)
        ),
        DrainStatus::Unconfirmed => println!("Drain not yet confirmed on every server."),
    }
}

pub(crate) fn settle(args: SettleArgs, look: Look) -> Result<u8, Error> {
    let env = Environment::system();
    let topology = app::load_topology(&args.topology)?;
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| journal::default_path(&args.topology));
    let state = drain::state(&journal_path)?;
    let mut provider = provider::open(&topology, &env)?;
    let plan = app::plan(&topology, provider.as_mut())?;
    let kind = provider.kind();
    if plan.is_empty() {
        println!("No changes: DNS already has the topology's TTLs.");
        if state.is_some() {
            // End the drain in the journal, so moves and `plan` stop keeping its TTLs.
            Journal::open(&journal_path)?.append(
                drain::SETTLE,
                kind,
                &topology.federation.zone,
                true,
                "settled: DNS already had the topology's TTLs".into(),
                None,
                Vec::new(),
                (env.clock)(),
            )?;
        }
        return Ok(exit::OK);
    }
    println!("Settle to the topology's TTLs:");
    print!("{}", render::table(&plan, look));
    let prepared = app::prepare_plan(
        topology,
        plan,
        provider,
        &env,
        args.force,
        Some(&journal_path),
        drain::SETTLE,
        None,
    )?;
    if !args.yes {
        confirm()?;
    }
    print_applied(&app::execute(prepared)?);
    Ok(exit::OK)
}
