//! Output files created without following a symlink (`O_NOFOLLOW`): every
//! file the engine and the CLI write (pcap ports and sinks, the tap,
//! `--json`/`--hlog`/`--plot`) goes through here, so a symlink planted at
//! the path in a shared directory (`/tmp`) cannot redirect the write to
//! another file — the attack `fs.protected_symlinks` guards against for
//! sticky directories, refused here everywhere.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates (or truncates) `path` for writing, mode 0644 before the umask;
/// a symlink at `path` is refused with an error that says so (`ELOOP`).
pub fn create_nofollow(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| explain(path, e))
}

/// Writes `data` to `path` as [`create_nofollow`] creates it.
pub fn write_nofollow(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = create_nofollow(path)?;
    f.write_all(data)?;
    f.flush()
}

/// Checks that `path` could be written (a symlink is refused), without
/// truncating a file that is there and leaving no new file behind.
pub fn check_writable_nofollow(path: &Path) -> io::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| explain(path, e))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

fn explain(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            e.kind(),
            format!(
                "{} is a symbolic link: refused (output files are never written through a symlink; give the real path)",
                path.display()
            ),
        )
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let d = std::env::temp_dir().join(format!("ws-nofollow-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let target = d.join("precious");
        std::fs::write(&target, b"keep").unwrap();
        let link = d.join("out.json");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_nofollow(&link, b"overwritten")
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link") && e.contains("out.json"), "{e}");
        assert!(check_writable_nofollow(&link).is_err());
        assert!(create_nofollow(&link).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        // A plain path is written, and truncated on the next write.
        let plain = d.join("plain.json");
        write_nofollow(&plain, b"0123456789").unwrap();
        write_nofollow(&plain, b"ab").unwrap();
        assert_eq!(std::fs::read(&plain).unwrap(), b"ab");
        check_writable_nofollow(&d.join("never")).unwrap();
        assert!(!d.join("never").exists(), "no file left behind");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
