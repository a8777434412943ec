//! The journal: one JSON line per provider apply (any command), for `failback` and `rollback`.
//!
//! Lines are only ever appended, each with one `write` of a whole line, so a crash leaves at
//! worst one partial last line, which reading skips with a warning instead of failing.
//!
//! Each zone's apply writes two lines with the same id: its intent before anything is sent
//! (`"intent": true`, the changes it is about to make) and its outcome after. Reading keeps the
//! last line of each id, so an entry still marked `intent` is a run that ended (a crash, a
//! kill) before its outcome was known: any of its changes may have landed, and whoever uses it
//! settles that by reading DNS (rollback restores exactly what it finds written).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::plan::Change;
use crate::records::Fqdn;

/// Format tag of every line, so a future layout can be told apart.
pub const FORMAT: &str = "xmppdns-journal/1";

/// A failover's pools, recorded on each entry it wrote so `failback` can find its way back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    pub from: String,
    pub to: String,
}

/// One apply of one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub format: String,
    /// 1, 2, 3... in file order.
    pub id: u64,
    /// Entries written by one command share a run id.
    pub run: String,
    /// UTC, RFC 3339.
    pub time: String,
    /// `apply`, `failover`, `failback` or `rollback`.
    pub command: String,
    pub provider: String,
    pub zone: Fqdn,
    /// Whether the provider reported success. Failed applies are recorded too: they say what
    /// was attempted and what the server answered.
    pub applied: bool,
    /// The server's answer (or the error), in words.
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// Who ran the command, `user@host` (absent from lines written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// Why, from `--reason` (e.g. a change ticket), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// True on an intent line: written before the apply, superseded by the outcome line with
    /// the same id. An entry read back as an intent never got its outcome.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intent: bool,
    /// With the RRsets before (what was read) and after (what was written).
    pub changes: Vec<Change>,
}

/// The answer an intent line carries until its outcome supersedes it.
pub const INTERRUPTED: &str = "interrupted: the command ended before this apply's outcome was recorded, so any of these changes may have landed; `plan` and `rollback` read DNS to settle it";

impl Entry {
    /// An apply whose outcome was never recorded (its command was killed or crashed).
    pub fn interrupted(&self) -> bool {
        self.intent
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot append to the journal {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the journal {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the journal {} has no entry {id} (it has {count})", path.display())]
    NoEntry { path: PathBuf, id: u64, count: u64 },
    #[error("the journal {} has no entry to roll back", path.display())]
    Empty { path: PathBuf },
}

/// The journal file and the next id to write.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    next_id: u64,
    /// The file's length after our last read or write: when it differs at the next append,
    /// another writer (or another `Journal` of this command) appended, and ids are re-read.
    known_len: u64,
    /// The file ends in a torn line: the next append starts a new line first.
    torn: bool,
    run: String,
    who: String,
    why: Option<String>,
}

/// This process's run id: every entry one command writes shares it.
fn run_id() -> &'static str {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{nanos:x}-{}", std::process::id())
    })
}

/// The reason this process's command gives (`--reason`), for every entry it writes.
static REASON: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records why this process's command changes DNS (one process, one command, like the run
/// id): every journal opened afterwards writes it on its entries. Only the first call counts.
pub fn set_reason(reason: &str) {
    let _ = REASON.set(reason.trim().to_string());
}

/// Who runs this command, `user@host`: the user who ran `sudo` if there is one (the person,
/// not root), else the login name; the host from the kernel.
pub fn current_user() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{}@{host}", user.trim())
}

/// The default journal of a topology: `<folder>/<file stem>.journal.jsonl`.
pub fn default_path(topology: &Path) -> PathBuf {
    let stem = topology
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "xmppdns".into());
    topology.with_file_name(format!("{stem}.journal.jsonl"))
}

