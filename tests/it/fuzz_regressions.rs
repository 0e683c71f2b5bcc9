//! Defects the fuzz targets (fuzz/) found, each as the property that
//! failed, on the minimised input (fuzz/README.md, "A crash").

/// fuzz target `pkcs11_uri`: a URI of under 4096 bytes whose values need
/// percent-encoding (`!` is written `%21`) was accepted, but its canonical
/// text (what `key-rotate` writes for the next key) was three times longer
/// and refused when read back.
#[test]
fn pkcs11_uri_whose_canonical_text_is_unreadable_is_refused() {
    use pkgsign::keys::pkcs11::uri::Pkcs11Uri;
    let s = format!("pkcs11:token=t;object={}", "!".repeat(2000));
    assert!(s.len() < 4096);
    if let Ok(uri) = Pkcs11Uri::parse(&s) {
        let text = uri.to_text();
        assert!(
            Pkcs11Uri::parse(&text).is_ok(),
            "an accepted URI's canonical text ({} bytes) is refused",
            text.len()
        );
    }
}
