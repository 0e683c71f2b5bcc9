//! Private key files: PKCS#8 (plain and encrypted), PKCS#1 `RSA PRIVATE
//! KEY`, OpenSSH's own format (plain and encrypted), and the refusals of
//! every other PEM label. The first byte says
//! whether a passphrase is given (odd: "fuzz"), so both the "passphrase
//! required" path and decryption are reached. Property: a parsed key
//! written out as plain PKCS#8 parses back to the same key.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkgsign::keys::encoding::{self, Passphrase};

fuzz_target!(|data: &[u8]| {
    let Some((&first, pem)) = data.split_first() else {
        return;
    };
    let path = Path::new("fuzz.pem");
    let pass = (first & 1 == 1).then(|| Passphrase::new(b"fuzz".to_vec()).expect("not empty"));
    if let Ok(key) = encoding::parse_private_key(path, pem, pass.as_ref()) {
        let out = encoding::private_key_to_pem(&key, None).expect("a parsed key encodes");
        let again =
            encoding::parse_private_key(path, out.as_bytes(), None).expect("its PEM parses");
        assert_eq!(
            again.public_key().fingerprint(),
            key.public_key().fingerprint()
        );
    }
});
