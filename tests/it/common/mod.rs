//! The one support module of the integration tests: run the real `pkgsign`
//! binary (and the real peer tools: `openssl`, `sha256sum` & co., `b3sum`,
//! `faketime`) with a scrubbed environment and a timeout, and check every
//! run of pkgsign against the contract (exit codes 0/1/2, exactly one
//! `error:` line on stderr when it fails, one JSON object on stdout with
//! `--json`, never a panic, never a hang).
//!
//! - this file: running processes ([`ps`], [`run`], [`pkgsign`], [`tool`]),
//!   their outcome ([`Run`]), a temporary directory per test ([`Env`]),
//!   keys ([`keygen`]), signing, and file helpers (modes, FIFOs, mtimes,
//!   leftover temp files, signature blocks);
//! - [`rotation`]: signing-keys and trusted-keys directories, `faketime`,
//!   fingerprints and metadata (rotation, trust, crash and audit tests);
//! - [`manifest`]: byte-for-byte comparison with the checksum tools, FIFO
//!   watches and the cache's one-second rule (checksum, manifest and cache
//!   tests).
//!
//! A missing peer tool is a test FAILURE, never a skip.
#![allow(dead_code)] // Each test crate compiles this module and uses only part of it.

pub mod manifest;
pub mod rotation;
pub mod serve;
pub mod token;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest any single command may take before the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `openssl pkeyutl` options of pkgsign's RSA-PSS statement signatures
/// (docs/signature-format.md): SHA-256, MGF1 with SHA-256, salt 32 bytes.
pub const OPENSSL_PSS_OPTS: [&str; 8] = [
    "-digest",
    "sha256",
    "-pkeyopt",
    "rsa_padding_mode:pss",
    "-pkeyopt",
    "rsa_pss_saltlen:32",
    "-pkeyopt",
    "rsa_mgf1_md:sha256",
];

/// Environment variables that would change pkgsign's behaviour; removed from
/// every run so that the caller's environment cannot leak into a test.
const SCRUBBED_ENV: &[&str] = &[
    "PKGSIGN_PASSPHRASE",
    "PKGSIGN_AUDIT_LOG",
    "PKGSIGN_WORKER_ID",
    "PKGSIGN_CONFIG",
    "PKGSIGN_TEST_CRASH_AT",
    "FAKETIME",
    "LD_PRELOAD",
];

/// Scrub `cmd`'s environment and pin the time zone and the locale (the
/// peer tools' output depends on the locale).
pub fn hermetic(cmd: &mut Command) -> &mut Command {
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("TZ", "UTC").env("LC_ALL", "C")
}

/// The pkgsign binary cargo built for these tests, or the one named by
/// `PKGSIGN_TEST_BIN`: run an attack test against an older build to see it
/// fail there (`PKGSIGN_TEST_BIN=/old/pkgsign cargo test --profile fast-test
/// --test it lineage_attacks::`).
pub fn bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var_os("PKGSIGN_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pkgsign")))
    })
}

/// `pkgsign ARGS`, with a scrubbed environment (in the caller's directory).
pub fn ps<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(bin());
    hermetic(&mut c);
    c.args(args);
    c
}

/// Convert anything string- or path-like into arguments.
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

/// The outcome of one process.
pub struct Run {
    /// The command, for messages.
    pub cmd: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Standard output, raw (see [`Run::out`]).
    pub stdout: Vec<u8>,
    /// Standard error, lossy.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("cmd", &self.cmd)
            .field("code", &self.code)
            .field("signal", &self.signal)
            .field("stdout", &self.out())
            .field("stderr", &self.stderr)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

/// Where `prog` comes from, for the message when it is missing.
fn install_hint(prog: &str) -> &'static str {
    match prog {
        "openssl" => " (package openssl)",
        "b3sum" => " (package b3sum, or `cargo install b3sum`)",
        "faketime" => " (package faketime)",
        p if p.ends_with("sum") || p == "mkfifo" || p == "touch" => " (package coreutils)",
        _ => "",
    }
}

