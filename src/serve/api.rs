//! The routes and their handlers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::audit::{AuditEvent, Event};
use crate::error::{Code, Error};
use crate::keys::{self, Fingerprint};
use crate::metrics::{UploadResult, VerifyResult};
use crate::sign::report::{Package, Report, Verified, seed_algorithm};
use crate::sign::sigfile::{self, SignatureFile};
use crate::verify::{self, Content, VerifyError, VerifyOptions};

use super::App;
use super::auth::Role;
use super::body::{self as reqbody, ChannelReader, PumpError};
use super::paths::PathError;
use super::reply::ApiError;
use super::request::{self, BodyKind, Claims, VerifyRequest};

/// The peer of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

const VERIFY: &str = "/api/v1/security/verify-signature";
const UPLOAD: &str = "/api/v1/update/signed";
const GENERATE: &str = "/api/v1/security/keys/generate";

pub(super) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(VERIFY, post(verify_signature))
        .route(UPLOAD, post(upload))
        .route("/api/v1/update/{name}/latest", get(latest))
        .route("/api/v1/update/{name}/{version}", get(release))
        .route(
            "/api/v1/update/{name}/{version}/signature",
            get(release_signature),
        )
        .route(GENERATE, post(generate_key))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            app.settings.limits.max_concurrent_requests,
        ))
        .with_state(app)
}

