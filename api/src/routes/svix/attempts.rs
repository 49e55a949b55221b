//! Attempts (`/api/v1/app/{app_id}/attempt/…`) and resending a message to
//! an endpoint. An attempt's `status` is `0` (success) or `2` (fail): a
//! failed attempt stays failed when a retry follows it, as in Svix.

use super::endpoints::EndpointOut;
use super::error::{iterator_names, Invalid, SvixError, SvixResult};
use super::extract::{svix_time, svix_time_opt, ListResponse, Params};
use super::ids;
use super::messages::{message, MessageOut};
use super::{app, context, endpoint, Organisation};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_application::deliveries::ListAttempts;
use hookline_application::ports::{AttemptListRow, AttemptResult};
use hookline_application::subscriptions::ReadSubscription;
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::subscription::SubscriptionStatus;
use hookline_domain::{EventId, SubscriptionId, TenantId};
use serde::Serialize;
use std::collections::hash_map::{Entry, HashMap};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(by_endpoint))
        .routes(routes!(by_message))
        .routes(routes!(one))
        .routes(routes!(destinations))
        .routes(routes!(resend))
}

/// `MessageAttemptOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub url: String,
    /// The response's body (an excerpt), the error for attempts that got no
    /// response, or `{}` when asked `with_content=false`.
    pub response: String,
    /// `0` when there was no response.
    pub response_status_code: i32,
    pub response_duration_ms: i64,
    /// `0` success, `2` fail.
    pub status: u8,
    /// `success` or `fail`.
    #[schema(value_type = String)]
    pub status_text: &'static str,
    /// `0` scheduled, `1` manual (a resend, retry or recovery).
    pub trigger_type: u8,
    #[serde(serialize_with = "svix_time")]
    pub timestamp: DateTime<Utc>,
    /// The message, when asked `with_msg=true` (its payload as
    /// `with_content` says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<MessageOut>,
}

impl MessageAttemptOut {
    fn of(row: &AttemptListRow, with_content: bool) -> Self {
        let a = &row.attempt;
        let succeeded = a.outcome == DeliveryStatus::Delivered;
        let response = if with_content {
            a.response_excerpt
                .clone()
                .or_else(|| a.error_message.clone())
                .unwrap_or_default()
        } else {
            "{}".to_string()
        };
        Self {
            id: ids::attempt(&a.id),
            msg_id: ids::message(&row.event_id),
            endpoint_id: ids::endpoint(&a.subscription_id),
            url: a.url.clone(),
            response,
            response_status_code: a.status_code.unwrap_or(0),
            response_duration_ms: a.duration_ms,
            status: if succeeded { 0 } else { 2 },
            status_text: if succeeded { "success" } else { "fail" },
            trigger_type: u8::from(a.triggered_by.is_some()),
            timestamp: a.started_at,
            msg: None,
        }
    }
}

/// The filters both lists share, from the query. `None`: the filters ask
/// for something no attempt can be (a pending or sending attempt).
fn filters(params: &Params) -> SvixResult<Option<ListAttempts>> {
    params.refuse_tag()?;
    // Pending, sending, canceled: Hookline records attempts once made, so
    // such a status lists nothing; the other parameters are still checked.
    let mut none = false;
    let result = match params.number("status")? {
        None => None,
        Some(0) => Some(AttemptResult::Succeeded),
        Some(2) => Some(AttemptResult::Failed),
        Some(1 | 3 | 4) => {
            none = true;
            None
        }
        Some(other) => {
            return Err(SvixError::invalid(Invalid::query(
                "status",
                format!("{other} is not a message status (0–4)"),
            )))
        }
    };
    let status_codes = match params.number("status_code_class")? {
        None => None,
        Some(0) => Some((0, 99)),
        Some(c @ (100 | 200 | 300 | 400 | 500)) => {
            let c = i32::try_from(c).unwrap_or(0);
            Some((c, c + 99))
        }
        Some(other) => {
            return Err(SvixError::invalid(Invalid::query(
                "status_code_class",
                format!("{other} is not one of 0, 100, 200, 300, 400, 500"),
            )))
        }
    };
    let channel = params.channel()?;
    let (after, backwards) = params.time_page_start("an attempt", |c| ids::attempt_id(c).ok())?;
    if none {
        return Ok(None);
    }
    Ok(Some(ListAttempts {
        result,
        status_codes,
        event_types: params.event_types()?,
        channel,
        since: params.time("after")?,
        until: params.time("before")?,
        after,
        oldest_first: backwards,
        limit: params.limit()?,
        ..ListAttempts::default()
    }))
}

