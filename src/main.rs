//! The `xmppdns` binary: parse arguments, call the library, print, map errors to exit codes.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{CommandFactory, Parser};
use xmppdns::error::exit;
use xmppdns::plan::render::{self, Look};
use xmppdns::provider::{self, Environment};
use xmppdns::topology::Topology;
use xmppdns::{app, Error};

use cli::{Cli, Command, Format};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn init_logging(verbose: u8) {
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

/// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
fn colour_allowed(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn environment() -> Environment {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Environment {
        today: app::yyyymmdd(now),
    }
}

fn run(cli: Cli) -> Result<u8, Error> {
    let look = Look {
        colour: colour_allowed(&std::io::stdout()),
    };
    match cli.command {
        Command::Plan {
            topology,
            format,
            out,
            detailed_exitcode,
        } => {
            let topology = Topology::load(&topology)?;
            let mut provider = provider::open(&topology, environment());
            let plan = app::plan(&topology, provider.as_mut())?;
            let file = app::plan_file(&plan, &topology, provider.kind());
            match format {
                Format::Table => print!("{}", render::table(&plan, look)),
                Format::Json => print!("{}", render::json(&file)),
            }
            if let Some(out) = out {
                std::fs::write(&out, render::json(&file))
                    .map_err(|source| Error::Write { path: out, source })?;
            }
            Ok(if detailed_exitcode && !plan.is_empty() {
                exit::CHANGES_PENDING
            } else {
                exit::OK
            })
        }
        Command::Apply {
            input,
            yes,
            force,
            format,
        } => {
            let prepared = app::prepare_apply(&input, environment(), force)?;
            if prepared.plan.is_empty() {
                println!("No changes: DNS already matches the topology.");
                return Ok(exit::OK);
            }
            match format {
                Format::Table => print!("{}", render::table(&prepared.plan, look)),
                Format::Json => {
                    let file = app::plan_file(
                        &prepared.plan,
                        &prepared.topology,
                        prepared.provider_kind(),
                    );
                    print!("{}", render::json(&file))
                }
            }
            if !yes {
                confirm()?;
            }
            let report = app::execute(prepared)?;
            for applied in &report.applied {
                println!(
                    "Applied {} change(s) to {}: {}",
                    applied.changes, applied.zone, applied.detail
                );
            }
            println!("Read back: DNS matches the plan.");
            Ok(exit::OK)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "xmppdns",
                &mut std::io::stdout(),
            );
            Ok(exit::OK)
        }
        Command::Man => {
            let page = clap_mangen::Man::new(Cli::command());
            let mut out = Vec::new();
            page.render(&mut out).map_err(|source| Error::Write {
                path: "stdout".into(),
                source,
            })?;
            std::io::stdout().write_all(&out).ok();
            Ok(exit::OK)
        }
    }
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
