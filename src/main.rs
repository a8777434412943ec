//! The `xmppdns` binary: parse the arguments, dispatch each command to its function in
//! `commands`, and map errors to exit codes.

mod cli;
mod commands;

use std::process::ExitCode;

use xmppdns::Error;

use cli::Command;

fn main() -> ExitCode {
    let cli = commands::parse_args();
    commands::init_logging(cli.verbose);
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs one command; `Ok` holds its exit code.
fn run(command: Command) -> Result<u8, Error> {
    let look = commands::look();
    commands::record_reason(&command);
    match command {
        Command::Plan(args) => commands::plan(args, look),
        Command::Apply(args) => commands::apply(args, look),
        Command::Failover(args) => commands::failover(args, look),
        Command::Failback(args) => commands::failback(args, look),
        Command::Rollback(args) => commands::rollback(args, look),
        Command::Drain(args) => commands::drain(args, look),
        Command::Settle(args) => commands::settle(args, look),
        Command::Drill(args) => commands::drill(args),
        Command::Keygen(args) => commands::keygen(args),
        Command::Audit(args) => commands::audit(args, look),
        Command::Init(args) => commands::init(args),
        Command::Journal(args) => commands::journal(args, look),
        Command::Monitor(args) => commands::monitor(args),
        Command::Completions(args) => commands::completions(args),
        Command::Man => commands::man(),
    }
}
