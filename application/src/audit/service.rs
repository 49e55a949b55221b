//! The audit log API, support's request traces, and the exports and
//! verification auditors run.

use super::verify::{BrokenLink, ChainHead, ChainVerifier};
use crate::context::RequestId;
use crate::error::AppError;
use crate::pagination::{decode_cursor, paginate_after, Page};
use crate::ports::{
    AttemptRecord, AuditLog, AuditQuery, DeliveryReadModel, DeliveryRecord, LogArchive,
    ProjectionWaiter, StoredEvent, Verifiable,
};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use futures::StreamExt;
use hookline_domain::delivery::Delivery;
use hookline_domain::{DeliveryId, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How an export's failure to write its output begins (the reader went
/// away, the disk is full): not the log's fault.
pub const EXPORT_WRITE_FAILED: &str = "writing the export";

pub const DEFAULT_AUDIT_LIMIT: u32 = 100;
pub const MAX_AUDIT_LIMIT: u32 = 1000;
/// Most bytes of events one page carries: a page of large events (webhook
/// bodies included) ends early, and its cursor continues from there.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Items per page of a request trace's parts.
pub const DEFAULT_TRACE_LIMIT: u32 = 100;
/// Events per page of an export.
const EXPORT_PAGE: u32 = 2000;

/// One event as auditors see it: everything the log stores (sealed values
/// stay sealed) and where it stands in commit order. Also the line format
/// of `hookline audit export`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub position: i64,
    pub tx_id: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl AuditEvent {
    /// Leaves out the webhook body an event carries (`body`), noting its
    /// size in `body_bytes`: lists show it only when asked to.
    #[must_use]
    pub fn without_body(mut self) -> Self {
        if let Value::Object(map) = &mut self.payload {
            if let Some(Value::String(body)) = map.remove("body") {
                map.insert("body_bytes".into(), Value::from(body.len()));
            }
        }
        self
    }
}

/// Events for a list: bodies left out unless asked for, and no more than
/// [`MAX_PAGE_BYTES`] of them (at least one).
fn bounded(events: Vec<StoredEvent>, include_payload: bool) -> Vec<AuditEvent> {
    let mut bytes = 0usize;
    let mut out = Vec::with_capacity(events.len());
    for stored in events {
        let mut event = AuditEvent::from(stored);
        if !include_payload {
            event = event.without_body();
        }
        bytes += serde_json::to_string(&event).map_or(0, |t| t.len());
        if bytes > MAX_PAGE_BYTES && !out.is_empty() {
            break;
        }
        out.push(event);
    }
    out
}

impl From<StoredEvent> for AuditEvent {
    fn from(e: StoredEvent) -> Self {
        Self {
            position: e.position,
            tx_id: e.tx_id,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload.to_value(),
            metadata: e.metadata.to_value(),
            recorded_at: e.recorded_at,
        }
    }
}

/// A name filter of the audit log (`Delivery`, `AttemptFailed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogName(String);

impl LogName {
    /// # Errors
    /// A validation error naming `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        if value.is_empty()
            || value.len() > 100
            || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ValidationError::new(
                field,
                "must be a name such as Delivery or AttemptFailed",
            ));
        }
        Ok(Self(value.to_string()))
    }
}

/// Which page of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditPageRequest {
    /// Events after the event at this global position (0: from the start).
    pub after: u64,
    pub limit: u32,
    pub aggregate_type: Option<LogName>,
    pub event_type: Option<LogName>,
    /// Webhook bodies too (left out by default).
    pub include_payload: bool,
}

#[derive(Debug, Clone)]
pub struct AuditPage {
    pub data: Vec<AuditEvent>,
    /// Pass as `after` for the next page (the last position returned, or
    /// the same `after` when nothing new is visible yet).
    pub next_after: i64,
}