/// Time each request by its route template (never the raw path: the
/// metric's labels stay few), and end it at the request timeout.
async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let start = Instant::now();
    let resp = match tokio::time::timeout(app.settings.limits.request_timeout.std(), next.run(req))
        .await
    {
        Ok(r) => r,
        Err(_) => ApiError::new(
            Code::RequestTimeout,
            "the request took longer than the service's request timeout; nothing was kept",
        )
        .into_response(),
    };
    app.metrics.request(
        &route,
        method.as_str(),
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Who asked, for the audit log.
#[derive(Clone)]
struct Ctx {
    route: &'static str,
    request_id: String,
    peer: String,
    token: Option<String>,
}

impl Ctx {
    fn new(route: &'static str, headers: &HeaderMap, peer: Option<&Peer>) -> Ctx {
        Ctx {
            route,
            request_id: request::request_id(headers),
            peer: peer.map(|p| p.0.to_string()).unwrap_or_default(),
            token: None,
        }
    }

    fn event(&self, event: AuditEvent) -> Event {
        Event::new(event)
            .with("route", self.route)
            .with("request_id", self.request_id.clone())
            .with("peer", self.peer.clone())
            .with("token", self.token.clone())
    }
}

impl App {
    /// Append to the audit log; an entry that cannot be written stops the
    /// request (the action it records is not taken).
    fn audit(&self, event: Event) -> Result<(), ApiError> {
        match &self.audit {
            Some(log) => log.record(event).map_err(ApiError::from),
            None => Ok(()),
        }
    }

    /// Audit a refusal (once: one already logged is returned as it is).
    /// The refusal stands whether or not that works; if it cannot be
    /// logged, the answer says so.
    fn refuse(&self, ctx: &Ctx, event: AuditEvent, mut err: ApiError) -> ApiError {
        if err.audited {
            return err;
        }
        let logged = self.audit(
            ctx.event(event)
                .with("code", err.code)
                .with("reason", err.message.clone()),
        );
        let mut err = match logged {
            Ok(()) => {
                err.audited = true;
                err
            }
            Err(e) => e,
        };
        err.audited = true;
        err
    }

    /// The token's principal, if its role is one of `roles`.
    fn authorize(
        &self,
        ctx: &mut Ctx,
        headers: &HeaderMap,
        roles: &[Role],
    ) -> Result<super::auth::Principal, ApiError> {
        let denied_event = if ctx.route == UPLOAD {
            AuditEvent::UnauthorizedUpdateAttempt
        } else {
            AuditEvent::AccessDenied
        };
        let header = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let who = match self.tokens.authenticate(header) {
            Ok(p) => p.clone(),
            Err(why) => {
                self.metrics.unauthorized(ctx.route, why.as_str());
                let mut e = ApiError::new(
                    Code::Unauthorized,
                    "a valid bearer token is required: send `Authorization: Bearer TOKEN`",
                );
                e.status = StatusCode::UNAUTHORIZED;
                return Err(self.refuse(ctx, denied_event, e));
            }
        };
        ctx.token = Some(who.name.clone());
        if !roles.contains(&who.role) {
            self.metrics.unauthorized(ctx.route, "wrong_role");
            let allowed: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            let e = ApiError::new(
                Code::Forbidden,
                format!(
                    "token {:?} has role {}; this needs {}",
                    who.name,
                    who.role.as_str(),
                    allowed.join(" or ")
                ),
            );
            return Err(self.refuse(ctx, denied_event, e));
        }
        Ok(who)
    }

    fn verify_options(&self) -> VerifyOptions {
        VerifyOptions {
            now: SystemTime::now(),
            ..VerifyOptions::default()
        }
    }
}

/// A handler's answer: a response, or an error response.
type Answer = Result<Response, ApiError>;

fn answer(r: Answer) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The JSON of a verified package: the seed's fields, then everything
/// `verify-package --json` gives.
fn verified_json(verified: &Verified<Package>, at: u64) -> Value {
    let report = verified.report();
    let algorithm = verified
        .signers()
        .next()
        .map(|s| seed_algorithm(&s.algorithm))
        .unwrap_or("unknown");
    let mut obj = json!({
        "ok": true,
        "verified": true,
        "algorithm": algorithm,
        "timestamp": crate::text::format_time(at),
    });
    merge(&mut obj, report);
    obj
}

fn merge(obj: &mut Value, report: &Report) {
    if let (Value::Object(map), Ok(Value::Object(extra))) = (obj, serde_json::to_value(report)) {
        for (k, v) in extra {
            map.entry(k).or_insert(v);
        }
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        Code::FileTooLarge,
        format!("the body is larger than this route accepts ({limit} bytes)"),
    )
}

fn pump_error(e: PumpError, limit: u64) -> ApiError {
    match e {
        PumpError::TooLarge => too_large(limit),
        PumpError::Idle => ApiError::new(
            Code::RequestTimeout,
            "the client stopped sending the body; nothing was kept",
        ),
        PumpError::Broken => ApiError::new(
            Code::IoError,
            "the connection failed before the body ended; nothing was kept",
        ),
    }
}

/// Run `work` on a blocking thread over the request body, pumped to it.
async fn with_body<T: Send + 'static>(
    app: &App,
    body: Body,
    limit: u64,
    work: impl FnOnce(ChannelReader) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    // Two gathered pieces in flight per request (the pump gathers up to
    // 256 KiB each): 64 concurrent uploads stay well under 128 MiB.
    let (tx, rx) = mpsc::channel(2);
    let job = tokio::task::spawn_blocking(move || work(ChannelReader::new(rx)));
    let pumped = reqbody::pump(body, tx, limit, app.settings.limits.header_timeout.std()).await;
    let result = job
        .await
        .map_err(|e| ApiError::new(Code::CryptoError, format!("the verification stopped: {e}")))?;
    // The body's own failure explains a failed verification best.
    match (pumped, result) {
        (Err(e), Err(_)) => Err(pump_error(e, limit)),
        (_, r) => r,
    }
}

/// Feed a reader's bytes to a verification's sink.
fn feed_from(
    reader: &mut dyn std::io::Read,
    label: &Path,
    sink: &mut dyn FnMut(&[u8]),
) -> crate::error::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sink(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(label, "reading", e)),
        }
    }
}

