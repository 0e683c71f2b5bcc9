//! The one configuration file: TOML, read by `pkgsign serve` and by every
//! subcommand given `--config FILE` (or `PKGSIGN_CONFIG`). Three sections:
//! `[signing]` (the coordinator's keys and rotation), `[service]` (the HTTP
//! API), `[worker]` (verifying and applying updates), plus a top-level
//! `audit_log`. Command-line flags override the file; the file overrides the
//! defaults.
//!
//! The file is parsed strictly: an unknown key, a value of the wrong type or
//! a size or duration that does not parse is an error naming the key and its
//! line ([`crate::error::ParseError::Config`]). Relative paths are read from
//! the directory the file is in, so a file works the same from any working
//! directory.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, ParseError, Result};
use crate::fsutil;

/// Environment variable naming the configuration file when `--config` is absent.
pub const ENV: &str = "PKGSIGN_CONFIG";

/// A configuration file is small: more than this is refused unread.
pub const MAX_SIZE: u64 = 1024 * 1024;

/// The default address of `pkgsign serve`: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// A whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The audit log every subcommand appends to (`--audit-log`).
    pub audit_log: Option<PathBuf>,
    /// The coordinator's signing keys and their rotation.
    #[serde(default)]
    pub signing: Signing,
    /// The HTTP service.
    #[serde(default)]
    pub service: Service,
    /// The worker: what it trusts and where it keeps its state.
    #[serde(default)]
    pub worker: Worker,
    /// Where the file was read from (for messages), set by [`Config::load`].
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[signing]`: the coordinator's keys (`keygen`, `sign-package`, `key-rotate`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// The signing-keys directory (`--keys-dir`, `keygen --output-dir`).
    pub keys_dir: Option<PathBuf>,
    /// The key's name in it (`--name`).
    pub key_name: Option<String>,
    /// `ed25519` or `rsa` (`--algorithm`).
    pub algorithm: Option<String>,
    /// RSA modulus size in bits (`--bits`).
    pub key_size: Option<u32>,
    /// How long a rotated-out key stays trusted (`--grace-period`).
    pub grace_period: Option<Duration>,
    /// The trusted-keys directory `key-rotate` keeps in step (`--trusted-keys`).
    pub trusted_keys: Option<PathBuf>,
    /// Where `key-rotate` publishes key statements (`--publish-dir`).
    pub publish_dir: Option<PathBuf>,
    /// Where `key-rotate` writes `pkgsign.prom` for node_exporter
    /// (`--metrics-textfile`).
    pub metrics_textfile: Option<PathBuf>,
    /// The PKCS#11 module of token keys (`--pkcs11-module`).
    pub pkcs11_module: Option<PathBuf>,
}

/// `[service]`: `pkgsign serve`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The address to listen on (`--listen`); default `127.0.0.1:8443`.
    pub listen: Option<SocketAddr>,
    /// Allow a non-loopback address without TLS (`--insecure-plain-http`).
    #[serde(default)]
    pub insecure_plain_http: bool,
    /// TLS; absent means plain HTTP (loopback only, unless allowed above).
    pub tls: Option<Tls>,
    /// The bearer tokens file: `NAME ROLE SHA256HEX` per line.
    pub tokens_file: Option<PathBuf>,
    /// The trusted-keys directory every verification is made against.
    pub trusted_keys: Option<PathBuf>,
    /// Directories `verify-signature` may read named files from.
    #[serde(default)]
    pub allowed_dirs: Vec<PathBuf>,
    /// Directories `keys/generate` may write a key pair into.
    #[serde(default)]
    pub key_dirs: Vec<PathBuf>,
    /// Where accepted uploads are kept: `STORE/NAME/VERSION/`.
    pub release_store: Option<PathBuf>,
    /// The service's audit log (overrides the top-level `audit_log`).
    pub audit_log: Option<PathBuf>,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
}

/// `[service.tls]`: the server's certificate, and client certificates if
/// `client_ca` is set (mutual TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (mode 0600).
    pub key: PathBuf,
    /// PEM CA certificates; when set, every client must present a
    /// certificate they issued.
    pub client_ca: Option<PathBuf>,
}

/// `[service.limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest upload to `/api/v1/update/signed`.
    pub max_upload_size: Size,
    /// Largest package sent as the body of `verify-signature`.
    pub max_verify_size: Size,
    /// Largest JSON request body.
    pub max_json_size: Size,
    /// A whole request, body included, must end within this.
    pub request_timeout: Duration,
    /// The request line and headers must arrive within this.
    pub header_timeout: Duration,
    /// Requests handled at once; more wait.
    pub max_concurrent_requests: usize,
    /// Uploads per minute per token on the update endpoints.
    pub uploads_per_minute: u32,
    /// Uploads a token may make at once above that rate.
    pub upload_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_size: Size(16 << 30),
            max_verify_size: Size(16 << 30),
            max_json_size: Size(64 << 10),
            request_timeout: Duration(300),
            header_timeout: Duration(10),
            max_concurrent_requests: 256,
            uploads_per_minute: 60,
            upload_burst: 10,
        }
    }
}