async fn page(
    state: &AppState,
    tenant: TenantId,
    params: &Params,
    scope: (Option<EventId>, Option<SubscriptionId>),
) -> SvixResult<Json<ListResponse<MessageAttemptOut>>> {
    let with_content = params.flag("with_content", true)?;
    let with_msg = params.flag("with_msg", false)?;
    let Some(query) = filters(params)? else {
        return Ok(Json(ListResponse::page(vec![], false, false, |_| {
            String::new()
        })));
    };
    let backwards = query.oldest_first;
    let query = ListAttempts {
        event_id: scope.0,
        subscription_id: scope.1,
        ..query
    };
    let (rows, more) = state
        .deliveries
        .list_attempts(tenant, query)
        .await
        .map_err(iterator_names("names no attempt"))?;
    let mut data: Vec<MessageAttemptOut> = rows
        .iter()
        .map(|r| MessageAttemptOut::of(r, with_content))
        .collect();
    if with_msg {
        // Each message read once however many of its attempts the page
        // holds.
        let mut messages: HashMap<EventId, MessageOut> = HashMap::new();
        for (row, out) in rows.iter().zip(&mut data) {
            let msg = match messages.entry(row.event_id) {
                Entry::Occupied(known) => known.get().clone(),
                Entry::Vacant(slot) => {
                    let view = state.messages.get(tenant, row.event_id).await?;
                    slot.insert(MessageOut::of(&view, with_content)).clone()
                }
            };
            out.msg = Some(msg);
        }
    }
    Ok(Json(ListResponse::page(data, more, backwards, |a| {
        a.id.clone()
    })))
}

