//! A SoftHSM2 token per test: a [`Token`] is a temporary directory holding
//! its own `softhsm2.conf` and token store, one token labelled
//! [`LABEL`] initialised with the user PIN [`PIN`], and a PIN file (mode
//! 0600). Every pkgsign and peer-tool run it makes gets `SOFTHSM2_CONF`
//! set explicitly and the `PKGSIGN_PKCS11_*` variables removed, so that
//! neither the caller's environment nor another test's token can leak in.
//!
//! SoftHSM2 (`softhsm2-util`, the module [`MODULE`]) and OpenSC's
//! `pkcs11-tool` must be installed: missing, the tests FAIL, never skip.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Env, Key, Run, args, capture, chmod, ps, run, sign_args, tool_cmd};

/// SoftHSM2's PKCS#11 module (Debian and Ubuntu's path).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The label of the token every [`Token`] holds.
pub const LABEL: &str = "release";
/// The token's user PIN: distinctive, so that a test can look for it in
/// output and logs without matching a digest or a fingerprint by chance.
pub const PIN: &str = "73194682";
/// The token's security officer PIN.
pub const SO_PIN: &str = "0000";
/// pkgsign's environment variables for tokens, removed from every run.
pub const TOKEN_ENV: &[&str] = &["PKGSIGN_PKCS11_MODULE", "PKGSIGN_PKCS11_PIN"];

/// One initialised SoftHSM2 token in its own directory.
pub struct Token {
    /// The test's directory: the token store is in `hsm/`, keys go to `keys/`.
    pub env: Env,
    /// `hsm/softhsm2.conf`.
    pub conf: PathBuf,
    /// `hsm/pin`: the user PIN, mode 0600.
    pub pin_file: PathBuf,
}

impl Default for Token {
    fn default() -> Self {
        Self::new()
    }
}

impl Token {
    /// A fresh directory with one token labelled [`LABEL`].
    #[track_caller]
    pub fn new() -> Token {
        assert!(
            Path::new(MODULE).is_file(),
            "{MODULE} is missing: a missing tool is a test FAILURE, never a skip; \
             install it (package softhsm2)"
        );
        let env = Env::new();
        let tokens = env.path("hsm/tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = env.write(
            "hsm/softhsm2.conf",
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        );
        let pin_file = env.write("hsm/pin", format!("{PIN}\n"));
        chmod(&pin_file, 0o600);
        let token = Token {
            env,
            conf,
            pin_file,
        };
        token.tool_ok(
            "softhsm2-util",
            [
                "--init-token",
                "--free",
                "--label",
                LABEL,
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ],
        );
        token
    }

    /// `dir/rel`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.env.path(rel)
    }

    /// Point `cmd` at this token only: `SOFTHSM2_CONF` set, pkgsign's token
    /// variables removed.
    pub fn scope<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for v in TOKEN_ENV {
            cmd.env_remove(v);
        }
        cmd.env("SOFTHSM2_CONF", &self.conf)
            .current_dir(self.env.dir.path())
    }

    /// `pkgsign ARGS` in the directory, scoped to this token (not run).
    pub fn cmd<I, S>(&self, argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = ps(argv);
        self.scope(&mut c);
        c
    }

    /// Run `pkgsign ARGS` scoped to this token; the contract is checked.
    #[track_caller]
    pub fn run<I, S>(&self, argv: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.cmd(argv))
    }

    /// Run a peer tool (`pkcs11-tool`, `softhsm2-util`, `openssl`) scoped to
    /// this token, whatever its exit code.
    #[track_caller]
    pub fn tool<I, S>(&self, prog: &str, argv: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = tool_cmd(self.env.dir.path(), prog, argv);
        self.scope(&mut c);
        capture(c, None, super::DEFAULT_TIMEOUT)
    }

    /// [`Token::tool`], requiring exit 0; returns stdout.
    #[track_caller]
    pub fn tool_ok<I, S>(&self, prog: &str, argv: I) -> Vec<u8>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.tool(prog, argv);
        assert_eq!(out.code, 0, "`{prog}` failed: {out:#?}");
        out.stdout
    }

    /// `--pkcs11-module MODULE --pin-file PIN`.
    pub fn access(&self) -> Vec<OsString> {
        let mut v = args(["--pkcs11-module", MODULE, "--pin-file"]);
        v.push(self.pin_file.clone().into());
        v
    }

    /// The URI of the key labelled `object` on the token.
    pub fn uri(object: &str) -> String {
        format!("pkcs11:token={LABEL};object={object}")
    }

    /// The argv of `keygen --output-dir keys --name NAME --pkcs11 URI` for
    /// `alg` (module and PIN not included).
    pub fn keygen_args(name: &str, alg: super::Alg) -> Vec<OsString> {
        let mut v = args(["keygen", "--output-dir", "keys", "--name", name, "--pkcs11"]);
        v.push(Self::uri(name).into());
        if alg == super::Alg::Rsa {
            v.extend(args(["--algorithm", "rsa", "--bits", "2048"]));
        }
        v
    }

    /// `keygen --pkcs11` of a key labelled `name` into `keys/`: a [`Key`]
    /// whose `private` is the key's URI (what `--private-key` takes).
    #[track_caller]
    pub fn keygen(&self, name: &str, alg: super::Alg) -> Key {
        let mut argv = Self::keygen_args(name, alg);
        argv.extend(self.access());
        let run = self.run(argv).ok();
        let fingerprint = run.out().trim().to_string();
        assert!(
            fingerprint.starts_with("SHA256:") && fingerprint.len() == 7 + 43,
            "keygen --pkcs11 prints the fingerprint on stdout: {run:#?}"
        );
        Key {
            private: PathBuf::from(Self::uri(name)),
            public: self.path(format!("keys/{name}.pub")),
            fingerprint,
        }
    }

    /// `sign-package --package PKG --private-key K... EXTRA...` with the
    /// token's module and PIN file, whatever its outcome.
    #[track_caller]
    pub fn sign(&self, package: &Path, keys: &[&Key], extra: &[&str]) -> Run {
        let privates: Vec<&Path> = keys.iter().map(|k| k.private.as_path()).collect();
        let mut argv = sign_args(package, &privates, extra);
        argv.extend(self.access());
        self.run(argv)
    }

    /// What `pkcs11-tool --list-objects` shows of the token, logged in.
    #[track_caller]
    pub fn list_objects(&self) -> String {
        let out = self.tool_ok(
            "pkcs11-tool",
            [
                "--module",
                MODULE,
                "--token-label",
                LABEL,
                "--login",
                "--pin",
                PIN,
                "--list-objects",
            ],
        );
        String::from_utf8_lossy(&out).into_owned()
    }
}
