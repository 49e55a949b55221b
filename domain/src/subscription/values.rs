//! Value objects only subscriptions use: custom headers, description and
//! the delivery payload format.

use crate::signature::SignatureScheme;
use crate::ValidationError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_NAME_LEN: usize = 256;
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Headers Hookline sets itself or that belong to the connection; a
/// subscription may not override them.
const RESERVED_HEADERS: [&str; 20] = [
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "host",
    "expect",
    "user-agent",
    "x-request-id",
    "x-event",
    "date",
    "cookie",
    "set-cookie",
];
const RESERVED_PREFIXES: [&str; 3] = ["x-hookline-", "webhook-", "svix-"];

/// Extra headers sent with every delivery of a subscription (at most 20).
/// Values may be credentials, so `Debug` prints names only and the log
/// stores them sealed.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomHeaders(BTreeMap<String, String>);

impl CustomHeaders {
    /// # Errors
    /// A [`ValidationError`] on `headers` or `headers.<name>`.
    pub fn parse(map: BTreeMap<String, String>) -> Result<Self, ValidationError> {
        if map.len() > MAX_HEADERS {
            return Err(ValidationError::new(
                "headers",
                format!(
                    "at most {MAX_HEADERS} custom headers are allowed (got {})",
                    map.len()
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in &map {
            let field = format!("headers.{}", crate::ids::truncate_for_message(name));
            if name.is_empty() || name.len() > MAX_HEADER_NAME_LEN {
                return Err(ValidationError::new(
                    field,
                    format!("header names must be 1–{MAX_HEADER_NAME_LEN} characters"),
                ));
            }
            if !name.bytes().all(is_token_byte) {
                return Err(ValidationError::new(
                    field,
                    "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)",
                ));
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str())
                || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
                || SignatureScheme::header_names().contains(&lower.as_str())
            {
                return Err(ValidationError::new(
                    field,
                    "is set by Hookline (signature, content-type, request id, event or connection header) and cannot be overridden",
                ));
            }
            if !seen.insert(lower) {
                return Err(ValidationError::new(
                    field,
                    "is given twice (header names are case-insensitive)",
                ));
            }
            if value.len() > MAX_HEADER_VALUE_LEN {
                return Err(ValidationError::new(
                    field,
                    format!("header values must be at most {MAX_HEADER_VALUE_LEN} bytes"),
                ));
            }
            if !value.bytes().all(|b| (0x20..0x7f).contains(&b))
                || value.starts_with(' ')
                || value.ends_with(' ')
            {
                return Err(ValidationError::new(
                    field,
                    "header values must be printable ASCII (no tabs, CR or LF) without leading or trailing spaces",
                ));
            }
        }
        Ok(Self(map))
    }

    /// Rebuilds headers unsealed from the log (validated when sealed).
    pub fn from_trusted(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// These headers without those named in `delete`, then with `set`
    /// applied: a value sets a header (replacing one of that name in any
    /// case), `None` removes it. Names compare without case.
    ///
    /// # Errors
    /// A [`ValidationError`] for a name given twice in `set` (in any
    /// case), or a result [`Self::parse`] refuses.
    pub fn patched(
        &self,
        delete: &[String],
        set: &BTreeMap<String, Option<String>>,
    ) -> Result<Self, ValidationError> {
        let mut seen = std::collections::BTreeSet::new();
        for name in set.keys() {
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(ValidationError::new(
                    format!("headers.{}", crate::ids::truncate_for_message(name)),
                    "is given twice (header names are case-insensitive)",
                ));
            }
        }
        let mut map = self.0.clone();
        for name in delete.iter().chain(set.keys()) {
            map.retain(|have, _| !have.eq_ignore_ascii_case(name));
        }
        for (name, value) in set {
            if let Some(value) = value {
                map.insert(name.clone(), value.clone());
            }
        }
        Self::parse(map)
    }
}

impl fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What a subscription's deliveries carry as their body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// Hookline's envelope: `{id, timestamp, event, data, tenant_id, …}`.
    #[default]
    Hookline,
    /// The published event's `data` exactly, without an envelope (what
    /// Svix endpoints receive).
    Raw,
}

impl PayloadFormat {
    pub const ALL: [Self; 2] = [Self::Hookline, Self::Raw];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hookline => "hookline",
            Self::Raw => "raw",
        }
    }

    /// # Errors
    /// Names the accepted formats.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("payload_format", "must be one of 'hookline', 'raw'")
            })
    }

    /// Whether this is the default (left out of events).
    pub fn is_default(&self) -> bool {
        *self == Self::Hookline
    }
}

