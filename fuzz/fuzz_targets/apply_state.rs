//! The worker's anti-rollback state file (`STATE/NAME.json`). Property: a
//! parsed state written out again parses to the same state, and a file
//! for one name is refused for another.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkgsign::apply::state;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("example.json");
    if let Ok(applied) = state::parse(path, "example", data) {
        let text = state::encode("example", &applied).expect("a parsed state encodes");
        let again = state::parse(path, "example", text.as_bytes()).expect("its text parses");
        assert_eq!(again, applied);
        assert!(state::parse(path, "other", data).is_err());
    }
});
