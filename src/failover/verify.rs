//! The verify stage, and the state a staged move keeps between invocations.
//!
//! Verify waits, bounded, until every address of the new pool answers XMPP on the SRV port
//! (the Edge services start only after the DNS change, so this can only pass afterwards) and
//! every authoritative server serves the change. What the DNS stage applied is read back from
//! the journal, so `--stage verify` works in a later invocation. A move whose DNS stage changed
//! something but never rewrote the topology is *pending*: `plan` and `apply` say so instead of
//! quietly reverting it, and running the move again completes it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::error::Error;
use crate::failover::propagation::{self, ServerStatus};
use crate::failover::{authoritative_servers, probe_pool};
use crate::journal::{self, Journal};
use crate::plan::Plan;
use crate::probe::{printable, ProbeResult};
use crate::topology::Topology;

/// First pause between probes of a pool that does not answer yet; doubled up to the maximum.
const FIRST_PROBE_PAUSE: Duration = Duration::from_millis(100);
const MAX_PROBE_PAUSE: Duration = Duration::from_secs(2);

/// What the verify stage is asked to check.
pub struct Request<'a> {
    /// The topology after the move: its active pool is the new one.
    pub topology: &'a Topology,
    /// What the DNS stage changed (its changed SRV RRsets are checked first).
    pub plan: &'a Plan,
    /// `--nameserver`: servers to check besides the topology's.
    pub nameservers: &'a [SocketAddr],
    /// `false` with `--skip-probe`: DNS only.
    pub probe: bool,
    pub probe_timeout: Duration,
    /// `--verify-timeout`, from the start of the stage.
    pub timeout: Duration,
}

/// What the verify stage found.
pub struct Verification {
    /// The last probe of each address of the new pool; `None` when skipped.
    pub probes: Option<Vec<ProbeResult>>,
    /// How the authoritative servers were found, when worth a word.
    pub authority_note: Option<String>,
    pub propagation: Vec<ServerStatus>,
    /// When the wait started, by the clock (seconds since 1970): `after_ms` counts from here.
    pub started_at: u64,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.problems().is_empty()
    }

    /// What did not pass, one line each, safe to print.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .probes
            .iter()
            .flatten()
            .filter(|r| !r.is_ready())
            .map(|r| {
                format!(
                    "{} does not answer XMPP: {}",
                    r.address,
                    printable(&r.detail)
                )
            })
            .collect();
        problems.extend(self.propagation.iter().filter(|s| !s.converged).map(|s| {
            format!(
                "{} does not serve the change for {}: {}",
                s.server,
                s.zone,
                printable(&s.detail)
            )
        }));
        problems
    }
}

/// Waits for the new pool to answer and for every authoritative server, side by side, under
/// one deadline.
pub fn verify(request: &Request, clock: &Clock) -> Verification {
    let started = Instant::now();
    let started_at = clock();
    let deadline = started + request.timeout;
    let authority = authoritative_servers(request.topology, request.nameservers);
    let (probes, propagation) = std::thread::scope(|scope| {
        let probes = scope.spawn(|| {
            request.probe.then(|| {
                wait_until_ready(
                    request.topology,
                    request.topology.active,
                    request.probe_timeout,
                    deadline,
                )
            })
        });
        let propagation = if authority.is_empty() {
            Vec::new()
        } else {
            let desired = crate::plan::desired(request.topology);
            let expected = propagation::expectations(&desired, request.plan);
            propagation::wait(&expected, &authority.zones, started, deadline, clock)
        };
        (
            probes.join().expect("the probe thread panicked"),
            propagation,
        )
    });
    Verification {
        probes,
        authority_note: authority.note,
        propagation,
        started_at,
    }
}

/// Probes every address of pool `index` until each answers as a ready XMPP server or the
/// deadline passes (each address is probed at least once). Returns the last result of each.
pub fn wait_until_ready(
    topology: &Topology,
    index: usize,
    probe_timeout: Duration,
    deadline: Instant,
) -> Vec<ProbeResult> {
    let mut pause = FIRST_PROBE_PAUSE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = probe_timeout.min(left).max(Duration::from_millis(200));
        let results = probe_pool(topology, index, timeout);
        let now = Instant::now();
        if results.iter().all(ProbeResult::is_ready) || now >= deadline {
            return results;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PROBE_PAUSE);
    }
}

/// A move whose DNS stage changed something but did not finish: the topology still names the
/// old pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMove {
    /// `failover` or `failback`.
    pub command: String,
    pub from: String,
    pub to: String,
    /// The journal entries of that run that applied.
    pub applied_entries: Vec<u64>,
}

/// The journal's last run, when it was a move whose pools it records, with its entries.
fn last_move(journal: &Journal) -> Result<Option<(journal::Failover, Vec<journal::Entry>)>, Error> {
    // Shared, not copied: only the last run's entries are kept.
    let entries = journal::shared_entries(journal.path())?;
    let Some(last) = entries.last() else {
        return Ok(None);
    };
    let Some(failover) = last.failover.clone() else {
        return Ok(None);
    };
    let of_run = entries
        .iter()
        .filter(|e| e.run == last.run)
        .cloned()
        .collect();
    Ok(Some((failover, of_run)))
}

/// The pending move of `topology`, if the journal's last run is a move that applied something
/// to a pool the topology does not name as active.
pub fn pending_move(
    topology: &Topology,
    journal_path: &Path,
) -> Result<Option<PendingMove>, Error> {
    if !journal_path.exists() {
        return Ok(None);
    }
    let journal = Journal::open(journal_path)?;
    let Some((failover, entries)) = last_move(&journal)? else {
        return Ok(None);
    };
    // An interrupted apply (intent without outcome) may have landed: it counts.
    let applied_entries: Vec<u64> = entries
        .iter()
        .filter(|e| e.applied || e.interrupted())
        .map(|e| e.id)
        .collect();
    let moved = topology
        .pool_index(&failover.to)
        .is_some_and(|i| i != topology.active);
    if !moved || applied_entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(PendingMove {
        command: entries[0].command.clone(),
        from: failover.from,
        to: failover.to,
        applied_entries,
    }))
}

/// What the last DNS stage of a move to `to` applied, as a plan (empty when the journal's last
/// run is not that move): the verify stage checks these RRsets first.
pub fn applied_plan(journal_path: &Path, to: &str) -> Result<Plan, Error> {
    let mut plan = Plan {
        changes: Vec::new(),
        observed: Vec::new(),
    };
    if !journal_path.exists() {
        return Ok(plan);
    }
    if let Some((failover, entries)) = last_move(&Journal::open(journal_path)?)? {
        if failover.to == to {
            plan.changes = entries
                .into_iter()
                .filter(|e| e.applied || e.interrupted())
                .flat_map(|e| e.changes)
                .collect();
        }
    }
    Ok(plan)
}
