//! The subscription use cases.

use super::commands::{
    CreateSubscription, ListSubscriptions, ReadSubscription, SubscriptionChanges,
};
use super::map_error;
use super::view::{
    sealing_context, SubscriptionView, SEALING_CONTEXT_HEADERS, SEALING_CONTEXT_SECRET,
};
use crate::commands::{execute_with_retry, Written};
use crate::context::CommandContext;
use crate::error::AppError;
use crate::fold;
use crate::history::HistoryEntry;
use crate::pagination::{paginate, Page};
use crate::ports::{AggregateStore, SubscriptionListQuery, SubscriptionReadModel};
use crate::shared::Shared;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_domain::sealed::GENERATED_SECRET_BYTES;
use hookline_domain::subscription::{
    CustomHeaders, DisableSubscription, EnableSubscription, RotateSecret, Subscribe, Subscription,
    SubscriptionCommand, SubscriptionState, SubscriptionStatus, Unsubscribe, UpdateSubscription,
};
use hookline_domain::{
    AllowList, EventFilter, EventPattern, Sealed, SigningSecret, SubscriptionId, TargetUrl,
    TenantId,
};
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    /// Private address ranges targets may use (URLs are checked against
    /// it when the API parses them).
    pub allow_list: AllowList,
    /// How long a rotated-out secret keeps signing deliveries.
    pub rotation_overlap: chrono::Duration,
}