impl Journal {
    /// Opens the journal, checking that it can be appended to before anything is applied
    /// (a missing file is created by the first append; its folder must accept new files).
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() {
            OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(open_error)?;
        } else {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            tempfile::NamedTempFile::new_in(folder.unwrap_or(Path::new(".")))
                .map_err(open_error)?;
        }
        let mut journal = Journal {
            path: path.to_path_buf(),
            next_id: 1,
            known_len: u64::MAX,
            torn: false,
            run: run_id().to_string(),
            who: current_user(),
            why: REASON.get().filter(|r| !r.is_empty()).cloned(),
        };
        journal.sync()?;
        Ok(journal)
    }

    /// Re-reads the file when it changed since we last saw it.
    fn sync(&mut self) -> Result<(), JournalError> {
        let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if len != self.known_len {
            let (entries, torn) = read(&self.path)?;
            // Only the largest id is needed: the parse is shared, not copied.
            self.next_id = entries.iter().map(|e| e.id).max().unwrap_or(0) + 1;
            self.torn = torn;
            self.known_len = len;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes under another run id than this process's (tests: two commands in one process).
    pub fn with_run(mut self, run: &str) -> Journal {
        self.run = run.to_string();
        self
    }

    /// Writes `who` and `why` instead of this process's user and reason (tests).
    pub fn with_author(mut self, who: &str, why: Option<&str>) -> Journal {
        self.who = who.to_string();
        self.why = why.map(str::to_string);
        self
    }

    /// Appends one entry; fills in format, id, run, time, who and why. Returns the id.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &mut self,
        command: &str,
        provider: &str,
        zone: &Fqdn,
        applied: bool,
        answer: String,
        failover: Option<Failover>,
        changes: Vec<Change>,
        unix_seconds: u64,
    ) -> Result<u64, JournalError> {
        self.sync()?;
        let id = self.next_id;
        self.write(
            id,
            command,
            provider,
            zone,
            (applied, answer, false),
            failover,
            changes,
            unix_seconds,
        )
    }

    /// Appends the intent of an apply about to start (a new id); its outcome is recorded with
    /// [`Journal::outcome`] under the same id.
    pub fn intend(
        &mut self,
        command: &str,
        provider: &str,
        zone: &Fqdn,
        failover: Option<Failover>,
        changes: Vec<Change>,
        unix_seconds: u64,
    ) -> Result<u64, JournalError> {
        self.sync()?;
        let id = self.next_id;
        let answer = (false, INTERRUPTED.to_string(), true);
        self.write(
            id,
            command,
            provider,
            zone,
            answer,
            failover,
            changes,
            unix_seconds,
        )
    }

    /// Records the outcome of intent `id`: a line with the same id that supersedes it.
    #[allow(clippy::too_many_arguments)]
    pub fn outcome(
        &mut self,
        id: u64,
        command: &str,
        provider: &str,
        zone: &Fqdn,
        applied: bool,
        answer: String,
        failover: Option<Failover>,
        changes: Vec<Change>,
        unix_seconds: u64,
    ) -> Result<u64, JournalError> {
        self.sync()?;
        let answer = (applied, answer, false);
        self.write(
            id,
            command,
            provider,
            zone,
            answer,
            failover,
            changes,
            unix_seconds,
        )
    }

    /// Writes one line under `id`; `(applied, answer, intent)`.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        id: u64,
        command: &str,
        provider: &str,
        zone: &Fqdn,
        (applied, answer, intent): (bool, String, bool),
        failover: Option<Failover>,
        changes: Vec<Change>,
        unix_seconds: u64,
    ) -> Result<u64, JournalError> {
        let entry = Entry {
            format: FORMAT.to_string(),
            id,
            run: self.run.clone(),
            time: crate::clock::rfc3339(unix_seconds),
            command: command.to_string(),
            provider: provider.to_string(),
            zone: zone.clone(),
            applied,
            answer,
            failover,
            who: Some(self.who.clone()),
            why: self.why.clone(),
            intent,
            changes,
        };
        let mut line = if self.torn { "\n" } else { "" }.to_string();
        line.push_str(&serde_json::to_string(&entry).expect("journal entries serialize"));
        line.push('\n');
        let write_error = |source| JournalError::Write {
            path: self.path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(write_error)?;
        file.write_all(line.as_bytes()).map_err(write_error)?;
        file.sync_data().map_err(write_error)?;
        self.torn = false;
        self.next_id = self.next_id.max(id + 1);
        self.known_len += line.len() as u64;
        Ok(id)
    }

    /// Every readable entry, in file order.
    pub fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        Ok(read(&self.path)?.0.to_vec())
    }

    /// The entries to roll back: entry `id`, or (without one) every entry of the last command
    /// that was not itself a rollback, newest first, failed ones included: what a failed entry
    /// did land is restored too (running `rollback` twice restores once, then finds nothing).
    pub fn rollback_targets(&self, id: Option<u64>) -> Result<Vec<Entry>, JournalError> {
        let entries = self.entries()?;
        match id {
            Some(id) => {
                let count = entries.len() as u64;
                entries
                    .into_iter()
                    .find(|e| e.id == id)
                    .map(|e| vec![e])
                    .ok_or(JournalError::NoEntry {
                        path: self.path.clone(),
                        id,
                        count,
                    })
            }
            None => {
                // The last command that was not itself a rollback, whatever its outcome: a
                // failed one must not make an older, successful one the target.
                let run = entries
                    .iter()
                    .rev()
                    .find(|e| e.command != "rollback")
                    .map(|e| e.run.clone())
                    .ok_or(JournalError::Empty {
                        path: self.path.clone(),
                    })?;
                Ok(entries
                    .into_iter()
                    .rev()
                    .filter(|e| e.run == run && e.command != "rollback")
                    .collect())
            }
        }
    }

    /// The last failover that applied something (failbacks are not counted, so running
    /// `failback` twice goes back once and then finds nothing to change).
    pub fn last_failover(&self) -> Result<Option<Failover>, JournalError> {
        Ok(self
            .entries()?
            .into_iter()
            .rev()
            // An interrupted failover may have landed: it counts (failback reads DNS anyway).
            .filter(|e| (e.applied || e.intent) && e.command == "failover")
            .find_map(|e| e.failover))
    }
}