/// Everything one request caused, for support: how much, then the first
/// page of each part (webhook bodies left out); the rest by page.
#[derive(Debug, Clone)]
pub struct RequestTrace {
    pub request_id: String,
    pub summary: TraceSummary,
    pub events: AuditPage,
    pub deliveries: Page<DeliveryRecord>,
    pub attempts: Page<AttemptRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceSummary {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

/// Which page of one part of a request trace.
#[derive(Debug, Clone, Default)]
pub struct TracePage {
    /// Events: after this position; deliveries and attempts: the cursor
    /// of the previous page.
    pub after: Option<String>,
    pub limit: u32,
    pub include_payload: bool,
}

/// How verifying the log ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Verification {
    /// Every chain is intact; `matched` anchored heads were found as
    /// recorded.
    Intact {
        events: u64,
        aggregates: u64,
        matched: usize,
    },
    /// A chain is broken at this event.
    Broken(BrokenLink),
    /// An event's link differs from the head anchored for it.
    AnchorDiffers {
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        position: i64,
    },
    /// Anchored heads that are no longer in the log (events were
    /// removed): how many, and the first of them (aggregate type, id and
    /// sequence, in order; at most 100).
    AnchorsMissing {
        count: usize,
        first: Vec<(String, String, i64)>,
    },
    /// More than one of the above, in log order (removed heads last; at
    /// most [`MAX_FINDINGS`] broken chains and differing anchors).
    Several(Vec<Verification>),
}

/// How many broken chains and differing anchors `verify` names before it
/// only counts on to the end (removed heads are always named).
pub const MAX_FINDINGS: usize = 100;

/// Heads recorded earlier (`audit heads`), by aggregate and sequence.
pub type AnchoredHeads = HashMap<(String, String, i64), String>;

pub struct AuditService {
    log: Arc<dyn AuditLog>,
    archive: Arc<dyn LogArchive>,
    deliveries: Arc<dyn DeliveryReadModel>,
    waiter: Arc<dyn ProjectionWaiter>,
    consistency_timeout: Duration,
}

impl fmt::Debug for AuditService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditService").finish_non_exhaustive()
    }
}

impl AuditService {
    pub fn new(
        log: Arc<dyn AuditLog>,
        archive: Arc<dyn LogArchive>,
        deliveries: Arc<dyn DeliveryReadModel>,
        waiter: Arc<dyn ProjectionWaiter>,
        consistency_timeout: Duration,
    ) -> Self {
        Self {
            log,
            archive,
            deliveries,
            waiter,
            consistency_timeout,
        }
    }

    /// The tenant's events in commit order.
    ///
    /// # Errors
    /// A validation error for an `after` that names no event.
    pub async fn page(
        &self,
        tenant: TenantId,
        request: AuditPageRequest,
    ) -> Result<AuditPage, AppError> {
        let after = i64::try_from(request.after)
            .map_err(|_| ValidationError::new("after", "is not a position"))?;
        let query = AuditQuery {
            tenant: Some(tenant),
            after,
            limit: request.limit,
            aggregate_type: request.aggregate_type.map(|n| n.0),
            event_type: request.event_type.map(|n| n.0),
        };
        let data = bounded(self.log.page(&query).await?, request.include_payload);
        let next_after = data.last().map_or(after, |e| e.position);
        Ok(AuditPage { data, next_after })
    }

    /// Everything `request_id` caused for `tenant`: how much, and the
    /// first page of its events (any aggregate), of the deliveries they
    /// touch and of the attempts it caused.
    ///
    /// # Errors
    /// 404 when the request caused nothing for this tenant.
    pub async fn trace(
        &self,
        tenant: TenantId,
        request_id: &RequestId,
    ) -> Result<RequestTrace, AppError> {
        // The deliveries and attempts come from read models: let them catch
        // up with the log first (bounded), so the trace is complete.
        self.waiter
            .wait_caught_up(Delivery::TYPE, self.consistency_timeout)
            .await;
        let counts = self.log.request_counts(tenant, request_id.as_str()).await?;
        if counts.events == 0 {
            return Err(AppError::not_found("request", request_id));
        }
        let first = TracePage {
            after: None,
            limit: DEFAULT_TRACE_LIMIT,
            include_payload: false,
        };
        Ok(RequestTrace {
            request_id: request_id.to_string(),
            summary: TraceSummary {
                events: counts.events,
                deliveries: counts.deliveries,
                attempts: self
                    .deliveries
                    .count_attempts_by_request(tenant, request_id.as_str())
                    .await?,
            },
            events: self.trace_events(tenant, request_id, &first).await?,
            deliveries: self.trace_deliveries(tenant, request_id, &first).await?,
            attempts: self.trace_attempts(tenant, request_id, &first).await?,
        })
    }

