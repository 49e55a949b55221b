//! `Idempotency-Key` on POSTs, for the `/v1` API and the Svix-compatible
//! one alike: the first successful answer is kept (12 hours by default)
//! and given again to a repeat of the same request, marked
//! `idempotent-replayed: true`; the same key with a different body is
//! refused (409 `idempotency_key_reused`); a repeat that arrives while the
//! first is still being answered waits for it (then 409
//! `request_in_progress`). An answer that is not a success is not kept: a
//! repeat runs again. Keys are per caller (a tenant, or the Svix
//! credential) and per path and query. Each surface writes the refusals
//! in its own error shape ([`Refusals`]).

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookline_application::deliveries::IdempotencyKey;
use hookline_application::idempotency::Begun;
use hookline_application::ports::{HeldKey, RememberedAnswer};
use hookline_application::tenants::Principal;
use hookline_application::AppError;
use hookline_domain::ValidationError;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
/// Set on a response that repeats the first answer to a key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// How a surface answers what the idempotency layer refuses.
pub trait Refusals {
    /// The key is not 1–255 visible ASCII characters.
    fn bad_key(reason: ValidationError) -> Response;
    /// The body is over the surface's limit.
    fn too_large() -> Response;
    /// The answer to keep could not be read.
    fn unreadable() -> Response;
    /// The key is taken by another request, or the store failed.
    fn failed(e: AppError) -> Response;

    /// Whether the route at `path` keeps the key in the log as well (a
    /// publish), so that running a repeat again finds its first answer.
    fn keeps_keys_in_the_log(_path: &str) -> bool {
        false
    }
}

/// A digest of the body: of its JSON (so formatting and key order do not
/// matter) when it is JSON, of its bytes otherwise.
fn fingerprint(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| body.to_vec());
    hex::encode(Sha256::digest(&canonical))
}

/// Runs `req` under its `Idempotency-Key` (a POST without one, or any
/// other method, runs as it is). `caller` names who asks (the scope of
/// the keys); `max_body` is the surface's body limit.
pub async fn run<R: Refusals>(
    state: &AppState,
    caller: &str,
    max_body: usize,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw_key
        .to_str()
        .map_err(|_| {
            ValidationError::new("idempotency_key", "must be 1–255 visible ASCII characters")
        })
        .and_then(IdempotencyKey::parse)
    {
        Ok(k) => k,
        Err(reason) => return R::bad_key(reason),
    };
    // The path as the client sent it (a nested router sees its own part),
    // without the trailing slash the router ignores.
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().clone(), |o| o.0.clone());
    let path = match uri.path().trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let target = match uri.query() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_string(),
    };
    let scope = hex::encode(Sha256::digest(format!("{caller}\n{target}").as_bytes()));
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, max_body).await else {
        return R::too_large();
    };
    let held = state.idempotency.key_for(
        &scope,
        key.as_str(),
        &crate::error::current_request_id(),
        R::keeps_keys_in_the_log(path),
    );
    // From here a request cut off (the client gone, or the request
    // timeout) before its changes were handed to the database lets its
    // claim go, even one made by a claim it did not see answered.
    let mut cut_off = CutOff {
        task: None,
        committing: None,
        state: state.clone(),
        held,
    };
    match state
        .idempotency
        .begin(&cut_off.held, &fingerprint(&bytes))
        .await
    {
        Ok(Begun::Replay(answer)) => {
            cut_off.disarm();
            replayed(answer)
        }
        Ok(Begun::Proceed) => {
            let req = Request::from_parts(parts, Body::from(bytes));
            run_to_the_end::<R>(cut_off, req, next).await
        }
        Err(e) => {
            if matches!(e, AppError::Conflict { .. }) {
                // Another request holds the key.
                cut_off.disarm();
            }
            R::failed(e)
        }
    }
}

