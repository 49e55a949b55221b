//! The subscription use cases.

use super::input::{
    CreateSubscriptionInput, DisableInput, GetSubscriptionParams, ListSubscriptionsParams,
    RotateSecretInput, UpdateSubscriptionInput,
};
use super::map_error;
use super::view::{
    sealing_context, SubscriptionView, SEALING_CONTEXT_HEADERS, SEALING_CONTEXT_SECRET,
};
use crate::commands::{execute_with_retry, Written};
use crate::context::CommandContext;
use crate::error::{AppError, Validator};
use crate::history::HistoryEntry;
use crate::pagination::{decode_cursor, paginate, parse_limit, parse_time, Page};
use crate::ports::{
    Clock, CommandStore, EventLog, LogPosition, ProjectionWaiter, SecretCipher,
    SubscriptionListQuery, SubscriptionReadModel,
};
use hookline_domain::sealed::GENERATED_SECRET_BYTES;
use hookline_domain::subscription::{
    CustomHeaders, Description, DisableSubscription, EnableSubscription, RotateSecret, Subscribe,
    Subscription, SubscriptionCommand, SubscriptionEvent, SubscriptionState, SubscriptionStatus,
    Unsubscribe, UpdateSubscription,
};
use hookline_domain::{
    AllowList, EventFilter, EventPattern, Sealed, SignatureScheme, SigningSecret, SubscriptionId,
    TargetUrl, TenantId, ValidationError,
};
use rand::RngCore;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    pub allow_list: AllowList,
    /// How long a rotated-out secret keeps signing deliveries.
    pub rotation_overlap: chrono::Duration,
    /// How long a write waits for the read models before answering.
    pub consistency_timeout: Duration,
}

