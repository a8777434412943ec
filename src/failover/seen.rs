//! "When does the world see it?": from what the servers served and when, the moment every
//! authoritative server served a change and the moment remote resolvers must have followed.
//!
//! Pure: the times come in as seconds since 1970 read from the injectable clock, so tests
//! need no sleeping.

use serde::Serialize;

use crate::failover::propagation::ServerStatus;
use crate::plan::Plan;
use crate::records::RecordType;

/// The two times of a change that moves the federation record or the SRV order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WhenSeen {
    /// When every authoritative server served the change (seconds since 1970); `None` when
    /// one did not within the wait.
    pub authoritative_at: Option<u64>,
    /// `authoritative_at` plus the largest TTL served for the replaced records: remote
    /// resolvers that honour TTLs see the change by then.
    pub world_at: Option<u64>,
    /// The replaced record whose TTL bounds `world_at`, e.g. `xmpp.contoso.com. A`.
    pub bounded_by: String,
    /// Its TTL as served before the change.
    pub bounding_ttl: u32,
}

impl WhenSeen {
    /// One line for people, with RFC 3339 times.
    pub fn text(&self) -> String {
        let at = |t: Option<u64>| t.map_or_else(|| "not yet".into(), crate::clock::rfc3339);
        format!(
            "authoritative_at {}; world_at {} (bounded by {} TTL {} s)",
            at(self.authoritative_at),
            at(self.world_at),
            self.bounded_by,
            self.bounding_ttl
        )
    }
}

/// Whether `plan` moves what remote servers follow: an SRV RRset or an address RRset.
pub fn moves_federation(plan: &Plan) -> bool {
    plan.changes
        .iter()
        .any(|c| matches!(c.rtype, RecordType::Srv | RecordType::A | RecordType::Aaaa))
}

/// The times for `plan`, whose propagation was polled from `started_at` (seconds since 1970,
/// from the clock) with `statuses` as the result. `None` when the plan moves nothing remote
/// servers follow.
pub fn when_seen(plan: &Plan, statuses: &[ServerStatus], started_at: u64) -> Option<WhenSeen> {
    if !moves_federation(plan) {
        return None;
    }
    let (bounding_ttl, bounded_by) = plan
        .changes
        .iter()
        .filter_map(|c| c.before.as_ref().map(|b| (b.ttl, c.key().to_string())))
        .max_by_key(|(ttl, _)| *ttl)
        // Only creations: nothing was cached but "no such record" (the SOA minimum bounds it).
        .unwrap_or((0, "nothing replaced".into()));
    let all_served = !statuses.is_empty() && statuses.iter().all(|s| s.converged);
    let authoritative_at = all_served.then(|| {
        let slowest_ms = statuses
            .iter()
            .filter_map(|s| s.after_ms)
            .max()
            .unwrap_or(0);
        started_at + slowest_ms.div_ceil(1000)
    });
    Some(WhenSeen {
        authoritative_at,
        world_at: authoritative_at.map(|at| at + u64::from(bounding_ttl)),
        bounded_by,
        bounding_ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::plan::{Action, Change};
    use crate::records::{Fqdn, Rdata, RecordSet};
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn set(name: &Fqdn, rtype: RecordType, ttl: u32, data: Rdata) -> RecordSet {
        RecordSet::new(name.clone(), rtype, ttl, vec![data]).unwrap()
    }

    fn change(name: &str, before_ttl: u32) -> Change {
        let name = Fqdn::parse(name).unwrap();
        let a = |ip: &str| Rdata::A(ip.parse().unwrap());
        Change {
            zone: Fqdn::parse("contoso.com").unwrap(),
            name: name.clone(),
            rtype: RecordType::A,
            action: Action::Update,
            before: Some(set(&name, RecordType::A, before_ttl, a("192.0.2.1"))),
            after: Some(set(&name, RecordType::A, 60, a("192.0.2.2"))),
        }
    }

    fn served(after_ms: Option<u64>) -> ServerStatus {
        ServerStatus {
            zone: Fqdn::parse("contoso.com").unwrap(),
            server: SocketAddr::from(([127, 0, 0, 1], 53)),
            converged: after_ms.is_some(),
            serial: Some(1),
            after_ms,
            polls: 1,
            detail: String::new(),
        }
    }

    #[test]
    fn world_at_is_the_last_server_plus_the_largest_replaced_ttl() {
        // An injected clock standing at a fixed moment: nothing sleeps for a TTL.
        let now = Arc::new(AtomicU64::new(1_796_000_000));
        let clock: Clock = {
            let now = now.clone();
            Arc::new(move || now.load(Ordering::SeqCst))
        };
        let plan = Plan {
            changes: vec![
                change("xmpp.contoso.com", 300),
                change("e1.contoso.com", 60),
            ],
            observed: Vec::new(),
        };
        let started = clock();
        let seen = when_seen(&plan, &[served(Some(120)), served(Some(1_450))], started).unwrap();
        assert_eq!(seen.authoritative_at, Some(1_796_000_002));
        assert_eq!(seen.world_at, Some(1_796_000_302));
        assert_eq!(seen.bounded_by, "xmpp.contoso.com. A");
        assert_eq!(seen.bounding_ttl, 300);
        assert!(
            seen.text().contains("world_at 2026-11-30T00:58:22Z"),
            "{}",
            seen.text()
        );

        now.fetch_add(3_600, Ordering::SeqCst);
        let late = when_seen(&plan, &[served(Some(10)), served(None)], clock()).unwrap();
        assert_eq!((late.authoritative_at, late.world_at), (None, None));
        assert!(late.text().contains("authoritative_at not yet"));
    }

    #[test]
    fn nothing_remote_servers_follow_gives_no_times() {
        let plan = Plan {
            changes: Vec::new(),
            observed: Vec::new(),
        };
        assert_eq!(when_seen(&plan, &[served(Some(1))], 0), None);
    }
}
