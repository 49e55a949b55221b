//! Read models folded from the memory log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::deliveries::fold::records_until;
use crate::error::AppError;
use crate::fold;
use crate::ports::{
    AttemptRecord, DeliveryListQuery, DeliveryReadModel, DeliveryRecord, StoredEvent,
    SubscriptionDirectory, SubscriptionListQuery, SubscriptionReadModel, SubscriptionRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_domain::delivery::Delivery;
use hookline_domain::subscription::{Subscription, SubscriptionState, SubscriptionStatus};
use hookline_domain::{DeliveryId, EventId, SubscriptionId, TenantId};
use std::sync::Arc;

/// The subscriptions read model and directory, folded from the log.
#[derive(Debug, Clone)]
pub struct LogSubscriptions(pub Arc<MemoryLog>);

impl LogSubscriptions {
    fn all(&self) -> Vec<(SubscriptionState, i64)> {
        let events = self.0.of(Subscription::TYPE);
        let mut ids: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
        ids.dedup();
        let folded = fold::rebuild_each::<Subscription>(&events).unwrap();
        let mut out: Vec<(SubscriptionState, i64)> = folded
            .into_values()
            .filter_map(|l| l.aggregate.state().cloned().map(|s| (s, l.version)))
            .collect();
        out.sort_by_key(|(s, _)| std::cmp::Reverse((s.created_at, *s.id.as_uuid())));
        out
    }
}

#[async_trait]
impl SubscriptionReadModel for LogSubscriptions {
    async fn get(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|(s, _)| s.id == id && s.tenant_id == tenant)
            .map(|(state, version)| SubscriptionRecord { state, version }))
    }

    async fn list(
        &self,
        tenant: TenantId,
        q: &SubscriptionListQuery,
    ) -> Result<Vec<SubscriptionRecord>, AppError> {
        let mut all: Vec<_> = self
            .all()
            .into_iter()
            .filter(|(s, _)| s.tenant_id == tenant)
            .filter(|(s, _)| q.include_inactive || s.status == SubscriptionStatus::Active)
            .filter(|(s, _)| !(q.exclude_deleted && s.status == SubscriptionStatus::Deleted))
            .filter(|(s, _)| {
                q.status
                    .is_none_or(|st| crate::ports::ListedStatus::of(s) == Some(st))
            })
            .filter(|(s, _)| {
                q.search.as_deref().is_none_or(|needle| {
                    s.url.as_str().to_lowercase().contains(needle)
                        || s.description
                            .as_ref()
                            .is_some_and(|d| d.as_str().to_lowercase().contains(needle))
                })
            })
            .filter(|(s, _)| {
                q.only_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(s.id.as_uuid()))
            })
            .filter(|(s, _)| {
                q.any_of_patterns
                    .as_ref()
                    .is_none_or(|p| s.events.to_strings().iter().any(|e| p.contains(e)))
            })
            .collect();
        if q.oldest_first {
            all.reverse();
        }
        Ok(all
            .into_iter()
            .filter(|(s, _)| {
                q.before.is_none_or(|b| {
                    let at = (s.created_at, *s.id.as_uuid());
                    if q.oldest_first {
                        at > b
                    } else {
                        at < b
                    }
                })
            })
            .take(q.limit as usize + 1)
            .map(|(state, version)| SubscriptionRecord { state, version })
            .collect())
    }

    async fn count(&self, tenant: TenantId) -> Result<u64, AppError> {
        Ok(self
            .all()
            .iter()
            .filter(|(s, _)| s.tenant_id == tenant && s.status != SubscriptionStatus::Deleted)
            .count() as u64)
    }

    async fn find_active_duplicate(
        &self,
        tenant: TenantId,
        url: &str,
        events: &[String],
    ) -> Result<Option<SubscriptionId>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|(s, _)| {
                s.tenant_id == tenant
                    && s.status == SubscriptionStatus::Active
                    && s.url.as_str() == url
                    && s.events.to_strings() == events
            })
            .map(|(s, _)| s.id))
    }
}

#[async_trait]
impl SubscriptionDirectory for LogSubscriptions {
    async fn live_for_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Arc<Vec<SubscriptionState>>, AppError> {
        let mut active: Vec<SubscriptionState> = self
            .all()
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| s.tenant_id == tenant && s.status != SubscriptionStatus::Deleted)
            .collect();
        active.reverse();
        Ok(Arc::new(active))
    }

    async fn get(&self, id: SubscriptionId) -> Result<Option<Arc<SubscriptionState>>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|(s, _)| s.id == id)
            .map(|(s, _)| Arc::new(s)))
    }
}

