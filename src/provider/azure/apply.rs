//! Azure's apply: one guarded write per change, in plan order; a 412 is a stale plan, a lost
//! answer is settled by reading the record set again.

use super::records::{self, Read};
use super::{drift_of, refused, AzureError, AzureProvider, Write};
use crate::plan::Change;
use crate::provider::outcome::{self, Answer, Outcome};
use crate::provider::ProviderError;
use crate::records::{Fqdn, RrKey};

impl AzureProvider {
    /// Applies one zone's changes in plan order; returns what the detail adds.
    pub(super) fn apply_zone(
        &mut self,
        zone: &Fqdn,
        changes: &[Change],
    ) -> Result<String, ProviderError> {
        let mut landed = Vec::new();
        let mut notes = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            match self.write_one(zone, change) {
                Ok(note) => {
                    landed.push(format!("{} {}", change.action.as_str(), change.key()));
                    notes.extend(note);
                }
                Err(error) if i == 0 => return Err(error),
                Err(error) => {
                    return Err(AzureError::PartlyApplied {
                        zone: zone.clone(),
                        landed,
                        total: changes.len(),
                        key: change.key(),
                        source: Box::new(error),
                    }
                    .into())
                }
            }
        }
        Ok(if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        })
    }

    /// The record set as read when it still is the change's `before` (read again when the
    /// one remembered is not); a stale plan otherwise.
    fn guard(&mut self, zone: &Fqdn, change: &Change) -> Result<Option<Read>, ProviderError> {
        let key = change.key();
        let remembered = self.read.get(&key).cloned();
        let holds = |read: &Option<Read>| match read {
            None => change.before.is_none(),
            Some(read) => read.set().ok() == Some(change.before.clone()),
        };
        if holds(&remembered) {
            return Ok(remembered);
        }
        let now = self.fetch_one(zone, &key)?;
        if holds(&now) {
            return Ok(now);
        }
        let found = match &now {
            None => None,
            Some(read) => read.set().map_err(|why| AzureError::Unmanageable {
                key: key.clone(),
                why,
            })?,
        };
        Err(ProviderError::Stale {
            zone: zone.clone(),
            drift: vec![drift_of(change, found)],
        })
    }

    /// One guarded PUT or DELETE; a note when its outcome had to be learned by reading.
    fn write_one(&mut self, zone: &Fqdn, change: &Change) -> Result<Option<String>, ProviderError> {
        let key = change.key();
        let read = self.guard(zone, change)?;
        let write = match (&change.after, &read) {
            (Some(after), read) => Write::Put {
                body: records::put_body(after, read.as_ref().and_then(|r| r.metadata.as_ref())),
                if_match: read.as_ref().map(|r| r.etag.clone()),
            },
            (None, Some(read)) => Write::Delete {
                if_match: read.etag.clone(),
            },
            (None, None) => return Ok(None),
        };
        let method = if matches!(write, Write::Put { .. }) {
            "PUT"
        } else {
            "DELETE"
        };
        let url = self.url(zone, &key);
        let request = format!("{method} {url}");
        let answer = match self.call(method, &url, Some(&write)) {
            Ok(answer) => answer,
            Err((message, true)) => {
                return Err(AzureError::Transport {
                    request,
                    message: format!("{message}; {key} was not written"),
                }
                .into())
            }
            Err((cause, false)) => return self.settle(zone, change, request, cause),
        };
        self.read.remove(&key);
        match answer.status {
            200 | 201 | 202 | 204 => Ok(None),
            412 => {
                // Someone else wrote it, or an earlier try of ours landed after all.
                let now = self.current(zone, &key)?;
                if now == change.after {
                    Ok(Some(format!("{key}: already as planned")))
                } else {
                    Err(ProviderError::Stale {
                        zone: zone.clone(),
                        drift: vec![drift_of(change, now)],
                    })
                }
            }
            status if status >= 500 => {
                let cause = format!("HTTP {status}");
                self.settle(zone, change, request, cause)
            }
            _ => Err(refused(request, &answer).into()),
        }
    }

    /// No usable answer to a write: reading the record set again tells whether it landed.
    fn settle(
        &mut self,
        zone: &Fqdn,
        change: &Change,
        request: String,
        cause: String,
    ) -> Result<Option<String>, ProviderError> {
        let key: RrKey = change.key();
        let reread = || {
            self.current(zone, &key)
                .map(|now| now.map(|set| (set.key(), set)).into_iter().collect())
        };
        let outcome = outcome::settle(Answer::Unsure(()), [change], reread);
        let unknown = |reread: String| AzureError::OutcomeUnknown {
            request: request.clone(),
            key: key.clone(),
            cause: cause.clone(),
            reread,
        };
        match outcome {
            Outcome::Unknown { reread, .. } => Err(unknown(reread).into()),
            Outcome::Applied { .. } => Ok(Some(format!(
                "{key}: no usable answer ({cause}) but reading again shows it written"
            ))),
            Outcome::NotApplied(()) => Err(AzureError::Transport {
                request,
                message: format!("{cause}; reading again shows {key} was not written"),
            }
            .into()),
            Outcome::Drifted { .. } => Err(unknown(
                "it holds neither the plan's before nor its after (another writer?)".into(),
            )
            .into()),
        }
    }
}
