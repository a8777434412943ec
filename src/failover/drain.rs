//! Drains: lower the TTLs a move will touch ahead of it, know when remote caches can no longer
//! hold the old answers, and settle back to the topology's TTLs afterwards.
//!
//! The drained state lives in the journal, not in the topology or a side file: a drain is an
//! apply like any other (guarded, journaled, rolled back the usual way), its entries already
//! hold the TTLs it replaced (`before`) and lowered to (`after`), and the journal is the one
//! file every move already reads. One more entry, with no changes and stamped with the moment
//! every authoritative server served the lower TTL, marks the drain as seen by the servers;
//! the drain is complete one old TTL later. A `settle` run ends it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::Clock;
use crate::dns::transfer;
use crate::dns::transport::Transport;
use crate::error::Error;
use crate::journal::{self, Entry};
use crate::records::{Fqdn, RrKey};
use crate::topology::Topology;

/// The journal command of a drain's entries.
pub const DRAIN: &str = "drain";
/// The journal command of a settle's entries.
pub const SETTLE: &str = "settle";
/// `--ttl` when not given.
pub const DEFAULT_TTL: u32 = 60;

/// A drain found in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrainState {
    /// The lowered TTL.
    pub ttl: u32,
    /// The largest TTL the drain replaced: how long a remote cache may keep the old answers.
    pub old_ttl: u32,
    /// The record that served `old_ttl`.
    pub bounded_by: String,
    /// When the last lowering was applied (seconds since 1970).
    pub applied_at: u64,
    /// When every authoritative server was seen serving the lower TTL; `None` until seen.
    pub authoritative_at: Option<u64>,
}

impl DrainState {
    /// When no remote cache can still hold an answer with the old TTL.
    pub fn complete_at(&self) -> Option<u64> {
        self.authoritative_at.map(|at| at + u64::from(self.old_ttl))
    }

    /// Where the drain stands at `now`.
    pub fn status(&self, now: u64) -> DrainStatus {
        match self.complete_at() {
            None => DrainStatus::Unconfirmed,
            Some(at) if now >= at => DrainStatus::Complete { at },
            Some(at) => DrainStatus::InProgress { at, left: at - now },
        }
    }
}

/// Where a drain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DrainStatus {
    /// Applied, but not yet seen on every authoritative server.
    Unconfirmed,
    /// Remote caches may hold the old TTL for `left` more seconds (until `at`).
    InProgress {
        at: u64,
        left: u64,
    },
    Complete {
        at: u64,
    },
}

/// The topology with every TTL a move touches lowered to at most `ttl`: the SRV (and managed
/// target) TTL and the federation record's.
pub fn drained(topology: &Topology, ttl: u32) -> Topology {
    let mut lowered = topology.clone();
    lowered.ttl = lowered.ttl.min(ttl);
    lowered.federation.ttl = lowered.federation.ttl.min(ttl);
    lowered
}

/// The topology as DNS should be while `state` holds: drained, or as it is.
pub fn effective(topology: &Topology, state: Option<&DrainState>) -> Topology {
    match state {
        Some(state) => drained(topology, state.ttl),
        None => topology.clone(),
    }
}

/// The drain in force according to the journal at `path`: the drain runs since the last
/// settle, if any.
pub fn state(path: &Path) -> Result<Option<DrainState>, Error> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(from_entries(&journal::shared_entries(path)?))
}

