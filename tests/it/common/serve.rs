//! `pkgsign serve` as the tests run it: a [`Setup`] (a temporary directory
//! with a tokens file, a trusted-keys directory holding a test key, a
//! release store, an audit log, a configuration file, and optionally TLS
//! certificates made with `rcgen` and a small tmpfs as the store) and a
//! [`Server`] (the real binary on `127.0.0.1:0`, its port read from its
//! first stderr line, killed when dropped). Requests go through the real
//! `curl` ([`Server::curl`]), or a raw [`TcpStream`] where curl cannot do
//! what a test needs (a slow client, a disconnect).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;

use super::{Alg, Env, Key, args, capture, ps, tool, tool_cmd, wait_for};

/// The tokens the tokens file lists, by role (and a second upload token).
pub const VERIFY_TOKEN: &str = "tok-verify-8a1f0c2b7d";
/// Role `upload`.
pub const UPLOAD_TOKEN: &str = "tok-upload-3e9d41aa0c";
/// A second token with role `upload` (rate limits are per token).
pub const UPLOAD2_TOKEN: &str = "tok-upload2-77b2e5c1f0";
/// Role `admin`.
pub const ADMIN_TOKEN: &str = "tok-admin-c40f9e2d13";

/// The routes.
pub const VERIFY: &str = "/api/v1/security/verify-signature";
/// Signed uploads.
pub const UPLOAD: &str = "/api/v1/update/signed";
/// Key generation.
pub const GENERATE: &str = "/api/v1/security/keys/generate";

/// How long a server may take to print its first line, or to exit.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// TLS files made with rcgen: a CA, a server certificate it signed for
/// `127.0.0.1` and `localhost`, and (for mutual TLS) a client certificate
/// it signed, plus a client certificate of another CA.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM): curl's `--cacert`, the server's `client_ca`.
    pub ca: PathBuf,
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// The server's key (mode 0600).
    pub key: PathBuf,
    /// A client certificate and key the CA signed.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// A client certificate and key signed by another CA.
    pub stranger_cert: PathBuf,
    /// Its key.
    pub stranger_key: PathBuf,
    /// Whether the server requires client certificates (`client_ca`).
    pub mutual: bool,
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, format!("pkgsign test CA {name}"));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert, rcgen::Issuer::new(p, key))
}

