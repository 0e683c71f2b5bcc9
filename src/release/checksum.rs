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
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;

use crate::digest::{self, Digest, HashAlg, Hasher};
use crate::error::{Error, FileError, Result};

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

/// What one line of a list is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A checksum entry: the expected digest and the file name, unescaped.
    Entry(Digest, Vec<u8>),
    /// An empty line, or a comment (`#` first): coreutils skips them, a
    /// signed list may not hold them.
    Blank,
    /// Anything else.
    Malformed,
}

/// Longest line a list may hold, in bytes, line end excluded: a name is at
/// most `PATH_MAX` (4096) bytes, twice that escaped, plus a tag and a
/// SHA-512 digest. A longer line is [`Line::Malformed`] and never buffered
/// whole by [`LineSplitter`].
pub const MAX_LINE: usize = 16 * 1024;

/// Parse one line of a list (without its `\n`). `alg` is the algorithm of
/// GNU lines (`HEX  NAME`); when `None`, it is inferred from the digest
/// length (64 hex digits: SHA-256, 128: SHA-512, 96: SHA-384, 56: SHA-224,
/// 40: SHA-1, 32: MD5). BSD and pkgsign lines name their own algorithm. A
/// carriage return ending the line is dropped (CRLF lists), as coreutils
/// does, except at the end of the name of a BLAKE3 GNU line, where b3sum
/// writes it unescaped.
pub fn parse_line(raw: &[u8], alg: Option<HashAlg>) -> Line {
    if raw.len() > MAX_LINE {
        return Line::Malformed;
    }
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    if line.is_empty() || line.starts_with(b"#") {
        return Line::Blank;
    }
    let parsed = parse_fields(line, alg).map(|(d, name)| {
        // b3sum never escapes a carriage return, and its --check keeps
        // one that ends a line as part of the name: so does pkgsign for
        // BLAKE3 lines (else it could not read its own list back). A BSD
        // line ends with its digest, so the re-parse fails there.
        if raw.len() != line.len()
            && d.alg() == HashAlg::Blake3
            && let Some(r) = parse_fields(raw, alg)
        {
            return r;
        }
        (d, name)
    });
    match parsed {
        Some((d, name)) => Line::Entry(d, name),
        None => Line::Malformed,
    }
}

/// Parse a whole checksum list in memory, as coreutils reads it: blank and
/// comment lines are skipped, other lines that are not entries are noted in
/// [`List::malformed`]. See [`parse_line`] for the forms read.
pub fn parse(data: &[u8], alg: Option<HashAlg>) -> List {
    let mut list = List::default();
    let mut lines = LineSplitter::default();
    let mut on_line = |n: usize, line: Option<&[u8]>| match line.map(|l| parse_line(l, alg)) {
        Some(Line::Entry(expected, name)) => list.entries.push(Entry {
            expected,
            name,
            line: n,
        }),
        Some(Line::Blank) => {}
        Some(Line::Malformed) | None => list.malformed.push(n),
    };
    lines.feed(data, &mut on_line);
    lines.finish(&mut on_line);
    list
}

/// Splits a list read in pieces into lines, holding at most [`MAX_LINE`]
/// bytes of it: a longer line is handed over as `None` (malformed) without
/// being kept. Lines are what `data.split('\n')` gives once one final
/// `\n` is dropped; they are numbered from 1.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// The start of the current line, when it began in an earlier piece.
    carry: Vec<u8>,
    /// The current line is already longer than [`MAX_LINE`].
    overlong: bool,
    /// Lines handed over so far.
    lines: usize,
}

impl LineSplitter {
    /// Hand every line that `piece` completes to `f(number, line)`.
    pub fn feed(&mut self, piece: &[u8], f: &mut impl FnMut(usize, Option<&[u8]>)) {
        let mut rest = piece;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(nl);
            rest = tail.get(1..).unwrap_or_default();
            self.lines += 1;
            if self.overlong || self.carry.len() + head.len() > MAX_LINE {
                f(self.lines, None);
            } else if self.carry.is_empty() {
                f(self.lines, Some(head));
            } else {
                self.carry.extend_from_slice(head);
                f(self.lines, Some(&self.carry));
            }
            self.carry.clear();
            self.overlong = false;
        }
        if self.overlong || self.carry.len() + rest.len() > MAX_LINE {
            self.overlong = true;
            self.carry.clear();
        } else {
            self.carry.extend_from_slice(rest);
        }
    }

    /// The end of the list: hand over its last line if it has no `\n`.
    /// Returns how many lines there were.
    pub fn finish(&mut self, f: &mut impl FnMut(usize, Option<&[u8]>)) -> usize {
        if self.overlong || !self.carry.is_empty() {
            self.lines += 1;
            f(self.lines, (!self.overlong).then_some(&self.carry[..]));
        }
        self.carry.clear();
        self.overlong = false;
        self.lines
    }
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

fn parse_fields(line: &[u8], alg: Option<HashAlg>) -> Option<(Digest, Vec<u8>)> {
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
    let rest = rest.get(1..)?;
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
    let (tag, rest) = line.split_at_checked(open)?;
    let alg = HashAlg::from_bsd_tag(std::str::from_utf8(tag).ok()?)?;
    let rest = rest.get(2..)?;
    let close = rest.windows(4).rposition(|w| w == b") = ")?;
    let (name, rest) = rest.split_at_checked(close)?;
    let hex = std::str::from_utf8(rest.get(4..)?).ok()?;
    let digest = Digest::parse(&format!("{}:{hex}", alg.name()), false).ok()?;
    Some((digest, unescape(name, escaped)?))
}

