//! Messages (`/api/v1/app/{app_id}/msg`): published events. A message is
//! recorded even when no endpoint wants it, its `eventId` is unique per
//! application (a second one answers 409), and endpoints receive its
//! payload exactly as sent.

use super::apps::ApplicationIn;
use super::error::{iterator_names, Invalid, SvixError, SvixResult};
use super::extract::{svix_time, ListResponse, Params, SvixJson};
use super::ids::{self, Ref};
use super::{app, context, Organisation};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_application::deliveries::{IdempotencyKey, PublishEvent};
use hookline_application::messages::{ListMessages, MessageView};
use hookline_application::tenants::{TenantDetails, TenantView};
use hookline_application::AppError;
use hookline_domain::channel::Channels;
use hookline_domain::tenant::TenantName;
use hookline_domain::{EventId, EventType, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read))
}

/// Svix's payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Channels a message may list (Svix's `MessageIn.channels`).
const MESSAGE_CHANNELS: usize = 5;
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationsParams {
    /// Sent instead of `payload`: it must be a JSON object's text.
    #[serde(default)]
    pub raw_payload: Option<String>,
    /// Headers of the message's requests (the SDK's raw-payload helper sets
    /// `content-type`): only `content-type: application/json`, which
    /// Hookline sends anyway, is accepted.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// `MessageIn`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    /// A Hookline event name (`resource.action`: letters, digits and `_`
    /// in dot-separated segments, at most 100 characters; narrower than
    /// Svix's); it need not be in the catalogue.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 3, max_length = 100, pattern = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$")]
    pub event_type: Option<String>,
    /// A JSON object, up to 1 MiB; endpoints receive it exactly as sent.
    #[serde(default)]
    #[schema(value_type = Object, required = true)]
    pub payload: Option<Box<RawValue>>,
    /// The client's id for it, unique in the application: 1–256 of
    /// `a-zA-Z0-9-_.`, not starting with `msg_`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub event_id: Option<String>,
    /// Endpoints with channels receive it only on one of theirs (at most
    /// 5, as Svix allows a message).
    #[serde(default)]
    #[schema(min_items = 1, max_items = 5)]
    pub channels: Option<Vec<String>>,
    /// The application to create when the path names none.
    #[serde(default)]
    pub application: Option<ApplicationIn>,
    #[serde(default)]
    pub transformations_params: Option<TransformationsParams>,
    /// Refused: Hookline does not schedule messages.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub deliver_at: Option<String>,
    /// Accepted; Hookline keeps every message.
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    pub payload_retention_period: Option<i64>,
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    pub payload_retention_hours: Option<i64>,
    /// Refused when not empty: Hookline does not keep message tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// `MessageOut`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: String,
    pub event_type: String,
    /// The payload, or `{}` when asked `with_content=false`.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    #[serde(serialize_with = "svix_time")]
    pub timestamp: DateTime<Utc>,
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

fn raw(data: &str) -> Box<RawValue> {
    RawValue::from_string(data.to_string()).unwrap_or_else(|_| empty_object())
}

impl MessageOut {
    pub(super) fn of(m: &MessageView, with_content: bool) -> Self {
        let payload = match m.data() {
            Some(data) if with_content => raw(data),
            _ => empty_object(),
        };
        Self {
            id: ids::message(&m.id),
            event_type: m.event_type.clone(),
            payload,
            event_id: m.uid.clone(),
            channels: (!m.channels.is_empty()).then(|| m.channels.clone()),
            timestamp: m.published_at,
        }
    }
}

/// The message to publish, checked.
struct Checked {
    event: PublishEvent,
}

impl MessageIn {
    fn check(&mut self, key: Option<IdempotencyKey>) -> SvixResult<Checked> {
        if self.deliver_at.is_some() {
            return Err(SvixError::invalid(Invalid::body(
                "deliverAt",
                "Hookline does not schedule messages; leave deliverAt out",
            )));
        }
        if self.tags.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(SvixError::invalid(Invalid::body(
                "tags",
                "Hookline does not keep message tags; leave tags out (channels route and filter messages)",
            )));
        }
        let mut errors = Vec::new();
        let event_type = match self.event_type.as_deref() {
            Some(t) => EventType::parse(t, "eventType")
                .map_err(|e| errors.push(Invalid::body(&e.field, e.reason)))
                .ok(),
            None => {
                errors.push(Invalid::body("eventType", "field required"));
                None
            }
        };
        let headers = self
            .transformations_params
            .as_ref()
            .and_then(|t| t.headers.as_ref());
        if headers.is_some_and(|h| {
            h.iter().any(|(name, value)| {
                // The media type, parameters (`; charset=utf-8`) aside.
                let media = value.split(';').next().unwrap_or_default().trim();
                !name.eq_ignore_ascii_case("content-type")
                    || !media.eq_ignore_ascii_case("application/json")
            })
        }) {
            // Not dropped: the receiver would get another content type
            // than the client set.
            errors.push(Invalid::body(
                "transformationsParams.headers",
                "Hookline sends every message as Content-Type: application/json and sets no other headers per message; leave headers out (endpoint headers are set per endpoint)",
            ));
        }
        let raw_payload = self
            .transformations_params
            .as_mut()
            .and_then(|t| t.raw_payload.take());
        let payload = match (raw_payload, self.payload.take()) {
            // The SDK's raw-payload helper sends the text here and `{}` as
            // the payload: Hookline sends JSON, so the text must be a JSON
            // object, sent as it is.
            (Some(text), _) => RawValue::from_string(text)
                .map_err(|e| {
                    errors.push(Invalid::body(
                        "transformationsParams.rawPayload",
                        format!("must be a JSON object (Hookline sends JSON): {e}"),
                    ))
                })
                .ok(),
            (None, Some(p)) => Some(p),
            (None, None) => {
                errors.push(Invalid::body("payload", "field required"));
                None
            }
        };
        if let Some(p) = &payload {
            if p.get().len() > MAX_PAYLOAD_BYTES {
                return Err(SvixError::payload_too_large(format!(
                    "Request payload is too large: the payload is {} bytes, the most is {MAX_PAYLOAD_BYTES}",
                    p.get().len()
                )));
            }
            if let Err(e) = hookline_domain::payload::check_object("payload", p.get()) {
                let msg = if p.get().trim_start().starts_with('{') {
                    e.reason
                } else {
                    "Payload must be an object.".to_string()
                };
                errors.push(Invalid::body("payload", msg));
            }
        }
        let uid = self
            .event_id
            .as_deref()
            .map(|u| {
                ids::new_uid(
                    u,
                    "eventId",
                    hookline_domain::signature::SVIX_MESSAGE_PREFIX,
                )
            })
            .transpose()
            .map_err(|e| match e {
                SvixError::Validation(mut v) => errors.append(&mut v),
                other => errors.push(Invalid::body("eventId", format!("{other:?}"))),
            })
            .ok()
            .flatten();
        let channels = match self.channels.as_deref() {
            Some(c) if c.len() > MESSAGE_CHANNELS => {
                errors.push(Invalid::body(
                    "channels",
                    format!("a message lists at most {MESSAGE_CHANNELS} channels"),
                ));
                None
            }
            Some(c) => Channels::parse(c, "channels")
                .map(Some)
                .map_err(|e| errors.push(Invalid::body(&e.field, e.reason)))
                .ok()
                .flatten(),
            None => None,
        };
        if !errors.is_empty() {
            return Err(SvixError::Validation(errors));
        }
        match (event_type, payload) {
            (Some(event_type), Some(data)) => Ok(Checked {
                event: PublishEvent {
                    idempotency_key: key,
                    channels,
                    uid,
                    // Svix stores a message whether or not an endpoint
                    // wants it.
                    keep_unmatched: true,
                    ..PublishEvent::new(event_type, data)
                },
            }),
            _ => Err(SvixError::invalid(Invalid::body("", "incomplete message"))),
        }
    }
}

