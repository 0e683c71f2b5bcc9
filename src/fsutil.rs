//! File-system helpers: bounded reads of untrusted files, and writes that are
//! atomic (temp file in the same directory, fsync, rename) so that a killed or
//! failed run never leaves a partial file behind or damages an existing one.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Open `path` for reading, refusing anything but a regular file.
pub fn open_regular(path: &Path) -> Result<File> {
    open_checked(path, false)
}

/// Open `path` for reading as a stream, as `sha256sum` reads its
/// arguments: a regular file, or a pipe or FIFO (such as the `/dev/fd/63`
/// of a shell's `<(...)`). A FIFO is opened without waiting for a writer,
/// so one that has none reads as empty instead of hanging. Directories,
/// devices and sockets are refused.
pub fn open_stream(path: &Path) -> Result<File> {
    open_checked(path, true)
}

/// Open a regular file, or with `fifo_ok` also a FIFO, for reading.
///
/// The type is checked before opening (so a device is never opened) and
/// again on the opened descriptor. The open itself never waits for a
/// FIFO's writer, even one swapped in between; reads block normally.
fn open_checked(path: &Path, fifo_ok: bool) -> Result<File> {
    use std::os::unix::fs::FileTypeExt;
    let allowed = |t: std::fs::FileType| t.is_file() || (fifo_ok && t.is_fifo());
    let not_a_file = || Error::NotAFile {
        path: path.to_path_buf(),
    };
    let before = std::fs::metadata(path).map_err(|e| Error::io(path, "opening", e))?;
    if !allowed(before.file_type()) {
        return Err(not_a_file());
    }
    let nonblock = rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblock.bits() as i32)
        .open(path)
        .map_err(|e| Error::io(path, "opening", e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(path, "reading metadata of", e))?;
    if !allowed(meta.file_type()) {
        return Err(not_a_file());
    }
    // Reads block again from here on: they wait for data, not for a writer.
    let flags = rustix::fs::fcntl_getfl(&file).map_err(|e| Error::io(path, "opening", e.into()))?;
    rustix::fs::fcntl_setfl(&file, flags - nonblock)
        .map_err(|e| Error::io(path, "opening", e.into()))?;
    Ok(file)
}

/// Run `f` over the whole contents of the opened `file` (named `path` in
/// errors), memory-mapped read-only. Returns `f`'s result and the length.
///
/// Only signing (raw Ed25519, which needs the whole message at once) and
/// BLAKE3 hashing of large files map files. If another process truncates
/// the file meanwhile, reading the mapping raises SIGBUS and pkgsign is
/// killed before it writes anything; `SECURITY.md` says so.
#[allow(unsafe_code)] // The one unsafe block of the crate: see the SAFETY note.
pub fn with_mapped<T>(
    file: &File,
    path: &Path,
    f: impl FnOnce(&[u8]) -> Result<T>,
) -> Result<(T, u64)> {
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "reading metadata of", e))?
        .len();
    if len == 0 {
        // mmap of an empty file fails; the contents are simply empty.
        return Ok((f(&[])?, 0));
    }
    // SAFETY: the mapping is read-only, private to this call and dropped
    // before it returns, so no reference to it outlives it. Another process
    // may still change the file underneath: a write changes the bytes read
    // (as it would with read(2)), a truncation raises SIGBUS (a crash,
    // never a wrong result), as documented above and in SECURITY.md.
    let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io(path, "mapping", e))?;
    Ok((f(&map)?, len))
}

/// Read a whole small file, refusing anything larger than `limit` bytes.
///
/// The buffer is zeroized on drop, so this is also the way to read secrets.
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Zeroizing<Vec<u8>>> {
    read_bounded_from(open_regular(path)?, path, limit, what)
}

/// Read all of `reader` (named `path` in errors), refusing more than
/// `limit` bytes. The buffer is zeroized on drop.
pub fn read_bounded_from(
    reader: impl Read,
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    reader
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, "reading", e))?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            what,
            limit,
        });
    }
    Ok(buf)
}

/// Refuse a private key file that group or others can access, as ssh does.
pub fn check_private_permissions(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "reading metadata of", e))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// How [`write_atomic`] treats an existing file at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Fail with [`Error::AlreadyExists`] if the destination exists
    /// (checked atomically with a hard link).
    Never,
    /// Replace the destination (the directory entry itself, never the target
    /// of a symlink) atomically.
    Allowed,
}

/// Write `contents` to `dest` atomically with the given permission `mode`.
///
/// The data goes to a temp file in the same directory that is created with
/// `O_EXCL` and `mode` from the start (so a secret is never readable by
/// others, not even for an instant), fsynced, then renamed or linked into
/// place; the directory is fsynced afterwards. If anything fails, the temp
/// file is removed and `dest` is untouched.
pub fn write_atomic(dest: &Path, contents: &[u8], mode: u32, replace: Replace) -> Result<()> {
    let dir = parent_dir(dest);
    let mut tmp = tempfile::Builder::new()
        .prefix(".pkgsign-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, "creating a temporary file in", e))?;
    // The umask may have narrowed the mode; set it exactly.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(tmp.path(), "setting permissions of", e))?;
    tmp.write_all(contents)
        .map_err(|e| Error::io(tmp.path(), "writing", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), "syncing", e))?;
    match replace {
        Replace::Allowed => {
            tmp.persist(dest)
                .map_err(|e| Error::io(dest, "renaming into place", e.error))?;
        }
        Replace::Never => {
            tmp.persist_noclobber(dest).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::AlreadyExists {
                        path: dest.to_path_buf(),
                    }
                } else {
                    Error::io(dest, "linking into place", e.error)
                }
            })?;
        }
    }
    sync_dir(&dir)
}

