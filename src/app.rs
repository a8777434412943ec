//! The commands as library calls: load, plan, check, apply, read back. No printing here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::audit::{self, AuditError};
use crate::dns::authority;
use crate::dns::batch::BatchSettings;
use crate::error::Error;
use crate::journal::{self, Journal};
use crate::plan::{self, safety, Change, Drift, Plan, PlanFile, ZoneState};
use crate::provider::{self, Applied, Environment, Provider, ProviderError};
use crate::records::{Fqdn, RrKey};
use crate::topology::{ProviderConfig, Topology};

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads and validates a topology, and logs what it allows but warns about (validation itself
/// does not log: the topology is a low layer).
/// The provider's TSIG keys are loaded too: a missing key file is an error here, before any
/// probe or plan.
pub fn load_topology(path: &Path) -> Result<Topology, Error> {
    let topology = load_topology_to_read(path)?;
    if let ProviderConfig::Rfc2136(config) = &topology.provider {
        crate::provider::rfc2136::check_keys(config).map_err(ProviderError::from)?;
    }
    Ok(topology)
}

/// `load_topology` for commands that only read DNS (audit): no provider keys needed.
fn load_topology_to_read(path: &Path) -> Result<Topology, Error> {
    let topology = Topology::load(path)?;
    for warning in topology.warnings() {
        tracing::warn!("{warning}");
    }
    Ok(topology)
}

/// Reads the managed keys of every zone of the desired state.
pub fn read_current(
    provider: &mut dyn Provider,
    desired: &plan::DesiredState,
) -> Result<BTreeMap<Fqdn, ZoneState>, Error> {
    let mut current = BTreeMap::new();
    for (zone, want) in &desired.zones {
        current.insert(zone.clone(), provider.read(zone, &want.keys_to_read())?);
    }
    Ok(current)
}

/// Computes the plan of a topology against its provider; refuses (exit 3) when a name that
/// must hold records is a CNAME, which no apply could fix.
pub fn plan(topology: &Topology, provider: &mut dyn Provider) -> Result<Plan, Error> {
    let desired = plan::desired(topology);
    let current = read_current(provider, &desired)?;
    let conflicts = plan::cname_conflicts(&desired, &current);
    if !conflicts.is_empty() {
        return Err(Error::CnameConflict { conflicts });
    }
    Ok(Plan::compute(&desired, current))
}

/// The saved-plan document for a plan of `topology`.
pub fn plan_file(plan: &Plan, topology: &Topology, provider_kind: &str) -> PlanFile {
    let path = std::fs::canonicalize(&topology.path).unwrap_or_else(|_| topology.path.clone());
    PlanFile::new(plan, path.display().to_string(), provider_kind)
}

/// What `apply` was given.
enum Source {
    Topology,
    SavedPlan,
}

/// An apply that has been planned and checked, waiting for confirmation.
pub struct Prepared {
    pub topology: Topology,
    pub plan: Plan,
    provider: Box<dyn Provider>,
    source: Source,
    journal: Journal,
    /// The command name written to the journal.
    command: &'static str,
    failover: Option<journal::Failover>,
    clock: crate::clock::Clock,
    /// The topology, journal and zone files, held until the report of `execute` is dropped.
    locks: crate::lock::Locks,
}

impl Prepared {
    pub fn provider_kind(&self) -> &'static str {
        self.provider.kind()
    }

    pub fn journal_path(&self) -> &Path {
        self.journal.path()
    }

    /// The provider, for reads after the apply (e.g. a failover's propagation baseline).
    pub fn provider_mut(&mut self) -> &mut dyn Provider {
        self.provider.as_mut()
    }

    /// Keeps this command's file locks until the process exits, whatever happens to this
    /// value (the CLI: a move rewrites the topology after `execute` has returned).
    pub fn keep_locks_until_exit(&mut self) {
        std::mem::take(&mut self.locks).keep_until_exit();
    }

    /// Adds locks taken before this was prepared.
    pub fn hold(&mut self, locks: crate::lock::Locks) {
        self.locks.absorb(locks);
    }
}

