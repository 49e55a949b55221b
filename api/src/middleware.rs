//! Request-wide concerns: the request id (taken from `X-Request-Id` or
//! generated, echoed, put in the log span and in error bodies), the error
//! shape of framework-made errors, and bearer authentication for `/v1`.

use crate::error::{ApiError, ErrorShaped, REQUEST_ID};
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookline_application::metrics::MetricsService;
use hookline_application::tenants::Principal;
use hookline_application::RequestId;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What one request may take: the body size, and the time to read it and
/// answer.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    /// The body limit of the Svix-compatible API (`/api/v1`).
    pub svix_max_body_bytes: usize,
    pub timeout: Duration,
}

impl RequestLimits {
    /// The body limit of a request to `path`.
    pub fn body_limit(&self, path: &str) -> usize {
        if path == "/api/v1" || path.starts_with("/api/v1/") {
            self.svix_max_body_bytes
        } else {
            self.max_body_bytes
        }
    }
}

/// What the outermost layer needs: the limits, and the metrics it counts
/// every answered request in.
#[derive(Debug, Clone)]
pub struct RequestScope {
    pub limits: RequestLimits,
    pub metrics: Arc<MetricsService>,
    /// Work of requests already answered that shutdown waits for
    /// (`AppState::finishing`).
    pub finishing: tokio_util::task::TaskTracker,
}

/// The route template a request matched (`/v1/subscriptions/{id}`); the
/// metrics say `unmatched` without one, never the raw path, so the label
/// stays bounded.
fn route_of(req: &Request) -> Option<MatchedPath> {
    req.extensions().get::<MatchedPath>().cloned()
}

/// Outermost layer: assigns the request id, normalises error bodies,
/// refuses a declared body over the limit before reading it (and before a
/// `100 Continue`), and answers `408` when reading the request and
/// answering it takes longer than the request timeout.
pub async fn request_context(
    State(scope): State<RequestScope>,
    mut req: Request,
    next: Next,
) -> Response {
    let limits = scope.limits;
    let route = route_of(&req);
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::from_client)
        .unwrap_or_else(|| RequestId::generated(uuid::Uuid::now_v7()));
    req.extensions_mut().insert(request_id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %logged_path(req.uri().path()),
        tenant_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let id = request_id.to_string();
    async move {
        let mut response = REQUEST_ID
            .scope(id.clone(), async move {
                let declared = req
                    .headers()
                    .get(axum::http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let limit = limits.body_limit(req.uri().path());
                // `/in/{source_id}` refuses its own (with the same limit):
                // the source's tenant sees the refusal in its rejections.
                let inbound = req.uri().path().starts_with("/in/");
                let too_large = !inbound && declared.is_some_and(|n| n > limit as u64);
                let response = if too_large {
                    ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response()
                } else if !decodes_to_utf8(req.uri().path()) {
                    ApiError::bad_request(
                        "invalid_path",
                        "the URL path does not decode to UTF-8 text (check its %-escapes)",
                    )
                    .into_response()
                } else {
                    answer_within(limits.timeout, &scope.finishing, next.run(req)).await
                };
                let status = response.status();
                if (status.is_client_error() || status.is_server_error())
                    && response.extensions().get::<ErrorShaped>().is_none()
                {
                    ApiError::from_status(status).into_response()
                } else {
                    response
                }
            })
            .await;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        scope.metrics.http_request(
            method.as_str(),
            route.as_ref().map_or("unmatched", MatchedPath::as_str),
            status,
            elapsed,
        );
        let elapsed_ms = elapsed.as_millis() as u64;
        let code = response
            .extensions()
            .get::<crate::error::ErrorCode>()
            .map_or("", |c| c.0.as_str());
        if status == 503 {
            // Unavailable for now (push-back such as `backlog_full`, a
            // database that is down, not ready yet): the client retries;
            // not an error of this server.
            tracing::warn!(status, code, elapsed_ms, "request refused for now");
        } else if status >= 500 {
            tracing::error!(status, code, elapsed_ms, "request failed");
        } else if status >= 400 {
            tracing::info!(status, code, elapsed_ms, "request finished");
        } else {
            tracing::info!(status, elapsed_ms, "request finished");
        }
        response
    }
    .instrument(span)
    .await
}

/// Runs the handler, bounded by `timeout`. A request whose writes have
/// reached the point of no return when the timeout strikes is not answered
/// "timed out" (the work is done or being done): it gets its real answer,
/// or, if that takes another `timeout` too, a 503 saying plainly that the
/// outcome is unknown and where to look it up. Its work then goes on in
/// `finishing`, which shutdown waits for, so that a stopping process does
/// not cut off a commit under way.
async fn answer_within(
    timeout: Duration,
    finishing: &tokio_util::task::TaskTracker,
    handler: impl Future<Output = Response> + Send + 'static,
) -> Response {
    let committing = Arc::new(AtomicBool::new(false));
    let mut work = Box::pin(hookline_application::commitment::watch(
        committing.clone(),
        handler,
    ));
    if let Ok(response) = tokio::time::timeout(timeout, &mut work).await {
        return response;
    }
    if !committing.load(Ordering::SeqCst) {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request was not received and answered within {} s; nothing was stored",
                timeout.as_secs()
            ),
        )
        .into_response();
    }
    match tokio::time::timeout(timeout, &mut work).await {
        Ok(response) => response,
        Err(_) => {
            let request_id = crate::error::current_request_id();
            finishing.spawn(
                crate::error::REQUEST_ID
                    .scope(request_id, async move { drop(work.await) })
                    .instrument(tracing::Span::current()),
            );
            outcome_unknown(timeout)
        }
    }
}