pub struct SubscriptionService {
    store: Arc<dyn CommandStore<Subscription>>,
    read: Arc<dyn SubscriptionReadModel>,
    log: Arc<dyn EventLog>,
    cipher: Arc<dyn SecretCipher>,
    clock: Arc<dyn Clock>,
    waiter: Arc<dyn ProjectionWaiter>,
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

fn missing(field: &str) -> ValidationError {
    ValidationError::new(field, "is required")
}

impl SubscriptionService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn CommandStore<Subscription>>,
        read: Arc<dyn SubscriptionReadModel>,
        log: Arc<dyn EventLog>,
        cipher: Arc<dyn SecretCipher>,
        clock: Arc<dyn Clock>,
        waiter: Arc<dyn ProjectionWaiter>,
        settings: SubscriptionSettings,
    ) -> Self {
        Self {
            store,
            read,
            log,
            cipher,
            clock,
            waiter,
            settings,
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn seal_secret(&self, id: SubscriptionId, secret: &SigningSecret) -> Result<Sealed, AppError> {
        self.cipher.seal(
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
            .cipher
            .seal(&bytes, &sealing_context(SEALING_CONTEXT_HEADERS, id))?;
        Ok((headers.names(), Some(sealed)))
    }

    fn new_secret() -> SigningSecret {
        let mut bytes = [0u8; GENERATED_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SigningSecret::from_random_bytes(&bytes)
    }

    async fn run(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        make: impl FnMut() -> SubscriptionCommand + Send,
    ) -> Result<bool, AppError> {
        let key = id.to_string();
        let position = execute_with_retry(
            self.store.as_ref(),
            &key,
            make,
            ctx.metadata(self.clock.now()),
        )
        .await
        .map_err(|e| map_error(&key, e))?;
        Ok(self.settle(position).await)
    }

    /// Waits (bounded) for the read models to include `position`.
    async fn settle(&self, position: Option<LogPosition>) -> bool {
        match position {
            Some(p) => {
                self.waiter
                    .wait_for(
                        <Subscription as cqrs_es::Aggregate>::TYPE,
                        p,
                        self.settings.consistency_timeout,
                    )
                    .await
            }
            None => true,
        }
    }

    async fn load_state(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<SubscriptionState, AppError> {
        let aggregate = self.store.load(&id.to_string()).await?;
        aggregate
            .state()
            .filter(|s| s.tenant_id == tenant)
            .cloned()
            .ok_or_else(|| AppError::not_found("subscription", id))
    }

    async fn render_current(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<SubscriptionView, AppError> {
        let state = self.load_state(tenant, id).await?;
        SubscriptionView::render(&state, self.cipher.as_ref(), self.clock.now())
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

    /// Creates a subscription. The response carries the full secret, the
    /// only time it is ever shown.
    ///
    /// # Errors
    /// Validation errors naming each bad field; 409 for an active duplicate.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn create(
        &self,
        ctx: &CommandContext,
        input: CreateSubscriptionInput,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let mut v = Validator::default();
        let url = match &input.url {
            Some(u) => v.check(TargetUrl::parse(u, &self.settings.allow_list)),
            None => {
                v.fail(missing("url"));
                None
            }
        };
        let events = match (&input.events, &input.event) {
            (Some(list), None) => v.check(EventFilter::parse(list)),
            (None, Some(one)) => v.check(EventFilter::parse(std::slice::from_ref(one))),
            (Some(_), Some(_)) => {
                v.fail(ValidationError::new(
                    "events",
                    "give either 'events' (a list) or 'event', not both",
                ));
                None
            }
            (None, None) => {
                v.fail(missing("events"));
                None
            }
        };
        let secret = match &input.secret {
            Some(s) => v.check(SigningSecret::parse(s)),
            None => Some(Self::new_secret()),
        };
        let headers = match input.headers {
            Some(map) => v.check(CustomHeaders::parse(map)),
            None => Some(CustomHeaders::default()),
        };
        let description = match input.description.as_deref() {
            Some("") | None => Some(None),
            Some(d) => v.check(Description::parse(d)).map(Some),
        };
        let scheme = match input.signature_scheme.as_deref() {
            Some(s) => v.check(SignatureScheme::parse(s)),
            None => Some(SignatureScheme::default()),
        };
        v.finish()?;
        let (Some(url), Some(events), Some(secret), Some(headers), Some(description), Some(scheme)) =
            (url, events, secret, headers, description, scheme)
        else {
            return Err(AppError::Internal(
                "validation passed without values".into(),
            ));
        };

        let id = SubscriptionId::from_uuid(Uuid::now_v7());
        let sealed_secret = self.seal_secret(id, &secret)?;
        let (header_names, sealed_headers) = self.seal_headers(id, &headers)?;
        let at = self.clock.now();
        let command = Subscribe {
            subscription_id: id,
            tenant_id: ctx.tenant_id,
            url: url.clone(),
            events: events.clone(),
            header_names,
            headers: sealed_headers,
            description,
            signature_scheme: scheme,
            secret: sealed_secret,
            secret_hint: secret.hint(),
            at,
        };

        let _guard = self.write_lock.lock().await;
        self.reject_duplicate(ctx.tenant_id, &url, &events, None)
            .await?;
        let consistent = self
            .run(ctx, id, || SubscriptionCommand::Subscribe(command.clone()))
            .await?;
        drop(_guard);
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
        params: &GetSubscriptionParams,
    ) -> Result<SubscriptionView, AppError> {
        let view = match parse_time("as_of", params.as_of.as_deref())? {
            Some(at) => self.get_as_of(tenant, id, at).await?,
            None => {
                let record = self
                    .read
                    .get(tenant, id)
                    .await?
                    .ok_or_else(|| AppError::not_found("subscription", id))?;
                SubscriptionView::render(&record.state, self.cipher.as_ref(), self.clock.now())?
            }
        };
        // Deleted ones (now, or at `as_of`) only when asked for.
        if view.status == SubscriptionStatus::Deleted && params.include_inactive != Some(true) {
            return Err(AppError::not_found("subscription", id));
        }
        Ok(view)
    }

    /// The subscription as the events recorded up to `at` describe it.
    async fn get_as_of(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<SubscriptionView, AppError> {
        let events = self
            .log
            .aggregate_history(<Subscription as cqrs_es::Aggregate>::TYPE, &id.to_string())
            .await?;
        let mut aggregate = Subscription::default();
        for stored in events.into_iter().filter(|e| e.recorded_at <= at) {
            let event: SubscriptionEvent = stored
                .payload
                .parse()
                .map_err(|e| AppError::Internal(format!("subscription event unreadable: {e}")))?;
            aggregate.apply_event(event);
        }
        let state = aggregate
            .state()
            .filter(|s| s.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("subscription", id))?;
        SubscriptionView::render(state, self.cipher.as_ref(), at)
    }

    /// Newest first, keyset-paginated.
    ///
    /// # Errors
    /// Validation errors for a bad `event`, `limit` or `cursor`.
    pub async fn list(
        &self,
        tenant: TenantId,
        params: ListSubscriptionsParams,
    ) -> Result<Page<SubscriptionView>, AppError> {
        let limit = parse_limit(params.limit)?;
        let before = params.cursor.as_deref().map(decode_cursor).transpose()?;
        let any_of_patterns = params
            .event
            .as_deref()
            .map(|e| EventPattern::parse(e, "event").map(|p| patterns_covering(&p)))
            .transpose()?;
        let query = SubscriptionListQuery {
            any_of_patterns,
            include_inactive: params.include_inactive == Some(true),
            before,
            limit,
        };
        let rows = self.read.list(tenant, &query).await?;
        let now = self.clock.now();
        paginate(
            rows,
            limit,
            |r| (r.state.created_at, *r.state.id.as_uuid()),
            |r| SubscriptionView::render(&r.state, self.cipher.as_ref(), now),
        )
    }

    /// # Errors
    /// Validation errors, 404, 409 for a deleted subscription or when the
    /// change would duplicate another active subscription.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn update(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        input: UpdateSubscriptionInput,
    ) -> Result<Written<SubscriptionView>, AppError> {
        if input.secret.is_some() {
            return Err(ValidationError::new(
                "secret",
                format!(
                    "cannot be changed with PATCH; use POST /v1/subscriptions/{id}/rotate-secret"
                ),
            )
            .into());
        }
        if input.url.is_none()
            && input.events.is_none()
            && input.headers.is_none()
            && input.description.is_none()
            && input.signature_scheme.is_none()
        {
            return Err(AppError::BadRequest(
                "the body must set at least one of url, events, headers, description, signature_scheme".into(),
            ));
        }
        let mut v = Validator::default();
        let url = input
            .url
            .as_deref()
            .and_then(|u| v.check(TargetUrl::parse(u, &self.settings.allow_list)));
        let events = input
            .events
            .as_ref()
            .and_then(|e| v.check(EventFilter::parse(e)));
        let headers = match input.headers {
            None => None,
            Some(None) => Some(CustomHeaders::default()),
            Some(Some(map)) => v.check(CustomHeaders::parse(map)),
        };
        let description = match input.description {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) if d.is_empty() => Some(None),
            Some(Some(d)) => v.check(Description::parse(&d)).map(Some),
        };
        let scheme = input
            .signature_scheme
            .as_deref()
            .and_then(|s| v.check(SignatureScheme::parse(s)));
        v.finish()?;
        let headers = headers.map(|h| self.seal_headers(id, &h)).transpose()?;

        let _guard = self.write_lock.lock().await;
        if url.is_some() || events.is_some() {
            let current = self.load_state(ctx.tenant_id, id).await?;
            let new_url = url.clone().unwrap_or(current.url);
            let new_events = events.clone().unwrap_or(current.events);
            self.reject_duplicate(ctx.tenant_id, &new_url, &new_events, Some(id))
                .await?;
        }
        let command = UpdateSubscription {
            tenant_id: ctx.tenant_id,
            url,
            events,
            headers,
            description,
            signature_scheme: scheme,
            at: self.clock.now(),
        };
        let consistent = self
            .run(ctx, id, || {
                let mut c = command.clone();
                c.at = self.clock.now();
                SubscriptionCommand::Update(c)
            })
            .await?;
        drop(_guard);
        let view = self.render_current(ctx.tenant_id, id).await?;
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// Replaces the secret; the old one keeps signing for the configured
    /// overlap. The response carries the new secret in full, once.
    ///
    /// # Errors
    /// Validation errors for a supplied secret, 404, 409 when deleted.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn rotate_secret(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        input: RotateSecretInput,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let secret = match input.secret.as_deref() {
            Some(s) => SigningSecret::parse(s)?,
            None => Self::new_secret(),
        };
        let sealed = self.seal_secret(id, &secret)?;
        let consistent = self
            .run(ctx, id, || {
                let at = self.clock.now();
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

    /// # Errors
    /// 404, 409 when deleted.
    pub async fn disable(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        input: DisableInput,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let reason = input
            .reason
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "disabled through the API".to_string());
        hookline_domain::validation::check_free_text("reason", &reason, 500)?;
        let consistent = self
            .run(ctx, id, || {
                SubscriptionCommand::Disable(DisableSubscription {
                    tenant_id: ctx.tenant_id,
                    reason: reason.clone(),
                    at: self.clock.now(),
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
                    at: self.clock.now(),
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
                    at: self.clock.now(),
                })
            })
            .await?;
        tracing::info!("subscription deleted");
        Ok(Written {
            value: (),
            consistent,
        })
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
            .log
            .aggregate_history(<Subscription as cqrs_es::Aggregate>::TYPE, &id.to_string())
            .await?;
        let owner = events
            .first()
            .and_then(|e| e.payload.str_field("tenant_id"));
        if owner != Some(tenant.to_string()) {
            return Err(AppError::not_found("subscription", id));
        }
        Ok(events.into_iter().map(HistoryEntry::from_stored).collect())
    }

    /// The headers a subscription sends, unsealed (for deliveries).
    ///
    /// # Errors
    /// When the headers cannot be unsealed.
    pub fn headers_of(
        &self,
        state: &SubscriptionState,
    ) -> Result<BTreeMap<String, String>, AppError> {
        super::view::open_headers(state, self.cipher.as_ref())
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
