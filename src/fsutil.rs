//! File-system helpers: bounded reads of untrusted files, and writes that are
//! atomic (temp file in the same directory, fsync, rename) so that a killed or
//! failed run never leaves a partial file behind or damages an existing one.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, FileError, KeyError, Result};

/// Open `path` for reading, refusing anything but a regular file.
///
/// A symlink as the last component is followed, as `sha256sum` and
/// `openssl` follow it: users name packages through links such as
/// `current.tar.gz -> app-1.2.tar.gz`. Files that pkgsign itself manages
/// are opened with [`open_regular_nofollow`] instead.
pub fn open_regular(path: &Path) -> Result<File> {
    open_checked(path, Kind::Regular, Follow::Yes)
}

/// [`open_regular`] for a file pkgsign manages itself (lock files, files
/// inside a trusted-keys or keys directory): a symlink as the last
/// component is refused, never followed.
pub fn open_regular_nofollow(path: &Path) -> Result<File> {
    open_checked(path, Kind::Regular, Follow::No)
}

/// Open `path` for reading as a stream, as `sha256sum` reads its
/// arguments: a regular file, or a pipe or FIFO (such as the `/dev/fd/63`
/// of a shell's `<(...)`). A FIFO is opened without waiting for a writer,
/// so one that has none reads as empty instead of hanging. Directories,
/// devices and sockets are refused.
pub fn open_stream(path: &Path) -> Result<File> {
    open_checked(path, Kind::RegularOrFifo, Follow::Yes)
}

/// What [`open_checked`] accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    RegularOrFifo,
}

/// Whether [`open_checked`] follows a symlink as the last component.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Follow {
    Yes,
    No,
}

/// Open a regular file (or with [`Kind::RegularOrFifo`] also a FIFO) for
/// reading, judged by `fstat` on a descriptor, never by a `stat(path)` that
/// a swap could make stale before the open.
///
/// The name is resolved once, with `O_PATH`: that opens nothing (no
/// device's open routine runs, no FIFO is opened). Its `fstat` decides;
/// only then is that very inode opened for reading, through
/// `/proc/self/fd/N`, which leads to the inode and not back to the name, so
/// nothing swapped in meanwhile is opened. That open is non-blocking
/// (`O_NONBLOCK`, so a FIFO never waits for a writer) and takes no
/// controlling terminal (`O_NOCTTY`); reads block normally afterwards.
/// Without `/proc` the name is opened again the same non-blocking way and
/// must be the inode judged (device and inode numbers compared).
fn open_checked(path: &Path, kind: Kind, follow: Follow) -> Result<File> {
    use rustix::fs::{FileType, Mode, OFlags};
    use std::os::fd::AsRawFd;
    let io = |e: rustix::io::Errno| Error::io(path, "opening", e.into());
    let not_a_file = || {
        Error::File(FileError::NotAFile {
            path: path.to_path_buf(),
        })
    };
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if follow == Follow::No {
        flags |= OFlags::NOFOLLOW;
    }
    let handle = rustix::fs::open(path, flags, Mode::empty()).map_err(io)?;
    let judged = rustix::fs::fstat(&handle).map_err(io)?;
    match FileType::from_raw_mode(judged.st_mode) {
        FileType::RegularFile => {}
        FileType::Fifo if kind == Kind::RegularOrFifo => {}
        FileType::Symlink => return Err(symlink_refused(path)),
        _ => return Err(not_a_file()),
    }
    let read = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(
        format!("/proc/self/fd/{}", handle.as_raw_fd()).as_str(),
        read,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // No /proc: open the name again; the inode check below catches a swap.
        Err(rustix::io::Errno::NOENT) => rustix::fs::open(
            path,
            if follow == Follow::No {
                read | OFlags::NOFOLLOW
            } else {
                read
            },
            Mode::empty(),
        )
        .map_err(io)?,
        Err(e) => return Err(io(e)),
    };
    let opened = rustix::fs::fstat(&fd).map_err(io)?;
    if (opened.st_dev, opened.st_ino) != (judged.st_dev, judged.st_ino) {
        return Err(Error::io(
            path,
            "opening",
            std::io::Error::other("the file was replaced while it was being opened; try again"),
        ));
    }
    // Reads block again from here on: they wait for data, not for a writer.
    let now = rustix::fs::fcntl_getfl(&fd).map_err(io)?;
    rustix::fs::fcntl_setfl(&fd, now - OFlags::NONBLOCK).map_err(io)?;
    Ok(File::from(fd))
}

/// The error for a symlink where pkgsign never follows one.
fn symlink_refused(path: &Path) -> Error {
    Error::io(
        path,
        "opening",
        std::io::Error::other(
            "it is a symlink, and pkgsign never follows a symlink at a file it manages; remove the link",
        ),
    )
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
        return Err(Error::File(FileError::TooLarge {
            path: path.to_path_buf(),
            what,
            limit,
        }));
    }
    Ok(buf)
}

/// Refuse a private key file that group or others can access, as ssh does.
pub fn check_private_permissions(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "reading metadata of", e))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::Key(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        }));
    }
    Ok(())
}

/// How [`write_atomic`] treats an existing file at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Fail with [`Error::File(FileError::AlreadyExists)`] if the destination exists
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
    let tmp = write_temp(&dir, contents, mode)?;
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
                    Error::File(FileError::AlreadyExists {
                        path: dest.to_path_buf(),
                    })
                } else {
                    Error::io(dest, "linking into place", e.error)
                }
            })?;
        }
    }
    sync_dir(&dir)
}