/// The application the path names, or the one the body describes (created
/// when missing: its uid must be the path's).
pub(super) async fn app_or_create(
    state: &AppState,
    org: &Organisation,
    request_id: &hookline_application::RequestId,
    app_id: &str,
    application: Option<ApplicationIn>,
) -> SvixResult<TenantView> {
    match app(state, app_id).await {
        Err(SvixError::Http {
            status: StatusCode::NOT_FOUND,
            ..
        }) if application.is_some() => {}
        other => return other,
    }
    let spec = application.unwrap_or_default();
    let Some(uid) = spec.uid.clone() else {
        return Err(SvixError::Validation(vec![Invalid {
            loc: vec!["body".into(), "application".into(), "uid".into()],
            msg: "Application UID not set in body".into(),
            kind: "application_uid_missing",
        }]));
    };
    if uid != app_id {
        return Err(SvixError::Validation(vec![Invalid {
            loc: vec!["body".into(), "application".into(), "uid".into()],
            msg: "Application UID in the path and body must match".into(),
            kind: "application_uid_mismatch",
        }]));
    }
    let name = spec
        .name
        .as_deref()
        .map(TenantName::parse)
        .transpose()
        .map_err(|e| SvixError::invalid(Invalid::body("application.name", e.reason)))?
        .ok_or_else(|| SvixError::invalid(Invalid::body("application.name", "field required")))?;
    let details = TenantDetails {
        name,
        uid: Some(ids::new_uid(&uid, "application.uid", ids::APP)?),
        metadata: super::apps::metadata(spec.metadata)?,
    };
    let ctx = context(org, request_id.clone(), TenantId::ORGANISATION);
    match state.tenants.create_with(&ctx, details).await {
        Ok(w) => Ok(w.value),
        // Created by a concurrent request meanwhile.
        Err(AppError::Conflict {
            code: "uid_taken", ..
        }) => app(state, app_id).await,
        Err(e) => Err(e.into()),
    }
}

