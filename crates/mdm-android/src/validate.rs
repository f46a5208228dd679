//! Field checks shared by the message types. Each returns the
//! [`ValidationError`] that names the field.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::ValidationError;

/// A required text: not empty, at most `max` bytes, no control characters.
pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if value.len() > max {
        return Err(ValidationError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::BadFormat {
            field,
            reason: "must not contain control characters",
        });
    }
    Ok(())
}

/// An optional text: when present, as [`text`].
pub(crate) fn opt_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<(), ValidationError> {
    value.map_or(Ok(()), |v| text(field, v, max))
}

/// A token-like text: 1..=`max` bytes, every byte accepted by `allowed`.
pub(crate) fn token(
    field: &'static str,
    value: &str,
    max: usize,
    allowed: fn(u8) -> bool,
    reason: &'static str,
) -> Result<(), ValidationError> {
    text(field, value, max)?;
    if value.bytes().all(allowed) {
        Ok(())
    } else {
        Err(ValidationError::BadFormat { field, reason })
    }
}

/// Printable ASCII without spaces (serials, opaque identifiers).
pub(crate) fn is_visible_ascii(b: u8) -> bool {
    b.is_ascii_graphic()
}

/// RFC 3986 unreserved characters: what survives a URL, a QR code and a
/// PersistableBundle unchanged.
pub(crate) fn is_url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// At most `max` entries.
pub(crate) fn count(field: &'static str, len: usize, max: usize) -> Result<(), ValidationError> {
    if len > max {
        return Err(ValidationError::TooMany {
            field,
            count: len,
            max,
        });
    }
    Ok(())
}

/// `value` within `min..=max`.
pub(crate) fn range(
    field: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<(), ValidationError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

/// Decodes standard, padded base64 of at most `max_decoded` bytes.
/// No whitespace is tolerated: these fields are written by our own code.
pub(crate) fn base64_bytes(
    field: &'static str,
    value: &str,
    max_decoded: usize,
) -> Result<Vec<u8>, ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    let max_encoded = max_decoded.div_ceil(3) * 4;
    if value.len() > max_encoded {
        return Err(ValidationError::TooLong {
            field,
            len: value.len(),
            max: max_encoded,
        });
    }
    STANDARD
        .decode(value)
        .map_err(|_| ValidationError::BadBase64 { field })
}

/// Encodes bytes as standard, padded base64.
pub(crate) fn to_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// An Android security patch level: `YYYY-MM-DD`, a real calendar date.
pub(crate) fn patch_level(field: &'static str, value: &str) -> Result<(), ValidationError> {
    let bad = ValidationError::BadFormat {
        field,
        reason: "expected a date YYYY-MM-DD",
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if value.len() != 10 {
        return Err(bad);
    }
    time::Date::parse(value, &format)
        .map(|_| ())
        .map_err(|_| bad)
}

/// A Java package name: dot-separated segments of letters, digits and `_`,
/// each starting with a letter; at least two segments.
pub(crate) fn package_name(field: &'static str, value: &str) -> Result<(), ValidationError> {
    text(field, value, 255)?;
    let segment_ok = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if value.split('.').count() >= 2 && value.split('.').all(segment_ok) {
        Ok(())
    } else {
        Err(ValidationError::BadFormat {
            field,
            reason: "expected a Java package name such as com.example.app",
        })
    }
}

/// An absolute URL: `https://`, or `http://` to a loopback host (tests).
pub(crate) fn url(field: &'static str, value: &str) -> Result<(), ValidationError> {
    text(field, value, 2048)?;
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            value
                .strip_prefix(p)
                .is_some_and(|r| r.is_empty() || r.starts_with([':', '/']))
        });
    let https = value
        .strip_prefix("https://")
        .is_some_and(|r| !r.is_empty());
    if (https || loopback) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(ValidationError::BadFormat {
            field,
            reason: "expected an https:// URL (http:// only to a loopback host)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert!(text("f", "ok", 2).is_ok());
        assert_eq!(text("f", "", 2), Err(ValidationError::Empty { field: "f" }));
        assert!(matches!(
            text("f", "abc", 2),
            Err(ValidationError::TooLong { len: 3, max: 2, .. })
        ));
        assert!(matches!(
            text("f", "a\nb", 9),
            Err(ValidationError::BadFormat { .. })
        ));
    }

    #[test]
    fn base64_rules() {
        assert_eq!(base64_bytes("f", "AAEC", 3).unwrap(), vec![0, 1, 2]);
        assert!(matches!(
            base64_bytes("f", "AAECAw==", 3),
            Err(ValidationError::TooLong { .. })
        ));
        assert_eq!(
            base64_bytes("f", "AA EC", 9),
            Err(ValidationError::BadBase64 { field: "f" })
        );
        assert_eq!(
            base64_bytes("f", "AAE", 9),
            Err(ValidationError::BadBase64 { field: "f" })
        );
    }

    #[test]
    fn patch_levels() {
        assert!(patch_level("p", "2024-05-01").is_ok());
        assert!(patch_level("p", "2024-02-30").is_err());
        assert!(patch_level("p", "2024-5-1").is_err());
        assert!(patch_level("p", "May 2024").is_err());
    }

    #[test]
    fn urls() {
        for ok in [
            "https://mdm.example.com",
            "https://mdm.example.com:8443/x?y=1",
            "http://127.0.0.1:8080",
            "http://localhost/x",
            "http://[::1]:9",
        ] {
            assert!(url("u", ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://",
            "http://mdm.example.com",
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com/",
            "ftp://x",
            "https://a b",
        ] {
            assert!(url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn package_names() {
        assert!(package_name("p", "com.example.agent").is_ok());
        assert!(package_name("p", "com.example.agent_2").is_ok());
        assert!(package_name("p", "example").is_err());
        assert!(package_name("p", "com..example").is_err());
        assert!(package_name("p", "com.1example").is_err());
    }
}
