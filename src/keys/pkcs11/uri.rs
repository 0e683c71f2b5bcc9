//! PKCS#11 URIs (RFC 7512): `pkcs11:token=release;object=signing-key`,
//! with `?pin-source=FILE` and `?module-path=PATH` as query attributes.
//! Parsed strictly: an attribute pkgsign does not know is refused rather
//! than ignored (it might have narrowed the match), and `pin-value` is
//! refused outright: a PIN in a URI ends up in argv and shell history.

use std::path::PathBuf;

use crate::error::{Result, TokenError};

/// The largest URI accepted.
const MAX_LEN: usize = 4096;

/// A parsed `pkcs11:` URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The token's label (`token=`).
    pub token: Option<String>,
    /// The token's serial number (`serial=`).
    pub serial: Option<String>,
    /// The token's manufacturer (`manufacturer=`).
    pub manufacturer: Option<String>,
    /// The token's model (`model=`).
    pub model: Option<String>,
    /// The object's label (`object=`).
    pub object: Option<String>,
    /// The object's CKA_ID (`id=`, percent-encoded bytes).
    pub id: Option<Vec<u8>>,
    /// `type=`: only `private` (or absent) names a signing key.
    pub kind: Option<String>,
    /// `slot-id=`.
    pub slot_id: Option<u64>,
    /// `?pin-source=`: a file holding the PIN (a path or a `file:` URI).
    pub pin_source: Option<PathBuf>,
    /// `?module-path=`: the PKCS#11 module.
    pub module_path: Option<PathBuf>,
    /// The URI as given, for messages.
    pub text: String,
}

fn bad(uri: &str, reason: impl Into<String>) -> crate::error::Error {
    TokenError::Uri {
        uri: redact(uri),
        reason: reason.into(),
    }
    .into()
}

/// `uri` with the value of any `pin-value=` cut out: a message never
/// repeats a PIN.
fn redact(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(i) = rest.find("pin-value=") {
        let (head, tail) = rest.split_at(i + "pin-value=".len());
        out.push_str(head);
        out.push_str("(redacted)");
        rest = tail
            .find(['&', ';'])
            .map_or("", |j| tail.get(j..).unwrap_or(""));
    }
    out.push_str(rest);
    out
}

/// Percent-decode `s` (RFC 3986): bytes.
fn decode(uri: &str, s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next();
            let lo = bytes.next();
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(bad(uri, "a % is not followed by two hex digits"));
            };
            let mut one = [0u8; 1];
            hex::decode_to_slice([hi, lo], &mut one)
                .map_err(|_| bad(uri, "a % is not followed by two hex digits"))?;
            out.extend_from_slice(&one);
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

fn text(uri: &str, name: &str, value: &str) -> Result<String> {
    let v = decode(uri, value)?;
    let s = String::from_utf8(v).map_err(|_| bad(uri, format!("{name} is not UTF-8")))?;
    if s.chars().any(char::is_control) {
        return Err(bad(uri, format!("{name} holds a control character")));
    }
    Ok(s)
}

impl Pkcs11Uri {
    /// Whether `s` is meant as a PKCS#11 URI (rather than a file name).
    pub fn is_uri(s: &str) -> bool {
        s.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("pkcs11:"))
    }

    /// Parse `s`.
    pub fn parse(s: &str) -> Result<Pkcs11Uri> {
        if s.len() > MAX_LEN {
            return Err(bad("pkcs11:...", "longer than any PKCS#11 URI"));
        }
        if !Self::is_uri(s) {
            return Err(bad(s, "a PKCS#11 URI starts with pkcs11:"));
        }
        let rest = s.get(7..).unwrap_or_default();
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri {
            text: s.to_string(),
            ..Pkcs11Uri::default()
        };
        let once = |have: bool, name: &str| -> Result<()> {
            if have {
                Err(bad(s, format!("{name} is given twice")))
            } else {
                Ok(())
            }
        };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(s, format!("{attr:?} is not NAME=VALUE")))?;
            match name {
                "token" => {
                    once(uri.token.is_some(), name)?;
                    uri.token = Some(text(s, name, value)?);
                }
                "serial" => {
                    once(uri.serial.is_some(), name)?;
                    uri.serial = Some(text(s, name, value)?);
                }
                "manufacturer" => {
                    once(uri.manufacturer.is_some(), name)?;
                    uri.manufacturer = Some(text(s, name, value)?);
                }
                "model" => {
                    once(uri.model.is_some(), name)?;
                    uri.model = Some(text(s, name, value)?);
                }
                "object" => {
                    once(uri.object.is_some(), name)?;
                    uri.object = Some(text(s, name, value)?);
                }
                "id" => {
                    once(uri.id.is_some(), name)?;
                    uri.id = Some(decode(s, value)?);
                }
                "type" => {
                    once(uri.kind.is_some(), name)?;
                    let t = text(s, name, value)?;
                    if t != "private" && t != "public" {
                        return Err(bad(s, format!("type={t}: a signing key is type=private")));
                    }
                    uri.kind = Some(t);
                }
                "slot-id" => {
                    once(uri.slot_id.is_some(), name)?;
                    uri.slot_id = Some(
                        text(s, name, value)?
                            .parse()
                            .map_err(|_| bad(s, "slot-id is a decimal number"))?,
                    );
                }
                "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {
                    // Informational; matching on them is not supported.
                    return Err(bad(
                        s,
                        format!("{name}= is not supported: name the token with token= or serial="),
                    ));
                }
                other => {
                    return Err(bad(s, format!("unknown attribute {other:?}")));
                }
            }
        }
        for attr in query.unwrap_or("").split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(s, format!("{attr:?} is not NAME=VALUE")))?;
            match name {
                "pin-source" => {
                    once(uri.pin_source.is_some(), name)?;
                    let v = text(s, name, value)?;
                    let path = v.strip_prefix("file:").unwrap_or(&v);
                    let path = path.strip_prefix("//").unwrap_or(path);
                    if path.is_empty() {
                        return Err(bad(s, "pin-source names no file"));
                    }
                    uri.pin_source = Some(PathBuf::from(path));
                }
                "module-path" => {
                    once(uri.module_path.is_some(), name)?;
                    uri.module_path = Some(PathBuf::from(text(s, name, value)?));
                }
                "pin-value" => {
                    return Err(bad(
                        s,
                        "pin-value is refused: a PIN in a URI ends up in argv and shell history; use pin-source=FILE, --pin-file or PKGSIGN_PKCS11_PIN",
                    ));
                }
                "module-name" => {
                    return Err(bad(s, "module-name is not supported: use module-path"));
                }
                other => {
                    return Err(bad(s, format!("unknown query attribute {other:?}")));
                }
            }
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(bad(s, "name the key with object=LABEL (or id=)"));
        }
        // The canonical text (what key-rotate writes for the next key) must
        // be readable too: percent-encoding may make it longer than `s`.
        if uri.to_text().len() > MAX_LEN {
            return Err(bad(
                "pkcs11:...",
                "longer than any PKCS#11 URI once written out",
            ));
        }
        Ok(uri)
    }
}

