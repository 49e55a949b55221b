//! The subscription use cases.

use super::commands::{CreateSubscription, HeadersChange, StatusChange, SubscriptionChanges};
use super::map_error;
use super::view::{
    open_headers, sealing_context, SubscriptionView, SEALING_CONTEXT_HEADERS,
    SEALING_CONTEXT_SECRET,
};
use crate::commands::{append_decided, execute_with_retry, Written};
use crate::context::CommandContext;
use crate::error::AppError;
use crate::metadata::EventMetadata;
use crate::ports::{AggregateStore, Batch, FlowControl, SubscriptionReadModel};
use crate::shared::Shared;
use crate::uids::UidClaims;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use hookline_domain::sealed::GENERATED_SECRET_BYTES;
use hookline_domain::subscription::{
    CustomHeaders, DisableSubscription, EnableSubscription, RevealSecret, RotateSecret, Subscribe,
    Subscription, SubscriptionCommand, SubscriptionState, SubscriptionStatus, Unsubscribe,
    UpdateSubscription,
};
use hookline_domain::uid::Uid;
use hookline_domain::uid_claim::UidScope;
use hookline_domain::{
    AllowList, EventFilter, Sealed, SigningSecret, SubscriptionId, TargetUrl, TenantId,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    /// Private address ranges targets may use (URLs are checked against
    /// it when the API parses them).
    pub allow_list: AllowList,
    /// How long a rotated-out secret keeps signing deliveries.
    pub rotation_overlap: chrono::Duration,
    /// Most subscriptions (not deleted) one tenant may have.
    pub max_per_tenant: u64,
}

/// Longest overlap a rotation may give the replaced secret.
pub const MAX_ROTATION_OVERLAP: chrono::Duration = chrono::Duration::days(7);