/// The deliveries read model, folded from the log.
#[derive(Debug, Clone)]
pub struct LogDeliveries(pub Arc<MemoryLog>);

impl LogDeliveries {
    fn all(&self) -> Vec<(DeliveryRecord, Vec<AttemptRecord>)> {
        let events = self.0.of(Delivery::TYPE);
        let mut ids: Vec<String> = events.iter().map(|e| e.aggregate_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let mut out: Vec<_> = ids
            .iter()
            .filter_map(|id| {
                let mine: Vec<StoredEvent> = events
                    .iter()
                    .filter(|e| &e.aggregate_id == id)
                    .cloned()
                    .collect();
                let (record, attempts) = records_until(&mine, DateTime::<Utc>::MAX_UTC).unwrap();
                record.map(|r| (r, attempts))
            })
            .collect();
        out.sort_by_key(|(r, _)| std::cmp::Reverse((r.created_at, *r.id.as_uuid())));
        out
    }
}

#[async_trait]
impl DeliveryReadModel for LogDeliveries {
    async fn get(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<DeliveryRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .map(|(r, _)| r)
            .find(|r| r.id == id && r.tenant_id == tenant))
    }

    async fn list(
        &self,
        tenant: TenantId,
        q: &DeliveryListQuery,
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.tenant_id == tenant)
            .filter(|r| q.status.is_none_or(|s| r.status == s))
            .filter(|r| q.subscription_id.is_none_or(|s| r.subscription_id == s))
            .take(q.limit as usize + 1)
            .collect())
    }

    async fn attempts(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Vec<AttemptRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|(r, _)| r.id == id && r.tenant_id == tenant)
            .map(|(_, a)| a)
            .unwrap_or_default())
    }

    async fn attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, AppError> {
        let mut all: Vec<AttemptRecord> = self
            .all()
            .into_iter()
            .filter(|(r, _)| r.tenant_id == tenant)
            .flat_map(|(_, a)| a)
            .filter(|a| {
                a.request_id.as_deref() == Some(request_id)
                    || a.triggered_by.as_deref() == Some(request_id)
            })
            .filter(|a| after.is_none_or(|c| (a.started_at, a.id) > c))
            .collect();
        all.sort_by_key(|a| (a.started_at, a.id));
        all.truncate(limit as usize + 1);
        Ok(all)
    }

    async fn count_attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
    ) -> Result<u64, AppError> {
        Ok(self
            .attempts_by_request(tenant, request_id, None, u32::MAX - 1)
            .await?
            .len() as u64)
    }

    async fn get_many(
        &self,
        tenant: TenantId,
        ids: &[DeliveryId],
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.tenant_id == tenant && ids.contains(&r.id))
            .collect())
    }

    async fn recoverable(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<DeliveryId>, AppError> {
        use hookline_domain::delivery::DeliveryStatus;
        Ok(self
            .all()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| {
                r.tenant_id == tenant
                    && r.subscription_id == subscription
                    && r.created_at >= since
                    && until.is_none_or(|u| r.created_at < u)
                    && (matches!(
                        r.status,
                        DeliveryStatus::Failed
                            | DeliveryStatus::Abandoned
                            | DeliveryStatus::Skipped
                    ) || (r.status == DeliveryStatus::Pending && r.attempts > 0))
            })
            .map(|r| r.id)
            .collect())
    }

    async fn attempts_matching(
        &self,
        tenant: TenantId,
        q: &crate::ports::AttemptListQuery,
    ) -> Result<Vec<crate::ports::AttemptListRow>, AppError> {
        use crate::ports::{AttemptListRow, AttemptResult};
        use hookline_domain::delivery::DeliveryStatus;
        let messages = LogMessages(self.0.clone()).all();
        let mut rows: Vec<AttemptListRow> = self
            .all()
            .into_iter()
            .filter(|(r, _)| r.tenant_id == tenant)
            .filter(|(r, _)| q.event_id.is_none_or(|e| r.event_id == e))
            .filter(|(r, _)| q.subscription_id.is_none_or(|s| r.subscription_id == s))
            .filter(|(r, _)| {
                q.event_types
                    .as_ref()
                    .is_none_or(|t| t.contains(&r.event_type))
            })
            .filter(|(r, _)| {
                q.channel.as_ref().is_none_or(|c| {
                    messages
                        .iter()
                        .any(|m| m.id == r.event_id && m.channels.contains(c))
                })
            })
            .flat_map(|(r, attempts)| {
                attempts.into_iter().map(move |a| AttemptListRow {
                    attempt: a,
                    event_id: r.event_id,
                    event_type: r.event_type.clone(),
                })
            })
            .filter(|row| q.attempt_id.is_none_or(|id| row.attempt.id == id))
            .filter(|row| match q.result {
                None => true,
                Some(AttemptResult::Succeeded) => row.attempt.outcome == DeliveryStatus::Delivered,
                Some(AttemptResult::Failed) => row.attempt.outcome != DeliveryStatus::Delivered,
            })
            .filter(|row| {
                q.status_codes.is_none_or(|(lo, hi)| {
                    let code = row.attempt.status_code.unwrap_or(0);
                    (lo..=hi).contains(&code)
                })
            })
            .filter(|row| q.since.is_none_or(|t| row.attempt.started_at > t))
            .filter(|row| q.until.is_none_or(|t| row.attempt.started_at < t))
            .collect();
        rows.sort_by_key(|row| (row.attempt.started_at, row.attempt.id));
        if !q.oldest_first {
            rows.reverse();
        }
        if let Some(c) = q.cursor {
            rows.retain(|row| {
                let at = (row.attempt.started_at, row.attempt.id);
                if q.oldest_first {
                    at > c
                } else {
                    at < c
                }
            });
        }
        rows.truncate(q.limit as usize + 1);
        Ok(rows)
    }

    async fn attempt_cursor(
        &self,
        tenant: TenantId,
        attempt: uuid::Uuid,
    ) -> Result<Option<crate::ports::AttemptCursor>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|(r, _)| r.tenant_id == tenant)
            .find_map(|(r, attempts)| {
                attempts
                    .iter()
                    .find(|a| a.id == attempt)
                    .map(|a| crate::ports::AttemptCursor {
                        started_at: a.started_at,
                        subscription_id: r.subscription_id,
                        event_id: r.event_id,
                    })
            }))
    }

    async fn went_to(
        &self,
        tenant: TenantId,
        event: EventId,
        subscription: SubscriptionId,
    ) -> Result<bool, AppError> {
        Ok(self.all().into_iter().any(|(r, _)| {
            r.tenant_id == tenant && r.event_id == event && r.subscription_id == subscription
        }))
    }

    async fn destinations(
        &self,
        tenant: TenantId,
        event: EventId,
        after: Option<SubscriptionId>,
        backwards: bool,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        let mut latest: std::collections::BTreeMap<uuid::Uuid, DeliveryRecord> =
            std::collections::BTreeMap::new();
        for (r, _) in self.all() {
            if r.tenant_id != tenant
                || r.event_id != event
                || after.is_some_and(|a| {
                    let past = if backwards {
                        r.subscription_id.as_uuid() < a.as_uuid()
                    } else {
                        r.subscription_id.as_uuid() > a.as_uuid()
                    };
                    !past
                })
            {
                continue;
            }
            let key = *r.subscription_id.as_uuid();
            if latest.get(&key).is_none_or(|have| {
                (have.created_at, have.id.as_uuid()) < (r.created_at, r.id.as_uuid())
            }) {
                latest.insert(key, r);
            }
        }
        let mut rows: Vec<DeliveryRecord> = latest.into_values().collect();
        if backwards {
            rows.reverse();
        }
        rows.truncate(limit as usize + 1);
        Ok(rows)
    }

    async fn attempted_messages(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        q: &crate::ports::AttemptedMessagesQuery,
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        let messages = LogMessages(self.0.clone()).all();
        let position = |r: &DeliveryRecord| (r.created_at, *r.id.as_uuid());
        // Per message: its first delivery there (its place) and its latest
        // (its status).
        let mut by_event: std::collections::HashMap<EventId, (DeliveryRecord, DeliveryRecord)> =
            std::collections::HashMap::new();
        for (r, _) in self.all() {
            if r.tenant_id != tenant || r.subscription_id != subscription {
                continue;
            }
            let entry = by_event
                .entry(r.event_id)
                .or_insert_with(|| (r.clone(), r.clone()));
            if position(&r) < position(&entry.0) {
                entry.0 = r.clone();
            }
            if position(&r) > position(&entry.1) {
                entry.1 = r;
            }
        }
        let cursor = match q.after {
            None => None,
            Some(e) => Some(
                by_event
                    .get(&e)
                    .map(|(first, _)| position(first))
                    .ok_or_else(|| AppError::not_found("message", e))?,
            ),
        };
        let mut rows: Vec<(DeliveryRecord, DeliveryRecord)> = by_event
            .into_values()
            .filter(|(_, l)| q.statuses.as_ref().is_none_or(|s| s.contains(&l.status)))
            .filter(|(f, _)| {
                q.event_types
                    .as_ref()
                    .is_none_or(|t| t.contains(&f.event_type))
            })
            .filter(|(f, _)| {
                q.channel.as_ref().is_none_or(|c| {
                    messages
                        .iter()
                        .any(|m| m.id == f.event_id && m.channels.contains(c))
                })
            })
            .filter(|(f, _)| q.since.is_none_or(|t| f.created_at > t))
            .filter(|(f, _)| q.until.is_none_or(|t| f.created_at < t))
            .filter(|(f, _)| {
                cursor.is_none_or(|c| {
                    if q.oldest_first {
                        position(f) > c
                    } else {
                        position(f) < c
                    }
                })
            })
            .collect();
        rows.sort_by_key(|(f, _)| position(f));
        if !q.oldest_first {
            rows.reverse();
        }
        rows.truncate(q.limit as usize + 1);
        Ok(rows.into_iter().map(|(_, latest)| latest).collect())
    }

    async fn subscription_stats(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<crate::ports::SubscriptionStats, AppError> {
        use hookline_domain::delivery::DeliveryStatus;
        let mut stats = crate::ports::SubscriptionStats::default();
        for (r, attempts) in self.all() {
            if r.tenant_id != tenant || r.subscription_id != subscription {
                continue;
            }
            if (since..until).contains(&r.created_at) {
                match r.status {
                    DeliveryStatus::Pending => stats.pending += 1,
                    DeliveryStatus::Skipped => stats.skipped += 1,
                    _ => {}
                }
            }
            for a in attempts
                .iter()
                .filter(|a| (since..until).contains(&a.started_at))
            {
                if a.outcome == DeliveryStatus::Delivered {
                    stats.succeeded += 1;
                } else {
                    stats.failed += 1;
                }
            }
        }
        Ok(stats)
    }
}