/// Create Message
///
/// Publishes an event: recorded even when no endpoint wants it (202), and
/// sent to every endpoint whose filters match. A second message with the
/// same `eventId` in the application is a 409. When the application does
/// not exist and the body has `application` (with the path's uid), it is
/// created.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/msg",
    operation_id = "v1.message.create",
    tag = "Message",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("with_content" = Option<bool>, Query, description = "Include the payload (default true; the SDKs send false).")),
    request_body = MessageIn,
    responses(
        (status = 202, description = "Recorded.", body = MessageOut),
        (status = 404, description = "- `not_found`: no such application"),
        (status = 409, description = "- `conflict`: the application has a message with this `eventId`"),
    )
)]
async fn create(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    params: Params,
    SvixJson(mut input): SvixJson<MessageIn>,
) -> SvixResult<Response> {
    let with_content = params.flag("with_content", true)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(IdempotencyKey::parse)
        .transpose()
        .map_err(|e| SvixError::bad_request("invalid_idempotency_key", e.reason))?;
    let checked = input.check(key)?;
    let tenant =
        app_or_create(&state, &org, &request_id, &app_id, input.application.take()).await?;
    let ctx = context(&org, request_id, tenant.id);
    let published = state.publish.publish(&ctx, checked.event).await?;
    accepted(
        &state,
        tenant.id,
        published.value.event_id,
        with_content,
        StatusCode::ACCEPTED,
    )
    .await
}

/// `202` with a message just published. Unlike `/v1/events`, answered once
/// the lists show the message (Svix clients list right after creating);
/// the consistency header says when they did not within the wait.
pub(super) async fn accepted(
    state: &AppState,
    tenant: TenantId,
    event: EventId,
    with_content: bool,
    status: StatusCode,
) -> SvixResult<Response> {
    let message = state.messages.get(tenant, event).await?;
    let listed = state.messages.settle().await;
    let mut response = (status, Json(MessageOut::of(&message, with_content))).into_response();
    if !listed {
        response.headers_mut().insert(
            crate::routes::CONSISTENCY_HEADER,
            axum::http::HeaderValue::from_static("pending"),
        );
    }
    Ok(response)
}

