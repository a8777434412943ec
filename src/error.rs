//! The library's error type and the exit codes the CLI maps it to.

use std::path::PathBuf;

use crate::plan::safety::Hazard;
use crate::plan::{Drift, PlanFileError};
use crate::provider::{describe_drift, ProviderError};
use crate::records::Fqdn;
use crate::topology::TopologyError;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES_PENDING: u8 = 2;
    pub const REFUSED: u8 = 3;
    /// The audit found at least one error-level problem.
    pub const AUDIT_ERRORS: u8 = 4;
    /// Applied, but not every authoritative server served the change within the time limit.
    pub const NOT_PROPAGATED: u8 = 5;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    PlanFile(#[from] PlanFileError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A TSIG key that cannot be made (`keygen`: unknown or refused algorithm, bad name).
    #[error("TSIG key: {0}")]
    Key(#[from] crate::dns::tsig::TsigError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// Another command holds a file this one needs.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the saved plan is stale: {} managed RRset(s) changed since it was computed; nothing was applied. Run `xmppdns plan` again.\n{}", drift.len(), describe_drift(drift))]
    StalePlan { drift: Vec<Drift> },
    #[error("{origin}: {} change(s) cannot be trusted as guarded changes; nothing was applied:\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    UnsoundChanges {
        /// Where the changes came from: the saved plan's path, or the journal entry.
        origin: String,
        problems: Vec<String>,
    },
    #[error("refusing an unsafe plan (use --force if this is really intended):\n{}", hazards.iter().map(|h| format!("  - {}: {}", h.name, h.message)).collect::<Vec<_>>().join("\n"))]
    Unsafe { hazards: Vec<Hazard> },
    #[error("unknown pool `{name}`; the pools are: {}", known.join(", "))]
    UnknownPool { name: String, known: Vec<String> },
    #[error("refusing to fail over: no address of pool {pool} answered as XMPP (without a stream error) on port {port}, and --require-live asks for one before DNS changes (use --force to go on anyway, or leave out --require-live when the pool's services are stopped, as the procedure does):\n{}", results.iter().map(|(a, d)| format!("  - {a}: {d}")).collect::<Vec<_>>().join("\n"))]
    ProbeFailed {
        pool: String,
        port: u16,
        results: Vec<(std::net::SocketAddr, String)>,
    },
    /// A move changed DNS but never finished; applying the topology as it is would revert it.
    #[error("a {command} {from} -> {to} is pending (journal entries {}: it changed DNS, but the topology still names {from}); applying the topology now would revert it. Complete the move with `xmppdns {command} ...` (it converges), or undo it with `xmppdns rollback`; --force applies anyway", entries.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))]
    MovePending {
        command: String,
        from: String,
        to: String,
        entries: Vec<u64>,
    },
    /// `--stage verify` before the DNS stage moved federation.
    #[error("nothing to verify yet: the topology's active pool is {active}, not {to}; run the DNS stage first (`--stage dns`){}", if *pending { format!(" (a move to {to} is pending: the DNS stage did not finish; run it again)") } else { String::new() })]
    NotMovedYet {
        active: String,
        to: String,
        pending: bool,
    },
    #[error("no failover is recorded in the journal {}; use `xmppdns failover --to POOL`", journal.display())]
    NoFailoverRecorded { journal: PathBuf },
    #[error("cannot roll back journal entry {entry}: {} RRset(s) no longer hold what it wrote; nothing was changed.\n{}", drift.len(), describe_drift(drift))]
    StaleRollback { entry: u64, drift: Vec<Drift> },
    #[error("{name}: {message}")]
    Argument { name: String, message: String },
    #[error("cannot rewrite the topology {}: {message}", path.display())]
    TopologyRewrite { path: PathBuf, message: String },
    #[error("not applied: {0}")]
    NotConfirmed(String),
    /// Some zones were applied before `zone` failed. (When the first zone fails nothing was
    /// applied, and its own error is returned instead.)
    #[error("applied to {}; zone {zone} failed: {source}{}\nRe-running the same command converges: zones already done show no changes.",
        list(done),
        if pending.is_empty() { String::new() } else { format!("\nnot attempted: {}", list(pending)) })]
    PartlyApplied {
        done: Vec<Fqdn>,
        zone: Fqdn,
        source: Box<ProviderError>,
        pending: Vec<Fqdn>,
    },
    #[error("applied, but reading back shows {} RRset(s) not as planned (another writer?):\n{}", remaining.len(), describe_drift(remaining))]
    NotConverged { remaining: Vec<Drift> },
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("refusing to plan: {} name(s) that must hold records are aliases (CNAME), and a name with a CNAME holds nothing else (RFC 1034 §3.6.2); a server would ignore or refuse the update:\n{}\nFix: remove the CNAME, or stop managing records at that name: for a pool behind a load balancer, set the pool's `fqdn` to the CNAME's target (SRV targets must not be aliases, RFC 2782) or `manage_target_addresses` to false; for the federation record, choose another `federation.name`.", conflicts.len(), conflicts.iter().map(describe_conflict).collect::<Vec<_>>().join("\n"))]
    CnameConflict {
        conflicts: Vec<crate::plan::CnameConflict>,
    },
    /// The failover gate (#14): the new pool's certificate does not cover every SIP domain,
    /// is not valid now, or could not be seen.
    #[error("refusing to fail over: the certificate of pool {} is not ready (use --force to go on anyway):\n{}", .0.pool, certificate_problems(.0))]
    CertificateNotReady(Box<crate::audit::tls::PoolCertificate>),
}

fn describe_conflict(conflict: &crate::plan::CnameConflict) -> String {
    let wanted: Vec<String> = conflict.wanted.iter().map(ToString::to_string).collect();
    format!(
        "  - {} (zone {}) is a CNAME to {}, but the topology needs {} records there",
        conflict.name,
        conflict.zone,
        conflict.target,
        wanted.join(" and ")
    )
}

fn certificate_problems(found: &crate::audit::tls::PoolCertificate) -> String {
    let lines: Vec<String> = found
        .problems()
        .iter()
        .map(|p| format!("  - {p}"))
        .collect();
    lines.join("\n")
}

fn list(zones: &[Fqdn]) -> String {
    zones
        .iter()
        .map(Fqdn::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// 3 when the tool refused on purpose (unsafe or stale plan), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::StalePlan { .. }
            | Error::StaleRollback { .. }
            | Error::Unsafe { .. }
            | Error::ProbeFailed { .. }
            | Error::MovePending { .. }
            | Error::CnameConflict { .. }
            | Error::CertificateNotReady(_) => exit::REFUSED,
            Error::Provider(e) if e.is_stale() => exit::REFUSED,
            Error::PartlyApplied { source, .. } if source.is_stale() => exit::REFUSED,
            _ => exit::ERROR,
        }
    }
}
