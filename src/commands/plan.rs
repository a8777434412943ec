//! `plan`: what would change in DNS, as a table or JSON, optionally saved for `apply`.

use xmppdns::error::exit;
use xmppdns::plan::render::{self, Look};
use xmppdns::provider::{self, Environment};
use xmppdns::{app, Error};

use super::write_output;
use crate::cli::{Format, PlanArgs};

pub(crate) fn plan(args: PlanArgs, look: Look) -> Result<u8, Error> {
    let topology = app::load_topology(&args.topology)?;
    let mut provider = provider::open(&topology, &Environment::system())?;
    let plan = app::plan(&topology, provider.as_mut())?;
    // The plan file (checksums over the whole plan) only when it is shown or saved.
    let file = || app::plan_file(&plan, &topology, provider.kind());
    match args.format {
        Format::Table => print!("{}", render::table_or_summary(&plan, look, args.all)),
        Format::Json => print!("{}", render::json(&file())),
    }
    if let Some(out) = &args.out {
        write_output(out, &render::json(&file()))?;
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}