fn verify_outcome(
    app: &App,
    ctx: &Ctx,
    label: &str,
    result: Result<Verified<Package>, VerifyError>,
) -> Answer {
    let base = |e: AuditEvent, r: &Report| {
        ctx.event(e)
            .with("package", label.to_string())
            .with("package_hash", r.package_hash.clone())
    };
    match result {
        Ok(v) => {
            app.metrics.verification(VerifyResult::Verified, None);
            for e in verify::audit_events(v.report(), None, |e| base(e, v.report())) {
                app.audit(e)?;
            }
            Ok(axum::Json(verified_json(&v, now_secs())).into_response())
        }
        Err(VerifyError::Refused(r)) => {
            app.metrics
                .verification(VerifyResult::Refused, Some(r.code()));
            for e in verify::audit_events(&r, Some(r.to_string()), |e| base(e, &r)) {
                app.audit(e)?;
            }
            let mut err = with_verified_false(VerifyError::Refused(r).into());
            err.audited = true;
            Err(err)
        }
        Err(e) => {
            let code = e.code();
            let refused = matches!(
                super::reply::status_of(code),
                StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY
            );
            app.metrics.verification(
                if refused {
                    VerifyResult::Refused
                } else {
                    VerifyResult::Error
                },
                Some(code),
            );
            let err = with_verified_false(e.into());
            Err(app.refuse(ctx, AuditEvent::SignatureVerificationFailure, err))
        }
    }
}

fn with_verified_false(mut e: ApiError) -> ApiError {
    let mut extra = e.extra.take().unwrap_or_else(|| json!({}));
    if let Value::Object(m) = &mut extra {
        m.insert("verified".into(), Value::Bool(false));
    }
    e.extra = Some(extra);
    e
}

async fn verify_signature(
    State(app): State<Arc<App>>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = Ctx::new(VERIFY, &headers, peer.as_deref());
    let r = verify_signature_inner(&app, &mut ctx, &headers, body).await;
    // Every refusal is in the audit log, also one refused before any
    // verification (malformed JSON, a wrong content type, ...).
    answer(r.map_err(|e| app.refuse(&ctx, AuditEvent::SignatureVerificationFailure, e)))
}