/// Hash `path` (`-`: standard input) with `alg`, as `sha256sum` does.
pub fn hash_path(path: &Path, alg: HashAlg) -> Result<Digest> {
    if path.as_os_str() == "-" {
        let mut h = Hasher::new(alg);
        let mut buf = vec![0u8; 1 << 16];
        let mut stdin = std::io::stdin().lock();
        loop {
            let n = stdin
                .read(&mut buf)
                .map_err(|e| Error::io(path, "reading", e))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            h.update(chunk);
        }
        return Ok(h.finish());
    }
    let file = crate::fsutil::open_stream(path)?;
    let (_, d) = digest::hash_open_file(file, path, &[alg], None, true)?;
    digest::single(d, path)
}

/// What checking one entry of a list found.
#[derive(Debug)]
pub enum Checked {
    /// The file's digest matches.
    Ok,
    /// The file's digest differs.
    Failed,
    /// The file could not be opened or read (the error says why).
    Unreadable(Error),
    /// The file does not exist and missing files are ignored.
    IgnoredMissing,
}

impl Checked {
    /// What `sha256sum --check` prints after `NAME: ` (None: nothing).
    pub fn status(&self) -> Option<&'static str> {
        match self {
            Checked::Ok => Some("OK"),
            Checked::Failed => Some("FAILED"),
            Checked::Unreadable(_) => Some("FAILED open or read"),
            Checked::IgnoredMissing => None,
        }
    }
}

/// The outcome of checking a whole list, in list order.
#[derive(Debug)]
pub struct CheckReport {
    /// One result per entry of the list.
    pub results: Vec<Checked>,
    /// Entries whose digest differs.
    pub bad: usize,
    /// Entries that could not be read.
    pub missing: usize,
    /// Missing entries ignored.
    pub ignored: usize,
}

impl CheckReport {
    /// Entries checked (all but those ignored).
    pub fn total(&self) -> usize {
        self.results.len() - self.ignored
    }

    /// Entries whose file matched.
    pub fn verified(&self) -> usize {
        self.total() - self.bad - self.missing
    }

    /// With missing files ignored, nothing was left to check: that proves
    /// nothing, so it is a failure.
    pub fn none_verified(&self, ignore_missing: bool) -> bool {
        ignore_missing && self.verified() == 0
    }
}

/// Check every entry of `list` against the files it names (relative to the
/// working directory), hashing in parallel on the current rayon pool; the
/// digests are compared in constant time. As coreutils, with
/// `ignore_missing` only "no such file" is ignored: a directory or an
/// unreadable file still fails.
pub fn check_list(list: &List, ignore_missing: bool) -> CheckReport {
    let hashed: Vec<Result<Digest>> = list
        .entries
        .par_iter()
        .map(|e| hash_path(Path::new(OsStr::from_bytes(&e.name)), e.expected.alg()))
        .collect();
    let mut report = CheckReport {
        results: Vec::with_capacity(hashed.len()),
        bad: 0,
        missing: 0,
        ignored: 0,
    };
    for (e, r) in list.entries.iter().zip(hashed) {
        let checked = match r {
            Ok(d) if d.ct_eq(&e.expected) => Checked::Ok,
            Ok(_) => {
                report.bad += 1;
                Checked::Failed
            }
            Err(Error::File(FileError::NotFound { .. })) if ignore_missing => {
                report.ignored += 1;
                Checked::IgnoredMissing
            }
            Err(err) => {
                report.missing += 1;
                Checked::Unreadable(err)
            }
        };
        report.results.push(checked);
    }
    report
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

    /// Lines come out the same whatever the pieces the list is read in;
    /// an overlong line is handed over as malformed without being kept.
    #[test]
    fn line_splitter_is_independent_of_piece_boundaries() {
        let long = "x".repeat(MAX_LINE + 1);
        let text = format!("a\nbc\n\n{long}\nd\r\ne");
        let collect = |pieces: &[&[u8]]| {
            let mut s = LineSplitter::default();
            let mut got: Vec<(usize, Option<Vec<u8>>)> = Vec::new();
            let mut f = |n: usize, l: Option<&[u8]>| got.push((n, l.map(<[u8]>::to_vec)));
            for p in pieces {
                s.feed(p, &mut f);
                assert!(s.carry.len() <= MAX_LINE);
            }
            assert_eq!(s.finish(&mut f), 6);
            got
        };
        let whole = collect(&[text.as_bytes()]);
        assert_eq!(
            whole,
            vec![
                (1, Some(b"a".to_vec())),
                (2, Some(b"bc".to_vec())),
                (3, Some(Vec::new())),
                (4, None),
                (5, Some(b"d\r".to_vec())),
                (6, Some(b"e".to_vec())),
            ]
        );
        for cut in 0..text.len() {
            let (x, y) = text.as_bytes().split_at(cut);
            assert_eq!(collect(&[x, y]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        assert_eq!(collect(&bytes), whole);
        // A final newline ends the last line; a second one is a blank line.
        let mut s = LineSplitter::default();
        s.feed(b"a\n\n", &mut |_, _| {});
        assert_eq!(s.finish(&mut |_, _| {}), 2);
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
