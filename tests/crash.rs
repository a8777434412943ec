//! Crash consistency and concurrent runs (#12 item 8 and "Crash consistency"): the tool is
//! SIGKILLed at many points of a multi-message apply of 2,000 RRsets into BIND and of a
//! failover, and a second command runs while the first holds its locks. The kill points are
//! the debug-only failpoints (`XMPPDNS_FAILPOINT=NAME:N`, see src/failpoint.rs): the process
//! says where it stopped and waits, and the test kills it there. After every kill: each UPDATE
//! message landed whole or not at all, the journal parses and says what may have landed, the
//! topology file is the old one or the new one, the next command says the run was
//! interrupted, and running it again converges.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use serde_json::json;
use support::{zone_text, Bind, TsigKey as ServerKey};
use xmppdns::journal::{self, Entry};
use xmppdns::plan::{self, Change, Plan};
use xmppdns::provider::{self, Environment};
use xmppdns::records::{Fqdn, RrKey};
use xmppdns::topology::Topology;

/// A command stopped at a failpoint: the process (alive, paused), its stderr until the pause,
/// and what the failpoint said.
struct Paused {
    child: Child,
    stderr: String,
    said: String,
}

impl Paused {
    /// SIGKILL, as a crash or an operator's `kill -9` would.
    fn kill(mut self) -> String {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        self.stderr
    }
}

/// Runs `xmppdns ARGS` until it reaches failpoint `point` (`NAME:N`); `Err(output)` when it
/// ended without reaching it.
// The paused child is handed back inside `Paused`, whose `kill` waits for it.
#[allow(clippy::zombie_processes)]
fn run_until(dir: &Path, args: &[&str], point: &str) -> Result<Paused, Output> {
    let mut child = support::xmppdns()
        .args(args)
        .current_dir(dir)
        .env("XMPPDNS_FAILPOINT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the xmppdns binary runs");
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut stderr = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait().unwrap();
            return Err(Output {
                status,
                stdout: Vec::new(),
                stderr: stderr.into_bytes(),
            });
        }
        if let Some(said) = line.strip_prefix("xmppdns-failpoint: ") {
            let said = said.trim().to_string();
            return Ok(Paused {
                child,
                stderr,
                said,
            });
        }
        stderr.push_str(&line);
    }
}

