//! Response and query shapes several resources share: pages, histories,
//! and the conversion of request fields into typed values with errors that
//! name the request's own fields.

use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use hookline_application::history::{HistoryEntry, HistoryRequest};
use hookline_application::pagination::{Page, PageRequest};
use hookline_application::AppError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// One page of a list, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageResponse<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

impl<T> PageResponse<T> {
    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> Self {
        let page = page.map(f);
        Self {
            data: page.data,
            next_cursor: page.next_cursor,
        }
    }
}

/// `{"data": [...]}` for lists that are not paginated.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataResponse<T> {
    pub data: Vec<T>,
}

/// One event of an aggregate's history, sealed values masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntryResponse {
    /// The event's number within its aggregate, from 1.
    pub sequence: i64,
    /// The event's position in the whole log (commit order).
    pub position: i64,
    /// The event's name, such as `Subscribed` or `AttemptFailed`.
    pub event_type: String,
    /// The event's shape version, such as `1.0`.
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    /// The event as stored (sealed values stay sealed).
    #[schema(value_type = Object)]
    pub payload: Value,
    /// `request_id`, `tenant_id`, `actor` and `occurred_at` of the request
    /// that caused it.
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// A page of an aggregate's history, oldest first.
pub type HistoryResponse = PageResponse<HistoryEntryResponse>;

/// Query parameters of the `…/history` reads: a page of the events.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl HistoryQuery {
    /// # Errors
    /// A validation error naming `cursor` or `limit`.
    pub fn into_request(self) -> Result<HistoryRequest, AppError> {
        HistoryRequest::parse(self.limit, self.cursor.as_deref())
    }
}

impl From<HistoryEntry> for HistoryEntryResponse {
    fn from(e: HistoryEntry) -> Self {
        Self {
            sequence: e.sequence,
            position: e.position,
            event_type: e.event_type,
            event_version: e.event_version,
            recorded_at: e.recorded_at,
            payload: e.payload,
            metadata: e.metadata,
        }
    }
}

/// A page of a history as `{"data": [...], "next_cursor"?}`.
pub fn history(entries: Page<HistoryEntry>) -> HistoryResponse {
    PageResponse::from_page(entries, Into::into)
}

/// `limit` and `cursor` as a page request.
///
/// # Errors
/// 400 naming `limit` or `cursor`.
pub fn page(limit: Option<u32>, cursor: Option<&str>) -> ApiResult<PageRequest> {
    Ok(PageRequest::parse(limit, cursor)?)
}

/// An RFC 3339 query parameter.
///
/// # Errors
/// 400 naming `field`.
pub fn time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, AppError> {
    hookline_application::pagination::parse_time(field, value)
}

/// Maps an application error (the common case in conversions).
pub fn app(e: impl Into<AppError>) -> ApiError {
    ApiError::from(e.into())
}

/// An optional whole number, given as `3` or `3.0` (JSON Schema's
/// `integer` allows both, and clients generated from the document may send
/// either). Anything else is refused as the wrong type.
///
/// # Errors
/// A value that is not a whole number in `T`'s range.
pub fn whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error as _;
    use serde::Deserialize as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f <= i64::MAX as f64)
            .map(|f| f as i64)
    });
    whole
        .and_then(|w| T::try_from(w).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "invalid value: {n}, expected a whole number in range"
            ))
        })
}

/// A field of a PATCH that may be absent (`None`: unchanged) or present,
/// `null` included (`Some(None)`). With `#[serde(default)]`.
///
/// # Errors
/// A value that is not a `T`.
pub fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize as _;
    Option::<T>::deserialize(d).map(Some)
}

/// A field of a PATCH that may be absent (unchanged), `null` (removed) or a
/// whole number ([`whole_number`]): `10` and `10.0` alike.
///
/// # Errors
/// A value that is not a whole number in `T`'s range.
pub fn present_whole_number<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    whole_number(d).map(Some)
}