async fn verify_signature_inner(
    app: &Arc<App>,
    ctx: &mut Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Answer {
    app.authorize(ctx, headers, &[Role::Verify])?;
    match request::body_kind(headers)? {
        BodyKind::Json => {
            let limit = app.settings.limits.max_json_size.0;
            let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
                .await
                .map_err(|_| too_large(limit))?;
            verify_paths(app, ctx, VerifyRequest::parse(&bytes)?).await
        }
        BodyKind::Package => verify_body(app, ctx, headers, body).await,
    }
}

async fn verify_paths(app: &Arc<App>, ctx: &Ctx, req: VerifyRequest) -> Answer {
    let label = req.package_path.display().to_string();
    let app2 = app.clone();
    let opened = tokio::task::spawn_blocking(move || open_named(&app2, req))
        .await
        .map_err(|e| ApiError::new(Code::CryptoError, e.to_string()))?;
    let (mut file, sig, key) = match opened {
        Ok(o) => o,
        Err(Named::Refused(msg)) => {
            app.metrics.unauthorized(ctx.route, "path_refused");
            return Err(app.refuse(
                ctx,
                AuditEvent::AccessDenied,
                ApiError::new(Code::PathRefused, msg),
            ));
        }
        Err(Named::Failed(e)) => {
            app.metrics.verification(VerifyResult::Error, Some(e.code));
            return Err(app.refuse(ctx, AuditEvent::SignatureVerificationFailure, e));
        }
    };
    let trust = app.trust.get()?;
    let opts = app.verify_options();
    let path = PathBuf::from(&label);
    let result = tokio::task::spawn_blocking(move || {
        let mut feed = |sink: &mut dyn FnMut(&[u8])| feed_from(&mut file, &path, sink);
        verify::verify_parsed(&path, Content::Stream(&mut feed), &sig, &trust, &opts)
    })
    .await
    .map_err(|e| ApiError::new(Code::CryptoError, e.to_string()))?;
    if let (Ok(v), Some(fp)) = (&result, &key)
        && !v.signers().any(|s| s.key.as_ref() == Some(fp))
    {
        app.metrics
            .verification(VerifyResult::Refused, Some(Code::KeyNotTrusted));
        return Err(app.refuse(
            ctx,
            AuditEvent::SignatureVerificationFailure,
            with_verified_false(ApiError::new(
                Code::KeyNotTrusted,
                format!("{label}: no valid signature by key {fp}, the key public_key_path names"),
            )),
        ));
    }
    verify_outcome(app, ctx, &label, result)
}

enum Named {
    Refused(String),
    Failed(ApiError),
}

impl From<PathError> for Named {
    fn from(e: PathError) -> Self {
        match e {
            PathError::Refused(m) => Named::Refused(m),
            PathError::File(e) => Named::Failed(e.into()),
        }
    }
}

/// Open the files a request names; the public key, if named, must be a
/// key of the trusted-keys directory (it narrows, never widens, the trust).
fn open_named(
    app: &App,
    req: VerifyRequest,
) -> Result<(std::fs::File, SignatureFile, Option<Fingerprint>), Named> {
    let failed = |e: Error| Named::Failed(e.into());
    let file = app.confined.open(&req.package_path)?;
    let sig_path = req
        .signature_path
        .unwrap_or_else(|| crate::fsutil::sig_path_for(&req.package_path));
    let sig_file = app.confined.open(&sig_path)?;
    let data = crate::fsutil::read_bounded_from(sig_file, &sig_path, 64 * 1024, "signature file")
        .map_err(failed)?;
    let sig = sigfile::parse(&sig_path, &data).map_err(failed)?;
    let key = match req.public_key_path {
        Some(p) => {
            let f = app.confined.open(&p)?;
            let data =
                crate::fsutil::read_bounded_from(f, &p, 64 * 1024, "public key").map_err(failed)?;
            let fp = keys::encoding::parse_public_key(&p, &data)
                .map_err(failed)?
                .fingerprint();
            let trust = app.trust.get().map_err(failed)?;
            if trust.get(&fp).is_none() {
                return Err(Named::Failed(ApiError::new(
                    Code::KeyNotTrusted,
                    format!(
                        "{}: key {fp} is not in the service's trusted-keys directory; trust comes from that directory only",
                        p.display()
                    ),
                )));
            }
            Some(fp)
        }
        None => None,
    };
    Ok((file, sig, key))
}

async fn verify_body(app: &Arc<App>, ctx: &Ctx, headers: &HeaderMap, body: Body) -> Answer {
    let limit = app.settings.limits.max_verify_size.0;
    let (sig, _) = request::signature(headers).map_err(|e| {
        app.metrics
            .verification(VerifyResult::Refused, Some(e.code));
        app.refuse(ctx, AuditEvent::SignatureVerificationFailure, e)
    })?;
    if request::content_length(headers).is_some_and(|n| n > limit) {
        return Err(app.refuse(
            ctx,
            AuditEvent::SignatureVerificationFailure,
            too_large(limit),
        ));
    }
    let trust = app.trust.get()?;
    let opts = app.verify_options();
    let label = "request body";
    let small = request::content_length(headers).filter(|&n| n <= SMALL_BODY.min(limit));
    let result = match small {
        Some(n) => verify_small(app, body, n, sig, trust, opts).await,
        None => verify_streamed(app, body, limit, sig, trust, opts).await,
    };
    match result {
        Ok(r) => verify_outcome(app, ctx, label, r),
        Err(e) => {
            app.metrics.verification(VerifyResult::Error, Some(e.code));
            Err(app.refuse(
                ctx,
                AuditEvent::SignatureVerificationFailure,
                with_verified_false(e),
            ))
        }
    }
}

/// A body whose declared length is at most this is read whole before it is
/// verified, and verified without the blocking pool when its signature file
/// is small: a 1 KiB request then costs no thread hand-off, no channel and
/// no 256 KiB read buffer (benches/serve.sh, docs/benchmarks.md).
const SMALL_BODY: u64 = 64 * 1024;

/// Signature files with at most this many signatures over a small body are
/// verified on the async worker (each check takes tens of microseconds);
/// more go to the blocking pool.
const INLINE_SIGNATURES: usize = 4;

/// The verification of a body of declared length `len` (at most
/// [`SMALL_BODY`]), read whole first: more bytes than declared is refused
/// (hyper ends the body at the declared length; a shorter body is a broken
/// connection), and the body must arrive within the idle timeout.
async fn verify_small(
    app: &App,
    body: Body,
    len: u64,
    sig: SignatureFile,
    trust: Arc<crate::trust::TrustStore>,
    opts: VerifyOptions,
) -> Result<Result<Verified<Package>, VerifyError>, ApiError> {
    use http_body_util::BodyExt as _;
    let limit = usize::try_from(len).unwrap_or(usize::MAX);
    let collect = http_body_util::Limited::new(body, limit).collect();
    let bytes = match tokio::time::timeout(app.settings.limits.header_timeout.std(), collect).await
    {
        Err(_) => return Err(pump_error(PumpError::Idle, len)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::new(
                Code::Usage,
                "the body is longer than its Content-Length says; nothing was verified",
            ));
        }
        Ok(Err(_)) => return Err(pump_error(PumpError::Broken, len)),
        Ok(Ok(b)) => b.to_bytes(),
    };
    let few = match &sig {
        SignatureFile::Pkgsign(blocks) => blocks.len() <= INLINE_SIGNATURES,
        SignatureFile::Raw(_) | SignatureFile::SshSig(_) => true,
    };
    let run = move || {
        let path = Path::new("request body");
        let mut fed = false;
        let mut feed = |sink: &mut dyn FnMut(&[u8])| -> crate::error::Result<()> {
            // Once only, as a stream is: a second pass would be unchecked.
            if std::mem::replace(&mut fed, true) {
                return Err(Error::io(
                    path,
                    "reading",
                    std::io::Error::other("the body was asked for twice"),
                ));
            }
            if !bytes.is_empty() {
                sink(&bytes);
            }
            Ok(())
        };
        verify::verify_parsed(path, Content::Stream(&mut feed), &sig, &trust, &opts)
    };
    if few {
        Ok(run())
    } else {
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| ApiError::new(Code::CryptoError, format!("the verification stopped: {e}")))
    }
}

