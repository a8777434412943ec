//! Failover and failback: move XMPP federation to another Edge pool in the stages of
//! Microsoft's procedure, with the runbook's guards.
//!
//! The stages: plan (the federation A/AAAA moves, the new pool's SRV records lead) while the
//! admin stops the new pool's Edge services and repoints the route; apply with
//! compare-and-swap guards through the provider and write the new active pool back to the
//! topology; the admin starts the services; verify that the pool answers XMPP and every
//! authoritative server serves the change. The new pool is probed before the DNS change only
//! when asked (`ProbeBefore::Gate`): by the procedure its services are stopped then.

pub mod drain;
pub mod edit;
pub mod powershell;
pub mod propagation;
pub mod report;
pub mod runbook;
pub mod seen;
pub mod verify;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::app::{self, Prepared};
use crate::dns::authority;
use crate::dns::batch::{self, BatchSettings};
use crate::error::Error;
use crate::journal::{self, Journal};
use crate::probe::{self, ProbeResult};
use crate::provider::{self, Environment};
use crate::records::Fqdn;
use crate::topology::{Pool, ProviderConfig, Topology};
use edit::Target;

/// What the command was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The pool to move to; `None` for failback (found in the journal).
    pub to: Option<String>,
    /// Make the new pool's SRV records lead (lowest priority number). On by default.
    pub promote: bool,
    pub probe_before: ProbeBefore,
    /// Go on although the gate's probe found no XMPP answer, or the plan is flagged unsafe.
    pub force: bool,
    pub probe_timeout: Duration,
    pub journal: Option<PathBuf>,
}

/// Whether the new pool is probed before the DNS change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeBefore {
    /// Not at all (`--skip-probe`, or the usual staged move: the services are stopped).
    Skip,
    /// Probed and shown, whatever it finds (`--dry-run`).
    Inform,
    /// Refuse the move unless an address answers (`--require-live`, e.g. active/active pools).
    Gate,
}

/// The topology file's edit that records the failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyEdit {
    pub active_pool: String,
    /// Set when `--no-promote` keeps another pool's SRV records in the lead.
    pub srv_leader: Option<String>,
    /// New `preference` values, when the old active pool has to be renumbered to come next.
    pub preferences: Vec<(String, u32)>,
}

/// A failover planned and checked, waiting for confirmation.
pub struct PreparedFailover {
    pub from: String,
    pub to: String,
    pub from_pool: Pool,
    pub to_pool: Pool,
    /// `None` when the probe was skipped.
    pub probes: Option<Vec<ProbeResult>>,
    /// The topology as it was read (for the runbook's names).
    pub old_topology: Topology,
    pub edit: TopologyEdit,
    pub apply: Prepared,
    /// The drain in force when the move was planned (its TTLs are kept).
    pub drain: Option<drain::DrainState>,
}

/// Reads DNS, probes the new pool, and plans the move. `command` is `failover` or `failback`.
pub fn prepare(
    path: &Path,
    options: &Options,
    env: &Environment,
    command: &'static str,
) -> Result<PreparedFailover, Error> {
    let journal = options.journal.as_deref();
    let mut locks = app::lock_files(&app::command_files(path, journal, None), command, env)?;
    let topology = crate::app::load_topology(path)?;
    let all = app::command_files(path, journal, Some(&topology));
    locks.absorb(app::lock_files(&all, command, env)?);
    // A drained topology moves at the drained TTLs; `settle` restores the topology's own.
    let journal_path = options
        .journal
        .clone()
        .unwrap_or_else(|| journal::default_path(path));
    let drain = drain::state(&journal_path)?;
    let topology = drain::effective(&topology, drain.as_ref());
    let from = topology.active_pool().name.clone();
    let to = match &options.to {
        Some(to) => to.clone(),
        None => previous_pool(path, options)?,
    };
    let Some(to_index) = topology.pool_index(&to) else {
        return Err(Error::UnknownPool {
            name: to,
            known: topology.pools.iter().map(|p| p.name.clone()).collect(),
        });
    };

    let (new_topology, edit) = moved(&topology, to_index, options.promote);
    let mut provider = provider::open(&new_topology, env)?;
    let plan = app::plan(&new_topology, provider.as_mut())?;

    let probes = probe_before_dns(&topology, to_index, options)?;

    let failover = (from != to).then(|| journal::Failover {
        from: from.clone(),
        to: to.clone(),
    });
    let mut apply = app::prepare_plan(
        new_topology,
        plan,
        provider,
        env,
        options.force,
        options.journal.as_deref(),
        command,
        failover,
    )?;
    apply.hold(locks);
    Ok(PreparedFailover {
        from_pool: topology.active_pool().clone(),
        to_pool: topology.pools[to_index].clone(),
        from,
        to,
        probes,
        old_topology: topology,
        edit,
        apply,
        drain,
    })
}

