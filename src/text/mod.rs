//! The text rules shared by every signed file: times in RFC 3339 UTC with
//! whole seconds, and comments that show exactly what was signed.
//! [`fields`] reads the `name: value` lines of pkgsign's own formats.
#![forbid(unsafe_code)]

use std::time::{Duration, UNIX_EPOCH};

pub(crate) mod fields;

/// Longest comment, in bytes.
pub const COMMENT_MAX: usize = 1024;

/// 9999-12-31T23:59:59Z, the last time RFC 3339 can write.
pub const MAX_TIME: u64 = 253_402_300_799;

/// RFC 3339 UTC with whole seconds, e.g. `2026-12-01T00:00:00Z`.
pub fn format_time(secs: u64) -> String {
    // RFC 3339 has four-digit years; later times are shown as the last second
    // of 9999 (humantime would panic).
    let secs = secs.min(MAX_TIME);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Parse exactly the form [`format_time`] writes.
pub fn parse_time(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(s).ok()?;
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (format_time(secs) == s).then_some(secs)
}

/// Check that a comment is fit to be signed and shown: at most
/// [`COMMENT_MAX`] bytes, not empty, no leading or trailing space, and only
/// characters that display (see [`is_displayable`]), with every combining
/// mark after a base character it can combine with.
pub fn check_comment(c: &str) -> std::result::Result<(), String> {
    if c.is_empty() {
        return Err("the comment is empty".into());
    }
    if c.len() > COMMENT_MAX {
        return Err(format!("the comment is longer than {COMMENT_MAX} bytes"));
    }
    if c.trim() != c {
        return Err("the comment starts or ends with white space".into());
    }
    if let Some(bad) = c.chars().find(|ch| !is_displayable(*ch)) {
        return Err(format!(
            "the comment contains U+{:04X}, a character that does not display (control, format, private-use, unassigned, separator or blank character)",
            bad as u32
        ));
    }
    // A mark with no base would combine with what is shown before the
    // comment (the space after "comment:") or with a space.
    let mut prev: Option<char> = None;
    for ch in c.chars() {
        if is_mark(ch) && prev.is_none_or(|p| p == ' ') {
            return Err(format!(
                "the comment has the combining mark U+{:04X} with no character before it to combine with",
                ch as u32
            ));
        }
        prev = Some(ch);
    }
    Ok(())
}

/// Whether `c` shows as something a reader can see: a letter, mark, number,
/// punctuation or symbol (Unicode general categories L*, M*, N*, P*, S*), or
/// the ASCII space; minus the few of those that render blank or invisible
/// ([`BLANK_BUT_GRAPHIC`]). Refused: controls (Cc), format characters (Cf:
/// zero-width, bidirectional controls, soft hyphen, tags U+E0000..E007F,
/// ...), private use (Co), surrogates (Cs), unassigned code points (Cn),
/// line and paragraph separators (Zl, Zp) and every space but U+0020 (Zs).
pub(crate) fn is_displayable(c: char) -> bool {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    if c == ' ' {
        return true;
    }
    if BLANK_BUT_GRAPHIC.contains(&c) || is_variation_selector(c) {
        return false;
    }
    match get_general_category(c) {
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter
        | G::NonspacingMark
        | G::SpacingMark
        | G::EnclosingMark
        | G::DecimalNumber
        | G::LetterNumber
        | G::OtherNumber
        | G::ConnectorPunctuation
        | G::DashPunctuation
        | G::OpenPunctuation
        | G::ClosePunctuation
        | G::InitialPunctuation
        | G::FinalPunctuation
        | G::OtherPunctuation
        | G::MathSymbol
        | G::CurrencySymbol
        | G::ModifierSymbol
        | G::OtherSymbol => true,
        // Control, Format, PrivateUse, Surrogate, Unassigned, the
        // separators, and any category a later version of the crate adds.
        _ => false,
    }
}

/// Characters of the displayable categories that nonetheless render as
/// nothing, or as blank space, so they could hide a difference between two
/// comments that look the same.
const BLANK_BUT_GRAPHIC: &[char] = &[
    '\u{115F}', // HANGUL CHOSEONG FILLER (Lo): renders blank
    '\u{1160}', // HANGUL JUNGSEONG FILLER (Lo): renders blank
    '\u{3164}', // HANGUL FILLER (Lo): renders blank
    '\u{FFA0}', // HALFWIDTH HANGUL FILLER (Lo): renders blank
    '\u{2800}', // BRAILLE PATTERN BLANK (So): renders blank
    '\u{034F}', // COMBINING GRAPHEME JOINER (Mn): invisible
    '\u{17B4}', // KHMER VOWEL INHERENT AQ (Mn): invisible
    '\u{17B5}', // KHMER VOWEL INHERENT AA (Mn): invisible
    '\u{180B}', // MONGOLIAN FREE VARIATION SELECTOR ONE (Mn): invisible
    '\u{180C}', // MONGOLIAN FREE VARIATION SELECTOR TWO (Mn): invisible
    '\u{180D}', // MONGOLIAN FREE VARIATION SELECTOR THREE (Mn): invisible
    '\u{180F}', // MONGOLIAN FREE VARIATION SELECTOR FOUR (Mn): invisible
];

/// Variation selectors (Mn, invisible): U+FE00..FE0F and U+E0100..E01EF.
fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Whether `c` is a combining mark (Mn, Mc, Me).
fn is_mark(c: char) -> bool {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    matches!(
        get_general_category(c),
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark
    )
}

/// Parse a duration like `30d`, `12h`, `90m`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    const CENTURY: u64 = 100 * 365 * 86_400;
    let secs = humantime::parse_duration(s)
        .map(|d| d.as_secs())
        .map_err(|e| format!("{e}; write durations like 30d, 12h or 90m"))?;
    if secs > CENTURY {
        return Err(format!(
            "{s}: longer than 100 years; write durations like 30d, 12h or 90m"
        ));
    }
    Ok(secs)
}

/// Parse a size like `512M`, `8G` or `1048576` (bytes; K, M, G, T are
/// powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "{s:?}: write a size like 512M, 8G or a number of bytes"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?}: write a size like 512M, 8G or a number of bytes"))
}
