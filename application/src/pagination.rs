//! Keyset pagination shared by list endpoints: pages are newest first and a
//! cursor is an opaque token for "items older than this one".

use crate::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 100;

/// One page of a list, newest first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Which page a client asks for: at most `limit` items strictly older than
/// the cursor's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub before: Option<(DateTime<Utc>, Uuid)>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            before: None,
        }
    }
}

impl PageRequest {
    /// A client's `limit` and `cursor`, checked.
    ///
    /// # Errors
    /// A validation error naming `limit` or `cursor`.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, AppError> {
        Ok(Self {
            limit: parse_limit(limit)?,
            before: cursor.map(decode_cursor).transpose()?,
        })
    }
}

/// Checks a client's `limit` (1–100, default 100).
///
/// # Errors
/// A validation error on `limit`.
pub fn parse_limit(limit: Option<u32>) -> Result<u32, AppError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(hookline_domain::ValidationError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )
        .into()),
    }
}

pub fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", created_at.timestamp_micros()))
}

/// # Errors
/// A validation error on `cursor` for anything `encode_cursor` did not make.
pub fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), AppError> {
    let bad = || {
        AppError::invalid(hookline_domain::ValidationError::new(
            "cursor",
            "is not a cursor returned by this API (use next_cursor from the previous page)",
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (micros, id) = text.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros)
        .filter(|at| within_api_range(*at))
        .ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// Whether a client's instant is one the API takes: years 0000 to 9999,
/// what RFC 3339 can write. chrono reaches further than Postgres can
/// store (4713 BC), so times parsed other ways are checked with this.
pub fn within_api_range(at: DateTime<Utc>) -> bool {
    (0..=9999).contains(&chrono::Datelike::year(&at))
}

/// Parses an RFC 3339 query parameter.
///
/// # Errors
/// A validation error naming `field`.
pub fn parse_time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, AppError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    // A `+` written into a URL's query arrives as a space.
                    let hint = if v.contains(' ') {
                        " (a `+` in a URL's query is read as a space: write it %2B)"
                    } else {
                        ""
                    };
                    AppError::invalid(hookline_domain::ValidationError::new(
                        field,
                        format!("must be an RFC 3339 time such as 2026-01-31T12:00:00Z{hint}"),
                    ))
                })
        })
        .transpose()
}

/// Turns `limit + 1` attempts fetched in start order into a page whose
/// cursor continues after the last one.
pub fn paginate_after(
    mut rows: Vec<crate::ports::AttemptRecord>,
    limit: u32,
) -> Result<Page<crate::ports::AttemptRecord>, AppError> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|a| encode_cursor(a.started_at, a.id))
    } else {
        None
    };
    Ok(Page {
        data: rows,
        next_cursor,
    })
}

/// Turns `limit + 1` fetched rows into a page and its next cursor.
pub fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: u32,
    key: impl Fn(&R) -> (DateTime<Utc>, Uuid),
    render: impl FnMut(R) -> Result<T, AppError>,
) -> Result<Page<T>, AppError> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| {
            let (at, id) = key(r);
            encode_cursor(at, id)
        })
    } else {
        None
    };
    let data = rows
        .into_iter()
        .map(render)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page { data, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_whose_plus_became_a_space_is_refused_with_the_fix() {
        let err = parse_time("as_of", Some("2026-12-06T13:17:50 01:00"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("%2B"), "{err}");
        let plain = parse_time("as_of", Some("yesterday"))
            .unwrap_err()
            .to_string();
        assert!(!plain.contains("%2B"), "{plain}");
        assert!(parse_time("as_of", Some("2026-12-06T13:17:50+01:00"))
            .unwrap()
            .is_some());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)).unwrap(), (at, id));
        for bad in ["", "!!!", "bm90LWEtY3Vyc29y", "MTIzOm5vdC1hLXV1aWQ"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some(5)).unwrap(), 5);
        assert!(parse_limit(Some(0)).is_err());
        assert!(parse_limit(Some(101)).is_err());
    }
}
