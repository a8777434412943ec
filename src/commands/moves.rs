//! `failover` and `failback`, in the stages of Microsoft's procedure: the admin's Lync steps
//! (stop the new pool's Edge services, repoint the route), the DNS change, the admin's start
//! of the services, and the verification. On a terminal the command walks the admin through
//! them; `--stage` runs one; without either, the stages run back to back.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use xmppdns::error::exit;
use xmppdns::failover::runbook::{self, DnsStep, Stage, VerifyStep};
use xmppdns::failover::verify::{self, Verification};
use xmppdns::failover::{self, PreparedFailover, ProbeBefore, TopologyEdit};
use xmppdns::failover::{drain, seen};
use xmppdns::journal;
use xmppdns::plan::render::{self, Look};
use xmppdns::plan::Plan;
use xmppdns::probe::{printable, ProbeResult};
use xmppdns::provider::Environment;
use xmppdns::topology::{Pool, Topology};
use xmppdns::{app, Error};

use super::{confirm, print_applied, write_output};
use crate::cli::{FailbackArgs, FailoverArgs, MoveOptions, MoveStage};

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

/// One move as asked on the command line.
struct Move<'a> {
    command: &'static str,
    topology_path: &'a Path,
    flags: &'a MoveOptions,
    /// The command line that runs the stages, without `--stage`.
    invocation: String,
    env: Environment,
    nameservers: Vec<SocketAddr>,
}

/// What the runbook needs of a prepared move, kept when its apply is consumed.
struct Names {
    from: Pool,
    to: Pool,
    plan: Plan,
    probes: Option<Vec<ProbeResult>>,
    srv_port: u16,
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
    // Before anything is read or applied: a bad --nameserver is an error now.
    let nameservers = failover::parse_nameservers(&flags.nameservers)?;
    let mv = Move {
        command,
        topology_path,
        flags,
        invocation: invocation(command, topology_path, to.as_deref()),
        env: Environment::system(),
        nameservers,
    };
    if flags.stage == Some(MoveStage::Verify) {
        return mv.verify_stage(to);
    }
    // A dry run shows what the probe finds but never stops on it, even with --require-live.
    let probe_before = if flags.skip_probe {
        ProbeBefore::Skip
    } else if flags.dry_run {
        ProbeBefore::Inform
    } else if flags.require_live {
        ProbeBefore::Gate
    } else {
        ProbeBefore::Skip
    };
    let options = failover::Options {
        to,
        promote,
        probe_before,
        force: flags.force,
        probe_timeout: Duration::from_secs(flags.probe_timeout),
        journal: flags.journal.clone(),
    };
    let mut prepared = failover::prepare(topology_path, &options, &mv.env, command)?;
    // Held past the apply: the topology is rewritten after it, and the stages may follow.
    prepared.apply.keep_locks_until_exit();
    if prepared.from == prepared.to {
        return Ok(already_active(&prepared, &mv.invocation));
    }
    print_heading(&prepared, command, probe_before);
    print_drain(&prepared, (mv.env.clock)());
    print!("{}", render::table(&prepared.apply.plan, look));
    // The certificate gate comes before the Lync steps: the Access Edge certificate already
    // serves SIP on 5061 while the XMPP service may be down. Not at `--stage dns`: by then the
    // admin has stopped the pool's services, as the procedure says. A dry run only reports it.
    if flags.stage != Some(MoveStage::Dns) {
        match super::certificates::gate(&prepared, flags) {
            Err(refusal) if flags.dry_run => {
                eprintln!(
                    "note: {refusal}
note: a real run would stop here (exit 3)"
                )
            }
            other => other?,
        }
    }
    match flags.stage {
        _ if flags.dry_run => mv.dry_run(&prepared),
        Some(MoveStage::Lync) => mv.lync_stage(&prepared),
        Some(MoveStage::Dns) => mv.dns_stage(prepared),
        _ => mv.all_stages(prepared),
    }
}

/// `xmppdns failover 'topology.json' --to 'EdgePool2'`, quoted for a POSIX shell.
fn invocation(command: &str, topology: &Path, to: Option<&str>) -> String {
    let mut line = format!(
        "xmppdns {command} {}",
        shell_word(&topology.display().to_string())
    );
    if let Some(to) = to {
        line.push_str(&format!(" --to {}", shell_word(to)));
    }
    line
}

fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", printable(text).replace('\'', r"'\''"))
    }
}

