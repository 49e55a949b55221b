//! Reading Svix requests as the SDKs send them: JSON bodies without a
//! required content type (and body-less POSTs), unknown fields and query
//! parameters ignored (newer SDKs send more), timestamps with or without an
//! offset, lists as one comma-separated value, and Svix's pagination.

use super::error::{Invalid, SvixError, SvixResult};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, Utc};
use hookline_application::pagination::within_api_range;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A JSON object body; an empty body reads as `T::default()` when `T` has
/// one (see [`SvixBody`]).
#[derive(Debug)]
pub struct SvixJson<T>(pub T);

/// A body that may be empty (`rotate`, `resend`).
#[derive(Debug)]
pub struct SvixBody<T>(pub T);

async fn bytes<S: Send + Sync>(req: Request, state: &S) -> SvixResult<Bytes> {
    let encoding = crate::extract::content_encoding(req.headers());
    let body = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            SvixError::payload_too_large("Request payload is too large.")
        } else {
            SvixError::bad_request(
                "generic_error",
                format!("the request body could not be read: {rejection}"),
            )
        }
    })?;
    match encoding {
        Some(encoding) if !body.iter().all(u8::is_ascii_whitespace) => Err(SvixError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            crate::extract::encoded_detail(&encoding),
        )),
        _ => Ok(body),
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> SvixResult<T> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(SvixError::Validation(vec![Invalid {
            loc: vec!["body".into()],
            msg: "the body must be a JSON object".into(),
            kind: "value_error.jsondecode",
        }]));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        SvixError::Validation(vec![Invalid {
            loc: vec!["body".into()],
            msg: e.to_string(),
            kind: "value_error.jsondecode",
        }])
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for SvixJson<T> {
    type Rejection = SvixError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = bytes(req, state).await?;
        parse(&body).map(SvixJson)
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for SvixBody<T> {
    type Rejection = SvixError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = bytes(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse(&body).map(SvixBody)
    }
}

/// The query string's parameters, decoded, in order.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The parameters of a query string (without `?`).
    pub fn from_query(query: &str) -> Self {
        Self(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = SvixError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_query(parts.uri.query().unwrap_or("")))
    }
}

/// Largest page Svix serves.
pub const MAX_LIMIT: u32 = 250;
/// Svix's page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;