pub struct SubscriptionService {
    pub(super) shared: Shared,
    pub(super) store: Arc<dyn AggregateStore<Subscription>>,
    pub(super) read: Arc<dyn SubscriptionReadModel>,
    pub(super) settings: SubscriptionSettings,
    pub(super) uids: UidClaims,
    /// The due queue's backlog per subscription, for reads.
    pub(super) flow: Option<Arc<dyn FlowControl>>,
    /// Serialises "check for a duplicate or the limit, then write".
    serial: crate::serial::SerialWrites,
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
        uids: UidClaims,
        settings: SubscriptionSettings,
    ) -> Self {
        Self {
            shared,
            store,
            read,
            settings,
            uids,
            flow: None,
            serial: crate::serial::SerialWrites::default(),
        }
    }

    /// "Check, then write" is serialised across processes with `locks`
    /// too (per tenant): two processes each found no duplicate and both
    /// created one.
    pub fn with_locks(mut self, locks: Arc<dyn crate::ports::WriteLocks>) -> Self {
        self.serial.set_locks(locks);
        self
    }

    /// Holds the tenant's subscription writes, for a check that must still
    /// hold when its write lands.
    async fn hold_writes(
        &self,
        tenant: TenantId,
    ) -> Result<crate::serial::SerialGuard<'_>, AppError> {
        self.serial.hold(&format!("subscriptions:{tenant}")).await
    }

    /// Reads show each subscription's backlog from `flow`.
    #[must_use]
    pub fn with_flow(mut self, flow: Arc<dyn FlowControl>) -> Self {
        self.flow = Some(flow);
        self
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

    pub(super) fn now(&self) -> DateTime<Utc> {
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

    pub(super) async fn load_state(
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

    /// The subscription as its events leave it (exact, whatever the read
    /// model's lag), header values masked; deleted ones too.
    ///
    /// # Errors
    /// 404 for a subscription the tenant does not have.
    pub async fn current(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<SubscriptionView, AppError> {
        self.render_current(tenant, id).await
    }

    /// The subscription's custom headers in full, as its events leave them
    /// (for the Svix-compatible API's headers, which shows the values of
    /// those it does not count as sensitive).
    ///
    /// # Errors
    /// 404 for a subscription the tenant does not have.
    pub async fn headers(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<BTreeMap<String, String>, AppError> {
        let state = self.load_state(tenant, id).await?;
        open_headers(&state, self.shared.cipher.as_ref())
    }

    /// Changes the custom headers alone: replaced, or merged with the
    /// stored ones under the tenant's subscription lock (so concurrent
    /// merges each see the one before). A change that leaves them as they
    /// are records nothing. True when the read models caught up.
    ///
    /// # Errors
    /// 400 for headers Hookline's rules refuse, 404, 409 for a deleted
    /// subscription.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn change_headers(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        change: HeadersChange,
    ) -> Result<bool, AppError> {
        let guard = self.hold_writes(ctx.tenant_id).await?;
        let state = self.load_state(ctx.tenant_id, id).await?;
        let current =
            CustomHeaders::from_trusted(open_headers(&state, self.shared.cipher.as_ref())?);
        let wanted = match change {
            HeadersChange::Replace(headers) => headers,
            HeadersChange::Patch { delete, set } => current.patched(&delete, &set)?,
        };
        if wanted == current {
            return Ok(true);
        }
        let headers = self.seal_headers(id, &wanted)?;
        let at = self.now();
        let consistent = self
            .write(
                ctx,
                id,
                || {
                    vec![SubscriptionCommand::Update(UpdateSubscription {
                        headers: Some(headers.clone()),
                        ..UpdateSubscription::nothing(ctx.tenant_id, at)
                    })]
                },
                None,
            )
            .await?;
        drop(guard);
        Ok(consistent)
    }

    /// The answer to a request that set the headers: them in full.
    async fn render_revealed(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<SubscriptionView, AppError> {
        let state = self.load_state(tenant, id).await?;
        let mut view =
            SubscriptionView::render_revealed(&state, self.shared.cipher.as_ref(), self.now())?;
        self.fill_backlog(std::slice::from_mut(&mut view)).await?;
        Ok(view)
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

    /// Whether subscription `holder` (of `tenant`) still has `uid`: it
    /// exists, is not deleted and was not given another uid since.
    async fn holds_uid(&self, tenant: TenantId, holder: &str, uid: &Uid) -> Result<bool, AppError> {
        let Ok(id) = SubscriptionId::parse(holder) else {
            return Ok(false);
        };
        match self.load_state(tenant, id).await {
            Ok(state) => {
                Ok(state.status != SubscriptionStatus::Deleted && state.uid.as_ref() == Some(uid))
            }
            Err(AppError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The tenant's subscription (not deleted) whose uid is `uid`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn find_by_uid(
        &self,
        tenant: TenantId,
        uid: &Uid,
    ) -> Result<Option<SubscriptionId>, AppError> {
        let Some(claimant) = self
            .uids
            .claimant(UidScope::Subscriptions(tenant), uid)
            .await?
        else {
            return Ok(None);
        };
        if !self.holds_uid(tenant, &claimant, uid).await? {
            return Ok(None);
        }
        Ok(SubscriptionId::parse(&claimant).ok())
    }

    /// Appends what `commands` decide on subscription `id`, with the claim
    /// of `uid` when it gets one, and waits (bounded) for the read models.
    async fn write(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        commands: impl Fn() -> Vec<SubscriptionCommand>,
        uid: Option<&Uid>,
    ) -> Result<bool, AppError> {
        let key = id.to_string();
        let at = self.now();
        let metadata: EventMetadata = ctx.metadata(at);
        let position = append_decided(
            self.store.as_ref(),
            &key,
            commands,
            |e| map_error(&key, AggregateError::UserError(e)),
            || async {
                let mut batch = Batch::default();
                if let Some(uid) = uid {
                    let claim =
                        self.uids
                            .claim(
                                UidScope::Subscriptions(ctx.tenant_id),
                                uid,
                                &key,
                                |holder| async move {
                                    self.holds_uid(ctx.tenant_id, &holder, uid).await
                                },
                                at,
                                &metadata,
                            )
                            .await?;
                    if let Some(claim) = claim {
                        batch.add(claim)?;
                    }
                }
                Ok(batch)
            },
            &metadata,
        )
        .await?;
        Ok(self.shared.settle(Subscription::TYPE, position).await)
    }

    /// Creates a subscription. The answer carries the full secret, the only
    /// time it is ever shown.
    ///
    /// # Errors
    /// 409 for an active duplicate (unless allowed), a uid another
    /// subscription of the tenant has, or too many subscriptions.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn create(
        &self,
        ctx: &CommandContext,
        input: CreateSubscription,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let id = SubscriptionId::from_uuid(self.shared.entropy.new_id());
        self.create_with_id(ctx, id, input).await
    }

    /// A secret of 32 random bytes in standard base64, as InFlow's
    /// subscription API hands out (used by its compatible API).
    pub fn new_base64_secret(&self) -> SigningSecret {
        use base64::Engine as _;
        SigningSecret::from_unsealed(
            base64::engine::general_purpose::STANDARD.encode(self.shared.random_bytes::<32>()),
        )
    }

    /// Creates a subscription with an id the client chose (InFlow's
    /// `webHookSubscriptionId`). The answer carries the full secret.
    ///
    /// # Errors
    /// 409 for an active duplicate, or when the id is taken (by any
    /// tenant: `subscription_exists`).
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn create_with_id(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        input: CreateSubscription,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let secret = input.secret.unwrap_or_else(|| self.new_secret());
        let (header_names, headers) = self.seal_headers(id, &input.headers)?;
        let at = self.now();
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
            rate_limit: input.rate_limit,
            payload_format: input.payload_format,
            channels: input.channels,
            uid: input.uid.clone(),
            metadata: input.metadata,
            at,
        };
        let guard = self.hold_writes(ctx.tenant_id).await?;
        let held = self.read.count(ctx.tenant_id).await?;
        if held >= self.settings.max_per_tenant {
            return Err(AppError::conflict(
                "subscription_limit_reached",
                format!(
                    "this tenant already has {held} subscriptions, the most HOOKLINE_MAX_SUBSCRIPTIONS_PER_TENANT allows; delete one first"
                ),
            ));
        }
        // The id first: a request that lost the race to create this very
        // subscription is told the id is taken (and may look it up), not
        // that it duplicates itself.
        if self.read.get(ctx.tenant_id, id).await?.is_some() {
            return Err(AppError::conflict(
                "subscription_exists",
                format!("a subscription with the id '{id}' exists"),
            ));
        }
        if !input.allow_duplicates {
            self.reject_duplicate(ctx.tenant_id, &command.url, &command.events, None)
                .await?;
        }
        let consistent = self
            .write(
                ctx,
                id,
                || {
                    let mut commands = vec![SubscriptionCommand::Subscribe(command.clone())];
                    if let Some(reason) = &input.disabled {
                        commands.push(SubscriptionCommand::Disable(DisableSubscription {
                            tenant_id: ctx.tenant_id,
                            reason: reason.clone(),
                            at,
                        }));
                    }
                    commands
                },
                input.uid.as_ref(),
            )
            .await?;
        drop(guard);
        let mut view = self.render_revealed(ctx.tenant_id, id).await?;
        view.secret = secret.expose().to_string();
        tracing::info!(subscription_id = %id, "subscription created");
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// # Errors
    /// 400 for no change, 404, 409 for a deleted subscription, when the
    /// change would duplicate another active subscription (unless allowed)
    /// or give it a uid another subscription has.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn update(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        changes: SubscriptionChanges,
    ) -> Result<Written<SubscriptionView>, AppError> {
        if changes.is_empty() {
            return Err(AppError::BadRequest(
                "the body must set at least one of url, events, headers, description, signature_scheme, rate_limit".into(),
            ));
        }
        let headers = changes
            .headers
            .as_ref()
            .map(|h| self.seal_headers(id, h))
            .transpose()?;
        let guard = self.hold_writes(ctx.tenant_id).await?;
        if (changes.url.is_some() || changes.events.is_some()) && !changes.allow_duplicates {
            let current = self.load_state(ctx.tenant_id, id).await?;
            let url = changes.url.clone().unwrap_or(current.url);
            let events = changes.events.clone().unwrap_or(current.events);
            self.reject_duplicate(ctx.tenant_id, &url, &events, Some(id))
                .await?;
        }
        let at = self.now();
        let new_uid = changes.uid.clone().flatten();
        let consistent = self
            .write(
                ctx,
                id,
                || {
                    let mut commands = vec![SubscriptionCommand::Update(UpdateSubscription {
                        url: changes.url.clone(),
                        events: changes.events.clone(),
                        headers: headers.clone(),
                        description: changes.description.clone(),
                        signature_scheme: changes.signature_scheme,
                        rate_limit: changes.rate_limit,
                        channels: changes.channels.clone(),
                        uid: changes.uid.clone(),
                        metadata: changes.metadata.clone(),
                        unchanged_since: changes.unchanged_since,
                        ..UpdateSubscription::nothing(ctx.tenant_id, at)
                    })];
                    match &changes.status {
                        Some(StatusChange::Disable(reason)) => {
                            commands.push(SubscriptionCommand::Disable(DisableSubscription {
                                tenant_id: ctx.tenant_id,
                                reason: reason.clone(),
                                at,
                            }));
                        }
                        Some(StatusChange::Enable) => {
                            commands.push(SubscriptionCommand::Enable(EnableSubscription {
                                tenant_id: ctx.tenant_id,
                                at,
                            }));
                        }
                        None => {}
                    }
                    commands
                },
                new_uid.as_ref(),
            )
            .await?;
        drop(guard);
        let view = self.render_revealed(ctx.tenant_id, id).await?;
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// The subscription's current secret in full. Each reveal is recorded
    /// (`SecretRevealed`, with who asked in its metadata) before the
    /// secret is handed out.
    ///
    /// # Errors
    /// 404, 409 when deleted.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn reveal_secret(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
    ) -> Result<SigningSecret, AppError> {
        let key = id.to_string();
        execute_with_retry(
            self.store.as_ref(),
            &key,
            || {
                SubscriptionCommand::RevealSecret(RevealSecret {
                    tenant_id: ctx.tenant_id,
                    at: self.now(),
                })
            },
            &ctx.metadata(self.now()),
        )
        .await
        .map_err(|e| map_error(&key, e))?;
        let state = self.load_state(ctx.tenant_id, id).await?;
        tracing::info!("secret revealed");
        crate::worker::unseal_secret(&state.secret, id, self.shared.cipher.as_ref())
    }

    /// Replaces the secret (with `secret`, or a generated one); the old one
    /// keeps signing for `overlap` (the configured overlap when `None`).
    /// The answer carries the new secret in full, once.
    ///
    /// # Errors
    /// 400 for an overlap outside 0–7 days; 404, 409 when deleted.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn rotate_secret(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        secret: Option<SigningSecret>,
        overlap: Option<chrono::Duration>,
    ) -> Result<Written<SubscriptionView>, AppError> {
        let overlap = overlap.unwrap_or(self.settings.rotation_overlap);
        if overlap < chrono::Duration::zero() || overlap > MAX_ROTATION_OVERLAP {
            return Err(hookline_domain::ValidationError::new(
                "overlap",
                format!(
                    "must be between 0 and {} seconds",
                    MAX_ROTATION_OVERLAP.num_seconds()
                ),
            )
            .into());
        }
        let secret = secret.unwrap_or_else(|| self.new_secret());
        let sealed = self.seal_secret(id, &secret)?;
        let consistent = self
            .run(ctx, id, || {
                let at = self.now();
                SubscriptionCommand::RotateSecret(RotateSecret {
                    tenant_id: ctx.tenant_id,
                    secret: sealed.clone(),
                    secret_hint: secret.hint(),
                    previous_secret_expires_at: at + overlap,
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
}