/// Run `cmd` to completion, feeding `stdin` (if any), and capture it. The
/// only check: it finishes within `timeout` (else it is killed and the test
/// fails). A program that cannot be started fails the test, never skips it.
#[track_caller]
pub fn capture(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Run {
    let text = format!("{cmd:?}");
    let prog = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdout(Stdio::piped())
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
            "could not run `{prog}` ({e}): a missing tool is a test FAILURE, never a skip; \
             install it{}",
            install_hint(&prog)
        ),
    };
    let feeder = stdin.map(|data| {
        let data = data.to_vec();
        let mut pipe = child.stdin.take().expect("stdin pipe");
        std::thread::spawn(move || {
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
    // Poll for the exit with growing pauses: most runs take a few
    // milliseconds, and a fixed 5 ms pause made each of them wait up to
    // 5 ms longer than it ran (thousands of runs in the suite).
    let mut pause = MIN_POLL;
    let status = loop {
        match child.try_wait().expect("waiting for the child") {
            Some(s) => break s,
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{text} did not finish within {timeout:?} (killed)");
            }
            None => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_POLL);
            }
        }
    };
    let elapsed = start.elapsed();
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Run {
        cmd: text,
        code: status.code().unwrap_or(-1),
        signal: status.signal(),
        stdout: t_out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned(),
        elapsed,
    }
}

/// The first pause of a poll ([`capture`], [`wait_for`]); each next pause
/// doubles, up to [`MAX_POLL`].
const MIN_POLL: Duration = Duration::from_micros(100);
/// The longest pause of a poll.
const MAX_POLL: Duration = Duration::from_millis(5);

/// Wait until `cond` holds, checking it with short, growing pauses; the test
/// fails, naming `what`, when it does not hold within `timeout`. Tests await
/// the condition they need this way, never with a fixed sleep (too short on
/// a busy machine, a waste on an idle one).
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut pause = MIN_POLL;
    while !cond() {
        assert!(
            start.elapsed() <= timeout,
            "waited {timeout:?} in vain for: {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// Run pkgsign (a command from [`ps`] or [`Env::cmd`]) and check the
/// contract every run must keep (see [`Run::assert_contract`]).
#[track_caller]
pub fn run(cmd: Command) -> Run {
    run_with(cmd, None, DEFAULT_TIMEOUT)
}

/// [`run`] with standard input and a timeout of the caller's choice.
#[track_caller]
pub fn run_with(cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Run {
    let r = capture(cmd, stdin, timeout);
    r.assert_contract();
    r
}

/// `pkgsign ARGS` run in `cwd`, contract checked (default timeout, no stdin).
#[track_caller]
pub fn pkgsign<I, S>(cwd: &Path, argv: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    pkgsign_t(cwd, argv, None, DEFAULT_TIMEOUT)
}

/// `pkgsign ARGS` run in `cwd` with `stdin` and `timeout`, contract checked.
#[track_caller]
pub fn pkgsign_t<I, S>(cwd: &Path, argv: I, stdin: Option<&[u8]>, timeout: Duration) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = ps(argv);
    c.current_dir(cwd);
    run_with(c, stdin, timeout)
}

/// An external tool (`openssl`, `sha256sum`, `b3sum`, ...) with `argv`, to
/// run in `cwd` with a scrubbed environment (see [`capture`]).
pub fn tool_cmd<I, S>(cwd: &Path, prog: &str, argv: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(prog);
    hermetic(&mut c).args(argv).current_dir(cwd);
    c
}

/// Run an external tool in `cwd`, whatever its exit code. Missing: a test
/// failure.
#[track_caller]
pub fn tool<I, S>(cwd: &Path, prog: &str, argv: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    capture(tool_cmd(cwd, prog, argv), None, DEFAULT_TIMEOUT)
}

/// Run an external tool and require exit 0; returns its stdout.
#[track_caller]
pub fn tool_ok<I, S>(cwd: &Path, prog: &str, argv: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = tool(cwd, prog, argv);
    assert_eq!(out.code, 0, "`{prog}` failed: {out:#?}");
    out.stdout
}

impl Run {
    /// Standard output, lossy.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// No panic message on either stream.
    #[track_caller]
    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked at") && !self.out().contains("panicked at"),
            "pkgsign panicked: {self:#?}"
        );
    }

    /// The invariants every run of pkgsign must keep: no panic, exit code 0,
    /// 1 or 2 (not 101, a panic, nor -1, a signal), and on failure exactly
    /// one `error: ` line on stderr (warnings may come with it).
    #[track_caller]
    pub fn assert_contract(&self) {
        self.assert_no_panic();
        assert!(
            [0, 1, 2].contains(&self.code),
            "exit code {} is not one of the contract's 0/1/2 (101 is a panic, -1 a signal): {self:#?}",
            self.code
        );
        if self.code != 0 {
            let errors: Vec<&str> = self
                .stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .collect();
            assert!(
                errors.len() == 1 && errors[0].starts_with("error: "),
                "a failure prints exactly one `error: ` line on stderr: {self:#?}"
            );
        }
    }

    /// Assert exit code `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        self
    }

    /// Assert success (exit 0).
    #[track_caller]
    pub fn ok(self) -> Run {
        self.code(0)
    }

    /// Assert exit code `code`, and that stderr is exactly one line starting
    /// with `error:` (no warning besides).
    #[track_caller]
    pub fn fails(self, code: i32) -> Run {
        let run = self.code(code);
        run.assert_one_error_line();
        run
    }

    /// Assert that stderr is exactly one line, starting with `error: `.
    #[track_caller]
    pub fn assert_one_error_line(&self) {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "an error must be exactly one stderr line: {self:#?}"
        );
        assert!(
            lines[0].starts_with("error: ") && lines[0].len() > "error: ".len() + 10,
            "the stderr line must start with `error: ` and say something: {self:#?}"
        );
    }

    /// The one JSON object printed on stdout (`--json`).
    #[track_caller]
    pub fn json(&self) -> Value {
        let text = self.out();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "--json prints exactly one line on stdout: {self:#?}"
        );
        let v: Value = serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"));
        assert!(v.is_object(), "--json prints an object: {self:#?}");
        v
    }

    /// Assert a failure with exit `exit`, one `error:` line, and (the run
    /// having `--json`) a JSON object with `"ok": false` and `"code": code`.
    #[track_caller]
    pub fn fails_with(self, exit: i32, code: &str) -> Run {
        let run = self.fails(exit);
        let v = run.json();
        assert_eq!(v["ok"], Value::Bool(false), "{run:#?}");
        assert_eq!(v["code"].as_str(), Some(code), "wrong code: {run:#?}");
        run
    }

    /// A refused verification: exit 1, `"verified": false` and `code`.
    #[track_caller]
    pub fn refused(self, code: &str) -> Run {
        let run = self.fails_with(1, code);
        assert_eq!(run.json()["verified"], Value::Bool(false), "{run:#?}");
        run
    }

    /// A successful verification with `--json`: exit 0, `"verified": true`.
    #[track_caller]
    pub fn verified(self) -> Run {
        let run = self.ok();
        let v = run.json();
        assert_eq!(v["verified"], Value::Bool(true), "{run:#?}");
        assert_eq!(v["ok"], Value::Bool(true), "{run:#?}");
        run
    }
}

