//! The disaster-recovery drill: audit, probe, optionally drain, fail over, verify, hold while
//! probing the new pool, fail back, verify again; every step timed, and a report (JSON, and a
//! self-contained HTML page) of what happened.
//!
//! The drill is a layer above `failover`: it runs the same library steps the `failover` and
//! `failback` commands run, in the procedure's order, unattended. It stops at the first step
//! that fails, before the next change, and says where: the journal and `rollback` stay as the
//! moves left them.

pub mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::{self, AuditRequest};
use crate::error::Error;
use crate::failover::seen::{self, WhenSeen};
use crate::failover::verify::{self, Verification};
use crate::failover::{self, drain, runbook, ProbeBefore};
use crate::journal::{self, Journal};
use crate::plan::Plan;
use crate::probe::ProbeResult;
use crate::provider::{self, Environment};

/// What the drill was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub topology: PathBuf,
    pub to: String,
    pub hold: Duration,
    /// Lower the TTLs to this first (`--drain`), waiting until every server serves them.
    pub drain_ttl: Option<u32>,
    /// `--skip-probe`: no probe of the pools (DNS only).
    pub skip_probe: bool,
    pub probe_timeout: Duration,
    pub verify_timeout: Duration,
    pub nameservers: Vec<SocketAddr>,
    pub journal: Option<PathBuf>,
}

/// One step of the drill.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub number: usize,
    pub name: String,
    pub started_at: String,
    pub took_ms: u64,
    pub passed: bool,
    pub detail: String,
}

/// A probe of a pool during the drill.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub step: String,
    pub pool: String,
    pub results: Vec<ProbeResult>,
}

/// The times of a move.
#[derive(Debug, Clone, Serialize)]
pub struct MoveTimes {
    pub command: String,
    pub authoritative_at: Option<String>,
    pub world_at: Option<String>,
    pub bounded_by: String,
    pub bounding_ttl: u32,
}

/// A runbook step the admin does by hand (with a checkbox in the HTML).
#[derive(Debug, Clone, Serialize)]
pub struct ManualStep {
    pub command: String,
    pub title: String,
    pub commands: Vec<String>,
}

/// Everything the drill did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub topology: String,
    pub from: String,
    pub to: String,
    pub started_at: String,
    pub finished_at: String,
    pub passed: bool,
    /// Where the drill stopped, and the state it left, when a step failed.
    pub stopped: Option<String>,
    pub steps: Vec<Step>,
    pub times: Vec<MoveTimes>,
    pub probes: Vec<Probe>,
    /// Audit findings (errors and warnings), as `rule severity record: message`.
    pub findings: Vec<String>,
    pub manual_steps: Vec<ManualStep>,
}

/// The drill in progress.
struct Drill<'a> {
    request: &'a Request,
    env: &'a Environment,
    journal_path: PathBuf,
    report: Report,
}

/// Runs the drill; `Err` only when it cannot start (an unreadable topology, an unknown pool).
/// A failed step is in the report (`passed: false`, `stopped`).
pub fn run(request: &Request, env: &Environment) -> Result<Report, Error> {
    let topology = app::load_topology(&request.topology)?;
    if topology.pool_index(&request.to).is_none() {
        return Err(Error::UnknownPool {
            name: request.to.clone(),
            known: topology.pools.iter().map(|p| p.name.clone()).collect(),
        });
    }
    let now = crate::clock::rfc3339((env.clock)());
    let mut drill = Drill {
        request,
        env,
        journal_path: request
            .journal
            .clone()
            .unwrap_or_else(|| journal::default_path(&request.topology)),
        report: Report {
            format: "xmppdns-drill/1",
            topology: request.topology.display().to_string(),
            from: topology.active_pool().name.clone(),
            to: request.to.clone(),
            started_at: now.clone(),
            finished_at: now,
            passed: false,
            stopped: None,
            steps: Vec::new(),
            times: Vec::new(),
            probes: Vec::new(),
            findings: Vec::new(),
            manual_steps: Vec::new(),
        },
    };
    drill.report.passed = drill.steps();
    drill.report.finished_at = crate::clock::rfc3339((env.clock)());
    Ok(drill.report)
}