    /// A page of the events a request caused, in commit order.
    ///
    /// # Errors
    /// A validation error for a cursor that names no event.
    pub async fn trace_events(
        &self,
        tenant: TenantId,
        request_id: &RequestId,
        page: &TracePage,
    ) -> Result<AuditPage, AppError> {
        let after = match page.after.as_deref() {
            None => 0,
            Some(a) => a.parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(|| {
                ValidationError::new("after", "must be a position returned as next_after")
            })?,
        };
        let events = self
            .log
            .by_request(tenant, request_id.as_str(), after, page.limit)
            .await?;
        let data = bounded(events, page.include_payload);
        let next_after = data.last().map_or(after, |e| e.position);
        Ok(AuditPage { data, next_after })
    }

    /// A page of the deliveries a request's events touch, by id.
    ///
    /// # Errors
    /// A validation error for a malformed cursor.
    pub async fn trace_deliveries(
        &self,
        tenant: TenantId,
        request_id: &RequestId,
        page: &TracePage,
    ) -> Result<Page<DeliveryRecord>, AppError> {
        let after = page
            .after
            .as_deref()
            .map(|c| {
                DeliveryId::parse(c).map_err(|_| {
                    ValidationError::new("cursor", "is not a cursor returned by this API")
                })
            })
            .transpose()?;
        let mut ids = self
            .log
            .deliveries_of_request(tenant, request_id.as_str(), after, page.limit + 1)
            .await?;
        let more = ids.len() > page.limit as usize;
        ids.truncate(page.limit as usize);
        let mut data = self.deliveries.get_many(tenant, &ids).await?;
        data.sort_by_key(|d| d.id);
        Ok(Page {
            next_cursor: more.then(|| ids.last().map(ToString::to_string)).flatten(),
            data,
        })
    }

    /// A page of the attempts a request caused, by start time.
    ///
    /// # Errors
    /// A validation error for a malformed cursor.
    pub async fn trace_attempts(
        &self,
        tenant: TenantId,
        request_id: &RequestId,
        page: &TracePage,
    ) -> Result<Page<AttemptRecord>, AppError> {
        let after = page.after.as_deref().map(decode_cursor).transpose()?;
        let rows = self
            .deliveries
            .attempts_by_request(tenant, request_id.as_str(), after, page.limit)
            .await?;
        paginate_after(rows, page.limit)
    }

