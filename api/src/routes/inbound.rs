//! `POST /in/{source_id}`: where providers deliver webhooks to a source.
//! No API key: the provider's signature (or secret header) is the
//! authentication, checked over the raw bytes. Answers 200 as soon as the
//! webhook is recorded with what it publishes; a provider's retry of the
//! same delivery gets the same answer and publishes nothing new.

use super::openapi::examples as ex;
use crate::error::{ApiError, ApiResult};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hookline_application::sources::{InboundError, InboundRequest, RefusalStatus};
use hookline_domain::{EventId, InboundId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The address a connection came from (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// The answer to an accepted (or repeated) inbound webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundResponse {
    /// `accepted`, or `duplicate` for a repeat of an accepted delivery.
    #[schema(value_type = String, pattern = "^(accepted|duplicate)$")]
    pub status: &'static str,
    #[schema(value_type = uuid::Uuid)]
    pub inbound_id: InboundId,
    /// The published event (absent when no subscription matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>, nullable = false)]
    pub event_id: Option<EventId>,
    /// Deliveries enqueued to the tenant's subscriptions.
    pub deliveries: usize,
}

/// Header names in lowercase, the first value of each (values that are not
/// visible ASCII kept lossily: they cannot match a signature).
fn headers(map: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in map {
        out.entry(name.as_str().to_string())
            .or_insert_with(|| String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    out
}

/// Receive a webhook from a provider
///
/// Where a source's provider delivers (the source's `ingest_url`). There
/// is no API key: the provider's signature over the raw body bytes, or the
/// secret header, is the authentication, as the source's `kind` says:
///
/// - `inflow`: `x-inflow-hmac-sha256: base64(HMAC-SHA256(secret, body))`;
/// - `hmac-sha256-hex`: `X-Signature: sha256=<hex HMAC-SHA256(secret, body)>`;
/// - `standard-webhooks`: `webhook-id`, `webhook-timestamp` (within 5
///   minutes) and `webhook-signature: v1,<base64>`;
/// - `header-secret` and `siigo`: the secret itself in the source's
///   `header_name`.
///
/// The body is the provider's own: any JSON object, kept byte for byte.
/// The event name and data are read from it as the source says
/// (`event_type`, `data`). A verified webhook is recorded
/// (`InboundReceived`) and published to the tenant's matching
/// subscriptions in one transaction; a repeat of a delivery (the same
/// delivery id, or the same body, within the source's window) is answered
/// `duplicate` and publishes nothing. A refused request is recorded in the
/// source's rejections (never as an event).
#[utoipa::path(
    post,
    path = "/in/{source_id}",
    operation_id = "receive_inbound",
    tag = "inbound",
    params(
        ("source_id" = String, Path, description = "The source's id (from its `ingest_url`)."),
        ("x-inflow-hmac-sha256" = Option<String>, Header, description = "`inflow` sources: the base64 HMAC-SHA256 of the raw body, keyed with the secret's text."),
        ("X-Signature" = Option<String>, Header, description = "`hmac-sha256-hex` sources: `sha256=` and the hex HMAC-SHA256 of the raw body."),
        ("webhook-id" = Option<String>, Header, description = "`standard-webhooks` sources: the message id."),
        ("webhook-timestamp" = Option<String>, Header, description = "`standard-webhooks` sources: Unix seconds, within 5 minutes of now."),
        ("webhook-signature" = Option<String>, Header, description = "`standard-webhooks` sources: `v1,<base64>` signatures, space-separated."),
    ),
    request_body(
        description = "The provider's webhook, exactly as it sends it: any JSON object (InFlow: `{\"event\", \"data\", \"timestamp\"}`; Siigo: the resource with `topic` and `company_key`).",
        content = Object,
        content_type = "application/json",
        example = json!(ex::inflow_delivery()),
    ),
    responses(
        (status = 200, description = "Accepted (or a repeat of an accepted delivery).",
            body = InboundResponse, example = json!(ex::inbound_accepted())),
        (status = 400, description = "- `invalid_body`: the body is not a JSON object (or not UTF-8)"),
        (status = 401, description = "- `signature_missing`: the signature (or secret) header is absent\n- `signature_malformed`: it is not in the kind's format (bad base64 or hex, no `v1,`)\n- `signature_invalid`: it does not match the body under any of the source's secrets\n- `timestamp_outside_tolerance`: a Standard Webhooks timestamp more than 5 minutes from now (a replay)\n- `secret_missing`: the source's secret header is absent\n- `secret_invalid`: the secret header's value is wrong"),
        (status = 404, description = "- `source_not_found`: no source has this id"),
        (status = 410, description = "- `source_deleted`: the source was deleted"),
        (status = 413, description = "- `payload_too_large`: the body is larger than HOOKLINE_MAX_BODY_BYTES allows"),
        (status = 415, description = "- `unsupported_media_type`: the body has a `Content-Encoding` other than `identity` (bodies are verified and stored as sent, never decompressed)"),
        (status = 422, description = "- `event_type_unresolved`: the event name is not where the source says, or not a valid event name\n- `data_unresolved`: the data is not where the source says\n- `event_refused`: the tenant's catalogue refuses the event (its schema, or strict mode)"),
        (status = 503, description = "- `unavailable`: the database is unreachable right now; the provider should retry"),
    )
)]
async fn receive(
    State(state): State<AppState>,
    CurrentRequestId(request_id): CurrentRequestId,
    peer: Option<Extension<PeerAddr>>,
    Path(source_id): Path<String>,
    header_map: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let remote_addr = peer.map(|Extension(PeerAddr(addr))| addr.to_string());
    // Over the limit: refused before reading (no `100 Continue`), and still
    // listed in the source's rejections and counted, as every refusal is.
    let declared = header_map
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = state.max_body_bytes;
    let read = match declared {
        Some(n) if n > limit as u64 => None,
        _ => match axum::body::to_bytes(body, limit).await {
            Ok(bytes) => Some(bytes),
            Err(e) if is_too_large(&e) => None,
            Err(e) => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    format!("the request body could not be read: {e}"),
                ))
            }
        },
    };
    let Some(body) = read else {
        let request = InboundRequest {
            source_id,
            headers: headers(&header_map),
            body: Vec::new(),
            remote_addr,
            request_id,
        };
        let declared = declared.map_or_else(String::new, |n| format!(" ({n} bytes declared)"));
        let refused = state
            .inbound
            .refuse_too_large(
                request,
                format!("the body{declared} is larger than the {limit} bytes this server accepts (HOOKLINE_MAX_BODY_BYTES)"),
            )
            .await;
        return Ok(refusal_response(refused));
    };
    let request = InboundRequest {
        source_id,
        headers: headers(&header_map),
        body: body.to_vec(),
        remote_addr,
        request_id,
    };
    match state.inbound.receive(request).await {
        Ok(accepted) => Ok(Json(InboundResponse {
            status: if accepted.duplicate {
                "duplicate"
            } else {
                "accepted"
            },
            inbound_id: accepted.inbound_id,
            event_id: accepted.event_id,
            deliveries: accepted.deliveries,
        })
        .into_response()),
        Err(e) => Ok(refusal_response(e)),
    }
}

fn refusal_response(e: InboundError) -> Response {
    match e {
        InboundError::Refused(r) => {
            let status = match r.status {
                RefusalStatus::NotFound => StatusCode::NOT_FOUND,
                RefusalStatus::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                RefusalStatus::Gone => StatusCode::GONE,
                RefusalStatus::Unauthorized => StatusCode::UNAUTHORIZED,
                RefusalStatus::BadRequest => StatusCode::BAD_REQUEST,
                RefusalStatus::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                RefusalStatus::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let mut response = ApiError::new(status, r.code, r.detail).into_response();
            // Not a bearer-authenticated route.
            response.headers_mut().remove("www-authenticate");
            response
        }
        InboundError::Failed(e) => ApiError::from(e).into_response(),
    }
}

/// Whether reading the body stopped at the size limit.
fn is_too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}