pub struct SubscriptionService {
    shared: Shared,
    store: Arc<dyn AggregateStore<Subscription>>,
    read: Arc<dyn SubscriptionReadModel>,
    settings: SubscriptionSettings,
    /// Serialises "check for a duplicate, then write" within this process.
    write_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for SubscriptionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SubscriptionService {
    pub fn new(
        shared: Shared,
        store: Arc<dyn AggregateStore<Subscription>>,
        read: Arc<dyn SubscriptionReadModel>,
        settings: SubscriptionSettings,
    ) -> Self {
        Self {
            shared,
            store,
            read,
            settings,
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The private ranges target URLs may use.
    pub fn allow_list(&self) -> &AllowList {
        &self.settings.allow_list
    }

    fn seal_secret(&self, id: SubscriptionId, secret: &SigningSecret) -> Result<Sealed, AppError> {
        self.shared.cipher.seal(
            secret.expose().as_bytes(),
            &sealing_context(SEALING_CONTEXT_SECRET, id),
        )
    }

    fn seal_headers(
        &self,
        id: SubscriptionId,
        headers: &CustomHeaders,
    ) -> Result<(Vec<String>, Option<Sealed>), AppError> {
        if headers.is_empty() {
            return Ok((vec![], None));
        }
        let bytes = serde_json::to_vec(headers.as_map())
            .map_err(|e| AppError::Internal(format!("headers did not serialise: {e}")))?;
        let sealed = self
            .shared
            .cipher
            .seal(&bytes, &sealing_context(SEALING_CONTEXT_HEADERS, id))?;
        Ok((headers.names(), Some(sealed)))
    }

    fn new_secret(&self) -> SigningSecret {
        SigningSecret::from_random_bytes(&self.shared.random_bytes::<GENERATED_SECRET_BYTES>())
    }

    fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Runs a command (rebuilt on conflicts) and waits, bounded, for the
    /// read models; true when they caught up.
    async fn run(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        make: impl FnMut() -> SubscriptionCommand + Send,
    ) -> Result<bool, AppError> {
        let key = id.to_string();
        let position =
            execute_with_retry(self.store.as_ref(), &key, make, &ctx.metadata(self.now()))
                .await
                .map_err(|e| map_error(&key, e))?;
        Ok(self.shared.settle(Subscription::TYPE, position).await)
    }

    async fn load_state(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<SubscriptionState, AppError> {
        let key = id.to_string();
        let mut loaded = self.store.load(std::slice::from_ref(&key)).await?;
        loaded
            .remove(&key)
            .and_then(|l| l.aggregate.state().cloned())
            .filter(|s| s.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("subscription", id))
    }

    async fn render_current(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<SubscriptionView, AppError> {
        let state = self.load_state(tenant, id).await?;
        SubscriptionView::render(&state, self.shared.cipher.as_ref(), self.now())
    }

    async fn reject_duplicate(
        &self,
        tenant: TenantId,
        url: &TargetUrl,
        events: &EventFilter,
        except: Option<SubscriptionId>,
    ) -> Result<(), AppError> {
        let found = self
            .read
            .find_active_duplicate(tenant, url.as_str(), &events.to_strings())
            .await?;
        match found {
            Some(existing) if Some(existing) != except => Err(AppError::conflict(
                "duplicate_subscription",
                format!(
                    "subscription '{existing}' already sends these events to {url}; update it instead of creating another"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Creates a subscription. The answer carries the full secret, the only
    /// time it is ever shown.
    ///
    /// # Errors
    /// 409 for an active duplicate.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn create(
        &self,
        ctx: &CommandContext,
        input: CreateSubscription,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let secret = input.secret.unwrap_or_else(|| self.new_secret());
        let id = SubscriptionId::from_uuid(self.shared.entropy.new_id());
        let (header_names, headers) = self.seal_headers(id, &input.headers)?;
        let command = Subscribe {
            subscription_id: id,
            tenant_id: ctx.tenant_id,
            url: input.url,
            events: input.events,
            header_names,
            headers,
            description: input.description,
            signature_scheme: input.signature_scheme,
            secret: self.seal_secret(id, &secret)?,
            secret_hint: secret.hint(),
            at: self.now(),
        };
        let guard = self.write_lock.lock().await;
        self.reject_duplicate(ctx.tenant_id, &command.url, &command.events, None)
            .await?;
        let consistent = self
            .run(ctx, id, || SubscriptionCommand::Subscribe(command.clone()))
            .await?;
        drop(guard);
        let mut view = self.render_current(ctx.tenant_id, id).await?;
        view.secret = secret.expose().to_string();
        tracing::info!(subscription_id = %id, "subscription created");
        Ok(Written {
            value: view,
            consistent,
        })
    }

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
                SubscriptionView::render(&record.state, self.shared.cipher.as_ref(), self.now())?
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
        let state = loaded
            .aggregate
            .state()
            .filter(|s| s.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("subscription", id))?;
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
                    include_inactive: query.include_inactive,
                    before: query.page.before,
                    limit,
                },
            )
            .await?;
        let now = self.now();
        paginate(
            rows,
            limit,
            |r| (r.state.created_at, *r.state.id.as_uuid()),
            |r| SubscriptionView::render(&r.state, self.shared.cipher.as_ref(), now),
        )
    }

    /// # Errors
    /// 400 for no change, 404, 409 for a deleted subscription or when the
    /// change would duplicate another active subscription.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn update(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        changes: SubscriptionChanges,
    ) -> Result<Written<SubscriptionView>, AppError> {
        if changes.is_empty() {
            return Err(AppError::BadRequest(
                "the body must set at least one of url, events, headers, description, signature_scheme".into(),
            ));
        }
        let headers = changes
            .headers
            .as_ref()
            .map(|h| self.seal_headers(id, h))
            .transpose()?;
        let guard = self.write_lock.lock().await;
        if changes.url.is_some() || changes.events.is_some() {
            let current = self.load_state(ctx.tenant_id, id).await?;
            let url = changes.url.clone().unwrap_or(current.url);
            let events = changes.events.clone().unwrap_or(current.events);
            self.reject_duplicate(ctx.tenant_id, &url, &events, Some(id))
                .await?;
        }
        let consistent = self
            .run(ctx, id, || {
                SubscriptionCommand::Update(UpdateSubscription {
                    tenant_id: ctx.tenant_id,
                    url: changes.url.clone(),
                    events: changes.events.clone(),
                    headers: headers.clone(),
                    description: changes.description.clone(),
                    signature_scheme: changes.signature_scheme,
                    at: self.now(),
                })
            })
            .await?;
        drop(guard);
        let view = self.render_current(ctx.tenant_id, id).await?;
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// Replaces the secret (with `secret`, or a generated one); the old one
    /// keeps signing for the configured overlap. The answer carries the new
    /// secret in full, once.
    ///
    /// # Errors
    /// 404, 409 when deleted.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn rotate_secret(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        secret: Option<SigningSecret>,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let secret = secret.unwrap_or_else(|| self.new_secret());
        let sealed = self.seal_secret(id, &secret)?;
        let consistent = self
            .run(ctx, id, || {
                let at = self.now();
                SubscriptionCommand::RotateSecret(RotateSecret {
                    tenant_id: ctx.tenant_id,
                    secret: sealed.clone(),
                    secret_hint: secret.hint(),
                    previous_secret_expires_at: at + self.settings.rotation_overlap,
                    at,
                })
            })
            .await?;
        let mut view = self.render_current(ctx.tenant_id, id).await?;
        view.secret = secret.expose().to_string();
        tracing::info!("secret rotated");
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// Stops deliveries to the subscription until it is enabled again.
    ///
    /// # Errors
    /// 404, 409 when deleted.
    pub async fn disable(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        reason: String,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let consistent = self
            .run(ctx, id, || {
                SubscriptionCommand::Disable(DisableSubscription {
                    tenant_id: ctx.tenant_id,
                    reason: reason.clone(),
                    at: self.now(),
                })
            })
            .await?;
        let view = self.render_current(ctx.tenant_id, id).await?;
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// # Errors
    /// 404, 409 when deleted.
    pub async fn enable(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let consistent = self
            .run(ctx, id, || {
                SubscriptionCommand::Enable(EnableSubscription {
                    tenant_id: ctx.tenant_id,
                    at: self.now(),
                })
            })
            .await?;
        let view = self.render_current(ctx.tenant_id, id).await?;
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// Soft delete: the subscription stops receiving deliveries and stays
    /// readable (`include_inactive`) and in the log.
    ///
    /// # Errors
    /// 404, 409 when already deleted.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn delete(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
    ) -> Result<Written<()>, AppError> {
        let consistent = self
            .run(ctx, id, || {
                SubscriptionCommand::Unsubscribe(Unsubscribe {
                    tenant_id: ctx.tenant_id,
                    at: self.now(),
                })
            })
            .await?;
        tracing::info!("subscription deleted");
        Ok(Written {
            value: (),
            consistent,
        })
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
                        any_of_patterns: None,
                        include_inactive: false,
                        before,
                        limit: crate::pagination::MAX_LIMIT,
                    },
                )
                .await?;
            let Some(last) = rows.last() else { break };
            before = Some((last.state.created_at, *last.state.id.as_uuid()));
            ids.extend(rows.iter().map(|r| r.state.id));
        }
        ids.dedup();
        Ok(ids)
    }

    /// The subscription's events in order, secrets masked.
    ///
    /// # Errors
    /// 404 when the tenant has no such subscription.
    pub async fn history(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<Vec<HistoryEntry>, AppError> {
        let events = self
            .shared
            .log
            .aggregate_history(Subscription::TYPE, &id.to_string())
            .await?;
        let owner = events.first().and_then(|e| e.meta()).map(|m| m.tenant_id);
        if owner != Some(tenant) {
            return Err(AppError::not_found("subscription", id));
        }
        Ok(events.into_iter().map(HistoryEntry::from_stored).collect())
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
