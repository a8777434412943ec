//! Saved plans and journals are files, not the planner: `apply PLAN.json` and `rollback` refuse
//! (exit 1, nothing written) any change that lies outside the topology's managed names, goes
//! out unguarded, names another RRset in its `before`/`after`, or contradicts its action — even
//! when the file's checksums were recomputed to match, as anyone editing it could.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use support::tools::xmppdns;
use xmppdns::plan::{checksum, Change, ObservedZone};

/// A copy of `fixtures/contoso.json` and its zone files.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let dir = tempfile::tempdir().expect("temp dir");
        fs::copy(
            fixtures.join("contoso.json"),
            dir.path().join("contoso.json"),
        )
        .unwrap();
        fs::create_dir(dir.path().join("zones")).unwrap();
        for entry in fs::read_dir(fixtures.join("zones")).unwrap() {
            let entry = entry.unwrap();
            fs::copy(
                entry.path(),
                dir.path().join("zones").join(entry.file_name()),
            )
            .unwrap();
        }
        Workspace { dir }
    }

    fn topology(&self) -> String {
        self.dir.path().join("contoso.json").display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        xmppdns()
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run xmppdns")
    }

    /// Every zone file's bytes, to prove nothing was written (lock files aside: a command
    /// that refuses still took its locks).
    fn zones(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut zones: Vec<_> = fs::read_dir(self.dir.path().join("zones"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|path| path.extension().is_none_or(|e| e != "lock"))
            .map(|path| {
                let bytes = fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        zones.sort();
        zones
    }
}

fn assert_refused(out: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit 1: {stderr}");
    for phrase in expected {
        assert!(stderr.contains(phrase), "`{phrase}` in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Saves a plan, lets `edit` change it, recomputes the checksum of the changes (as an editor
/// of the file could), and applies it.
fn apply_edited_plan(edit: impl Fn(&mut Value)) -> (Workspace, Output, Vec<(PathBuf, Vec<u8>)>) {
    let ws = Workspace::new();
    let saved = ws.dir.path().join("plan.json");
    let out = ws.run(&["plan", &ws.topology(), "--out", saved.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mut document: Value = serde_json::from_str(&fs::read_to_string(&saved).unwrap()).unwrap();
    edit(&mut document);
    let changes: Vec<Change> = serde_json::from_value(document["changes"].clone()).unwrap();
    document["changes_checksum"] = json!(checksum(&changes));
    let state: Vec<ObservedZone> = serde_json::from_value(document["state"].clone()).unwrap();
    document["state_checksum"] = json!(checksum(&state));
    fs::write(&saved, document.to_string()).unwrap();
    let before = ws.zones();
    let out = ws.run(&["apply", saved.to_str().unwrap(), "--yes"]);
    (ws, out, before)
}

/// The index of the saved plan's change of `name` and `rtype`.
fn change_of(document: &Value, name: &str, rtype: &str) -> usize {
    document["changes"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["name"] == name && c["type"] == rtype)
        .unwrap_or_else(|| panic!("the plan changes {name} {rtype}: {document:#}"))
}

#[test]
fn a_saved_plan_with_a_change_outside_the_managed_names_is_refused() {
    let (ws, out, before) = apply_edited_plan(|plan| {
        let i = change_of(plan, "edgepool2.contoso.com.", "A");
        plan["changes"][i]["name"] = json!("www.contoso.com.");
        plan["changes"][i]["after"]["name"] = json!("www.contoso.com.");
    });
    assert_refused(
        &out,
        &[
            "cannot be trusted",
            "nothing was applied",
            "create www.contoso.com. A: www.contoso.com. A is not an RRset the topology manages in zone contoso.com.",
        ],
    );
    assert_eq!(ws.zones(), before, "no zone file changed");
}

#[test]
fn a_saved_plan_change_in_a_zone_the_topology_does_not_have_is_refused() {
    let (ws, out, before) = apply_edited_plan(|plan| {
        let i = change_of(plan, "edgepool2.contoso.com.", "A");
        plan["changes"][i]["zone"] = json!("example.org.");
    });
    assert_refused(
        &out,
        &["zone example.org. is not a zone of the topology's managed names"],
    );
    assert_eq!(ws.zones(), before);
}

#[test]
fn an_update_without_its_before_would_go_out_unguarded_and_is_refused() {
    let (ws, out, before) = apply_edited_plan(|plan| {
        let i = change_of(plan, "xmpp.contoso.com.", "A");
        assert_eq!(plan["changes"][i]["action"], "update");
        plan["changes"][i]["before"] = Value::Null;
    });
    assert_refused(
        &out,
        &["update xmpp.contoso.com. A: an update carries both a `before` and an `after` RRset (here `before` is empty, `after` is set)"],
    );
    assert_eq!(ws.zones(), before);
}

#[test]
fn a_before_or_after_of_another_name_is_refused() {
    let (ws, out, before) = apply_edited_plan(|plan| {
        let i = change_of(plan, "edgepool2.contoso.com.", "A");
        plan["changes"][i]["after"]["name"] = json!("xmpp.contoso.com.");
    });
    assert_refused(
        &out,
        &["its `after` RRset is xmpp.contoso.com. A, not edgepool2.contoso.com. A"],
    );
    assert_eq!(ws.zones(), before);
}

#[test]
fn an_action_that_contradicts_its_rrsets_is_refused_and_every_problem_is_named() {
    let (ws, out, before) = apply_edited_plan(|plan| {
        let create = change_of(plan, "edgepool2.contoso.com.", "A");
        plan["changes"][create]["action"] = json!("delete");
        let update = change_of(plan, "xmpp.contoso.com.", "A");
        plan["changes"][update]["after"] = Value::Null;
    });
    assert_refused(
        &out,
        &[
            "2 change(s) cannot be trusted",
            "delete edgepool2.contoso.com. A: a delete carries only a `before` RRset (here `before` is empty, `after` is set)",
            "update xmpp.contoso.com. A: an update carries both a `before` and an `after` RRset (here `before` is set, `after` is empty)",
        ],
    );
    assert_eq!(ws.zones(), before);
}

#[test]
fn a_change_the_recorded_state_does_not_cover_is_refused() {
    // The stale check compares what the plan observed with DNS now: a change outside what it
    // observed would escape that check.
    let (ws, out, before) = apply_edited_plan(|plan| {
        for zone in plan["state"].as_array_mut().unwrap() {
            let absent = zone["absent"].as_array_mut().unwrap();
            absent.retain(|k| !(k["name"] == "edgepool2.contoso.com." && k["type"] == "A"));
        }
    });
    assert_refused(
        &out,
        &["create edgepool2.contoso.com. A: the plan's recorded state does not cover it"],
    );
    assert_eq!(ws.zones(), before);
}

#[test]
fn an_untouched_saved_plan_still_applies() {
    // The same path with no edit: the checks refuse only what is wrong.
    let (ws, out, before) = apply_edited_plan(|_| {});
    assert!(out.status.success(), "{out:?}");
    assert_ne!(ws.zones(), before, "the plan was applied");
}

/// Applies the topology (writing journal entries), lets `edit` change the journal's last entry,
/// and asks for its rollback.
fn rollback_edited_journal(
    edit: impl Fn(&mut Value),
) -> (Workspace, Output, Vec<(PathBuf, Vec<u8>)>) {
    let ws = Workspace::new();
    let out = ws.run(&["apply", &ws.topology(), "--yes"]);
    assert!(out.status.success(), "{out:?}");
    let journal = ws.dir.path().join("contoso.journal.jsonl");
    let text = fs::read_to_string(&journal).expect("the apply wrote a journal");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    edit(&mut last);
    *lines.last_mut().unwrap() = last.to_string();
    fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let before = ws.zones();
    let out = ws.run(&["rollback", &ws.topology(), "--yes"]);
    (ws, out, before)
}

#[test]
fn a_journal_entry_with_an_unguarded_change_is_not_rolled_back() {
    let (ws, out, before) = rollback_edited_journal(|entry| {
        let changes = entry["changes"].as_array_mut().unwrap();
        let update = changes
            .iter_mut()
            .find(|c| c["action"] == "update")
            .expect("the apply updated an RRset");
        update["after"] = Value::Null;
    });
    assert_refused(
        &out,
        &[
            "journal entry",
            "cannot be trusted",
            "an update carries both",
        ],
    );
    assert_eq!(ws.zones(), before);
}

#[test]
fn a_journal_change_filed_under_another_zone_is_not_rolled_back() {
    let (ws, out, before) = rollback_edited_journal(|entry| {
        entry["zone"] = json!("fabrikam.com.");
    });
    assert_refused(&out, &["it is filed under zone fabrikam.com."]);
    assert_eq!(ws.zones(), before);
}
