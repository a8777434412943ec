//! Turns plans into text: a table for people (a summary by zone and action when a plan is
//! too long to read row by row), the saved-plan JSON for machines.
//! Returns strings; printing is `main`'s job.
//!
//! The table is drawn here rather than by `tabled`, in the same layout (`Style::sharp`, one
//! space of padding, multi-line cells): tabled measures and pads every cell through several
//! passes and took more time than the plan itself at thousands of rows.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::plan::{Action, Change, Plan, PlanFile};
use crate::records::{RecordSet, RecordType};

/// Beyond this many changes, [`table_or_summary`] shows a summary instead of every row: nobody
/// reads thousands of rows on a terminal, and scrolling past them hides the summary line.
pub const TABLE_ROWS: usize = 500;

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
    use std::fmt::Write;
    let Some(set) = set else {
        return "-".to_string();
    };
    // Written into one string: a string per record, then joined, was a third of the time
    // of a 10,000-row table.
    let mut cell = String::with_capacity(set.records().len() * 40);
    for (i, record) in set.records().iter().enumerate() {
        if i > 0 {
            cell.push('\n');
        }
        write!(cell, "{record}").expect("writing to a String cannot fail");
    }
    cell
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
    // Names and types are borrowed, not copied.
    let mut rows: Vec<[Cow<'_, str>; 7]> = Vec::with_capacity(plan.changes.len() + 1);
    rows.push(["Zone", "Action", "Name", "Type", "TTL", "Before", "After"].map(Cow::Borrowed));
    for change in &plan.changes {
        rows.push([
            Cow::Borrowed(change.zone.as_str()),
            Cow::Owned(action_cell(change.action, look)),
            Cow::Borrowed(change.name.as_str()),
            Cow::Borrowed(change.rtype.as_str()),
            Cow::Owned(ttl_cell(change)),
            Cow::Owned(records_cell(change.before.as_ref())),
            Cow::Owned(records_cell(change.after.as_ref())),
        ]);
    }
    format!("{}\n{}", grid(&rows), totals(plan))
}

/// The last line of a plan's table or summary.
fn totals(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "Plan: {} to create, {} to update, {} to delete.\n",
        s.create, s.update, s.delete
    )
}

/// [`table`], or when the plan has more than [`TABLE_ROWS`] changes and `all` is not set, how
/// many changes each zone has of each action and type.
pub fn table_or_summary(plan: &Plan, look: Look, all: bool) -> String {
    if all || plan.changes.len() <= TABLE_ROWS {
        return table(plan, look);
    }
    // (zone, action) -> how many changes of each record type.
    let mut groups: BTreeMap<(&str, Action), BTreeMap<RecordType, usize>> = BTreeMap::new();
    for change in &plan.changes {
        let types = groups
            .entry((change.zone.as_str(), change.action))
            .or_default();
        *types.entry(change.rtype).or_default() += 1;
    }
    let mut rows = vec![["Zone", "Action", "Changes", "By type"].map(String::from)];
    for ((zone, action), types) in groups {
        let by_type: Vec<String> = types.iter().map(|(t, n)| format!("{n} {t}")).collect();
        rows.push([
            zone.to_string(),
            action_cell(action, look),
            types.values().sum::<usize>().to_string(),
            by_type.join(", "),
        ]);
    }
    format!(
        "{} changes, by zone and action (more than {TABLE_ROWS}: `--all` shows every one, \
         `--format json` gives them to programs):\n{}\n{}",
        plan.changes.len(),
        grid(&rows),
        totals(plan)
    )
}

/// The display width of a line: its characters, without ANSI colour sequences.
fn width(line: &str) -> usize {
    if line.is_ascii() && !line.contains('\x1b') {
        return line.len();
    }
    let mut width = 0;
    let mut in_escape = false;
    for c in line.chars() {
        match c {
            '\x1b' => in_escape = true,
            'm' if in_escape => in_escape = false,
            _ if in_escape => {}
            _ => width += 1,
        }
    }
    width
}

/// Rows (the first is the header) drawn as `tabled`'s `Style::sharp` draws them, without a
/// final newline.
fn grid<S: AsRef<str>, const N: usize>(rows: &[[S; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            let widest = cell.as_ref().split('\n').map(width).max().unwrap_or(0);
            widths[column] = widths[column].max(widest);
        }
    }
    let rule = |left: char, middle: char, right: char| {
        let mut line = String::new();
        line.push(left);
        for (column, w) in widths.iter().enumerate() {
            if column > 0 {
                line.push(middle);
            }
            line.extend(std::iter::repeat_n('─', w + 2));
        }
        line.push(right);
        line.push('\n');
        line
    };
    let mut out = String::with_capacity(rows.len() * (widths.iter().sum::<usize>() + 4 * N));
    out.push_str(&rule('┌', '┬', '┐'));
    for (index, row) in rows.iter().enumerate() {
        if index == 1 {
            out.push_str(&rule('├', '┼', '┤'));
        }
        push_row(&mut out, row, &widths);
    }
    out.push_str(&rule('└', '┴', '┘'));
    out.pop();
    out
}

/// `n` spaces.
fn pad(out: &mut String, mut n: usize) {
    const SPACES: &str = "                                                                ";
    while n > 0 {
        let step = n.min(SPACES.len());
        out.push_str(&SPACES[..step]);
        n -= step;
    }
}

