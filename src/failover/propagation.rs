//! Propagation: poll every authoritative server (bounded) until it serves what was applied.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::Clock;
use crate::dns::transfer;
use crate::dns::transport::Transport;
use crate::plan::{DesiredState, Plan};
use crate::records::{Fqdn, Rdata, RecordType, RrKey};

/// How many changed SRV RRsets of a zone are checked on each server; address records (the
/// federation A/AAAA) are always all checked. A sample keeps polling cheap at 10,000 domains
/// while still catching a server stuck on the old serial.
pub const SRV_SAMPLE: usize = 8;
/// First pause between polls of one server; doubled up to `MAX_POLL_INTERVAL`.
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(5);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Per query attempt.
const QUERY_TIMEOUT: Duration = Duration::from_millis(400);

/// One answer a server must give: the RRset at `name`/`rtype` holds `records` (empty = absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub name: Fqdn,
    pub rtype: RecordType,
    pub records: Vec<Rdata>,
}

/// What one server did for one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    pub zone: Fqdn,
    pub server: SocketAddr,
    pub converged: bool,
    /// The last SOA serial it served.
    pub serial: Option<u32>,
    /// Time from the start of the command until it served every expected answer.
    pub after_ms: Option<u64>,
    pub polls: u32,
    /// Why it did not converge (the last difference or error), or empty.
    pub detail: String,
}

/// The answers to check per zone: every managed address RRset (the federation A/AAAA, and
/// the targets' when managed) and up to `SRV_SAMPLE` SRV RRsets, those the plan changed first.
pub fn expectations(desired: &DesiredState, plan: &Plan) -> BTreeMap<Fqdn, Vec<Expectation>> {
    let changes: std::collections::HashMap<&Fqdn, Vec<&crate::plan::Change>> =
        plan.by_zone().into_iter().collect();
    let mut per_zone = BTreeMap::new();
    for (zone, want) in &desired.zones {
        let changed: Vec<&RrKey> = changes
            .get(zone)
            .into_iter()
            .flatten()
            .filter(|c| c.rtype == RecordType::Srv)
            .map(|c| &c.name)
            .filter_map(|name| want.managed.get(&RrKey::new(name.clone(), RecordType::Srv)))
            .collect();
        let unchanged = want
            .managed
            .iter()
            .filter(|k| k.rtype == RecordType::Srv && !changed.contains(k));
        let srv = changed.iter().copied().chain(unchanged).take(SRV_SAMPLE);
        let addresses = want.managed.iter().filter(|k| k.rtype != RecordType::Srv);
        let list: Vec<Expectation> = addresses
            .chain(srv)
            .map(|key| Expectation {
                name: key.name.clone(),
                rtype: key.rtype,
                records: want
                    .rrsets
                    .get(key)
                    .map(|s| s.records().to_vec())
                    .unwrap_or_default(),
            })
            .collect();
        if !list.is_empty() {
            per_zone.insert(zone.clone(), list);
        }
    }
    per_zone
}

/// At most this many (zone, server) pairs are polled at once.
const WORKERS: usize = 32;

/// Polls each zone's servers until each serves every expectation or `deadline` passes, a
/// bounded number at a time. Results in zone order, then server order.
pub fn wait(
    expected: &BTreeMap<Fqdn, Vec<Expectation>>,
    servers: &BTreeMap<Fqdn, Vec<SocketAddr>>,
    started: Instant,
    deadline: Instant,
    clock: &Clock,
) -> Vec<ServerStatus> {
    let pairs: Vec<(&Fqdn, &Vec<Expectation>, SocketAddr)> = expected
        .iter()
        .flat_map(|(zone, wants)| {
            servers
                .get(zone)
                .into_iter()
                .flatten()
                .map(move |s| (zone, wants, *s))
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(pairs.len()));
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(pairs.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((zone, wants, server)) = pairs.get(i) else {
                    break;
                };
                let status = poll(zone, wants, *server, started, deadline, clock);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, status));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut statuses: Vec<ServerStatus> = results.into_iter().map(|(_, s)| s).collect();
    note_lagging_serials(&mut statuses);
    statuses
}