/// Key algorithms the tests generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// Ed25519.
    Ed25519,
    /// RSA with a 2048-bit modulus (the smallest accepted: fastest).
    Rsa,
}

/// A key pair written by `pkgsign keygen`.
#[derive(Debug, Clone)]
pub struct Key {
    /// `NAME.pem`.
    pub private: PathBuf,
    /// `NAME.pub`.
    pub public: PathBuf,
    /// The fingerprint keygen printed.
    pub fingerprint: String,
}

/// `pkgsign keygen --output-dir DIR --name NAME` for `alg` (run in DIR's
/// parent: DIR itself may not exist yet).
#[track_caller]
pub fn keygen(dir: &Path, name: &str, alg: Alg) -> Key {
    let mut argv = args(["keygen", "--output-dir"]);
    argv.push(dir.into());
    argv.extend(args(["--name", name]));
    if alg == Alg::Rsa {
        argv.extend(args(["--algorithm", "rsa", "--bits", "2048"]));
    }
    let run = pkgsign(dir.parent().unwrap_or(dir), argv).ok();
    let fingerprint = run.out().trim().to_string();
    assert!(
        fingerprint.starts_with("SHA256:") && fingerprint.len() == 7 + 43,
        "keygen prints the fingerprint on stdout: {run:#?}"
    );
    Key {
        private: dir.join(format!("{name}.pem")),
        public: dir.join(format!("{name}.pub")),
        fingerprint,
    }
}

/// `sign-package --package PKG --private-key K... EXTRA...` (arguments only).
pub fn sign_args<P: AsRef<Path>>(package: &Path, keys: &[P], extra: &[&str]) -> Vec<OsString> {
    let mut v = args(["sign-package", "--package"]);
    v.push(package.into());
    for k in keys {
        v.push("--private-key".into());
        v.push(k.as_ref().into());
    }
    v.extend(args(extra));
    v
}

/// `sign-package --package PKG --private-key K... EXTRA...` run in `cwd`,
/// whatever its outcome.
#[track_caller]
pub fn sign_in(cwd: &Path, package: &Path, keys: &[&Key], extra: &[&str]) -> Run {
    let privates: Vec<&Path> = keys.iter().map(|k| k.private.as_path()).collect();
    pkgsign(cwd, sign_args(package, &privates, extra))
}