/// List Attempts By Endpoint
///
/// Newest first.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}",
    operation_id = "v1.message-attempt.list-by-endpoint",
    tag = "Message Attempt",
    params(
        ("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 250, description = "Page size (default 50)."),
        ("iterator" = Option<String>, Query, description = "`iterator` (or `prevIterator`) of a previous page."),
        ("status" = Option<u8>, Query, maximum = 4, description = "`0` success, `2` fail (`1`, `3`, `4`: none; Hookline lists attempts once made)."),
        ("status_code_class" = Option<super::openapi::StatusCodeClass>, Query, description = "`0` (no response), `100`, `200`, `300`, `400` or `500`."),
        ("channel" = Option<String>, Query, max_length = 128, pattern = r"^[a-zA-Z0-9\-_.:+]+$", description = "Only attempts of messages on this channel."),
        ("event_types" = Option<String>, Query, pattern = r"^[A-Za-z0-9_]{1,32}(\.[A-Za-z0-9_]{1,32}){1,2}(,[A-Za-z0-9_]{1,32}(\.[A-Za-z0-9_]{1,32}){1,2})*$", description = "Only attempts of messages of these types, comma-separated."),
        ("before" = Option<String>, Query, format = DateTime, description = "Only attempts made before."),
        ("after" = Option<String>, Query, format = DateTime, description = "Only attempts made after."),
        ("with_content" = Option<bool>, Query, description = "Include the response body (default true; the SDKs send false)."),
        ("with_msg" = Option<bool>, Query, description = "Include each attempt's message as `msg` (default false)."),
    ),
    responses(
        (status = 200, description = "A page.", body = ListResponse<MessageAttemptOut>),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn by_endpoint(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    params: Params,
) -> SvixResult<Json<ListResponse<MessageAttemptOut>>> {
    let tenant = app(&state, &app_id).await?;
    let target = endpoint(&state, tenant.id, &endpoint_id).await?;
    page(&state, tenant.id, &params, (None, Some(target.id))).await
}

/// List Attempts By Msg
///
/// Newest first.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/attempt/msg/{msg_id}",
    operation_id = "v1.message-attempt.list-by-msg",
    tag = "Message Attempt",
    params(
        ("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("msg_id" = String, Path, description = "The message's id (`msg_…`) or `eventId`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 250, description = "Page size (default 50)."),
        ("iterator" = Option<String>, Query, description = "`iterator` (or `prevIterator`) of a previous page."),
        ("status" = Option<u8>, Query, maximum = 4, description = "`0` success, `2` fail (`1`, `3`, `4`: none; Hookline lists attempts once made)."),
        ("status_code_class" = Option<super::openapi::StatusCodeClass>, Query, description = "`0` (no response), `100`, `200`, `300`, `400` or `500`."),
        ("channel" = Option<String>, Query, max_length = 128, pattern = r"^[a-zA-Z0-9\-_.:+]+$", description = "Only attempts of messages on this channel."),
        ("event_types" = Option<String>, Query, pattern = r"^[A-Za-z0-9_]{1,32}(\.[A-Za-z0-9_]{1,32}){1,2}(,[A-Za-z0-9_]{1,32}(\.[A-Za-z0-9_]{1,32}){1,2})*$", description = "Only attempts of messages of these types, comma-separated."),
        ("before" = Option<String>, Query, format = DateTime, description = "Only attempts made before."),
        ("after" = Option<String>, Query, format = DateTime, description = "Only attempts made after."),
        ("with_content" = Option<bool>, Query, description = "Include the response body (default true; the SDKs send false)."),
        ("with_msg" = Option<bool>, Query, description = "Include each attempt's message as `msg` (default false)."),
        ("endpoint_id" = Option<String>, Query, description = "Only attempts to this endpoint (id or uid)."),
    ),
    responses(
        (status = 200, description = "A page.", body = ListResponse<MessageAttemptOut>),
        (status = 404, description = "- `not_found`: no such application, message or endpoint"),
    )
)]
async fn by_message(
    State(state): State<AppState>,
    Path((app_id, msg_id)): Path<(String, String)>,
    params: Params,
) -> SvixResult<Json<ListResponse<MessageAttemptOut>>> {
    let tenant = app(&state, &app_id).await?;
    let m = message(&state, tenant.id, &msg_id).await?;
    let target = match params.get("endpoint_id") {
        Some(e) => Some(endpoint(&state, tenant.id, e).await?.id),
        None => None,
    };
    page(&state, tenant.id, &params, (Some(m.id), target)).await
}

/// Get Message Attempt
///
/// One attempt of the message, with the response's body (an excerpt) or
/// the error.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
    operation_id = "v1.message-attempt.get",
    tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("msg_id" = String, Path, description = "The message's id (`msg_…`) or `eventId`."), ("attempt_id" = String, Path, description = "The attempt's id (`atmpt_…`).")),
    responses(
        (status = 200, description = "The attempt.", body = MessageAttemptOut),
        (status = 404, description = "- `not_found`: no such application, message, or attempt of that message"),
    )
)]
async fn one(
    State(state): State<AppState>,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> SvixResult<Json<MessageAttemptOut>> {
    let tenant = app(&state, &app_id).await?;
    let m = message(&state, tenant.id, &msg_id).await?;
    let missing = || SvixError::not_found("Message attempt not found");
    let id = ids::attempt_id(&attempt_id).map_err(|_| missing())?;
    let (rows, _) = state
        .deliveries
        .list_attempts(
            tenant.id,
            ListAttempts {
                event_id: Some(m.id),
                attempt_id: Some(id),
                limit: 1,
                ..ListAttempts::default()
            },
        )
        .await?;
    rows.first()
        .map(|row| Json(MessageAttemptOut::of(row, true)))
        .ok_or_else(missing)
}

/// A message's delivery status as Svix numbers and names it: `0`
/// success, `1` pending, `2` fail (failed or abandoned), `4` canceled (not
/// attempted: the endpoint was disabled).
pub(super) fn message_status(status: DeliveryStatus) -> (u8, &'static str) {
    match status {
        DeliveryStatus::Delivered => (0, "success"),
        DeliveryStatus::Pending => (1, "pending"),
        DeliveryStatus::Failed | DeliveryStatus::Abandoned => (2, "fail"),
        DeliveryStatus::Skipped => (4, "canceled"),
    }
}

/// `MessageEndpointOut`: an endpoint a message went to, and how that went.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub throttle_rate: Option<u32>,
    /// Disabled, or deleted since.
    pub disabled: bool,
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    #[serde(serialize_with = "svix_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "svix_time")]
    pub updated_at: DateTime<Utc>,
    /// `0` success, `1` pending, `2` fail, `4` canceled.
    pub status: u8,
    /// `success`, `pending`, `fail` or `canceled`.
    #[schema(value_type = String)]
    pub status_text: &'static str,
    /// When the next attempt is due, while pending.
    #[serde(serialize_with = "svix_time_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt: Option<DateTime<Utc>>,
}