impl fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A free-text note on a subscription, at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    /// # Errors
    /// When longer than 500 characters or holding control characters other
    /// than newlines and tabs.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        crate::validation::check_free_text("description", s, MAX_DESCRIPTION_CHARS)?;
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Result<CustomHeaders, ValidationError> {
        CustomHeaders::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
    }

    #[test]
    fn accepts_ordinary_headers() {
        let h = headers(&[
            ("X-Custom-Secret", "shared-secret"),
            ("Authorization", "Bearer abc"),
        ])
        .unwrap();
        assert_eq!(h.names(), vec!["Authorization", "X-Custom-Secret"]);
        assert!(!format!("{h:?}").contains("shared-secret"));
    }

    #[test]
    fn a_patch_deletes_then_sets_whatever_the_case_and_refuses_a_name_twice() {
        let have = headers(&[
            ("Authorization", "a"),
            ("X-Team", "billing"),
            ("X-Keep", "k"),
            ("X-Gone", "g"),
        ])
        .unwrap();
        let set: BTreeMap<String, Option<String>> = [
            ("x-team".to_string(), Some("sales".to_string())),
            ("AUTHORIZATION".to_string(), None),
            ("X-New".to_string(), Some("1".to_string())),
            ("X-Absent".to_string(), None),
        ]
        .into_iter()
        .collect();
        let got = have
            .patched(&["x-gone".to_string(), "X-New".to_string()], &set)
            .unwrap();
        // Deletions first: a header both deleted and set is set.
        assert_eq!(
            got,
            headers(&[("X-Keep", "k"), ("X-New", "1"), ("x-team", "sales")]).unwrap()
        );
        let twice: BTreeMap<String, Option<String>> = [
            ("X-B".to_string(), Some("upper".to_string())),
            ("x-b".to_string(), Some("lower".to_string())),
        ]
        .into_iter()
        .collect();
        let err = have.patched(&[], &twice).unwrap_err();
        assert!(err.reason.contains("twice"), "{err:?}");
        // The result holds Hookline's rules (a reserved name, too many).
        let reserved: BTreeMap<String, Option<String>> =
            [("Content-Type".to_string(), Some("text/plain".to_string()))]
                .into_iter()
                .collect();
        assert!(have.patched(&[], &reserved).is_err());
        let many: BTreeMap<String, Option<String>> = (0..17)
            .map(|i| (format!("X-H{i}"), Some("v".to_string())))
            .collect();
        assert!(have.patched(&[], &many).is_err());
    }

    #[test]
    fn rejects_reserved_and_malformed_headers() {
        for (name, value) in [
            ("Content-Type", "text/plain"),
            ("webhook-signature", "v1,x"),
            ("X-Signature", "sha256=x"),
            ("x-inflow-hmac-sha256", "x"),
            ("svix-signature", "v1,x"),
            ("Svix-Id", "msg_1"),
            ("Connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("X-Hookline-Attempt", "9"),
            ("Bad Name", "x"),
            ("X-Ok", "line\r\nInjected: yes"),
            ("X-Ok", " padded"),
            ("", "x"),
        ] {
            let e = headers(&[(name, value)]).unwrap_err();
            assert!(e.field.starts_with("headers"), "{name}");
        }
        let many: Vec<(String, String)> =
            (0..21).map(|i| (format!("X-H{i}"), "v".into())).collect();
        let e = CustomHeaders::parse(many.into_iter().collect()).unwrap_err();
        assert_eq!(e.field, "headers");
        assert!(headers(&[("x-a", "1"), ("X-A", "2")]).is_err());
    }

    #[test]
    fn payload_formats_parse_by_name() {
        assert_eq!(PayloadFormat::parse("raw").unwrap(), PayloadFormat::Raw);
        assert_eq!(PayloadFormat::default(), PayloadFormat::Hookline);
        assert_eq!(
            serde_json::to_string(&PayloadFormat::Raw).unwrap(),
            "\"raw\""
        );
        assert_eq!(
            PayloadFormat::parse("envelope").unwrap_err().field,
            "payload_format"
        );
    }

    #[test]
    fn description_limits() {
        assert!(Description::parse(&"d".repeat(500)).is_ok());
        assert_eq!(
            Description::parse(&"d".repeat(501)).unwrap_err().field,
            "description"
        );
        assert!(Description::parse("two\nlines").is_ok());
        assert!(Description::parse("bell\u{7}").is_err());
    }
}