/// One row, as many lines as its tallest cell.
fn push_row<S: AsRef<str>, const N: usize>(out: &mut String, row: &[S; N], widths: &[usize; N]) {
    let mut lines: [std::str::Split<'_, char>; N] =
        std::array::from_fn(|c| row[c].as_ref().split('\n'));
    let height = row
        .iter()
        .map(|c| c.as_ref().split('\n').count())
        .max()
        .unwrap_or(1);
    for _ in 0..height {
        out.push('│');
        for (column, cell_lines) in lines.iter_mut().enumerate() {
            let line = cell_lines.next().unwrap_or("");
            out.push(' ');
            out.push_str(line);
            pad(out, widths[column] - width(line) + 1);
            out.push('│');
        }
        out.push('\n');
    }
}

/// The plan as the saved-plan JSON document (pretty-printed, newline-terminated).
pub fn json(file: &PlanFile) -> String {
    let mut text = serde_json::to_string_pretty(file).expect("plan files serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ObservedZone;
    use crate::records::{Fqdn, Rdata};
    use tabled::builder::Builder;
    use tabled::settings::Style;

    /// What tabled drew before: the reference for [`grid`].
    fn tabled<const N: usize>(rows: &[[String; N]]) -> String {
        let mut builder = Builder::default();
        for row in rows {
            builder.push_record(row.clone());
        }
        let mut table = builder.build();
        table.with(Style::sharp());
        table.to_string()
    }

    fn change(zone: &str, i: usize, action: Action, rtype: RecordType) -> Change {
        let name = Fqdn::parse(&format!("host{i}.{zone}")).unwrap();
        let data = match rtype {
            RecordType::A => vec![format!("192.0.2.{}", i % 200)],
            _ => (1..=1 + i % 3)
                .map(|p| format!("{p}0 0 5269 edgepool{p}.{zone}."))
                .collect(),
        };
        let records = data
            .iter()
            .map(|d| Rdata::parse(rtype, d).unwrap())
            .collect();
        let set = RecordSet::new(name.clone(), rtype, 300 + i as u32, records).unwrap();
        let old = RecordSet::new(name.clone(), rtype, 60, set.records().to_vec()).unwrap();
        Change {
            zone: Fqdn::parse(zone).unwrap(),
            action,
            name,
            rtype,
            before: (action != Action::Create).then_some(old),
            after: (action != Action::Delete).then_some(set),
        }
    }

    fn plan_of(n: usize) -> Plan {
        let actions = [Action::Create, Action::Update, Action::Delete];
        let changes = (0..n)
            .map(|i| {
                let zone = ["contoso.com", "fabrikam.com"][i % 2];
                let rtype = [RecordType::A, RecordType::Srv][i / 2 % 2];
                change(zone, i, actions[i / 4 % 3], rtype)
            })
            .collect();
        Plan {
            changes,
            observed: Vec::<ObservedZone>::new(),
        }
    }

    #[test]
    fn the_table_is_drawn_as_tabled_drew_it_with_and_without_colour() {
        let plan = plan_of(40);
        for colour in [false, true] {
            let look = Look { colour };
            let text = table(&plan, look);
            let (drawn, last) = text.rsplit_once("\n└").unwrap();
            let mut rows = vec![
                ["Zone", "Action", "Name", "Type", "TTL", "Before", "After"].map(String::from)
            ];
            rows.extend(plan.changes.iter().map(|c| {
                [
                    c.zone.to_string(),
                    action_cell(c.action, look),
                    c.name.to_string(),
                    c.rtype.to_string(),
                    ttl_cell(c),
                    records_cell(c.before.as_ref()),
                    records_cell(c.after.as_ref()),
                ]
            }));
            assert_eq!(
                format!("{drawn}\n└{last}"),
                format!("{}\n{}", tabled(&rows), totals(&plan))
            );
        }
    }

    #[test]
    fn long_plans_are_summarised_by_zone_and_action_unless_all() {
        let plan = plan_of(TABLE_ROWS + 1);
        let look = Look::default();
        assert_eq!(table_or_summary(&plan, look, true), table(&plan, look));
        let short = plan_of(TABLE_ROWS);
        assert_eq!(table_or_summary(&short, look, false), table(&short, look));

        let summary = table_or_summary(&plan, look, false);
        assert!(
            summary.starts_with("501 changes, by zone and action"),
            "{summary}"
        );
        assert!(summary.contains("`--all` shows every one"), "{summary}");
        assert!(summary.ends_with(&totals(&plan)), "{summary}");
        // 2 zones x 3 actions, and the counts add up per zone, action and type.
        let rows: Vec<&str> = summary
            .lines()
            .filter(|l| l.starts_with("│ ") && !l.contains("Zone"))
            .collect();
        assert_eq!(rows.len(), 6, "{summary}");
        let count = |zone: &str, action: Action, rtype: Option<RecordType>| {
            plan.changes
                .iter()
                .filter(|c| c.zone.as_str() == zone && c.action == action)
                .filter(|c| rtype.is_none_or(|t| c.rtype == t))
                .count()
        };
        let expected = format!(
            "│ contoso.com.  │ ~ update │ {:<7} │ {} A, {} SRV",
            count("contoso.com.", Action::Update, None),
            count("contoso.com.", Action::Update, Some(RecordType::A)),
            count("contoso.com.", Action::Update, Some(RecordType::Srv)),
        );
        assert!(
            rows.iter().any(|r| r.starts_with(&expected)),
            "{expected}\n{summary}"
        );
        let total: usize = rows
            .iter()
            .map(|r| {
                r.split('│')
                    .nth(3)
                    .unwrap()
                    .trim()
                    .parse::<usize>()
                    .unwrap()
            })
            .sum();
        assert_eq!(total, TABLE_ROWS + 1);
    }
}