/// The messages read model, folded from the log.
#[derive(Debug, Clone)]
pub struct LogMessages(pub Arc<MemoryLog>);

impl LogMessages {
    fn all(&self) -> Vec<crate::ports::MessageRecord> {
        use hookline_domain::message::Message;
        self.0
            .of(Message::TYPE)
            .iter()
            .filter_map(|e| {
                let loaded = fold::rebuild::<Message>(std::slice::from_ref(e)).ok()?;
                let s = loaded.aggregate.state()?.clone();
                Some(crate::ports::MessageRecord {
                    id: s.event_id,
                    tenant_id: s.tenant_id,
                    event_type: s.event_type.to_string(),
                    channels: s.channels.map(|c| c.to_strings()).unwrap_or_default(),
                    uid: s.uid.map(|u| u.as_str().to_string()),
                    published_at: s.published_at,
                })
            })
            .collect()
    }
}

#[async_trait]
impl crate::ports::MessageReadModel for LogMessages {
    async fn list(
        &self,
        tenant: TenantId,
        q: &crate::ports::MessageListQuery,
    ) -> Result<Vec<crate::ports::MessageRecord>, AppError> {
        let mut rows: Vec<_> = self
            .all()
            .into_iter()
            .filter(|m| m.tenant_id == tenant)
            .filter(|m| {
                q.event_types
                    .as_ref()
                    .is_none_or(|t| t.contains(&m.event_type))
            })
            .filter(|m| q.channel.as_ref().is_none_or(|c| m.channels.contains(c)))
            .filter(|m| q.since.is_none_or(|t| m.published_at > t))
            .filter(|m| q.until.is_none_or(|t| m.published_at < t))
            .collect();
        rows.sort_by_key(|m| (m.published_at, *m.id.as_uuid()));
        if !q.oldest_first {
            rows.reverse();
        }
        if let Some(c) = q.cursor {
            rows.retain(|m| {
                let at = (m.published_at, *m.id.as_uuid());
                if q.oldest_first {
                    at > c
                } else {
                    at < c
                }
            });
        }
        rows.truncate(q.limit as usize + 1);
        Ok(rows)
    }

