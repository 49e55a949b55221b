//! `GET /metrics`: this process's metrics in the Prometheus text format.
//!
//! Access: with `HOOKLINE_METRICS_TOKEN` set, `Authorization: Bearer
//! <token>` from anywhere; without it, clients on a loopback address only.
//! The listener of `HOOKLINE_METRICS_LISTEN` (`--metrics-listen`) serves
//! nothing else and answers every client that reaches it (still asking
//! for the token when one is set).

use crate::error::{ApiError, ApiResult};
use crate::serve::Peer;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hookline_infrastructure::config::Secret;
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Set on requests that came in through the metrics-only listener.
#[derive(Debug, Clone, Copy)]
pub struct MetricsListener;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Whether a scrape may read the metrics.
///
/// # Errors
/// 401 without the right token when one is configured; 403 for a
/// non-loopback client when none is (unless on the metrics listener).
pub fn access(
    token: Option<&Secret>,
    headers: &HeaderMap,
    peer: Option<Peer>,
    metrics_listener: bool,
) -> Result<(), ApiError> {
    if let Some(token) = token {
        let given = crate::middleware::bearer_token(headers, "HOOKLINE_METRICS_TOKEN")?;
        return if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::unauthorized(
                "send `Authorization: Bearer <HOOKLINE_METRICS_TOKEN>`",
            ))
        };
    }
    if metrics_listener || peer.is_some_and(|Peer(addr)| addr.ip().is_loopback()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "without HOOKLINE_METRICS_TOKEN, /metrics answers loopback clients only; \
             set the token (and send it as a bearer token) or use HOOKLINE_METRICS_LISTEN",
        ))
    }
}

/// Metrics
///
/// This process's metrics in the Prometheus text format (0.0.4): its own
/// counters and histograms (publishing, attempts, HTTP requests), the
/// gauges every process reads alike from the database (due queue,
/// projection lag, subscriptions by state), its connection pools and
/// process metrics. With `HOOKLINE_METRICS_TOKEN` set it asks for that
/// token as a bearer token; otherwise it answers loopback clients only.
/// See docs/monitoring/.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "service",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "The metrics.", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8",
            example = "# HELP hookline_events_published_total Events published through this process.\n# TYPE hookline_events_published_total counter\nhookline_events_published_total 42\n"),
        (status = 401, description = "- `unauthorized`: HOOKLINE_METRICS_TOKEN is set and the `Authorization: Bearer <token>` header is missing, malformed or wrong"),
        (status = 403, description = "- `forbidden`: HOOKLINE_METRICS_TOKEN is not set and the client is not on a loopback address"),
    )
)]
async fn metrics(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    listener: Option<Extension<MetricsListener>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    access(
        state.metrics_token.as_ref(),
        &headers,
        peer.map(|Extension(p)| p),
        listener.is_some(),
    )?;
    let body = state.metrics.scrape().await?;
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn peer(addr: &str) -> Option<Peer> {
        Some(Peer(addr.parse::<SocketAddr>().unwrap()))
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    #[test]
    fn without_a_token_only_loopback_clients_may_scrape() {
        let none = HeaderMap::new();
        assert!(access(None, &none, peer("127.0.0.1:5000"), false).is_ok());
        assert!(access(None, &none, peer("[::1]:5000"), false).is_ok());
        let err = access(None, &none, peer("10.1.2.3:5000"), false).unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        let err = access(None, &none, peer("[2001:db8::1]:5000"), false).unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        // No known peer: refused.
        assert!(access(None, &none, None, false).is_err());
        // The metrics-only listener answers whoever reaches it.
        assert!(access(None, &none, peer("10.1.2.3:5000"), true).is_ok());
    }

    #[test]
    fn with_a_token_everyone_must_send_it() {
        let token = Secret::new("s3cret");
        let err = access(Some(&token), &HeaderMap::new(), peer("127.0.0.1:1"), false).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        let err = access(Some(&token), &bearer("wrong"), peer("127.0.0.1:1"), true).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert!(access(Some(&token), &bearer("s3cret"), peer("10.1.2.3:1"), false).is_ok());
        assert!(access(Some(&token), &bearer("s3cret"), None, true).is_ok());
    }
}
