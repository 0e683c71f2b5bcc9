//! Key metadata files (`trust.toml` of a trusted-keys directory,
//! `keys.toml` of a signing-keys directory). Property: the text written
//! for parsed metadata parses back to metadata written the same way.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use pkgsign::trust::meta::Metadata;

fuzz_target!(|data: &[u8]| {
    let path = PathBuf::from("trust.toml");
    if let Ok(meta) = Metadata::parse(path.clone(), data) {
        let text = meta.to_text().expect("parsed metadata is written");
        let again = Metadata::parse(path, text.as_bytes()).expect("written metadata parses");
        assert_eq!(again.keys().len(), meta.keys().len());
        assert_eq!(again.threshold(), meta.threshold());
        assert_eq!(again.to_text().expect("written again"), text);
    }
});
