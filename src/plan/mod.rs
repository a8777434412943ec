//! Plans: the desired state, the diff against what the provider holds, safety checks and the
//! saved-plan file that `apply` can replay exactly.

pub mod desired;
pub mod diff;
pub mod render;
pub mod safety;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::records::{Fqdn, RecordSet, RrKey};
pub use desired::{desired, DesiredState};
pub use diff::{cname_conflicts, diff, Action, Change, CnameConflict, ZoneState};

/// The saved-plan format name; bumped on any incompatible change.
pub const PLAN_FORMAT: &str = "xmppdns-plan/1";

/// What the provider held for the managed names of one zone when the plan was computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservedZone {
    pub zone: Fqdn,
    /// Managed RRsets that existed.
    pub rrsets: Vec<RecordSet>,
    /// Managed RRsets that did not exist (a later creation by someone else makes a saved plan
    /// stale just as a change does).
    pub absent: Vec<RrKey>,
}

impl ObservedZone {
    /// Takes `state`'s RRsets: the plan keeps what was read instead of a copy of it.
    pub fn new(zone: Fqdn, managed: &BTreeSet<RrKey>, state: ZoneState) -> Self {
        let absent = managed
            .iter()
            .filter(|k| !state.rrsets.contains_key(k))
            .cloned()
            .collect();
        ObservedZone {
            zone,
            rrsets: state.rrsets.into_values().collect(),
            absent,
        }
    }

    /// Every key this observation covers.
    pub fn keys(&self) -> BTreeSet<RrKey> {
        self.rrsets
            .iter()
            .map(RecordSet::key)
            .chain(self.absent.iter().cloned())
            .collect()
    }

    pub fn state(&self) -> ZoneState {
        ZoneState {
            rrsets: self.rrsets.iter().map(|s| (s.key(), s.clone())).collect(),
        }
    }
}

/// A computed plan: the changes and the state they were computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub observed: Vec<ObservedZone>,
}

/// How many of each action a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

