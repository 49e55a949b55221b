//! The API's error type and its one JSON shape.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookline_application::AppError;
use serde::Serialize;

tokio::task_local! {
    /// The current request's id, set by the request middleware so every
    /// error body can name it.
    pub static REQUEST_ID: String;
}

/// Marks responses whose body already has the error shape.
#[derive(Debug, Clone, Copy)]
pub struct ErrorShaped;

/// The `code` of an error answer, for the request's log line.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

/// The body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(
    as = Error,
    examples(json!({
        "code": "not_found",
        "detail": "subscription '0193a4f2-8c1e-7b3d-9f20-5a6b7c8d9e0f' was not found",
        "request_id": "0193a4f2-7d00-7c11-8a52-3e4f5a6b7c8d"
    }))
)]
pub struct ErrorBody<'a> {
    /// What went wrong, as a stable snake_case code to branch on; each
    /// operation's error responses list the codes it can answer.
    #[schema(pattern = "^[a-z][a-z_]*$")]
    pub code: &'a str,
    /// What went wrong, in words a person can act on (validation errors
    /// name each field: `url: must use https://`).
    pub detail: &'a str,
    /// The request's id (also in the `X-Request-Id` response header); quote
    /// it when reporting a problem.
    pub request_id: &'a str,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
        }
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// The error a bare status (from the framework or a layer) stands for.
    pub fn from_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => (
                "not_found",
                "no such route; see docs/api.md for the endpoints",
            ),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this route does not accept that HTTP method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is larger than the limit allows (HOOKLINE_MAX_BODY_BYTES, or HOOKLINE_SVIX_MAX_BODY_BYTES under /api/v1)",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
            StatusCode::INTERNAL_SERVER_ERROR => (
                "internal_error",
                "an internal error occurred; quote the request id when reporting it",
            ),
            s if s.is_server_error() => (
                "unavailable",
                "the service cannot answer right now; retry later",
            ),
            _ => ("bad_request", "the request could not be processed"),
        };
        Self::new(status, code, detail)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(_) => {
                Self::new(StatusCode::BAD_REQUEST, "validation_error", e.to_string())
            }
            AppError::BadRequest(detail) => {
                Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
            }
            AppError::NothingFound { code, detail } => {
                Self::new(StatusCode::NOT_FOUND, code, detail)
            }
            AppError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            AppError::Conflict { code, detail } => Self::new(StatusCode::CONFLICT, code, detail),
            AppError::Busy { code, detail } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
            }
            AppError::Unavailable(cause) => {
                tracing::error!(cause = %cause, "dependency unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unreachable right now; retry later",
                )
            }
            AppError::Upstream {
                unavailable,
                code,
                detail,
            } => Self::new(
                if unavailable {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                code,
                detail,
            ),
            AppError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                Self::from_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

/// The current request id, or `-` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_string())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        let body = ErrorBody {
            code: &self.code,
            detail: &self.detail,
            request_id: &request_id,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        set_retry_after(&mut response, &self.code);
        response.extensions_mut().insert(ErrorShaped);
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

/// Every `503` says when to try again: a second for push-back (the
/// backlog at its bound, a request still being done, not ready yet), five
/// when the database cannot be reached. Clients and the Svix SDKs honour it.
pub fn set_retry_after(response: &mut Response, code: &str) {
    if response.status() != StatusCode::SERVICE_UNAVAILABLE
        || response
            .headers()
            .contains_key(axum::http::header::RETRY_AFTER)
    {
        return;
    }
    let seconds = if code == "unavailable" { "5" } else { "1" };
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static(seconds),
    );
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_503_says_when_to_retry() {
        let busy = ApiError::from(AppError::Busy {
            code: "backlog_full",
            detail: "full".into(),
        })
        .into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()["retry-after"], "1");
        let down = ApiError::from(AppError::Unavailable("down".into())).into_response();
        assert_eq!(down.headers()["retry-after"], "5");
        let missing = ApiError::not_found("x").into_response();
        assert!(!missing.headers().contains_key("retry-after"));
    }
}
