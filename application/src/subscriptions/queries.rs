//! Reading subscriptions: one (now or as of a time), lists, histories.

use super::commands::{ListSubscriptions, ReadSubscription};
use super::service::SubscriptionService;
use super::view::SubscriptionView;
use crate::error::AppError;
use crate::fold;
use crate::history::{self, HistoryEntry, HistoryRequest};
use crate::pagination::{paginate, Page};
use crate::ports::SubscriptionListQuery;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_domain::subscription::{Subscription, SubscriptionStatus};
use hookline_domain::{EventPattern, SubscriptionId, TenantId};

impl SubscriptionService {
    /// # Errors
    /// 404 for a subscription the tenant does not have (or, without
    /// `include_inactive`, a deleted one).
    pub async fn get(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
        how: ReadSubscription,
    ) -> Result<SubscriptionView, AppError> {
        let view = match how.as_of {
            Some(at) => self.get_as_of(tenant, id, at).await?,
            None => {
                let record = self
                    .read
                    .get(tenant, id)
                    .await?
                    .ok_or_else(|| AppError::not_found("subscription", id))?;
                let mut view = SubscriptionView::render(
                    &record.state,
                    self.shared.cipher.as_ref(),
                    self.now(),
                )?;
                self.fill_backlog(std::slice::from_mut(&mut view)).await?;
                view
            }
        };
        // Deleted ones (now, or at `as_of`) only when asked for.
        if view.status == SubscriptionStatus::Deleted && !how.include_inactive {
            return Err(AppError::not_found("subscription", id));
        }
        Ok(view)
    }

    /// The subscription as the events recorded up to `at` describe it.
    async fn get_as_of(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
        at: DateTime<Utc>,
    ) -> Result<SubscriptionView, AppError> {
        let events = self
            .shared
            .log
            .aggregate_history(Subscription::TYPE, &id.to_string())
            .await?;
        let loaded = fold::rebuild_as_of::<Subscription>(&events, at)?;
        let Some(state) = loaded.aggregate.state().filter(|s| s.tenant_id == tenant) else {
            let owned = fold::rebuild::<Subscription>(&events)?
                .aggregate
                .state()
                .is_some_and(|s| s.tenant_id == tenant);
            return Err(fold::absent_at(&events, at, owned, "subscription", id));
        };
        SubscriptionView::render(state, self.shared.cipher.as_ref(), at)
    }

    /// Newest first, keyset-paginated.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        tenant: TenantId,
        query: ListSubscriptions,
    ) -> Result<Page<SubscriptionView>, AppError> {
        let limit = query.page.limit;
        let rows = self
            .read
            .list(
                tenant,
                &SubscriptionListQuery {
                    any_of_patterns: query.event.as_ref().map(patterns_covering),
                    include_inactive: query.include_inactive
                        || query.status == Some(crate::ports::ListedStatus::Disabled),
                    exclude_deleted: query.exclude_deleted,
                    status: query.status,
                    search: query
                        .search
                        .as_deref()
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_lowercase),
                    only_ids: query
                        .only
                        .as_ref()
                        .map(|ids| ids.iter().map(|id| *id.as_uuid()).collect()),
                    before: query.page.before,
                    limit,
                    ..SubscriptionListQuery::default()
                },
            )
            .await?;
        let now = self.now();
        let mut page = paginate(
            rows,
            limit,
            |r| (r.state.created_at, *r.state.id.as_uuid()),
            |r| SubscriptionView::render(&r.state, self.shared.cipher.as_ref(), now),
        )?;
        self.fill_backlog(&mut page.data).await?;
        Ok(page)
    }

    /// Each view's waiting deliveries (one query for all of them).
    pub(super) async fn fill_backlog(
        &self,
        views: &mut [SubscriptionView],
    ) -> Result<(), AppError> {
        let Some(flow) = &self.flow else {
            return Ok(());
        };
        let ids: Vec<SubscriptionId> = views.iter().map(|v| v.id).collect();
        let backlog = flow.backlog(&ids).await?;
        for v in views {
            v.backlog = Some(backlog.get(&v.id).copied().unwrap_or(0));
        }
        Ok(())
    }

    /// The tenant's subscriptions that are not deleted (active or
    /// disabled), in creation order either way, after `after` in that
    /// order, and whether more follow.
    ///
    /// # Errors
    /// 404 for an `after` subscription the tenant does not have.
    pub async fn list_in_order(
        &self,
        tenant: TenantId,
        oldest_first: bool,
        after: Option<SubscriptionId>,
        limit: u32,
    ) -> Result<(Vec<SubscriptionView>, bool), AppError> {
        let cursor = match after {
            Some(id) => {
                let s = self.load_state(tenant, id).await?;
                Some((s.created_at, *s.id.as_uuid()))
            }
            None => None,
        };
        let mut rows = self
            .read
            .list(
                tenant,
                &SubscriptionListQuery {
                    include_inactive: true,
                    exclude_deleted: true,
                    before: cursor,
                    limit,
                    oldest_first,
                    ..SubscriptionListQuery::default()
                },
            )
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let now = self.now();
        let views = rows
            .iter()
            .map(|r| SubscriptionView::render(&r.state, self.shared.cipher.as_ref(), now))
            .collect::<Result<_, _>>()?;
        Ok((views, more))
    }

    /// Every subscription of a tenant that still exists (active or
    /// disabled), for cascades such as a tenant's deletion.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn ids_of(&self, tenant: TenantId) -> Result<Vec<SubscriptionId>, AppError> {
        let mut ids = Vec::new();
        let mut before = None;
        loop {
            let rows = self
                .read
                .list(
                    tenant,
                    &SubscriptionListQuery {
                        include_inactive: true,
                        before,
                        limit: crate::pagination::MAX_LIMIT,
                        ..SubscriptionListQuery::default()
                    },
                )
                .await?;
            let Some(last) = rows.last() else { break };
            before = Some((last.state.created_at, *last.state.id.as_uuid()));
            ids.extend(
                rows.iter()
                    .filter(|r| r.state.status != SubscriptionStatus::Deleted)
                    .map(|r| r.state.id),
            );
        }
        ids.dedup();
        Ok(ids)
    }

    /// A page of the subscription's events in order, secrets masked.
    ///
    /// # Errors
    /// 404 when the tenant has no such subscription.
    pub async fn history(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
        request: HistoryRequest,
    ) -> Result<Page<HistoryEntry>, AppError> {
        history::read_owned_page(
            self.shared.log.as_ref(),
            Subscription::TYPE,
            &id.to_string(),
            request,
            tenant,
        )
        .await?
        .ok_or_else(|| AppError::not_found("subscription", id))
    }
}
/// Filter patterns at least as broad as `pattern`: a subscription listing
/// any of them receives every event `pattern` names.
fn patterns_covering(pattern: &EventPattern) -> Vec<String> {
    match pattern {
        EventPattern::Exact(name) => name.matching_patterns(),
        EventPattern::All => vec!["*".to_string()],
        EventPattern::Prefix(prefix) => {
            let mut out = vec!["*".to_string()];
            let mut acc = String::new();
            for (i, seg) in prefix.split('.').enumerate() {
                if i > 0 {
                    acc.push('.');
                }
                acc.push_str(seg);
                out.push(format!("{acc}.*"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_patterns() {
        let p = EventPattern::parse("a.b.*", "e").unwrap();
        assert_eq!(patterns_covering(&p), vec!["*", "a.*", "a.b.*"]);
        let e = EventPattern::parse("a.b", "e").unwrap();
        assert_eq!(patterns_covering(&e), vec!["*", "a.*", "a.b"]);
    }
}