/// The verification of a body of any length, streamed to the blocking pool.
async fn verify_streamed(
    app: &App,
    body: Body,
    limit: u64,
    sig: SignatureFile,
    trust: Arc<crate::trust::TrustStore>,
    opts: VerifyOptions,
) -> Result<Result<Verified<Package>, VerifyError>, ApiError> {
    let label = "request body";
    with_body(app, body, limit, move |mut reader| {
        let path = Path::new(label);
        let mut feed = |sink: &mut dyn FnMut(&[u8])| feed_from(&mut reader, path, sink);
        match verify::verify_parsed(path, Content::Stream(&mut feed), &sig, &trust, &opts) {
            // Not made (the body could not be read, most often): an error
            // here, so that `with_body` can say what happened to the body
            // (over the limit: 413, stalled: 408), not a bare 500.
            Err(VerifyError::Failed(e)) => Err(ApiError::from(e)),
            r => Ok(r),
        }
    })
    .await
}

async fn upload(
    State(app): State<Arc<App>>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = Ctx::new(UPLOAD, &headers, peer.as_deref());
    let r = upload_inner(&app, &mut ctx, &headers, body)
        .await
        .map_err(|e| app.refuse(&ctx, AuditEvent::UnauthorizedUpdateAttempt, e));
    if let Err(e) = &r {
        let result = if matches!(e.status.as_u16(), 401 | 403 | 422 | 429 | 409 | 413 | 400) {
            UploadResult::Refused
        } else {
            UploadResult::Error
        };
        app.metrics.upload(result, Some(e.code));
    }
    answer(r)
}

