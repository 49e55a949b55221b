//! The source use cases: create, list, read, update, rotate the secret,
//! delete, history, and the rejections a source recorded.

use super::commands::{ListSources, NewSource, SourceChanges};
use super::map_error;
use super::view::{source_sealing_context, RejectionView, SourceView};
use crate::commands::{execute_with_retry, Written};
use crate::context::CommandContext;
use crate::error::AppError;
use crate::history::{self, HistoryEntry, HistoryRequest};
use crate::pagination::{paginate, Page};
use crate::ports::{AggregateStore, Change, RejectionLog, SourceListQuery, SourceReadModel};
use crate::shared::Shared;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_domain::sealed::GENERATED_SECRET_BYTES;
use hookline_domain::source::{
    CreateSource, DeleteSource, Idempotency, RotateSourceSecret, Source, SourceCommand, SourceKind,
    SourceState, SourceStatus, UpdateSource,
};
use hookline_domain::{Sealed, SigningSecret, SourceId, TenantId, ValidationError};
use std::fmt;
use std::sync::Arc;

/// Most sources (not deleted) one tenant may have.
pub const MAX_SOURCES_PER_TENANT: u64 = 100;
/// Random bytes of a generated secret (other than Standard Webhooks').
const GENERATED_SOURCE_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Where Hookline is reachable from providers (ingest URLs start with
    /// it).
    pub public_url: String,
    /// How long a rotated-out secret is still accepted.
    pub rotation_overlap: chrono::Duration,
}

pub struct SourceService {
    shared: Shared,
    store: Arc<dyn AggregateStore<Source>>,
    read: Arc<dyn SourceReadModel>,
    rejections: Arc<dyn RejectionLog>,
    settings: SourceSettings,
    /// Serialises "check the limit, then write".
    serial: crate::serial::SerialWrites,
}

impl fmt::Debug for SourceService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A source decided but not appended (see [`SourceService::prepare`]).
#[derive(Debug, Clone)]
pub struct PreparedSource {
    pub change: Change<Source>,
    pub secret: SigningSecret,
}

/// Checks a secret a tenant chose for a kind: header kinds send it as a
/// header value.
fn check_secret(kind: SourceKind, secret: &SigningSecret) -> Result<(), ValidationError> {
    let s = secret.expose();
    if kind.uses_secret_header() && (!s.bytes().all(|b| (0x21..0x7f).contains(&b))) {
        return Err(ValidationError::new(
            "secret",
            "a secret sent in a header must be visible ASCII without spaces",
        ));
    }
    Ok(())
}

impl SourceService {
    pub fn new(
        shared: Shared,
        store: Arc<dyn AggregateStore<Source>>,
        read: Arc<dyn SourceReadModel>,
        rejections: Arc<dyn RejectionLog>,
        settings: SourceSettings,
    ) -> Self {
        Self {
            shared,
            store,
            read,
            rejections,
            settings,
            serial: crate::serial::SerialWrites::default(),
        }
    }

    /// The limit holds across processes too, with `locks` (per tenant).
    #[must_use]
    pub fn with_locks(mut self, locks: Arc<dyn crate::ports::WriteLocks>) -> Self {
        self.serial.set_locks(locks);
        self
    }

    pub fn public_url(&self) -> &str {
        &self.settings.public_url
    }

    fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// A fresh secret in the kind's form: `whsec_…` for Standard Webhooks,
    /// base64 of 32 random bytes (as InFlow's) for the others; URL-safe
    /// base64 for secrets sent in a header.
    fn new_secret(&self, kind: SourceKind) -> SigningSecret {
        match kind {
            SourceKind::StandardWebhooks => SigningSecret::from_random_bytes(
                &self.shared.random_bytes::<GENERATED_SECRET_BYTES>(),
            ),
            k if k.uses_secret_header() => SigningSecret::from_unsealed(
                URL_SAFE_NO_PAD.encode(self.shared.random_bytes::<GENERATED_SOURCE_SECRET_BYTES>()),
            ),
            _ => SigningSecret::from_unsealed(
                STANDARD.encode(self.shared.random_bytes::<GENERATED_SOURCE_SECRET_BYTES>()),
            ),
        }
    }

    fn seal(&self, id: SourceId, secret: &SigningSecret) -> Result<Sealed, AppError> {
        self.shared
            .cipher
            .seal(secret.expose().as_bytes(), &source_sealing_context(id))
    }

    fn view(&self, state: &SourceState) -> SourceView {
        SourceView::render(state, &self.settings.public_url, self.now())
    }