/// A move to the pool that is already active: nothing to do, no runbook (which would stop the
/// live pool's services).
fn already_active(prepared: &PreparedFailover, invocation: &str) -> u8 {
    println!("{} is already active; nothing to do.", prepared.to);
    if !prepared.apply.plan.is_empty() {
        println!(
            "Note: DNS differs from the topology in {} RRset(s); `xmppdns plan` shows them, and `{invocation} --stage verify` checks the pool.",
            prepared.apply.plan.changes.len()
        );
    }
    exit::OK
}

/// Whether a drain made remote caches ready for the move, and if not how long they may keep
/// using the old pool.
fn print_drain(prepared: &PreparedFailover, now: u64) {
    let served_ttl = prepared
        .apply
        .plan
        .changes
        .iter()
        .filter_map(|c| c.before.as_ref().map(|b| b.ttl))
        .max()
        .unwrap_or(prepared.old_topology.ttl);
    let (line, warn) = drain::before_move(prepared.drain.as_ref(), served_ttl, now);
    let prefix = if warn { "Warning: " } else { "" };
    println!("{prefix}{line}");
}

/// The move's heading, and what the probe of the new pool found (when it ran).
fn print_heading(prepared: &PreparedFailover, command: &str, probe_before: ProbeBefore) {
    let (from, to) = (&prepared.from_pool, &prepared.to_pool);
    println!(
        "XMPP federation {command}: {} (site {}) -> {} (site {})",
        from.name, from.site, to.name, to.site
    );
    let port = prepared.old_topology.srv.port;
    match &prepared.probes {
        None if probe_before == ProbeBefore::Skip => {}
        None => println!("Port {port} probe: skipped (--skip-probe)."),
        Some(results) => {
            println!("Port {port} probe of {} (before the DNS change):", to.name);
            print!("{}", failover::report::probes(results));
            let live = results.iter().any(|r| r.is_ready());
            if !live && probe_before == ProbeBefore::Gate {
                eprintln!("warning: no address answered as a ready XMPP server; going on because of --force");
            }
        }
    }
}

