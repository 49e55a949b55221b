//! JSON pointers (RFC 6901) and selecting a part of a JSON document by one
//! without re-encoding it: the selected part keeps its exact text (number
//! precision, key order, escapes), which matters when it becomes an event's
//! `data`, sent to receivers byte for byte.

use crate::ids::truncate_for_message;
use crate::ValidationError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::fmt;

/// Longest pointer accepted.
pub const MAX_POINTER_LEN: usize = 200;
/// Most reference tokens in one pointer.
pub const MAX_POINTER_TOKENS: usize = 32;

/// A JSON pointer: `""` (the whole document) or `/a/b/0`, with `~1` for
/// `/` and `~0` for `~` inside a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonPointer {
    text: String,
    tokens: Vec<String>,
}

impl JsonPointer {
    /// The pointer to the whole document.
    pub fn root() -> Self {
        Self {
            text: String::new(),
            tokens: Vec::new(),
        }
    }

    /// # Errors
    /// A [`ValidationError`] on `field` when `s` is not a pointer.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Ok(Self::root());
        }
        let shown = truncate_for_message(s);
        if s.len() > MAX_POINTER_LEN {
            return Err(ValidationError::new(
                field,
                format!("a JSON pointer must be at most {MAX_POINTER_LEN} characters"),
            ));
        }
        let Some(rest) = s.strip_prefix('/') else {
            return Err(ValidationError::new(
                field,
                format!("'{shown}' is not a JSON pointer (it must start with '/', as in /data)"),
            ));
        };
        if s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                "a JSON pointer must not contain control characters",
            ));
        }
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            tokens.push(unescape(raw).ok_or_else(|| {
                ValidationError::new(
                    field,
                    format!("'{shown}' has a '~' not followed by 0 or 1 (write ~0 for '~' and ~1 for '/')"),
                )
            })?);
        }
        if tokens.len() > MAX_POINTER_TOKENS {
            return Err(ValidationError::new(
                field,
                format!("a JSON pointer may have at most {MAX_POINTER_TOKENS} parts"),
            ));
        }
        Ok(Self {
            text: s.to_string(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_root(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The part of `document` (JSON text) this pointer names, as its exact
    /// text; `None` when the document has no such part.
    pub fn select<'a>(&self, document: &'a str) -> Option<&'a RawValue> {
        let mut current: &'a RawValue = serde_json::from_str(document).ok()?;
        for token in &self.tokens {
            let text = current.get();
            current = match text.trim_start().as_bytes().first() {
                Some(b'{') => {
                    let map: HashMap<String, &'a RawValue> = serde_json::from_str(text).ok()?;
                    map.get(token.as_str()).copied()?
                }
                Some(b'[') => {
                    let items: Vec<&'a RawValue> = serde_json::from_str(text).ok()?;
                    items.get(array_index(token)?).copied()?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    /// The string this pointer names in `document`, if it names a string.
    pub fn select_string(&self, document: &str) -> Option<String> {
        self.select(document)
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    }
}

fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An array index token: `0` or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return None;
    }
    token.parse().ok()
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for JsonPointer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s, "pointer").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> JsonPointer {
        JsonPointer::parse(s, "f").unwrap()
    }

    #[test]
    fn parses_and_refuses() {
        assert!(p("").is_root());
        assert_eq!(p("/a~1b/c~0d").tokens, vec!["a/b", "c~d"]);
        assert!(JsonPointer::parse("event", "f").is_err());
        assert!(JsonPointer::parse("/a~2", "f").is_err());
        assert!(JsonPointer::parse(&format!("/{}", "a/".repeat(40)), "f").is_err());
    }

    #[test]
    fn selects_exact_text() {
        let doc = r#"{"event": "salesOrder.updated", "data": {"big": 12345678901234567890123, "x":[1, {"y": "z"}]}, "a/b": 1}"#;
        assert_eq!(
            p("/data").select(doc).unwrap().get(),
            r#"{"big": 12345678901234567890123, "x":[1, {"y": "z"}]}"#
        );
        assert_eq!(
            p("/event").select_string(doc).as_deref(),
            Some("salesOrder.updated")
        );
        assert_eq!(p("/data/x/1/y").select_string(doc).as_deref(), Some("z"));
        assert_eq!(p("/a~1b").select(doc).unwrap().get(), "1");
        assert!(p("/data/x/01").select(doc).is_none());
        assert!(p("/data/x/9").select(doc).is_none());
        assert!(p("/missing").select(doc).is_none());
        assert!(p("/event/0").select(doc).is_none());
        assert!(p("/data").select_string(doc).is_none());
        assert_eq!(p("").select(doc).unwrap().get(), doc);
    }
}