/// A temp file in `dir` (named `.pkgsign-*.tmp`, which recovery removes)
/// holding `contents`, with exactly `mode`; not synced yet.
fn write_temp(dir: &Path, contents: &[u8], mode: u32) -> Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".pkgsign-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, "creating a temporary file in", e))?;
    // The umask may have narrowed the mode; set it exactly.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(tmp.path(), "setting permissions of", e))?;
    tmp.write_all(contents)
        .map_err(|e| Error::io(tmp.path(), "writing", e))?;
    Ok(tmp)
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
            return Err(crate::error::Invalid::NotInDir {
                path: dest.clone(),
                dir: dir.to_path_buf(),
            }
            .into());
        }
        temps.push((write_temp(dir, contents.as_bytes(), mode)?, dest));
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
        Ok(_) => Err(Error::File(FileError::AlreadyExists {
            path: dest.to_path_buf(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dest, "checking", e)),
    }
}

/// Create `dir` and its missing parents, each new one mode 0700 (a
/// directory of keys or state); an existing one is left as it is.
pub fn create_private_dir_all(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, "creating directory", e))
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

/// Refuse `dir` (`what` it is for) when group or others may write it and
/// it is not sticky: another user could then rename a file of theirs over
/// one pkgsign created there, between a check and its use.
pub fn check_private_dir(dir: &Path, what: &'static str) -> Result<()> {
    let m = std::fs::metadata(dir).map_err(|e| Error::io(dir, "reading", e))?;
    let mode = m.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(FileError::WritableByOthers {
            path: dir.to_path_buf(),
            what,
            mode,
        }
        .into());
    }
    Ok(())
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
    let file = open_lock_file(&path)?;
    let res = if exclusive {
        file.lock()
    } else {
        file.lock_shared()
    };
    res.map_err(|e| Error::io(&path, "locking", e))?;
    Ok(DirLock { _file: file })
}

/// Open (creating it, mode 0600, if missing) the lock file `path`, never
/// through a symlink: `O_NOFOLLOW` applies to the creation too, so a link
/// planted at the lock's name (dangling or not) is refused, and its target
/// is neither created nor truncated. Anything but a regular file is refused.
pub fn open_lock_file(path: &Path) -> Result<File> {
    use rustix::fs::OFlags;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => symlink_refused(path),
            _ => Error::io(path, "opening lock file", e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(path, "reading metadata of", e))?;
    if !meta.is_file() {
        return Err(Error::File(FileError::NotAFile {
            path: path.to_path_buf(),
        }));
    }
    Ok(file)
}

/// Test hook: abort the process at the given step (rotation: 1 to 3, see
/// `tests/it/rotation_crash.rs`; apply: 11 to 13, see `tests/it/apply_cli.rs`).
/// Read only by binaries built with the `test-crash-points` feature, which
/// `cargo test` turns on and release builds never have.
pub const CRASH_ENV: &str = "PKGSIGN_TEST_CRASH_AT";

/// Whether this build has the crash points (a test build).
pub const CRASH_POINTS: bool = cfg!(feature = "test-crash-points");

/// Abort here when [`CRASH_ENV`] names `step` (test builds only).
#[cfg(feature = "test-crash-points")]
pub fn crash_point(step: u32) {
    if std::env::var(CRASH_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        == Some(step)
    {
        std::process::abort();
    }
}

/// Abort here when [`CRASH_ENV`] names `step` (test builds only).
#[cfg(not(feature = "test-crash-points"))]
pub fn crash_point(_step: u32) {}

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
            Err(Error::File(FileError::NotAFile { .. }))
        ));
        // Plain files still open; FIFOs stay refused where only files go.
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert!(open_stream(&dir.path().join("f")).is_ok());
        assert!(matches!(
            open_regular(&fifo),
            Err(Error::File(FileError::NotAFile { .. }))
        ));
    }

    #[test]
    fn managed_files_are_never_opened_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // A user's path through a symlink is followed; a managed one is not.
        assert!(open_regular(&link).is_ok());
        let err = open_regular_nofollow(&link).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(open_regular_nofollow(&target).is_ok());
        // A dangling link at a lock file: refused, and nothing is created.
        let lock = dir.path().join(LOCK_FILE);
        let victim = dir.path().join("victim");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        let err = lock_dir(dir.path(), true).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(std::fs::symlink_metadata(&victim).is_err());
        // Without the link, the lock file is made, mode 0600.
        std::fs::remove_file(&lock).unwrap();
        drop(lock_dir(dir.path(), false).unwrap());
        assert_eq!(
            std::fs::symlink_metadata(&lock)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    #[test]
    fn devices_are_refused_by_type() {
        for dev in ["/dev/null", "/dev/zero"] {
            let dev = Path::new(dev);
            assert!(matches!(
                open_regular(dev),
                Err(Error::File(FileError::NotAFile { .. }))
            ));
            assert!(matches!(
                open_stream(dev),
                Err(Error::File(FileError::NotAFile { .. }))
            ));
        }
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
            Err(Error::File(FileError::TooLarge { limit: 5, .. }))
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
        assert!(matches!(err, Error::File(FileError::AlreadyExists { .. })));
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
            Err(Error::File(FileError::AlreadyExists { .. }))
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
            Err(Error::File(FileError::TooLarge { .. }))
        ));
        assert!(matches!(
            read_bounded(dir.path(), 99, "x"),
            Err(Error::File(FileError::NotAFile { .. }))
        ));
    }
}
