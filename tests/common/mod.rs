//! Shared helpers of the integration tests: run the real `pkgsign` binary in a
//! temporary directory, make keys and packages, and check outcomes against
//! the contract (exit codes 0/1/2, one `error:` line on stderr, one JSON
//! object on stdout with `--json`, never a panic).
//!
//! Each test file uses a different subset of these helpers.
#![allow(dead_code)] // Each test crate compiles this module and uses only part of it.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// Environment variables that would change pkgsign's behaviour; removed from
/// every run so that the caller's environment cannot leak into a test.
const SCRUBBED_ENV: &[&str] = &["PKGSIGN_PASSPHRASE", "PKGSIGN_AUDIT_LOG"];

/// The `pkgsign` binary built by cargo, with a scrubbed environment.
pub fn pkgsign() -> Command {
    let mut cmd = Command::cargo_bin("pkgsign").expect("the pkgsign binary is built by cargo");
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    /// The arguments, for messages.
    pub args: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Run `cmd` and check the invariants every run must keep: no panic
    /// (message or exit code 101), no death by a signal, exit code 0, 1 or 2.
    pub fn of(mut cmd: Command) -> Run {
        let args = format!("{cmd:?}");
        let out = cmd.output().expect("running pkgsign");
        let run = Run {
            args,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stderr.contains("panicked at") && !run.stdout.contains("panicked at"),
            "pkgsign panicked: {run:#?}"
        );
        assert!(
            [0, 1, 2].contains(&run.code),
            "exit code {} is not one of the contract's 0/1/2 (101 is a panic, -1 a signal): {run:#?}",
            run.code
        );
        run
    }

    /// Assert success (exit 0) and return self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    /// Assert exit code `code`, and that stderr is exactly one line starting
    /// with `error:`.
    #[track_caller]
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        self.assert_one_error_line();
        self
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
        let lines: Vec<&str> = self.stdout.lines().collect();
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
        let mut c = pkgsign();
        c.current_dir(self.dir.path());
        c
    }

    /// Run pkgsign with `args` in the directory.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.cmd();
        c.args(args);
        Run::of(c)
    }

    /// `pkgsign keygen --output-dir DIR --name NAME` for `alg`.
    pub fn keygen_in(&self, dir: &str, name: &str, alg: Alg) -> Key {
        let mut args = vec!["keygen", "--output-dir", dir, "--name", name];
        if alg == Alg::Rsa {
            args.extend(["--algorithm", "rsa", "--bits", "2048"]);
        }
        let run = self.run(&args).ok();
        let fingerprint = run.stdout.trim().to_string();
        assert!(
            fingerprint.starts_with("SHA256:") && fingerprint.len() == 7 + 43,
            "keygen prints the fingerprint on stdout: {run:#?}"
        );
        Key {
            private: self.path(dir).join(format!("{name}.pem")),
            public: self.path(dir).join(format!("{name}.pub")),
            fingerprint,
        }
    }

    /// A key pair in `DIR/keys`.
    pub fn keygen(&self, name: &str, alg: Alg) -> Key {
        self.keygen_in("keys", name, alg)
    }

    /// `sign-package --package PKG --private-key K... EXTRA...`.
    pub fn sign(&self, package: &Path, keys: &[&Key], extra: &[&str]) -> Run {
        let mut c = self.cmd();
        c.arg("sign-package").arg("--package").arg(package);
        for k in keys {
            c.arg("--private-key").arg(&k.private);
        }
        c.args(extra);
        Run::of(c)
    }

    /// `verify-package --package PKG --public-key P... EXTRA... --json`.
    pub fn verify(&self, package: &Path, keys: &[&Key], extra: &[&str]) -> Run {
        let mut c = self.cmd();
        c.arg("verify-package").arg("--package").arg(package);
        for k in keys {
            c.arg("--public-key").arg(&k.public);
        }
        c.args(extra).arg("--json");
        Run::of(c)
    }

    /// `verify-package --package PKG --signature SIG --public-key P... --json`.
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

/// Files pkgsign's atomic writes leave behind if they fail to clean up.
pub fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pkgsign-") || n.ends_with(".tmp"))
        .collect()
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

/// Run an external tool (openssl, ...) that must be installed; fails the
/// test, never skips it, when the tool is missing or fails.
#[track_caller]
pub fn tool(dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("`{program}` must be installed for this test: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Like [`tool`], but return whether it succeeded instead of asserting.
pub fn tool_status(dir: &Path, program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("`{program}` must be installed for this test: {e}"))
        .status
        .success()
}