/// A server can serve every checked answer from an older serial (the change did not touch
/// them, or a later change is still on its way): say so next to it.
fn note_lagging_serials(statuses: &mut [ServerStatus]) {
    let mut newest: BTreeMap<Fqdn, u32> = BTreeMap::new();
    for s in statuses.iter() {
        if let Some(serial) = s.serial {
            let entry = newest.entry(s.zone.clone()).or_insert(serial);
            // RFC 1982 serial arithmetic: `serial` is newer when ahead by less than 2^31.
            if serial.wrapping_sub(*entry) as i32 > 0 {
                *entry = serial;
            }
        }
    }
    for s in statuses.iter_mut() {
        if let (true, Some(serial), Some(&top)) = (s.converged, s.serial, newest.get(&s.zone)) {
            if serial != top {
                s.detail = format!("serial {serial} is behind {top} (the checked answers match)");
            }
        }
    }
}

fn poll(
    zone: &Fqdn,
    wants: &[Expectation],
    server: SocketAddr,
    started: Instant,
    deadline: Instant,
    clock: &Clock,
) -> ServerStatus {
    let transport = Transport {
        server,
        timeout: QUERY_TIMEOUT,
        attempts: 2,
        clock: clock.clone(),
    };
    let mut status = ServerStatus {
        zone: zone.clone(),
        server,
        converged: false,
        serial: None,
        after_ms: None,
        polls: 0,
        detail: String::new(),
    };
    let mut pause = FIRST_POLL_INTERVAL;
    loop {
        status.polls += 1;
        match check(&transport, zone, wants) {
            Ok((serial, None)) => {
                status.serial = serial;
                status.converged = true;
                status.after_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(0));
                status.detail.clear();
                return status;
            }
            Ok((serial, Some(difference))) => {
                status.serial = serial;
                status.detail = difference;
            }
            Err(error) => status.detail = error,
        }
        let now = Instant::now();
        if now >= deadline {
            return status;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_POLL_INTERVAL);
    }
}

/// The server's serial, and the first expectation it does not meet (if any).
fn check(
    transport: &Transport,
    zone: &Fqdn,
    wants: &[Expectation],
) -> Result<(Option<u32>, Option<String>), String> {
    let serial = transfer::soa_serial(transport, None, zone).map_err(|e| e.to_string())?;
    for want in wants {
        let served = transfer::query_rrset(transport, None, &want.name, want.rtype)
            .map_err(|e| e.to_string())?;
        let records = served.as_ref().map(|s| s.records()).unwrap_or_default();
        if records != want.records.as_slice() {
            let shown = |r: &[Rdata]| {
                if r.is_empty() {
                    "nothing".to_string()
                } else {
                    r.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            return Ok((
                serial,
                Some(format!(
                    "{} {} serves {} (expected {})",
                    want.name,
                    want.rtype,
                    shown(records),
                    shown(&want.records)
                )),
            ));
        }
    }
    Ok((serial, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(serial: u32) -> ServerStatus {
        ServerStatus {
            zone: Fqdn::parse("contoso.com").unwrap(),
            server: SocketAddr::from(([127, 0, 0, 1], 53)),
            converged: true,
            serial: Some(serial),
            after_ms: Some(1),
            polls: 1,
            detail: String::new(),
        }
    }

    #[test]
    fn a_lagging_serial_is_noted_with_serial_arithmetic() {
        let mut statuses = [status(7), status(u32::MAX), status(7)];
        note_lagging_serials(&mut statuses);
        // 7 is after 4294967295 once the serial wrapped (RFC 1982).
        assert_eq!(statuses[0].detail, "");
        assert!(statuses[1].detail.contains("serial 4294967295 is behind 7"));
        assert_eq!(statuses[2].detail, "");
    }
}
