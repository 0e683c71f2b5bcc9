//! The verification cache file (`--cache FILE`, JSON). Anything that does
//! not parse is an empty cache, never an error or a panic. Properties: at
//! most MAX_ENTRIES entries are kept, and the file written for a cache
//! reads back as the same cache.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkgsign::digest::cache::{Cache, MAX_ENTRIES};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.cache");
    let cache = Cache::from_bytes(path, data);
    assert!(cache.len() <= MAX_ENTRIES);
    let bytes = cache.to_bytes().expect("a cache encodes");
    let again = Cache::from_bytes(path, &bytes);
    assert_eq!(again.len(), cache.len());
    assert_eq!(again.to_bytes().expect("encodes again"), bytes);
});