async fn upload_inner(app: &Arc<App>, ctx: &mut Ctx, headers: &HeaderMap, body: Body) -> Answer {
    let who = app.authorize(ctx, headers, &[Role::Upload])?;
    if let Err(not_until) = app.limiter.check_key(&who.name) {
        use governor::clock::Clock as _;
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        app.metrics.unauthorized(ctx.route, "rate_limited");
        let mut e = ApiError::new(
            Code::RateLimited,
            format!(
                "token {:?} is over its upload rate; try again in {} s",
                who.name,
                wait.as_secs() + 1
            ),
        );
        e.retry_after = Some(wait.as_secs() + 1);
        return Err(app.refuse(ctx, AuditEvent::UnauthorizedUpdateAttempt, e));
    }
    let refuse = |e: ApiError| app.refuse(ctx, AuditEvent::UnauthorizedUpdateAttempt, e);
    let Some(store) = app.store.clone() else {
        return Err(refuse(ApiError::new(
            Code::NotReady,
            "this service has no release store configured (service.release_store); it accepts no upload",
        )));
    };
    let (sig, sig_text) = request::signature(headers).map_err(refuse)?;
    let claims = Claims::from_headers(headers).map_err(refuse)?;
    let limit = app.settings.limits.max_upload_size.0;
    if request::content_length(headers).is_some_and(|n| n > limit) {
        return Err(refuse(too_large(limit)));
    }
    let trust = app.trust.get().map_err(|e| refuse(e.into()))?;
    let opts = app.verify_options();
    let now = now_secs();
    let staging = store.staging();
    let log = app.audit.clone();
    let ctx2 = ctx.clone();
    // Set when this request is dropped (its timeout) before the store is
    // done: the store then keeps nothing.
    let abandoned = Arc::new(AtomicBool::new(false));
    let _guard = Abandon(abandoned.clone());
    let result = with_body(app, body, limit, move |mut reader| {
        let (verified, staged) = verify::staged::stage_and_verify_from(
            &mut reader,
            Path::new("upload"),
            &staging,
            limit,
            &sig,
            &trust,
            &opts,
        )?;
        claims.check(&verified)?;
        // The verification is in the audit log before the store changes:
        // a release whose verification cannot be logged is not kept.
        if let Some(log) = &log {
            let r = verified.report();
            for e in verify::audit_events(r, None, |e| {
                ctx2.event(e)
                    .with("package", "upload")
                    .with("package_hash", r.package_hash.clone())
            }) {
                log.record(e)?;
            }
        }
        let stored = store.commit(&verified, staged, &sig_text, now, &abandoned)?;
        // Logged here, by the work that stored it, so that a release is
        // never stored unlogged, even if its request was dropped meanwhile.
        if let Some(log) = &log {
            log.record(
                ctx2.event(AuditEvent::UpdateStored)
                    .with("name", stored.name.clone())
                    .with("version", stored.version.clone())
                    .with("package_hash", stored.digest.clone())
                    .with("already_stored", !stored.new),
            )?;
        }
        Ok((verified, stored))
    })
    .await;
    let (verified, stored) = match result {
        Ok(ok) => ok,
        Err(e) => return Err(refuse(e)),
    };
    app.metrics.upload(
        if stored.new {
            UploadResult::Stored
        } else {
            UploadResult::AlreadyStored
        },
        None,
    );
    let mut obj = verified_json(&verified, now);
    if let Value::Object(m) = &mut obj {
        m.insert("stored".into(), json!(true));
        m.insert("already_stored".into(), json!(!stored.new));
        m.insert("name".into(), json!(stored.name));
        m.insert("version".into(), json!(stored.version));
        m.insert("digest".into(), json!(stored.digest));
    }
    let status = if stored.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(obj)).into_response())
}

/// Sets its flag when dropped: a request future dropped mid-way (the
/// request timeout) tells the blocking work it started to keep nothing.
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn reader_roles() -> &'static [Role] {
    &[Role::Verify, Role::Upload, Role::Admin]
}