impl Plan {
    /// Computes a plan from the desired state and what the provider returned for the
    /// managed keys of each zone.
    pub fn compute(desired: &DesiredState, mut current: BTreeMap<Fqdn, ZoneState>) -> Plan {
        let changes = diff(desired, &current);
        // What was read moves into the plan: copying it added 2 MiB to the peak memory of
        // `plan` at 10,000 domains (35,100 -> 33,000 kB, bench/cli-plan.sh).
        let observed = desired
            .zones
            .iter()
            .map(|(zone, want)| {
                let state = current.remove(zone).unwrap_or_default();
                // The guarding CNAME keys too: one created after the plan makes it stale.
                ObservedZone::new(zone.clone(), &want.keys_to_read(), state)
            })
            .collect();
        Plan { changes, observed }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in &self.changes {
            match change.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
            }
        }
        summary
    }

    pub fn state_checksum(&self) -> String {
        checksum(&self.observed)
    }

    pub fn changes_checksum(&self) -> String {
        checksum(&self.changes)
    }

    /// The changes of one zone, in plan order (a scan of the whole plan: for one zone, not in
    /// a loop over zones; see [`Plan::by_zone`]).
    pub fn changes_for<'a>(&'a self, zone: &'a Fqdn) -> impl Iterator<Item = &'a Change> + 'a {
        self.changes.iter().filter(move |c| &c.zone == zone)
    }

    /// The changes of each zone, zones in the order their changes first appear, in one pass
    /// (hosting providers have thousands of one-domain zones).
    pub fn by_zone(&self) -> Vec<(&Fqdn, Vec<&Change>)> {
        let mut index: HashMap<&Fqdn, usize> = HashMap::new();
        let mut groups: Vec<(&Fqdn, Vec<&Change>)> = Vec::new();
        for change in &self.changes {
            let i = *index.entry(&change.zone).or_insert_with(|| {
                groups.push((&change.zone, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(change);
        }
        groups
    }
}

/// SHA-256 over the canonical JSON of a value (maps are BTreeMaps and lists are sorted, so
/// the same content always gives the same bytes).
pub fn checksum<T: Serialize + ?Sized>(value: &T) -> String {
    // The JSON is streamed into the digest: a 10,000-change plan is 10 MB that need not be
    // held at once.
    let mut sink = std::io::BufWriter::with_capacity(64 * 1024, DigestSink::default());
    serde_json::to_writer(&mut sink, value).expect("plan values serialize");
    let Ok(sink) = sink.into_inner() else {
        unreachable!("the digest sink cannot fail")
    };
    let digest = sink.0.finish();
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in digest.as_ref() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// An `io::Write` that feeds SHA-256.
struct DigestSink(ring::digest::Context);

impl Default for DigestSink {
    fn default() -> Self {
        DigestSink(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl std::io::Write for DigestSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The saved-plan file (`plan --out`), a stable JSON schema documented in the README.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub format: String,
    pub generator: String,
    /// The topology the plan was computed from (absolute path): `apply PLAN.json` takes the
    /// provider settings from it.
    pub topology: String,
    pub provider: String,
    pub summary: Summary,
    pub changes: Vec<Change>,
    pub changes_checksum: String,
    pub state_checksum: String,
    pub state: Vec<ObservedZone>,
}

/// Why a saved plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("{path}:{line}:{column}: malformed plan JSON: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{path}: format `{found}` is not `{PLAN_FORMAT}`; re-run `xmppdns plan` with this version"
    )]
    Format { path: String, found: String },
    #[error("{path}: the {what} checksum does not match its content; the file was edited or damaged. Re-run `xmppdns plan --out`")]
    Checksum { path: String, what: &'static str },
}

impl PlanFile {
    pub fn new(plan: &Plan, topology: String, provider: &str) -> Self {
        PlanFile {
            format: PLAN_FORMAT.to_string(),
            generator: concat!("xmppdns ", env!("CARGO_PKG_VERSION")).to_string(),
            topology,
            provider: provider.to_string(),
            summary: plan.summary(),
            changes: plan.changes.clone(),
            changes_checksum: plan.changes_checksum(),
            state_checksum: plan.state_checksum(),
            state: plan.observed.clone(),
        }
    }

    /// Parses a saved plan and checks it is whole.
    pub fn parse(text: &str, path: &str) -> Result<(PlanFile, Plan), PlanFileError> {
        #[derive(Deserialize)]
        struct Probe {
            format: String,
        }
        let json_error = |e: serde_json::Error| PlanFileError::Json {
            path: path.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let probe: Probe = serde_json::from_str(text).map_err(json_error)?;
        if probe.format != PLAN_FORMAT {
            return Err(PlanFileError::Format {
                path: path.to_string(),
                found: probe.format,
            });
        }
        let file: PlanFile = serde_json::from_str(text).map_err(json_error)?;
        let plan = Plan {
            changes: file.changes.clone(),
            observed: file.state.clone(),
        };
        if plan.changes_checksum() != file.changes_checksum {
            return Err(PlanFileError::Checksum {
                path: path.to_string(),
                what: "changes",
            });
        }
        if plan.state_checksum() != file.state_checksum {
            return Err(PlanFileError::Checksum {
                path: path.to_string(),
                what: "state",
            });
        }
        Ok((file, plan))
    }
}

/// Why a change read from a file (a saved plan, a journal entry) cannot be sent as a guarded
/// change, or `None` when it is sound. A file is not the planner: its changes may have been
/// edited (the checksum only catches accidents), written by another version, or be for another
/// topology, and an update or delete without its `before` would go out unguarded. So each
/// change must name an RRset the topology manages in its zone, carry RRsets of its own name and
/// type only, and have the `before`/`after` its action implies.
pub fn unsound_change(change: &Change, desired: &DesiredState) -> Option<String> {
    let key = change.key();
    let Some(zone) = desired.zones.get(&change.zone) else {
        return Some(format!(
            "zone {} is not a zone of the topology's managed names",
            change.zone
        ));
    };
    if !zone.managed.contains(&key) {
        return Some(format!(
            "{key} is not an RRset the topology manages in zone {}",
            change.zone
        ));
    }
    for (side, set) in [("before", &change.before), ("after", &change.after)] {
        if let Some(other) = set.as_ref().map(RecordSet::key).filter(|k| *k != key) {
            return Some(format!("its `{side}` RRset is {other}, not {key}"));
        }
    }
    let (before_wanted, after_wanted, rule) = match change.action {
        Action::Create => (false, true, "a create carries only an `after` RRset"),
        Action::Update => (
            true,
            true,
            "an update carries both a `before` and an `after` RRset",
        ),
        Action::Delete => (true, false, "a delete carries only a `before` RRset"),
    };
    if change.before.is_some() != before_wanted || change.after.is_some() != after_wanted {
        let present = |set: &Option<RecordSet>| if set.is_some() { "set" } else { "empty" };
        return Some(format!(
            "{rule} (here `before` is {}, `after` is {})",
            present(&change.before),
            present(&change.after)
        ));
    }
    None
}

/// Is this JSON text a saved plan (rather than a topology)? Looks only at `format`.
pub fn is_plan_file(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
    }
    serde_json::from_str::<Probe>(text)
        .ok()
        .and_then(|p| p.format)
        .is_some_and(|f| f.starts_with("xmppdns-plan/"))
}

/// One managed RRset whose content differs between two observations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub key: RrKey,
    pub expected: Option<RecordSet>,
    pub found: Option<RecordSet>,
}

/// The one answer to "does the store still hold `want` here?" (`None`: the RRset is absent).
/// Every guard and every settlement asks it this way: rfc2136's settlement, the PowerDNS,
/// zone-file, Azure and Route 53 guards and settlements, rollback, and a saved plan's stale
/// check.
///
/// The TTL counts: an RRset holds `want` only with `want`'s records *and* TTL. A TTL-only
/// change is a change the plan makes, so a settlement that ignored TTLs could call it landed
/// when it was not. (RFC 2136 prerequisites cannot carry a TTL, so the server's own guard is
/// records-only; the settlement after an ambiguous answer is not.)
pub fn holds(found: Option<&RecordSet>, want: Option<&RecordSet>) -> bool {
    match (found, want) {
        (None, None) => true,
        (Some(found), Some(want)) => {
            found.key() == want.key() && found.ttl == want.ttl && found.records() == want.records()
        }
        _ => false,
    }
}

/// Where a set of changes stands, judged by reading the store: every change's `after`, every
/// change's `before`, or neither (someone else's change, or a part landed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Every RRset holds what the changes install.
    After,
    /// Every RRset still holds what the changes replace (for a change whose `before` equals
    /// its `after` both hold; `After` wins).
    Before,
    /// Neither: the RRsets that do not hold their `before`.
    Neither(Vec<Drift>),
}

/// Where `changes` stand in `now` (the RRsets of their keys, absent ones missing).
pub fn standing<'c>(
    changes: impl IntoIterator<Item = &'c Change> + Clone,
    now: &BTreeMap<RrKey, RecordSet>,
) -> Standing {
    let at = |c: &Change, want: &Option<RecordSet>| holds(now.get(&c.key()), want.as_ref());
    if changes.clone().into_iter().all(|c| at(c, &c.after)) {
        Standing::After
    } else if changes.clone().into_iter().all(|c| at(c, &c.before)) {
        Standing::Before
    } else {
        Standing::Neither(drift_from_before(changes, now))
    }
}

/// The changes whose `before` the store (`now`) no longer holds: a guard's refusal.
pub fn drift_from_before<'c>(
    changes: impl IntoIterator<Item = &'c Change>,
    now: &BTreeMap<RrKey, RecordSet>,
) -> Vec<Drift> {
    changes
        .into_iter()
        .filter(|c| !holds(now.get(&c.key()), c.before.as_ref()))
        .map(|c| Drift {
            key: c.key(),
            expected: c.before.clone(),
            found: now.get(&c.key()).cloned(),
        })
        .collect()
}

/// Compares what a plan was computed from with what the provider holds now.
pub fn drift(expected: &ObservedZone, now: &ZoneState) -> Vec<Drift> {
    let then = expected.state();
    expected
        .keys()
        .into_iter()
        .filter_map(|key| {
            let a = then.rrsets.get(&key);
            let b = now.rrsets.get(&key);
            (!holds(b, a)).then(|| Drift {
                key,
                expected: a.cloned(),
                found: b.cloned(),
            })
        })
        .collect()
}
