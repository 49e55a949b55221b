//! The error every value object's `parse` returns: which field, and why.

use std::fmt;

/// A rejected input value. `field` names the request field (dotted for
/// nested fields, such as `headers.X-Foo`), `reason` says what is wrong in
/// words a person understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ValidationError {}

/// `s` with its control characters written as escapes (`\u{0}`, `\n`):
/// for messages that quote what a client sent, which are shown, logged and
/// stored (where a NUL cannot be).
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Free text a person writes (a description, a reason): at most `max`
/// characters, no control characters but newlines and tabs.
///
/// # Errors
/// A [`ValidationError`] on `field`.
pub fn check_free_text(field: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    let len = s.chars().count();
    if len > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters (got {len})"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A one-line name people pick out in lists (a tenant's, a key's): no
/// control characters, no line or paragraph separators, no bidirectional
/// embeddings, overrides or isolates (which make a name read as another:
/// U+202E before "live" shows "evil"), and at least one letter or digit
/// (not only spaces, blank symbols or invisible characters such as U+200B).
///
/// # Errors
/// A [`ValidationError`] on `field`.
pub fn check_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    if name.chars().any(|c| matches!(c, '\u{2028}' | '\u{2029}')) {
        return Err(ValidationError::new(field, "must be one line"));
    }
    if name
        .chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        return Err(ValidationError::new(
            field,
            "must not contain bidirectional override, embedding or isolate characters (U+202A–202E, U+2066–2069)",
        ));
    }
    // A letter or a digit of any script shows; blanks that are symbols
    // (U+2800), lone combining marks and format characters do not, nor the
    // Hangul fillers (letters that draw nothing).
    let shows = |c: char| {
        c.is_alphanumeric() && !matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
    };
    if !name.chars().any(shows) {
        return Err(ValidationError::new(
            field,
            "must have a letter or a digit (not only spaces, symbols or invisible characters)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn names_show_what_they_are() {
        for good in ["Acme", "Café Niño", "شركة", "ZW\u{200D}J inside", "東京"] {
            assert!(super::check_name("name", good).is_ok(), "{good:?}");
        }
        for bad in [
            "\u{2800}",
            "\u{3164}",
            "\u{FFA0} \u{FFA0}",
            "\u{2800}\u{3164}",
            "\u{0301}",
            "\u{FFF9}",
            "\u{1D159}",
            " \u{2800}\u{2800} ",
            "\u{200B}",
            "\u{200B}\u{200B}",
            "\u{FEFF}",
            "\u{00AD}",
            "\u{2060}",
            "\u{202E}evil\u{202C}",
            "a\u{2028}b",
            "a\u{2066}b",
            "a\nb",
        ] {
            assert!(super::check_name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn control_characters_are_written_as_escapes() {
        assert_eq!(printable("a\u{0}b\nc"), "a\\u{0}b\\nc");
        assert_eq!(printable("señal \"x\""), "señal \"x\"");
        let refused = crate::EventType::parse("a\u{0}b", "event").unwrap_err();
        assert!(!refused.reason.contains('\u{0}'), "{}", refused.reason);
    }
}
