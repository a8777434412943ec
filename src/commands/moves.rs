//! `failover` and `failback`: probe the new pool, show the plan, apply, record the move in the
//! topology, wait for every authoritative server, and print the runbook of the steps left.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use xmppdns::clock::Clock;
use xmppdns::error::exit;
use xmppdns::failover::runbook::{self, DnsStep};
use xmppdns::failover::{self, PreparedFailover, TopologyEdit};
use xmppdns::plan::render::{self, Look};
use xmppdns::plan::Plan;
use xmppdns::probe::ProbeResult;
use xmppdns::provider::Environment;
use xmppdns::topology::{Pool, Topology};
use xmppdns::{app, Error};

use super::{confirm, print_applied, write_output};
use crate::cli::{FailbackArgs, FailoverArgs, MoveOptions};

pub(crate) fn failover(args: FailoverArgs, look: Look) -> Result<u8, Error> {
    let promote = !args.no_promote;
    let to = Some(args.to);
    run_move(
        &args.topology,
        to,
        &args.move_options,
        promote,
        look,
        "failover",
    )
}

pub(crate) fn failback(args: FailbackArgs, look: Look) -> Result<u8, Error> {
    let promote = !args.no_promote;
    run_move(
        &args.topology,
        None,
        &args.move_options,
        promote,
        look,
        "failback",
    )
}

/// `failover` (`to` given) and `failback` (`to` from the journal).
fn run_move(
    topology_path: &Path,
    to: Option<String>,
    flags: &MoveOptions,
    promote: bool,
    look: Look,
    command: &'static str,
) -> Result<u8, Error> {
    let started = Instant::now();
    let env = Environment::system();
    let options = failover::Options {
        to,
        promote,
        skip_probe: flags.skip_probe,
        force: flags.force,
        probe_timeout: Duration::from_secs(flags.probe_timeout),
        journal: flags.journal.clone(),
    };
    let prepared = failover::prepare(topology_path, &options, &env, command)?;
    tracing::info!("read, probed and planned after {:?}", started.elapsed());
    // Before anything is applied: a bad --nameserver is an error now, not after the change.
    let nameservers = failover::parse_nameservers(&flags.nameservers)?;
    print_probes(&prepared, command);
    super::certificates::gate(&prepared, flags)?;
    let plan = prepared.apply.plan.clone();
    let topology_after = prepared.apply.topology.clone();
    print!("{}", render::table(&plan, look));
    let runbook = Runbook {
        command,
        from: &prepared.from_pool,
        to: &prepared.to_pool,
        plan: &plan,
        probes: prepared.probes.as_deref(),
        srv_port: prepared.old_topology.srv.port,
        path: flags.runbook.as_deref(),
    };

    if flags.dry_run {
        println!("Dry run: nothing was changed.");
        runbook.finish(DnsStep::DryRun)?;
        return Ok(exit::OK);
    }
    if !plan.is_empty() {
        if !flags.yes {
            confirm()?;
        }
        match app::execute(prepared.apply) {
            Ok(report) => print_applied(&report),
            Err(error) => {
                // DNS may be partly changed: the admin still needs the steps, with the DNS
                // step marked as not complete. The error itself follows on stderr.
                runbook.finish(DnsStep::Incomplete)?;
                return Err(error);
            }
        }
        tracing::info!("applied and read back after {:?}", started.elapsed());
    }
    record_in_topology(topology_path, &prepared.edit)?;
    let waited = Propagation {
        topology: &topology_after,
        plan: &plan,
        nameservers: &nameservers,
        started,
        timeout: Duration::from_secs(flags.propagation_timeout),
    };
    let code = waited.check(&env.clock);
    runbook.finish(DnsStep::Done)?;
    Ok(code)
}

/// The move's heading, and what the probe of the new pool found (or that it was skipped).
fn print_probes(prepared: &PreparedFailover, command: &str) {
    let (from, to) = (&prepared.from_pool, &prepared.to_pool);
    println!(
        "XMPP federation {command}: {} (site {}) -> {} (site {})",
        from.name, from.site, to.name, to.site
    );
    let port = prepared.old_topology.srv.port;
    match &prepared.probes {
        None => println!("Port {port} probe: skipped (--skip-probe)."),
        Some(results) => {
            println!("Port {port} probe of {}:", to.name);
            print!("{}", failover::report::probes(results));
            if !results.iter().any(|r| r.is_ready()) {
                eprintln!("warning: no address answered as a ready XMPP server; going on because of --force");
            }
        }
    }
}

/// Writes the new active pool (and SRV order) into the topology file, and says what changed.
fn record_in_topology(path: &Path, edit: &TopologyEdit) -> Result<(), Error> {
    match failover::write_topology(path, edit)? {
        Some(said) => println!("Topology {} updated: {said}.", path.display()),
        None => println!("Topology {} already up to date.", path.display()),
    }
    Ok(())
}

/// The runbook's inputs, all known before the apply; where the DNS step stands comes last.
struct Runbook<'a> {
    command: &'static str,
    from: &'a Pool,
    to: &'a Pool,
    plan: &'a Plan,
    probes: Option<&'a [ProbeResult]>,
    srv_port: u16,
    /// `--runbook`: also write the steps as a PowerShell script here.
    path: Option<&'a Path>,
}

impl Runbook<'_> {
    /// Prints the steps, and writes the PowerShell script when asked to.
    fn finish(&self, dns: DnsStep) -> Result<(), Error> {
        let steps = runbook::steps(&runbook::Inputs {
            from: self.from,
            to: self.to,
            plan: self.plan,
            probes: self.probes,
            dns,
            srv_port: self.srv_port,
        });
        println!("\nRunbook (the steps xmppdns cannot run, in order):");
        print!("{}", runbook::text(&steps));
        if let Some(path) = self.path {
            let heading = format!(
                "XMPP federation {}: {} (site {}) -> {} (site {}), written by xmppdns",
                self.command, self.from.name, self.from.site, self.to.name, self.to.site
            );
            write_output(path, &runbook::powershell(&steps, &heading))?;
            println!("Runbook written to {}.", path.display());
        }
        Ok(())
    }
}

/// The wait for every authoritative server to serve the applied records.
struct Propagation<'a> {
    /// The topology after the move.
    topology: &'a Topology,
    plan: &'a Plan,
    /// `--nameserver`: servers to check besides the topology's.
    nameservers: &'a [SocketAddr],
    started: Instant,
    /// From when the servers to ask are known (finding them may take a while).
    timeout: Duration,
}

impl Propagation<'_> {
    /// Waits, prints each server's status, and returns the exit code: 5 when one did not
    /// serve the change before the deadline.
    fn check(&self, clock: &Clock) -> u8 {
        let authority = failover::authoritative_servers(self.topology, self.nameservers);
        if let Some(note) = &authority.note {
            println!("Note: {note}.");
        }
        if authority.is_empty() {
            return exit::OK;
        }
        let desired = xmppdns::plan::desired(self.topology);
        let expected = failover::propagation::expectations(&desired, self.plan);
        let deadline = Instant::now() + self.timeout;
        let statuses =
            failover::propagation::wait(&expected, &authority.zones, self.started, deadline, clock);
        println!("Propagation:");
        print!("{}", failover::report::propagation(&statuses));
        if statuses.iter().any(|s| !s.converged) {
            exit::NOT_PROPAGATED
        } else {
            exit::OK
        }
    }
}