fn leaf(
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
) -> (String, String) {
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().copied().unwrap_or("x"),
    );
    p.extended_key_usages = vec![usage];
    p.use_authority_key_identifier_extension = true;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl TlsFiles {
    /// Make every file in `dir`.
    pub fn make(dir: &Path, mutual: bool) -> TlsFiles {
        std::fs::create_dir_all(dir).unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            super::chmod(&p, mode);
            p
        };
        let (ca_cert, issuer) = ca("one");
        let (_, other) = ca("other");
        let (sc, sk) = leaf(
            &["127.0.0.1", "localhost"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        );
        let (cc, ck) = leaf(
            &["client.test"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            &issuer,
        );
        let (oc, ok) = leaf(
            &["stranger.test"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            &other,
        );
        TlsFiles {
            ca: write("ca.pem", &ca_cert.pem(), 0o644),
            cert: write("server.pem", &sc, 0o644),
            key: write("server.key", &sk, 0o600),
            client_cert: write("client.pem", &cc, 0o644),
            client_key: write("client.key", &ck, 0o600),
            stranger_cert: write("stranger.pem", &oc, 0o644),
            stranger_key: write("stranger.key", &ok, 0o600),
            mutual,
        }
    }
}

/// Everything a server runs on, before it starts.
pub struct Setup {
    /// The temporary directory.
    pub env: Env,
    /// The signing key the trusted-keys directory trusts.
    pub key: Key,
    /// `[service.limits]` values (TOML), by key.
    pub limits: BTreeMap<String, String>,
    /// TLS, if any.
    pub tls: Option<TlsFiles>,
    /// Extra command-line arguments for `serve`.
    pub flags: Vec<OsString>,
    /// A tmpfs mounted over the store, unmounted on drop.
    mounted: Option<PathBuf>,
}

impl Default for Setup {
    fn default() -> Self {
        Self::new()
    }
}

/// `NAME ROLE SHA256HEX`.
fn token_line(name: &str, role: &str, token: &str) -> String {
    format!(
        "{name} {role} {}\n",
        hex::encode(sha2::Sha256::digest(token))
    )
}

impl Setup {
    /// Tokens, a trusted test key, the directories, short limits.
    pub fn new() -> Setup {
        let env = Env::new();
        let key = env.keygen("signer", Alg::Ed25519);
        for d in ["trusted", "allowed", "keydir"] {
            std::fs::create_dir(env.path(d)).unwrap();
        }
        env.run(args([
            "trust".as_ref(),
            "add".as_ref(),
            env.path("trusted").as_os_str(),
            key.public.as_os_str(),
        ]))
        .ok();
        let tokens = env.write(
            "tokens",
            token_line("verifier", "verify", VERIFY_TOKEN)
                + &token_line("uploader", "upload", UPLOAD_TOKEN)
                + &token_line("uploader2", "upload", UPLOAD2_TOKEN)
                + &token_line("admin", "admin", ADMIN_TOKEN),
        );
        super::chmod(&tokens, 0o600);
        let limits = [
            ("header_timeout", "\"1s\""),
            ("request_timeout", "\"8s\""),
            ("max_upload_size", "\"8M\""),
            ("max_verify_size", "\"8M\""),
            ("max_json_size", "\"4K\""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Setup {
            env,
            key,
            limits,
            tls: None,
            flags: Vec::new(),
            mounted: None,
        }
    }

    /// Set `[service.limits] KEY = VALUE` (VALUE in TOML).
    pub fn limit(mut self, key: &str, toml_value: &str) -> Setup {
        self.limits.insert(key.into(), toml_value.into());
        self
    }

    /// Serve TLS with certificates made now (client certificates required
    /// when `mutual`).
    pub fn tls(mut self, mutual: bool) -> Setup {
        self.tls = Some(TlsFiles::make(&self.env.path("tls"), mutual));
        self
    }

    /// The release store.
    pub fn store(&self) -> PathBuf {
        self.env.path("store")
    }

    /// The trusted-keys directory.
    pub fn trusted(&self) -> PathBuf {
        self.env.path("trusted")
    }

    /// The directory `verify-signature` may read.
    pub fn allowed(&self) -> PathBuf {
        self.env.path("allowed")
    }

    /// The directory `keys/generate` may write.
    pub fn keydir(&self) -> PathBuf {
        self.env.path("keydir")
    }

    /// The audit log.
    pub fn audit_log(&self) -> PathBuf {
        self.env.path("audit.log")
    }

    /// Mount a tmpfs of `size` (as `mount -o size=`) as the release store.
    /// Needs root: the test FAILS otherwise, never skips.
    pub fn mount_store_tmpfs(&mut self, size: &str) {
        let id = tool(Path::new("/"), "id", ["-u"]);
        assert_eq!(
            id.out().trim(),
            "0",
            "this test needs root (it mounts a small tmpfs as the release store to fill the disk); \
             run it as root, as CI does: it is a FAILURE here, never a skip"
        );
        let store = self.store();
        std::fs::create_dir_all(&store).unwrap();
        let opts = format!("size={size},mode=0700");
        let r = tool(
            Path::new("/"),
            "mount",
            args([
                "-t".as_ref(),
                "tmpfs".as_ref(),
                "-o".as_ref(),
                opts.as_ref(),
                "tmpfs".as_ref(),
                store.as_os_str(),
            ]),
        );
        assert_eq!(r.code, 0, "mounting a tmpfs needs root: {r:#?}");
        self.mounted = Some(store);
    }

    /// A package `NAME-VERSION.bin` of `data` signed with the trusted key
    /// for NAME VERSION (a v2 signature); returns the package and `.sig`.
    pub fn release(&self, name: &str, version: &str, data: &[u8]) -> (PathBuf, PathBuf) {
        self.release_in(Path::new("."), name, version, data)
    }

    /// [`Setup::release`] in a subdirectory (such as `allowed`).
    pub fn release_in(
        &self,
        sub: &Path,
        name: &str,
        version: &str,
        data: &[u8],
    ) -> (PathBuf, PathBuf) {
        let pkg = self
            .env
            .write(sub.join(format!("{name}-{version}.bin")), data);
        self.env
            .sign(
                &pkg,
                &[&self.key],
                &["--name", name, "--release-version", version],
            )
            .ok();
        let sig = sig_of(&pkg);
        assert!(sig.is_file());
        (pkg, sig)
    }

    /// The configuration file.
    fn config(&self) -> PathBuf {
        let q = |p: PathBuf| format!("{:?}", p.to_str().expect("UTF-8 test paths"));
        let mut t = String::from("[service]\n");
        t += &format!("tokens_file = {}\n", q(self.env.path("tokens")));
        t += &format!("trusted_keys = {}\n", q(self.trusted()));
        t += &format!("allowed_dirs = [{}]\n", q(self.allowed()));
        t += &format!("key_dirs = [{}]\n", q(self.keydir()));
        t += &format!("release_store = {}\n", q(self.store()));
        t += &format!("audit_log = {}\n", q(self.audit_log()));
        if let Some(tls) = &self.tls {
            t += "[service.tls]\n";
            t += &format!(
                "cert = {}\nkey = {}\n",
                q(tls.cert.clone()),
                q(tls.key.clone())
            );
            if tls.mutual {
                t += &format!("client_ca = {}\n", q(tls.ca.clone()));
            }
        }
        t += "[service.limits]\n";
        for (k, v) in &self.limits {
            t += &format!("{k} = {v}\n");
        }
        self.env.write("pkgsign.toml", t)
    }

    /// Start `pkgsign serve --config FILE --listen 127.0.0.1:0 FLAGS...`.
    #[track_caller]
    pub fn start(self) -> Server {
        let config = self.config();
        let mut argv = args(["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
        argv.extend(args(["--listen", "127.0.0.1:0"]));
        argv.extend(self.flags.iter().cloned());
        Server::spawn(self, argv)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(dir) = self.mounted.take() {
            let r = tool(Path::new("/"), "umount", [&dir]);
            if r.code != 0 {
                let _ = tool(Path::new("/"), "umount", [OsString::from("-l"), dir.into()]);
            }
        }
    }
}

/// `FILE.sig`.
pub fn sig_of(pkg: &Path) -> PathBuf {
    let mut s = pkg.as_os_str().to_os_string();
    s.push(".sig");
    PathBuf::from(s)
}

/// Standard base64 of a file (the `X-Pkgsign-Signature` header).
pub fn b64_file(p: &Path) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).unwrap())
}

/// `n` bytes that depend on `seed`.
pub fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// An HTTP answer as curl got it.
pub struct Resp {
    /// The status (0: no HTTP answer at all; see `curl_exit`).
    pub status: u16,
    /// The headers of the final answer, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// curl's exit code.
    pub curl_exit: i32,
    /// curl's stderr.
    pub curl_err: String,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        f.debug_struct("Resp")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &&body[..body.len().min(2000)])
            .field("curl_exit", &self.curl_exit)
            .field("curl_err", &self.curl_err)
            .finish()
    }
}

impl Resp {
    /// The body as JSON (the test fails if it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self:?}"))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Assert an error answer: `status`, JSON `{"ok":false,"code":code,"error":...}`.
    #[track_caller]
    pub fn refused(&self, status: u16, code: &str) -> &Resp {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{self:?}"
        );
        let v = self.json();
        assert_eq!(v["ok"], Value::Bool(false), "{v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.len() > 10),
            "an error says what happened: {v}"
        );
        self
    }

    /// The JSON `code`, or "" when the body is not JSON with one.
    pub fn code(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Assert `status` and return self.
    #[track_caller]
    pub fn status(&self, status: u16) -> &Resp {
        assert_eq!(self.status, status, "{self:?}");
        self
    }
}

/// A running `pkgsign serve`.
pub struct Server {
    /// What it runs on.
    pub setup: Setup,
    child: Option<Child>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub url: String,
    /// Its stderr after the first line.
    stderr: Arc<Mutex<String>>,
    /// Its first stderr line.
    pub first_line: String,
    /// Exit status, once it exited.
    exited: Option<ExitStatus>,
    calls: AtomicUsize,
}

impl Server {
    /// Spawn pkgsign with `argv` and wait for `listening on URL`.
    #[track_caller]
    pub fn spawn(setup: Setup, argv: Vec<OsString>) -> Server {
        let mut cmd = ps(argv);
        cmd.current_dir(setup.env.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting pkgsign serve");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = Arc::new(Mutex::new(String::new()));
        let rest = stderr.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(err);
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let _ = tx.send(first);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                rest.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let first = match rx.recv_timeout(START_TIMEOUT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("pkgsign serve printed nothing within {START_TIMEOUT:?}");
            }
        };
        let url = first
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "the first stderr line of serve is `listening on URL`, not {first:?} ({status:?}); rest: {}",
                    stderr.lock().unwrap()
                )
            })
            .to_string();
        let hostport = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .unwrap_or_else(|| panic!("{url}: neither http:// nor https://"));
        let addr: SocketAddr = hostport
            .parse()
            .unwrap_or_else(|e| panic!("{hostport}: {e}"));
        assert_ne!(addr.port(), 0, "the real port is printed, not 0");
        // Curl and the raw socket go to loopback even when it listens on 0.0.0.0.
        let local = SocketAddr::from(([127, 0, 0, 1], addr.port()));
        let scheme = if url.starts_with("https") {
            "https"
        } else {
            "http"
        };
        Server {
            setup,
            child: Some(child),
            addr: local,
            url: format!("{scheme}://{local}"),
            stderr,
            first_line: first.trim_end().to_string(),
            exited: None,
            calls: AtomicUsize::new(0),
        }
    }

    /// Its stderr after the first line, so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Send SIGTERM.
    pub fn sigterm(&self) {
        let r = tool(
            Path::new("/"),
            "kill",
            ["-TERM".to_string(), self.pid().to_string()],
        );
        assert_eq!(r.code, 0, "{r:#?}");
    }

    /// Wait (up to `timeout`) for the server to exit; its status.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let child = self.child.as_mut().expect("running");
        let mut status = None;
        wait_for("pkgsign serve to exit", timeout, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        let s = status.unwrap();
        self.exited = Some(s);
        s
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.exited.is_none()
            && self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// The curl arguments every request takes: TLS trust and the client
    /// certificate, a time limit.
    fn curl_base(&self) -> Vec<OsString> {
        let mut a = args(["-sS", "--max-time", "20"]);
        if let Some(tls) = &self.setup.tls {
            a.push("--cacert".into());
            a.push(tls.ca.clone().into());
            if tls.mutual {
                a.extend(args(["--cert".as_ref(), tls.client_cert.as_os_str()]));
                a.extend(args(["--key".as_ref(), tls.client_key.as_os_str()]));
            }
        }
        a
    }

    /// `curl BASE ARGS URL+PATH` (ARGS: method, headers, body...), with the
    /// TLS arguments unless `bare` (then only ARGS, for the TLS tests).
    #[track_caller]
    pub fn curl_with(&self, path: &str, extra: Vec<OsString>, bare: bool) -> Resp {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let dir = self.setup.env.path("curl");
        std::fs::create_dir_all(&dir).unwrap();
        let head = dir.join(format!("{n}.head"));
        let body = dir.join(format!("{n}.body"));
        let mut a = if bare {
            args(["-sS", "--max-time", "20"])
        } else {
            self.curl_base()
        };
        a.extend(args(["-D".as_ref(), head.as_os_str()]));
        a.extend(args(["-o".as_ref(), body.as_os_str()]));
        a.extend(args(["-w", "%{http_code}"]));
        a.extend(extra);
        a.push(format!("{}{path}", self.url).into());
        let r = capture(
            tool_cmd(self.setup.env.dir.path(), "curl", a),
            None,
            Duration::from_secs(30),
        );
        let status: u16 = r.out().trim().parse().unwrap_or(0);
        let head_text = std::fs::read_to_string(&head).unwrap_or_default();
        // The last block: a `100 Continue` may come first.
        let last = head_text
            .split("\r\n\r\n")
            .filter(|b| b.starts_with("HTTP/"))
            .last()
            .unwrap_or("");
        let headers = last
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: std::fs::read(&body).unwrap_or_default(),
            curl_exit: r.code,
            curl_err: r.stderr,
        }
    }

    /// `curl ARGS URL+PATH` with the TLS arguments.
    #[track_caller]
    pub fn curl(&self, path: &str, extra: Vec<OsString>) -> Resp {
        self.curl_with(path, extra, false)
    }

    /// GET `path` with `token`.
    #[track_caller]
    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.curl(path, auth(token))
    }

    /// POST a JSON text to `path` with `token`.
    #[track_caller]
    pub fn post_json(&self, path: &str, token: Option<&str>, json: &str) -> Resp {
        let mut a = auth(token);
        a.extend(args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            json,
        ]));
        self.curl(path, a)
    }

    /// POST `package` to the upload route with its `.sig` in the header.
    #[track_caller]
    pub fn upload(&self, token: Option<&str>, package: &Path, sig: &Path) -> Resp {
        self.upload_with(token, package, sig, &[])
    }

    /// [`Server::upload`] with extra headers (`Name: value`).
    #[track_caller]
    pub fn upload_with(
        &self,
        token: Option<&str>,
        package: &Path,
        sig: &Path,
        headers: &[&str],
    ) -> Resp {
        self.curl(UPLOAD, octet_args(token, package, sig, headers))
    }

    /// POST `package` as the body of verify-signature, its `.sig` in the header.
    #[track_caller]
    pub fn verify_body(&self, token: Option<&str>, package: &Path, sig: &Path) -> Resp {
        self.curl(VERIFY, octet_args(token, package, sig, &[]))
    }

    /// POST verify-signature naming files.
    #[track_caller]
    pub fn verify_paths(&self, token: Option<&str>, package: &Path, sig: Option<&Path>) -> Resp {
        let mut j = serde_json::json!({ "package_path": package });
        if let Some(s) = sig {
            j["signature_path"] = serde_json::json!(s);
        }
        self.post_json(VERIFY, token, &j.to_string())
    }

    /// The audit log's entries.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.setup.audit_log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    /// Audit entries of `event`.
    pub fn audit_of(&self, event: &str) -> Vec<Value> {
        self.audit()
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    /// A raw TCP connection to the server (plain HTTP only), with a read
    /// timeout.
    pub fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// The files under the store (relative, sorted; directories end in `/`).
    pub fn store_tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.setup.store(), Path::new(""), &mut out);
        out.sort();
        out
    }

    /// What the store keeps beyond its empty staging directory and its
    /// anti-rollback state: releases, and anything half-written.
    pub fn kept(&self) -> Vec<String> {
        let staging = self.staging();
        let mut v: Vec<String> = self
            .store_tree()
            .into_iter()
            .filter(|p| p != ".staging/" && !p.starts_with(".state/"))
            .collect();
        v.extend(staging.into_iter().map(|f| format!(".staging/{f}")));
        v
    }

    /// The files in the store's staging directory.
    pub fn staging(&self) -> Vec<String> {
        match std::fs::read_dir(self.setup.store().join(".staging")) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) => panic!("the store's .staging: {e}"),
        }
    }
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in rd {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            out.push(format!("{}/", r.display()));
            walk(root, &r, out);
        } else {
            out.push(r.display().to_string());
        }
    }
}