/// List Attempted Destinations
///
/// The endpoints the message went to, each with the status of its latest
/// delivery there (a resend is a later delivery), by endpoint id. Endpoints
/// deleted since are listed too, as disabled.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint",
    operation_id = "v1.message-attempt.list-attempted-destinations",
    tag = "Message Attempt",
    params(
        ("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("msg_id" = String, Path, description = "The message's id (`msg_…`) or `eventId`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 250, description = "Page size (default 50)."),
        ("iterator" = Option<String>, Query, description = "`iterator` (or `prevIterator`) of a previous page."),
    ),
    responses(
        (status = 200, description = "A page.", body = ListResponse<MessageEndpointOut>),
        (status = 404, description = "- `not_found`: no such application or message"),
    )
)]
async fn destinations(
    State(state): State<AppState>,
    Path((app_id, msg_id)): Path<(String, String)>,
    params: Params,
) -> SvixResult<Json<ListResponse<MessageEndpointOut>>> {
    let tenant = app(&state, &app_id).await?;
    let m = message(&state, tenant.id, &msg_id).await?;
    let (after, backwards) =
        params.page_start("an endpoint", |c| ids::endpoint_ref(c).ok()?.id())?;
    let (rows, more) = state
        .deliveries
        .destinations(tenant.id, m.id, after, backwards, params.limit()?)
        .await
        .map_err(iterator_names("names no endpoint this message went to"))?;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let how = ReadSubscription {
            include_inactive: true,
            as_of: None,
        };
        let view = state
            .subscriptions
            .get(tenant.id, row.subscription_id, how)
            .await?;
        let deleted = view.status == SubscriptionStatus::Deleted;
        let endpoint = EndpointOut::from(view);
        let (status, status_text) = message_status(row.status);
        data.push(MessageEndpointOut {
            disabled: endpoint.disabled || deleted,
            id: endpoint.id,
            uid: endpoint.uid,
            url: endpoint.url,
            description: endpoint.description,
            throttle_rate: endpoint.throttle_rate,
            event_types: endpoint.event_types,
            channels: endpoint.channels,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
            status,
            status_text,
            next_attempt: row
                .next_attempt_at
                .filter(|_| row.status == DeliveryStatus::Pending),
        });
    }
    Ok(Json(ListResponse::page(data, more, backwards, |e| {
        e.id.clone()
    })))
}

/// `202 {}`: a new delivery of the message to the endpoint, whatever its
/// filters, triggered by hand.
/// Resend Webhook
///
/// A new delivery of the message to the endpoint, whatever its filters
/// (`triggerType` 1). No body.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
    operation_id = "v1.message-attempt.resend",
    tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("msg_id" = String, Path, description = "The message's id (`msg_…`) or `eventId`."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    responses(
        (status = 202, description = "Queued: `{}`.", body = Object),
        (status = 404, description = "- `not_found`: no such application, message or endpoint"),
        (status = 409, description = "- `subscription_inactive`: the endpoint is disabled"),
    )
)]
async fn resend(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, msg_id, endpoint_id)): Path<(String, String, String)>,
) -> SvixResult<Response> {
    let tenant = app(&state, &app_id).await?;
    let m = message(&state, tenant.id, &msg_id).await?;
    let target = endpoint(&state, tenant.id, &endpoint_id).await?;
    let ctx = context(&org, request_id, tenant.id);
    state.deliveries.resend(&ctx, m.id, target.id).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({}))).into_response())
}
