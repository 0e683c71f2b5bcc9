//! What `pkgsign serve` reads from a request besides its token: the head
//! is parsed as HTTP/1.1 (httparse, hyper's parser) into the header map the
//! handlers get, then each reader of `serve::request` runs on it, the body
//! is read as a verification request, and the path's segments as a release
//! name and version. Properties:
//! - a signature header accepted decodes to at most `MAX_SIGNATURE` bytes
//!   of text that parse to the same signature file;
//! - the claims accepted are their headers' text, trimmed;
//! - a request id kept is short, and only of the characters allowed
//!   (it goes into every audit line);
//! - the content type picks JSON or package as its lowercase prefix says;
//! - a verification request accepted is the JSON it writes back to;
//! - a release name and version accepted are each one plain path
//!   component, so a store path made of them stays in the store.
#![no_main]

use std::path::{Component, Path};

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use pkgsign::serve::request::{self, BodyKind, Claims, VerifyRequest};
use pkgsign::sign::sigfile;

fn one_component(s: &str) -> bool {
    let mut c = Path::new(s).components();
    matches!(c.next(), Some(Component::Normal(n)) if n == s) && c.next().is_none()
}

fuzz_target!(|data: &[u8]| {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(head_len)) = req.parse(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for h in req.headers.iter() {
        // As hyper builds the map: a name or value it refuses ends the
        // request before any handler runs.
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return;
        };
        headers.append(name, value);
    }
    let body = data.get(head_len..).unwrap_or_default();

    if let Ok((parsed, text)) = request::signature(&headers) {
        assert!(text.len() <= request::MAX_SIGNATURE);
        let raw = headers.get(request::SIGNATURE_HEADER).expect("it was read");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw.as_bytes().trim_ascii())
            .expect("it was base64");
        assert_eq!(decoded, text.as_bytes());
        let again = sigfile::parse(Path::new("again"), text.as_bytes()).expect("it parsed once");
        assert_eq!(again, parsed);
    }

    if let Ok(claims) = Claims::from_headers(&headers) {
        for (name, claim) in [
            ("x-signature-algorithm", &claims.algorithm),
            ("x-public-key-fingerprint", &claims.fingerprint),
        ] {
            let header = headers.get(name).map(|v| v.to_str().expect("text").trim());
            assert_eq!(header, claim.as_deref());
        }
    }

    let id = request::request_id(&headers);
    assert!(id.len() <= request::MAX_REQUEST_ID);
    assert!(
        id.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:+=/".contains(&c))
    );

    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match request::body_kind(&headers) {
        Ok(BodyKind::Json) => assert!(ct.starts_with("application/json")),
        Ok(BodyKind::Package) => assert!(ct.starts_with("application/octet-stream")),
        Err(_) => assert!(
            !ct.starts_with("application/json") && !ct.starts_with("application/octet-stream")
        ),
    }
    let _ = request::content_length(&headers);

    if let Ok(v) = VerifyRequest::parse(body) {
        let json = serde_json::to_vec(&v).expect("a parsed request writes");
        assert_eq!(VerifyRequest::parse(&json).expect("and reads back"), v);
    }

    // The release routes: /api/v1/update/{name}[/{version}[/signature]].
    let path = req.path.unwrap_or_default();
    if let Some(rest) = path.strip_prefix("/api/v1/update/") {
        let mut seg = rest.split('/');
        if let Some(name) = seg.next()
            && request::check_name(name).is_ok()
        {
            assert!(one_component(name), "{name:?}");
        }
        if let Some(version) = seg.next()
            && request::check_version(version).is_ok()
        {
            assert!(one_component(version), "{version:?}");
        }
    }
});