impl Params {
    /// The last value of `name` (empty values count as absent).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a list parameter: `name=a,b`, repeated `name=`,
    /// `name[]=` and `name[0]=`.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let bracket = format!("{name}[");
        let values: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| k == name || (k.starts_with(&bracket) && k.ends_with(']')))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        (!values.is_empty()).then_some(values)
    }

    /// A `channel` filter.
    ///
    /// # Errors
    /// 422 naming `channel` for a value that cannot be a channel.
    pub fn channel(&self) -> SvixResult<Option<String>> {
        self.get("channel")
            .map(|c| {
                hookline_domain::channel::Channel::parse(c, "channel")
                    .map(|c| c.as_str().to_string())
                    .map_err(|e| SvixError::invalid(Invalid::query("channel", e.reason)))
            })
            .transpose()
    }

    /// Refuses a `tag` filter: Hookline keeps no message tags, and a list
    /// that ignored it would answer every `what`.
    ///
    /// # Errors
    /// 422 naming `tag` when one is given.
    pub fn refuse_tag(&self) -> SvixResult<()> {
        if self.get("tag").is_some() {
            return Err(SvixError::invalid(Invalid::query(
                "tag",
                "Hookline does not keep message tags; filter by channel or event_types",
            )));
        }
        Ok(())
    }

    /// The event type names of an `event_types` filter.
    ///
    /// # Errors
    /// 422 naming `event_types` for a value that cannot be an event type's
    /// name (a filter that matched nothing would hide the mistake).
    pub fn event_types(&self) -> SvixResult<Option<Vec<String>>> {
        let Some(names) = self.list("event_types") else {
            return Ok(None);
        };
        for name in &names {
            hookline_domain::EventType::parse(name, "event_types").map_err(|e| {
                SvixError::invalid(Invalid::query(
                    "event_types",
                    format!("'{name}': {}", e.reason),
                ))
            })?;
        }
        Ok(Some(names))
    }

    /// # Errors
    /// 400 for a value that is not `true` or `false`.
    pub fn flag(&self, name: &str, default: bool) -> SvixResult<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(SvixError::bad_request(
                "generic_error",
                format!("Failed to deserialize query string: {name}: '{v}' is not true or false"),
            )),
        }
    }

    /// # Errors
    /// 400 for a value that is not a whole number.
    pub fn number(&self, name: &str) -> SvixResult<Option<i64>> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    SvixError::bad_request(
                        "generic_error",
                        format!(
                            "Failed to deserialize query string: {name}: '{v}' is not a whole number"
                        ),
                    )
                })
            })
            .transpose()
    }

    /// `limit`: 1–250, 50 by default.
    ///
    /// # Errors
    /// 422 over 250 or under 1, 400 when not a number.
    pub fn limit(&self) -> SvixResult<u32> {
        match self.number("limit")? {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if n > i64::from(MAX_LIMIT) => Err(SvixError::invalid(Invalid::query(
                "limit",
                format!("Given limit must not exceed {MAX_LIMIT}"),
            ))),
            Some(n) if n < 1 => Err(SvixError::invalid(Invalid::query(
                "limit",
                "Given limit must be at least 1",
            ))),
            Some(n) => Ok(u32::try_from(n).unwrap_or(DEFAULT_LIMIT)),
        }
    }

    /// `iterator`: where the page starts, and whether it runs backwards (a
    /// `prevIterator`, written `-<id>`).
    pub fn iterator(&self) -> Option<Cursor<'_>> {
        self.get("iterator").map(|v| match v.strip_prefix('-') {
            Some(id) => Cursor {
                id,
                backwards: true,
            },
            None => Cursor {
                id: v,
                backwards: false,
            },
        })
    }

    /// Where a page starts: the id the `iterator` names, read by `parse`
    /// (`None` from it: not `what`'s id), and whether the page runs
    /// backwards.
    ///
    /// # Errors
    /// 422 for an iterator that is not `what`'s id.
    pub fn page_start<T>(
        &self,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> SvixResult<(Option<T>, bool)> {
        let Some(cursor) = self.iterator() else {
            return Ok((None, false));
        };
        let id = parse(cursor.id).ok_or_else(|| {
            SvixError::invalid(Invalid::query(
                "iterator",
                format!("is not {what} id from a previous page"),
            ))
        })?;
        Ok((Some(id), cursor.backwards))
    }

    /// [`Self::page_start`] for the lists bounded by time (`before`,
    /// `after`): as Svix's server does, `after` alone (no iterator, no
    /// `before`) starts the page at the oldest item after that time and
    /// reads forwards in time (newer items through `prevIterator`), so a
    /// client syncing from where it stopped misses nothing.
    ///
    /// # Errors
    /// As [`Self::page_start`].
    pub fn time_page_start<T>(
        &self,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> SvixResult<(Option<T>, bool)> {
        let (start, backwards) = self.page_start(what, parse)?;
        Ok((start, backwards || self.forwards_from_after()))
    }

    /// No iterator, `after` and no `before` (see [`Self::time_page_start`]).
    fn forwards_from_after(&self) -> bool {
        self.iterator().is_none() && self.get("after").is_some() && self.get("before").is_none()
    }

    /// `order`: `ascending` or `descending`; `ascending_by_default` when
    /// absent.
    ///
    /// # Errors
    /// 422 for any other value.
    pub fn ascending(&self, ascending_by_default: bool) -> SvixResult<bool> {
        match self.get("order") {
            None => Ok(ascending_by_default),
            Some("ascending") => Ok(true),
            Some("descending") => Ok(false),
            Some(other) => Err(SvixError::invalid(Invalid::query(
                "order",
                format!("'{other}' is not 'ascending' or 'descending'"),
            ))),
        }
    }

    /// A timestamp parameter.
    ///
    /// # Errors
    /// 422 for a value that is not a date-time.
    pub fn time(&self, name: &str) -> SvixResult<Option<DateTime<Utc>>> {
        self.get(name)
            .map(|v| {
                parse_time(v).ok_or_else(|| {
                    SvixError::invalid(Invalid::query(
                        name,
                        format!("'{v}' is not an RFC 3339 date-time of the years 0000 to 9999"),
                    ))
                })
            })
            .transpose()
    }
}

/// A page's starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor<'a> {
    pub id: &'a str,
    pub backwards: bool,
}

/// An RFC 3339 date-time; one without an offset (as the Python SDK sends
/// naive datetimes) is taken as UTC.
/// Years outside 0000–9999 (which `%Y` reads, signed) are refused.
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc)).filter(|t| within_api_range(*t));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
    .map(|t| t.and_utc())
    .filter(|t| within_api_range(*t))
}

/// A timestamp as Svix writes it: RFC 3339 in UTC with `Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Serialises a timestamp as [`time`] does.
pub fn svix_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time(*t))
}

/// Serialises an optional timestamp as [`time`] does, or `null`.
pub fn svix_time_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&time(*t)),
        None => s.serialize_none(),
    }
}

/// One page: `iterator` (always present) continues after the last item,
/// `prevIterator` goes back from the first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    /// Pass it as `iterator` for the next page (present, maybe `null`).
    #[schema(required = true)]
    pub iterator: Option<String>,
    /// Pass it as `iterator` for the previous page.
    #[serde(rename = "prevIterator", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub prev_iterator: Option<String>,
    /// No more items follow.
    pub done: bool,
}

