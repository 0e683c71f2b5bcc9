//! Helpers of the rotation, trust, crash and audit tests: run pkgsign under
//! `faketime`, and look at a signing-keys directory (`keys/`) and a
//! trusted-keys directory (`trusted/`) of an [`Env`] the way an operator
//! would.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use pkgsign::keys::{Fingerprint, KeySource, encoding};
use pkgsign::trust::meta::{KEYS_FILE, Metadata, TRUST_FILE};
use serde_json::Value;

use super::{Env, bin, hermetic, ps, run, sign_args};

/// One day in seconds.
pub const DAY: u64 = 86_400;
/// The key name key-rotate uses by default.
pub const NAME: &str = "signing-key";

/// `faketime 'T' pkgsign ARGS`: pkgsign sees `at` (seconds since the epoch)
/// as the current time; its clock keeps running from there. A missing
/// `faketime` fails the test when the command is run.
pub fn ps_at<I, S>(at: u64, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new("faketime");
    hermetic(&mut c).arg(faketime_arg(at)).arg(bin()).args(args);
    c
}

/// `2027-01-30T00:00:00Z` -> `2027-01-30 00:00:00` (read by faketime with TZ=UTC).
pub fn faketime_arg(at: u64) -> String {
    rfc(at).replace('T', " ").trim_end_matches('Z').to_string()
}

/// RFC 3339 form, as pkgsign prints times.
pub fn rfc(t: u64) -> String {
    pkgsign::text::format_time(t)
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

impl Env {
    /// The signing-keys directory.
    pub fn keys(&self) -> PathBuf {
        self.path("keys")
    }

    /// The trusted-keys directory.
    pub fn trusted(&self) -> PathBuf {
        self.path("trusted")
    }

    /// The current private key, `keys/signing-key.pem`.
    pub fn current(&self) -> PathBuf {
        self.keys().join(format!("{NAME}.pem"))
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
pub fn sign_key_args(package: &Path, key: &Path, output: Option<&Path>) -> Vec<OsString> {
    let mut v = sign_args(package, &[key], &["--json"]);
    if let Some(o) = output {
        v.push("--output".into());
        v.push(o.into());
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

/// A key made by `pkgsign keygen` under `keys-by-hand/`, with its
/// fingerprint as a [`Fingerprint`] (not [`super::Key`], whose fingerprint
/// is the CLI's text).
pub struct HandKey {
    pub pem: PathBuf,
    pub public: PathBuf,
    pub fp: Fingerprint,
}

/// `pkgsign keygen` of an Ed25519 key `name` under `keys-by-hand/`; checks
/// that the fingerprint pkgsign printed is the key's.
pub fn hand_keygen(env: &Env, name: &str) -> HandKey {
    let k = super::keygen(&env.path("keys-by-hand"), name, super::Alg::Ed25519);
    let fp = fp_of_pem(&k.private, None);
    assert!(k.fingerprint.contains(fp.as_str()), "{k:?}");
    HandKey {
        pem: k.private,
        public: k.public,
        fp,
    }
}

/// The fingerprint of a public key file.
pub fn fp_of_pub(path: &Path) -> Fingerprint {
    encoding::load_public_key(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .fingerprint()
}

/// Files in `dir` whose name ends with `ext`, sorted (none when `dir` does
/// not exist; any other error fails the test).
pub fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| {
                e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                    .path()
            })
            .filter(|p| p.to_string_lossy().ends_with(ext))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
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
    meta(dir, file)
        .keys()
        .iter()
        .filter_map(|k| k.fingerprint.clone())
        .collect()
}

/// The metadata of a directory.
pub fn meta(dir: &Path, file: &str) -> Metadata {
    Metadata::load(dir, file).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
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

/// Every file of `dirs` (recursively), with its contents: compare two to
/// show that a refused command changed nothing.
pub fn tree(dirs: &[PathBuf]) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(d: &Path, m: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, m);
            } else {
                m.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    let mut m = BTreeMap::new();
    for d in dirs {
        walk(d, &mut m);
    }
    m
}
