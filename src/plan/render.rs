//! Turns plans into text: a table for people, the saved-plan JSON for machines.
//! Returns strings; printing is `main`'s job.

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::plan::{Action, Change, Plan, PlanFile};
use crate::records::RecordSet;

/// How output is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Look {
    /// ANSI colours (only on a terminal, never with `NO_COLOR`).
    pub colour: bool,
}

fn paint(text: &str, code: &str, look: Look) -> String {
    if look.colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn action_cell(action: Action, look: Look) -> String {
    match action {
        Action::Create => paint("+ create", "32", look),
        Action::Update => paint("~ update", "33", look),
        Action::Delete => paint("- delete", "31", look),
    }
}

fn records_cell(set: Option<&RecordSet>) -> String {
    match set {
        None => "-".to_string(),
        Some(set) => set
            .records()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn ttl_cell(change: &Change) -> String {
    match (&change.before, &change.after) {
        (Some(b), Some(a)) if b.ttl != a.ttl => format!("{} -> {}", b.ttl, a.ttl),
        (_, Some(a)) => a.ttl.to_string(),
        (Some(b), None) => b.ttl.to_string(),
        (None, None) => "-".to_string(),
    }
}

/// The plan as a table, with a summary line; a single line when there is nothing to do.
pub fn table(plan: &Plan, look: Look) -> String {
    if plan.is_empty() {
        return "No changes: DNS already matches the topology.\n".to_string();
    }
    let mut builder = Builder::default();
    builder.push_record(["Zone", "Action", "Name", "Type", "TTL", "Before", "After"]);
    for change in &plan.changes {
        builder.push_record([
            change.zone.to_string(),
            action_cell(change.action, look),
            change.name.to_string(),
            change.rtype.to_string(),
            ttl_cell(change),
            records_cell(change.before.as_ref()),
            records_cell(change.after.as_ref()),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::sharp());
    let s = plan.summary();
    format!(
        "{table}\nPlan: {} to create, {} to update, {} to delete.\n",
        s.create, s.update, s.delete
    )
}

/// The plan as the saved-plan JSON document (pretty-printed, newline-terminated).
pub fn json(file: &PlanFile) -> String {
    let mut text = serde_json::to_string_pretty(file).expect("plan files serialize");
    text.push('\n');
    text
}
