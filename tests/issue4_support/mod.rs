//! Helpers shared by `checksum_cli.rs`, `manifest_cli.rs` and `cache_cli.rs`:
//! run the real `pkgsign` binary (and the real peer tools: `sha256sum` & co.,
//! `b3sum`) with a timeout, and check the invariants every run must keep.
//!
//! A peer tool that is missing is a test FAILURE, never a skip: these tests
//! exist to compare pkgsign with those tools byte for byte.
#![allow(dead_code)] // Each test crate uses part of this module.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest any single command may take before the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The outcome of one process.
#[derive(Debug)]
pub struct Out {
    /// The command line, for messages.
    pub cmd: String,
    /// Exit code (-1: killed by a signal).
    pub code: i32,
    /// Standard output, raw.
    pub stdout: Vec<u8>,
    /// Standard error, lossy.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Out {
    /// Standard output, lossy.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard output as the one JSON object `--json` promises.
    #[track_caller]
    pub fn json(&self) -> Value {
        let text = self.out();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "--json must print exactly one JSON object on stdout: {self:#?}"
        );
        serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Assert the exit code.
    #[track_caller]
    pub fn code(self, code: i32) -> Out {
        assert_eq!(
            self.code,
            code,
            "expected exit {code}, got {}: {:#?}\nstdout: {}",
            self.code,
            self,
            self.out()
        );
        self
    }

    /// Assert exit 0.
    #[track_caller]
    pub fn ok(self) -> Out {
        self.code(0)
    }
}

fn render(prog: &OsStr, args: &[OsString]) -> String {
    let mut s = prog.to_string_lossy().into_owned();
    for a in args {
        s.push(' ');
        s.push_str(&format!("{:?}", a.to_string_lossy()));
    }
    s
}

/// Run `prog` in `cwd` with a timeout, feeding `stdin` (if any).
pub fn run_prog(
    prog: &OsStr,
    args: &[OsString],
    cwd: &Path,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Out {
    let cmd_text = render(prog, args);
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("PKGSIGN_PASSPHRASE")
        .env_remove("PKGSIGN_AUDIT_LOG")
        .env("LC_ALL", "C")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!(
            "could not run {cmd_text}: {e}. A missing peer tool is a test FAILURE: install it \
             (coreutils for sha256sum & co., b3sum for BLAKE3)"
        ),
    };
    let feeder = stdin.map(|data| {
        let data = data.to_vec();
        let mut pipe = child.stdin.take().expect("stdin pipe");
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&data);
        })
    });
    let mut so = child.stdout.take().expect("stdout pipe");
    let mut se = child.stderr.take().expect("stderr pipe");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let status = loop {
        match child.try_wait().expect("waiting for the child") {
            Some(s) => break s,
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd_text} did not finish within {timeout:?} (killed)");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let elapsed = start.elapsed();
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout = t_out.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Out {
        cmd: cmd_text,
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        elapsed,
    }
}

/// Convert anything path-like into arguments.
pub fn args<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    items
        .into_iter()
        .map(|s| s.as_ref().to_os_string())
        .collect()
}

/// The pkgsign binary cargo built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pkgsign"))
}

/// Run pkgsign with the contract's invariants checked: no panic, exit 0/1/2,
/// no hang (killed after `timeout`), and on failure exactly one `error:` line
/// on stderr.
#[track_caller]
pub fn pkgsign_t<I, S>(cwd: &Path, argv: I, stdin: Option<&[u8]>, timeout: Duration) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run_prog(bin().as_os_str(), &args(argv), cwd, stdin, timeout);
    let stdout = out.out();
    assert!(
        !out.stderr.contains("panicked at") && !stdout.contains("panicked at"),
        "pkgsign panicked: {out:#?}"
    );
    assert!(
        [0, 1, 2].contains(&out.code),
        "exit code {} is not one of 0/1/2 (101 is a panic, -1 a signal): {out:#?}",
        out.code
    );
    if out.code != 0 {
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "a failure prints exactly one `error:` line on stderr: {out:#?}"
        );
    }
    out
}

/// Run pkgsign (default timeout, no stdin).
#[track_caller]
pub fn pkgsign<I, S>(cwd: &Path, argv: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    pkgsign_t(cwd, argv, None, DEFAULT_TIMEOUT)
}

/// Run a peer tool (`sha256sum`, `b3sum`, ...). Missing: a failure.
#[track_caller]
pub fn tool<I, S>(cwd: &Path, prog: &str, argv: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_prog(OsStr::new(prog), &args(argv), cwd, None, DEFAULT_TIMEOUT)
}

/// Run a peer tool and require exit 0; returns its stdout.
#[track_caller]
pub fn tool_ok<I, S>(cwd: &Path, prog: &str, argv: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = tool(cwd, prog, argv);
    assert_eq!(out.code, 0, "{prog} failed: {out:#?}");
    out.stdout
}

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

/// A key pair made by `pkgsign keygen` in `dir`: (private, public).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    pkgsign(
        dir,
        [
            OsStr::new("keygen"),
            OsStr::new("--output-dir"),
            dir.as_os_str(),
            OsStr::new("--name"),
            OsStr::new(name),
        ],
    )
    .ok();
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    )
}

/// Sign `file` (pkgsign format) with every key in `keys`, writing FILE.sig.
pub fn sign(file: &Path, keys: &[&Path]) {
    let mut a: Vec<OsString> = args(["sign-package", "--quiet", "--package"]);
    a.push(file.into());
    for k in keys {
        a.push("--private-key".into());
        a.push(k.into());
    }
    pkgsign(file.parent().unwrap_or(Path::new(".")), a).ok();
}

/// The hex SHA-256 of `data`, computed by the real `sha256sum`.
pub fn sha256_hex_of(dir: &Path, file: &str) -> String {
    let out = tool_ok(dir, "sha256sum", ["--", file]);
    String::from_utf8_lossy(&out[..64]).into_owned()
}

/// Bytes as an `OsString`.
pub fn os(b: &[u8]) -> OsString {
    OsStr::from_bytes(b).to_os_string()
}

/// Make a FIFO with the real `mkfifo`.
pub fn mkfifo(path: &Path) {
    let out = tool(Path::new("/"), "mkfifo", [path]);
    assert_eq!(out.code, 0, "mkfifo failed: {out:#?}");
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

/// Set a file's mtime (and atime) to `secs.nanos` with the real `touch`.
pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    let out = tool(
        Path::new("/"),
        "touch",
        [
            OsString::from("-m"),
            OsString::from(format!("--date=@{secs}.{nanos:09}")),
            OsString::from("--"),
            path.as_os_str().to_os_string(),
        ],
    );
    assert_eq!(out.code, 0, "touch failed: {out:#?}");
}

/// Wait until every file changed so far is old enough to be cached (the
/// cache skips files whose ctime is less than one second old).
pub fn wait_until_cacheable() {
    std::thread::sleep(Duration::from_millis(1150));
}
