//! Helpers of the rotation, trust, crash and audit tests: run the real
//! `pkgsign` binary (optionally under `faketime`), and look at a signing-keys
//! directory and a trusted-keys directory the way an operator would.
//!
//! Kept apart from `tests/common` on purpose: these tests only need a small,
//! stable subset, and must not change when that module does.
#![allow(dead_code)] // Each test crate uses a different part of this module.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use pkgsign::keys::{Fingerprint, KeySource, encoding};
use pkgsign::meta::{KEYS_FILE, Metadata, TRUST_FILE};
use serde_json::Value;

/// One day in seconds.
pub const DAY: u64 = 86_400;
/// The key name key-rotate uses by default.
pub const NAME: &str = "signing-key";

/// Environment variables that change pkgsign's behaviour: never inherited.
const SCRUBBED: &[&str] = &[
    "PKGSIGN_PASSPHRASE",
    "PKGSIGN_AUDIT_LOG",
    "PKGSIGN_TEST_CRASH_AT",
    "FAKETIME",
    "LD_PRELOAD",
];

/// The binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pkgsign")
}

/// `pkgsign ARGS`, with a scrubbed environment.
pub fn ps<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(bin());
    c.args(args);
    for v in SCRUBBED {
        c.env_remove(v);
    }
    c.env("TZ", "UTC");
    c
}

/// `faketime 'T' pkgsign ARGS`: pkgsign sees `at` (seconds since the epoch)
/// as the current time; its clock keeps running from there.
pub fn ps_at<I, S>(at: u64, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    assert!(
        Command::new("faketime")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok(),
        "these tests need `faketime` (apt-get install faketime)"
    );
    let mut c = Command::new("faketime");
    c.arg(faketime_arg(at)).arg(bin()).args(args);
    for v in SCRUBBED {
        c.env_remove(v);
    }
    c.env("TZ", "UTC");
    c
}

/// `2027-01-30T00:00:00Z` -> `2027-01-30 00:00:00` (read by faketime with TZ=UTC).
pub fn faketime_arg(at: u64) -> String {
    rfc(at).replace('T', " ").trim_end_matches('Z').to_string()
}

/// RFC 3339 form, as pkgsign prints times.
pub fn rfc(t: u64) -> String {
    pkgsign::sigfile::format_time(t)
}

/// The real clock, in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Seconds since the epoch as a `SystemTime`.
pub fn sys(t: u64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(t)
}