impl Drill<'_> {
    /// The eight steps in order; false at the first that fails (`stopped` says where).
    fn steps(&mut self) -> bool {
        let unchanged = "nothing was changed in DNS";
        if !self.step("audit", unchanged, Self::audit)
            || !self.step("probe the new pool", unchanged, Self::probe_new_pool)
        {
            return false;
        }
        if self.request.drain_ttl.is_some()
            && !self.step(
                "drain",
                "the TTLs may be lowered (`xmppdns settle` restores them); no pool moved",
                Self::drain,
            )
        {
            return false;
        }
        let to = self.request.to.clone();
        let back = format!(
            "DNS may have moved toward {to}: `xmppdns journal` shows what; `xmppdns rollback {}` restores it",
            self.request.topology.display()
        );
        let moved = format!(
            "federation is on {to}; the drill did not fail back: `xmppdns failback {}` when ready",
            self.request.topology.display()
        );
        self.step("failover", &back, |d| d.move_pool(Some(to.clone())))
            && self.step("verify", &moved, Self::verify_and_audit)
            && self.step("hold", &moved, Self::hold)
            && self.step("failback", &back, |d| d.move_pool(None))
            && self.step(
                "verify again",
                "federation is back on the first pool, not verified",
                Self::verify_and_audit,
            )
    }

    /// Runs one step, timing it; on failure records where the drill stopped and what state it
    /// left (`state`).
    fn step(
        &mut self,
        name: &str,
        state: &str,
        run: impl FnOnce(&mut Self) -> Result<String, String>,
    ) -> bool {
        let started_at = crate::clock::rfc3339((self.env.clock)());
        let started = Instant::now();
        let result = run(self);
        let number = self.report.steps.len() + 1;
        let passed = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        if !passed {
            self.report.stopped = Some(format!(
                "stopped at step {number} ({name}): {detail}. State: {state}."
            ));
        }
        self.report.steps.push(Step {
            number,
            name: name.to_string(),
            started_at,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            passed,
            detail,
        });
        passed
    }

    fn audit(&mut self) -> Result<String, String> {
        let topology = app::load_topology(&self.request.topology).map_err(|e| e.to_string())?;
        let mut nameservers: Vec<String> = topology
            .nameservers
            .iter()
            .chain(&self.request.nameservers)
            .map(SocketAddr::to_string)
            .collect();
        nameservers.dedup();
        let request = AuditRequest {
            topology: Some(self.request.topology.clone()),
            nameservers,
            ..AuditRequest::default()
        };
        let report = app::audit(&request, &mut |_| {}).map_err(|e| e.to_string())?;
        for name in &report.names {
            for f in name
                .findings
                .iter()
                .filter(|f| f.severity.as_str() != "info")
            {
                self.report.findings.push(format!(
                    "{} {} {}: {}",
                    f.rule,
                    f.severity.as_str(),
                    f.record,
                    f.message
                ));
            }
        }
        let summary = format!(
            "{} error(s), {} warning(s)",
            report.summary.errors, report.summary.warnings
        );
        if report.has_errors() {
            return Err(format!("the audit found {summary}"));
        }
        Ok(summary)
    }

    fn probe_new_pool(&mut self) -> Result<String, String> {
        if self.request.skip_probe {
            return Ok("skipped (--skip-probe)".into());
        }
        let topology = app::load_topology(&self.request.topology).map_err(|e| e.to_string())?;
        let index = topology
            .pool_index(&self.request.to)
            .unwrap_or(topology.active);
        let results = failover::probe_pool(&topology, index, self.request.probe_timeout);
        let ready = results.iter().filter(|r| r.is_ready()).count();
        let total = results.len();
        self.report.probes.push(Probe {
            step: "probe the new pool".into(),
            pool: self.request.to.clone(),
            results,
        });
        if ready == 0 {
            return Err(format!(
                "no address of {} answers XMPP ({total} probed)",
                self.request.to
            ));
        }
        Ok(format!("{ready} of {total} address(es) answer XMPP"))
    }

    fn drain(&mut self) -> Result<String, String> {
        let ttl = self.request.drain_ttl.unwrap_or(drain::DEFAULT_TTL);
        let state = lower_ttls(
            &self.request.topology,
            ttl,
            self.env,
            &self.journal_path,
            &self.request.nameservers,
            self.request.verify_timeout,
        )
        .map_err(|e| e.to_string())?;
        Ok(match state.complete_at() {
            Some(at) => format!(
                "every server serves TTL {ttl}; complete at {} (the drill does not wait for it)",
                crate::clock::rfc3339(at)
            ),
            None => format!("TTL {ttl} applied"),
        })
    }

    /// `Some(pool)`: failover to it; `None`: failback. Applies, records the move in the
    /// topology, and keeps the plan for verify.
    fn move_pool(&mut self, to: Option<String>) -> Result<String, String> {
        let command = if to.is_some() { "failover" } else { "failback" };
        let options = failover::Options {
            to,
            promote: true,
            probe_before: ProbeBefore::Skip,
            force: false,
            probe_timeout: self.request.probe_timeout,
            journal: Some(self.journal_path.clone()),
        };
        let prepared = failover::prepare(&self.request.topology, &options, self.env, command)
            .map_err(|e| e.to_string())?;
        self.note_manual_steps(command, &prepared);
        let (from, to) = (prepared.from.clone(), prepared.to.clone());
        let changes = prepared.apply.plan.changes.len();
        let edit = prepared.edit.clone();
        if changes > 0 {
            app::execute(prepared.apply).map_err(|e| e.to_string())?;
        }
        failover::write_topology(&self.request.topology, &edit).map_err(|e| e.to_string())?;
        Ok(format!("{from} -> {to}: {changes} RRset(s) changed"))
    }

    fn note_manual_steps(&mut self, command: &str, prepared: &failover::PreparedFailover) {
        let inputs = runbook::Inputs {
            command,
            from: &prepared.from_pool,
            to: &prepared.to_pool,
            plan: &prepared.apply.plan,
            probes: None,
            dns: runbook::DnsStep::Done,
            verify: runbook::VerifyStep::NotYet,
            srv_port: prepared.old_topology.srv.port,
            invocation: format!("xmppdns drill {}", self.request.topology.display()),
        };
        for step in runbook::steps(&inputs) {
            if step.by == runbook::Actor::Admin {
                self.report.manual_steps.push(ManualStep {
                    command: command.to_string(),
                    title: step.title,
                    commands: step.commands,
                });
            }
        }
    }

    /// Verify (pool and servers), the times, and an audit of the new state.
    fn verify_and_audit(&mut self) -> Result<String, String> {
        let topology = app::load_topology(&self.request.topology).map_err(|e| e.to_string())?;
        let pool = topology.active_pool().name.clone();
        let (command, plan) = self.last_move_plan(&pool)?;
        let request = verify::Request {
            topology: &topology,
            plan: &plan,
            nameservers: &self.request.nameservers,
            probe: !self.request.skip_probe,
            probe_timeout: self.request.probe_timeout,
            timeout: self.request.verify_timeout,
        };
        let verification = verify::verify(&request, &self.env.clock);
        self.record_times(&command, &plan, &verification);
        if let Some(results) = verification.probes.clone() {
            let step = format!("verify {pool}");
            self.report.probes.push(Probe {
                step,
                pool: pool.clone(),
                results,
            });
        }
        if !verification.passed() {
            return Err(verification.problems().join("; "));
        }
        let audit = self.audit()?;
        Ok(format!(
            "{pool} verified on {} zone/server pair(s); audit: {audit}",
            verification.propagation.len()
        ))
    }

    fn last_move_plan(&self, pool: &str) -> Result<(String, Plan), String> {
        let plan = verify::applied_plan(&self.journal_path, pool).map_err(|e| e.to_string())?;
        let command = Journal::open(&self.journal_path)
            .and_then(|j| j.entries())
            .ok()
            .and_then(|e| e.last().map(|e| e.command.clone()))
            .unwrap_or_default();
        Ok((command, plan))
    }

    fn record_times(&mut self, command: &str, plan: &Plan, verification: &Verification) {
        let seen: Option<WhenSeen> =
            seen::when_seen(plan, &verification.propagation, verification.started_at);
        if let Some(seen) = seen {
            self.report.times.push(MoveTimes {
                command: command.to_string(),
                authoritative_at: seen.authoritative_at.map(crate::clock::rfc3339),
                world_at: seen.world_at.map(crate::clock::rfc3339),
                bounded_by: seen.bounded_by,
                bounding_ttl: seen.bounding_ttl,
            });
        }
    }

    /// Probes the new pool until the hold is over (at least once); fails if it stops answering.
    fn hold(&mut self) -> Result<String, String> {
        let started = Instant::now();
        if self.request.skip_probe {
            std::thread::sleep(self.request.hold);
            return Ok(format!(
                "held {} s (no probes: --skip-probe)",
                self.request.hold.as_secs()
            ));
        }
        let topology = app::load_topology(&self.request.topology).map_err(|e| e.to_string())?;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let results =
                failover::probe_pool(&topology, topology.active, self.request.probe_timeout);
            let down: Vec<String> = results
                .iter()
                .filter(|r| !r.is_ready())
                .map(|r| format!("{}: {}", r.address, r.detail))
                .collect();
            if !down.is_empty() {
                self.report.probes.push(Probe {
                    step: "hold".into(),
                    pool: self.request.to.clone(),
                    results,
                });
                return Err(format!("the pool stopped answering: {}", down.join("; ")));
            }
            let left = self.request.hold.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_secs(5)));
        }
        Ok(format!(
            "held {} s; {rounds} probe round(s), every address answered",
            self.request.hold.as_secs()
        ))
    }
}

