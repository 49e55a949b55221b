//! The tenant use cases, for operators (`/admin`, the CLI) and for a
//! tenant rotating its own key.

use super::auth::{hash_key, Principal, API_KEY_PREFIX};
use super::map_error;
use crate::commands::{append_decided, execute_with_retry, Written};
use crate::context::{Actor, CommandContext, RequestId};
use crate::error::AppError;
use crate::pagination::{paginate, Page, PageRequest};
use crate::ports::{AggregateStore, Batch, TenantListQuery, TenantReadModel};
use crate::shared::Shared;
use crate::subscriptions::SubscriptionService;
use crate::uids::UidClaims;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use hookline_domain::metadata::Metadata;
use hookline_domain::tenant::{
    ChangeDetails, ChangeSettings, CreateTenant, DeleteTenant, IssueApiKey, RenameTenant,
    RevokeApiKey, RotateApiKey, SettingsChanges, Tenant, TenantCommand, TenantName, TenantSettings,
    TenantState, TenantStatus,
};
use hookline_domain::uid::Uid;
use hookline_domain::uid_claim::UidScope;
use hookline_domain::TenantId;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// Longest overlap a rotated key may keep working.
pub const MAX_KEY_OVERLAP: chrono::Duration = chrono::Duration::days(7);

/// A tenant as responses show it (keys are listed separately).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantView {
    pub id: TenantId,
    pub name: String,
    pub status: TenantStatus,
    /// Keys that work now.
    pub active_keys: usize,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The client's own name for the tenant, unique among live tenants.
    pub uid: Option<Uid>,
    pub metadata: Metadata,
}

/// A tenant to create without an API key (the Svix-compatible API's
/// applications), with its uid and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantDetails {
    pub name: TenantName,
    pub uid: Option<Uid>,
    pub metadata: Metadata,
}

/// What to change about a tenant; `None` leaves a field as it is,
/// `uid: Some(None)` removes the uid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantChanges {
    pub name: Option<TenantName>,
    pub uid: Option<Option<Uid>>,
    pub metadata: Option<Metadata>,
}

/// Which way a list runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A key as lists show it: never the key, only a hint.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    /// When it stops (or stopped) working, once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it works now.
    pub active: bool,
}

/// A key just issued: the only time it is visible.
#[derive(Clone, PartialEq)]
pub struct IssuedKey {
    pub id: Uuid,
    pub api_key: String,
    pub hint: String,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey")
            .field("id", &self.id)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

/// What creating a tenant returns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    pub tenant: TenantView,
    pub key: IssuedKey,
}

pub struct TenantService {
    shared: Shared,
    store: Arc<dyn AggregateStore<Tenant>>,
    read: Arc<dyn TenantReadModel>,
    subscriptions: Arc<SubscriptionService>,
    uids: UidClaims,
}

impl fmt::Debug for TenantService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantService").finish_non_exhaustive()
    }
}

fn view(state: &TenantState, now: DateTime<Utc>) -> TenantView {
    TenantView {
        id: state.id,
        name: state.name.to_string(),
        status: state.status,
        active_keys: if state.status == TenantStatus::Active {
            state.keys.iter().filter(|k| k.works_at(now)).count()
        } else {
            0
        },
        created_at: state.created_at,
        updated_at: state.updated_at,
        uid: state.uid.clone(),
        metadata: state.metadata.clone(),
    }
}