/// Percent-encode `bytes` for a URI attribute value: unreserved
/// characters as they are, everything else `%XX`.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Pkcs11Uri {
    /// The same token and query, naming the object `label` (and no id):
    /// where `key-rotate` makes the next key.
    pub fn with_object(&self, label: &str) -> Pkcs11Uri {
        let mut u = Pkcs11Uri {
            object: Some(label.to_string()),
            id: None,
            ..self.clone()
        };
        u.text = u.to_text();
        u
    }

    /// The URI's canonical text.
    pub fn to_text(&self) -> String {
        let mut path = Vec::new();
        let mut push = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                path.push(format!("{name}={}", encode(v.as_bytes())));
            }
        };
        push("token", &self.token);
        push("serial", &self.serial);
        push("manufacturer", &self.manufacturer);
        push("model", &self.model);
        push("object", &self.object);
        push("type", &self.kind);
        if let Some(id) = &self.id {
            path.push(format!("id={}", encode(id)));
        }
        if let Some(slot) = self.slot_id {
            path.push(format!("slot-id={slot}"));
        }
        let mut query = Vec::new();
        if let Some(p) = &self.pin_source {
            // Always as a file URI, `file://` then the path, so that a path
            // that itself begins with `file:` or `//` reads back as itself
            // (the reader strips one `file:` and one `//`).
            query.push(format!(
                "pin-source=file://{}",
                encode(p.to_string_lossy().as_bytes())
            ));
        }
        if let Some(p) = &self.module_path {
            query.push(format!(
                "module-path={}",
                encode(p.to_string_lossy().as_bytes())
            ));
        }
        let mut text = format!("pkcs11:{}", path.join(";"));
        if !query.is_empty() {
            text.push('?');
            text.push_str(&query.join("&"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_examples_parse() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=Software%20PKCS%2311%20softtoken;object=my-key;id=%01%02;type=private?pin-source=file:/etc/token-pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("Software PKCS#11 softtoken"));
        assert_eq!(u.object.as_deref(), Some("my-key"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(u.pin_source, Some(PathBuf::from("/etc/token-pin")));
        assert_eq!(
            u.module_path,
            Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert!(Pkcs11Uri::is_uri("PKCS11:object=a"));
        assert!(!Pkcs11Uri::is_uri("keys/pkcs11.pem"));
    }

    #[test]
    fn what_could_widen_or_leak_is_refused() {
        for (uri, want) in [
            ("pkcs11:token=a;object=k?pin-value=1234", "pin-value"),
            ("pkcs11:token=a", "object="),
            ("pkcs11:token=a;objct=k", "unknown attribute"),
            ("pkcs11:object=k;object=j", "twice"),
            ("pkcs11:object=k%2", "hex"),
            ("pkcs11:object=k%0a", "control"),
            ("pkcs11:object=k;type=secret-key", "type=private"),
            ("pkcs11:object=k?pin-source=", "no file"),
            ("file:object=k", "starts with"),
        ] {
            let e = Pkcs11Uri::parse(uri).unwrap_err().to_string();
            assert!(e.contains(want), "{uri}: {e}");
            assert!(!e.contains("1234"), "{uri}: {e}");
        }
    }

    #[test]
    fn a_uri_written_back_parses_to_itself() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=My%20HSM;object=k%3B1;id=%00%FF?pin-source=/etc/pin%20file&module-path=/usr/lib/m.so",
        )
        .unwrap();
        let again = Pkcs11Uri::parse(&u.to_text()).unwrap();
        assert_eq!(
            Pkcs11Uri {
                text: String::new(),
                ..again
            },
            Pkcs11Uri {
                text: String::new(),
                ..u.clone()
            }
        );
        let next = u.with_object("signing-key-20270101T000000Z");
        assert_eq!(next.object.as_deref(), Some("signing-key-20270101T000000Z"));
        assert_eq!(next.id, None);
        assert_eq!(next.token.as_deref(), Some("My HSM"));
        assert_eq!(Pkcs11Uri::parse(&next.text).unwrap(), next);
    }
}