/// List Messages
///
/// Newest first.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg",
    operation_id = "v1.message.list",
    tag = "Message",
    params(
        ("app_id" = String, Path, description = "The application's id (`app_…`) or uid."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 250, description = "Page size (default 50)."),
        ("iterator" = Option<String>, Query, description = "`iterator` (or `prevIterator`) of a previous page."),
        ("channel" = Option<String>, Query, max_length = 128, pattern = r"^[a-zA-Z0-9\-_.:+]+$", description = "Only messages on this channel."),
        ("before" = Option<String>, Query, format = DateTime, description = "Only messages published before (RFC 3339; no offset: UTC)."),
        ("after" = Option<String>, Query, format = DateTime, description = "Only messages published after."),
        ("with_content" = Option<bool>, Query, description = "Include the payload (default true; the SDKs send false)."),
        ("event_types" = Option<String>, Query, pattern = r"^[A-Za-z0-9_]{1,32}(\.[A-Za-z0-9_]{1,32}){1,2}(,[A-Za-z0-9_]{1,32}(\.[A-Za-z0-9_]{1,32}){1,2})*$", description = "Only these event types, comma-separated (`a.b,c.d`)."),
    ),
    responses(
        (status = 200, description = "A page.", body = ListResponse<MessageOut>),
        (status = 404, description = "- `not_found`: no such application"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    params: Params,
) -> SvixResult<Json<ListResponse<MessageOut>>> {
    let tenant = app(&state, &app_id).await?;
    params.refuse_tag()?;
    let limit = params.limit()?;
    let with_content = params.flag("with_content", true)?;
    let (after, backwards) =
        params.time_page_start("a message", |c| ids::message_ref(c).ok()?.id())?;
    let channel = params.channel()?;
    let (messages, more) = state
        .messages
        .list(
            tenant.id,
            ListMessages {
                event_types: params.event_types()?,
                channel,
                since: params.time("after")?,
                until: params.time("before")?,
                after,
                oldest_first: backwards,
                limit,
                with_content,
            },
        )
        .await
        .map_err(iterator_names("names no message"))?;
    Ok(Json(ListResponse::page(
        messages
            .iter()
            .map(|m| MessageOut::of(m, with_content))
            .collect(),
        more,
        backwards,
        |m| m.id.clone(),
    )))
}

/// The message a path segment names (by id or `eventId`).
pub(super) async fn message(
    state: &AppState,
    tenant: TenantId,
    segment: &str,
) -> SvixResult<MessageView> {
    let missing = || SvixError::not_found("Message not found");
    let found = match ids::message_ref(segment).map_err(|_| missing())? {
        Ref::Id(id) => state.messages.get(tenant, id).await,
        Ref::Uid(uid) => state.messages.get_by_uid(tenant, &uid).await,
    };
    found.map_err(|e| match e {
        AppError::NotFound { .. } => missing(),
        other => other.into(),
    })
}

/// Get Message
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}",
    operation_id = "v1.message.get",
    tag = "Message",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("msg_id" = String, Path, description = "The message's id (`msg_…`) or `eventId`."), ("with_content" = Option<bool>, Query, description = "Include the payload (default true; the SDKs send false).")),
    responses(
        (status = 200, description = "The message.", body = MessageOut),
        (status = 404, description = "- `not_found`: no such application, or it has no such message"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Path((app_id, msg_id)): Path<(String, String)>,
    params: Params,
) -> SvixResult<Json<MessageOut>> {
    let tenant = app(&state, &app_id).await?;
    let with_content = params.flag("with_content", true)?;
    let m = message(&state, tenant.id, &msg_id).await?;
    Ok(Json(MessageOut::of(&m, with_content)))
}
