//! Extractors that turn every malformed request into an [`ApiError`] a
//! person can act on (instead of axum's plain-text rejections).

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON body: `Content-Type: application/json`, within the body limit,
/// well-formed, and of the expected shape (unknown fields refused).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Like [`ApiJson`], but an empty body means `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

fn is_json(parts_ct: Option<&header::HeaderValue>) -> bool {
    parts_ct
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            ApiError::bad_request(
                "invalid_body",
                format!("the request body could not be read: {rejection}"),
            )
        }
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object; serde would also read a struct from an
    // array of its fields in order, which nobody means.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| b"[\"-0123456789tfn".contains(b)) {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object ({…})",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
        _ => ApiError::bad_request(
            "invalid_body",
            format!("the body does not have the expected fields: {e}"),
        ),
    })
}

/// The body's `Content-Encoding` when it is not `identity`: bodies are read
/// as sent, never decompressed.
pub fn content_encoding(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_ENCODING)?;
    let value = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
    (!value.is_empty() && !value.eq_ignore_ascii_case("identity")).then_some(value)
}

/// Why a body in `encoding` is refused.
pub fn encoded_detail(encoding: &str) -> String {
    format!(
        "Content-Encoding `{}` is not supported: send the body uncompressed",
        hookline_domain::validation::printable(&encoding.chars().take(40).collect::<String>())
    )
}

fn encoded(encoding: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        encoded_detail(encoding),
    )
}

fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
    )
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(unsupported());
        }
        if let Some(encoding) = content_encoding(req.headers()) {
            return Err(encoded(&encoding));
        }
        let bytes = body_bytes(req, state).await?;
        parse(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers().get(header::CONTENT_TYPE));
        let encoding = content_encoding(req.headers());
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(unsupported());
        }
        if let Some(encoding) = encoding {
            return Err(encoded(&encoding));
        }
        parse(&bytes).map(OptionalJson)
    }
}

/// Query parameters of the expected shape (unknown ones refused).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded_from_str(query).map(ApiQuery)
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_query", "the query string is malformed"))?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "invalid query parameters: {}",
                e.body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
                    .replace("invalid digit found in string", "must be a whole number")
                    .replace("number too large to fit in target type", "is too large")
                    .replace(
                        "cannot parse integer from empty string",
                        "must not be empty"
                    )
            ),
        )
    })
}

/// A path segment parsed as an id (`SubscriptionId::parse`, …).
///
/// # Errors
/// 400 `invalid_id` naming what was expected.
pub fn parse_id<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, hookline_domain::ValidationError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::bad_request("invalid_id", e.reason))
}