impl<T> ListResponse<T> {
    /// A page read in the list's order (`backwards`: read the other way
    /// from a `prevIterator`, so reversed here), with whether more items
    /// follow in the direction it was read (`done` says there are none, as
    /// Svix's server does either way).
    pub fn page(mut data: Vec<T>, more: bool, backwards: bool, id: impl Fn(&T) -> String) -> Self {
        if backwards {
            data.reverse();
        }
        let iterator = data.last().map(&id);
        let prev_iterator = data.first().map(|first| format!("-{}", id(first)));
        Self {
            data,
            iterator,
            prev_iterator,
            done: !more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::from_query(q)
    }

    #[test]
    fn after_alone_reads_forwards_in_time_from_it() {
        let id = |c: &str| Some(c.to_string());
        let start = |q: &str| params(q).time_page_start("x", id).unwrap();
        assert_eq!(start(""), (None, false));
        assert_eq!(start("after=2026-01-01T00:00:00Z"), (None, true));
        assert_eq!(
            start("after=2026-01-01T00:00:00Z&before=2026-02-01T00:00:00Z"),
            (None, false)
        );
        assert_eq!(start("before=2026-02-01T00:00:00Z"), (None, false));
        // An iterator says which way the page runs.
        assert_eq!(
            start("after=2026-01-01T00:00:00Z&iterator=m1"),
            (Some("m1".to_string()), false)
        );
        assert_eq!(
            start("after=2026-01-01T00:00:00Z&iterator=-m1"),
            (Some("m1".to_string()), true)
        );
        // Lists not bounded by time keep their order.
        assert_eq!(
            params("after=2026-01-01T00:00:00Z")
                .page_start("x", id)
                .unwrap(),
            (None, false)
        );
    }

    #[test]
    fn lists_arrive_in_every_svix_spelling() {
        assert_eq!(
            params("event_types=a.b%2Cc.d").list("event_types").unwrap(),
            vec!["a.b", "c.d"]
        );
        assert_eq!(
            params("event_types=a.b&event_types=c.d")
                .list("event_types")
                .unwrap(),
            vec!["a.b", "c.d"]
        );
        assert_eq!(
            params("event_types%5B%5D=a.b&event_types[1]=c.d")
                .list("event_types")
                .unwrap(),
            vec!["a.b", "c.d"]
        );
        assert_eq!(params("other=1").list("event_types"), None);
    }

    #[test]
    fn timestamps_with_or_without_offset() {
        let utc = parse_time("2024-01-01T12:00:00").unwrap();
        assert_eq!(time(utc), "2024-01-01T12:00:00Z");
        assert_eq!(parse_time("2024-01-01T12:00:00.000Z").unwrap(), utc);
        assert_eq!(parse_time("2024-01-01T14:00:00+02:00").unwrap(), utc);
        assert_eq!(
            time(parse_time("2024-01-01T12:00:00.123456").unwrap()),
            "2024-01-01T12:00:00.123456Z"
        );
        assert!(parse_time("yesterday").is_none());
        assert!(parse_time("-5000-01-01T00:00:00").is_none());
        assert!(parse_time("+10000-01-01T00:00:00").is_none());
        assert!(parse_time("0000-01-01T00:00:00Z").is_some());
    }

    #[test]
    fn limits_and_iterators() {
        assert_eq!(params("").limit().unwrap(), 50);
        assert_eq!(params("limit=250").limit().unwrap(), 250);
        assert!(matches!(
            params("limit=251").limit(),
            Err(SvixError::Validation(_))
        ));
        assert!(matches!(
            params("limit=x").limit(),
            Err(SvixError::Http { .. })
        ));
        assert_eq!(
            params("iterator=-msg_1").iterator(),
            Some(Cursor {
                id: "msg_1",
                backwards: true
            })
        );
        assert!(params("with_content=false")
            .flag("with_content", true)
            .is_ok_and(|f| !f));
    }

    #[test]
    fn pages_always_carry_an_iterator_key() {
        let empty = ListResponse::<String>::page(vec![], false, false, Clone::clone);
        let json = serde_json::to_value(&empty).unwrap();
        assert!(json.get("iterator").unwrap().is_null());
        assert_eq!(json["done"], true);
        let page = ListResponse::page(
            vec!["b".to_string(), "a".to_string()],
            true,
            true,
            Clone::clone,
        );
        assert_eq!(page.data, vec!["a", "b"]);
        assert_eq!(page.iterator.as_deref(), Some("b"));
        assert_eq!(page.prev_iterator.as_deref(), Some("-a"));
    }
}
