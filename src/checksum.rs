//! Checksum lists, as `sha256sum` & co. write and read them.
//!
//! Writing is byte-for-byte what GNU coreutils 9 prints (and `b3sum` for
//! BLAKE3): `HEX  NAME`, or with `--tag` the BSD form `SHA256 (NAME) = HEX`.
//! A name holding a backslash or a newline (or, for coreutils, a carriage
//! return) is escaped and the line starts with a backslash.
//!
//! Reading accepts GNU lines (text `HEX  NAME` and binary `HEX *NAME`), BSD
//! and signify lines (`TAG (NAME) = HEX`), and pkgsign lines
//! (`ALGO:HEX  NAME`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::digest::{Digest, HashAlg};

/// Output form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `HEX  NAME`.
    Gnu,
    /// `TAG (NAME) = HEX`.
    Bsd,
}

/// Characters escaped in names: coreutils escapes `\`, newline and carriage
/// return; b3sum only `\` and newline.
fn needs_escape(alg: HashAlg, b: u8) -> bool {
    b == b'\\' || b == b'\n' || (b == b'\r' && alg != HashAlg::Blake3)
}

/// Format one output line (with its newline) for `name`.
pub fn format_line(digest: &Digest, name: &OsStr, style: Style) -> Vec<u8> {
    let alg = digest.alg();
    let raw = name.as_bytes();
    let escape = raw.iter().any(|b| needs_escape(alg, *b));
    let mut out = Vec::with_capacity(raw.len() + alg.len() * 2 + 16);
    if escape {
        out.push(b'\\');
    }
    let push_name = |out: &mut Vec<u8>| {
        for &b in raw {
            match b {
                b'\\' if escape => out.extend_from_slice(b"\\\\"),
                b'\n' if escape => out.extend_from_slice(b"\\n"),
                b'\r' if escape && alg != HashAlg::Blake3 => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    };
    match style {
        Style::Gnu => {
            out.extend_from_slice(digest.hex().as_bytes());
            out.extend_from_slice(b"  ");
            push_name(&mut out);
        }
        Style::Bsd => {
            out.extend_from_slice(alg.bsd_tag().as_bytes());
            out.extend_from_slice(b" (");
            push_name(&mut out);
            out.extend_from_slice(b") = ");
            out.extend_from_slice(digest.hex().as_bytes());
        }
    }
    out.push(b'\n');
    out
}

/// Escape a name for a `NAME: OK` line the way coreutils 9 `--check` does:
/// only a name holding a newline is escaped (backslashes doubled, newlines
/// as `\n`, carriage returns as `\r`) and its line starts with a backslash.
pub fn display_name(name: &[u8]) -> (bool, Vec<u8>) {
    if !name.contains(&b'\n') {
        return (false, name.to_vec());
    }
    let mut out = Vec::with_capacity(name.len() + 4);
    for &b in name {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    (true, out)
}

/// One entry of a checksum list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The expected digest.
    pub expected: Digest,
    /// The file name, unescaped, as bytes.
    pub name: Vec<u8>,
    /// 1-based line number.
    pub line: usize,
}

/// A parsed list.
#[derive(Debug, Clone, Default)]
pub struct List {
    /// The well-formed entries, in order.
    pub entries: Vec<Entry>,
    /// Line numbers of lines that are not well formed (coreutils warns about
    /// them and goes on).
    pub malformed: Vec<usize>,
}

/// Parse a checksum list. `alg` is the algorithm of GNU lines (`HEX  NAME`);
/// when `None`, it is inferred from the digest length (64 hex digits:
/// SHA-256, 128: SHA-512, 96: SHA-384, 56: SHA-224, 40: SHA-1, 32: MD5).
/// BSD and pkgsign lines name their own algorithm. A carriage return ending
/// a line is dropped (CRLF lists), as coreutils does, except at the end of
/// the name of a BLAKE3 GNU line, where b3sum writes it unescaped.
pub fn parse(data: &[u8], alg: Option<HashAlg>) -> List {
    let mut list = List::default();
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    if body.is_empty() {
        return list;
    }
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let raw = line;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let parsed = parse_line(line, alg).map(|(d, name)| {
            // b3sum never escapes a carriage return, and its --check keeps
            // one that ends a line as part of the name: so does pkgsign for
            // BLAKE3 lines (else it could not read its own list back). A BSD
            // line ends with its digest, so the re-parse fails there.
            if raw.len() != line.len()
                && d.alg() == HashAlg::Blake3
                && let Some(r) = parse_line(raw, alg)
            {
                return r;
            }
            (d, name)
        });
        match parsed {
            Some((expected, name)) => list.entries.push(Entry {
                expected,
                name,
                line: n,
            }),
            None => list.malformed.push(n),
        }
    }
    list
}

fn unescape(s: &[u8], escaped: bool) -> Option<Vec<u8>> {
    if !escaped {
        return Some(s.to_vec());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            match it.next()? {
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                _ => return None,
            }
        } else {
            out.push(b);
        }
    }
    Some(out)
}