async fn latest(
    State(app): State<Arc<App>>,
    peer: Option<Extension<Peer>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut ctx = Ctx::new("/api/v1/update/{name}/latest", &headers, peer.as_deref());
    answer(
        async {
            app.authorize(&mut ctx, &headers, reader_roles())?;
            let store = stored_releases(&app)?;
            let s2 = store.clone();
            let n2 = name.clone();
            let version = tokio::task::spawn_blocking(move || s2.latest(&n2))
                .await
                .map_err(|e| ApiError::new(Code::IoError, e.to_string()))??;
            let Some(version) = version else {
                return Err(ApiError::new(
                    Code::NotFound,
                    format!("no release of {name} is stored"),
                ));
            };
            serve_release(&store, &name, &version, false).await
        }
        .await,
    )
}

async fn release(
    State(app): State<Arc<App>>,
    peer: Option<Extension<Peer>>,
    axum::extract::Path((name, version)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut ctx = Ctx::new("/api/v1/update/{name}/{version}", &headers, peer.as_deref());
    answer(
        async {
            app.authorize(&mut ctx, &headers, reader_roles())?;
            serve_release(&stored_releases(&app)?, &name, &version, false).await
        }
        .await,
    )
}

async fn release_signature(
    State(app): State<Arc<App>>,
    peer: Option<Extension<Peer>>,
    axum::extract::Path((name, version)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut ctx = Ctx::new(
        "/api/v1/update/{name}/{version}/signature",
        &headers,
        peer.as_deref(),
    );
    answer(
        async {
            app.authorize(&mut ctx, &headers, reader_roles())?;
            serve_release(&stored_releases(&app)?, &name, &version, true).await
        }
        .await,
    )
}

fn stored_releases(app: &App) -> Result<super::store::Store, ApiError> {
    app.store.clone().ok_or_else(|| {
        ApiError::new(
            Code::NotFound,
            "this service has no release store configured (service.release_store)",
        )
    })
}

/// A stored package (or its signature), streamed from disk, with its name,
/// version and signature in headers.
async fn serve_release(
    store: &super::store::Store,
    name: &str,
    version: &str,
    signature: bool,
) -> Answer {
    let dir = store.release_dir(name, version)?;
    let sig_path = dir.join("package.sig");
    let sig = match tokio::fs::read(&sig_path).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(
                Code::NotFound,
                format!("{name} {version} is not stored"),
            ));
        }
        Err(e) => return Err(Error::io(&sig_path, "reading", e).into()),
    };
    let mut resp = if signature {
        (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            sig.clone(),
        )
            .into_response()
    } else {
        let path = dir.join("package");
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ApiError::from(Error::io(&path, "opening", e)))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| ApiError::from(Error::io(&path, "reading", e)))?
            .len();
        let mut r = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        ))
        .into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
            h.insert(header::CONTENT_LENGTH, v);
        }
        r
    };
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-pkgsign-name", name.to_string()),
        ("x-pkgsign-version", version.to_string()),
        (
            request::SIGNATURE_HEADER,
            base64::engine::general_purpose::STANDARD.encode(&sig),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    Ok(resp)
}

/// The seed's key generation request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    output_dir: PathBuf,
    key_size: Option<u32>,
    algorithm: Option<String>,
    name: Option<String>,
}

