//! `POST /in/{source_id}`: where providers deliver webhooks to a source.
//! No API key: the provider's signature (or secret header) is the
//! authentication, checked over the raw bytes. Answers 200 as soon as the
//! webhook is recorded with what it publishes; a provider's retry of the
//! same delivery gets the same answer and publishes nothing new.

use crate::error::{ApiError, ApiResult};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use hookline_application::sources::{InboundError, InboundRequest, RefusalStatus};
use hookline_domain::{EventId, InboundId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The address a connection came from (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

pub fn router() -> Router<AppState> {
    Router::new().route("/in/{source_id}", post(receive))
}

/// The answer to an accepted (or repeated) inbound webhook.
#[derive(Debug, Serialize)]
pub struct InboundResponse {
    /// `accepted`, or `duplicate` for a repeat of an accepted delivery.
    pub status: &'static str,
    pub inbound_id: InboundId,
    #[serde(skip_serializing_if = "Option::is_none")]
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

async fn receive(
    State(state): State<AppState>,
    CurrentRequestId(request_id): CurrentRequestId,
    peer: Option<Extension<PeerAddr>>,
    Path(source_id): Path<String>,
    header_map: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            ApiError::bad_request(
                "invalid_body",
                format!("the request body could not be read: {rejection}"),
            )
        }
    })?;
    let request = InboundRequest {
        source_id,
        headers: headers(&header_map),
        body: body.to_vec(),
        remote_addr: peer.map(|Extension(PeerAddr(addr))| addr.to_string()),
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
        Err(InboundError::Refused(r)) => {
            let status = match r.status {
                RefusalStatus::NotFound => StatusCode::NOT_FOUND,
                RefusalStatus::Gone => StatusCode::GONE,
                RefusalStatus::Unauthorized => StatusCode::UNAUTHORIZED,
                RefusalStatus::BadRequest => StatusCode::BAD_REQUEST,
                RefusalStatus::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let mut response = ApiError::new(status, r.code, r.detail).into_response();
            // Not a bearer-authenticated route.
            response.headers_mut().remove("www-authenticate");
            Ok(response)
        }
        Err(InboundError::Failed(e)) => Err(e.into()),
    }
}