/// Runs a claimed request in a task of its own, so that its answer is kept
/// even when this request is cut off (the client went away, or the request
/// timeout answered for it) after its changes were handed to the database:
/// a repeat then gets that answer instead of running it again. Cut off
/// before that point, the work is stopped, as any request's would be, and
/// the key let go (nothing was stored). While it runs, its claim is renewed.
async fn run_to_the_end<R: Refusals>(mut cut_off: CutOff, req: Request, next: Next) -> Response {
    use hookline_application::commitment;
    use tracing::Instrument as _;
    let committing = commitment::current()
        .unwrap_or_else(|| std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let request_id = crate::error::current_request_id();
    let state = cut_off.state.clone();
    let work = {
        let (state, held, committing) = (state.clone(), cut_off.held.clone(), committing.clone());
        async move {
            let answering = commitment::watch(committing, next.run(req));
            let response = tokio::select! {
                response = answering => response,
                () = state.idempotency.hold(&held) => {
                    // `hold` never ends.
                    return R::unreadable();
                }
            };
            keep::<R>(&state, &held, response).await
        }
    };
    let task = state.finishing.spawn(
        crate::error::REQUEST_ID
            .scope(request_id, work)
            .instrument(tracing::Span::current()),
    );
    cut_off.task = Some(task.abort_handle());
    cut_off.committing = Some(committing);
    let answer = task.await;
    if let Err(e) = &answer {
        // It ended without keeping or letting go of its claim.
        tracing::error!(error = %e, "an idempotent request's task failed");
        cut_off.release();
    }
    cut_off.disarm();
    answer.unwrap_or_else(|_| R::unreadable())
}

/// What happens to a claimed request when it is dropped before its answer:
/// its task (if it started) is stopped and its key let go while nothing
/// was handed to the database; left to finish (and keep its answer) after.
struct CutOff {
    task: Option<tokio::task::AbortHandle>,
    committing: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    state: AppState,
    held: HeldKey,
}

impl CutOff {
    /// The request has its answer: nothing to do when it is dropped.
    fn disarm(&mut self) {
        self.task = None;
        self.committing = None;
        self.held.claim = uuid::Uuid::nil();
    }

    fn release(&self) {
        let (state, held) = (self.state.clone(), self.held.clone());
        tokio::spawn(async move {
            drop(state.idempotency.finish(&held, None).await);
            // A claim dropped while its INSERT was on the wire may commit
            // after the first try: look once more.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            drop(state.idempotency.finish(&held, None).await);
        });
    }
}

impl Drop for CutOff {
    fn drop(&mut self) {
        if self.held.claim.is_nil() {
            return;
        }
        let passed = self
            .committing
            .as_ref()
            .is_some_and(|c| hookline_application::commitment::passed(c));
        if passed {
            return;
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.release();
    }
}

/// Keeps a successful answer (lets the key go otherwise) and returns it.
async fn keep<R: Refusals>(state: &AppState, held: &HeldKey, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "reading an answer to keep it failed");
            drop(state.idempotency.finish(held, None).await);
            return R::unreadable();
        }
    };
    let answer = parts.status.is_success().then(|| RememberedAnswer {
        status: parts.status.as_u16(),
        body: body.to_vec(),
    });
    if let Err(e) = state.idempotency.finish(held, answer).await {
        // The request succeeded; a repeat would run it again.
        tracing::warn!(error = %e, "keeping the answer to an idempotent request failed");
    }
    Response::from_parts(parts, Body::from(body))
}

fn replayed(answer: RememberedAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let empty = answer.body.is_empty();
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    if empty {
        headers.remove(header::CONTENT_TYPE);
    } else {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// `/v1`'s refusals: `{code, detail, request_id}`.
struct V1;

impl Refusals for V1 {
    fn bad_key(reason: ValidationError) -> Response {
        ApiError::from(AppError::invalid(reason)).into_response()
    }

    fn too_large() -> Response {
        ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response()
    }

    fn unreadable() -> Response {
        ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
    }

    fn failed(e: AppError) -> Response {
        ApiError::from(e).into_response()
    }
}

/// The `/v1` routes that keep their own idempotency keys, in the log with
/// the events they publish (`POST /v1/events`, `POST /v1/deliveries`).
pub const PUBLISHING: [&str; 2] = ["/v1/events", "/v1/deliveries"];

/// Routes whose answers carry a credential (a new API key, a portal
/// link): their answers are kept per calling key, not per tenant.
const CREDENTIALS: [&str; 2] = ["/v1/api-keys/rotate", "/v1/portal-sessions"];

/// `/v1`'s layer (inside its authentication): keys are per tenant.
pub async fn remember_v1(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return next.run(req).await;
    }
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |o| o.0.path());
    if PUBLISHING.contains(&path) {
        return next.run(req).await;
    }
    let Some(caller) = req.extensions().get::<Principal>().copied() else {
        return ApiError::unauthorized("the API key is not valid").into_response();
    };
    // An answer that hands out a credential goes back only to the key that
    // asked: another key of the tenant (a retiring one, say) repeating the
    // request with a guessed key would otherwise get a new key or link.
    let scope = if CREDENTIALS.contains(&path.trim_end_matches('/')) {
        format!("tenant:{}:key:{}", caller.tenant_id, caller.key_id)
    } else {
        format!("tenant:{}", caller.tenant_id)
    };
    run::<V1>(&state, &scope, state.max_body_bytes, req, next).await
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn the_same_json_has_the_same_fingerprint() {
        assert_eq!(
            fingerprint(br#"{"a":1,"b":[2]}"#),
            fingerprint(br#"{ "b": [2], "a": 1 }"#)
        );
        assert_ne!(fingerprint(br#"{"a":1}"#), fingerprint(br#"{"a":2}"#));
        assert_eq!(fingerprint(b""), fingerprint(b""));
    }
}