    /// The creation command for `input`, with the plaintext secret.
    fn creation(
        &self,
        ctx: &CommandContext,
        input: NewSource,
    ) -> Result<(CreateSource, SigningSecret), AppError> {
        if let Some(secret) = &input.secret {
            check_secret(input.kind, secret)?;
        }
        let secret = input
            .secret
            .clone()
            .unwrap_or_else(|| self.new_secret(input.kind));
        let id = SourceId::from_uuid(self.shared.entropy.new_id());
        let command = CreateSource {
            source_id: id,
            tenant_id: ctx.tenant_id,
            name: input.name,
            kind: input.kind,
            header_name: input.header_name,
            event_type: input
                .event_type
                .unwrap_or_else(|| input.kind.default_event_type()),
            data: input.data.unwrap_or_else(|| input.kind.default_data()),
            idempotency: match input.idempotency {
                Some(i) => i,
                None => Idempotency::new(input.kind.default_delivery_key(), None)?,
            },
            secret: self.seal(id, &secret)?,
            secret_hint: secret.hint(),
            at: self.now(),
        };
        Ok((command, secret))
    }

    /// Decides a new source without appending it, for a caller that
    /// appends it with other changes (a source provisioned at Siigo).
    ///
    /// # Errors
    /// Validation errors (a secret unfit for the kind, a header name
    /// missing or not used).
    pub fn prepare(
        &self,
        ctx: &CommandContext,
        input: NewSource,
    ) -> Result<PreparedSource, AppError> {
        let (command, secret) = self.creation(ctx, input)?;
        let id = command.source_id;
        let at = command.at;
        let event = Source::create_new(command)
            .map_err(|e| map_error(&id.to_string(), cqrs_es::AggregateError::UserError(e)))?;
        Ok(PreparedSource {
            change: Change {
                aggregate_id: id.to_string(),
                version: 0,
                events: vec![event],
                metadata: ctx.metadata(at),
            },
            secret,
        })
    }

    /// The view of a prepared source, with its full secret.
    pub fn prepared_view(&self, prepared: &PreparedSource) -> Option<SourceView> {
        let mut source = Source::default();
        for event in &prepared.change.events {
            source.apply_event(event.clone());
        }
        let mut view = self.view(source.state()?);
        view.secret = prepared.secret.expose().to_string();
        Some(view)
    }

    /// Refuses one more source past the tenant's limit.
    ///
    /// # Errors
    /// 409 `source_limit_reached`.
    pub async fn check_limit(&self, tenant: TenantId) -> Result<(), AppError> {
        let held = self.read.count(tenant).await?;
        if held >= MAX_SOURCES_PER_TENANT {
            return Err(AppError::conflict(
                "source_limit_reached",
                format!(
                    "this tenant already has {held} sources, the most allowed; delete one first"
                ),
            ));
        }
        Ok(())
    }

