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

/// fuzz target `pkcs11_uri`: a `pin-source` whose file name itself begins
/// with `file:` (or `//`) lost that part when the URI was written out and
/// read again (`file:file:/etc/pin` named `file:/etc/pin`, then
/// `/etc/pin`): `key-rotate` would have written a pointer naming another
/// PIN file than the URI it was given.
#[test]
fn pkcs11_uri_pin_source_survives_being_written_and_read_again() {
    use pkgsign::keys::pkcs11::uri::Pkcs11Uri;
    for s in [
        "pkcs11:token=My%20Token;id=%01%02;slot-id=3?pin-source=file:file:/etc//etc/pin&module-path=/uib/shsm/libsofthsm3.so",
        "pkcs11:object=k?pin-source=file:////srv/pin",
        "pkcs11:object=k?pin-source=relative/pin",
        "pkcs11:object=k?pin-source=/etc/pin",
    ] {
        let uri = Pkcs11Uri::parse(s).unwrap();
        let again = Pkcs11Uri::parse(&uri.to_text()).unwrap();
        assert_eq!(again.pin_source, uri.pin_source, "{s} -> {}", uri.to_text());
        assert_eq!(again.to_text(), uri.to_text());
    }
}
