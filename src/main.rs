//! The `xmppdns` binary: parse arguments, call the library, print, map errors to exit codes.

mod cli;
mod commands;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use xmppdns::dns::tsig::{Algorithm, TsigKey};
use xmppdns::error::exit;
use xmppdns::plan::render::{self, Look};
use xmppdns::provider::{self, Environment};
use xmppdns::topology::Topology;
use xmppdns::{app, Error};

use cli::{Cli, Command, Format};
use commands::{confirm, print_applied, run_audit, run_init, run_move, write_private};

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
            let mut provider = provider::open(&topology, &Environment::system())?;
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
            journal,
        } => {
            let prepared =
                app::prepare_apply(&input, &Environment::system(), force, journal.as_deref())?;
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
            print_applied(&app::execute(prepared)?);
            Ok(exit::OK)
        }
        Command::Failover {
            topology,
            to,
            move_options,
            no_promote,
        } => run_move(
            &topology,
            Some(to),
            &move_options,
            !no_promote,
            look,
            "failover",
        ),
        Command::Failback {
            topology,
            move_options,
            no_promote,
        } => run_move(
            &topology,
            None,
            &move_options,
            !no_promote,
            look,
            "failback",
        ),
        Command::Rollback {
            topology,
            to,
            yes,
            force,
            journal,
        } => {
            let steps = app::prepare_rollback(
                &topology,
                to,
                journal.as_deref(),
                &Environment::system(),
                force,
            )?;
            for step in steps {
                match step {
                    app::RollbackStep::AlreadyRestored { entry } => {
                        println!("Journal entry {entry}: already restored, nothing to do.")
                    }
                    app::RollbackStep::Ready { entry, prepared } => {
                        println!("Journal entry {entry}: restoring what it replaced.");
                        print!("{}", render::table(&prepared.plan, look));
                        if !yes {
                            confirm()?;
                        }
                        print_applied(&app::execute(*prepared)?);
                    }
                }
            }
            println!(
                "Note: rollback does not edit the topology; `xmppdns plan {}` shows where it and DNS now differ.",
                topology.display()
            );
            Ok(exit::OK)
        }
        Command::Keygen {
            name,
            algorithm,
            out,
        } => {
            let key_error = |e: xmppdns::dns::tsig::TsigError| {
                Error::Provider(provider::ProviderError::Key {
                    message: e.to_string(),
                })
            };
            let algorithm = Algorithm::from_name(&algorithm).map_err(key_error)?;
            let key = TsigKey::generate(&name, algorithm).map_err(key_error)?;
            match out {
                None => print!("{}", key.to_bind_file()),
                Some(path) => write_private(&path, &key.to_bind_file())
                    .map_err(|source| Error::Write { path, source })?,
            }
            Ok(exit::OK)
        }
        Command::Audit {
            topology,
            domains,
            nameservers,
            probe,
            format,
            concurrency,
            timeout_ms,
        } => {
            let request = app::AuditRequest {
                topology,
                domains,
                nameservers,
                probe,
                settings: xmppdns::dns::batch::BatchSettings {
                    window: concurrency,
                    timeout: std::time::Duration::from_millis(timeout_ms),
                    ..Default::default()
                },
            };
            run_audit(&request, format, look)
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
        Command::Init {
            from_dns: _,
            domains,
            nameservers,
            federation,
            out,
        } => run_init(domains, nameservers, federation, out),
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