    /// Writes the log (or one tenant's events) after position `after` in
    /// commit order as JSON Lines, from one consistent snapshot; calls
    /// `progress` with the count so far after each page. Returns how many
    /// events were written and the last position.
    ///
    /// # Errors
    /// 400 for an `after` that names no event; storage and write errors.
    pub async fn export(
        &self,
        tenant: Option<TenantId>,
        after: i64,
        out: &mut (dyn std::io::Write + Send),
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<(u64, i64), AppError> {
        let mut snapshot = self.archive.snapshot().await?;
        let mut cursor = snapshot.position_of(after).await?.ok_or_else(|| {
            AppError::invalid(ValidationError::new(
                "after",
                format!("no event has position {after}"),
            ))
        })?;
        let mut exported: u64 = 0;
        loop {
            let page = snapshot.page(tenant, cursor, EXPORT_PAGE).await?;
            let Some(last) = page.last() else { break };
            cursor = last.log_position();
            for event in page {
                let line = serde_json::to_string(&AuditEvent::from(event))
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                writeln!(out, "{line}")
                    .map_err(|e| AppError::Internal(format!("{EXPORT_WRITE_FAILED}: {e}")))?;
                exported += 1;
            }
            progress(exported);
        }
        snapshot.close().await?;
        Ok((exported, cursor.position))
    }

    /// Recomputes every hash chain (or one tenant's) and checks sequences,
    /// and the heads anchored earlier; gives each aggregate's head to
    /// `heads` as it is passed.
    ///
    /// # Errors
    /// Storage errors, or what `heads` returns.
    pub async fn verify(
        &self,
        tenant: Option<TenantId>,
        anchored: &AnchoredHeads,
        heads: &mut (dyn FnMut(ChainHead) -> Result<(), AppError> + Send),
    ) -> Result<Verification, AppError> {
        let mut verifier = ChainVerifier::default();
        let mut matched = 0usize;
        let mut found: std::collections::HashSet<(String, String, i64)> =
            std::collections::HashSet::new();
        // Every chain is checked to the end: a broken one is left at its
        // break (the rest of its aggregate is skipped) and the next one
        // checked, so that one tampering does not hide others, nor the
        // removed heads only the anchors reveal.
        let mut findings: Vec<Verification> = Vec::new();
        let mut skipping: Option<(String, String)> = None;
        let mut stream = self.archive.by_aggregate(tenant);
        while let Some(item) = stream.next().await {
            let Verifiable { event, begun_by } = item?;
            let key = (
                event.aggregate_type.clone(),
                event.aggregate_id.clone(),
                event.sequence,
            );
            let anchor = anchored.get(&key);
            if anchor.is_some() {
                found.insert(key.clone());
            }
            if skipping
                .as_ref()
                .is_some_and(|(t, id)| *t == key.0 && *id == key.1)
            {
                continue;
            }
            skipping = None;
            match verifier.push_after(&event, begun_by.as_ref()) {
                Ok(Some(head)) => heads(head)?,
                Ok(None) => {}
                Err(broken) => {
                    if findings.len() < MAX_FINDINGS {
                        findings.push(Verification::Broken(broken));
                    }
                    verifier.abandon();
                    skipping = Some((key.0, key.1));
                    continue;
                }
            }
            if let Some(link) = anchor {
                let stored = super::chain::stored_link_of(&event.metadata).unwrap_or_default();
                if stored == *link {
                    matched += 1;
                } else if findings.len() < MAX_FINDINGS {
                    findings.push(Verification::AnchorDiffers {
                        aggregate_type: key.0,
                        aggregate_id: key.1,
                        sequence: key.2,
                        position: event.position,
                    });
                }
            }
        }
        if let Some(head) = verifier.finish() {
            heads(head)?;
        }
        for (aggregate_type, aggregate_id, sequence, position) in
            self.archive.unseen(tenant).await?
        {
            if findings.len() < MAX_FINDINGS {
                findings.push(Verification::Broken(BrokenLink {
                    aggregate_type,
                    aggregate_id,
                    sequence,
                    position,
                    reason: "its transaction id is beyond every transaction that has run (its tx_id was changed): readers in commit order (exports, read models, the audit API) skip it".into(),
                }));
            }
        }
        if found.len() < anchored.len() {
            let mut missing: Vec<(String, String, i64)> = anchored
                .keys()
                .filter(|k| !found.contains(*k))
                .cloned()
                .collect();
            missing.sort();
            let count = missing.len();
            missing.truncate(100);
            findings.push(Verification::AnchorsMissing {
                count,
                first: missing,
            });
        }
        if findings.len() > 1 {
            return Ok(Verification::Several(findings));
        }
        if let Some(only) = findings.pop() {
            return Ok(only);
        }
        Ok(Verification::Intact {
            events: verifier.events,
            aggregates: verifier.aggregates,
            matched,
        })
    }
}
