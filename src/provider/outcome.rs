//! The one outcome engine every adapter's write goes through: an answer is a definitive
//! success, a definitive refusal, or ambiguous; an ambiguous one is settled by reading the
//! store again, never guessed.

use std::collections::BTreeMap;

use crate::plan::{self, Change, Drift, Standing};
use crate::records::{RecordSet, RrKey};

/// What a write's answer says on its own, before any reading.
#[derive(Debug)]
pub enum Answer<E> {
    /// A trusted reply saying the write was done.
    Done,
    /// A trusted reply to a request sent once, saying no: nothing was changed.
    Refused(E),
    /// Anything else once the request may have left (no answer, an I/O error or EOF after
    /// sending, an unsigned or unverifiable reply, a server failure, any error to a retry):
    /// it may have landed.
    Unsure(E),
}

/// Where a write ended, as far as the answer and a re-read can tell.
#[derive(Debug)]
pub enum Outcome<E> {
    /// Done. `overruled` is the unsure answer that reading again showed had landed.
    Applied { overruled: Option<E> },
    /// Not done: refused, or reading again shows every RRset still holds its `before`.
    NotApplied(E),
    /// Reading again shows neither every `before` nor every `after` (another writer, or the
    /// server's guard refused a change someone else made): the drifted RRsets.
    Drifted { error: E, drift: Vec<Drift> },
    /// Reading again failed: the write may or may not have landed.
    Unknown { error: E, reread: String },
}

/// Runs the machine: a definitive answer is final; an unsure one is settled by `reread`
/// (which must read the authoritative copy, the primary, never a secondary that may lag).
pub fn settle<'c, E, R: std::fmt::Display>(
    answer: Answer<E>,
    changes: impl IntoIterator<Item = &'c Change> + Clone,
    reread: impl FnOnce() -> Result<BTreeMap<RrKey, RecordSet>, R>,
) -> Outcome<E> {
    let error = match answer {
        Answer::Done => return Outcome::Applied { overruled: None },
        Answer::Refused(error) => return Outcome::NotApplied(error),
        Answer::Unsure(error) => error,
    };
    match reread() {
        Err(reread) => Outcome::Unknown {
            error,
            reread: reread.to_string(),
        },
        Ok(now) => match plan::standing(changes, &now) {
            Standing::After => Outcome::Applied {
                overruled: Some(error),
            },
            Standing::Before => Outcome::NotApplied(error),
            Standing::Neither(drift) => Outcome::Drifted { error, drift },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::records::{Fqdn, Rdata, RecordType};

    fn set(ttl: u32, ip: &str) -> RecordSet {
        let name = Fqdn::parse("xmpp.contoso.com").unwrap();
        RecordSet::new(
            name,
            RecordType::A,
            ttl,
            vec![Rdata::A(ip.parse().unwrap())],
        )
        .unwrap()
    }

    fn update(before: RecordSet, after: RecordSet) -> Change {
        Change {
            zone: Fqdn::parse("contoso.com").unwrap(),
            action: Action::Update,
            name: before.name.clone(),
            rtype: RecordType::A,
            before: Some(before),
            after: Some(after),
        }
    }

    fn holding(s: RecordSet) -> Result<BTreeMap<RrKey, RecordSet>, String> {
        Ok([(s.key(), s)].into_iter().collect())
    }

    #[test]
    fn definitive_answers_are_final_without_reading() {
        let c = update(set(300, "192.0.2.1"), set(300, "192.0.2.2"));
        let never = || -> Result<BTreeMap<RrKey, RecordSet>, String> { panic!("read") };
        assert!(matches!(
            settle::<&str, _>(Answer::Done, [&c], never),
            Outcome::Applied { overruled: None }
        ));
        assert!(matches!(
            settle(Answer::Refused("no"), [&c], never),
            Outcome::NotApplied("no")
        ));
    }

    #[test]
    fn an_unsure_answer_is_settled_by_reading_ttls_included() {
        let c = update(set(300, "192.0.2.1"), set(600, "192.0.2.1"));
        let landed = settle(Answer::Unsure("lost"), [&c], || {
            holding(set(600, "192.0.2.1"))
        });
        assert!(matches!(
            landed,
            Outcome::Applied {
                overruled: Some("lost")
            }
        ));
        let not = settle(Answer::Unsure("lost"), [&c], || {
            holding(set(300, "192.0.2.1"))
        });
        assert!(matches!(not, Outcome::NotApplied("lost")));
        let other = settle(Answer::Unsure("lost"), [&c], || {
            holding(set(60, "192.0.2.1"))
        });
        assert!(matches!(other, Outcome::Drifted { drift, .. } if drift.len() == 1));
        let unknown = settle(Answer::Unsure("lost"), [&c], || Err("down"));
        assert!(matches!(unknown, Outcome::Unknown { reread, .. } if reread == "down"));
    }
}
