//! Checksum lists (`checksum --check`, signed manifests): GNU, BSD and
//! pkgsign lines. The first byte picks the GNU lines' algorithm (or none:
//! inferred) and the size of the pieces the list arrives in. Properties:
//! reading the list in pieces (as manifests are read) gives what reading
//! it whole gives; every entry written back as a GNU and a BSD line parses
//! to the same digest and name; a name that `safe_relative` accepts stays
//! below the list's directory.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Component;

use libfuzzer_sys::fuzz_target;
use pkgsign::digest::HashAlg;
use pkgsign::release::checksum::{self, Line, LineSplitter, Style};
use pkgsign::release::manifest::safe_relative;

fuzz_target!(|data: &[u8]| {
    let Some((&first, list)) = data.split_first() else {
        return;
    };
    let algs = HashAlg::ALL;
    let alg = algs.get(usize::from(first & 0x0f)).copied();
    let whole = checksum::parse(list, alg);

    // The same list in pieces of 1 to 8 bytes.
    let step = usize::from(first >> 5) + 1;
    let mut pieces = checksum::List::default();
    let mut splitter = LineSplitter::default();
    let mut on_line =
        |n: usize, line: Option<&[u8]>| match line.map(|l| checksum::parse_line(l, alg)) {
            Some(Line::Entry(expected, name)) => pieces.entries.push(checksum::Entry {
                expected,
                name,
                line: n,
            }),
            Some(Line::Blank) => {}
            Some(Line::Malformed) | None => pieces.malformed.push(n),
        };
    for piece in list.chunks(step) {
        splitter.feed(piece, &mut on_line);
    }
    splitter.finish(&mut on_line);
    assert_eq!(pieces.entries, whole.entries);
    assert_eq!(pieces.malformed, whole.malformed);

    for e in &whole.entries {
        let name = OsStr::from_bytes(&e.name);
        for (style, line_alg) in [(Style::Gnu, Some(e.expected.alg())), (Style::Bsd, None)] {
            let mut line = checksum::format_line(&e.expected, name, style);
            assert_eq!(line.pop(), Some(b'\n'));
            assert_eq!(
                checksum::parse_line(&line, line_alg),
                Line::Entry(e.expected.clone(), e.name.clone()),
                "{style:?} line {:?}",
                String::from_utf8_lossy(&line)
            );
        }
        if let Some(p) = safe_relative(&e.name) {
            assert!(p.is_relative());
            assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
        }
    }
});