/// `-H "Authorization: Bearer TOKEN"` when there is a token.
pub fn auth(token: Option<&str>) -> Vec<OsString> {
    match token {
        Some(t) => args(["-H".to_string(), format!("Authorization: Bearer {t}")]),
        None => Vec::new(),
    }
}

/// curl arguments: POST `package` as application/octet-stream with its
/// signature in `X-Pkgsign-Signature`, and `headers`.
pub fn octet_args(
    token: Option<&str>,
    package: &Path,
    sig: &Path,
    headers: &[&str],
) -> Vec<OsString> {
    let mut a = auth(token);
    a.extend(args([
        "-H".to_string(),
        "Content-Type: application/octet-stream".into(),
        "-H".into(),
        format!("X-Pkgsign-Signature: {}", b64_file(sig)),
    ]));
    for h in headers {
        a.extend(args(["-H", h]));
    }
    let mut data = OsString::from("@");
    data.push(package);
    a.extend(args([OsString::from("--data-binary"), data]));
    a
}

/// The head of a raw upload request of `len` body bytes.
pub fn upload_head(token: &str, sig: &Path, len: usize) -> String {
    format!(
        "POST {UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nX-Pkgsign-Signature: {}\r\n\
         Content-Length: {len}\r\n\r\n",
        b64_file(sig)
    )
}

/// Read what the server sends until it closes (or the read times out);
/// the status of the first response line, if any, and the text.
pub fn read_answer(s: &mut TcpStream) -> (Option<u16>, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                // One whole response is enough (keep-alive would wait).
                if let Some(end) = find(&buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if len.is_some_and(|n| buf.len() >= end + 4 + n) {
                        break;
                    }
                }
            }
            // A signal delivered to the test process: read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    (status, text)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One read of `s`, again when a signal interrupts it.
pub fn read_some(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Write all of `data`, reporting failure instead of panicking (the server
/// may have closed the connection).
pub fn send(s: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    s.write_all(data)?;
    s.flush()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.exited.is_none() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}