/// How long a command waits for another one to release a file it needs: 5 s, or
/// `XMPPDNS_LOCK_WAIT_MS` milliseconds.
fn lock_wait() -> std::time::Duration {
    let ms = std::env::var("XMPPDNS_LOCK_WAIT_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(5_000);
    std::time::Duration::from_millis(ms)
}

/// Locks `paths` for the rest of this command (this process), waiting briefly for another
/// command to finish, then refusing with its pid, user@host, command and start time.
pub fn lock_files(
    paths: &[PathBuf],
    command: &str,
    env: &Environment,
) -> Result<crate::lock::Locks, Error> {
    let holder = crate::lock::Holder {
        pid: std::process::id(),
        who: journal::current_user(),
        command: command.to_string(),
        since: crate::clock::rfc3339((env.clock)()),
    };
    Ok(crate::lock::hold(paths, &holder, lock_wait())?)
}

/// The files a changing command must hold: the topology, the journal and (zone-file provider)
/// every zone file.
pub fn command_files(
    topology_path: &Path,
    journal: Option<&Path>,
    topology: Option<&Topology>,
) -> Vec<PathBuf> {
    let mut paths = vec![
        topology_path.to_path_buf(),
        journal
            .map(Path::to_path_buf)
            .unwrap_or_else(|| journal::default_path(topology_path)),
    ];
    if let Some(crate::topology::ProviderConfig::ZoneFile { files }) = topology.map(|t| &t.provider)
    {
        paths.extend(files.values().cloned());
    }
    paths
}

/// The journal `path`, or the topology's default one, opened for appending.
pub fn open_journal(path: Option<&Path>, topology: &Topology) -> Result<Journal, Error> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| journal::default_path(&topology.path));
    warn_interrupted(&path);
    Ok(Journal::open(&path)?)
}

/// Wraps a computed plan for `execute`: checks it (unsafe plans need `force`) and opens the
/// journal before anything is applied.
#[allow(clippy::too_many_arguments)]
pub fn prepare_plan(
    topology: Topology,
    plan: Plan,
    provider: Box<dyn Provider>,
    env: &Environment,
    force: bool,
    journal: Option<&Path>,
    command: &'static str,
    failover: Option<journal::Failover>,
) -> Result<Prepared, Error> {
    if !force {
        let hazards = safety::check(&plan.changes, &topology);
        if !hazards.is_empty() {
            return Err(Error::Unsafe { hazards });
        }
    }
    let journal = open_journal(journal, &topology)?;
    Ok(Prepared {
        topology,
        plan,
        provider,
        source: Source::Topology,
        journal,
        command,
        failover,
        clock: env.clock.clone(),
        locks: crate::lock::Locks::default(),
    })
}

