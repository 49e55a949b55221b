//! A failed console request and the query extractor whose refusals are
//! such failures: rendered as error pages in the viewer's language.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookline_application::AppError;

/// A failed console request: rendered as an error page in the viewer's
/// language by [`security_headers`].
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub code: String,
    /// The application's detail (English), shown under the translated
    /// message.
    pub detail: String,
}

impl Failure {
    pub fn new(status: StatusCode, code: &str) -> Self {
        Self {
            status,
            code: code.to_string(),
            detail: String::new(),
        }
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            code: e.code,
            detail: e.detail,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

pub type PageResult = Result<Response, Failure>;

/// A page's query parameters; a query that does not fit (a repeated or
/// malformed parameter) is refused with the console's own translated
/// error page, not axum's plain-text one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| Self(q))
            .map_err(|rejection| Failure {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_query".to_string(),
                detail: query_detail(&rejection.body_text()),
            })
    }
}

/// axum's rejection text as a sentence of the console's own ("Failed to
/// deserialize query string: duplicate field `status`" → "the link's
/// query names `status` twice").
fn query_detail(rejection: &str) -> String {
    let reason = rejection
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(rejection);
    match reason
        .strip_prefix("duplicate field `")
        .and_then(|r| r.split_once('`'))
    {
        Some((field, _)) => format!("the link's query names `{field}` twice"),
        None => format!("the link's query could not be read ({reason})"),
    }
}

#[cfg(test)]
mod query_tests {
    #[test]
    fn axum_rejections_read_as_sentences() {
        assert_eq!(
            super::query_detail("Failed to deserialize query string: duplicate field `status`"),
            "the link's query names `status` twice"
        );
        assert_eq!(
            super::query_detail(
                "Failed to deserialize query string: invalid digit found in string"
            ),
            "the link's query could not be read (invalid digit found in string)"
        );
    }
}