/// The probe of the new pool before DNS changes, when asked for: `None` when skipped (and for
/// a move to the active pool); with `--require-live`, a pool where no address answers as XMPP
/// refuses the move (exit 3) unless `--force`.
fn probe_before_dns(
    topology: &Topology,
    to_index: usize,
    options: &Options,
) -> Result<Option<Vec<ProbeResult>>, Error> {
    if to_index == topology.active || options.probe_before == ProbeBefore::Skip {
        return Ok(None);
    }
    let results = probe_pool(topology, to_index, options.probe_timeout);
    let gate = options.probe_before == ProbeBefore::Gate;
    if gate && !results.iter().any(ProbeResult::is_ready) && !options.force {
        return Err(Error::ProbeFailed {
            pool: topology.pools[to_index].name.clone(),
            port: topology.srv.port,
            results: results
                .iter()
                .map(|r| (r.address, r.detail.clone()))
                .collect(),
        });
    }
    Ok(Some(results))
}

/// Per zone, the servers whose answers show that a change propagated, and a note when the
/// lists are incomplete or only a stand-in.
pub struct AuthoritativeServers {
    pub zones: BTreeMap<Fqdn, Vec<SocketAddr>>,
    pub note: Option<String>,
}

impl AuthoritativeServers {
    pub fn is_empty(&self) -> bool {
        self.zones.values().all(Vec::is_empty)
    }
}

/// The servers to check: `extra` (from the command line) and the topology's `nameservers`, for
/// every zone; else each zone's own NS RRset and the addresses of those servers (port 53),
/// asked of the system's resolvers and then of the RFC 2136 primary; for a zone where that
/// fails, the primary alone, with a note.
pub fn authoritative_servers(topology: &Topology, extra: &[SocketAddr]) -> AuthoritativeServers {
    let mut listed = extra.to_vec();
    for addr in &topology.nameservers {
        if !listed.contains(addr) {
            listed.push(*addr);
        }
    }
    if !listed.is_empty() {
        return AuthoritativeServers {
            zones: topology
                .zones
                .iter()
                .map(|zone| (zone.clone(), listed.clone()))
                .collect(),
            note: None,
        };
    }
    let primary = match &topology.provider {
        ProviderConfig::Rfc2136(config) => Some(config.server),
        _ => None,
    };
    let mut resolvers = authority::system_resolvers();
    resolvers.extend(primary);
    let mut found = discover_servers(&topology.zones, &resolvers, 53);
    let skipped = drop_unreachable_families(&mut found);
    let mut note = discovery_note(&found, &skipped, primary);
    // A cloud provider's own sync status stands in for servers that cannot be asked.
    if let (false, Some(stand_in)) = (
        found.unfound.is_empty(),
        provider::sync_stand_in(&topology.provider),
    ) {
        note.push_str(&format!("; {stand_in}"));
    }
    let mut zones = found.zones;
    if let Some(primary) = primary {
        for zone in &found.unfound {
            zones.insert(zone.clone(), vec![primary]);
        }
    }
    AuthoritativeServers {
        zones,
        note: Some(note),
    }
}

