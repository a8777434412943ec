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
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    PlanFile(#[from] PlanFileError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
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
    #[error("refusing an unsafe plan (use --force if this is really intended):\n{}", hazards.iter().map(|h| format!("  - {}: {}", h.name, h.message)).collect::<Vec<_>>().join("\n"))]
    Unsafe { hazards: Vec<Hazard> },
    #[error("not applied: {0}")]
    NotConfirmed(String),
    #[error("{}zone {zone} failed: {source}{}\nRe-running the same command converges: zones already done show no changes.",
        if done.is_empty() { String::new() } else { format!("applied to {}; ", list(done)) },
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
            Error::StalePlan { .. } | Error::Unsafe { .. } => exit::REFUSED,
            Error::Provider(e) if e.is_stale() => exit::REFUSED,
            Error::PartlyApplied { source, .. } if source.is_stale() => exit::REFUSED,
            _ => exit::ERROR,
        }
    }
}