/// Lowers the TTLs a move touches to `ttl` (guarded, journaled as `drain`), waits until every
/// authoritative server serves them and records that moment. Returns the drain in force.
pub fn lower_ttls(
    path: &Path,
    ttl: u32,
    env: &Environment,
    journal_path: &Path,
    nameservers: &[SocketAddr],
    wait: Duration,
) -> Result<drain::DrainState, Error> {
    let topology = drain::drained(&app::load_topology(path)?, ttl);
    let mut provider = provider::open(&topology, env)?;
    let plan = app::plan(&topology, provider.as_mut())?;
    let kind = provider.kind();
    if !plan.is_empty() {
        let prepared = app::prepare_plan(
            topology.clone(),
            plan,
            provider,
            env,
            false,
            Some(journal_path),
            drain::DRAIN,
            None,
        )?;
        app::execute(prepared)?;
    }
    let authority = failover::authoritative_servers(&topology, nameservers);
    let lagging = drain::wait_for_ttl(&topology, &authority.zones, ttl, wait, &env.clock);
    if lagging.is_empty() {
        Journal::open(journal_path)?.append(
            drain::DRAIN,
            kind,
            &topology.federation.zone,
            true,
            format!("every authoritative server serves TTL {ttl}"),
            None,
            Vec::new(),
            (env.clock)(),
        )?;
    }
    drain::state(journal_path)?
        .ok_or_else(|| Error::NotConfirmed(format!("no TTL above {ttl} to drain")))
}
