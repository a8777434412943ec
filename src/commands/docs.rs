//! `completions` and `man`: the command line described for shells and for `man`.
//!
//! The man page is one page, xmppdns(1): every subcommand with its synopsis, its options and
//! its examples, then the exit status and the files the tool reads and writes. (clap_mangen's
//! own subcommand section refers to xmppdns-plan(1) and the like, pages that do not exist.)

use std::io::Write;

use clap::CommandFactory;
use xmppdns::error::exit;
use xmppdns::Error;

use crate::cli::{Cli, CompletionsArgs};

pub(crate) fn completions(args: CompletionsArgs) -> Result<u8, Error> {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "xmppdns",
        &mut std::io::stdout(),
    );
    Ok(exit::OK)
}

pub(crate) fn man() -> Result<u8, Error> {
    let page = man_page().map_err(|source| Error::Write {
        path: "stdout".into(),
        source,
    })?;
    std::io::stdout().write_all(page.as_bytes()).ok();
    Ok(exit::OK)
}

const EXIT_STATUS: &str = "\
.TP
0
Success, or no changes.
.TP
1
An error, including a usage error on the command line.
.TP
2
\\fBplan \\-\\-detailed\\-exitcode\\fR: changes are pending.
.TP
3
Refused on purpose: an unsafe or stale plan, a stale rollback, a failed probe.
.TP
4
\\fBaudit\\fR found error\\-level problems.
.TP
5
Applied, but not every authoritative server served the change in time.
";

const FILES: &str = "\
.TP
\\fITOPOLOGY\\fR.json
The topology: zones, SIP domains, Edge pools, the active pool, the provider. Relative paths in
it (zone files, key files) are relative to its folder. \\fBfailover\\fR and \\fBfailback\\fR
rewrite its \\fBactive_pool\\fR; \\fBinit \\-\\-from\\-dns\\fR writes a first one.
.TP
\\fITOPOLOGY\\fR.journal.jsonl
The journal, beside the topology (or \\fB\\-\\-journal\\fR \\fIFILE\\fR): one JSON line per zone
each \\fBapply\\fR, \\fBfailover\\fR, \\fBfailback\\fR and \\fBrollback\\fR changed, with the RRsets
before and after, who ran it and why (\\fB\\-\\-reason\\fR). \\fBrollback\\fR and \\fBfailback\\fR
read it; \\fBjournal\\fR lists it.
.TP
\\fIPLAN\\fR.json
A plan saved by \\fBplan \\-\\-out\\fR, with checksums of the RRsets it read;
\\fBapply\\fR \\fIPLAN\\fR.json refuses it (exit 3) when DNS changed since.
.TP
\\fIZONE\\fR.zone, \\fIZONE\\fR.zone.bak
Zone files of the \\fBzonefile\\fR provider, and the copy kept before each write.
.TP
\\fIKEY\\fR.key
A TSIG key in BIND format (\\fBkeygen\\fR), named by the topology's \\fBkey_file\\fR.
";

/// The whole page, as roff.
fn man_page() -> std::io::Result<String> {
    let mut cli = Cli::command().bin_name("xmppdns");
    cli.build();
    let man = clap_mangen::Man::new(cli.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    let mut page = String::from_utf8_lossy(&out).into_owned();
    page.push_str(".SH COMMANDS\n");
    for command in cli.get_subcommands_mut().filter(|c| c.get_name() != "help") {
        page.push_str(&command_section(command));
    }
    page.push_str(".SH \"EXIT STATUS\"\n");
    page.push_str(EXIT_STATUS);
    page.push_str(".SH FILES\n");
    page.push_str(FILES);
    Ok(page)
}

/// One subcommand: its usage as a subsection title, what it does, its options, its examples.
fn command_section(command: &mut clap::Command) -> String {
    let usage = command.render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim();
    let mut text = format!(".SS \"{}\"\n", escape(usage).replace('"', "\\(dq"));
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        text.push_str(&format!("{}\n", escape(&about.to_string())));
    }
    // `-v` and `-h` are the global options above; not repeated under each command.
    let own = |a: &&clap::Arg| !a.is_hide_set() && !a.is_global_set() && a.get_id() != "help";
    for arg in command.get_arguments().filter(own) {
        text.push_str(&format!(".TP\n{}\n", argument_title(arg)));
        let mut help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && arg.get_action().takes_values() {
            help.push_str(&format!(" [default: {}]", defaults.join(", ")));
        }
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        if !values.is_empty() && arg.get_action().takes_values() {
            help.push_str(&format!(" [possible values: {}]", values.join(", ")));
        }
        text.push_str(&format!("{}\n", escape(&help)));
    }
    if let Some(after) = command.get_after_help() {
        text.push_str(&format!(".PP\n.nf\n{}\n.fi\n", escape(&after.to_string())));
    }
    text
}

/// `-y, --yes`, `--format <FORMAT>` or `<TOPOLOGY>`, in bold and italics.
fn argument_title(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .map(|names| names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap_or_else(|| vec![arg.get_id().as_str().to_uppercase()]);
    let value = format!("<\\fI{}\\fR>", escape(&value.join(" ")));
    if arg.is_positional() {
        return value;
    }
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("\\fB\\-{short}\\fR"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR", escape(long)));
    }
    let mut title = names.join(", ");
    if arg.get_action().takes_values() {
        title.push(' ');
        title.push_str(&value);
    }
    title
}

/// Text for roff: backslashes and dashes escaped, no line starting with a control character.
fn escape(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .lines()
        .map(|line| {
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
