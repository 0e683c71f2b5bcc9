//! Helpers of the checksum, manifest and cache tests: compare pkgsign's
//! output with the real `sha256sum` & co. and `b3sum` byte for byte, sign a
//! list, watch FIFOs that must never be opened, feed a FIFO through a
//! waiting writer, and wait out the cache's one-second rule.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::{Key, mkfifo, sign_in, tool_ok, wait_for};

/// Show bytes readably in assertion messages.
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).escape_debug().to_string()
}

/// Assert two outputs are byte-identical, showing both when not.
#[track_caller]
pub fn assert_same_bytes(what: &str, ours: &[u8], theirs: &[u8]) {
    if ours != theirs {
        let a: Vec<&[u8]> = ours.split(|b| *b == b'\n').collect();
        let b: Vec<&[u8]> = theirs.split(|b| *b == b'\n').collect();
        let first = a
            .iter()
            .zip(b.iter())
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "{what}: pkgsign's output differs from the reference tool's at line {}:\n  pkgsign: {}\n  tool:    {}\n(whole outputs: {} vs {} lines)",
            first + 1,
            a.get(first).map(|l| show(l)).unwrap_or_default(),
            b.get(first).map(|l| show(l)).unwrap_or_default(),
            a.len(),
            b.len()
        );
    }
}

/// Sign `file` (pkgsign format) with every key in `keys`, writing FILE.sig.
#[track_caller]
pub fn sign(file: &Path, keys: &[&Key]) {
    let dir = file.parent().unwrap_or(Path::new("."));
    sign_in(dir, file, keys, &["--quiet"]).ok();
}

/// The hex SHA-256 of `dir/file`, computed by the real `sha256sum`.
#[track_caller]
pub fn sha256_hex_of(dir: &Path, file: &str) -> String {
    let out = tool_ok(dir, "sha256sum", ["--", file]);
    String::from_utf8_lossy(&out[..64]).into_owned()
}

/// Bytes as an `OsString`.
pub fn os(b: &[u8]) -> OsString {
    OsStr::from_bytes(b).to_os_string()
}

/// Detects whether anyone opens a FIFO, with an inotify watch for
/// `IN_OPEN`: no thread, no blocked writer, and no window in which an open
/// could go unseen (pkgsign never waits for a FIFO's writer).
pub struct FifoWatch {
    inotify: rustix::fd::OwnedFd,
    seen: AtomicBool,
}

impl FifoWatch {
    /// Create the FIFO at `path` and start watching it. Checks first that
    /// the watch sees an open (its own), so that `was_opened` can fail.
    pub fn new(path: &Path) -> Self {
        use rustix::fs::inotify;
        mkfifo(path);
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .expect("inotify_init1");
        inotify::add_watch(&fd, path, inotify::WatchFlags::OPEN).expect("inotify_add_watch");
        let watch = FifoWatch {
            inotify: fd,
            seen: AtomicBool::new(false),
        };
        // O_NONBLOCK: opening for reading never waits for a writer.
        use std::os::unix::fs::OpenOptionsExt;
        let own = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .expect("opening the FIFO to test the watch");
        drop(own);
        assert!(
            watch.drain(),
            "the inotify watch on {} saw no open",
            path.display()
        );
        watch
    }

    /// Read every pending event; whether there was any.
    fn drain(&self) -> bool {
        let mut buf = [0u8; 4096];
        let mut any = false;
        loop {
            match rustix::io::read(&self.inotify, &mut buf) {
                Ok(n) if n > 0 => any = true,
                Ok(_) | Err(rustix::io::Errno::AGAIN) => return any,
                Err(e) => panic!("reading inotify events: {e}"),
            }
        }
    }

    /// Whether anyone has opened the FIFO since the watch was set up.
    pub fn was_opened(&self) -> bool {
        if self.drain() {
            self.seen.store(true, Ordering::SeqCst);
        }
        self.seen.load(Ordering::SeqCst)
    }
}

