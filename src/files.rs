//! Replacing files whole: readers see the old file or the new one, never a part, and once a
//! replace returns, a crash keeps the new one. The bottom layer: imports nothing from the crate.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replaces (or creates) `path` with `contents`: a temporary file in the same folder is
/// written and fsynced, renamed over `path`, and the folder is fsynced so the rename itself
/// is durable. An existing file keeps its mode (others may read it, e.g. a monitoring job
/// or the name server); a new file gets what a plain create gives (0666 less the umask).
/// Something that is not a regular file (`/dev/stdout`, a pipe) cannot be replaced and is
/// written in place. A symbolic link is written through: the file it leads to is replaced and
/// the link stays a link (a zone file kept under version control elsewhere and linked into
/// the name server's folder must not be turned into a copy).
pub fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let target = through_links(path)?;
    let path = target.as_path();
    if fs::metadata(path).is_ok_and(|meta| !meta.is_file()) {
        return fs::write(path, contents);
    }
    let folder = folder_of(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".xmppdns-").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temp = builder.tempfile_in(folder)?;
    match fs::metadata(path) {
        // Set explicitly: the mode given at creation is narrowed by the umask.
        Ok(meta) => temp.as_file().set_permissions(meta.permissions())?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    // On failure the temporary file is dropped, and so removed.
    temp.persist(path).map_err(|e| e.error)?;
    // Best effort: the new contents are in place either way, and some file systems refuse
    // to fsync a folder (reporting an error here would say the replace failed when it did not).
    if let Ok(dir) = fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Like `replace`, but first copies an existing `path` (mode included) to `<path>.bak`, so the
/// version before this write can be restored by hand. Through a symbolic link, the copy is made
/// beside the file the link leads to, the file that is replaced.
pub fn replace_keeping_backup(path: &Path, contents: &[u8]) -> io::Result<()> {
    let target = through_links(path)?;
    if target.exists() {
        fs::copy(&target, backup_path(&target))?;
    }
    replace(&target, contents)
}

/// The file `path` leads to once every symbolic link on the way is followed (the path itself
/// when it is no link, or does not exist yet). A link whose target does not exist yet leads to
/// that target, which the replace then creates.
pub fn through_links(path: &Path) -> io::Result<PathBuf> {
    // Linux gives up after 40 links (ELOOP); so do we, rather than loop on a cycle.
    const MAX_LINKS: usize = 40;
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let next = fs::read_link(&current)?;
                current = folder_of(&current).join(next);
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{}: more than {MAX_LINKS} symbolic links in a row (a cycle?)",
        path.display()
    )))
}

/// `<path>.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bak");
    PathBuf::from(name)
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(path).unwrap().permissions()) & 0o777
    }

    #[test]
    fn replaces_the_contents_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zone");
        replace(&path, b"first\n").unwrap();
        replace(&path, b"second\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
        assert_eq!(names_in(dir.path()), ["zone"]);
    }

    #[cfg(unix)]
    #[test]
    fn keeps_the_mode_of_the_file_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topology.json");
        fs::write(&path, "old").unwrap();
        for wanted in [0o640, 0o604, 0o400] {
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(wanted))
                .unwrap();
            replace(&path, b"new").unwrap();
            assert_eq!(mode(&path), wanted);
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_not_left_private_to_its_owner() {
        // The temporary file starts 0600; a created file gets 0666 less the umask instead,
        // like any other create. Every umask in use keeps the owner's read and write.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        replace(&path, b"{}").unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, "").unwrap();
        assert_eq!(mode(&path), mode(&plain));
    }

    #[test]
    fn keeps_a_backup_of_the_old_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contoso.com.zone");
        replace_keeping_backup(&path, b"one").unwrap();
        assert_eq!(
            names_in(dir.path()),
            ["contoso.com.zone"],
            "nothing to back up"
        );
        replace_keeping_backup(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(fs::read_to_string(backup_path(&path)).unwrap(), "one");
        assert_eq!(
            names_in(dir.path()),
            ["contoso.com.zone", "contoso.com.zone.bak"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_written_in_place() {
        replace(Path::new("/dev/null"), b"discarded").unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("contoso.com.zone"), "old").unwrap();
        fs::set_permissions(
            real.join("contoso.com.zone"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
        // A relative link, and a link to that link.
        let link = dir.path().join("zone.link");
        std::os::unix::fs::symlink("real/contoso.com.zone", &link).unwrap();
        let outer = dir.path().join("outer.link");
        std::os::unix::fs::symlink(&link, &outer).unwrap();

        replace_keeping_backup(&outer, b"new").unwrap();
        assert!(fs::symlink_metadata(&outer)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_to_string(real.join("contoso.com.zone")).unwrap(),
            "new"
        );
        assert_eq!(mode(&real.join("contoso.com.zone")), 0o640);
        assert_eq!(
            fs::read_to_string(real.join("contoso.com.zone.bak")).unwrap(),
            "old"
        );
        assert_eq!(
            names_in(&real),
            ["contoso.com.zone", "contoso.com.zone.bak"]
        );
        assert_eq!(names_in(dir.path()), ["outer.link", "real", "zone.link"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_cycle_of_links_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let err = replace(&dir.path().join("a"), b"x").unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
    }

    #[test]
    fn a_failed_replace_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-folder").join("zone");
        assert!(replace(&missing, b"x").is_err());
        assert!(names_in(dir.path()).is_empty());
    }
}
