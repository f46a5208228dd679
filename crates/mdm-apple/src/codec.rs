//! Plist codec: bounded decoding, a typed lenient reader over a dictionary,
//! and XML encoding of what the server sends.
//!
//! `plist::from_bytes` bounds neither nesting depth nor how far a binary plist
//! expands (one object may be referenced many times, so 1 KiB can expand to
//! gigabytes), and dropping a deeply nested `Value` recurses. So every device
//! plist is decoded here from the event stream, counting depth, values and
//! content bytes, and refused before a limit is crossed.

use std::io::Cursor;

use plist::stream::{Event, OwnedEvent, Reader};
use plist::{Dictionary, Value};

use crate::error::{BuildError, ParseError, ParseErrorKind};

/// Largest check-in or command report body accepted (1 MiB).
pub const MAX_BODY_LEN: usize = 1 << 20;
/// Deepest nesting of arrays and dictionaries accepted.
pub const MAX_DEPTH: usize = 32;
/// Most plist values (events) one body may expand to.
pub const MAX_VALUES: usize = 200_000;
/// Most string and data bytes one body may expand to.
pub const MAX_CONTENT_BYTES: usize = 4 * MAX_BODY_LEN;

/// Decodes an XML or binary plist within the limits above.
pub fn decode_plist(bytes: &[u8]) -> Result<Value, ParseErrorKind> {
    if bytes.len() > MAX_BODY_LEN {
        return Err(ParseErrorKind::TooLarge {
            len: bytes.len(),
            limit: MAX_BODY_LEN,
        });
    }
    let mut bounded = Bounded {
        inner: Reader::new(Cursor::new(bytes)),
        depth: 0,
        values: 0,
        content: 0,
        refused: None,
    };
    let built = Value::from_events(&mut bounded);
    if let Some(kind) = bounded.refused {
        return Err(kind);
    }
    built.map_err(|e| ParseErrorKind::Malformed(e.to_string()))
}

/// Decodes a plist whose root must be a dictionary; errors carry `bytes`.
pub(crate) fn decode_dict(bytes: &[u8]) -> Result<Dictionary, ParseError> {
    match decode_plist(bytes) {
        Ok(Value::Dictionary(d)) => Ok(d),
        Ok(other) => Err(ParseError::new(
            ParseErrorKind::NotADictionary {
                found: kind_name(&other),
            },
            bytes,
        )),
        Err(kind) => Err(ParseError::new(kind, bytes)),
    }
}

/// Serializes `value` as an XML plist (what devices are sent).
pub(crate) fn to_xml(value: &Value) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::new();
    value
        .to_writer_xml(&mut out)
        .map_err(|e| BuildError::Encode(e.to_string()))?;
    Ok(out)
}

/// Event adapter that stops the stream (and records why) at the first limit.
struct Bounded<I> {
    inner: I,
    depth: usize,
    values: usize,
    content: usize,
    refused: Option<ParseErrorKind>,
}

impl<I: Iterator<Item = Result<OwnedEvent, plist::Error>>> Iterator for Bounded<I> {
    type Item = Result<OwnedEvent, plist::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.refused.is_some() {
            return None;
        }
        let event = match self.inner.next()? {
            Ok(event) => event,
            Err(e) => return Some(Err(e)),
        };
        self.values += 1;
        match &event {
            Event::StartArray(_) | Event::StartDictionary(_) => self.depth += 1,
            Event::EndCollection => self.depth = self.depth.saturating_sub(1),
            Event::Data(d) => self.content += d.len(),
            Event::String(s) => self.content += s.len(),
            _ => {}
        }
        self.refused = if self.depth > MAX_DEPTH {
            Some(ParseErrorKind::TooDeep { limit: MAX_DEPTH })
        } else if self.values > MAX_VALUES {
            Some(ParseErrorKind::TooBig {
                what: "values",
                limit: MAX_VALUES,
            })
        } else if self.content > MAX_CONTENT_BYTES {
            Some(ParseErrorKind::TooBig {
                what: "content bytes",
                limit: MAX_CONTENT_BYTES,
            })
        } else {
            None
        };
        match self.refused {
            Some(_) => None,
            None => Some(Ok(event)),
        }
    }
}