/// How old a file's ctime must be for the cache to remember its digest
/// (the cache's `RACY_SECS`).
pub const CACHEABLE_AFTER: Duration = Duration::from_secs(1);

/// Wait until every file changed so far is old enough to be cached (the
/// cache skips files whose ctime is less than [`CACHEABLE_AFTER`] old).
///
/// The condition is a time on the real-time clock, so this waits for that
/// time rather than for a guessed interval: the kernel stamps a change with
/// a clock that never runs ahead of the real-time clock, so every ctime so
/// far is at most `now`, and from `now + CACHEABLE_AFTER` on (the 2 ms cover
/// the clock's rounding) pkgsign, reading the clock later still, finds each
/// of them old enough.
pub fn wait_until_cacheable() {
    let ready = SystemTime::now() + CACHEABLE_AFTER + Duration::from_millis(2);
    while let Ok(left) = ready.duration_since(SystemTime::now()) {
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left);
    }
}

/// Start a thread that writes `data` to the FIFO at `path`, and return once
/// that thread is blocked opening the FIFO, waiting for a reader (so that a
/// reader started now finds a writer). The thread ends when the data is
/// read.
#[track_caller]
pub fn spawn_waiting_fifo_writer(path: &Path, data: Vec<u8>) -> JoinHandle<()> {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    let writer = std::thread::spawn(move || {
        // "PID/task/TID": this thread's directory in /proc.
        let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
        tid_tx.send(Path::new("/proc").join(me)).unwrap();
        std::fs::write(path, data).unwrap();
    });
    let task = tid_rx.recv().expect("the writer thread's /proc directory");
    wait_for(
        "the writer thread to block opening the FIFO",
        Duration::from_secs(10),
        || blocked_opening_a_fifo(&task) || writer.is_finished(),
    );
    assert!(!writer.is_finished(), "the FIFO writer ended early");
    writer
}

/// Whether the task whose /proc directory is `task` sleeps in `open`
/// waiting for the FIFO's other end: its wait channel says so
/// (`wait_for_partner`), or, where the kernel hides wait channels, it
/// sleeps inside the open system call (its only one that can sleep).
fn blocked_opening_a_fifo(task: &Path) -> bool {
    let read = |f: &str| std::fs::read_to_string(task.join(f)).unwrap_or_default();
    if read("wchan").trim() == "wait_for_partner" {
        return true;
    }
    // `/proc/.../syscall` names the call only while the task sleeps in it.
    let open_calls: &[&str] = if cfg!(target_arch = "x86_64") {
        &["2", "257"] // open, openat
    } else {
        &["56"] // openat (aarch64 and the other generic-syscall arches)
    };
    let syscall = read("syscall");
    open_calls.contains(&syscall.split(' ').next().unwrap_or(""))
}

/// Detects whether anyone reads a file, with an inotify watch for
/// `IN_ACCESS` (a read of any size, even of a sparse hole).
pub struct ReadWatch {
    inotify: rustix::fd::OwnedFd,
}

impl ReadWatch {
    /// Start watching the existing file `path`. Checks first that the watch
    /// sees a read (its own), so that `was_read` can fail.
    pub fn new(path: &Path) -> Self {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .expect("inotify_init1");
        inotify::add_watch(&fd, path, inotify::WatchFlags::ACCESS).expect("inotify_add_watch");
        let watch = ReadWatch { inotify: fd };
        let mut one = [0u8; 1];
        std::io::Read::read(&mut std::fs::File::open(path).unwrap(), &mut one).unwrap();
        assert!(
            watch.was_read(),
            "the inotify watch on {} saw no read",
            path.display()
        );
        watch
    }

    /// Whether the file was read since the last call (or since `new`).
    pub fn was_read(&self) -> bool {
        let mut buf = [0u8; 4096];
        let mut any = false;
        loop {
            match rustix::io::read(&self.inotify, &mut buf) {
                Ok(n) if n > 0 => any = true,
                Ok(_) | Err(rustix::io::Errno::AGAIN) => return any,
                Err(e) => panic!("reading inotify events: {e}"),
            }
        }
    }
}