/// Loads `path` (a topology or a saved plan), reads the provider, and checks the plan:
/// a saved plan must match what the provider holds now; unsafe plans need `force`.
pub fn prepare_apply(
    path: &Path,
    env: &Environment,
    force: bool,
    journal: Option<&Path>,
) -> Result<Prepared, Error> {
    let text = read_text(path)?;
    let mut locks = crate::lock::Locks::default();
    let (topology, plan, provider, source) = if plan::is_plan_file(&text) {
        let (file, saved) = PlanFile::parse(&text, &path.display().to_string())?;
        let topology_path = PathBuf::from(&file.topology);
        locks.absorb(lock_files(
            &command_files(&topology_path, journal, None),
            "apply",
            env,
        )?);
        let topology = load_topology(&topology_path)?;
        let all = command_files(&topology_path, journal, Some(&topology));
        locks.absorb(lock_files(&all, "apply", env)?);
        let observed: std::collections::BTreeSet<(&Fqdn, RrKey)> = saved
            .observed
            .iter()
            .flat_map(|o| o.keys().into_iter().map(move |k| (&o.zone, k)))
            .collect();
        check_sound(
            &path.display().to_string(),
            &saved.changes,
            &topology,
            |c| {
                (!observed.contains(&(&c.zone, c.key())))
                    .then(|| "the plan's recorded state does not cover it".to_string())
            },
        )?;
        let mut provider = provider::open(&topology, env)?;
        let mut drift = Vec::new();
        for observed in &saved.observed {
            let now = provider.read(&observed.zone, &observed.keys())?;
            drift.extend(plan::drift(observed, &now));
        }
        if !drift.is_empty() {
            return Err(Error::StalePlan { drift });
        }
        (topology, saved, provider, Source::SavedPlan)
    } else {
        locks.absorb(lock_files(
            &command_files(path, journal, None),
            "apply",
            env,
        )?);
        // Read again under the lock: a command that held it may have rewritten the file.
        let topology = Topology::from_json(&read_text(path)?, path)?;
        let all = command_files(path, journal, Some(&topology));
        locks.absorb(lock_files(&all, "apply", env)?);

        let mut provider = provider::open(&topology, env)?;
        let plan = self::plan(&topology, provider.as_mut())?;
        (topology, plan, provider, Source::Topology)
    };
    let mut prepared = prepare_plan(topology, plan, provider, env, force, journal, "apply", None)?;
    prepared.source = source;
    prepared.hold(locks);
    Ok(prepared)
}