/// [`state`] over entries in file order.
pub fn from_entries(entries: &[Entry]) -> Option<DrainState> {
    let since_settle: Vec<&Entry> = entries
        .iter()
        .rev()
        .take_while(|e| e.command != SETTLE)
        .filter(|e| e.command == DRAIN && e.applied)
        .collect();
    // Newest first: the lowering entries, and the confirmation after the newest of them.
    let lowering: Vec<&Entry> = since_settle
        .iter()
        .copied()
        .filter(|e| !e.changes.is_empty())
        .collect();
    let last = lowering.first()?;
    let ttl = lowering
        .iter()
        .flat_map(|e| &e.changes)
        .filter_map(|c| c.after.as_ref().map(|s| s.ttl))
        .min()?;
    let (old_ttl, bounded_by) = lowering
        .iter()
        .flat_map(|e| &e.changes)
        .filter_map(|c| c.before.as_ref().map(|s| (s.ttl, c.key().to_string())))
        .max_by_key(|(ttl, _)| *ttl)
        .unwrap_or((ttl, String::new()));
    let authoritative_at = since_settle
        .iter()
        .take_while(|e| e.id != last.id)
        .filter(|e| e.changes.is_empty())
        .filter_map(|e| parse_rfc3339(&e.time))
        .min();
    Some(DrainState {
        ttl,
        old_ttl,
        bounded_by,
        applied_at: parse_rfc3339(&last.time)?,
        authoritative_at,
    })
}

/// Seconds since 1970 from the journal's `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Howard Hinnant's `days_from_civil`, the inverse of `clock::yyyymmdd`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3_600 + mm * 60 + ss).ok()
}

/// Seconds as words: `59 s`, `1 h 0 min 5 s`.
pub fn human(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3_600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m} min {s} s"),
    }
}

/// What `failover` says about the drain before a move, and how long remote servers may keep
/// using the old pool after it (`None` when nothing to warn about).
pub fn before_move(state: Option<&DrainState>, undrained_ttl: u32, now: u64) -> (String, bool) {
    let Some(state) = state else {
        return (
            format!("Drain: none. Remote servers may keep using the old pool for up to {} after the change (the records' TTL); `xmppdns drain` ahead of a planned move shortens that.", human(u64::from(undrained_ttl))),
            true,
        );
    };
    match state.status(now) {
        DrainStatus::Complete { at } => (
            format!(
                "Drain: complete since {} (TTL {}): remote servers follow within {} of the change.",
                crate::clock::rfc3339(at),
                state.ttl,
                human(u64::from(state.ttl))
            ),
            false,
        ),
        DrainStatus::InProgress { at, left } => (
            format!(
                "Drain: in progress, complete at {} ({} left). Moving now, remote servers may keep using the old pool for up to {} ({} served TTL {}).",
                crate::clock::rfc3339(at),
                human(left),
                human(left.max(u64::from(state.ttl))),
                state.bounded_by,
                state.old_ttl
            ),
            true,
        ),
        DrainStatus::Unconfirmed => (
            format!(
                "Drain: applied but not yet seen on every authoritative server (run `xmppdns drain` again). Remote servers may keep using the old pool for up to {}.",
                human(u64::from(state.old_ttl))
            ),
            true,
        ),
    }
}

/// One server's answer for one drained RRset that is not (yet) at the lower TTL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lagging {
    pub server: SocketAddr,
    pub record: String,
    /// What it served: `TTL 3600`, or the error.
    pub served: String,
}

