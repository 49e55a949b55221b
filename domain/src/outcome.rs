//! What an attempt's result means: delivered, retry later, give up, or
//! the endpoint is gone.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest error message kept per attempt.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 500;
/// Longest response excerpt kept per attempt.
pub const MAX_RESPONSE_EXCERPT_BYTES: usize = 4096;

/// Why an attempt did not get a 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The receiver answered with a non-2xx status.
    HttpStatus,
    /// No complete answer within the timeout.
    Timeout,
    /// The TCP connection could not be made (refused, reset, unreachable).
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// The SSRF guard refused the target's address.
    BlockedTarget,
    /// The subscription is gone or its URL cannot be used.
    InvalidTarget,
    /// Anything else (a broken response, a protocol error).
    Other,
}

impl ErrorKind {
    pub const ALL: [Self; 8] = [
        Self::HttpStatus,
        Self::Timeout,
        Self::Connect,
        Self::Dns,
        Self::Tls,
        Self::BlockedTarget,
        Self::InvalidTarget,
        Self::Other,
    ];

    /// The kind named `s` (as [`ErrorKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpStatus => "http_status",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::BlockedTarget => "blocked_target",
            Self::InvalidTarget => "invalid_target",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth trying again later.
    Retryable,
    /// Will not succeed by repeating it.
    Permanent,
    /// 410 Gone: fail the delivery and disable the subscription.
    Gone,
}

/// 2xx delivered; 410 gone; 408, 425, 429 and 5xx retryable; every other
/// status (3xx, other 4xx, 1xx) permanent.
pub fn classify_status(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        408 | 425 | 429 | 500..=599 => Verdict::Retryable,
        _ => Verdict::Permanent,
    }
}

/// Transport errors are retryable, except a blocked or invalid target.
pub fn classify_error(kind: ErrorKind, status: Option<u16>) -> Verdict {
    match (kind, status) {
        (_, Some(code)) => classify_status(code),
        (ErrorKind::BlockedTarget | ErrorKind::InvalidTarget, None) => Verdict::Permanent,
        _ => Verdict::Retryable,
    }
}

/// Text from outside (a receiver's answer, an error it caused) made fit for
/// storage: NUL characters, which Postgres text cannot hold, become U+FFFD.
pub fn storable_text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Cuts `s` to at most `max` characters, marking the cut ([`storable_text`]
/// first).
pub fn truncate_chars(s: &str, max: usize) -> String {
    let s = storable_text(s);
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Cuts `s` to at most `max` bytes on a character boundary
/// ([`storable_text`] first).
pub fn truncate_bytes(s: &str, max: usize) -> String {
    let mut s = storable_text(s);
    if s.len() > max {
        let mut end = max;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_holds_no_nul_and_stays_within_bounds() {
        assert_eq!(storable_text("a\0b"), "a\u{FFFD}b");
        assert_eq!(truncate_chars("\0\0\0", 2), "\u{FFFD}…");
        let cut = truncate_bytes(&"\0".repeat(10), 10);
        assert_eq!(cut, "\u{FFFD}".repeat(3));
        assert!(cut.len() <= 10);
        assert_eq!(truncate_bytes("plain", 10), "plain");
    }

    #[test]
    fn statuses_classify_as_the_policy_says() {
        assert_eq!(classify_status(200), Verdict::Delivered);
        assert_eq!(classify_status(204), Verdict::Delivered);
        assert_eq!(classify_status(410), Verdict::Gone);
        for s in [408, 425, 429, 500, 502, 503, 599] {
            assert_eq!(classify_status(s), Verdict::Retryable, "{s}");
        }
        for s in [301, 302, 307, 400, 401, 403, 404, 422, 100] {
            assert_eq!(classify_status(s), Verdict::Permanent, "{s}");
        }
    }

    #[test]
    fn transport_errors_retry_except_blocked_targets() {
        assert_eq!(classify_error(ErrorKind::Timeout, None), Verdict::Retryable);
        assert_eq!(classify_error(ErrorKind::Connect, None), Verdict::Retryable);
        assert_eq!(classify_error(ErrorKind::Dns, None), Verdict::Retryable);
        assert_eq!(classify_error(ErrorKind::Tls, None), Verdict::Retryable);
        assert_eq!(
            classify_error(ErrorKind::BlockedTarget, None),
            Verdict::Permanent
        );
        assert_eq!(
            classify_error(ErrorKind::HttpStatus, Some(400)),
            Verdict::Permanent
        );
    }

    #[test]
    fn truncation_respects_boundaries() {
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("héllo", 3).chars().count(), 3);
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(truncate_bytes("abc", 10), "abc");
    }
}