/// An IPv6 name server cannot be asked from an IPv4-only host (and the other way round):
/// leaves it out and says so in `found.problems`, rather than report it as not serving the
/// change. A zone left with no server becomes unfound. Returns the servers left out.
fn drop_unreachable_families(found: &mut Discovered) -> Vec<SocketAddr> {
    let mut skipped = Vec::new();
    for (zone, servers) in &mut found.zones {
        servers.retain(|addr| {
            let usable = batch::family_usable(*addr);
            if !usable && !skipped.contains(addr) {
                skipped.push(*addr);
            }
            usable
        });
        if servers.is_empty() {
            found.unfound.push(zone.clone());
        }
    }
    found.zones.retain(|_, servers| !servers.is_empty());
    if !skipped.is_empty() {
        found.problems.push(format!(
            "this host cannot reach the address family of {}",
            skipped
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    skipped
}

/// How the servers were found, and what is not checked (the zones left unfound fall back to
/// the RFC 2136 `primary`, when there is one).
fn discovery_note(
    found: &Discovered,
    skipped: &[SocketAddr],
    primary: Option<SocketAddr>,
) -> String {
    if found.unfound.is_empty() && skipped.is_empty() {
        return "authoritative servers found through each zone's NS records".to_string();
    }
    if found.unfound.is_empty() {
        return format!(
            "authoritative servers found through each zone's NS records; {}: not checked",
            found.problems.last().cloned().unwrap_or_default()
        );
    }
    let missing = found
        .unfound
        .iter()
        .map(Fqdn::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let why = found
        .problems
        .last()
        .cloned()
        .unwrap_or_else(|| "no resolver".into());
    let fallback = match primary {
        Some(primary) => format!("only the primary {primary} is checked for them"),
        None => "they are not checked".to_string(),
    };
    format!(
        "the NS records of {missing} could not be followed ({why}); {fallback}: list every authoritative server in the topology's `nameservers` (or pass --nameserver)"
    )
}

/// What following the zones' NS records found.
pub struct Discovered {
    /// Per zone found, every address of its name servers, each once.
    pub zones: BTreeMap<Fqdn, Vec<SocketAddr>>,
    /// Zones whose name servers could not be found.
    pub unfound: Vec<Fqdn>,
    /// Why, per failed attempt.
    pub problems: Vec<String>,
}

/// Follows each zone's NS RRset to its servers' addresses (with `port`), asking `resolvers`
/// in turn until every zone is found.
pub fn discover_servers(zones: &[Fqdn], resolvers: &[SocketAddr], port: u16) -> Discovered {
    let settings = BatchSettings {
        attempts: 2,
        ..BatchSettings::default()
    };
    let mut found = Discovered {
        zones: BTreeMap::new(),
        unfound: zones.to_vec(),
        problems: Vec::new(),
    };
    for resolver in resolvers {
        if found.unfound.is_empty() {
            break;
        }
        let (answers, _) = authority::discover(&found.unfound, *resolver, port, &settings);
        for (zone, result) in answers {
            match result {
                Ok(authority) => {
                    found.zones.insert(zone.clone(), authority.addresses());
                    found.unfound.retain(|z| z != &zone);
                }
                Err(e) => found.problems.push(e.to_string()),
            }
        }
    }
    found
}

/// `--nameserver` values, checked before anything is applied.
pub fn parse_nameservers(texts: &[String]) -> Result<Vec<SocketAddr>, Error> {
    texts
        .iter()
        .map(|text| {
            crate::topology::server_address(text).map_err(|message| Error::Argument {
                name: "--nameserver".into(),
                message,
            })
        })
        .collect()
}

/// The pool that was active before the last failover.
pub fn previous_pool(path: &Path, options: &Options) -> Result<String, Error> {
    let journal_path = options
        .journal
        .clone()
        .unwrap_or_else(|| journal::default_path(path));
    Journal::open(&journal_path)?
        .last_failover()?
        .map(|f| f.from)
        .ok_or(Error::NoFailoverRecorded {
            journal: journal_path,
        })
}

/// Probes every address of pool `index` on the SRV port, with the first SIP domain as `to`.
pub fn probe_pool(topology: &Topology, index: usize, timeout: Duration) -> Vec<ProbeResult> {
    let pool = &topology.pools[index];
    let domain = topology
        .sip_domains
        .first()
        .map(|d| d.name.as_str().trim_end_matches('.').to_string())
        .unwrap_or_default();
    let port = topology.srv.port;
    let targets: Vec<_> = pool
        .ipv4
        .iter()
        .map(|ip| std::net::SocketAddr::from((*ip, port)))
        .chain(
            pool.ipv6
                .iter()
                .map(|ip| std::net::SocketAddr::from((*ip, port))),
        )
        .map(|addr| (addr, domain.clone()))
        .collect();
    probe::probe_all(&targets, timeout)
}

/// The topology after the move, and the edit of its file that says so.
///
/// With `promote`, the new pool leads the SRV records and the old active pool comes next
/// (renumbering standby preferences only when they would put another pool there). Without it,
/// the pool that led keeps leading and only the federation record moves.
pub fn moved(topology: &Topology, to: usize, promote: bool) -> (Topology, TopologyEdit) {
    let mut next = topology.clone();
    let old_active = topology.active;
    next.active = to;
    let mut edit = TopologyEdit {
        active_pool: topology.pools[to].name.clone(),
        srv_leader: None,
        preferences: Vec::new(),
    };
    if !promote {
        next.leader = topology.leader;
        if topology.leader != to {
            edit.srv_leader = Some(topology.pools[topology.leader].name.clone());
        }
        return (next, edit);
    }
    next.leader = to;
    if old_active != to {
        let others_first = next
            .pools
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != to && *i != old_active)
            .map(|(_, p)| p.preference)
            .min();
        if others_first.is_some_and(|first| first <= next.pools[old_active].preference) {
            // Renumber every pool 1, 2, 3... in the new SRV order (the new pool, the old
            // active pool, then the rest), so no two pools share a preference.
            let mut rest: Vec<usize> = (0..next.pools.len())
                .filter(|i| *i != to && *i != old_active)
                .collect();
            rest.sort_by_key(|i| next.pools[*i].preference);
            let order = [to, old_active].into_iter().chain(rest);
            for (rank, index) in order.enumerate() {
                let preference = rank as u32 + 1;
                next.pools[index].preference = preference;
                edit.preferences
                    .push((next.pools[index].name.clone(), preference));
            }
        }
    }
    (next, edit)
}

/// Writes the edit into the topology file, changing only the values it must (formatting and
/// everything else stay as they are; the old file is kept as `<file>.bak`). Returns the
/// account of what changed, or `None` if nothing did.
pub fn write_topology(path: &Path, edit: &TopologyEdit) -> Result<Option<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::TopologyRewrite {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let (edits, said) = edits_to_make(&value, edit);
    if edits.is_empty() {
        return Ok(None);
    }
    let out = edit::set(&text, &edits).ok_or_else(|| Error::TopologyRewrite {
        path: path.to_path_buf(),
        message: "could not locate the values to change".into(),
    })?;
    crate::failpoint::hit("topology-write", || path.display().to_string());
    crate::files::replace_keeping_backup(path, out.as_bytes()).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    crate::failpoint::hit("topology-written", || path.display().to_string());
    Ok(Some(said.join(", ")))
}

/// The values of the topology file (`value`, as read) that differ from `edit`: the edits to
/// make, and an account of each in words.
fn edits_to_make(value: &Value, edit: &TopologyEdit) -> (Vec<(Target, String)>, Vec<String>) {
    let quoted = |s: &str| Value::from(s).to_string();
    let mut edits = Vec::new();
    let mut said = Vec::new();
    if value["active_pool"] != edit.active_pool.as_str() {
        said.push(format!(
            "active_pool {} -> {}",
            value["active_pool"],
            quoted(&edit.active_pool)
        ));
        edits.push((Target::Top("active_pool".into()), quoted(&edit.active_pool)));
    }
    // With promotion the active pool leads; a `srv_leader` left by an earlier `--no-promote`
    // is pointed at it rather than removed.
    let leader = match (&edit.srv_leader, value.get("srv_leader")) {
        (Some(leader), _) => Some(leader.as_str()),
        (None, Some(_)) => Some(edit.active_pool.as_str()),
        (None, None) => None,
    };
    if let Some(leader) = leader {
        if value.get("srv_leader") != Some(&Value::from(leader)) {
            said.push(format!("srv_leader = {}", quoted(leader)));
            edits.push((Target::Top("srv_leader".into()), quoted(leader)));
        }
    }
    for (name, preference) in &edit.preferences {
        let current = value["pools"]
            .as_array()
            .and_then(|pools| pools.iter().find(|p| p["name"] == name.as_str()))
            .map(|p| p["preference"].clone());
        if current != Some(Value::from(*preference)) {
            said.push(format!("{name}.preference = {preference}"));
            edits.push((
                Target::Named {
                    array: "pools".into(),
                    name: name.clone(),
                    key: "preference".into(),
                },
                preference.to_string(),
            ));
        }
    }
    (edits, said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn three_pools() -> Value {
        json!({
            "zones": ["contoso.com"],
            "sip_domains": ["contoso.com"],
            "pools": [
                {"name": "P1", "site": "S1", "fqdn": "e1.contoso.com", "ipv4": ["192.0.2.1"]},
                {"name": "P2", "site": "S2", "fqdn": "e2.contoso.com", "ipv4": ["192.0.2.2"], "preference": 1},
                {"name": "P3", "site": "S3", "fqdn": "e3.contoso.com", "ipv4": ["192.0.2.3"], "preference": 2}
            ],
            "active_pool": "P1",
            "federation": {"name": "xmpp.contoso.com"}
        })
    }

    fn load(value: &Value) -> Topology {
        Topology::from_json(&value.to_string(), Path::new("t.json")).unwrap()
    }

    fn order(t: &Topology) -> Vec<&str> {
        t.pools_by_preference()
            .iter()
            .map(|p| p.name.as_str())
            .collect()
    }

    #[test]
    fn promote_puts_the_new_pool_first_and_the_old_one_next() {
        let t = load(&three_pools());
        assert_eq!(order(&t), ["P1", "P2", "P3"]);
        let (next, edit) = moved(&t, 2, true);
        assert_eq!(order(&next), ["P3", "P1", "P2"]);
        assert_eq!(next.active_pool().name, "P3");
        assert_eq!(edit.active_pool, "P3");
        assert_eq!(edit.srv_leader, None);
        assert_eq!(
            edit.preferences,
            [
                ("P3".to_string(), 1),
                ("P1".to_string(), 2),
                ("P2".to_string(), 3)
            ]
        );
        // Two pools: nothing to renumber.
        let (next, edit) = moved(&t, 1, true);
        assert_eq!(order(&next), ["P2", "P1", "P3"]);
        assert_eq!(
            edit.preferences,
            [
                ("P2".to_string(), 1),
                ("P1".to_string(), 2),
                ("P3".to_string(), 3)
            ]
        );
    }

    #[test]
    fn no_promote_keeps_the_leader() {
        let t = load(&three_pools());
        let (next, edit) = moved(&t, 2, false);
        assert_eq!(order(&next), ["P1", "P2", "P3"]);
        assert_eq!(next.active_pool().name, "P3");
        assert_eq!(edit.srv_leader.as_deref(), Some("P1"));
    }

    #[test]
    fn the_edit_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(&path, serde_json::to_string_pretty(&three_pools()).unwrap()).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let t = Topology::load(&path).unwrap();
        let (_, edit) = moved(&t, 2, true);
        let said = write_topology(&path, &edit).unwrap().unwrap();
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&path).unwrap().permissions()
            ) & 0o777,
            0o644,
            "the topology keeps its mode"
        );
        assert!(said.contains("active_pool \"P1\" -> \"P3\""), "{said}");
        let again = Topology::load(&path).unwrap();
        assert_eq!(order(&again), ["P3", "P1", "P2"]);
        assert_eq!(again.active_pool().name, "P3");
        assert!(path.with_extension("json.bak").exists());
        // Only the edited values changed.
        let before = std::fs::read_to_string(path.with_extension("json.bak")).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        let mut expected: Value = serde_json::from_str(&before).unwrap();
        expected["active_pool"] = json!("P3");
        expected["pools"][0]["preference"] = json!(2);
        expected["pools"][1]["preference"] = json!(3);
        expected["pools"][2]["preference"] = json!(1);
        assert_eq!(serde_json::from_str::<Value>(&after).unwrap(), expected);
        assert_eq!(
            after.lines().count(),
            before.lines().count() + 1,
            "one line inserted"
        );
        assert_eq!(write_topology(&path, &edit).unwrap(), None, "idempotent");
    }
}