/// Polls every authoritative server (bounded by `timeout`) until each serves every managed
/// RRset of `topology` (the drained one) at a TTL of at most `ttl`. Returns what still lags
/// at the deadline: empty when every server served the lower TTL.
pub fn wait_for_ttl(
    topology: &Topology,
    servers: &BTreeMap<Fqdn, Vec<SocketAddr>>,
    ttl: u32,
    timeout: Duration,
    clock: &Clock,
) -> Vec<Lagging> {
    let deadline = Instant::now() + timeout;
    let desired = crate::plan::desired(topology);
    let mut pause = Duration::from_millis(5);
    loop {
        let lagging: Vec<Lagging> = desired
            .zones
            .iter()
            .flat_map(|(zone, want)| {
                let keys: Vec<_> = want.rrsets.keys().cloned().collect();
                servers
                    .get(zone)
                    .into_iter()
                    .flatten()
                    .flat_map(move |server| lagging_on(*server, keys.clone(), ttl, clock))
            })
            .collect();
        if lagging.is_empty() || Instant::now() >= deadline {
            return lagging;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The RRsets among `keys` that `server` serves above `ttl` (or could not be asked for).
fn lagging_on(server: SocketAddr, keys: Vec<RrKey>, ttl: u32, clock: &Clock) -> Vec<Lagging> {
    let transport = Transport {
        server,
        timeout: Duration::from_millis(400),
        attempts: 2,
        clock: clock.clone(),
    };
    keys.into_iter()
        .filter_map(|key| {
            let served = match transfer::query_rrset(&transport, None, &key.name, key.rtype) {
                Ok(Some(set)) if set.ttl <= ttl => return None,
                Ok(Some(set)) => format!("TTL {}", set.ttl),
                Ok(None) => return None,
                Err(e) => e.to_string(),
            };
            Some(Lagging {
                server,
                record: key.to_string(),
                served,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::rfc3339;
    use crate::plan::{Action, Change};
    use crate::records::{Rdata, RecordSet, RecordType};

    fn entry(id: u64, command: &str, time: u64, changes: Vec<Change>) -> Entry {
        Entry {
            format: journal::FORMAT.into(),
            id,
            run: format!("r{id}"),
            time: rfc3339(time),
            command: command.into(),
            provider: "rfc2136".into(),
            zone: Fqdn::parse("contoso.com").unwrap(),
            applied: true,
            answer: String::new(),
            failover: None,
            who: None,
            why: None,
            intent: false,
            changes,
        }
    }

    fn lowering(from: u32, to: u32) -> Change {
        let name = Fqdn::parse("xmpp.contoso.com").unwrap();
        let set = |ttl| {
            RecordSet::new(
                name.clone(),
                RecordType::A,
                ttl,
                vec![Rdata::A("192.0.2.1".parse().unwrap())],
            )
            .unwrap()
        };
        Change {
            zone: Fqdn::parse("contoso.com").unwrap(),
            name: name.clone(),
            rtype: RecordType::A,
            action: Action::Update,
            before: Some(set(from)),
            after: Some(set(to)),
        }
    }

    #[test]
    fn timestamps_round_trip() {
        for t in [0, 951_782_400, 1_796_000_000, 1_796_003_599] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        assert_eq!(parse_rfc3339("2026-11-30 00:53:20"), None);
    }

    #[test]
    fn a_drain_is_complete_one_old_ttl_after_the_servers_served_it() {
        let t0 = 1_796_000_000;
        let mut entries = vec![entry(1, DRAIN, t0, vec![lowering(3600, 60)])];
        let state = from_entries(&entries).unwrap();
        assert_eq!((state.ttl, state.old_ttl), (60, 3600));
        assert_eq!(state.status(t0 + 10), DrainStatus::Unconfirmed);
        entries.push(entry(2, DRAIN, t0 + 1, vec![]));
        let state = from_entries(&entries).unwrap();
        assert_eq!(state.authoritative_at, Some(t0 + 1));
        assert_eq!(
            state.status(t0 + 1),
            DrainStatus::InProgress {
                at: t0 + 3601,
                left: 3600
            }
        );
        assert_eq!(
            state.status(t0 + 3601),
            DrainStatus::Complete { at: t0 + 3601 }
        );
        assert!(state.bounded_by.contains("xmpp.contoso.com"));
        entries.push(entry(3, SETTLE, t0 + 5000, vec![lowering(60, 3600)]));
        assert_eq!(from_entries(&entries), None, "settled");
    }

    #[test]
    fn the_topology_is_drained_only_downwards() {
        let mut t = Topology::from_json(
            r#"{"zones":["contoso.com"],"sip_domains":["contoso.com"],"active_pool":"P1",
               "federation":{"name":"xmpp.contoso.com","ttl":30},
               "pools":[{"name":"P1","site":"S","fqdn":"e1.contoso.com","ipv4":["192.0.2.1"]}]}"#,
            Path::new("t.json"),
        )
        .unwrap();
        t.ttl = 3600;
        let d = drained(&t, 60);
        assert_eq!((d.ttl, d.federation.ttl), (60, 30));
        assert_eq!(human(3_605), "1 h 0 min 5 s");
    }
}