/// The outcome of one run.
#[derive(Debug)]
pub struct Run {
    /// The command, for messages.
    pub args: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Run `cmd` to completion. Never accepts a panic.
#[track_caller]
pub fn run(mut cmd: Command) -> Run {
    let args = format!("{cmd:?}");
    let out = cmd.output().expect("running pkgsign");
    let r = Run {
        args,
        code: out.status.code().unwrap_or(-1),
        signal: out.status.signal(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked at"),
        "pkgsign panicked: {r:#?}"
    );
    r
}

impl Run {
    /// Assert exit 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    /// Assert exit `code` and an `error:` line on stderr.
    #[track_caller]
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        assert!(
            self.stderr.lines().any(|l| l.starts_with("error: ")),
            "no `error:` line: {self:#?}"
        );
        self
    }

    /// The JSON object on stdout (the last line, for commands that print more).
    #[track_caller]
    pub fn json(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no stdout: {self:#?}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// A verification refused with exit 1 and `code` (the run had `--json`).
    #[track_caller]
    pub fn refused(self, code: &str) -> Run {
        let r = self.fails(1);
        let v = r.json();
        assert_eq!(v["verified"], Value::Bool(false), "{r:#?}");
        assert_eq!(v["code"].as_str(), Some(code), "wrong code: {r:#?}");
        r
    }

    /// A verification accepted (the run had `--json`).
    #[track_caller]
    pub fn verified(self) -> Run {
        let r = self.ok();
        assert_eq!(r.json()["verified"], Value::Bool(true), "{r:#?}");
        r
    }
}

/// A working directory with a signing-keys directory `keys/` and a
/// trusted-keys directory `trusted/`.
pub struct Env {
    /// Removed at the end of the test.
    pub tmp: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A fresh directory.
    pub fn new() -> Env {
        Env {
            tmp: tempfile::Builder::new()
                .prefix("pkgsign-rot-")
                .tempdir()
                .unwrap(),
        }
    }

    /// `tmp/rel`.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// The signing-keys directory.
    pub fn keys(&self) -> PathBuf {
        self.p("keys")
    }

    /// The trusted-keys directory.
    pub fn trusted(&self) -> PathBuf {
        self.p("trusted")
    }

    /// The current private key, `keys/signing-key.pem`.
    pub fn current(&self) -> PathBuf {
        self.keys().join(format!("{NAME}.pem"))
    }

    /// Write a package with distinct contents.
    pub fn package(&self, name: &str) -> PathBuf {
        let p = self.p(name);
        std::fs::write(&p, format!("release {name}\n").repeat(100)).unwrap();
        p
    }

    /// `key-rotate --keys-dir keys --trusted-keys trusted EXTRA... --json`, run now.
    pub fn rotate_args(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec![
            "key-rotate".to_string(),
            "--keys-dir".into(),
            self.keys().display().to_string(),
            "--trusted-keys".into(),
            self.trusted().display().to_string(),
            "--json".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// Run key-rotate now; returns its JSON outcome.
    #[track_caller]
    pub fn rotate(&self, extra: &[&str]) -> Value {
        run(ps(self.rotate_args(extra))).ok().json()
    }

    /// `sign-package --package P --keys-dir keys --json [--output O]`.
    pub fn sign_dir_args(&self, package: &Path, output: Option<&Path>) -> Vec<String> {
        let mut v = vec![
            "sign-package".to_string(),
            "--package".into(),
            package.display().to_string(),
            "--keys-dir".into(),
            self.keys().display().to_string(),
            "--json".into(),
        ];
        if let Some(o) = output {
            v.push("--output".into());
            v.push(o.display().to_string());
        }
        v
    }

    /// `verify-package --package P [--signature S] --trusted-keys trusted --json`.
    pub fn verify_args(&self, package: &Path, sig: Option<&Path>) -> Vec<String> {
        verify_args_in(&self.trusted(), package, sig)
    }
}

/// `verify-package --package P [--signature S] --trusted-keys TDIR --json`.
pub fn verify_args_in(tdir: &Path, package: &Path, sig: Option<&Path>) -> Vec<String> {
    let mut v = vec![
        "verify-package".to_string(),
        "--package".into(),
        package.display().to_string(),
        "--trusted-keys".into(),
        tdir.display().to_string(),
        "--json".into(),
    ];
    if let Some(s) = sig {
        v.push("--signature".into());
        v.push(s.display().to_string());
    }
    v
}

/// `sign-package --package P --private-key K --json [--output O]`.
pub fn sign_key_args(package: &Path, key: &Path, output: Option<&Path>) -> Vec<String> {
    let mut v = vec![
        "sign-package".to_string(),
        "--package".into(),
        package.display().to_string(),
        "--private-key".into(),
        key.display().to_string(),
        "--json".into(),
    ];
    if let Some(o) = output {
        v.push("--output".into());
        v.push(o.display().to_string());
    }
    v
}

/// The fingerprint of a private key file (unencrypted, or with `pass`).
pub fn fp_of_pem(path: &Path, pass: Option<&str>) -> Fingerprint {
    let pass = pass.map(|p| encoding::Passphrase::new(p.as_bytes().to_vec()).unwrap());
    encoding::load_private_key(path, pass.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .public_key()
        .fingerprint()
}

/// The fingerprint of a public key file.
pub fn fp_of_pub(path: &Path) -> Fingerprint {
    encoding::load_public_key(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .fingerprint()
}

/// Files in `dir` whose name ends with `ext`, sorted.
pub fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(ext))
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Fingerprints of every `*.pem` in `dir`.
pub fn pem_fps(dir: &Path, pass: Option<&str>) -> BTreeSet<Fingerprint> {
    files_with(dir, ".pem")
        .iter()
        .map(|p| fp_of_pem(p, pass))
        .collect()
}

/// Fingerprints of every `*.pub` in `dir`.
pub fn pub_fps(dir: &Path) -> BTreeSet<Fingerprint> {
    files_with(dir, ".pub")
        .iter()
        .map(|p| fp_of_pub(p))
        .collect()
}

/// Fingerprints listed in `dir/trust.toml`.
pub fn trust_fps(tdir: &Path) -> BTreeSet<Fingerprint> {
    meta_fps(tdir, TRUST_FILE)
}

/// Fingerprints listed in `dir/keys.toml`.
pub fn keys_fps(dir: &Path) -> BTreeSet<Fingerprint> {
    meta_fps(dir, KEYS_FILE)
}

fn meta_fps(dir: &Path, file: &str) -> BTreeSet<Fingerprint> {
    Metadata::load(dir, file)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .keys()
        .iter()
        .filter_map(|k| k.fingerprint.clone())
        .collect()
}

/// The metadata of a directory.
pub fn meta(dir: &Path, file: &str) -> Metadata {
    Metadata::load(dir, file).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Leftovers of an interrupted rotation or write: the journal, the staged
/// key, and `.pkgsign-*.tmp` temp files, in `dir` (not recursive).
pub fn leftovers(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n == pkgsign::rotate::JOURNAL
                || n == pkgsign::rotate::STAGED
                || (n.starts_with(".pkgsign-") && n.ends_with(".tmp"))
            {
                v.push(format!("{}/{n}", dir.display()));
            }
        }
    }
    v.sort();
    v
}

/// Copy a directory tree (files keep their permissions).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let perm = std::fs::metadata(from).unwrap().permissions();
    std::fs::set_permissions(to, perm).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let src = e.path();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A tiny deterministic-enough random source for delays (seeded from the OS).
pub struct Rng(u64);

impl Rng {
    /// Seeded from the OS (printed by the caller for reproduction).
    pub fn from_os() -> Rng {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        Rng(u64::from_le_bytes(b) | 1)
    }

    /// Seeded.
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Next value (xorshift64*).
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
