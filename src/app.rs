//! The commands as library calls: load, plan, check, apply, read back. No printing here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::audit::{self, AuditError};
use crate::dns::authority;
use crate::dns::batch::BatchSettings;
use crate::error::Error;
use crate::plan::{self, safety, Drift, Plan, PlanFile, ZoneState};
use crate::provider::{self, Applied, Environment, Provider};
use crate::records::{Fqdn, RrKey};
use crate::topology::Topology;

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the managed keys of every zone of the desired state.
pub fn read_current(
    provider: &mut dyn Provider,
    desired: &plan::DesiredState,
) -> Result<BTreeMap<Fqdn, ZoneState>, Error> {
    let mut current = BTreeMap::new();
    for (zone, want) in &desired.zones {
        current.insert(zone.clone(), provider.read(zone, &want.managed)?);
    }
    Ok(current)
}

/// Computes the plan of a topology against its provider.
pub fn plan(topology: &Topology, provider: &mut dyn Provider) -> Result<Plan, Error> {
    let desired = plan::desired(topology);
    let current = read_current(provider, &desired)?;
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
}

impl Prepared {
    pub fn provider_kind(&self) -> &'static str {
        self.provider.kind()
    }
}

/// Loads `path` (a topology or a saved plan), reads the provider, and checks the plan:
/// a saved plan must match what the provider holds now; unsafe plans need `force`.
pub fn prepare_apply(path: &Path, env: &Environment, force: bool) -> Result<Prepared, Error> {
    let text = read_text(path)?;
    let (topology, plan, provider, source) = if plan::is_plan_file(&text) {
        let (file, saved) = PlanFile::parse(&text, &path.display().to_string())?;
        let topology = Topology::load(&PathBuf::from(&file.topology))?;
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
        let topology = Topology::from_json(&text, path)?;
        let mut provider = provider::open(&topology, env)?;
        let plan = self::plan(&topology, provider.as_mut())?;
        (topology, plan, provider, Source::Topology)
    };
    if !force {
        let hazards = safety::check(&plan.changes, &topology);
        if !hazards.is_empty() {
            return Err(Error::Unsafe { hazards });
        }
    }
    Ok(Prepared {
        topology,
        plan,
        provider,
        source,
    })
}

/// What an apply did.
#[derive(Debug)]
pub struct ApplyReport {
    pub applied: Vec<Applied>,
}

/// Applies a prepared plan zone by zone, then reads back: a topology must now plan empty, a
/// saved plan's RRsets must read back as planned.
pub fn execute(mut prepared: Prepared) -> Result<ApplyReport, Error> {
    let zones = prepared.plan.zones_with_changes();
    let mut applied = Vec::new();
    for (i, zone) in zones.iter().enumerate() {
        let changes: Vec<_> = prepared.plan.changes_for(zone).cloned().collect();
        match prepared.provider.apply(zone, &changes) {
            Ok(done) => applied.push(done),
            Err(source) if applied.is_empty() && i + 1 == zones.len() => {
                return Err(Error::Provider(source))
            }
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

    let remaining = match prepared.source {
        Source::Topology => {
            let again = plan(&prepared.topology, prepared.provider.as_mut())?;
            again
                .changes
                .iter()
                .map(|c| Drift {
                    key: c.key(),
                    expected: c.after.clone(),
                    found: c.before.clone(),
                })
                .collect()
        }
        Source::SavedPlan => {
            let mut remaining = Vec::new();
            for zone in &zones {
                let keys: std::collections::BTreeSet<RrKey> =
                    prepared.plan.changes_for(zone).map(|c| c.key()).collect();
                let now = prepared.provider.read(zone, &keys)?;
                for change in prepared.plan.changes_for(zone) {
                    let found = now.rrsets.get(&change.key());
                    if found != change.after.as_ref() {
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
    };
    if !remaining.is_empty() {
        return Err(Error::NotConverged { remaining });
    }
    Ok(ApplyReport { applied })
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
        .map(Topology::load)
        .transpose()?;
    let options = audit::Options {
        domains: parse_domains(&request.domains)?,
        servers: audit_servers(&request.nameservers)?,
        topology: topology.as_ref(),
        settings: request.settings,
        probe: request.probe.then_some(PROBE_TIMEOUT),
    };
    let (report, _snapshot) = audit::run(&options, progress)?;
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

/// Today's date as YYYYMMDD (UTC) from seconds since 1970, for SOA serials. The civil-date
/// conversion is Howard Hinnant's `civil_from_days`; a date crate for ten lines was not worth it.
pub fn yyyymmdd(unix_seconds: u64) -> u32 {
    let days = (unix_seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year * 10_000 + month * 100 + day) as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::yyyymmdd(0), 19700101);
        assert_eq!(super::yyyymmdd(951_782_400), 20000229);
        assert_eq!(super::yyyymmdd(1_796_000_000), 20261130);
    }
}
