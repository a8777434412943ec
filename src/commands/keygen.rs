//! `keygen`: a new TSIG key in BIND format, on stdout or in a new file only its owner reads.

use std::io::Write;
use std::path::Path;

use xmppdns::dns::tsig::{Algorithm, TsigKey};
use xmppdns::error::exit;
use xmppdns::Error;

use crate::cli::KeygenArgs;

pub(crate) fn keygen(args: KeygenArgs) -> Result<u8, Error> {
    let algorithm = Algorithm::from_name(&args.algorithm)?;
    let key = TsigKey::generate(&args.name, algorithm)?;
    match args.out {
        None => print!("{}", key.to_bind_file()),
        Some(path) => write_private(&path, &key.to_bind_file())
            .map_err(|source| Error::Write { path, source })?,
    }
    Ok(exit::OK)
}

/// Creates a file only its owner can read (it holds a secret); refuses to overwrite, so it
/// does not go through the atomic replace of other outputs.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