impl TenantService {
    pub fn new(
        shared: Shared,
        store: Arc<dyn AggregateStore<Tenant>>,
        read: Arc<dyn TenantReadModel>,
        subscriptions: Arc<SubscriptionService>,
        uids: UidClaims,
    ) -> Self {
        Self {
            shared,
            store,
            read,
            subscriptions,
            uids,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    async fn run(
        &self,
        ctx: &CommandContext,
        id: TenantId,
        make: impl FnMut() -> TenantCommand + Send,
    ) -> Result<bool, AppError> {
        let key = id.to_string();
        let position = execute_with_retry(
            self.store.as_ref(),
            &key,
            make,
            &ctx.for_tenant(id).metadata(self.now()),
        )
        .await
        .map_err(|e| map_error(&key, e))?;
        Ok(self.shared.settle(Tenant::TYPE, position).await)
    }

    /// The tenant as its events leave it (exact, whatever the read
    /// model's lag).
    async fn state(&self, id: TenantId) -> Result<TenantState, AppError> {
        let key = id.to_string();
        self.store
            .load(std::slice::from_ref(&key))
            .await?
            .remove(&key)
            .and_then(|l| l.aggregate.state().cloned())
            .ok_or_else(|| AppError::not_found("tenant", id))
    }

    fn new_key(&self) -> (IssueApiKey, IssuedKey) {
        let secret = self.shared.random_bytes::<32>();
        let api_key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let hint = format!(
            "{API_KEY_PREFIX}…{}",
            &api_key[api_key.len().saturating_sub(4)..]
        );
        let id = self.shared.entropy.new_id();
        let at = self.now();
        (
            IssueApiKey {
                key_id: id,
                key_hash: hash_key(&api_key),
                hint: hint.clone(),
                at,
            },
            IssuedKey {
                id,
                api_key,
                hint,
                created_at: at,
            },
        )
    }

    /// Creates a tenant and its first API key (shown once).
    ///
    /// # Errors
    /// Storage errors.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
    pub async fn create(
        &self,
        ctx: &CommandContext,
        name: TenantName,
    ) -> Result<Written<NewTenant>, AppError> {
        let id = TenantId::from_uuid(self.shared.entropy.new_id());
        let (first_key, key) = self.new_key();
        let at = self.now();
        let consistent = self
            .run(ctx, id, || {
                TenantCommand::Create(CreateTenant {
                    tenant_id: id,
                    name: name.clone(),
                    first_key: Some(first_key.clone()),
                    uid: None,
                    metadata: Metadata::default(),
                    at,
                })
            })
            .await?;
        let state = self.state(id).await?;
        tracing::info!(tenant_id = %id, "tenant created");
        Ok(Written {
            value: NewTenant {
                tenant: view(&state, self.now()),
                key,
            },
            consistent,
        })
    }

    /// Whether tenant `holder` still has `uid` (it is live and was not
    /// given another uid since).
    async fn holds_uid(&self, holder: &str, uid: &Uid) -> Result<bool, AppError> {
        let Ok(id) = TenantId::parse(holder) else {
            return Ok(false);
        };
        match self.state(id).await {
            Ok(s) => Ok(s.status == TenantStatus::Active && s.uid.as_ref() == Some(uid)),
            Err(AppError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The live tenant whose uid is `uid`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn find_by_uid(&self, uid: &Uid) -> Result<Option<TenantId>, AppError> {
        let Some(claimant) = self.uids.claimant(UidScope::Tenants, uid).await? else {
            return Ok(None);
        };
        if !self.holds_uid(&claimant, uid).await? {
            return Ok(None);
        }
        Ok(TenantId::parse(&claimant).ok())
    }

    /// Appends what `commands` decide on tenant `id`, with the claim of
    /// `uid` when it gets one, and waits (bounded) for the read models.
    async fn write(
        &self,
        ctx: &CommandContext,
        id: TenantId,
        commands: impl Fn() -> Vec<TenantCommand>,
        uid: Option<&Uid>,
    ) -> Result<bool, AppError> {
        let key = id.to_string();
        let at = self.now();
        let metadata = ctx.for_tenant(id).metadata(at);
        let position = append_decided(
            self.store.as_ref(),
            &key,
            commands,
            |e| map_error(&key, AggregateError::UserError(e)),
            || async {
                let mut batch = Batch::default();
                if let Some(uid) = uid {
                    let claim = self
                        .uids
                        .claim(
                            UidScope::Tenants,
                            uid,
                            &key,
                            |holder| async move { self.holds_uid(&holder, uid).await },
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
        Ok(self.shared.settle(Tenant::TYPE, position).await)
    }

    /// Creates a tenant without an API key, with a uid (unique among live
    /// tenants) and metadata.
    ///
    /// # Errors
    /// 409 `uid_taken` when a live tenant has the uid.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
    pub async fn create_with(
        &self,
        ctx: &CommandContext,
        details: TenantDetails,
    ) -> Result<Written<TenantView>, AppError> {
        let id = TenantId::from_uuid(self.shared.entropy.new_id());
        let at = self.now();
        let consistent = self
            .write(
                ctx,
                id,
                || {
                    vec![TenantCommand::Create(CreateTenant {
                        tenant_id: id,
                        name: details.name.clone(),
                        first_key: None,
                        uid: details.uid.clone(),
                        metadata: details.metadata.clone(),
                        at,
                    })]
                },
                details.uid.as_ref(),
            )
            .await?;
        tracing::info!(tenant_id = %id, "tenant created");
        Ok(Written {
            value: self.get(id).await?,
            consistent,
        })
    }

    /// Renames a tenant and changes its uid and metadata, in one step.
    ///
    /// # Errors
    /// 404; 409 for a deleted tenant or a uid another live tenant has.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %id))]
    pub async fn change(
        &self,
        ctx: &CommandContext,
        id: TenantId,
        changes: TenantChanges,
    ) -> Result<Written<TenantView>, AppError> {
        let at = self.now();
        let new_uid = changes.uid.clone().flatten();
        // A missing tenant is refused by its aggregate even when nothing
        // would change.
        self.state(id).await?;
        let consistent = self
            .write(
                ctx,
                id,
                || {
                    let mut commands = Vec::new();
                    if let Some(name) = &changes.name {
                        commands.push(TenantCommand::Rename(RenameTenant {
                            name: name.clone(),
                            at,
                        }));
                    }
                    if changes.uid.is_some() || changes.metadata.is_some() {
                        commands.push(TenantCommand::ChangeDetails(ChangeDetails {
                            uid: changes.uid.clone(),
                            metadata: changes.metadata.clone(),
                            at,
                        }));
                    }
                    commands
                },
                new_uid.as_ref(),
            )
            .await?;
        Ok(Written {
            value: self.get(id).await?,
            consistent,
        })
    }

    /// Live tenants in creation order (either way), after the tenant
    /// `after` in that order, and whether more follow.
    ///
    /// # Errors
    /// 404 for an `after` tenant that does not exist.
    pub async fn list_in_order(
        &self,
        order: ListOrder,
        after: Option<TenantId>,
        limit: u32,
    ) -> Result<(Vec<TenantView>, bool), AppError> {
        let cursor = match after {
            Some(id) => {
                let s = self.state(id).await?;
                Some((s.created_at, *s.id.as_uuid()))
            }
            None => None,
        };
        let mut rows = self
            .read
            .list(&TenantListQuery {
                include_deleted: false,
                before: cursor,
                limit,
                oldest_first: order == ListOrder::OldestFirst,
            })
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let now = self.now();
        Ok((rows.iter().map(|s| view(s, now)).collect(), more))
    }

    /// Newest first, keyset-paginated.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        include_deleted: bool,
        page: PageRequest,
    ) -> Result<Page<TenantView>, AppError> {
        let rows = self
            .read
            .list(&TenantListQuery {
                include_deleted,
                before: page.before,
                limit: page.limit,
                oldest_first: false,
            })
            .await?;
        let now = self.now();
        paginate(
            rows,
            page.limit,
            |s| (s.created_at, *s.id.as_uuid()),
            |s| Ok(view(&s, now)),
        )
    }

    /// # Errors
    /// 404 for an unknown tenant.
    pub async fn get(&self, id: TenantId) -> Result<TenantView, AppError> {
        Ok(view(&self.state(id).await?, self.now()))
    }

    /// # Errors
    /// 404, 409 for a deleted tenant.
    pub async fn rename(
        &self,
        ctx: &CommandContext,
        id: TenantId,
        name: TenantName,
    ) -> Result<Written<TenantView>, AppError> {
        let consistent = self
            .run(ctx, id, || {
                TenantCommand::Rename(RenameTenant {
                    name: name.clone(),
                    at: self.now(),
                })
            })
            .await?;
        Ok(Written {
            value: self.get(id).await?,
            consistent,
        })
    }

    /// Deletes each subscription the tenant still has; whether the read
    /// models showed every deletion in time.
    async fn delete_subscriptions_of(
        &self,
        ctx: &CommandContext,
        id: TenantId,
    ) -> Result<bool, AppError> {
        let mut all_settled = true;
        for subscription in self.subscriptions.ids_of(id).await? {
            match self.subscriptions.delete(ctx, subscription).await {
                Ok(w) => all_settled &= w.consistent,
                Err(AppError::Conflict { .. } | AppError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(all_settled)
    }

    /// Finishes the deletions a process left unfinished (killed while it
    /// deleted a tenant's subscriptions): every deleted tenant that still
    /// has subscriptions has them deleted, as `system:tenant-deletion`.
    /// How many subscriptions it deleted. Run by `serve` at its start.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn finish_deletions(&self) -> Result<usize, AppError> {
        // What the log holds, not what the read models had at the start.
        let wait = std::time::Duration::from_secs(60);
        for aggregate in [
            Tenant::TYPE,
            hookline_domain::subscription::Subscription::TYPE,
        ] {
            self.shared.waiter.wait_caught_up(aggregate, wait).await;
        }
        let mut finished = 0;
        let mut before = None;
        loop {
            let rows = self
                .read
                .list(&TenantListQuery {
                    include_deleted: true,
                    before,
                    limit: crate::pagination::MAX_LIMIT,
                    oldest_first: false,
                })
                .await?;
            let Some(last) = rows.last() else { break };
            before = Some((last.created_at, *last.id.as_uuid()));
            for tenant in rows.iter().filter(|t| t.status == TenantStatus::Deleted) {
                let left = self.subscriptions.ids_of(tenant.id).await?;
                if left.is_empty() {
                    continue;
                }
                tracing::warn!(
                    tenant_id = %tenant.id,
                    subscriptions = left.len(),
                    "a deleted tenant still had subscriptions (its deletion was interrupted); deleting them"
                );
                let ctx = CommandContext {
                    request_id: RequestId::system("tenant-deletion", self.shared.entropy.new_id()),
                    tenant_id: tenant.id,
                    actor: Actor::System("tenant-deletion"),
                };
                self.delete_subscriptions_of(&ctx, tenant.id).await?;
                finished += left.len();
            }
            if rows.len() < crate::pagination::MAX_LIMIT as usize {
                break;
            }
        }
        Ok(finished)
    }

    /// Soft delete: the tenant's keys stop working and each of its
    /// subscriptions is deleted (so nothing more is delivered). Deleting a
    /// deleted tenant again finishes a cascade an earlier call left
    /// unfinished. The value says whether this call deleted it (`false`:
    /// it was deleted before).
    ///
    /// # Errors
    /// 404 for an unknown tenant.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %id))]
    pub async fn delete(
        &self,
        ctx: &CommandContext,
        id: TenantId,
    ) -> Result<Written<bool>, AppError> {
        let (consistent, deleted_now) = match self
            .run(ctx, id, || {
                TenantCommand::Delete(DeleteTenant { at: self.now() })
            })
            .await
        {
            Ok(c) => (c, true),
            Err(AppError::Conflict {
                code: "tenant_deleted",
                ..
            }) => (true, false),
            Err(e) => return Err(e),
        };
        let settled = self
            .delete_subscriptions_of(&ctx.for_tenant(id), id)
            .await?;
        let all_settled = consistent && settled;
        tracing::info!("tenant deleted");
        Ok(Written {
            value: deleted_now,
            consistent: all_settled,
        })
    }

    /// Issues another key for the tenant (shown once).
    ///
    /// # Errors
    /// 404, 409 for a deleted tenant or one holding too many keys.
    pub async fn issue_key(
        &self,
        ctx: &CommandContext,
        id: TenantId,
    ) -> Result<Written<IssuedKey>, AppError> {
        let (command, issued) = self.new_key();
        let consistent = self
            .run(ctx, id, || TenantCommand::IssueKey(command.clone()))
            .await?;
        Ok(Written {
            value: issued,
            consistent,
        })
    }

    /// The tenant's keys, oldest first, masked.
    ///
    /// # Errors
    /// 404 for an unknown tenant.
    pub async fn keys(&self, id: TenantId) -> Result<Vec<ApiKeyView>, AppError> {
        let state = self.state(id).await?;
        let now = self.now();
        Ok(state
            .keys
            .iter()
            .map(|k| ApiKeyView {
                id: k.key_id,
                hint: k.hint.clone(),
                created_at: k.issued_at,
                revoked_at: k.revoked_from,
                active: state.status == TenantStatus::Active && k.works_at(now),
            })
            .collect())
    }

    /// Revokes a key from now on.
    ///
    /// # Errors
    /// 404 for an unknown tenant or key.
    pub async fn revoke_key(
        &self,
        ctx: &CommandContext,
        id: TenantId,
        key_id: Uuid,
    ) -> Result<Written<()>, AppError> {
        let consistent = self
            .run(ctx, id, || {
                let at = self.now();
                TenantCommand::RevokeKey(RevokeApiKey {
                    key_id,
                    effective_at: at,
                    at,
                })
            })
            .await?;
        Ok(Written {
            value: (),
            consistent,
        })
    }

    /// A tenant replaces the key it calls with: a new key is issued and the
    /// calling one keeps working for `overlap` (0: stops now).
    ///
    /// # Errors
    /// 400 for an overlap over [`MAX_KEY_OVERLAP`]; 409 for too many keys.
    pub async fn rotate_own_key(
        &self,
        ctx: &CommandContext,
        caller: Principal,
        overlap: chrono::Duration,
    ) -> Result<Written<(IssuedKey, DateTime<Utc>)>, AppError> {
        if overlap < chrono::Duration::zero() || overlap > MAX_KEY_OVERLAP {
            return Err(hookline_domain::ValidationError::new(
                "overlap_seconds",
                format!(
                    "must be between 0 and {} seconds",
                    MAX_KEY_OVERLAP.num_seconds()
                ),
            )
            .into());
        }
        let (new_key, issued) = self.new_key();
        let at = self.now();
        let consistent = self
            .run(ctx, caller.tenant_id, || {
                TenantCommand::RotateKey(RotateApiKey {
                    new_key: new_key.clone(),
                    old_key_id: caller.key_id,
                    old_until: at + overlap,
                    at,
                })
            })
            .await?;
        // An earlier rotation may already stop the key sooner.
        let until = self
            .state(caller.tenant_id)
            .await?
            .key(caller.key_id)
            .and_then(|k| k.revoked_from)
            .unwrap_or(at + overlap);
        Ok(Written {
            value: (issued, until),
            consistent,
        })
    }

    /// The tenant's settings.
    ///
    /// # Errors
    /// 404 for an unknown tenant.
    pub async fn settings(&self, id: TenantId) -> Result<TenantSettings, AppError> {
        Ok(self.state(id).await?.settings)
    }

    /// Changes the caller's tenant's settings.
    ///
    /// # Errors
    /// 400 for no change asked; 409 for a deleted tenant.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn change_settings(
        &self,
        ctx: &CommandContext,
        changes: SettingsChanges,
    ) -> Result<Written<TenantSettings>, AppError> {
        if changes == SettingsChanges::default() {
            return Err(AppError::BadRequest(
                "nothing to change: give at least one setting, such as strict_event_types".into(),
            ));
        }
        let at = self.now();
        let consistent = self
            .run(ctx, ctx.tenant_id, || {
                TenantCommand::ChangeSettings(ChangeSettings {
                    changes: changes.clone(),
                    at,
                })
            })
            .await?;
        Ok(Written {
            value: self.settings(ctx.tenant_id).await?,
            consistent,
        })
    }
}
