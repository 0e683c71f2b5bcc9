//! Reading the `name: value` lines of pkgsign's own signed text files
//! (signature files and key statements): fields in a fixed order, one per
//! line, each value in one canonical spelling, so that exactly one text
//! parses to a given content. Errors carry the 1-based line number.

use base64::Engine as _;

use crate::keys::Fingerprint;
use crate::text::{is_displayable, parse_time};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A parse failure: the line (when known) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The 1-based line to blame, when one is.
    pub(crate) line: Option<usize>,
    /// What is wrong.
    pub(crate) reason: String,
}

impl FieldError {
    /// A failure at `line` (or of the whole text, for `None`).
    pub(crate) fn new(line: Option<usize>, reason: impl Into<String>) -> Self {
        FieldError {
            line,
            reason: reason.into(),
        }
    }
}

/// The result of reading a field.
pub(crate) type FieldResult<T> = std::result::Result<T, FieldError>;

/// The lines of a text whose final newline has been removed.
pub(crate) struct Fields<'a> {
    lines: std::iter::Peekable<std::iter::Enumerate<std::str::Split<'a, char>>>,
}

/// Printable start of untrusted text, for error messages.
pub(crate) fn shown(s: &str) -> String {
    s.chars()
        .take(40)
        .map(|c| if is_displayable(c) { c } else { '?' })
        .collect()
}

impl<'a> Fields<'a> {
    /// The lines of `body` (the text without its final newline).
    pub(crate) fn new(body: &'a str) -> Self {
        Fields {
            lines: body.split('\n').enumerate().peekable(),
        }
    }

    /// Whether any line is left.
    pub(crate) fn has_more(&mut self) -> bool {
        self.lines.peek().is_some()
    }

    /// The number of the next line (0 when none is left).
    pub(crate) fn next_line_number(&mut self) -> usize {
        self.lines.peek().map_or(0, |(i, _)| i + 1)
    }

    /// The next line, whatever it holds; `expected` names what should be
    /// there, for the error when the text ends.
    pub(crate) fn line(&mut self, expected: &str) -> FieldResult<(usize, &'a str)> {
        self.lines
            .next()
            .map(|(i, l)| (i + 1, l))
            .ok_or(FieldError::new(
                None,
                format!("the file ends where {expected} was expected (truncated?)"),
            ))
    }

    /// The value of the next line, which must be the field `name` with a
    /// non-empty value.
    pub(crate) fn next(&mut self, name: &str) -> FieldResult<(usize, &'a str)> {
        let (n, line) = self.line(&format!("field {name:?}"))?;
        match line.split_once(": ") {
            Some((k, v)) if k == name && !v.is_empty() => Ok((n, v)),
            Some((k, _)) if k == name => {
                Err(FieldError::new(Some(n), format!("field {name:?} is empty")))
            }
            Some((k, _)) => Err(FieldError::new(
                Some(n),
                format!("expected field {name:?}, found {:?}", shown(k)),
            )),
            None => Err(FieldError::new(
                Some(n),
                format!("expected \"{name}: VALUE\", found {:?}", shown(line)),
            )),
        }
    }

    /// The field `name` if the next line is that field.
    pub(crate) fn optional(&mut self, name: &str) -> FieldResult<Option<(usize, &'a str)>> {
        let is_it = self
            .lines
            .peek()
            .is_some_and(|(_, l)| l.split_once(": ").is_some_and(|(k, _)| k == name));
        if is_it {
            self.next(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An RFC 3339 UTC time such as `2026-12-01T00:00:00Z`.
    pub(crate) fn time(&mut self, name: &str) -> FieldResult<u64> {
        let (n, v) = self.next(name)?;
        time_value(name, n, v)
    }

    /// [`Fields::time`], if the next line is that field.
    pub(crate) fn optional_time(&mut self, name: &str) -> FieldResult<Option<u64>> {
        self.optional(name)?
            .map(|(n, v)| time_value(name, n, v))
            .transpose()
    }

    /// A key fingerprint, `SHA256:` and unpadded base64.
    pub(crate) fn fingerprint(&mut self, name: &str) -> FieldResult<Fingerprint> {
        let (n, v) = self.next(name)?;
        v.parse()
            .map_err(|e: crate::keys::FingerprintError| FieldError::new(Some(n), e.to_string()))
    }

    /// Canonical standard base64 (padded, no line breaks, zero trailing
    /// bits) of at most `max` bytes.
    pub(crate) fn base64(&mut self, name: &str, max: usize) -> FieldResult<(usize, Vec<u8>)> {
        let (n, v) = self.next(name)?;
        match B64.decode(v) {
            Ok(b) if b.len() <= max && B64.encode(&b) == v => Ok((n, b)),
            Ok(_) | Err(_) => Err(FieldError::new(
                Some(n),
                format!("{name} is not canonical base64"),
            )),
        }
    }
}

fn time_value(name: &str, n: usize, v: &str) -> FieldResult<u64> {
    parse_time(v).ok_or(FieldError::new(
        Some(n),
        format!("{name} must be an RFC 3339 UTC time like 2026-12-01T00:00:00Z"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_in_order_with_line_numbers() {
        let mut f = Fields::new("kind: x\nwhen: 2026-12-01T00:00:00Z\nsig: AAEC\nextra");
        assert_eq!(f.next("kind").unwrap(), (1, "x"));
        assert_eq!(f.optional("comment").unwrap(), None);
        assert!(f.optional_time("when").unwrap().is_some());
        assert_eq!(f.base64("sig", 3).unwrap(), (3, vec![0, 1, 2]));
        assert_eq!(f.next_line_number(), 4);
        assert!(f.has_more());
        assert_eq!(f.next("more").unwrap_err().line, Some(4));
        assert!(!f.has_more());
        assert_eq!(f.next("more").unwrap_err().line, None);
    }

    #[test]
    fn values_are_strict() {
        assert!(Fields::new("k: ").next("k").is_err());
        assert!(Fields::new("k:v").next("k").is_err());
        assert!(Fields::new("other: v").next("k").is_err());
        assert!(Fields::new("t: 2026-12-01 00:00:00").time("t").is_err());
        // Too long, non-canonical trailing bits, missing padding.
        assert!(Fields::new("s: AAEC").base64("s", 2).is_err());
        assert!(Fields::new("s: AAF=").base64("s", 9).is_err());
        assert!(Fields::new("s: AAE").base64("s", 9).is_err());
        assert!(Fields::new("f: SHA256:nope").fingerprint("f").is_err());
    }
}