/// [`write_atomic`] for many files of one directory at once (replacing
/// any that exist): every temp file is written, one `syncfs` makes them all
/// durable, then each is renamed into place and the directory is synced
/// once. Thousands of files cost two flushes instead of two each.
pub fn write_atomic_batch(dir: &Path, files: &[(PathBuf, String)], mode: u32) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let mut temps = Vec::with_capacity(files.len());
    for (dest, contents) in files {
        if parent_dir(dest) != dir {
            return Err(Error::Usage(format!(
                "{}: not in {}",
                dest.display(),
                dir.display()
            )));
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".pkgsign-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, "creating a temporary file in", e))?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(tmp.path(), "setting permissions of", e))?;
        tmp.write_all(contents.as_bytes())
            .map_err(|e| Error::io(tmp.path(), "writing", e))?;
        temps.push((tmp, dest));
    }
    let d = File::open(dir).map_err(|e| Error::io(dir, "opening directory", e))?;
    rustix::fs::syncfs(&d).map_err(|e| Error::io(dir, "syncing the file system of", e.into()))?;
    for (tmp, dest) in temps {
        tmp.persist(dest)
            .map_err(|e| Error::io(dest, "renaming into place", e.error))?;
    }
    d.sync_all()
        .map_err(|e| Error::io(dir, "syncing directory", e))
}

/// Refuse early if `dest` exists (or is a dangling symlink).
pub fn ensure_absent(dest: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dest) {
        Ok(_) => Err(Error::AlreadyExists {
            path: dest.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dest, "checking", e)),
    }
}

/// fsync a directory so that a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io(dir, "opening directory", e))?;
    d.sync_all()
        .map_err(|e| Error::io(dir, "syncing directory", e))
}

/// The directory holding `path` ("." for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `x.tar.gz` -> `x.tar.gz.sig` (appends; never replaces an extension).
pub fn sig_path_for(package: &Path) -> PathBuf {
    let mut s = package.as_os_str().to_os_string();
    s.push(".sig");
    PathBuf::from(s)
}

/// Name of the lock file pkgsign keeps in a keys or trusted-keys directory.
pub const LOCK_FILE: &str = ".pkgsign.lock";

/// A held lock on a directory; released when dropped (or when the process
/// dies, so a killed run never leaves a stale lock).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Take the lock of `dir`, waiting for other pkgsign processes.
/// `exclusive`: for changing the directory; shared: for reading it.
pub fn lock_dir(dir: &Path, exclusive: bool) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(&path, "opening lock file", e))?;
    let res = if exclusive {
        file.lock()
    } else {
        file.lock_shared()
    };
    res.map_err(|e| Error::io(&path, "locking", e))?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_stream_reads_fifos_without_hanging_and_refuses_directories() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // No writer: opens at once and reads as empty.
        let mut data = Vec::new();
        open_stream(&fifo).unwrap().read_to_end(&mut data).unwrap();
        assert!(data.is_empty());
        // A writer that is already waiting: its bytes are read, blocking.
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, b"through the pipe").unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        let got = read_bounded_from(open_stream(&fifo).unwrap(), &fifo, 1024, "test").unwrap();
        writer.join().unwrap();
        assert_eq!(&got[..], b"through the pipe");
        assert!(matches!(
            open_stream(dir.path()),
            Err(Error::NotAFile { .. })
        ));
        // Plain files still open; FIFOs stay refused where only files go.
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert!(open_stream(&dir.path().join("f")).is_ok());
        assert!(matches!(open_regular(&fifo), Err(Error::NotAFile { .. })));
    }

    #[test]
    fn read_bounded_from_refuses_more_than_the_limit() {
        let p = Path::new("stdin");
        assert_eq!(
            &read_bounded_from(&b"12345"[..], p, 5, "test").unwrap()[..],
            b"12345"
        );
        assert!(matches!(
            read_bounded_from(&b"123456"[..], p, 5, "test"),
            Err(Error::TooLarge { limit: 5, .. })
        ));
    }

    #[test]
    fn sig_path_appends() {
        assert_eq!(
            sig_path_for(Path::new("a/x.tar.gz")),
            PathBuf::from("a/x.tar.gz.sig")
        );
    }

    #[test]
    fn atomic_write_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        write_atomic(&p, b"one", 0o600, Replace::Never).unwrap();
        let err = write_atomic(&p, b"two", 0o600, Replace::Never).unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_atomic(&p, b"two", 0o600, Replace::Allowed).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn replace_does_not_follow_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("k.pem");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            write_atomic(&link, b"x", 0o600, Replace::Never),
            Err(Error::AlreadyExists { .. })
        ));
        write_atomic(&link, b"x", 0o600, Replace::Allowed).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn bounded_read_refuses_large() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![0u8; 100]).unwrap();
        assert!(read_bounded(&p, 100, "x").is_ok());
        assert!(matches!(
            read_bounded(&p, 99, "x"),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(
            read_bounded(dir.path(), 99, "x"),
            Err(Error::NotAFile { .. })
        ));
    }
}