/// `[worker]`: `verify-package`, `verify-manifest`, `apply`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// The trusted-keys directory (`--trusted-keys`).
    pub trusted_keys: Option<PathBuf>,
    /// Single trusted public keys (`--public-key`).
    #[serde(default)]
    pub public_keys: Vec<PathBuf>,
    /// `apply`'s state directory (`--state-dir`).
    pub state_dir: Option<PathBuf>,
    /// The digest cache (`--cache`).
    pub cache: Option<PathBuf>,
    /// The package name a worker requires (`--name`).
    pub name: Option<String>,
    /// Where `apply --install-dir` extracts releases.
    pub install_dir: Option<PathBuf>,
    /// The `worker_id` of every audit event (`PKGSIGN_WORKER_ID` wins;
    /// default: the host name).
    pub worker_id: Option<String>,
}

/// A size in bytes, written `512M`, `8G` or a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(0) => Err(serde::de::Error::custom("a size must be more than 0")),
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => crate::text::parse_size(&s)
                .map(Size)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A duration in seconds, written `30d`, `12h`, `90s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub u64);

impl Duration {
    /// As a std duration.
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::text::parse_duration(&s)
            .map(Duration)
            .map_err(serde::de::Error::custom)
    }
}

impl Config {
    /// Read and check the file at `path`. Relative paths in it are made
    /// relative to its directory.
    pub fn load(path: &Path) -> Result<Config> {
        let bytes = fsutil::read_bounded(path, MAX_SIZE, "configuration file")?;
        let text = std::str::from_utf8(&bytes).map_err(|_| ParseError::Config {
            path: path.to_path_buf(),
            line: None,
            reason: "not UTF-8 text".into(),
        })?;
        let mut config = Config::parse(path, text)?;
        config.path = path.to_path_buf();
        config.resolve(&fsutil::parent_dir(path));
        config.check()?;
        Ok(config)
    }

    /// The file named by `arg`, else by `PKGSIGN_CONFIG`, else none.
    pub fn from_arg_or_env(arg: Option<&Path>) -> Result<Option<Config>> {
        match arg.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        }) {
            Some(p) => Config::load(&p).map(Some),
            None => Ok(None),
        }
    }

    /// Parse `text` (read from `path`), with no path resolution.
    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        toml::from_str::<Config>(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| 1 + text.get(..s.start).unwrap_or("").matches('\n').count());
            Error::from(ParseError::Config {
                path: path.to_path_buf(),
                line,
                reason: e.message().trim().to_string(),
            })
        })
    }

    /// What a valid TOML file may still get wrong.
    fn check(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::from(ParseError::Config {
                path: self.path.clone(),
                line: None,
                reason,
            }))
        };
        if let Some(a) = &self.signing.algorithm
            && a != "ed25519"
            && a != "rsa"
        {
            return bad(format!(
                "signing.algorithm = {a:?}: write \"ed25519\" or \"rsa\""
            ));
        }
        if let Some(n) = self.signing.key_size
            && ![2048, 3072, 4096].contains(&n)
        {
            return bad(format!(
                "signing.key_size = {n}: pkgsign makes RSA keys of 2048, 3072 or 4096 bits"
            ));
        }
        let l = &self.service.limits;
        if l.max_concurrent_requests == 0 {
            return bad("service.limits.max_concurrent_requests must be at least 1".into());
        }
        if l.uploads_per_minute == 0 || l.upload_burst == 0 {
            return bad(
                "service.limits.uploads_per_minute and upload_burst must be at least 1".into(),
            );
        }
        if l.request_timeout.0 == 0 || l.header_timeout.0 == 0 {
            return bad("service.limits timeouts must be at least 1s".into());
        }
        if let Some(name) = &self.worker.name {
            crate::sign::identity::check_name(name)
                .or_else(|e| bad(format!("worker.name: {e}")))?;
        }
        if let Some(id) = &self.worker.worker_id
            && (id.trim().is_empty() || id.len() > 255 || id.chars().any(char::is_control))
        {
            return bad(
                "worker.worker_id must be 1 to 255 bytes of printable text (it names this machine in the audit log)".into(),
            );
        }
        Ok(())
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let fix_opt = |p: &mut Option<PathBuf>| {
            if let Some(p) = p {
                fix(p)
            }
        };
        fix_opt(&mut self.audit_log);
        let s = &mut self.signing;
        fix_opt(&mut s.keys_dir);
        fix_opt(&mut s.trusted_keys);
        fix_opt(&mut s.publish_dir);
        fix_opt(&mut s.metrics_textfile);
        fix_opt(&mut s.pkcs11_module);
        let v = &mut self.service;
        if let Some(t) = &mut v.tls {
            fix(&mut t.cert);
            fix(&mut t.key);
            fix_opt(&mut t.client_ca);
        }
        fix_opt(&mut v.tokens_file);
        fix_opt(&mut v.trusted_keys);
        v.allowed_dirs.iter_mut().for_each(fix);
        v.key_dirs.iter_mut().for_each(fix);
        fix_opt(&mut v.release_store);
        fix_opt(&mut v.audit_log);
        let w = &mut self.worker;
        fix_opt(&mut w.trusted_keys);
        w.public_keys.iter_mut().for_each(fix);
        fix_opt(&mut w.state_dir);
        fix_opt(&mut w.cache);
        fix_opt(&mut w.install_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("t.toml"), text)
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let e = parse("[signing]\nkeys_dir = \"k\"\nkey_sise = 2048\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key_sise"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn an_unknown_section_is_refused() {
        let e = parse("[signin]\n").unwrap_err().to_string();
        assert!(e.contains("signin") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn sizes_and_durations_parse_or_are_refused_with_their_line() {
        let c = parse("[service.limits]\nmax_upload_size = \"512M\"\nrequest_timeout = \"2m\"\n")
            .unwrap();
        assert_eq!(c.service.limits.max_upload_size, Size(512 << 20));
        assert_eq!(c.service.limits.request_timeout, Duration(120));
        let e = parse("[service.limits]\n\nmax_upload_size = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn relative_paths_are_read_from_the_files_directory() {
        let mut c =
            parse("[worker]\ntrusted_keys = \"trusted\"\nstate_dir = \"/var/lib/x\"\n").unwrap();
        c.resolve(Path::new("/etc/pkgsign"));
        assert_eq!(
            c.worker.trusted_keys.as_deref(),
            Some(Path::new("/etc/pkgsign/trusted"))
        );
        assert_eq!(c.worker.state_dir.as_deref(), Some(Path::new("/var/lib/x")));
    }

    #[test]
    fn values_that_parse_but_make_no_sense_are_refused() {
        let mut c = parse("[signing]\nalgorithm = \"dsa\"\n").unwrap();
        assert!(
            c.check()
                .unwrap_err()
                .to_string()
                .contains("signing.algorithm")
        );
        c = parse("[service.limits]\nmax_concurrent_requests = 0\n").unwrap();
        assert!(c.check().is_err());
        // keygen and key-rotate make only these sizes: a file asking for
        // another is refused by `config check`, not by the first keygen.
        c = parse("[signing]\nkey_size = 8192\n").unwrap();
        assert!(c.check().unwrap_err().to_string().contains("key_size"));
        c = parse("[signing]\nkey_size = 4096\n").unwrap();
        assert!(c.check().is_ok());
    }
}
