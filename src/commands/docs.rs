//! `completions` and `man`: the command line described for shells and for `man`.

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
    let page = clap_mangen::Man::new(Cli::command());
    let mut out = Vec::new();
    page.render(&mut out).map_err(|source| Error::Write {
        path: "stdout".into(),
        source,
    })?;
    std::io::stdout().write_all(&out).ok();
    Ok(exit::OK)
}
