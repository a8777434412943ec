//! Route 53's apply: the guard on creates, the change batches, their settling when an answer
//! is lost, and the wait for INSYNC.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{
    backoff, batches, drift, is_retryable_code, refused, xml, Group, Route53Error, Route53Provider,
    API, MAX_ATTEMPTS,
};
use crate::plan::{Change, Drift};
use crate::provider::outcome::{self, Answer, Outcome};
use crate::provider::ProviderError;
use crate::records::{Fqdn, RrKey};
use xml::{RawSet, Verb};

/// How one batch failed.
enum BatchFailure {
    /// Route 53 (or the guard) refused because the zone no longer holds the plan's `before`.
    Stale(Vec<Drift>),
    Error(Route53Error),
}

impl Route53Provider {
    /// Applies one zone's changes; returns what the detail says.
    pub(super) fn apply_zone(
        &mut self,
        zone: &Fqdn,
        changes: &[Change],
    ) -> Result<String, ProviderError> {
        let id = self.zone_id(zone)?;
        self.guard_creates(zone, changes)?;
        let groups: Vec<Group> = changes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut parts = Vec::new();
                if let Some(before) = &c.before {
                    parts.push((Verb::Delete, self.delete_of(before)));
                }
                if let Some(after) = &c.after {
                    parts.push((Verb::Create, RawSet::from_set(after)));
                }
                (i, parts)
            })
            .collect();
        let batches = batches(groups);
        let total = batches.len();
        let mut notes = Vec::new();
        for (n, batch) in batches.into_iter().enumerate() {
            let planned: Vec<&Change> = batch.iter().map(|(i, _)| &changes[*i]).collect();
            match self.send_batch(zone, &id, &batch, &planned) {
                Ok(note) => notes.push(note),
                Err(BatchFailure::Stale(drift)) if n == 0 => {
                    return Err(ProviderError::Stale {
                        zone: zone.clone(),
                        drift,
                    })
                }
                Err(failure) => {
                    let source = match failure {
                        BatchFailure::Error(e) if n == 0 => return Err(e.into()),
                        BatchFailure::Error(e) => e,
                        BatchFailure::Stale(drift) => Route53Error::Transport {
                            zone: zone.clone(),
                            request: "ChangeResourceRecordSets".into(),
                            message: format!(
                                "stale plan, this batch was refused:\n{}",
                                crate::provider::describe_drift(&drift)
                            ),
                        },
                    };
                    return Err(Route53Error::PartlyApplied {
                        zone: zone.clone(),
                        landed: n,
                        batches: total,
                        done: notes.join("; "),
                        source: Box::new(source),
                    }
                    .into());
                }
            }
        }
        Ok(format!(
            "{} ChangeResourceRecordSets batch(es) of {} RRset(s): {}",
            total,
            changes.len(),
            notes.join("; ")
        ))
    }

    /// Route 53 refuses a `CREATE` of an RRset that exists, but a stand-in may not: the RRsets
    /// to create are read first, and one that exists refuses the whole zone here.
    fn guard_creates(&mut self, zone: &Fqdn, changes: &[Change]) -> Result<(), ProviderError> {
        let creates: BTreeSet<RrKey> = changes
            .iter()
            .filter(|c| c.before.is_none())
            .map(Change::key)
            .collect();
        if creates.is_empty() {
            return Ok(());
        }
        let raw = self.fetch(zone, &creates)?;
        let now = Self::state(zone, &raw)?;
        let drifted = drift(changes, &now);
        let drifted: Vec<Drift> = drifted
            .into_iter()
            .filter(|d| creates.contains(&d.key))
            .collect();
        if drifted.is_empty() {
            Ok(())
        } else {
            Err(ProviderError::Stale {
                zone: zone.clone(),
                drift: drifted,
            })
        }
    }

    /// Sends one batch (retrying while Route 53 throttles) and waits for INSYNC.
    fn send_batch(
        &mut self,
        zone: &Fqdn,
        id: &str,
        batch: &[Group],
        planned: &[&Change],
    ) -> Result<String, BatchFailure> {
        let parts: Vec<(Verb, &RawSet)> = batch
            .iter()
            .flat_map(|(_, parts)| parts.iter().map(|(v, s)| (*v, s)))
            .collect();
        let body = xml::change_batch(&parts, "xmppdns apply");
        let path = format!("/{API}/hostedzone/{id}/rrset/");
        let request = format!("POST {}{path}", self.endpoint);
        for attempt in 1..=MAX_ATTEMPTS {
            let answer = match self.call("POST", &path, &[], Some(body.clone())) {
                Ok(answer) => answer,
                Err(e) if e.not_sent => {
                    return Err(BatchFailure::Error(Route53Error::Transport {
                        zone: zone.clone(),
                        request,
                        message: format!("{}; nothing was changed in this zone", e.message),
                    }))
                }
                Err(e) => return self.settle(zone, planned, e.message),
            };
            if answer.status == 200 {
                let Some((change, status)) = xml::change_info(&answer.body) else {
                    return self.settle(zone, planned, "the answer has no ChangeInfo".into());
                };
                return Ok(self.wait_in_sync(zone, &change, &status));
            }
            let (code, messages) = xml::error(&answer.body);
            if is_retryable_code(&code) && attempt < MAX_ATTEMPTS {
                tracing::info!("{zone}: Route 53 answered {code}; trying again");
                std::thread::sleep(backoff(attempt));
                continue;
            }
            if answer.status >= 500 {
                return self.settle(zone, planned, format!("HTTP {} {code}", answer.status));
            }
            if matches!(code.as_str(), "InvalidChangeBatch" | "InvalidInput") {
                // Refused whole: learn whether it is because the zone moved on.
                let now = self.reread(zone, planned).map_err(BatchFailure::Error)?;
                let drifted = drift(
                    &planned.iter().map(|c| (*c).clone()).collect::<Vec<_>>(),
                    &now,
                );
                if !drifted.is_empty() {
                    return Err(BatchFailure::Stale(drifted));
                }
            }
            return Err(BatchFailure::Error(refused(
                zone, request, &answer, code, messages, true,
            )));
        }
        unreachable!("the last attempt returns")
    }

    /// The batch's RRsets as they are now, parsed.
    fn reread(
        &mut self,
        zone: &Fqdn,
        planned: &[&Change],
    ) -> Result<BTreeMap<RrKey, crate::records::RecordSet>, Route53Error> {
        let keys: BTreeSet<RrKey> = planned.iter().map(|c| c.key()).collect();
        let raw = self.fetch(zone, &keys)?;
        Self::state(zone, &raw)
    }

    /// No usable answer to a batch: it is atomic, so the zone holds either every `before` or
    /// every `after`; reading again tells which.
    fn settle(
        &mut self,
        zone: &Fqdn,
        planned: &[&Change],
        cause: String,
    ) -> Result<String, BatchFailure> {
        let unknown = |reread: String| {
            BatchFailure::Error(Route53Error::OutcomeUnknown {
                zone: zone.clone(),
                cause: cause.clone(),
                reread,
            })
        };
        let reread = || self.reread(zone, planned);
        match outcome::settle(Answer::Unsure(()), planned.iter().copied(), reread) {
            Outcome::Applied { .. } => Ok(format!(
                "the batch got no usable answer ({cause}) but reading again shows it applied (its sync status is unknown)"
            )),
            Outcome::NotApplied(()) => Err(BatchFailure::Error(Route53Error::Transport {
                zone: zone.clone(),
                request: "ChangeResourceRecordSets".into(),
                message: format!(
                    "{cause}; reading again shows the batch was not applied: nothing was changed in this zone"
                ),
            })),
            Outcome::Drifted { .. } => Err(unknown(
                "the RRsets match neither the plan's before nor its after (another writer?)".into(),
            )),
            Outcome::Unknown { reread, .. } => Err(unknown(reread)),
        }
    }

    /// GetChange until INSYNC, within `sync_timeout`, saying so on stderr while it waits.
    /// Route 53 has committed the change by now: a timeout is a warning, not a failure.
    fn wait_in_sync(&mut self, zone: &Fqdn, change: &str, status: &str) -> String {
        let started = Instant::now();
        let mut status = status.to_string();
        let mut pause = Duration::from_millis(500);
        let path = format!("/{API}/change/{change}");
        while status != "INSYNC" {
            if started.elapsed() >= self.sync_timeout {
                tracing::warn!(
                    "{zone}: change {change} still {status} after {:?}",
                    self.sync_timeout
                );
                return format!(
                    "change {change} accepted, still {status} after {} s (Route 53 will finish it; check with `aws route53 get-change --id {change}`)",
                    started.elapsed().as_secs()
                );
            }
            eprintln!(
                "{zone}: Route 53 change {change} is {status}; waited {} s of at most {} s",
                started.elapsed().as_secs(),
                self.sync_timeout.as_secs()
            );
            std::thread::sleep(pause.min(self.sync_timeout.saturating_sub(started.elapsed())));
            pause = (pause * 2).min(Duration::from_secs(10));
            match self.get(zone, &path, &[]) {
                Ok(body) => {
                    if let Some((_, now)) = xml::change_info(&body) {
                        status = now;
                    }
                }
                Err(e) => tracing::warn!("{zone}: GetChange {change}: {e}"),
            }
        }
        format!(
            "change {change} INSYNC after {:.1} s",
            started.elapsed().as_secs_f64()
        )
    }
}
