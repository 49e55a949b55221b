//! The messages an endpoint was sent
//! (`/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg`), each once with the
//! status of its latest delivery there (a resend is a later delivery), in
//! the order they were first sent there.

use super::attempts::message_status;
use super::error::{iterator_names, Invalid, SvixError, SvixResult};
use super::extract::{svix_time_opt, ListResponse, Params};
use super::ids;
use super::messages::MessageOut;
use super::{app, endpoint};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_application::messages::MessageView;
use hookline_application::ports::AttemptedMessagesQuery;
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::EventId;
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// `EndpointMessageOut`: a message, and how its latest delivery to the
/// endpoint went.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    #[serde(flatten)]
    pub message: MessageOut,
    /// `0` success, `1` pending, `2` fail, `4` canceled (not sent: the
    /// endpoint was disabled; shown as `0` unless `expanded_statuses`).
    pub status: u8,
    /// `success`, `pending`, `fail` or `canceled`.
    #[schema(value_type = String)]
    pub status_text: &'static str,
    /// When the next attempt is due, while pending.
    #[serde(serialize_with = "svix_time_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt: Option<DateTime<Utc>>,
    /// Always null: Hookline keeps no message tags.
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<()>,
    /// Always null: messages are sent when published.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deliver_at: Option<()>,
}

/// What a `status` filter asks for.
enum StatusFilter {
    Any,
    Only(Vec<DeliveryStatus>),
    /// Something Hookline has none of (`3`, sending: a delivery being sent
    /// is pending).
    Nothing,
}

fn status_filter(status: Option<i64>, expanded: bool) -> SvixResult<StatusFilter> {
    use DeliveryStatus::{Abandoned, Delivered, Failed, Pending, Skipped};
    Ok(match status {
        None => StatusFilter::Any,
        Some(0) if expanded => StatusFilter::Only(vec![Delivered]),
        Some(0) => StatusFilter::Only(vec![Delivered, Skipped]),
        Some(1) => StatusFilter::Only(vec![Pending]),
        Some(2) => StatusFilter::Only(vec![Failed, Abandoned]),
        Some(4) if expanded => StatusFilter::Only(vec![Skipped]),
        Some(3 | 4) => StatusFilter::Nothing,
        Some(other) => {
            return Err(SvixError::invalid(Invalid::query(
                "status",
                format!("{other} is not a message status (0–4)"),
            )))
        }
    })
}

/// List Attempted Messages
///
/// The messages sent (or due to be sent) to the endpoint, each once with
/// the status of its latest delivery there (a resend is a later delivery),
/// newest first by the message's first delivery to the endpoint, which a
/// resend does not move.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg",
    operation_id = "v1.message-attempt.list-attempted-messages",
    tag = "Message Attempt",
    params(
        ("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 250, description = "Page size (default 50)."),
        ("iterator" = Option<String>, Query, description = "`iterator` (or `prevIterator`) of a previous page."),
        ("status" = Option<u8>, Query, maximum = 4, description = "`0` success, `1` pending, `2` fail, `4` canceled (with `expanded_statuses`; otherwise canceled counts as `0`); `3` (sending) lists nothing: a delivery being sent is pending."),
        ("channel" = Option<String>, Query, max_length = 128, pattern = r"^[a-zA-Z0-9\-_.:+]+$", description = "Only messages on this channel."),
        ("event_types" = Option<String>, Query, pattern = r"^[A-Za-z0-9_]{1,32}(\.[A-Za-z0-9_]{1,32}){1,2}(,[A-Za-z0-9_]{1,32}(\.[A-Za-z0-9_]{1,32}){1,2})*$", description = "Only messages of these types, comma-separated."),
        ("before" = Option<String>, Query, format = DateTime, description = "Only messages first sent here before."),
        ("after" = Option<String>, Query, format = DateTime, description = "Only messages first sent here after."),
        ("with_content" = Option<bool>, Query, description = "Include the payload (default true; the SDKs send false)."),
        ("expanded_statuses" = Option<bool>, Query, description = "Show canceled deliveries as `4` (default false: as `0`, as Svix does)."),
    ),
    responses(
        (status = 200, description = "A page.", body = ListResponse<EndpointMessageOut>),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    params: Params,
) -> SvixResult<Json<ListResponse<EndpointMessageOut>>> {
    let tenant = app(&state, &app_id).await?;
    let target = endpoint(&state, tenant.id, &endpoint_id).await?;
    params.refuse_tag()?;
    let with_content = params.flag("with_content", true)?;
    let expanded = params.flag("expanded_statuses", false)?;
    let filter = status_filter(params.number("status")?, expanded)?;
    let event_types = params.event_types()?;
    let channel = params.channel()?;
    let (since, until) = (params.time("after")?, params.time("before")?);
    let limit = params.limit()?;
    let (after, backwards) =
        params.time_page_start("a message", |c| ids::message_ref(c).ok()?.id())?;
    let statuses = match filter {
        StatusFilter::Any => None,
        StatusFilter::Only(s) => Some(s),
        StatusFilter::Nothing => {
            return Ok(Json(ListResponse::page(vec![], false, false, |_| {
                String::new()
            })))
        }
    };
    let query = AttemptedMessagesQuery {
        statuses,
        event_types,
        channel,
        since,
        until,
        after,
        oldest_first: backwards,
        limit,
    };
    let (rows, more) = state
        .deliveries
        .attempted_messages(tenant.id, target.id, &query)
        .await
        .map_err(iterator_names("names no message sent to this endpoint"))?;
    // The page's messages in one read; with content, the page ends once
    // it holds a page's worth of payloads (the rest on the next page).
    let ids: Vec<EventId> = rows.iter().map(|r| r.event_id).collect();
    let (views, considered) = state.messages.many(tenant.id, &ids, with_content).await?;
    let more = more || considered < rows.len();
    let mut views: HashMap<EventId, MessageView> = views.into_iter().map(|v| (v.id, v)).collect();
    let mut data = Vec::with_capacity(considered);
    for row in rows.into_iter().take(considered) {
        let view = match views.remove(&row.event_id) {
            Some(v) => v,
            // Not in the messages list yet (it trails the log by
            // milliseconds): from the log.
            None => state.messages.get(tenant.id, row.event_id).await?,
        };
        let shown = match row.status {
            DeliveryStatus::Skipped if !expanded => DeliveryStatus::Delivered,
            other => other,
        };
        let (status, status_text) = message_status(shown);
        data.push(EndpointMessageOut {
            message: MessageOut::of(&view, with_content),
            status,
            status_text,
            next_attempt: row
                .next_attempt_at
                .filter(|_| row.status == DeliveryStatus::Pending),
            tags: None,
            deliver_at: None,
        });
    }
    Ok(Json(ListResponse::page(data, more, backwards, |m| {
        m.message.id.clone()
    })))
}
