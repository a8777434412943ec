//! `journal`: the journal's entries, newest last: what each command changed, when, whether it
//! landed, who ran it and why.

use std::path::PathBuf;

use tabled::builder::Builder;
use tabled::settings::Style;
use xmppdns::error::exit;
use xmppdns::journal::{self, Entry};
use xmppdns::plan::render::Look;
use xmppdns::Error;

use crate::cli::{Format, JournalArgs};

pub(crate) fn journal(args: JournalArgs, _look: Look) -> Result<u8, Error> {
    let path: PathBuf = match (&args.journal, &args.topology) {
        (Some(file), _) => file.clone(),
        (None, Some(topology)) => journal::default_path(topology),
        (None, None) => unreachable!("clap requires TOPOLOGY or --journal"),
    };
    let mut entries = journal::read_entries(&path)?;
    if let Some(last) = args.last {
        entries.drain(..entries.len().saturating_sub(last));
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&entries).expect("journal entries serialize")
        ),
        Format::Table if entries.is_empty() => {
            println!("The journal {} has no entries.", path.display())
        }
        Format::Table => print!("{}", table(&entries)),
    }
    Ok(exit::OK)
}

fn table(entries: &[Entry]) -> String {
    let mut builder = Builder::default();
    builder.push_record([
        "Id", "Time", "Command", "Zone", "Result", "Changes", "Who", "Why",
    ]);
    for entry in entries {
        let mut command = entry.command.clone();
        if let Some(moved) = &entry.failover {
            command.push_str(&format!("\n{} -> {}", moved.from, moved.to));
        }
        let changes: Vec<String> = entry
            .changes
            .iter()
            .map(|c| format!("{} {} {}", c.action.as_str(), c.rtype, c.name))
            .collect();
        builder.push_record([
            entry.id.to_string(),
            entry.time.clone(),
            command,
            entry.zone.to_string(),
            if entry.applied {
                "applied"
            } else if entry.interrupted() {
                "interrupted"
            } else {
                "failed"
            }
            .to_string(),
            changes.join("\n"),
            entry.who.clone().unwrap_or_else(|| "-".into()),
            entry.why.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::sharp());
    format!("{table}\n")
}
