//! Signature files, every format pkgsign reads (pkgsign v1 and v2, raw,
//! SSH signatures). Property: the representation is canonical, so a parsed
//! pkgsign file re-serialises to exactly its bytes, and a raw or SSH
//! signature to a file that parses back to the same signature.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkgsign::sign::sigfile::{self, SignatureFile};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.sig");
    match sigfile::parse(path, data) {
        Ok(SignatureFile::Pkgsign(blocks)) => {
            assert!(!blocks.is_empty() && blocks.len() <= sigfile::MAX_SIGNATURES);
            let text = sigfile::to_pkgsign_text(&blocks);
            assert_eq!(
                text.as_bytes(),
                data,
                "a parsed signature file re-serialises to its bytes"
            );
            let _ = sigfile::hash_algs(&blocks);
        }
        Ok(SignatureFile::Raw(sig)) => {
            let again = sigfile::parse(path, sigfile::to_raw_text(&sig).as_bytes())
                .expect("a raw signature re-serialised parses");
            assert_eq!(again, SignatureFile::Raw(sig));
        }
        Ok(SignatureFile::SshSig(s)) => {
            let text = pkgsign::sign::sshsig::armor(&s.key, &s.namespace, s.hash, &s.signature)
                .expect("a parsed SSH signature is written again");
            let again = sigfile::parse(path, text.as_bytes())
                .expect("an SSH signature written again parses");
            assert_eq!(again, SignatureFile::SshSig(s));
        }
        Err(_) => {}
    }
});
