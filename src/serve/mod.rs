//! `pkgsign serve`: the coordinator's HTTP API over the library's one
//! verifying road (`verify::verify_parsed`, `verify::staged`), its key
//! generation and the worker's anti-rollback state. It never goes through
//! the command line.
//!
//! - Plain HTTP on loopback only (another address needs TLS, or the
//!   operator's explicit `insecure_plain_http`); TLS through rustls, with
//!   optional client certificates (mutual TLS).
//! - Bearer tokens with one role each ([`auth`]), compared in constant time;
//!   a rate limit per token on uploads; body limits per route; a timeout on
//!   the request head, on each body chunk and on the whole request; a cap on
//!   requests served at once; graceful shutdown (requests in flight finish).
//! - Every refusal is audited; a refusal that cannot be audited is still a
//!   refusal, and an action that cannot be audited is not taken.
#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod paths;
pub mod reply;
pub mod request;
pub mod store;

mod api;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::audit::AuditLog;
use crate::config::{Config, Limits};
use crate::error::{Error, ParseError, Result};
use crate::metrics::Metrics;
use crate::trust::TrustStore;

/// What `serve` runs with: the configuration file's `[service]` (and
/// `[signing]`), with the command line's overrides applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Allow plain HTTP on an address other than loopback.
    pub insecure_plain_http: bool,
    /// TLS certificate chain, key and optional client CA.
    pub tls: Option<crate::config::Tls>,
    /// The tokens file.
    pub tokens_file: PathBuf,
    /// The trusted-keys directory.
    pub trusted_keys: PathBuf,
    /// Directories `verify-signature` may read.
    pub allowed_dirs: Vec<PathBuf>,
    /// Directories `keys/generate` may write.
    pub key_dirs: Vec<PathBuf>,
    /// The release store, if uploads are accepted.
    pub release_store: Option<PathBuf>,
    /// The audit log.
    pub audit_log: Option<PathBuf>,
    /// `[worker] worker_id`, the `worker_id` of audit events.
    pub worker_id: Option<String>,
    /// Limits.
    pub limits: Limits,
    /// The coordinator's signing-keys directory, for the key-age gauges.
    pub signing_keys_dir: Option<PathBuf>,
    /// Default algorithm of generated keys (`ed25519` or `rsa`).
    pub key_algorithm: Option<String>,
    /// Default RSA key size.
    pub key_size: Option<u32>,
    /// Default name of generated keys.
    pub key_name: Option<String>,
}

impl Settings {
    /// The settings a configuration file gives (`listen` defaults to
    /// loopback port 8443). The tokens file and the trusted-keys directory
    /// are required.
    pub fn from_config(c: &Config) -> Result<Settings> {
        let missing = |key: &str| {
            Error::from(ParseError::Config {
                path: c.path.clone(),
                line: None,
                reason: format!("{key} is not set; `pkgsign serve` needs it"),
            })
        };
        let s = &c.service;
        let default_listen: SocketAddr =
            crate::config::DEFAULT_LISTEN
                .parse()
                .map_err(|_| Error::Crypto {
                    what: "starting the service",
                    reason: "the default address does not parse".into(),
                })?;
        Ok(Settings {
            listen: s.listen.unwrap_or(default_listen),
            insecure_plain_http: s.insecure_plain_http,
            tls: s.tls.clone(),
            tokens_file: s
                .tokens_file
                .clone()
                .ok_or_else(|| missing("service.tokens_file"))?,
            trusted_keys: s
                .trusted_keys
                .clone()
                .or_else(|| c.worker.trusted_keys.clone())
                .ok_or_else(|| missing("service.trusted_keys"))?,
            allowed_dirs: s.allowed_dirs.clone(),
            key_dirs: s.key_dirs.clone(),
            release_store: s.release_store.clone(),
            audit_log: s.audit_log.clone().or_else(|| c.audit_log.clone()),
            worker_id: c.worker.worker_id.clone(),
            limits: s.limits.clone(),
            signing_keys_dir: c.signing.keys_dir.clone(),
            key_algorithm: c.signing.algorithm.clone(),
            key_size: c.signing.key_size,
            key_name: c.signing.key_name.clone(),
        })
    }
}

/// The trusted keys, reloaded when the directory changes (a key added,
/// revoked, rotated), so that a revocation takes effect on the next request.
#[derive(Debug)]
struct TrustCache {
    dir: PathBuf,
    cached: Mutex<Option<(Vec<u128>, Arc<TrustStore>)>>,
}

impl TrustCache {
    /// Every file's identity and change time: a file replaced by rename
    /// (as pkgsign writes them) or edited in place changes this.
    fn stamp(&self) -> Result<Vec<u128>> {
        use std::os::unix::fs::MetadataExt;
        let of = |m: &std::fs::Metadata| {
            (u128::from(m.ino()) << 64)
                ^ ((m.ctime() as u128) << 32)
                ^ (m.ctime_nsec() as u128)
                ^ (u128::from(m.size()) << 96)
        };
        let meta = std::fs::metadata(&self.dir).map_err(|e| Error::io(&self.dir, "reading", e))?;
        let mut stamp = vec![of(&meta)];
        let rd = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "listing", e))?;
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(&self.dir, "listing", e))?;
            if let Ok(m) = entry.metadata()
                && m.is_file()
            {
                names.push((entry.file_name(), of(&m)));
            }
        }
        names.sort();
        stamp.extend(names.into_iter().map(|(_, s)| s));
        Ok(stamp)
    }

    fn get(&self) -> Result<Arc<TrustStore>> {
        let stamp = self.stamp()?;
        let mut guard = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, store)) = guard.as_ref()
            && *s == stamp
        {
            return Ok(store.clone());
        }
        let store = Arc::new(TrustStore::load_dir(&self.dir)?);
        *guard = Some((stamp, store.clone()));
        Ok(store)
    }
}

