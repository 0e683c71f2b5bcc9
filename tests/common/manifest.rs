//! Helpers of the checksum, manifest and cache tests: compare pkgsign's
//! output with the real `sha256sum` & co. and `b3sum` byte for byte, sign a
//! list, watch FIFOs that must never be opened, and wait out the cache's
//! one-second rule.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Key, mkfifo, sign_in, tool_ok};

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

/// Detects whether anyone opens a FIFO for reading: a thread blocks opening
/// it for writing, which returns only once a reader has opened it.
pub struct FifoWatch {
    path: PathBuf,
    opened: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FifoWatch {
    /// Create the FIFO at `path` and start watching it.
    pub fn new(path: &Path) -> Self {
        mkfifo(path);
        let opened = Arc::new(AtomicBool::new(false));
        let flag = opened.clone();
        let p = path.to_path_buf();
        let thread = std::thread::spawn(move || {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&p) {
                flag.store(true, Ordering::SeqCst);
                drop(f);
            }
        });
        FifoWatch {
            path: path.to_path_buf(),
            opened,
            thread: Some(thread),
        }
    }

    /// Whether a reader has opened the FIFO so far.
    pub fn was_opened(&self) -> bool {
        // Give a reader that just opened it a moment to be seen.
        std::thread::sleep(Duration::from_millis(50));
        self.opened.load(Ordering::SeqCst)
    }
}

impl Drop for FifoWatch {
    fn drop(&mut self) {
        // Release the blocked writer by opening the FIFO for reading ourselves
        // (O_NONBLOCK: never waits).
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        let _r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Wait until every file changed so far is old enough to be cached (the
/// cache skips files whose ctime is less than one second old).
pub fn wait_until_cacheable() {
    std::thread::sleep(Duration::from_millis(1150));
}
