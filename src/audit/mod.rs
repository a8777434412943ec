//! `xmppdns audit`: read what the authoritative servers really serve for the SIP domains,
//! check every rule of docs/dns-rules.md, and (with a topology) report drift from the plan.
//! `collect` asks the servers, `rules` judges the snapshot, `render` turns the report into text.

pub mod collect;
pub mod init;
pub mod nagios;
pub mod parts;
pub mod render;
pub mod rules;
pub mod tls;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dns::batch::{BatchSettings, BatchStats};
use crate::probe::{self, ProbeResult};
use crate::records::{Fqdn, RrKey};
use crate::topology::Topology;
pub use collect::{Progress, Servers, Snapshot};
pub use rules::{Finding, NameReport, ProbeOutcome, Severity, Subject};

/// The audit JSON format name; bumped on any incompatible change (documented in the README).
pub const AUDIT_FORMAT: &str = "xmppdns-audit/1";

/// Why an audit could not run at all (findings are not errors: they are the result).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("nothing to audit: give a topology or at least one --domain")]
    NoDomains,
    #[error("no resolver to find the authoritative servers with: /etc/resolv.conf lists no nameserver; give --nameserver")]
    NoResolver,
    #[error("`{text}` is not a domain name: {reason}")]
    BadDomain { text: String, reason: String },
    #[error("`{0}` is not an address (ADDR or ADDR:PORT, e.g. 192.0.2.53 or [2001:db8::53]:53)")]
    BadAddress(String),
    #[error("cannot infer a topology: {0}")]
    Init(String),
    #[error("{path} exists; not overwriting it (remove it or choose another --out)")]
    Exists { path: String },
    #[error(transparent)]
    Tls(#[from] crate::probe::tls::TlsSetupError),
}

/// Parses `ADDR` or `ADDR:PORT` (IPv6 as `[::1]:53`), port 53 by default.
pub fn parse_server(text: &str) -> Result<SocketAddr, AuditError> {
    crate::topology::server_address(text).map_err(|_| AuditError::BadAddress(text.to_string()))
}

/// What to audit and how.
pub struct Options<'a> {
    /// SIP domains besides the topology's.
    pub domains: Vec<Fqdn>,
    pub servers: Servers,
    pub topology: Option<&'a Topology>,
    pub settings: BatchSettings,
    /// Probe port 5269 (the SRV port) of every target address with this timeout (rule 9).
    pub probe: Option<Duration>,
}

/// How many findings of each severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub sip_domains: usize,
    pub errors: usize,
    pub warnings: usize,
    pub info: usize,
}

/// Query counters and wall time (left out of golden comparisons: they vary run to run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    #[serde(flatten)]
    pub queries: BatchStats,
    pub elapsed_ms: u64,
}

/// One port 5269 probe of an SRV target's address.
#[derive(Debug, Clone, Serialize)]
pub struct TargetProbe {
    /// The SRV target whose address was probed.
    pub target: Fqdn,
    /// The SIP domain named in the stream header's `to`.
    pub to: Fqdn,
    #[serde(flatten)]
    pub result: ProbeResult,
}

/// A whole audit: the `xmppdns-audit/1` JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub generator: &'static str,
    /// The topology file, when one was given.
    pub topology: Option<String>,
    pub summary: Summary,
    /// SIP domains, zones and the federation name, sorted by name.
    pub names: Vec<NameReport>,
    /// Port 5269 probes, when `--probe` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<TargetProbe>>,
    /// TLS checks of the probed addresses (rules 18-21), when `--probe` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Vec<tls::TargetTls>>,
    pub stats: Stats,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }

    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.names.iter().flat_map(|n| n.findings.iter())
    }

    /// Recounts the summary after findings were added (probes).
    pub fn recount(&mut self) {
        let mut summary = Summary {
            sip_domains: self
                .names
                .iter()
                .filter(|n| n.kind == Subject::SipDomain)
                .count(),
            ..Summary::default()
        };
        for finding in self.findings() {
            match finding.severity {
                Severity::Error => summary.errors += 1,
                Severity::Warning => summary.warnings += 1,
                Severity::Info => summary.info += 1,
            }
        }
        self.summary = summary;
    }
}

