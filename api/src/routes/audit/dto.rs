//! Response bodies and query parameters of `/v1/audit/events` and
//! `/v1/requests/{id}`.

use super::super::deliveries::dto::{AttemptResponse, DeliveryResponse};
use chrono::{DateTime, Utc};
use hookline_application::audit::{
    AuditEvent, AuditPage, AuditPageRequest, LogName, RequestTrace, TracePage, DEFAULT_AUDIT_LIMIT,
    DEFAULT_TRACE_LIMIT, MAX_AUDIT_LIMIT,
};
use hookline_application::AppError;
use hookline_domain::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// Query parameters of `GET /v1/audit/events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events after this log position: 0 (the default) for the start, or
    /// the position of an event (`next_after` of the previous page);
    /// another number is refused.
    #[serde(default)]
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100); a page also stops at 4 MiB.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only events of this aggregate type, such as `Delivery`.
    #[serde(default)]
    #[param(pattern = "^[A-Za-z0-9_]{1,100}$")]
    pub aggregate_type: Option<String>,
    /// Only events of this name, such as `AttemptFailed`.
    #[serde(default)]
    #[param(pattern = "^[A-Za-z0-9_]{1,100}$")]
    pub event_type: Option<String>,
    /// Webhook bodies too (left out of lists by default).
    #[serde(default)]
    pub include_payload: Option<bool>,
}

impl AuditQuery {
    /// # Errors
    /// Validation errors naming each bad parameter.
    pub fn into_request(self) -> Result<AuditPageRequest, AppError> {
        let limit = match self.limit {
            None => DEFAULT_AUDIT_LIMIT,
            Some(n) if (1..=MAX_AUDIT_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(ValidationError::new(
                    "limit",
                    format!("must be between 1 and {MAX_AUDIT_LIMIT}"),
                )
                .into())
            }
        };
        let after = u64::try_from(self.after.unwrap_or(0))
            .map_err(|_| ValidationError::new("after", "must be 0 or a position"))?;
        Ok(AuditPageRequest {
            after,
            limit,
            aggregate_type: self
                .aggregate_type
                .map(|v| LogName::parse("aggregate_type", &v))
                .transpose()?,
            event_type: self
                .event_type
                .map(|v| LogName::parse("event_type", &v))
                .transpose()?,
            include_payload: self.include_payload == Some(true),
        })
    }
}

/// Query parameters of the pages of a request trace.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TracePageQuery {
    /// Events: `next_after` of the previous page (or of the trace's
    /// `next.events_after`); deliveries and attempts: its `next_cursor`.
    /// `after` and `cursor` are the same parameter (`after` wins).
    #[serde(default)]
    pub after: Option<String>,
    /// The same as `after`.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Webhook bodies too (left out by default).
    #[serde(default)]
    pub include_payload: Option<bool>,
}

impl TracePageQuery {
    /// # Errors
    /// A validation error for `limit`.
    pub fn into_page(self) -> Result<TracePage, AppError> {
        let limit = match self.limit {
            None => DEFAULT_TRACE_LIMIT,
            Some(n) if (1..=MAX_AUDIT_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(ValidationError::new(
                    "limit",
                    format!("must be between 1 and {MAX_AUDIT_LIMIT}"),
                )
                .into())
            }
        };
        Ok(TracePage {
            after: self.after.or(self.cursor),
            limit,
            include_payload: self.include_payload == Some(true),
        })
    }
}

/// One event as auditors see it: everything the log stores (sealed values
/// stay sealed) and where it stands in commit order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventResponse {
    /// Position in the whole log.
    pub position: i64,
    /// The committing transaction (events are in `(tx_id, position)`
    /// order).
    pub tx_id: u64,
    /// `Subscription`, `Delivery`, `Tenant`, `EventType`, `Message`…
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The event as stored; webhook bodies left out unless asked for.
    #[schema(value_type = Object)]
    pub payload: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(e: AuditEvent) -> Self {
        Self {
            position: e.position,
            tx_id: e.tx_id,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload,
            metadata: e.metadata,
            recorded_at: e.recorded_at,
        }
    }
}

/// A page of the log in commit order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageResponse {
    pub data: Vec<AuditEventResponse>,
    /// Pass as `after` for the next page.
    pub next_after: i64,
}

impl From<AuditPage> for AuditPageResponse {
    fn from(p: AuditPage) -> Self {
        Self {
            data: p.data.into_iter().map(Into::into).collect(),
            next_after: p.next_after,
        }
    }
}

/// Everything one request caused: how much, then the first page of each
/// part (webhook bodies left out); `next` says where each part continues.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceResponse {
    pub request_id: String,
    pub summary: TraceSummaryResponse,
    pub events: Vec<AuditEventResponse>,
    pub deliveries: Vec<DeliveryResponse>,
    pub attempts: Vec<AttemptResponse>,
    pub next: TraceNext,
}

/// How many of each the request caused.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceSummaryResponse {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

/// Where each part of a trace continues (absent when complete):
/// `GET /v1/requests/{id}/events?after=…`, `…/deliveries?cursor=…`,
/// `…/attempts?cursor=…`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceNext {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub events_after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub deliveries_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub attempts_cursor: Option<String>,
}

impl From<RequestTrace> for TraceResponse {
    fn from(t: RequestTrace) -> Self {
        let events_left = t.summary.events > t.events.data.len() as u64;
        Self {
            request_id: t.request_id,
            summary: TraceSummaryResponse {
                events: t.summary.events,
                deliveries: t.summary.deliveries,
                attempts: t.summary.attempts,
            },
            next: TraceNext {
                events_after: events_left.then_some(t.events.next_after),
                deliveries_cursor: t.deliveries.next_cursor,
                attempts_cursor: t.attempts.next_cursor,
            },
            events: t.events.data.into_iter().map(Into::into).collect(),
            deliveries: t.deliveries.data.into_iter().map(Into::into).collect(),
            attempts: t.attempts.data.into_iter().map(Into::into).collect(),
        }
    }
}