/// A temporary working directory for one test.
pub struct Env {
    /// The directory; removed when the test ends.
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A fresh, empty directory.
    pub fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("pkgsign-test-")
                .tempdir()
                .expect("creating a temp dir"),
        }
    }

    /// `dir/rel`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write `data` to `dir/rel` (creating parent directories).
    pub fn write(&self, rel: impl AsRef<Path>, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }

    /// A package with some content that depends on `name`.
    pub fn package(&self, name: &str) -> PathBuf {
        let data: Vec<u8> = format!("package {name}\n")
            .into_bytes()
            .into_iter()
            .chain((0..5000u32).map(|i| (i * 7 % 251) as u8))
            .collect();
        self.write(name, data)
    }

    /// A `pkgsign` command running in the directory.
    pub fn cmd(&self) -> Command {
        let mut c = ps(std::iter::empty::<&str>());
        c.current_dir(self.dir.path());
        c
    }

    /// Run pkgsign with `args` in the directory.
    #[track_caller]
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        pkgsign(self.dir.path(), args)
    }

    /// A key pair in `DIR/dir`.
    #[track_caller]
    pub fn keygen_in(&self, dir: &str, name: &str, alg: Alg) -> Key {
        keygen(&self.path(dir), name, alg)
    }

    /// A key pair in `DIR/keys`.
    #[track_caller]
    pub fn keygen(&self, name: &str, alg: Alg) -> Key {
        self.keygen_in("keys", name, alg)
    }

    /// `sign-package --package PKG --private-key K... EXTRA...`.
    #[track_caller]
    pub fn sign(&self, package: &Path, keys: &[&Key], extra: &[&str]) -> Run {
        sign_in(self.dir.path(), package, keys, extra)
    }

    /// `verify-package --package PKG --public-key P... EXTRA... --json`.
    #[track_caller]
    pub fn verify(&self, package: &Path, keys: &[&Key], extra: &[&str]) -> Run {
        let mut v = args(["verify-package", "--package"]);
        v.push(package.into());
        for k in keys {
            v.push("--public-key".into());
            v.push(k.public.clone().into());
        }
        v.extend(args(extra));
        v.push("--json".into());
        self.run(v)
    }

    /// `verify-package --package PKG --signature SIG --public-key P... --json`.
    #[track_caller]
    pub fn verify_sig(&self, package: &Path, sig: &Path, keys: &[&Key]) -> Run {
        let sig = sig.to_str().expect("test paths are UTF-8");
        self.verify(package, keys, &["--signature", sig])
    }
}

/// The mode bits of a file (not following a symlink).
pub fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Set the mode bits of a file.
pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// [`leftovers`] of a directory that may not exist yet (none then).
pub fn leftovers_if_exists(dir: &Path) -> Vec<String> {
    if dir.exists() {
        leftovers(dir)
    } else {
        Vec::new()
    }
}

/// Make a FIFO with the real `mkfifo`.
#[track_caller]
pub fn mkfifo(path: &Path) {
    tool_ok(Path::new("/"), "mkfifo", [path]);
}

/// Set a file's mtime to `secs.nanos` with the real `touch`.
#[track_caller]
pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    tool_ok(
        Path::new("/"),
        "touch",
        [
            OsString::from("-m"),
            OsString::from(format!("--date=@{secs}.{nanos:09}")),
            OsString::from("--"),
            path.as_os_str().to_os_string(),
        ],
    );
}

/// What pkgsign's atomic writes and rotations leave behind when they do not
/// finish or fail to clean up, in `dir` (not recursive; `dir` must exist, so
/// that a mistyped path cannot pass as "nothing left"): `.pkgsign-*` and
/// `*.tmp` files, the rotation journal and the staged key. Sorted, as
/// `dir/name`.
pub fn leftovers(dir: &Path) -> Vec<String> {
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(".pkgsign-")
                || n.ends_with(".tmp")
                || n == pkgsign::rotate::JOURNAL
                || n == pkgsign::rotate::STAGED
        })
        .map(|n| format!("{}/{n}", dir.display()))
        .collect();
    v.sort();
    v
}

/// The lines of a pkgsign signature file: header, then per block the lines
/// from `algorithm:` to `signature:`.
pub fn sig_blocks(text: &str) -> (String, Vec<String>) {
    let mut lines = text.lines();
    let header = lines.next().expect("a header line").to_string();
    let mut blocks = Vec::new();
    let mut cur = String::new();
    for l in lines {
        cur.push_str(l);
        cur.push('\n');
        if l.starts_with("signature: ") {
            blocks.push(std::mem::take(&mut cur));
        }
    }
    assert!(cur.is_empty(), "unterminated block in {text:?}");
    (header, blocks)
}
