//! Key lineage statements (endorsements and revocations, `trust/lineage`).
//! Property: the form is canonical, so a parsed statement's text is
//! exactly the bytes it was parsed from, and parses to itself.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkgsign::trust::lineage::Statement;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.statement");
    if let Ok(st) = Statement::parse(path, data) {
        let text = st.to_text();
        assert_eq!(text.as_bytes(), data, "a statement's text is its bytes");
        let again = Statement::parse(path, text.as_bytes()).expect("its text parses");
        assert_eq!(again, st);
        let _ = st.summary();
        let _ = st.file_name();
    }
});
