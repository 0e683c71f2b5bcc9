//! The service's tokens: the tokens file, and the `Authorization` header of
//! a request checked against a fixed set (the public test tokens of
//! keys-example/). The first byte picks which. Properties: a header is
//! accepted only if it is `Bearer ` (any case) and one of the tokens, and
//! then as that token's principal; a parsed tokens file has as many tokens
//! as entry lines.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkgsign::serve::auth::Tokens;

const TOKENS_FILE: &[u8] = include_bytes!("../../keys-example/test-tokens");
/// keys-example/test-tokens.env: (name in the tokens file, token).
const TOKENS: [(&str, &[u8]); 3] = [
    (
        "test-verify",
        b"a42de14744df58452f749f6f0a1a1e01bd7e6c75a1d23630d368bac9e546f0b2",
    ),
    (
        "test-upload",
        b"c8e792b2d3265a9a912be6b05e58d8d58a58a5f4c5ebd705f70b9ec4026bf6b7",
    ),
    (
        "test-admin",
        b"e63c2c93c400daa7aafe73b166aa01d5389a104fa50ce052a98cea7d7037048e",
    ),
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first & 1 == 0 {
        if let Ok(tokens) = Tokens::parse(Path::new("tokens"), rest) {
            let text = std::str::from_utf8(rest).expect("a parsed file is text");
            let lines = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count();
            assert_eq!(tokens.len(), lines);
        }
        return;
    }
    let tokens =
        Tokens::parse(Path::new("test-tokens"), TOKENS_FILE).expect("the test tokens parse");
    let header = (first & 2 == 0).then_some(rest);
    if let Ok(who) = tokens.authenticate(header) {
        let value = header.expect("no header is never accepted");
        assert!(value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer "));
        let token = value[7..].trim_ascii();
        let (name, _) = TOKENS
            .iter()
            .find(|(_, t)| *t == token)
            .expect("only a listed token is accepted");
        assert_eq!(&who.name, name);
    }
    // Each listed token is accepted, as its own principal.
    if first == 0xff {
        for (name, token) in TOKENS {
            let mut h = b"Bearer ".to_vec();
            h.extend_from_slice(token);
            assert_eq!(
                tokens.authenticate(Some(&h)).map(|p| p.name.as_str()),
                Ok(name)
            );
        }
    }
});