async fn generate_key(
    State(app): State<Arc<App>>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = Ctx::new(GENERATE, &headers, peer.as_deref());
    let r = async {
            app.authorize(&mut ctx, &headers, &[Role::Admin])?;
            let limit = app.settings.limits.max_json_size.0;
            let body = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
                .await
                .map_err(|_| too_large(limit))?;
            let req: GenerateRequest = serde_json::from_slice(&body).map_err(|e| {
                ApiError::new(
                    Code::Usage,
                    format!("the request is not the JSON this route takes ({e}): send output_dir, and optionally key_size, algorithm, name"),
                )
            })?;
            let s = &app.settings;
            if !req.output_dir.is_absolute()
                || req
                    .output_dir
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
                || !s.key_dirs.iter().any(|d| d == &req.output_dir)
            {
                app.metrics.unauthorized(ctx.route, "path_refused");
                return Err(app.refuse(
                    &ctx,
                    AuditEvent::AccessDenied,
                    ApiError::new(
                        Code::PathRefused,
                        format!(
                            "{}: not one of the key directories this service may write (service.key_dirs)",
                            req.output_dir.display()
                        ),
                    ),
                ));
            }
            let algorithm = req
                .algorithm
                .clone()
                .or_else(|| req.key_size.map(|_| "rsa".to_string()))
                .or_else(|| s.key_algorithm.clone())
                .unwrap_or_else(|| "ed25519".into())
                .to_ascii_lowercase();
            let spec = match algorithm.as_str() {
                "ed25519" if req.key_size.is_none() => keys::KeySpec::Ed25519,
                "rsa" => {
                    let bits = req.key_size.or(s.key_size).unwrap_or(3072);
                    if ![2048, 3072, 4096].contains(&bits) {
                        return Err(ApiError::new(
                            Code::Usage,
                            format!("key_size {bits}: RSA keys are 2048, 3072 or 4096 bits"),
                        ));
                    }
                    keys::KeySpec::Rsa {
                        bits: bits as usize,
                    }
                }
                _ => {
                    return Err(ApiError::new(
                        Code::Usage,
                        format!("algorithm {algorithm:?} (key_size {:?}): ask for ed25519, or rsa with a key_size", req.key_size),
                    ));
                }
            };
            let name = req
                .name
                .clone()
                .or_else(|| s.key_name.clone())
                .unwrap_or_else(|| "signing-key".into());
            let dir = req.output_dir.clone();
            let written = tokio::task::spawn_blocking(move || {
                keys::generate::keygen(&dir, &name, spec, None, crate::fsutil::Replace::Never)
            })
            .await
            .map_err(|e| ApiError::new(Code::CryptoError, e.to_string()))?
            .map_err(|e| app.refuse(&ctx, AuditEvent::AccessDenied, e.into()))?;
            let fp = written.public.fingerprint();
            app.audit(
                ctx.event(AuditEvent::KeyGenerated)
                    .with("key", fp.to_string())
                    .with("algorithm", algorithm.clone())
                    .with("public_key_path", written.public_path.display().to_string()),
            )?;
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({
                    "ok": true,
                    "private_key_path": written.private_path,
                    "public_key_path": written.public_path,
                    "fingerprint": fp.to_string(),
                    "algorithm": algorithm,
                })),
            )
                .into_response())
        }
        .await;
    answer(r.map_err(|e| app.refuse(&ctx, AuditEvent::AccessDenied, e)))
}

async fn healthz() -> Response {
    axum::Json(json!({"ok": true})).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let checked = (|| -> Result<usize, ApiError> {
        let trust = app.trust.get()?;
        if trust.is_empty() {
            return Err(ApiError::new(
                Code::NotReady,
                "the trusted-keys directory holds no key: every verification would be refused",
            ));
        }
        if let Some(store) = &app.store
            && !store.staging().is_dir()
        {
            return Err(ApiError::new(
                Code::NotReady,
                "the release store's staging directory is gone",
            ));
        }
        Ok(trust.len())
    })();
    match checked {
        Ok(n) => axum::Json(json!({"ok": true, "trusted_keys": n})).into_response(),
        Err(mut e) => {
            e.status = StatusCode::SERVICE_UNAVAILABLE;
            e.into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    if let Some(dir) = &app.settings.signing_keys_dir {
        match crate::metrics::key_figures(dir, now_secs()) {
            Ok(f) => app.metrics.set_key_figures(&f),
            // Unknown is absent, never a stale or zero figure.
            Err(_) => app.metrics.clear_key_figures(),
        }
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        app.metrics.encode(),
    )
        .into_response()
}

async fn not_found() -> Response {
    ApiError::new(Code::NotFound, "no such route; the API is under /api/v1/").into_response()
}

async fn method_not_allowed() -> Response {
    let mut e = ApiError::new(Code::Usage, "this route does not take that method");
    e.status = StatusCode::METHOD_NOT_ALLOWED;
    e.into_response()
}