    async fn by_ids(
        &self,
        tenant: TenantId,
        ids: &[EventId],
    ) -> Result<Vec<crate::ports::MessageRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|m| m.tenant_id == tenant && ids.contains(&m.id))
            .collect())
    }
}

/// The tenants read model, folded from the log; its version is the log's
/// length, so every change invalidates cached keys.
#[derive(Debug, Clone)]
pub struct LogTenants(pub Arc<MemoryLog>);

impl LogTenants {
    fn all(&self) -> Vec<hookline_domain::tenant::TenantState> {
        use hookline_domain::tenant::Tenant;
        let events = self.0.of(Tenant::TYPE);
        let mut out: Vec<_> = fold::rebuild_each::<Tenant>(&events)
            .unwrap()
            .into_values()
            .filter_map(|l| l.aggregate.state().cloned())
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse((s.created_at, *s.id.as_uuid())));
        out
    }
}

#[async_trait]
impl crate::ports::TenantReadModel for LogTenants {
    async fn get(
        &self,
        id: TenantId,
    ) -> Result<Option<hookline_domain::tenant::TenantState>, AppError> {
        Ok(self.all().into_iter().find(|s| s.id == id))
    }

    async fn list(
        &self,
        q: &crate::ports::TenantListQuery,
    ) -> Result<Vec<hookline_domain::tenant::TenantState>, AppError> {
        use hookline_domain::tenant::TenantStatus;
        let mut all: Vec<_> = self
            .all()
            .into_iter()
            .filter(|s| q.include_deleted || s.status != TenantStatus::Deleted)
            .collect();
        all.sort_by_key(|s| (s.created_at, *s.id.as_uuid()));
        if !q.oldest_first {
            all.reverse();
        }
        if let Some(c) = q.before {
            all.retain(|s| {
                let at = (s.created_at, *s.id.as_uuid());
                if q.oldest_first {
                    at > c
                } else {
                    at < c
                }
            });
        }
        all.truncate(q.limit as usize + 1);
        Ok(all)
    }

