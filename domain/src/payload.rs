//! What a published event's `data` must be: a JSON object that every
//! receiver reads the same way. The bytes are sent as given, so anything a
//! JSON library could read differently (or refuse) is refused at publish
//! time instead: duplicate keys (which one wins depends on the library),
//! numbers out of range (`1e999`), lone UTF-16 surrogates, nesting deeper
//! than [`MAX_DEPTH`].

use crate::ValidationError;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Objects and arrays nested deeper than this are refused.
pub const MAX_DEPTH: usize = 64;

/// Checks that `raw` is a JSON object as described in the module docs.
///
/// # Errors
/// A [`ValidationError`] on `field` that says what is wrong.
pub fn check_object(field: &str, raw: &str) -> Result<(), ValidationError> {
    if !raw.trim_start().starts_with('{') {
        return Err(ValidationError::new(field, "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    Strict { depth: 0 }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| ValidationError::new(field, reason(&e)))
}

fn reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    // serde_json appends " at line L column C"; keep it, it helps locate
    // the problem in a large object.
    if text.starts_with("recursion limit exceeded") {
        format!("nests objects and arrays deeper than {MAX_DEPTH} levels")
    } else if text.contains("surrogate") || text.contains("hex escape") {
        format!("is not portable JSON: a \\u escape is not a character (a lone UTF-16 surrogate such as \\ud800 without its pair?): {text}")
    } else {
        format!("is not portable JSON: {text}")
    }
}

struct Strict {
    depth: usize,
}

impl Strict {
    fn nested<E: serde::de::Error>(&self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "nests objects and arrays deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(Self {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self.nested()?)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                let name: String = key.chars().take(100).collect();
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {name:?} in one object"
                )));
            }
            keys.insert(key);
            map.next_value_seed(self.nested()?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> String {
        match check_object("data", raw) {
            Ok(()) => panic!("accepted {raw}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn ordinary_objects_pass() {
        for raw in [
            r#"{}"#,
            r#" {"a": 1, "b": [true, null, 1.5, -3, "x"], "c": {"a": 1}}"#,
            r#"{"big": 12345678901234567890123, "e": "\ud83d\ude00 \u00e9"}"#,
            &format!(
                "{}{}",
                "{\"a\":".repeat(63),
                "{}".to_string() + &"}".repeat(63)
            ),
        ] {
            check_object("data", raw).unwrap();
        }
    }

    #[test]
    fn what_receivers_could_read_differently_is_refused() {
        assert!(refused(r#"[1, 2]"#).contains("must be a JSON object"));
        assert!(refused(r#"{"a": 1, "a": 2}"#).contains("duplicate key"));
        assert!(refused(r#"{"n": 1e999}"#).contains("number out of range"));
        let lone = refused(r#"{"s": "\ud800"}"#);
        assert!(lone.contains("is not portable JSON"), "{lone}");
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(refused(&deep).contains("deeper than 64"));
        let very_deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(refused(&very_deep).contains("deeper than 64"));
        assert!(refused(r#"{"a": 1} x"#).contains("trailing"));
    }
}