/// What every request handler shares.
struct App {
    settings: Settings,
    tokens: auth::Tokens,
    trust: TrustCache,
    audit: Option<AuditLog>,
    metrics: Metrics,
    limiter: governor::DefaultKeyedRateLimiter<String>,
    confined: paths::Confined,
    store: Option<store::Store>,
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Arc<App>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

fn config_error(path: &Path, reason: String) -> Error {
    ParseError::Config {
        path: path.to_path_buf(),
        line: None,
        reason,
    }
    .into()
}

fn tls_acceptor(tls: &crate::config::Tls) -> Result<tokio_rustls::TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| config_error(&tls.cert, format!("service.tls.cert: {e}")))?;
    if certs.is_empty() {
        return Err(config_error(
            &tls.cert,
            "service.tls.cert holds no PEM certificate".into(),
        ));
    }
    crate::fsutil::check_private_permissions(&tls.key)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| config_error(&tls.key, format!("service.tls.key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(&tls.cert, format!("TLS: {e}")))?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| config_error(ca, format!("service.tls.client_ca: {e}")))?
            {
                let c = c.map_err(|e| config_error(ca, format!("service.tls.client_ca: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| config_error(ca, format!("service.tls.client_ca: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| config_error(ca, format!("service.tls.client_ca: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| config_error(&tls.key, format!("service.tls: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Server {
    /// Check the settings, load tokens and trusted keys, open the audit
    /// log and the release store, and bind the address. Must be called
    /// inside a tokio runtime.
    pub async fn bind(settings: Settings) -> Result<Server> {
        if settings.tls.is_none()
            && !settings.listen.ip().is_loopback()
            && !settings.insecure_plain_http
        {
            return Err(Error::from(crate::error::Invalid::PlainHttpNotLoopback {
                addr: settings.listen.to_string(),
            }));
        }
        let tls = settings.tls.as_ref().map(tls_acceptor).transpose()?;
        let tokens = auth::Tokens::load(&settings.tokens_file)?;
        let trust = TrustCache {
            dir: settings.trusted_keys.clone(),
            cached: Mutex::new(None),
        };
        // Refuse to start on a trusted-keys directory that does not load.
        trust.get()?;
        let audit = settings
            .audit_log
            .as_deref()
            .map(|p| {
                AuditLog::open(p)
                    .map(|l| l.with_configured_worker_id(settings.worker_id.as_deref()))
            })
            .transpose()?;
        let store = settings
            .release_store
            .as_deref()
            .map(store::Store::open)
            .transpose()?;
        let confined = paths::Confined::new(&settings.allowed_dirs)?;
        let l = &settings.limits;
        let per_minute =
            std::num::NonZeroU32::new(l.uploads_per_minute).unwrap_or(std::num::NonZeroU32::MIN);
        let burst = std::num::NonZeroU32::new(l.upload_burst).unwrap_or(std::num::NonZeroU32::MIN);
        let limiter = governor::RateLimiter::keyed(
            governor::Quota::per_minute(per_minute).allow_burst(burst),
        );
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| Error::io(Path::new(&settings.listen.to_string()), "listening on", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(Path::new(&settings.listen.to_string()), "listening on", e))?;
        let app = Arc::new(App {
            tokens,
            trust,
            audit,
            metrics: Metrics::new(),
            limiter,
            confined,
            store,
            settings,
        });
        Ok(Server {
            listener,
            addr,
            tls,
            app,
        })
    }

    /// The address bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Serve until `shutdown` completes; then stop accepting, let the
    /// requests in flight finish (for at most the request timeout), and
    /// return.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let router = api::router(self.app.clone());
        let limits = self.app.settings.limits.clone();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(tokio::sync::Semaphore::new(
            limits.max_concurrent_requests.saturating_mul(4).max(64),
        ));
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    // Out of descriptors and the like: wait, do not spin.
                    Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
                },
                () = &mut shutdown => break,
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                // Too many open connections: drop this one at once.
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let service = hyper_util::service::TowerToHyperService::new(
                tower::ServiceBuilder::new()
                    .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                        let mut req = req.map(axum::body::Body::new);
                        req.extensions_mut().insert(api::Peer(peer));
                        req
                    })
                    .service(router.clone()),
            );
            let tls = self.tls.clone();
            let header_timeout = limits.header_timeout.std();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(128 * 1024);
                match tls {
                    Some(acceptor) => {
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await
                        else {
                            return;
                        };
                        let conn = http.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                    None => {
                        let conn = http.serve_connection(TokioIo::new(tcp), service);
                        let _ = watcher.watch(conn).await;
                    }
                }
            });
        }
        drop(self.listener);
        let drain = limits.request_timeout.std() + Duration::from_secs(1);
        let _ = tokio::time::timeout(drain, graceful.shutdown()).await;
        Ok(())
    }
}
