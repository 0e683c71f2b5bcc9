//! Public key files: PEM SubjectPublicKeyInfo (Ed25519, RSA) and PKCS#1
//! `RSA PUBLIC KEY`. (OpenSSH public keys: a target of their own once that
//! format is read.) Property: a parsed key written out as PEM parses back
//! to the same key (same fingerprint).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkgsign::keys::encoding;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.pub");
    if let Ok(key) = encoding::parse_public_key(path, data) {
        let pem = encoding::public_key_to_pem(&key).expect("a parsed key encodes");
        let again = encoding::parse_public_key(path, pem.as_bytes()).expect("its PEM parses");
        assert_eq!(again.fingerprint(), key.fingerprint());
        // The DER form (used inside key statements) reads the same key too.
        let der =
            encoding::public_key_from_spki_der(path, &key.spki_der()).expect("its SPKI DER parses");
        assert_eq!(der.fingerprint(), key.fingerprint());
    }
});
