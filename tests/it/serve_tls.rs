//! `pkgsign serve` over TLS with certificates made in the test (`rcgen`),
//! driven by the real `curl`: every route over HTTPS, and mutual TLS (a
//! client without a certificate, or with one of another CA, is refused at
//! the handshake; one the configured CA signed gets through).

use crate::common;

use common::args;
use common::serve::*;

#[test]
fn every_endpoint_answers_over_tls_with_a_certificate_made_in_the_test() {
    let s = Setup::new().tls(false).start();
    assert!(
        s.first_line.starts_with("listening on https://127.0.0.1:"),
        "{}",
        s.first_line
    );
    crate::serve::every_endpoint_works(&s);
    // A role where it does not belong, and no token, over TLS too.
    let (pkg, sig) = s.setup.release("tls", "1.0.0", b"t");
    s.upload(Some(VERIFY_TOKEN), &pkg, &sig)
        .refused(403, "FORBIDDEN");
    s.upload(None, &pkg, &sig).refused(401, "UNAUTHORIZED");
    // A client that does not trust the CA does not connect.
    let r = s.curl_with("/healthz", Vec::new(), true);
    assert_eq!(r.status, 0, "{r:?}");
    assert_ne!(r.curl_exit, 0, "{r:?}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = format!("http://{}/healthz", s.addr);
    let out = common::tool(
        s.setup.env.dir.path(),
        "curl",
        args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &plain,
        ]),
    );
    assert_ne!(out.out().trim(), "200", "{out:#?}");
    // A client that connects and never starts the handshake is cut off
    // after header_timeout (1 s).
    let mut t = s.tcp();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let r = common::serve::read_some(&mut t, &mut buf);
    assert!(
        matches!(r, Ok(0))
            || r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?} after {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn mutual_tls_refuses_a_client_without_a_ca_signed_certificate_at_the_handshake() {
    let s = Setup::new().tls(true).start();
    let tls = s.setup.tls.clone().unwrap();
    // With the client certificate the CA signed: through.
    s.get("/healthz", None).status(200);
    let (pkg, sig) = s.setup.release("mtls", "1.0.0", b"m");
    s.upload(Some(UPLOAD_TOKEN), &pkg, &sig).status(201);
    // No client certificate: no HTTP answer at all, whatever the token.
    let mut a = args(["--cacert".as_ref(), tls.ca.as_os_str()]);
    a.extend(auth(Some(VERIFY_TOKEN)));
    let r = s.curl_with("/api/v1/update/mtls/latest", a.clone(), true);
    assert_eq!(r.status, 0, "{r:?}");
    assert_ne!(r.curl_exit, 0, "{r:?}");
    assert!(r.body.is_empty(), "{r:?}");
    // The server's TLS alert, not an HTTP answer: refused in the handshake.
    assert!(r.curl_err.contains("certificate required"), "{r:?}");
    // A certificate another CA signed: refused the same.
    let mut b = a.clone();
    b.extend(args([
        "--cert".as_ref(),
        tls.stranger_cert.as_os_str(),
        "--key".as_ref(),
        tls.stranger_key.as_os_str(),
    ]));
    let r = s.curl_with("/api/v1/update/mtls/latest", b, true);
    assert_eq!(r.status, 0, "{r:?}");
    assert_ne!(r.curl_exit, 0, "{r:?}");
    assert!(r.curl_err.contains("unknown ca"), "{r:?}");
    // And the good one again, the release intact.
    let mut c = a;
    c.extend(args([
        "--cert".as_ref(),
        tls.client_cert.as_os_str(),
        "--key".as_ref(),
        tls.client_key.as_os_str(),
    ]));
    let r = s.curl_with("/api/v1/update/mtls/latest", c, true);
    r.status(200);
    assert_eq!(r.body, b"m");
}
