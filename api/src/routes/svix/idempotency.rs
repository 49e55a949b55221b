//! `idempotency-key` on every POST of `/api/v1` (the SDKs send one with
//! each POST and keep it across their retries): the first successful
//! answer is kept for 12 hours and given again to a repeat of the same
//! request; the same key with a different body is refused (409); a repeat
//! that arrives while the first is still being answered waits for it. Keys
//! are per credential and per path and query, as in Svix.

use super::error::SvixError;
use super::Organisation;
use crate::state::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookline_application::deliveries::IdempotencyKey;
use hookline_application::idempotency::Begun;
use hookline_application::ports::RememberedAnswer;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
/// Set on a response that repeats the first answer to a key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A digest of the body: of its JSON (so formatting and key order do not
/// matter) when it is JSON, of its bytes otherwise.
fn fingerprint(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| body.to_vec());
    hex::encode(Sha256::digest(&canonical))
}

pub async fn remember(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw_key.to_str().ok().map(IdempotencyKey::parse) {
        Some(Ok(k)) => k,
        _ => {
            return SvixError::bad_request(
                "invalid_idempotency_key",
                "the idempotency-key header must be 1–255 visible ASCII characters",
            )
            .into_response()
        }
    };
    let Some(org) = req.extensions().get::<Organisation>().cloned() else {
        return SvixError::unauthorized("authentication required").into_response();
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let scope = hex::encode(Sha256::digest(
        format!("{}\n{target}", org.credential).as_bytes(),
    ));
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, state.svix_max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return SvixError::payload_too_large("Request payload is too large.").into_response()
        }
    };
    match state
        .idempotency
        .begin(&scope, key.as_str(), &fingerprint(&bytes))
        .await
    {
        Ok(Begun::Replay(answer)) => replayed(answer),
        Ok(Begun::Proceed) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            keep(&state, &scope, &key, response).await
        }
        Err(e) => SvixError::from(e).into_response(),
    }
}

/// Keeps a successful answer (lets the key go otherwise) and returns it.
async fn keep(state: &AppState, scope: &str, key: &IdempotencyKey, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "reading an answer to keep it failed");
            drop(state.idempotency.finish(scope, key.as_str(), None).await);
            return SvixError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the answer could not be read",
            )
            .into_response();
        }
    };
    let answer = parts.status.is_success().then(|| RememberedAnswer {
        status: parts.status.as_u16(),
        body: body.to_vec(),
    });
    if let Err(e) = state.idempotency.finish(scope, key.as_str(), answer).await {
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
