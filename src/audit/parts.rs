//! Large audits read in parts: the domains split into contiguous runs, each run read by
//! [`collect::collect`] on its own thread, and the snapshots merged.
//!
//! Why: one reading goes round by round (zones, SRV records, targets), and between rounds it
//! works alone while the servers idle, then waits for each round's last answers. Two parts run
//! their rounds at different moments, so one keeps the servers busy while the other works, and
//! each part's sockets have their own source ports, which servers that share work out by
//! client port (BIND, Knot, PowerDNS) serve from different threads: 10,000 zones on BIND, 825
//! → 740 ms. Each part asks its share of the questions in flight (the window is divided), so
//! the servers see no more at once than from one reading.
//!
//! A zone or target shared by domains of different parts is asked by each of them (a handful
//! of questions more); the answers merge to the same snapshot a single reading gives.

use std::sync::Mutex;

use crate::audit::collect::{self, Progress, Request, Snapshot};
use crate::dns::batch::BatchSettings;

/// The fewest domains a part reads: smaller audits are read in one piece (splitting them gains
/// nothing and only repeats their shared questions), so two parts start at twice this.
pub const DOMAINS_PER_PART: usize = 2_000;

/// The most parts: two already fill each other's pauses, and each part takes a core (more
/// measured slower on 2 cores shared with the server: 4 parts took 15% longer than 2).
const PARTS: usize = 2;

/// Reads everything the rules need for `request`, in as many parts as the machine has cores
/// (at most [`PARTS`]) and the domains fill.
pub fn collect(request: &Request, progress: &mut dyn FnMut(Progress)) -> Snapshot {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let parts = cores
        .min(PARTS)
        .min(request.domains.len() / DOMAINS_PER_PART);
    collect_in_parts(request, parts, progress)
}

/// [`collect`] in exactly `parts` parts (one piece when fewer than 2).
pub fn collect_in_parts(
    request: &Request,
    parts: usize,
    progress: &mut dyn FnMut(Progress),
) -> Snapshot {
    if parts < 2 || request.domains.len() < 2 {
        return collect::collect(request, progress);
    }
    let requests = split(request, parts);
    // Part 0 runs on this thread and reports the progress of all of them; the others leave
    // theirs here.
    let others: Mutex<Vec<Option<Progress>>> = Mutex::new(vec![None; requests.len()]);
    std::thread::scope(|scope| {
        let handles: Vec<_> = requests[1..]
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let others = &others;
                scope.spawn(move || {
                    collect::collect(part, &mut |p| {
                        others.lock().expect("progress lock")[i + 1] = Some(p);
                    })
                })
            })
            .collect();
        let first = collect::collect(&requests[0], &mut |p| {
            progress(combined(p, &others.lock().expect("progress lock")));
        });
        let mut snapshots = vec![first];
        for handle in handles {
            snapshots.push(handle.join().expect("a part of the audit panicked"));
        }
        merge(snapshots)
    })
}

/// Contiguous runs of the domains (neighbours often share a zone); the topology's own zones
/// and records are read by the first part only.
fn split(request: &Request, parts: usize) -> Vec<Request> {
    let run = request.domains.len().div_ceil(parts);
    let settings = BatchSettings {
        window: (request.settings.window / parts).max(1),
        ..request.settings
    };
    request
        .domains
        .chunks(run)
        .enumerate()
        .map(|(i, domains)| Request {
            domains: domains.to_vec(),
            servers: request.servers.clone(),
            extra_zones: if i == 0 {
                request.extra_zones.clone()
            } else {
                Vec::new()
            },
            extra_keys: if i == 0 {
                request.extra_keys.clone()
            } else {
                Default::default()
            },
            settings,
        })
        .collect()
}

/// Part 0's progress, with the other parts' counts added where they are at the same stage.
fn combined(first: Progress, others: &[Option<Progress>]) -> Progress {
    others
        .iter()
        .flatten()
        .filter(|p| p.stage == first.stage)
        .fold(first, |sum, p| Progress {
            done: sum.done + p.done,
            total: sum.total + p.total,
            ..sum
        })
}

/// One snapshot of the parts' (in part order: where two parts read the same thing, the first
/// one's reading is kept, as one reading would have kept its first answer).
fn merge(parts: Vec<Snapshot>) -> Snapshot {
    let mut parts = parts.into_iter();
    // The first part's maps are kept and the others' moved in: rebuilding them all cost
    // as much as a rule check.
    let mut all = parts.next().unwrap_or_default();
    for part in parts {
        for (name, zone) in part.zone_of {
            all.zone_of.entry(name).or_insert(zone);
        }
        for (zone, servers) in part.servers {
            all.servers.entry(zone).or_insert(servers);
        }
        all.absorb(part.lookups);
        all.down.extend(part.down);
        for (zone, refused) in part.not_serving {
            all.not_serving.entry(zone).or_insert(refused);
        }
        for (server, reason) in part.family_unavailable {
            all.family_unavailable.entry(server).or_insert(reason);
        }
        all.stats.add(&part.stats);
    }
    all
}
