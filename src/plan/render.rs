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

mod plan_table;

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
    let (label, code) = action_label(action);
    paint(label, code, look)
}

/// An action's label and its colour.
fn action_label(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("+ create", "32"),
        Action::Update => ("~ update", "33"),
        Action::Delete => ("- delete", "31"),
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
    let totals = totals(plan);
    if let Some(layout) = plan_table::measure(plan, look, &totals) {
        return plan_table::draw(plan, look, &layout, &totals);
    }
    // A name with a line break in it (only a name read from a server could hold one) takes
    // lines of its own: the general drawer splits cells on them.
    let mut rows: Vec<[Cow<'_, str>; 7]> = Vec::with_capacity(plan.changes.len() + 1);
    rows.push(plan_table::HEADER.map(Cow::Borrowed));
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
    let mut out = grid(&rows);
    out.push('\n');
    out.push_str(&totals);
    out
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
    let mut out = String::with_capacity(rows.len() * (widths.iter().sum::<usize>() + 4 * N));
    push_rule(&mut out, &widths, '┌', '┬', '┐');
    for (index, row) in rows.iter().enumerate() {
        if index == 1 {
            push_rule(&mut out, &widths, '├', '┼', '┤');
        }
        push_row(&mut out, row, &widths);
    }
    push_rule(&mut out, &widths, '└', '┴', '┘');
    out.pop();
    out
}

/// A horizontal rule over columns of these widths (plus their padding), with its line break.
fn push_rule(out: &mut String, widths: &[usize], left: char, middle: char, right: char) {
    out.push(left);
    for (column, w) in widths.iter().enumerate() {
        if column > 0 {
            out.push(middle);
        }
        out.extend(std::iter::repeat_n('─', w + 2));
    }
    out.push(right);
    out.push('\n');
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
            let rows = rows_of(&plan, look);
            assert_eq!(
                format!("{drawn}\n└{last}"),
                format!("{}\n{}", tabled(&rows), totals(&plan))
            );
        }
    }

    /// A change whose names are taken as they come (as from a server), with records of `rtype`.
    fn odd_change(
        zone: &str,
        name: &str,
        action: Action,
        rtype: RecordType,
        data: &[&str],
    ) -> Change {
        let zone = Fqdn::from_absolute(zone);
        let name = Fqdn::from_absolute(name);
        let set = |ttl| {
            let records = data
                .iter()
                .map(|d| Rdata::parse(rtype, d).unwrap())
                .collect();
            RecordSet::new(name.clone(), rtype, ttl, records).unwrap()
        };
        Change {
            zone,
            action,
            name: name.clone(),
            rtype,
            before: (action != Action::Create).then(|| set(60)),
            after: (action != Action::Delete).then(|| set(300)),
        }
    }

    /// The header and a string per cell of every change.
    fn rows_of(plan: &Plan, look: Look) -> Vec<[String; 7]> {
        let mut rows = vec![plan_table::HEADER.map(String::from)];
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
        rows
    }

    /// The table as the general drawer draws it from a string per cell.
    fn general(plan: &Plan, look: Look) -> String {
        format!("{}\n{}", grid(&rows_of(plan, look)), totals(plan))
    }

    #[test]
    fn names_of_several_bytes_colours_and_line_breaks_are_drawn_as_the_general_drawer_draws_them() {
        let wide = odd_change(
            "bücher.example.",
            "_xmpp-server._tcp.bücher.example.",
            Action::Update,
            RecordType::Srv,
            &["10 0 5269 édge.bücher.example.", "20 0 5269 edge2.example."],
        );
        let escaped = odd_change(
            "example.com.",
            "\x1b[1mbold\x1b[0m.example.com.",
            Action::Create,
            RecordType::Cname,
            &["\x1b[1mtarget.example.com."],
        );
        let six = odd_change(
            "example.com.",
            "v6.example.com.",
            Action::Delete,
            RecordType::Aaaa,
            &["2001:db8::1", "::ffff:192.0.2.1", "2001:db8:1:2:3:4:5:6"],
        );
        let mut empty = odd_change(
            "example.com.",
            "none.example.com.",
            Action::Update,
            RecordType::A,
            &[],
        );
        empty.before = None;
        let broken = odd_change(
            "example.com.",
            "a\nb.example.com.",
            Action::Create,
            RecordType::Cname,
            &["x.example.com."],
        );
        for changes in [
            vec![wide.clone(), escaped.clone(), six.clone(), empty.clone()],
            vec![six.clone(), empty.clone()],
            vec![wide, broken, escaped, six, empty],
        ] {
            let plan = Plan {
                changes,
                observed: Vec::new(),
            };
            // Only a line break sends a plan to the general drawer.
            let broken = plan.changes.iter().any(|c| c.name.as_str().contains('\n'));
            for colour in [false, true] {
                let look = Look { colour };
                assert_eq!(plan_table::measure(&plan, look, "").is_none(), broken);
                assert_eq!(table(&plan, look), general(&plan, look), "{plan:?}");
            }
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
