//! PKCS#11 URIs (RFC 7512) naming a key in a token (`--key pkcs11:...`).
//! Property: a parsed URI's canonical text parses back to the same URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkgsign::keys::pkcs11::uri::Pkcs11Uri;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Pkcs11Uri::is_uri(s);
    if let Ok(uri) = Pkcs11Uri::parse(s) {
        let text = uri.to_text();
        let again = Pkcs11Uri::parse(&text).expect("a URI's canonical text parses");
        assert_eq!(again.to_text(), text);
        let strip = |u: &Pkcs11Uri| Pkcs11Uri {
            text: String::new(),
            ..u.clone()
        };
        assert_eq!(strip(&again), strip(&uri));
    }
});