impl Move<'_> {
    fn names(&self, prepared: &PreparedFailover) -> Names {
        Names {
            from: prepared.from_pool.clone(),
            to: prepared.to_pool.clone(),
            plan: prepared.apply.plan.clone(),
            probes: prepared.probes.clone(),
            srv_port: prepared.old_topology.srv.port,
        }
    }

    fn inputs<'a>(
        &'a self,
        names: &'a Names,
        dns: DnsStep,
        verify: VerifyStep,
    ) -> runbook::Inputs<'a> {
        runbook::Inputs {
            command: self.command,
            from: &names.from,
            to: &names.to,
            plan: &names.plan,
            probes: names.probes.as_deref(),
            dns,
            verify,
            srv_port: names.srv_port,
            invocation: self.invocation.clone(),
        }
    }

    /// Prints the steps of `stages`, numbered as in the whole runbook.
    fn show(&self, inputs: &runbook::Inputs, stages: &[Stage]) {
        for (i, step) in runbook::steps(inputs).iter().enumerate() {
            if stages.contains(&step.stage) {
                println!("{}", runbook::step_text(i + 1, step));
            }
        }
    }

    /// Prints the whole runbook, and writes the PowerShell script when `--runbook` asks.
    fn finish(&self, inputs: &runbook::Inputs) -> Result<(), Error> {
        println!("\nRunbook:");
        print!("{}", runbook::text(&runbook::steps(inputs)));
        self.write_script(inputs)
    }

    fn write_script(&self, inputs: &runbook::Inputs) -> Result<(), Error> {
        if let Some(path) = &self.flags.runbook {
            let heading = format!(
                "XMPP federation {}: {} (site {}) -> {} (site {}), written by xmppdns",
                self.command, inputs.from.name, inputs.from.site, inputs.to.name, inputs.to.site
            );
            write_output(path, &failover::powershell::script(inputs, &heading))?;
            println!("Runbook written to {}.", path.display());
        }
        Ok(())
    }

    fn dry_run(&self, prepared: &PreparedFailover) -> Result<u8, Error> {
        println!("Dry run: nothing was changed.");
        let live = prepared.probes.iter().flatten().any(ProbeResult::is_ready);
        if self.flags.require_live && !live {
            println!("With --require-live the DNS stage would refuse: no address of pool {} answers XMPP now.", prepared.to);
        }
        let names = self.names(prepared);
        self.finish(&self.inputs(&names, DnsStep::DryRun, VerifyStep::NotYet))?;
        Ok(exit::OK)
    }

    /// `--stage lync`: the plan is shown; the admin's steps 1-2, and what comes next.
    fn lync_stage(&self, prepared: &PreparedFailover) -> Result<u8, Error> {
        let names = self.names(prepared);
        let inputs = self.inputs(&names, DnsStep::NotYet, VerifyStep::NotYet);
        println!("\nStage lync: your steps (nothing was changed):");
        self.show(&inputs, &[Stage::Lync]);
        self.write_script(&inputs)?;
        println!(
            "\nNext: once they are done, {} --stage dns",
            self.invocation
        );
        Ok(exit::OK)
    }

    /// `--stage dns`: the guarded change, recorded in the topology; then what comes next.
    fn dns_stage(&self, prepared: PreparedFailover) -> Result<u8, Error> {
        let names = self.names(&prepared);
        if let Err(error) = self.apply_dns(prepared) {
            self.finish(&self.inputs(&names, DnsStep::Incomplete, VerifyStep::NotYet))?;
            return Err(error);
        }
        let inputs = self.inputs(&names, DnsStep::Done, VerifyStep::NotYet);
        println!("\nNext, your steps:");
        self.show(&inputs, &[Stage::Start]);
        self.write_script(&inputs)?;
        println!(
            "\nThen: {} --stage verify (waits up to --verify-timeout for the pool to answer)",
            self.invocation
        );
        Ok(exit::OK)
    }

    /// Applies the plan (after confirmation, unless `--yes`) and records the move.
    fn apply_dns(&self, prepared: PreparedFailover) -> Result<(), Error> {
        if !prepared.apply.plan.is_empty() {
            if !self.flags.yes {
                confirm()?;
            }
            print_applied(&app::execute(prepared.apply)?);
        }
        record_in_topology(self.topology_path, &prepared.edit)
    }

    /// Every stage in order; on a terminal, waiting for the admin after each of their steps.
    fn all_stages(&self, prepared: PreparedFailover) -> Result<u8, Error> {
        let walk = std::io::stdin().is_terminal();
        let names = self.names(&prepared);
        let topology_after = prepared.apply.topology.clone();
        println!("\nStage 1 of 4, your steps:");
        self.show(
            &self.inputs(&names, DnsStep::NotYet, VerifyStep::NotYet),
            &[Stage::Lync],
        );
        if walk {
            wait_for_admin("Press Enter once they are done to change DNS, or q to stop here")
                .map_err(|_| self.stopped("dns"))?;
        }
        println!("\nStage 2 of 4, DNS (xmppdns):");
        if let Err(error) = self.apply_dns(prepared) {
            self.finish(&self.inputs(&names, DnsStep::Incomplete, VerifyStep::NotYet))?;
            return Err(error);
        }
        println!("\nStage 3 of 4, your steps:");
        self.show(
            &self.inputs(&names, DnsStep::Done, VerifyStep::NotYet),
            &[Stage::Start],
        );
        if walk {
            wait_for_admin(
                "Press Enter once the services are started to verify, or q to stop here",
            )
            .map_err(|_| self.stopped("verify"))?;
        }
        println!("\nStage 4 of 4, verify (xmppdns):");
        let (code, verified) = self.run_verify(&topology_after, &names.plan);
        self.finish(&self.inputs(&names, DnsStep::Done, verified))?;
        Ok(code)
    }

    fn stopped(&self, next: &str) -> Error {
        Error::NotConfirmed(format!(
            "stopped at the prompt; go on later with {} --stage {next}",
            self.invocation
        ))
    }

    /// `--stage verify`: the DNS stage must have moved the topology's active pool.
    fn verify_stage(&self, to: Option<String>) -> Result<u8, Error> {
        let topology = app::load_topology(self.topology_path)?;
        let journal_path = self
            .flags
            .journal
            .clone()
            .unwrap_or_else(|| journal::default_path(self.topology_path));
        let to = match to {
            Some(to) => to,
            None => failover::previous_pool(self.topology_path, &self.options_for_journal())?,
        };
        let Some(index) = topology.pool_index(&to) else {
            return Err(Error::UnknownPool {
                name: to,
                known: topology.pools.iter().map(|p| p.name.clone()).collect(),
            });
        };
        if index != topology.active {
            let pending = verify::pending_move(&topology, &journal_path)?;
            return Err(Error::NotMovedYet {
                active: topology.active_pool().name.clone(),
                pending: pending.is_some_and(|p| p.to == to),
                to,
            });
        }
        let plan = verify::applied_plan(&journal_path, &to)?;
        let pool = topology.pools[index].clone();
        println!(
            "XMPP federation {}: verify pool {} (site {})",
            self.command, pool.name, pool.site
        );
        let (code, verified) = self.run_verify(&topology, &plan);
        let names = Names {
            from: pool.clone(),
            to: pool,
            plan,
            probes: None,
            srv_port: topology.srv.port,
        };
        let inputs = self.inputs(&names, DnsStep::Done, verified);
        println!();
        self.show(&inputs, &[Stage::Verify]);
        Ok(code)
    }

    /// `--summary FILE.json`: the verification and its times, for scripts and reports.
    fn write_summary(
        &self,
        topology: &Topology,
        verification: &Verification,
        seen: Option<&seen::WhenSeen>,
    ) -> Result<(), Error> {
        let Some(path) = &self.flags.summary else {
            return Ok(());
        };
        let doc = serde_json::json!({
            "command": self.command,
            "active_pool": topology.active_pool().name,
            "verified": verification.passed(),
            "problems": verification.problems(),
            "propagation": verification.propagation,
            "authoritative_at": seen.and_then(|s| s.authoritative_at).map(xmppdns::clock::rfc3339),
            "world_at": seen.and_then(|s| s.world_at).map(xmppdns::clock::rfc3339),
            "world_bounded_by": seen.map(|s| serde_json::json!({"record": s.bounded_by, "ttl": s.bounding_ttl})),
        });
        let mut text = serde_json::to_string_pretty(&doc).expect("summary serializes");
        text.push('\n');
        write_output(path, &text)
    }

    fn options_for_journal(&self) -> failover::Options {
        failover::Options {
            to: None,
            promote: true,
            probe_before: ProbeBefore::Skip,
            force: false,
            probe_timeout: Duration::from_secs(self.flags.probe_timeout),
            journal: self.flags.journal.clone(),
        }
    }

    /// Waits for the pool and the servers, prints each check; exit 5 when one did not pass.
    fn run_verify(&self, topology: &Topology, plan: &Plan) -> (u8, VerifyStep) {
        let request = verify::Request {
            topology,
            plan,
            nameservers: &self.nameservers,
            probe: !self.flags.skip_probe,
            probe_timeout: Duration::from_secs(self.flags.probe_timeout),
            timeout: Duration::from_secs(self.flags.verify_timeout),
        };
        let pool = if self.flags.skip_probe {
            String::new()
        } else {
            format!("pool {} to answer and ", topology.active_pool().name)
        };
        println!(
            "Waiting up to {} s for {pool}every authoritative server to serve the change...",
            self.flags.verify_timeout
        );
        let verification = verify::verify(&request, &self.env.clock);
        print_verification(&verification, topology);
        let seen = seen::when_seen(plan, &verification.propagation, verification.started_at);
        if let Some(seen) = &seen {
            println!("When the world sees it: {}.", seen.text());
        }
        if let Err(e) = self.write_summary(topology, &verification, seen.as_ref()) {
            eprintln!("warning: {e}");
        }
        // Once the services run, the certificate is checked again on the XMPP port itself.
        let certificate = (verification.passed() && !self.flags.skip_probe)
            .then(|| super::certificates::recheck(topology, request.probe_timeout))
            .flatten();
        if let Some(problem) = certificate {
            println!("NOT verified: DNS is left changed; see below what to check.");
            return (exit::NOT_PROPAGATED, VerifyStep::Failed(vec![problem]));
        }
        if verification.passed() {
            let dns_only = if self.flags.skip_probe {
                " (DNS only: --skip-probe)"
            } else {
                ""
            };
            println!("Verified{dns_only}.");
            (exit::OK, VerifyStep::Passed)
        } else {
            println!("NOT verified: DNS is left changed; see below what to check.");
            (
                exit::NOT_PROPAGATED,
                VerifyStep::Failed(verification.problems()),
            )
        }
    }
}

fn print_verification(verification: &Verification, topology: &Topology) {
    let port = topology.srv.port;
    match &verification.probes {
        None => println!("Port {port} probe: skipped (--skip-probe): XMPP is not verified."),
        Some(results) => {
            println!("Port {port} of pool {}:", topology.active_pool().name);
            print!("{}", failover::report::probes(results));
        }
    }
    if let Some(note) = &verification.authority_note {
        println!("Note: {}.", printable(note));
    }
    if !verification.propagation.is_empty() {
        println!("Propagation:");
        print!(
            "{}",
            failover::report::propagation(&verification.propagation)
        );
    }
}

/// Waits for Enter on the terminal; `Err` when the admin types q (or input ends).
fn wait_for_admin(prompt: &str) -> Result<(), ()> {
    print!("{prompt}: ");
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    match std::io::stdin().read_line(&mut answer) {
        Ok(0) | Err(_) => Err(()),
        Ok(_) if answer.trim().eq_ignore_ascii_case("q") => Err(()),
        Ok(_) => Ok(()),
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
