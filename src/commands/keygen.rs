//! `keygen`: a new TSIG key in BIND format, on stdout or in a new file only its owner reads
//! (and, with `--group`, that group: Debian's named runs as group `bind` and must read it).

use std::io::Write;
use std::path::Path;

use xmppdns::dns::tsig::{Algorithm, TsigKey};
use xmppdns::error::exit;
use xmppdns::Error;

use crate::cli::KeygenArgs;

pub(crate) fn keygen(args: KeygenArgs) -> Result<u8, Error> {
    let algorithm = Algorithm::from_name(&args.algorithm)?;
    let key = TsigKey::generate(&args.name, algorithm)?;
    // Looked up first: an unknown group leaves nothing behind.
    let group = args.group.as_deref().map(group_id).transpose()?;
    match args.out {
        None => print!("{}", key.to_bind_file()),
        Some(path) => write_private(&path, &key.to_bind_file(), group)
            .map_err(|source| Error::Write { path, source })?,
    }
    Ok(exit::OK)
}

/// The id of group `name`, through the system's name service (`getent`, so LDAP and other
/// NSS groups count too).
fn group_id(name: &str) -> Result<u32, Error> {
    let unknown = |why: String| Error::Argument {
        name: "--group".into(),
        message: why,
    };
    if name.is_empty() || name.starts_with('-') || name.contains([':', '\n']) {
        return Err(unknown(format!("`{name}` is not a group name")));
    }
    let output = std::process::Command::new("getent")
        .args(["group", name])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| unknown(format!("cannot look up group `{name}` (getent: {e})")))?;
    let line = String::from_utf8_lossy(&output.stdout);
    // name:password:gid:members
    line.lines()
        .next()
        .and_then(|l| l.split(':').nth(2))
        .and_then(|gid| gid.trim().parse().ok())
        .filter(|_| output.status.success())
        .ok_or_else(|| {
            unknown(format!(
                "no group `{name}` on this system; nothing was written"
            ))
        })
}

/// Creates a file only its owner can read (it holds a secret); refuses to overwrite, so it
/// does not go through the atomic replace of other outputs. With a group, the file is given
/// to it before it becomes group-readable, and removed again if that fails.
fn write_private(path: &Path, text: &str, group: Option<u32>) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let shared = || -> std::io::Result<()> {
        #[cfg(unix)]
        if let Some(gid) = group {
            use std::os::unix::fs::PermissionsExt;
            std::os::unix::fs::fchown(&file, None, Some(gid))?;
            file.set_permissions(std::fs::Permissions::from_mode(0o640))?;
        }
        Ok(())
    };
    if let Err(e) = shared() {
        std::fs::remove_file(path).ok();
        return Err(e);
    }
    file.write_all(text.as_bytes())
}
