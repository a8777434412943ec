//! The commands' terminal side, one function per command: printing between the library's
//! steps, confirmation prompts, the progress bar. Everything that decides or touches DNS is in
//! the library.

mod apply;
mod audit;
mod certificates;
mod docs;
mod drain;
mod drill;
mod journal;
mod keygen;
mod monitor;
mod moves;
mod plan;

use std::io::{IsTerminal, Write};
use std::path::Path;

use xmppdns::plan::render::Look;
use xmppdns::{app, Error};

pub(crate) use apply::{apply, rollback};
pub(crate) use audit::{audit, init};
pub(crate) use docs::{completions, man};
pub(crate) use drain::{drain, settle};
pub(crate) use drill::drill;
pub(crate) use journal::journal;
pub(crate) use keygen::keygen;
pub(crate) use monitor::monitor;
pub(crate) use moves::{failback, failover};
pub(crate) use plan::plan;

/// The command line, or exit: usage errors exit 1 (2 means "changes pending" for
/// `plan --detailed-exitcode`, so clap's usual 2 would read as success with changes);
/// `--help` and `--version` print on stdout and exit 0.
pub(crate) fn parse_args() -> crate::cli::Cli {
    use clap::Parser;
    crate::cli::Cli::try_parse().unwrap_or_else(|error| {
        error.print().ok();
        let code = if error.use_stderr() {
            xmppdns::error::exit::ERROR
        } else {
            xmppdns::error::exit::OK
        };
        std::process::exit(code.into())
    })
}

/// Hands the command's `--reason` to the journal, for every entry the command writes.
pub(crate) fn record_reason(command: &crate::cli::Command) {
    use crate::cli::Command;
    let reason = match command {
        Command::Apply(args) => &args.reason,
        Command::Rollback(args) => &args.reason,
        Command::Failover(args) => &args.move_options.reason,
        Command::Failback(args) => &args.move_options.reason,
        Command::Drain(args) => &args.reason,
        Command::Settle(args) => &args.reason,
        Command::Drill(args) => &args.reason,
        _ => &None,
    };
    if let Some(reason) = reason {
        xmppdns::journal::set_reason(reason);
    }
}

/// Logs go to stderr, `warn` and up unless `-v` asks for more.
pub(crate) fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "xmppdns={level}"
        )))
        .with_writer(std::io::stderr)
        .with_ansi(colour_allowed(&std::io::stderr()))
        .without_time()
        .init();
}

/// How tables on stdout look.
pub(crate) fn look() -> Look {
    Look {
        colour: colour_allowed(&std::io::stdout()),
    }
}

/// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
fn colour_allowed(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints what an apply did.
fn print_applied(report: &app::ApplyReport) {
    for applied in &report.applied {
        println!(
            "Applied {} change(s) to {}: {}",
            applied.changes, applied.zone, applied.detail
        );
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!("Read back: DNS matches the plan.");
}

/// Writes text to standard output in one locked write: a 7 MB table goes out as it is, not
/// through `print!`'s formatting. A closed pipe is an error to report, not a panic.
fn write_stdout(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| Error::Write {
            path: "standard output".into(),
            source,
        })
}

/// Replaces (or creates) an output file whole: a reader never sees half a plan or runbook.
fn write_output(path: &Path, text: &str) -> Result<(), Error> {
    xmppdns::files::replace(path, text.as_bytes()).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Asks on the terminal; without one, refuses rather than guess.
fn confirm() -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::NotConfirmed(
            "standard input is not a terminal; pass --yes to apply without asking".into(),
        ));
    }
    print!("Apply these changes? [y/N] ");
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok();
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::NotConfirmed("declined at the prompt".into()))
    }
}