/// Refuses changes read from a file unless each is sound ([`plan::unsound_change`], plus the
/// caller's own `extra` check), naming every problem at once.
fn check_sound(
    origin: &str,
    changes: &[Change],
    topology: &Topology,
    extra: impl Fn(&Change) -> Option<String>,
) -> Result<(), Error> {
    let desired = plan::desired(topology);
    let problems: Vec<String> = changes
        .iter()
        .filter_map(|c| {
            let problem = plan::unsound_change(c, &desired).or_else(|| extra(c))?;
            Some(format!("{} {}: {problem}", c.action.as_str(), c.key()))
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::UnsoundChanges {
        origin: origin.to_string(),
        problems,
    })
}

/// What an apply did.
pub struct ApplyReport {
    pub applied: Vec<Applied>,
    /// Problems that did not stop the apply (a journal line that could not be written).
    pub warnings: Vec<String>,
    /// The provider, for reads after the apply.
    pub provider: Box<dyn Provider>,
    /// The command's file locks, released when this report is dropped.
    pub locks: crate::lock::Locks,
}

/// Applies a prepared plan zone by zone, journaling each, then reads back: a topology must now
/// plan empty, a saved plan's RRsets must read back as planned.
///
/// The zone holding the federation record goes last, so that when SIP domains live in other
/// zones their SRV records move before the A record does.
pub fn execute(mut prepared: Prepared) -> Result<ApplyReport, Error> {
    let federation_zone = &prepared.topology.federation.zone;
    let mut groups: Vec<(Fqdn, Vec<Change>)> = prepared
        .plan
        .by_zone()
        .into_iter()
        .map(|(zone, changes)| (zone.clone(), changes.into_iter().cloned().collect()))
        .collect();
    groups.sort_by_key(|(zone, _)| zone == federation_zone);
    let zones: Vec<Fqdn> = groups.iter().map(|(zone, _)| zone.clone()).collect();
    let mut applied = Vec::new();
    let mut warnings = Vec::new();
    for (i, (zone, changes)) in groups.into_iter().enumerate() {
        let zone = &zone;
        let result = match apply_journaled(&mut prepared, zone, changes, &mut warnings) {
            Ok(result) => result,
            // Nothing was sent for this zone, and no earlier zone was applied.
            Err(e) if i == 0 => return Err(e.into()),
            Err(e) => Err(ProviderError::Transport(Box::new(e))),
        };
        match result {
            Ok(done) => applied.push(done),
            // The first zone failed: nothing was applied, and its own error says why (a
            // refusal as stale still exits 3).
            Err(source) if i == 0 => return Err(Error::Provider(source)),
            Err(source) => {
                return Err(Error::PartlyApplied {
                    done: zones[..i].to_vec(),
                    zone: zone.clone(),
                    source: Box::new(source),
                    pending: zones[i + 1..].to_vec(),
                })
            }
        }
    }

    // A read path through a secondary (`transfer_server`) can lag the update for a moment:
    // read back a few times, bounded, before calling the result not converged.
    let mut remaining = read_back(&mut prepared)?;
    for pause_ms in [100, 200, 400, 800] {
        if remaining.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        remaining = read_back(&mut prepared)?;
    }
    if !remaining.is_empty() {
        return Err(Error::NotConverged { remaining });
    }
    Ok(ApplyReport {
        applied,
        warnings,
        provider: prepared.provider,
        locks: prepared.locks,
    })
}

/// Applies one zone between its journal intent (written first: a crash during the apply
/// still leaves a record of what may have landed) and its outcome. Only a failure to write
/// the intent stops it, before anything is sent.
fn apply_journaled(
    prepared: &mut Prepared,
    zone: &Fqdn,
    changes: Vec<Change>,
    warnings: &mut Vec<String>,
) -> Result<Result<Applied, ProviderError>, journal::JournalError> {
    let (command, kind) = (prepared.command, prepared.provider.kind());
    let failover = prepared.failover.clone();
    let now = (prepared.clock)();
    let id =
        prepared
            .journal
            .intend(command, kind, zone, failover.clone(), changes.clone(), now)?;
    crate::failpoint::hit("journal-intent", || format!("entry {id} zone {zone}"));
    let result = prepared.provider.apply(zone, &changes);
    crate::failpoint::hit("zone-applied", || format!("entry {id} zone {zone}"));
    let answer = match &result {
        Ok(done) => done.detail.clone(),
        Err(e) => e.to_string(),
    };
    let now = (prepared.clock)();
    if let Err(e) = prepared.journal.outcome(
        id,
        command,
        kind,
        zone,
        result.is_ok(),
        answer,
        failover,
        changes,
        now,
    ) {
        tracing::warn!("{e}");
        warnings.push(e.to_string());
    }
    crate::failpoint::hit("journal-outcome", || format!("entry {id} zone {zone}"));
    Ok(result)
}

/// Warns (once per command) about the applies of the journal's last run that never recorded
/// their outcome: that run was interrupted, and any of those changes may have landed.
pub fn warn_interrupted(journal_path: &Path) {
    let Ok(entries) = journal::shared_entries(journal_path) else {
        return;
    };
    let Some(last_run) = entries.last().map(|e| e.run.clone()) else {
        return;
    };
    let interrupted: Vec<String> = entries
        .iter()
        .filter(|e| e.run == last_run && e.interrupted())
        .map(|e| format!("{} (zone {}, {} at {})", e.id, e.zone, e.command, e.time))
        .collect();
    if !interrupted.is_empty() {
        tracing::warn!(
            "the last run recorded in {} was interrupted: journal entr{} {} never recorded an outcome, so some of those changes may have landed; planning reads DNS, so a new plan holds only what is still missing, and `xmppdns rollback` restores exactly what it finds written",
            journal_path.display(),
            if interrupted.len() == 1 { "y" } else { "ies" },
            interrupted.join(", ")
        );
    }
}

/// What still differs from the plan after applying: for a topology, what it plans now; for a
/// saved plan, each changed RRset against what the plan installs.
fn read_back(prepared: &mut Prepared) -> Result<Vec<Drift>, Error> {
    Ok(match prepared.source {
        Source::Topology => plan(&prepared.topology, prepared.provider.as_mut())?
            .changes
            .iter()
            .map(|c| Drift {
                key: c.key(),
                expected: c.after.clone(),
                found: c.before.clone(),
            })
            .collect(),
        Source::SavedPlan => {
            let mut remaining = Vec::new();
            for (zone, changes) in prepared.plan.by_zone() {
                let keys: std::collections::BTreeSet<RrKey> =
                    changes.iter().map(|c| c.key()).collect();
                let now = prepared.provider.read(zone, &keys)?;
                for change in changes {
                    let found = now.rrsets.get(&change.key());
                    if !plan::holds(found, change.after.as_ref()) {
                        remaining.push(Drift {
                            key: change.key(),
                            expected: change.after.clone(),
                            found: found.cloned(),
                        });
                    }
                }
            }
            remaining
        }
    })
}

/// What rolling back one journal entry needs.
pub enum RollbackStep {
    /// DNS already holds the entry's "before" RRsets.
    AlreadyRestored { entry: u64 },
    /// The inverse changes, ready to apply.
    Ready { entry: u64, prepared: Box<Prepared> },
}

/// Plans the rollback of journal entry `id` (or of every entry of the last command), newest
/// entry first. Each change is restored only where DNS still holds what it wrote: the inverse
/// changes carry its "after" RRsets as their compare-and-swap guard, and a third value found
/// now is refused (exit 3) before anything is sent.
pub fn prepare_rollback(
    topology_path: &Path,
    id: Option<u64>,
    journal_path: Option<&Path>,
    env: &Environment,
    force: bool,
) -> Result<Vec<RollbackStep>, Error> {
    let first = command_files(topology_path, journal_path, None);
    let _held = lock_files(&first, "rollback", env)?;
    let topology = load_topology(topology_path)?;
    let all = command_files(topology_path, journal_path, Some(&topology));
    let _held_all = lock_files(&all, "rollback", env)?;
    let entries = open_journal(journal_path, &topology)?.rollback_targets(id)?;
    let mut steps = Vec::new();
    for entry in &entries {
        let origin = format!("journal entry {}", entry.id);
        check_sound(&origin, &entry.changes, &topology, |c| {
            (c.zone != entry.zone).then(|| format!("it is filed under zone {}", entry.zone))
        })?;
    }
    for entry in entries {
        let mut provider = provider::open(&topology, env)?;
        let keys: std::collections::BTreeSet<RrKey> =
            entry.changes.iter().map(Change::key).collect();
        let now = provider.read(&entry.zone, &keys)?;
        let to_restore = still_written(&entry, &now)?;
        if to_restore.is_empty() {
            steps.push(RollbackStep::AlreadyRestored { entry: entry.id });
            continue;
        }
        let changes = to_restore.into_iter().map(inverse).collect();
        let plan = Plan {
            changes,
            observed: Vec::new(),
        };
        let mut prepared = prepare_plan(
            topology.clone(),
            plan,
            provider,
            env,
            force,
            journal_path,
            "rollback",
            None,
        )?;
        // The topology may say otherwise now (e.g. after rolling back a failover): read back
        // the restored RRsets only.
        prepared.source = Source::SavedPlan;
        prepared.hold(lock_files(&all, "rollback", env)?);
        steps.push(RollbackStep::Ready {
            entry: entry.id,
            prepared: Box::new(prepared),
        });
    }
    Ok(steps)
}

/// The changes of a journal entry that DNS (`now`) still holds as the entry wrote them, to be
/// restored. Change by change: what is already back is skipped, and anything holding a third
/// value (someone else's change) refuses the whole entry. A failed entry may have landed only
/// some of its changes; this restores exactly those.
fn still_written<'e>(entry: &'e journal::Entry, now: &ZoneState) -> Result<Vec<&'e Change>, Error> {
    let holds = |want: &Option<crate::records::RecordSet>, key: &RrKey| {
        plan::holds(now.rrsets.get(key), want.as_ref())
    };
    let mut to_restore = Vec::new();
    let mut drift = Vec::new();
    for c in &entry.changes {
        let key = c.key();
        if holds(&c.before, &key) {
            continue;
        }
        if holds(&c.after, &key) {
            to_restore.push(c);
        } else {
            drift.push(Drift {
                key: key.clone(),
                expected: c.after.clone(),
                found: now.rrsets.get(&key).cloned(),
            });
        }
    }
    if !drift.is_empty() {
        return Err(Error::StaleRollback {
            entry: entry.id,
            drift,
        });
    }
    Ok(to_restore)
}

