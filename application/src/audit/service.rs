//! The audit log API, support's request traces, and the exports and
//! verification auditors run.

use super::verify::{BrokenLink, ChainHead, ChainVerifier};
use crate::context::RequestId;
use crate::error::AppError;
use crate::ports::{
    AttemptRecord, AuditLog, AuditQuery, DeliveryReadModel, DeliveryRecord, LogArchive,
    ProjectionWaiter, StoredEvent,
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

pub const DEFAULT_AUDIT_LIMIT: u32 = 100;
pub const MAX_AUDIT_LIMIT: u32 = 1000;
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
            metadata: e.metadata,
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
}

#[derive(Debug, Clone)]
pub struct AuditPage {
    pub data: Vec<AuditEvent>,
    /// Pass as `after` for the next page (the last position returned, or
    /// the same `after` when nothing new is visible yet).
    pub next_after: i64,
}

/// Everything one request caused, for support.
#[derive(Debug, Clone)]
pub struct RequestTrace {
    pub request_id: String,
    pub events: Vec<AuditEvent>,
    pub deliveries: Vec<DeliveryRecord>,
    pub attempts: Vec<AttemptRecord>,
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
    /// Anchored heads that are no longer in the log (events were removed).
    AnchorsMissing(usize),
}

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
        let events = self.log.page(&query).await?;
        let next_after = events.last().map_or(after, |e| e.position);
        Ok(AuditPage {
            data: events.into_iter().map(AuditEvent::from).collect(),
            next_after,
        })
    }

    /// Everything `request_id` caused for `tenant`: its events (any
    /// aggregate), the deliveries involved, and every attempt.
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
        let events = self.log.by_request(tenant, request_id.as_str()).await?;
        if events.is_empty() {
            return Err(AppError::not_found("request", request_id));
        }
        let mut ids: Vec<DeliveryId> = events
            .iter()
            .filter(|e| e.aggregate_type == Delivery::TYPE)
            .filter_map(|e| DeliveryId::parse(&e.aggregate_id).ok())
            .collect();
        ids.sort();
        ids.dedup();
        let mut deliveries = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = self.deliveries.get(tenant, id).await? {
                deliveries.push(d);
            }
        }
        let attempts = self
            .deliveries
            .attempts_by_request(tenant, request_id.as_str())
            .await?;
        Ok(RequestTrace {
            request_id: request_id.to_string(),
            events: events.into_iter().map(AuditEvent::from).collect(),
            deliveries,
            attempts,
        })
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
                    .map_err(|e| AppError::Internal(format!("writing the export: {e}")))?;
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
        let mut stream = self.archive.by_aggregate(tenant);
        while let Some(event) = stream.next().await {
            let event = event?;
            match verifier.push(&event) {
                Ok(Some(head)) => heads(head)?,
                Ok(None) => {}
                Err(broken) => return Ok(Verification::Broken(broken)),
            }
            let key = (
                event.aggregate_type.clone(),
                event.aggregate_id.clone(),
                event.sequence,
            );
            if let Some(link) = anchored.get(&key) {
                let stored = super::chain::stored_link(&event.metadata).unwrap_or_default();
                if stored != link {
                    return Ok(Verification::AnchorDiffers {
                        aggregate_type: key.0,
                        aggregate_id: key.1,
                        sequence: key.2,
                        position: event.position,
                    });
                }
                matched += 1;
            }
        }
        if let Some(head) = verifier.finish() {
            heads(head)?;
        }
        if matched < anchored.len() {
            return Ok(Verification::AnchorsMissing(anchored.len() - matched));
        }
        Ok(Verification::Intact {
            events: verifier.events,
            aggregates: verifier.aggregates,
            matched,
        })
    }
}
