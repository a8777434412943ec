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
    #[error("unknown pool `{name}`; the pools are: {}", known.join(", "))]
    UnknownPool { name: String, known: Vec<String> },
    #[error("refusing to fail over: no address of pool {pool} answered as XMPP (without a stream error) on port {port} (use --force to go on anyway, or --skip-probe):\n{}", results.iter().map(|(a, d)| format!("  - {a}: {d}")).collect::<Vec<_>>().join("\n"))]
    ProbeFailed {
        pool: String,
        port: u16,
        results: Vec<(std::net::SocketAddr, String)>,
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
    /// The failover gate (#14): the new pool's certificate does not cover every SIP domain,
    /// is not valid now, or could not be seen.
    #[error("refusing to fail over: the certificate of pool {} is not ready (use --force to go on anyway):\n{}", .0.pool, certificate_problems(.0))]
    CertificateNotReady(Box<crate::audit::tls::PoolCertificate>),
}

fn certificate_problems(found: &crate::audit::tls::PoolCertificate) -> String {
    let mut lines = Vec::new();
    if !found.missing.is_empty() {
        lines.push(format!(
            "  - it does not cover {}: request a certificate with these subject alternative names ({}) for the Access Edge external interface",
            found.missing.join(", "),
            found.missing.join(", ")
        ));
    }
    for why in &found.invalid {
        lines.push(format!("  - {why}: renew it before the move"));
    }
    if found.unchecked {
        lines.push("  - no address answered TLS on the XMPP port nor on the SIP TLS port (sip_tls_port, default 5061), so it could not be checked".to_string());
    }
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
            | Error::CertificateNotReady(_) => exit::REFUSED,
            Error::Provider(e) if e.is_stale() => exit::REFUSED,
            Error::PartlyApplied { source, .. } if source.is_stale() => exit::REFUSED,
            _ => exit::ERROR,
        }
    }
}
