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

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_written_as_escapes() {
        assert_eq!(printable("a\u{0}b\nc"), "a\\u{0}b\\nc");
        assert_eq!(printable("señal \"x\""), "señal \"x\"");
        let refused = crate::EventType::parse("a\u{0}b", "event").unwrap_err();
        assert!(!refused.reason.contains('\u{0}'), "{}", refused.reason);
    }
}