fn run(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    support::xmppdns()
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .output()
        .expect("the xmppdns binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// Two commands at once (zone files: no server needed).

fn zonefile_workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    std::fs::copy(
        fixtures.join("contoso.json"),
        dir.path().join("contoso.json"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    for zone in ["contoso.com", "fabrikam.com"] {
        let name = format!("{zone}.zone");
        std::fs::copy(
            fixtures.join("zones").join(&name),
            dir.path().join("zones").join(&name),
        )
        .unwrap();
    }
    let path = dir.path().join("contoso.json");
    (dir, path)
}

#[test]
fn a_second_command_waits_then_refuses_naming_the_holder_and_a_killed_holder_frees_it() {
    let (dir, path) = zonefile_workspace();
    let topology = path.display().to_string();
    let first = run_until(
        dir.path(),
        &["apply", &topology, "--yes"],
        "journal-intent:1",
    )
    .map_err(|out| text(&out))
    .expect("the first apply stops after its first intent");
    let pid = first.child.id();

    for args in [
        vec!["apply", topology.as_str(), "--yes"],
        vec![
            "failover",
            topology.as_str(),
            "--to",
            "EdgePool2",
            "--stage",
            "dns",
            "--yes",
        ],
        vec!["rollback", topology.as_str(), "--yes"],
    ] {
        let second = run(dir.path(), &args, &[("XMPPDNS_LOCK_WAIT_MS", "300")]);
        assert_eq!(second.status.code(), Some(1), "{}", text(&second));
        let said = String::from_utf8_lossy(&second.stderr);
        for needle in [
            "in use by another xmppdns command".to_string(),
            format!("pid {pid}, "),
            "`xmppdns apply`".into(),
            ", since 20".into(),
            "waited 0.".into(),
        ] {
            assert!(said.contains(&needle), "`{needle}` missing: {said}");
        }
    }
    // `plan` changes nothing and takes no lock.
    let plan = run(dir.path(), &["plan", &topology], &[]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    first.kill();
    let journal = dir.path().join("contoso.journal.jsonl");
    let entries = journal::read_entries(&journal).unwrap();
    assert!(
        entries.last().is_some_and(Entry::interrupted),
        "the intent is on record: {entries:?}"
    );
    // The lock died with its holder; the next command notices the interrupted run.
    let again = run(dir.path(), &["apply", &topology, "--yes"], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("was interrupted"),
        "{}",
        text(&again)
    );
    let plan = run(dir.path(), &["plan", &topology, "--detailed-exitcode"], &[]);
    assert_eq!(plan.status.code(), Some(0), "converged: {}", text(&plan));
}

/// A run killed after its first zone was written but before the outcome was journaled: the
/// intent is all the journal has, and rollback settles it by reading, restoring what landed.
#[test]
fn an_interrupted_entry_is_rolled_back_by_reading_what_landed() {
    let (dir, path) = zonefile_workspace();
    let topology = path.display().to_string();
    let planned = run(dir.path(), &["plan", &topology, "--format", "json"], &[]);
    let planned: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    let paused = run_until(dir.path(), &["apply", &topology, "--yes"], "zone-applied:1")
        .map_err(|out| text(&out))
        .expect("the apply stops after writing its first zone");
    let zone = paused.said.split_whitespace().nth(5).unwrap().to_string();
    paused.kill();
    let entries = journal::read_entries(&dir.path().join("contoso.journal.jsonl")).unwrap();
    let last = entries.last().unwrap();
    assert!(
        last.interrupted() && last.zone.to_string() == zone,
        "{}",
        last.answer
    );

    let out = run(dir.path(), &["journal", &topology], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("interrupted"),
        "{}",
        text(&out)
    );
    // Undoing creations is unsafe by the safety rules: the operator says so.
    let out = run(
        dir.path(),
        &["rollback", &topology, "--yes", "--force"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restoring what it replaced"),
        "{}",
        text(&out)
    );
    let again = run(dir.path(), &["plan", &topology, "--format", "json"], &[]);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        again["changes"], planned["changes"],
        "back where it started"
    );
}

// ---------------------------------------------------------------------------------------------
// SIGKILL during a 2,000-RRset apply and a failover into BIND.

const DOMAINS: usize = 2_000;

struct Lab {
    dir: tempfile::TempDir,
    bind: Bind,
    path: PathBuf,
}

impl Lab {
    fn start() -> Lab {
        let key = ServerKey::generate("test-key", "hmac-sha256");
        let zone = zone_text("contoso.com", 1, "www IN A 192.0.2.80");
        let bind = Bind::primary(&[("contoso.com", &zone)], &key);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.conf"), key.bind_conf()).unwrap();
        let sip: Vec<String> = (0..DOMAINS)
            .map(|i| format!("sip{i:05}.contoso.com"))
            .collect();
        let value = json!({
            "zones": ["contoso.com"],
            "sip_domains": sip,
            "active_pool": "EdgePool1",
            "federation": {"name": "xmpp.contoso.com"},
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com", "ipv4": ["192.0.2.1"]},
                {"name": "EdgePool2", "site": "Site2", "fqdn": "edgepool2.contoso.com", "ipv4": ["192.0.2.2"]}
            ],
            "provider": {"kind": "rfc2136", "server": bind.addr().to_string(),
                         "key_file": "key.conf", "timeout_ms": 3000, "attempts": 2}
        });
        let path = dir.path().join("topology.json");
        std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
        Lab { dir, bind, path }
    }

    fn topology(&self) -> Topology {
        Topology::load(&self.path).expect("the topology file is whole (old or new)")
    }

    fn arg(&self) -> String {
        self.path.display().to_string()
    }

    fn journal(&self) -> Vec<Entry> {
        journal::read_entries(&self.dir.path().join("topology.journal.jsonl"))
            .expect("the journal parses")
    }

    /// What the next run of `topology` (as it is on disk now, or moved) will apply, in order.
    fn plan(&self, topology: &Topology) -> Plan {
        let mut provider = provider::open(topology, &Environment::system()).unwrap();
        xmppdns::app::plan(topology, provider.as_mut()).unwrap()
    }

    /// How many of `changes`, from the first, hold their `after` now; panics unless every
    /// later one still holds its `before` (a message landed whole or not at all).
    fn landed_prefix(&self, changes: &[Change]) -> usize {
        let zone = Fqdn::parse("contoso.com").unwrap();
        let keys: std::collections::BTreeSet<RrKey> = changes.iter().map(Change::key).collect();
        let mut provider = provider::open(&self.topology(), &Environment::system()).unwrap();
        let now = provider.read(&zone, &keys).unwrap().rrsets;
        let at = |c: &Change, want: &Option<xmppdns::records::RecordSet>| {
            plan::holds(now.get(&c.key()), want.as_ref())
        };
        let landed = changes.iter().take_while(|c| at(c, &c.after)).count();
        for (i, c) in changes.iter().enumerate().skip(landed) {
            assert!(
                at(c, &c.before),
                "change {i} of {} ({} {}) holds neither its before nor its after: a message landed in part",
                changes.len(),
                c.name,
                c.rtype
            );
        }
        landed
    }
}

/// Where a failpoint said the run stopped: how many of its plan's changes must have landed.
fn expected_landed(said: &str, total: usize) -> usize {
    let words: Vec<&str> = said.split_whitespace().collect();
    let range = || {
        let span = words[words.iter().position(|w| *w == "changes").unwrap() + 1];
        let (from, to) = span.split_once("..").unwrap();
        (from.parse::<usize>().unwrap(), to.parse::<usize>().unwrap())
    };
    match words[0] {
        "journal-intent" => 0,
        "update-send" => range().0,
        "update-answered" => range().1,
        _ => total,
    }
}

/// Kills one run at `point` and checks everything a kill may leave; returns whether the run
/// reached the point, and counts it.
fn kill_and_check(lab: &Lab, args: &[&str], plan: &Plan, point: &str, kills: &mut usize) -> bool {
    let paused = match run_until(lab.dir.path(), args, point) {
        Ok(paused) => paused,
        Err(out) => {
            assert_eq!(out.status.code(), Some(0), "{point}: {}", text(&out));
            return false;
        }
    };
    let said = paused.said.clone();
    paused.kill();
    *kills += 1;
    let total = plan.changes.len();
    assert_eq!(
        lab.landed_prefix(&plan.changes),
        expected_landed(&said, total),
        "killed at {said}: exactly the messages answered before the kill landed"
    );
    if plan.changes.is_empty() {
        return true; // nothing to apply, nothing journaled: only the topology is at stake
    }
    let last = lab.journal().pop().expect("an entry");
    let before_outcome = !said.starts_with("journal-outcome") && !said.starts_with("topology");
    assert_eq!(
        last.interrupted(),
        before_outcome,
        "{said}: entry {} says {}",
        last.id,
        last.answer
    );
    assert!(
        last.changes == plan.changes,
        "{said}: entry {} names what may have landed",
        last.id
    );
    true
}

#[test]
fn sigkill_at_many_points_of_a_large_apply_and_a_failover_leaves_a_consistent_state() {
    let lab = Lab::start();
    let mut kills = 0;
    let apply = ["apply".to_string(), lab.arg(), "--yes".to_string()];
    let apply: Vec<&str> = apply.iter().map(String::as_str).collect();
    let points = [
        "journal-intent:1",
        "update-send:1",
        "update-answered:1",
        "update-send:2",
        "update-answered:2",
        "update-answered:1",
        "update-send:3",
        "update-answered:1",
        "zone-applied:1",
    ];
    let mut interrupted_before = false;
    for point in points {
        let plan = lab.plan(&lab.topology());
        if plan.changes.is_empty() {
            break;
        }
        if interrupted_before {
            // The next command notices: its warning comes before it stops at the failpoint.
            let out = run(lab.dir.path(), &["plan", &lab.arg()], &[]);
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("was interrupted"),
                "{}",
                text(&out)
            );
        }
        if kill_and_check(&lab, &apply, &plan, point, &mut kills) {
            interrupted_before = lab.journal().last().is_some_and(Entry::interrupted);
        }
    }
    let out = run(lab.dir.path(), &apply, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        lab.plan(&lab.topology()).changes.is_empty(),
        "the re-run converged"
    );
    let a = support::dig(
        lab.bind.addr(),
        "_xmpp-server._tcp.sip01999.contoso.com",
        "SRV",
    );
    assert_eq!(a.len(), 2, "both pools, by priority: {a:?}");

    // A failover moves all 2,000 SRV RRsets and the federation record.
    let failover = [
        "failover".to_string(),
        lab.arg(),
        "--to".into(),
        "EdgePool2".into(),
        "--stage".into(),
        "dns".into(),
        "--yes".into(),
    ];
    let failover: Vec<&str> = failover.iter().map(String::as_str).collect();
    let moved = |lab: &Lab| {
        let topology = lab.topology();
        let to = topology.pool_index("EdgePool2").unwrap();
        xmppdns::failover::moved(&topology, to, true).0
    };
    for point in [
        "journal-intent:1",
        "update-send:1",
        "update-answered:1",
        "update-send:2",
        "update-answered:2",
        "update-answered:1",
        "journal-outcome:1",
        "topology-write:1",
        "topology-written:1",
    ] {
        let old = std::fs::read(&lab.path).unwrap();
        let plan = lab.plan(&moved(&lab));
        if plan.changes.is_empty() && point.starts_with("update") {
            continue;
        }
        if !kill_and_check(&lab, &failover, &plan, point, &mut kills) {
            continue;
        }
        let now = std::fs::read(&lab.path).unwrap();
        let active = lab.topology().active_pool().name.clone();
        if point == "topology-written:1" {
            assert_eq!(active, "EdgePool2", "the new file");
        } else {
            assert_eq!(now, old, "{point}: the old file, untouched");
            // DNS moved (in part) but the file still names EdgePool1: a pending move.
            let out = run(lab.dir.path(), &["plan", &lab.arg()], &[]);
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("is pending"),
                "{point}: {}",
                text(&out)
            );
        }
    }
    let out = run(lab.dir.path(), &failover, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(lab.topology().active_pool().name, "EdgePool2");
    assert!(
        lab.plan(&lab.topology()).changes.is_empty(),
        "the failover converged"
    );
    eprintln!("crash consistency: {kills} kill points tried");
    assert!(kills >= 15, "{kills} kill points");
}
