//! Errors in Svix's shapes: `{code, detail}` (plus Hookline's
//! `request_id`, which the SDKs ignore) for every status but 422, and
//! `{detail: [{loc, msg, type}]}` for validation errors, which the SDKs
//! parse as a list.

use crate::error::{current_request_id, ErrorShaped};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookline_application::AppError;
use hookline_domain::ValidationError;
use serde::Serialize;

/// One broken input, located as Svix locates it (`["body", "name"]`,
/// `["query", "limit"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl Invalid {
    /// A field of the body, by its dotted name (`eventTypes.[0]`).
    pub fn body(field: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: loc_of(field),
            msg: msg.into(),
            kind: "value_error",
        }
    }

    pub fn query(name: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["query".into(), name.into()],
            msg: msg.into(),
            kind: "value_error",
        }
    }
}

/// Where a field is: `/data/x` (a schema violation of the published data)
/// is in the payload; other names are dotted paths in the body.
fn loc_of(field: &str) -> Vec<String> {
    let mut loc = vec!["body".to_string()];
    if let Some(pointer) = field.strip_prefix("/data") {
        loc.push("payload".into());
        loc.extend(
            pointer
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    } else if !field.is_empty() {
        loc.extend(field.split('.').map(str::to_string));
    }
    loc
}

#[derive(Debug)]
pub enum SvixError {
    Http {
        status: StatusCode,
        code: String,
        detail: String,
    },
    Validation(Vec<Invalid>),
}

pub type SvixResult<T> = Result<T, SvixError>;

impl SvixError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self::Http {
            status,
            code: code.to_string(),
            detail: detail.into(),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_failed", detail)
    }

    pub fn invalid(invalid: Invalid) -> Self {
        Self::Validation(vec![invalid])
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
    }
}

/// A list's answer with a cursor that names nothing the list holds
/// (`AppError::NotFound`) as Svix's 422 naming `iterator`, saying `what`;
/// any other error as it is.
pub fn iterator_names(what: &'static str) -> impl FnOnce(AppError) -> SvixError {
    move |e| match e {
        AppError::NotFound { .. } => SvixError::invalid(Invalid::query("iterator", what)),
        other => other.into(),
    }
}

impl From<Vec<ValidationError>> for SvixError {
    fn from(errors: Vec<ValidationError>) -> Self {
        Self::Validation(
            errors
                .into_iter()
                .map(|e| Invalid::body(&e.field, e.reason))
                .collect(),
        )
    }
}

impl From<ValidationError> for SvixError {
    fn from(e: ValidationError) -> Self {
        Self::from(vec![e])
    }
}

impl From<AppError> for SvixError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(errors) => Self::from(errors),
            AppError::BadRequest(detail) => Self::bad_request("bad_request", detail),
            AppError::NothingFound { code, detail } => {
                Self::new(StatusCode::NOT_FOUND, code, detail)
            }
            e @ AppError::NotFound { .. } => Self::not_found(e.to_string()),
            // Svix's code for a taken uid or event id.
            AppError::Conflict {
                code: "uid_taken" | "duplicate_event_id",
                detail,
            } => Self::conflict(detail),
            AppError::Conflict { code, detail } => Self::new(StatusCode::CONFLICT, code, detail),
            // A provider's answer (connectors): as Hookline's own API says it.
            e @ AppError::Upstream { .. } => Self::from(crate::error::ApiError::from(e)),
            // The delivery backlog at its bound: a 503 the SDKs retry.
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
            AppError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an internal error occurred; quote the request id when reporting it",
                )
            }
        }
    }
}

impl From<crate::error::ApiError> for SvixError {
    fn from(e: crate::error::ApiError) -> Self {
        Self::Http {
            status: e.status,
            code: e.code,
            detail: e.detail,
        }
    }
}

#[derive(Serialize)]
struct HttpErrorOut<'a> {
    code: &'a str,
    detail: &'a str,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ValidationOut<'a> {
    detail: &'a [Invalid],
}

impl IntoResponse for SvixError {
    fn into_response(self) -> Response {
        let mut response = match &self {
            Self::Http {
                status,
                code,
                detail,
            } => {
                let request_id = current_request_id();
                let mut response = (
                    *status,
                    axum::Json(HttpErrorOut {
                        code,
                        detail,
                        request_id: &request_id,
                    }),
                )
                    .into_response();
                crate::error::set_retry_after(&mut response, code);
                response
            }
            Self::Validation(detail) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(ValidationOut { detail }),
            )
                .into_response(),
        };
        response.extensions_mut().insert(ErrorShaped);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_back_says_when_to_retry() {
        let busy = SvixError::from(AppError::Busy {
            code: "backlog_full",
            detail: "full".into(),
        })
        .into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()["retry-after"], "1");
        let down = SvixError::from(AppError::Unavailable("down".into())).into_response();
        assert_eq!(down.headers()["retry-after"], "5");
        let missing = SvixError::not_found("x").into_response();
        assert!(!missing.headers().contains_key("retry-after"));
    }

    #[test]
    fn fields_are_located_as_svix_does() {
        assert_eq!(Invalid::body("name", "x").loc, vec!["body", "name"]);
        assert_eq!(
            Invalid::body("/data/amount/0", "x").loc,
            vec!["body", "payload", "amount", "0"]
        );
        assert_eq!(
            Invalid::body("application.uid", "x").loc,
            vec!["body", "application", "uid"]
        );
        assert_eq!(Invalid::query("limit", "x").loc, vec!["query", "limit"]);
    }
}
