//! The configuration file (`--config`, `PKGSIGN_CONFIG`, TOML). It must
//! parse or be refused with an error naming a line inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkgsign::config::Config;
use pkgsign::error::{Error, ParseError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(Path::new("pkgsign.toml"), text) {
        Ok(_) => {}
        Err(Error::Parse(ParseError::Config { line, .. })) => {
            if let Some(n) = line {
                assert!(
                    n >= 1 && n <= text.split('\n').count(),
                    "line {n} is in the file"
                );
            }
        }
        Err(e) => panic!("a configuration text gave an unexpected error: {e}"),
    }
});