/// The domains of the audit: the topology's SIP domains, then the extra ones, each once.
fn all_domains(options: &Options<'_>) -> Vec<Fqdn> {
    let mut domains: Vec<Fqdn> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let from_topology = options
        .topology
        .into_iter()
        .flat_map(|t| t.sip_domains.iter().map(|d| d.name.clone()));
    for domain in from_topology.chain(options.domains.iter().cloned()) {
        if seen.insert(domain.clone()) {
            domains.push(domain);
        }
    }
    domains
}

/// Reads DNS and checks it. `progress` is told how far the reading is. With `probe`, the
/// certificates are judged against the public roots (or the topology's `tls.ca_file`).
pub fn run(
    options: &Options<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Report, Snapshot), AuditError> {
    run_with_tls(options, &tls::TlsOptions::default(), progress)
}

/// `run`, with the certificate checks' own settings (a private CA, the expiry warning).
pub fn run_with_tls(
    options: &Options<'_>,
    tls_options: &tls::TlsOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Report, Snapshot), AuditError> {
    let started = Instant::now();
    let domains = all_domains(options);
    if domains.is_empty() {
        return Err(AuditError::NoDomains);
    }
    let ca_file = tls_options
        .ca_file
        .clone()
        .or_else(|| options.topology.and_then(|t| t.tls_ca_file.clone()));
    // Before any query: a bad CA file is an error now, not after the whole read.
    let anchors = match options.probe {
        Some(_) => Some(crate::probe::tls::Anchors::load(ca_file.as_deref())?),
        None => None,
    };
    let request = request(options, &domains);
    let snapshot = parts::collect(&request, progress);
    let checking = Instant::now();
    let names = rules::check(&snapshot, &domains, options.topology);
    tracing::info!("rules checked in {:?}", checking.elapsed());
    let mut report = Report {
        format: AUDIT_FORMAT,
        generator: concat!("xmppdns ", env!("CARGO_PKG_VERSION")),
        topology: options.topology.map(|t| {
            std::fs::canonicalize(&t.path)
                .unwrap_or_else(|_| t.path.clone())
                .display()
                .to_string()
        }),
        summary: Summary::default(),
        names,
        probes: None,
        tls: None,
        stats: Stats {
            queries: snapshot.stats,
            elapsed_ms: duration_ms(started.elapsed()),
        },
    };
    if let (Some(timeout), Some(anchors)) = (options.probe, &anchors) {
        run_probes(&mut report, &snapshot, timeout);
        let targets = tls::targets(&report.names, &snapshot);
        let checks = tls::run(&targets, anchors, timeout);
        tls::findings(&mut report.names, &checks, tls_options.warn_days);
        report.tls = Some(checks);
    }
    report.recount();
    Ok((report, snapshot))
}

/// What to read: the audited domains, and with a topology its zones and every RRset its plan
/// manages (for drift).
fn request(options: &Options<'_>, domains: &[Fqdn]) -> collect::Request {
    let (extra_zones, extra_keys) = match options.topology {
        Some(topology) => {
            let desired = crate::plan::desired(topology);
            let keys: std::collections::BTreeSet<RrKey> = desired
                .zones
                .values()
                .flat_map(|z| z.managed.iter().cloned())
                .collect();
            (topology.zones.clone(), keys)
        }
        None => (Vec::new(), Default::default()),
    };
    collect::Request {
        domains: domains.to_vec(),
        servers: options.servers.clone(),
        extra_zones,
        extra_keys,
        settings: options.settings,
    }
}

/// `--probe`: an XMPP stream on every target address (rule 9), its findings and the probes.
fn run_probes(report: &mut Report, snapshot: &Snapshot, timeout: Duration) {
    let targets = rules::probe_targets(&report.names, snapshot);
    let asked: Vec<(SocketAddr, String)> = targets
        .iter()
        .map(|(_, _, address, domain)| (*address, domain.bare().to_string()))
        .collect();
    let results = probe::probe_all(&asked, timeout);
    let outcomes: Vec<ProbeOutcome> = targets
        .iter()
        .zip(&results)
        .map(|((target, port, address, _), result)| ProbeOutcome {
            target: target.clone(),
            port: *port,
            address: *address,
            xmpp: result.is_xmpp(),
            detail: result.detail.clone(),
        })
        .collect();
    rules::probe_findings(&mut report.names, &outcomes);
    report.probes = Some(
        targets
            .into_iter()
            .zip(results)
            .map(|((target, _, _, to), result)| TargetProbe { target, to, result })
            .collect(),
    );
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