fn parse_line(line: &[u8], alg: Option<HashAlg>) -> Option<(Digest, Vec<u8>)> {
    let (escaped, line) = match line.strip_prefix(b"\\") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    if let Some(r) = parse_bsd(line, escaped) {
        return Some(r);
    }
    // GNU or pkgsign: TOKEN, space, space or '*', name.
    let sp = line.iter().position(|b| *b == b' ')?;
    let (token, rest) = line.split_at(sp);
    let rest = &rest[1..];
    let name = rest
        .strip_prefix(b" ")
        .or_else(|| rest.strip_prefix(b"*"))?;
    if name.is_empty() {
        return None;
    }
    let token = std::str::from_utf8(token).ok()?;
    let digest = if token.contains(':') {
        Digest::parse(token, false).ok()?
    } else {
        let alg = match alg {
            Some(a) => a,
            None => HashAlg::from_hex_len(token.len())?,
        };
        Digest::parse(&format!("{}:{token}", alg.name()), false).ok()?
    };
    Some((digest, unescape(name, escaped)?))
}

fn parse_bsd(line: &[u8], escaped: bool) -> Option<(Digest, Vec<u8>)> {
    let open = line.windows(2).position(|w| w == b" (")?;
    let tag = std::str::from_utf8(&line[..open]).ok()?;
    let alg = HashAlg::from_bsd_tag(tag)?;
    let rest = &line[open + 2..];
    let close = rest.windows(4).rposition(|w| w == b") = ")?;
    let name = &rest[..close];
    let hex = std::str::from_utf8(&rest[close + 4..]).ok()?;
    let digest = Digest::parse(&format!("{}:{hex}", alg.name()), false).ok()?;
    Some((digest, unescape(name, escaped)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::hash_bytes;

    #[test]
    fn gnu_and_bsd_round_trip_with_odd_names() {
        for name in [
            &b"plain"[..],
            b"sp ace",
            b"back\\slash",
            b"new\nline",
            b"cr\rx",
            b"(paren) = x",
        ] {
            for alg in [HashAlg::Sha256, HashAlg::Sha512] {
                let d = hash_bytes(alg, name);
                for style in [Style::Gnu, Style::Bsd] {
                    let line = format_line(&d, OsStr::from_bytes(name), style);
                    let list = parse(&line, Some(alg));
                    assert_eq!(list.malformed, Vec::<usize>::new(), "{line:?}");
                    assert_eq!(list.entries[0].name, name);
                    assert_eq!(list.entries[0].expected, d);
                }
            }
        }
    }

    #[test]
    fn reads_binary_mode_pkgsign_and_rejects_junk() {
        let d = hash_bytes(HashAlg::Sha256, b"x");
        let text = format!(
            "{h} *bin\n{d}  tagged\nnot a line\n{h}  \n# comment\n",
            h = d.hex()
        );
        let list = parse(text.as_bytes(), None);
        assert_eq!(list.entries.len(), 2);
        assert_eq!(list.entries[0].name, b"bin");
        assert_eq!(list.entries[1].name, b"tagged");
        assert_eq!(list.malformed, vec![3, 4]);
    }

    #[test]
    fn display_name_escapes_like_coreutils_check() {
        // coreutils 9.1 `--check`: escaped only when the name holds a
        // newline; then `\\`, `\n` and `\r` are all escaped.
        assert_eq!(display_name(b"plain"), (false, b"plain".to_vec()));
        assert_eq!(
            display_name(b"back\\slash"),
            (false, b"back\\slash".to_vec())
        );
        assert_eq!(display_name(b"cr\rret"), (false, b"cr\rret".to_vec()));
        assert_eq!(
            display_name(b"a\\b\nc\r"),
            (true, b"a\\\\b\\nc\\r".to_vec())
        );
    }

    #[test]
    fn blake3_lines_escape_like_b3sum() {
        // b3sum escapes backslash and newline but not carriage return.
        let d = hash_bytes(HashAlg::Blake3, b"x");
        let line = format_line(&d, OsStr::from_bytes(b"cr\rx"), Style::Gnu);
        assert_eq!(line, format!("{}  cr\rx\n", d.hex()).into_bytes());
        let line = format_line(&d, OsStr::from_bytes(b"a\\b\r\n"), Style::Gnu);
        assert_eq!(line, format!("\\{}  a\\\\b\r\\n\n", d.hex()).into_bytes());
        let d = hash_bytes(HashAlg::Sha256, b"x");
        let line = format_line(&d, OsStr::from_bytes(b"cr\rx"), Style::Gnu);
        assert_eq!(line, format!("\\{}  cr\\rx\n", d.hex()).into_bytes());
    }

    #[test]
    fn bsd_names_with_parentheses_and_signify_lines() {
        let d = hash_bytes(HashAlg::Sha512, b"y");
        let text = format!("SHA512 (a (b) = c) = {}\n", d.hex());
        let list = parse(text.as_bytes(), None);
        assert_eq!(list.entries[0].name, b"a (b) = c");
        assert_eq!(list.entries[0].expected, d);
        // An unknown tag or a digest of the wrong length is malformed.
        let text = format!("SHA999 (a) = {h}\nSHA256 (a) = {h}\n", h = d.hex());
        assert_eq!(parse(text.as_bytes(), None).malformed, vec![1, 2]);
    }

    #[test]
    fn trailing_carriage_return() {
        // coreutils escapes it, and drops a raw one as a CRLF line end.
        let d = hash_bytes(HashAlg::Sha256, b"x");
        let line = format_line(&d, OsStr::from_bytes(b"tr\r"), Style::Gnu);
        assert_eq!(parse(&line, None).entries[0].name, b"tr\r");
        let crlf = format!("{}  tr\r\n", d.hex());
        assert_eq!(parse(crlf.as_bytes(), None).entries[0].name, b"tr");
        let crlf = format!("SHA256 (tr) = {}\r\n", d.hex());
        assert_eq!(parse(crlf.as_bytes(), None).entries[0].name, b"tr");
        // b3sum writes it raw and reads it back as part of the name.
        let d = hash_bytes(HashAlg::Blake3, b"x");
        for name in [&b"tr\r"[..], b"a\\b\nc\r"] {
            let line = format_line(&d, OsStr::from_bytes(name), Style::Gnu);
            let list = parse(&line, Some(HashAlg::Blake3));
            assert_eq!(list.entries[0].name, name, "{line:?}");
            assert_eq!(list.entries[0].expected, d);
        }
        let crlf = format!("BLAKE3 (tr) = {}\r\n", d.hex());
        assert_eq!(parse(crlf.as_bytes(), None).entries[0].name, b"tr");
    }

    #[test]
    fn bad_escapes_are_malformed() {
        let d = hash_bytes(HashAlg::Sha256, b"x");
        let text = format!("\\{h}  a\\qb\n\\{h}  trailing\\\n", h = d.hex());
        let list = parse(text.as_bytes(), None);
        assert!(list.entries.is_empty(), "{:?}", list.entries);
        assert_eq!(list.malformed, vec![1, 2]);
    }
}