/// The plist type name of a value, for error messages.
pub(crate) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::Dictionary(_) => "dict",
        Value::Boolean(_) => "bool",
        Value::Data(_) => "data",
        Value::Date(_) => "date",
        Value::Real(_) => "real",
        Value::Integer(_) => "integer",
        Value::String(_) => "string",
        Value::Uid(_) => "uid",
        _ => "unknown",
    }
}

/// Takes known keys out of a dictionary with their expected types; what is
/// left at the end is what the reader did not understand.
pub(crate) struct Fields {
    dict: Dictionary,
}

type FieldResult<T> = Result<T, ParseErrorKind>;

impl Fields {
    pub(crate) fn new(dict: Dictionary) -> Self {
        Self { dict }
    }

    fn take<T>(
        &mut self,
        key: &str,
        expected: &'static str,
        pick: impl FnOnce(Value) -> Result<T, Value>,
    ) -> FieldResult<Option<T>> {
        match self.dict.remove(key) {
            None => Ok(None),
            Some(v) => pick(v).map(Some).map_err(|v| ParseErrorKind::WrongType {
                key: key.to_owned(),
                expected,
                found: kind_name(&v),
            }),
        }
    }

    /// An optional string.
    pub(crate) fn string(&mut self, key: &str) -> FieldResult<Option<String>> {
        self.take(key, "string", |v| match v {
            Value::String(s) => Ok(s),
            other => Err(other),
        })
    }

    /// A required string.
    pub(crate) fn req_string(&mut self, key: &'static str) -> FieldResult<String> {
        self.string(key)?.ok_or(ParseErrorKind::MissingKey(key))
    }

    /// Optional data.
    pub(crate) fn data(&mut self, key: &str) -> FieldResult<Option<Vec<u8>>> {
        self.take(key, "data", |v| match v {
            Value::Data(d) => Ok(d),
            other => Err(other),
        })
    }

    /// Required data.
    pub(crate) fn req_data(&mut self, key: &'static str) -> FieldResult<Vec<u8>> {
        self.data(key)?.ok_or(ParseErrorKind::MissingKey(key))
    }

    /// An optional boolean.
    pub(crate) fn bool(&mut self, key: &str) -> FieldResult<Option<bool>> {
        self.take(key, "bool", |v| match v {
            Value::Boolean(b) => Ok(b),
            other => Err(other),
        })
    }

    /// An optional array.
    pub(crate) fn array(&mut self, key: &str) -> FieldResult<Option<Vec<Value>>> {
        self.take(key, "array", |v| match v {
            Value::Array(a) => Ok(a),
            other => Err(other),
        })
    }

    /// An optional dictionary.
    pub(crate) fn dict(&mut self, key: &str) -> FieldResult<Option<Dictionary>> {
        self.take(key, "dict", |v| match v {
            Value::Dictionary(d) => Ok(d),
            other => Err(other),
        })
    }

    /// The keys nobody took, in document order.
    pub(crate) fn leftover_keys(&self) -> Vec<String> {
        self.dict.keys().cloned().collect()
    }

    /// The dictionary of untaken keys.
    pub(crate) fn into_rest(self) -> Dictionary {
        self.dict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_limit_is_exact() {
        let nest = |n: usize| {
            format!(
                "<plist><dict><key>k</key>{}<true/>{}</dict></plist>",
                "<array>".repeat(n),
                "</array>".repeat(n)
            )
        };
        assert!(decode_plist(nest(MAX_DEPTH - 1).as_bytes()).is_ok());
        assert_eq!(
            decode_plist(nest(MAX_DEPTH).as_bytes()),
            Err(ParseErrorKind::TooDeep { limit: MAX_DEPTH })
        );
    }

    #[test]
    fn wrong_type_names_key_and_types() {
        let mut d = Dictionary::new();
        d.insert("UDID".into(), Value::Boolean(true));
        let mut f = Fields::new(d);
        assert_eq!(
            f.string("UDID"),
            Err(ParseErrorKind::WrongType {
                key: "UDID".into(),
                expected: "string",
                found: "bool"
            })
        );
    }
}