/// Every readable entry of the journal at `path`, in file order, without opening it for
/// appending (a missing journal has none).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, JournalError> {
    Ok(read(path)?.0.to_vec())
}

/// [`read_entries`] for a caller that only looks: the parse this process keeps, shared
/// instead of copied (a journal of 20,000 entries is some 40 MB of entries to copy).
pub fn shared_entries(path: &Path) -> Result<Arc<[Entry]>, JournalError> {
    Ok(read(path)?.0)
}

/// A journal file as last parsed in this process: its path, its length and modification time
/// then, and what it held.
struct Parsed {
    path: PathBuf,
    stamp: (u64, Option<std::time::SystemTime>),
    entries: Arc<[Entry]>,
    torn: bool,
}

/// One command reads its journal several times (interrupted runs, drains, pending moves, the
/// next id), and the journal only grows: after one apply of 10,000 changes (10.7 MB), `plan`
/// spent 0.24 s parsing it four times. The last parse is kept and used again while the file's
/// length and modification time are unchanged.
static PARSED: std::sync::Mutex<Option<Parsed>> = std::sync::Mutex::new(None);

/// The file's length and modification time, `None` when it does not exist.
fn stamp(path: &Path) -> Result<Option<(u64, Option<std::time::SystemTime>)>, JournalError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.len(), meta.modified().ok()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(JournalError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The readable entries, and whether the file ends in a torn (unterminated) line.
fn read(path: &Path) -> Result<(Arc<[Entry]>, bool), JournalError> {
    let Some(before) = stamp(path)? else {
        return Ok((Arc::from([]), false));
    };
    let mut parsed = PARSED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = parsed
        .as_ref()
        .filter(|p| p.path == path && p.stamp == before)
    {
        return Ok((Arc::clone(&p.entries), p.torn));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Arc::from([]), false)),
        Err(source) => {
            return Err(JournalError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let (entries, torn) = parse(&text, path);
    let entries: Arc<[Entry]> = entries.into();
    // Kept only when nothing wrote to the file while it was read.
    if stamp(path)? == Some(before) {
        *parsed = Some(Parsed {
            path: path.to_path_buf(),
            stamp: before,
            entries: Arc::clone(&entries),
            torn,
        });
    }
    Ok((entries, torn))
}

/// The readable entries of a journal's text (`path` names it in warnings), and whether it
/// ends in a torn (unterminated) line.
pub(crate) fn parse(text: &str, path: &Path) -> (Vec<Entry>, bool) {
    let mut entries: Vec<Entry> = Vec::new();
    // Where each id is in `entries`: searching them for every line made reading a journal
    // quadratic in its entries (20,000 entries: a fifth of `plan`'s time).
    let mut at: HashMap<u64, usize> = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            // An outcome supersedes its intent (same id, written later).
            Ok(entry) => match at.get(&entry.id) {
                Some(&earlier) => entries[earlier] = entry,
                None => {
                    at.insert(entry.id, entries.len());
                    entries.push(entry);
                }
            },
            Err(e) => tracing::warn!(
                "journal {} line {}: skipped, not an entry ({e})",
                path.display(),
                number + 1
            ),
        }
    }
    (entries, !text.is_empty() && !text.ends_with('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::records::{Rdata, RecordSet, RecordType};

    fn change(before: [u8; 4], after: [u8; 4]) -> Change {
        let name = Fqdn::parse("xmpp.contoso.com").unwrap();
        let set = |ip: [u8; 4]| {
            RecordSet::new(name.clone(), RecordType::A, 300, vec![Rdata::A(ip.into())]).unwrap()
        };
        Change {
            zone: Fqdn::parse("contoso.com").unwrap(),
            action: Action::Update,
            name: name.clone(),
            rtype: RecordType::A,
            before: Some(set(before)),
            after: Some(set(after)),
        }
    }

    /// Appends one rfc2136 entry for contoso.com at time 0.
    fn add(
        journal: &mut Journal,
        command: &str,
        applied: bool,
        answer: String,
        failover: Option<Failover>,
        change: Change,
    ) -> Result<u64, JournalError> {
        let zone = Fqdn::parse("contoso.com").unwrap();
        journal.append(
            command,
            "rfc2136",
            &zone,
            applied,
            answer,
            failover,
            vec![change],
            0,
        )
    }

    #[test]
    fn outcomes_written_out_of_order_supersede_their_own_intents() {
        // Two writers' lines interleaved: intents 1 and 2, then 2's outcome, then 1's.
        let line = |id: u64, intent: bool| {
            format!(
                r#"{{"format":"{FORMAT}","id":{id},"run":"r","time":"t","command":"apply","provider":"zonefile","zone":"contoso.com.","applied":{},"answer":"{}","intent":{intent},"changes":[]}}"#,
                !intent,
                if intent { "pending" } else { "ok" }
            )
        };
        let text = [line(1, true), line(2, true), line(2, false), line(1, false)].join("\n");
        let (entries, torn) = parse(&text, Path::new("j.jsonl"));
        assert!(torn, "no final newline");
        let seen: Vec<(u64, bool)> = entries.iter().map(|e| (e.id, e.applied)).collect();
        assert_eq!(seen, vec![(1, true), (2, true)]);
    }

    #[test]
    fn an_outcome_supersedes_its_intent_and_an_intent_alone_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let zone = Fqdn::parse("contoso.com").unwrap();
        let mut journal = Journal::open(&path).unwrap().with_run("r");
        let c = change([192, 0, 2, 1], [192, 0, 2, 2]);
        let moved = || {
            Some(Failover {
                from: "EdgePool1".into(),
                to: "EdgePool2".into(),
            })
        };
        let first = journal
            .intend("failover", "rfc2136", &zone, moved(), vec![c.clone()], 0)
            .unwrap();
        journal
            .outcome(
                first,
                "failover",
                "rfc2136",
                &zone,
                true,
                "ok".into(),
                moved(),
                vec![c.clone()],
                1,
            )
            .unwrap();
        // A second zone whose command was killed mid-apply: the intent alone.
        let second = journal
            .intend("failover", "rfc2136", &zone, moved(), vec![c], 2)
            .unwrap();
        assert_eq!((first, second), (1, 2));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "intent, outcome, intent");
        let entries = read_entries(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].applied && !entries[0].interrupted());
        assert!(!entries[1].applied && entries[1].interrupted());
        assert_eq!(entries[1].answer, INTERRUPTED);
        // A fresh journal continues after the highest id.
        let mut again = Journal::open(&path).unwrap();
        assert_eq!(
            add(
                &mut again,
                "apply",
                true,
                "ok".into(),
                None,
                change([1, 1, 1, 1], [2, 2, 2, 2])
            )
            .unwrap(),
            3
        );
    }

    #[test]
    fn appends_reads_and_finds_runs_and_failovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut first = Journal::open(&path).unwrap().with_run("failover-run");
        let moved = Some(Failover {
            from: "EdgePool1".into(),
            to: "EdgePool2".into(),
        });
        let c = change([192, 0, 2, 1], [192, 0, 2, 2]);
        add(&mut first, "failover", true, "ok".into(), moved, c.clone()).unwrap();
        add(&mut first, "failover", true, "ok".into(), None, c).unwrap();
        // A torn last line (a crash mid-write) is skipped, not fatal.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"format\":\"xmppdns-jour")
            .unwrap();
        let mut second = Journal::open(&path).unwrap().with_run("failed-apply");
        assert!(second.torn);
        assert_eq!(second.entries().unwrap().len(), 2);
        let third = change([192, 0, 2, 2], [192, 0, 2, 3]);
        add(&mut second, "apply", false, "REFUSED".into(), None, third).unwrap();
        let entries = second.entries().unwrap();
        assert_eq!(entries.len(), 3, "the entry after a torn line is readable");
        assert_eq!(entries[2].id, 3);
        assert_eq!((entries[0].id, entries[1].id), (1, 2));
        assert_eq!(entries[0].run, entries[1].run, "one command, one run");
        assert_eq!(entries[0].time, "1970-01-01T00:00:00Z");
        assert_eq!(second.next_id, 4);
        // The last command failed: a plain rollback targets it (what it landed), never the
        // older failover before it.
        let failed = second.rollback_targets(None).unwrap();
        assert_eq!(failed.iter().map(|e| e.id).collect::<Vec<_>>(), [3]);
        // Another writer appended: the next id follows its entry, not ours.
        let mut other = Journal::open(&path).unwrap().with_run("other-apply");
        let c = change([192, 0, 2, 3], [192, 0, 2, 4]);
        add(&mut other, "apply", true, "ok".into(), None, c.clone()).unwrap();
        let id = add(&mut second, "rollback", true, "ok".into(), None, c).unwrap();
        assert_eq!(id, 5);
        let last = second.rollback_targets(None).unwrap();
        assert_eq!(
            last.iter().map(|e| e.id).collect::<Vec<_>>(),
            [4],
            "the last command that is not a rollback (its run only)"
        );
        let one = second.rollback_targets(Some(1)).unwrap();
        assert_eq!(one.iter().map(|e| e.id).collect::<Vec<_>>(), [1]);
        assert_eq!(
            second.last_failover().unwrap().map(|f| f.from).as_deref(),
            Some("EdgePool1")
        );
        assert!(matches!(
            second.rollback_targets(Some(9)),
            Err(JournalError::NoEntry {
                id: 9,
                count: 5,
                ..
            })
        ));
    }

    #[test]
    fn who_and_why_are_recorded_and_old_lines_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path)
            .unwrap()
            .with_author("alice@dns1", Some("CHG-42"));
        add(
            &mut journal,
            "apply",
            true,
            "ok".into(),
            None,
            change([192, 0, 2, 1], [192, 0, 2, 2]),
        )
        .unwrap();
        let line = std::fs::read_to_string(&path).unwrap();
        assert!(
            line.contains("\"who\":\"alice@dns1\",\"why\":\"CHG-42\""),
            "{line}"
        );
        // A line from before who/why were recorded.
        let mut old: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        let object = old.as_object_mut().unwrap();
        object.remove("who");
        object.remove("why");
        object.insert("id".into(), 2.into());
        std::fs::write(&path, format!("{line}{old}\n")).unwrap();
        let entries = journal.entries().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].who.as_deref(), Some("alice@dns1"));
        assert_eq!(
            (entries[1].who.as_ref(), entries[1].why.as_ref()),
            (None, None)
        );
        let me = current_user();
        assert!(me.contains('@') && !me.ends_with('@'), "{me}");
    }

    #[test]
    fn a_journal_read_again_is_the_same_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path).unwrap().with_run("r");
        let c = change([192, 0, 2, 1], [192, 0, 2, 2]);
        add(&mut journal, "apply", true, "ok".into(), None, c.clone()).unwrap();
        let first = read_entries(&path).unwrap();
        assert_eq!(read_entries(&path).unwrap(), first, "kept and used again");
        // Another command (another handle, as another process would) appends: seen at once.
        let mut other = Journal::open(&path).unwrap().with_run("s");
        add(&mut other, "apply", false, "REFUSED".into(), None, c).unwrap();
        let second = read_entries(&path).unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(second[..1], first[..]);
        assert_eq!((second[1].run.as_str(), second[1].applied), ("s", false));
        // Another journal in between does not confuse the two.
        let elsewhere = dir.path().join("k.jsonl");
        assert!(read_entries(&elsewhere).unwrap().is_empty());
        assert_eq!(read_entries(&path).unwrap(), second);
    }

    #[test]
    fn default_paths() {
        assert_eq!(
            default_path(Path::new("/etc/xmppdns/contoso.json")),
            Path::new("/etc/xmppdns/contoso.journal.jsonl")
        );
    }
}