    async fn find_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<crate::ports::ApiKeyRecord>, AppError> {
        use hookline_domain::tenant::TenantStatus;
        Ok(self.all().into_iter().find_map(|s| {
            let deleted = (s.status == TenantStatus::Deleted).then_some(s.updated_at);
            s.keys
                .iter()
                .find(|k| k.key_hash == key_hash)
                .map(|k| crate::ports::ApiKeyRecord {
                    key_id: k.key_id,
                    tenant_id: s.id,
                    refused_from: match (k.revoked_from, deleted) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    },
                })
        }))
    }

    fn version(&self) -> u64 {
        self.0.all().len() as u64
    }
}

/// The catalogue read model, folded from the log on demand.
pub struct LogCatalogue(pub Arc<MemoryLog>);

#[async_trait]
impl crate::ports::CatalogueReadModel for LogCatalogue {
    async fn entries(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<hookline_domain::catalogue::EventTypeState>, AppError> {
        use hookline_domain::catalogue::CatalogueEntry;
        let events = self.0.of(CatalogueEntry::TYPE);
        Ok(fold::rebuild_each::<CatalogueEntry>(&events)
            .unwrap()
            .into_values()
            .filter_map(|l| l.aggregate.state().cloned())
            .filter(|s| s.tenant_id == tenant)
            .collect())
    }

    fn version(&self) -> u64 {
        self.0.all().len() as u64
    }

    /// Every change of any tenant's types counts (coarser than Postgres's,
    /// which is per tenant; enough for the application's tests).
    async fn fingerprint(&self, _tenants: &[TenantId]) -> Result<(i64, i64), AppError> {
        use hookline_domain::catalogue::CatalogueEntry;
        let n = self.0.of(CatalogueEntry::TYPE).len();
        Ok((i64::try_from(n).unwrap_or(i64::MAX), 0))
    }
}