/// The change that undoes `c`, guarded by what `c` wrote.
fn inverse(c: &Change) -> Change {
    Change {
        zone: c.zone.clone(),
        action: match (&c.after, &c.before) {
            (None, _) => plan::Action::Create,
            (Some(_), None) => plan::Action::Delete,
            (Some(_), Some(_)) => plan::Action::Update,
        },
        name: c.name.clone(),
        rtype: c.rtype,
        before: c.after.clone(),
        after: c.before.clone(),
    }
}

/// How long one port 5269 probe may take to connect, and then to answer.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What `audit` was asked for, as written on the command line.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub topology: Option<PathBuf>,
    pub domains: Vec<String>,
    pub nameservers: Vec<String>,
    pub probe: bool,
    pub settings: BatchSettings,
    /// `--ca` and `--cert-warn-days`: how certificates are judged (with `probe`).
    pub tls: audit::tls::TlsOptions,
}

fn parse_domains(texts: &[String]) -> Result<Vec<Fqdn>, Error> {
    texts
        .iter()
        .map(|text| {
            Fqdn::parse(text).map_err(|e| {
                Error::Audit(AuditError::BadDomain {
                    text: text.clone(),
                    reason: e.to_string(),
                })
            })
        })
        .collect()
}

/// `--nameserver` addresses, or discovery through the first resolver of /etc/resolv.conf.
fn audit_servers(nameservers: &[String]) -> Result<audit::Servers, Error> {
    if nameservers.is_empty() {
        let resolver = *authority::system_resolvers()
            .first()
            .ok_or(AuditError::NoResolver)?;
        return Ok(audit::Servers::Discover { resolver, port: 53 });
    }
    let servers = nameservers
        .iter()
        .map(|t| audit::parse_server(t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(audit::Servers::Given(servers))
}

/// Runs an audit: reads DNS, checks the rules, optionally probes port 5269 of every target.
pub fn audit(
    request: &AuditRequest,
    progress: &mut dyn FnMut(audit::Progress),
) -> Result<audit::Report, Error> {
    let topology = request
        .topology
        .as_deref()
        .map(load_topology_to_read)
        .transpose()?;
    audit_with(topology.as_ref(), request, progress)
}

/// `audit` with the topology already loaded (`request.topology` is not read again): the
/// monitor's cycles, which should not log the topology's warnings every time.
pub fn audit_with(
    topology: Option<&Topology>,
    request: &AuditRequest,
    progress: &mut dyn FnMut(audit::Progress),
) -> Result<audit::Report, Error> {
    // The topology's `nameservers` when none is given, as failover does: a user who listed
    // the servers expects them to be asked, not the system resolver.
    let servers = match (topology, request.nameservers.is_empty()) {
        (Some(t), true) if !t.nameservers.is_empty() => {
            audit::Servers::Given(t.nameservers.clone())
        }
        _ => audit_servers(&request.nameservers)?,
    };
    let options = audit::Options {
        domains: parse_domains(&request.domains)?,
        servers,
        topology,
        settings: request.settings,
        probe: request.probe.then_some(PROBE_TIMEOUT),
    };
    let (report, snapshot) = audit::run_with_tls(&options, &request.tls, progress)?;
    // Freeing every answer of a large audit (hundreds of thousands of small allocations)
    // took longer than checking them; the caller only needs the report, so the memory is
    // freed on another thread while the report is printed. (If no thread can be started,
    // the closure, and the snapshot with it, is dropped here: `spawn` would panic instead.)
    let _ = std::thread::Builder::new().spawn(move || drop(snapshot));
    Ok(report)
}

/// What `init --from-dns` was asked for, as written on the command line.
#[derive(Debug, Clone, Default)]
pub struct InitRequest {
    pub domains: Vec<String>,
    pub nameservers: Vec<String>,
    pub federation: Option<String>,
    pub settings: BatchSettings,
}

/// Infers a starting topology from DNS (`init --from-dns`).
pub fn init_from_dns(
    request: &InitRequest,
    progress: &mut dyn FnMut(audit::Progress),
) -> Result<audit::init::Inferred, Error> {
    let federation = match &request.federation {
        Some(text) => Some(parse_domains(std::slice::from_ref(text))?.remove(0)),
        None => None,
    };
    let options = audit::init::InitOptions {
        domains: parse_domains(&request.domains)?,
        servers: audit_servers(&request.nameservers)?,
        federation,
        settings: request.settings,
    };
    Ok(audit::init::from_dns(&options, progress)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderError;
    use std::sync::{Arc, Mutex};

    /// A store that holds nothing, records the zones it is asked to change, and refuses the
    /// `fail_at`-th apply (0 = the first) as stale.
    struct Refusing {
        fail_at: usize,
        attempted: Arc<Mutex<Vec<Fqdn>>>,
    }

    impl Provider for Refusing {
        fn kind(&self) -> &'static str {
            "test"
        }

        fn read(
            &mut self,
            _zone: &Fqdn,
            _keys: &std::collections::BTreeSet<RrKey>,
        ) -> Result<ZoneState, ProviderError> {
            Ok(ZoneState::default())
        }

        fn apply(&mut self, zone: &Fqdn, changes: &[Change]) -> Result<Applied, ProviderError> {
            let mut attempted = self.attempted.lock().unwrap();
            attempted.push(zone.clone());
            if attempted.len() - 1 == self.fail_at {
                return Err(ProviderError::Stale {
                    zone: zone.clone(),
                    drift: Vec::new(),
                });
            }
            Ok(Applied {
                zone: zone.clone(),
                changes: changes.len(),
                detail: "ok".into(),
            })
        }
    }

    /// Executes the fixture's plan (two zones, fabrikam.com first: the federation's zone
    /// goes last) against a store that refuses the `fail_at`-th zone.
    fn execute_failing_at(fail_at: usize) -> (Error, Vec<Fqdn>) {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/contoso.json");
        let topology = Topology::load(&fixture).unwrap();
        let plan = Plan::compute(&plan::desired(&topology), BTreeMap::new());
        let attempted = Arc::new(Mutex::new(Vec::new()));
        let provider = Box::new(Refusing {
            fail_at,
            attempted: attempted.clone(),
        });
        let journal = dir.path().join("j.jsonl");
        let env = Environment::system();
        let prepared = prepare_plan(
            topology,
            plan,
            provider,
            &env,
            true,
            Some(&journal),
            "apply",
            None,
        )
        .unwrap();
        let error = execute(prepared)
            .err()
            .expect("the refusal stops the apply");
        let attempted = attempted.lock().unwrap().clone();
        (error, attempted)
    }

    #[test]
    fn a_refused_first_zone_is_its_own_error_not_a_partial_apply() {
        let (error, attempted) = execute_failing_at(0);
        let fabrikam = Fqdn::parse("fabrikam.com").unwrap();
        assert_eq!(attempted, [fabrikam], "the other zone is not attempted");
        assert!(
            matches!(&error, Error::Provider(e) if e.is_stale()),
            "{error:?}"
        );
        assert_eq!(error.exit_code(), crate::error::exit::REFUSED);
        assert!(!error.to_string().contains("applied to"), "{error}");
    }

    #[test]
    fn a_refused_later_zone_says_what_was_applied_before_it() {
        let (error, attempted) = execute_failing_at(1);
        assert_eq!(attempted.len(), 2);
        match &error {
            Error::PartlyApplied {
                done,
                zone,
                pending,
                ..
            } => {
                assert_eq!(done, &[Fqdn::parse("fabrikam.com").unwrap()]);
                assert_eq!(zone, &Fqdn::parse("contoso.com").unwrap());
                assert!(pending.is_empty());
            }
            other => panic!("expected PartlyApplied, got {other:?}"),
        }
        assert_eq!(error.exit_code(), crate::error::exit::REFUSED);
    }
}