    /// Creates a source. The answer carries the full secret, the only time
    /// it is shown.
    ///
    /// # Errors
    /// Validation errors; 409 past the limit.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn create(
        &self,
        ctx: &CommandContext,
        input: NewSource,
    ) -> Result<Written<SourceView>, AppError> {
        let (command, secret) = self.creation(ctx, input)?;
        let id = command.source_id;
        let guard = self
            .serial
            .hold(&format!("sources:{}", ctx.tenant_id))
            .await?;
        self.check_limit(ctx.tenant_id).await?;
        let consistent = self
            .run(ctx, id, || SourceCommand::Create(command.clone()))
            .await?;
        drop(guard);
        let state = self.load_state(ctx.tenant_id, id).await?;
        let mut view = self.view(&state);
        view.secret = secret.expose().to_string();
        tracing::info!(source_id = %id, kind = %view.kind, "source created");
        Ok(Written {
            value: view,
            consistent,
        })
    }

    async fn run(
        &self,
        ctx: &CommandContext,
        id: SourceId,
        make: impl FnMut() -> SourceCommand + Send,
    ) -> Result<bool, AppError> {
        let key = id.to_string();
        let position =
            execute_with_retry(self.store.as_ref(), &key, make, &ctx.metadata(self.now()))
                .await
                .map_err(|e| map_error(&key, e))?;
        Ok(self.shared.settle(Source::TYPE, position).await)
    }

    async fn load_state(&self, tenant: TenantId, id: SourceId) -> Result<SourceState, AppError> {
        let key = id.to_string();
        let mut loaded = self.store.load(std::slice::from_ref(&key)).await?;
        loaded
            .remove(&key)
            .and_then(|l| l.aggregate.state().cloned())
            .filter(|s| s.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("source", id))
    }

    /// # Errors
    /// 400 for no change, 404, 409 for a deleted source.
    pub async fn update(
        &self,
        ctx: &CommandContext,
        id: SourceId,
        changes: SourceChanges,
    ) -> Result<Written<SourceView>, AppError> {
        if changes.is_empty() {
            return Err(AppError::BadRequest(
                "the body must set at least one of name, header_name, event_type, data, idempotency"
                    .into(),
            ));
        }
        let consistent = self
            .run(ctx, id, || {
                SourceCommand::Update(UpdateSource {
                    tenant_id: ctx.tenant_id,
                    name: changes.name.clone(),
                    header_name: changes.header_name.clone(),
                    event_type: changes.event_type.clone(),
                    data: changes.data.clone(),
                    idempotency: changes.idempotency.clone(),
                    at: self.now(),
                })
            })
            .await?;
        let state = self.load_state(ctx.tenant_id, id).await?;
        Ok(Written {
            value: self.view(&state),
            consistent,
        })
    }

    /// Replaces the secret (with `secret`, or a generated one); the old one
    /// is still accepted for the configured overlap. The answer carries the
    /// new secret in full, once.
    ///
    /// # Errors
    /// 404, 409 when deleted or too many secrets overlap.
    pub async fn rotate_secret(
        &self,
        ctx: &CommandContext,
        id: SourceId,
        secret: Option<SigningSecret>,
    ) -> Result<Written<SourceView>, AppError> {
        let current = self.load_state(ctx.tenant_id, id).await?;
        if let Some(secret) = &secret {
            check_secret(current.kind, secret)?;
        }
        let secret = secret.unwrap_or_else(|| self.new_secret(current.kind));
        let sealed = self.seal(id, &secret)?;
        let consistent = self
            .run(ctx, id, || {
                let at = self.now();
                SourceCommand::RotateSecret(RotateSourceSecret {
                    tenant_id: ctx.tenant_id,
                    secret: sealed.clone(),
                    secret_hint: secret.hint(),
                    previous_secret_expires_at: at + self.settings.rotation_overlap,
                    at,
                })
            })
            .await?;
        let state = self.load_state(ctx.tenant_id, id).await?;
        let mut view = self.view(&state);
        view.secret = secret.expose().to_string();
        tracing::info!(source_id = %id, "source secret rotated");
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// Soft delete: `/in/{id}` answers 410 from now on.
    ///
    /// # Errors
    /// 404, 409 when already deleted.
    pub async fn delete(
        &self,
        ctx: &CommandContext,
        id: SourceId,
    ) -> Result<Written<()>, AppError> {
        let consistent = self
            .run(ctx, id, || {
                SourceCommand::Delete(DeleteSource {
                    tenant_id: ctx.tenant_id,
                    at: self.now(),
                })
            })
            .await?;
        Ok(Written {
            value: (),
            consistent,
        })
    }

    /// # Errors
    /// 404 (also for a deleted source unless `include_deleted`).
    pub async fn get(
        &self,
        tenant: TenantId,
        id: SourceId,
        include_deleted: bool,
    ) -> Result<SourceView, AppError> {
        let record = self
            .read
            .get(tenant, id)
            .await?
            .filter(|r| include_deleted || r.state.status != SourceStatus::Deleted)
            .ok_or_else(|| AppError::not_found("source", id))?;
        Ok(self.view(&record.state))
    }

    /// Newest first, keyset-paginated.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        tenant: TenantId,
        query: ListSources,
    ) -> Result<Page<SourceView>, AppError> {
        let limit = query.page.limit;
        let rows = self
            .read
            .list(
                tenant,
                &SourceListQuery {
                    include_deleted: query.include_deleted,
                    before: query.page.before,
                    limit,
                },
            )
            .await?;
        paginate(
            rows,
            limit,
            |r| (r.state.created_at, *r.state.id.as_uuid()),
            |r| Ok(self.view(&r.state)),
        )
    }

    /// The source's events in order, secrets masked.
    ///
    /// # Errors
    /// 404 when the tenant has no such source.
    pub async fn history(
        &self,
        tenant: TenantId,
        id: SourceId,
        request: HistoryRequest,
    ) -> Result<Page<HistoryEntry>, AppError> {
        history::read_owned_page(
            self.shared.log.as_ref(),
            Source::TYPE,
            &id.to_string(),
            request,
            tenant,
        )
        .await?
        .ok_or_else(|| AppError::not_found("source", id))
    }

    /// The requests the source refused, newest first (`cursor` is the
    /// `next_cursor` of the previous page).
    ///
    /// # Errors
    /// 404 for a source the tenant does not have; 400 for a bad cursor.
    pub async fn rejections(
        &self,
        tenant: TenantId,
        id: SourceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<RejectionView>, AppError> {
        self.read
            .get(tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("source", id))?;
        let limit = crate::pagination::parse_limit(Some(limit))?;
        let before = cursor
            .map(|c| {
                c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    AppError::invalid(ValidationError::new(
                        "cursor",
                        "is not a cursor returned by this API (use next_cursor from the previous page)",
                    ))
                })
            })
            .transpose()?;
        let mut rows = self.rejections.list(tenant, id, before, limit).await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }
}