/// Longest request path written into log lines; a longer one is cut
/// (with `…`) so a request cannot make each of its log lines as long as
/// the URI it sent.
const MAX_LOGGED_PATH: usize = 256;

fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.len() <= MAX_LOGGED_PATH {
        return path.into();
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end]).into()
}

/// `503 outcome_unknown`: the request's changes were being committed for
/// longer than twice the timeout.
fn outcome_unknown(timeout: Duration) -> Response {
    ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_unknown",
            format!(
                "the request was received and its changes were being committed when it took over {} s; \
                 whether they were stored is not known yet. Look it up with GET /v1/requests/{} \
                 before repeating it (a POST repeated with the same Idempotency-Key is not done \
                 twice; other requests may be)",
                2 * timeout.as_secs(),
                crate::error::current_request_id()
            ),
        )
        .into_response()
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in
/// any case), or a 401 that says what is wrong; `what` names the token.
///
/// # Errors
/// Missing, sent more than once, non-ASCII, or another scheme.
pub fn bearer_token<'h>(headers: &'h HeaderMap, what: &str) -> Result<&'h str, ApiError> {
    let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::unauthorized(format!(
            "missing Authorization header; send `Authorization: Bearer <{what}>`"
        )));
    };
    if values.next().is_some() {
        // Which one a proxy or a server reads differs: refuse rather than pick.
        return Err(ApiError::unauthorized(format!(
            "more than one Authorization header; send one, `Authorization: Bearer <{what}>`"
        )));
    }
    let shape = || {
        ApiError::unauthorized(format!(
            "the Authorization header must be `Bearer <{what}>` in visible ASCII"
        ))
    };
    let value = value.to_str().map_err(|_| shape())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(shape)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(shape());
    }
    Ok(token)
}

/// `/v1` guard: `Authorization: Bearer <api key>` or 401.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let key = match bearer_token(req.headers(), "api key") {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    match state.auth.authenticate(key).await {
        Ok(Some(principal)) => {
            tracing::Span::current()
                .record("tenant_id", tracing::field::display(principal.tenant_id));
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Ok(None) => ApiError::unauthorized("the API key is not valid").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The authenticated tenant of a `/v1` request.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .copied()
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("authentication required"))
    }
}

/// The request id of the current request.
#[derive(Debug, Clone)]
pub struct CurrentRequestId(pub RequestId);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CurrentRequestId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<RequestId>()
                .cloned()
                .unwrap_or_else(|| RequestId::generated(uuid::Uuid::now_v7())),
        ))
    }
}

/// Whether `path`, %-decoded, is UTF-8 (a malformed escape counts as
/// literal text).
fn decodes_to_utf8(path: &str) -> bool {
    if !path.contains('%') {
        return true;
    }
    std::str::from_utf8(&hookline_domain::percent::decode(path)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::{decodes_to_utf8, logged_path, MAX_LOGGED_PATH};

    #[test]
    fn long_paths_are_cut_in_logs() {
        assert_eq!(logged_path("/v1/subscriptions"), "/v1/subscriptions");
        let long = format!("/v1/{}", "é".repeat(5000));
        let cut = logged_path(&long);
        assert!(
            cut.len() <= MAX_LOGGED_PATH + '…'.len_utf8(),
            "{}",
            cut.len()
        );
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn paths_decode_to_utf8_or_not() {
        assert!(decodes_to_utf8("/v1/subscriptions/abc"));
        assert!(decodes_to_utf8("/v1/requests/a%20b%C3%A9"));
        assert!(decodes_to_utf8("/v1/requests/100%"));
        assert!(!decodes_to_utf8("/v1/subscriptions/%ff"));
        assert!(!decodes_to_utf8("/v1/requests/%C3"));
    }
}
