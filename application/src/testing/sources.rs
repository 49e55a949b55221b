//! Fakes for sources and connectors: the sources and upstream read models
//! folded from the memory log, rejections in memory, and a Siigo that
//! records what it was asked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::error::AppError;
use crate::fold;
use crate::ports::{
    NewRejection, RejectionLog, RejectionRecord, SiigoAccount, SiigoApi, SiigoWebhook,
    SiigoWebhookRequest, SourceListQuery, SourceReadModel, SourceRecord, UpstreamFailure,
    UpstreamReadModel, UpstreamRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::source::{Source, SourceStatus};
use hookline_domain::upstream::{UpstreamStatus, UpstreamSubscription};
use hookline_domain::{SourceId, UpstreamId};
use std::collections::VecDeque;
use std::sync::Mutex;

/// The sources read model, folded from the log.
#[derive(Debug, Clone)]
pub struct LogSources(pub Arc<MemoryLog>);

impl LogSources {
    fn all(&self) -> Vec<SourceRecord> {
        let events = self.0.of(Source::TYPE);
        let mut out: Vec<SourceRecord> = fold::rebuild_each::<Source>(&events)
            .unwrap()
            .into_values()
            .filter_map(|l| {
                l.aggregate.state().cloned().map(|state| SourceRecord {
                    state,
                    version: l.version,
                })
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse((r.state.created_at, *r.state.id.as_uuid())));
        out
    }
}

#[async_trait]
impl SourceReadModel for LogSources {
    async fn get(&self, tenant: TenantId, id: SourceId) -> Result<Option<SourceRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|r| r.state.id == id && r.state.tenant_id == tenant))
    }

    async fn list(
        &self,
        tenant: TenantId,
        q: &SourceListQuery,
    ) -> Result<Vec<SourceRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|r| r.state.tenant_id == tenant)
            .filter(|r| q.include_deleted || r.state.status != SourceStatus::Deleted)
            .filter(|r| {
                q.before
                    .is_none_or(|b| (r.state.created_at, *r.state.id.as_uuid()) < b)
            })
            .take(q.limit as usize + 1)
            .collect())
    }

    async fn count(&self, tenant: TenantId) -> Result<u64, AppError> {
        Ok(self
            .all()
            .iter()
            .filter(|r| r.state.tenant_id == tenant && r.state.status != SourceStatus::Deleted)
            .count() as u64)
    }
}

/// Rejections in memory.
#[derive(Debug, Default)]
pub struct MemoryRejections(pub Mutex<Vec<RejectionRecord>>);

#[async_trait]
impl RejectionLog for MemoryRejections {
    async fn record(&self, r: &NewRejection) -> Result<(), AppError> {
        let mut all = self.0.lock().unwrap();
        let id = all.len() as i64 + 1;
        all.push(RejectionRecord {
            id,
            source_id: r.source_id,
            reason: r.reason.to_string(),
            detail: r.detail.clone(),
            remote_addr: r.remote_addr.clone(),
            request_id: r.request_id.clone(),
            body_sha256: r.body_sha256.clone(),
            body_bytes: r.body_bytes,
            received_at: r.received_at,
        });
        Ok(())
    }

    async fn list(
        &self,
        _tenant: TenantId,
        source: SourceId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RejectionRecord>, AppError> {
        let mut rows: Vec<RejectionRecord> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.source_id == source && before.is_none_or(|b| r.id < b))
            .cloned()
            .collect();
        rows.reverse();
        rows.truncate(limit as usize + 1);
        Ok(rows)
    }
}

/// The upstream subscriptions read model, folded from the log.
#[derive(Debug, Clone)]
pub struct LogUpstream(pub Arc<MemoryLog>);

#[async_trait]
impl UpstreamReadModel for LogUpstream {
    async fn get(
        &self,
        tenant: TenantId,
        id: UpstreamId,
    ) -> Result<Option<UpstreamRecord>, AppError> {
        let events = self.0.of(UpstreamSubscription::TYPE);
        Ok(fold::rebuild_each::<UpstreamSubscription>(&events)
            .unwrap()
            .into_values()
            .filter_map(|l| {
                l.aggregate.state().cloned().map(|state| UpstreamRecord {
                    state,
                    version: l.version,
                })
            })
            .find(|r| r.state.id == id && r.state.tenant_id == tenant))
    }

    async fn list(
        &self,
        tenant: TenantId,
        include_removed: bool,
        _before: Option<(DateTime<Utc>, uuid::Uuid)>,
        limit: u32,
    ) -> Result<Vec<UpstreamRecord>, AppError> {
        let events = self.0.of(UpstreamSubscription::TYPE);
        Ok(fold::rebuild_each::<UpstreamSubscription>(&events)
            .unwrap()
            .into_values()
            .filter_map(|l| {
                l.aggregate.state().cloned().map(|state| UpstreamRecord {
                    state,
                    version: l.version,
                })
            })
            .filter(|r| r.state.tenant_id == tenant)
            .filter(|r| include_removed || r.state.status == UpstreamStatus::Active)
            .take(limit as usize + 1)
            .collect())
    }
}

/// A Siigo that records every call and answers from a script (success
/// once it runs out).
#[derive(Debug, Default)]
pub struct FakeSiigo {
    pub created: Mutex<Vec<SiigoWebhookRequest>>,
    pub deleted: Mutex<Vec<String>>,
    pub failures: Mutex<VecDeque<UpstreamFailure>>,
}

#[async_trait]
impl SiigoApi for FakeSiigo {
    async fn create_webhook(
        &self,
        _account: &SiigoAccount,
        request: &SiigoWebhookRequest,
    ) -> Result<SiigoWebhook, UpstreamFailure> {
        if let Some(f) = self.failures.lock().unwrap().pop_front() {
            return Err(f);
        }
        let mut created = self.created.lock().unwrap();
        created.push(request.clone());
        Ok(SiigoWebhook {
            id: format!("siigo-{}", created.len()),
            topic: request.topic.clone(),
            company_key: Some("company".into()),
        })
    }

    async fn delete_webhook(
        &self,
        _account: &SiigoAccount,
        id: &str,
    ) -> Result<(), UpstreamFailure> {
        self.deleted.lock().unwrap().push(id.to_string());
        Ok(())
    }
}
