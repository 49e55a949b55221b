//! Provisioning webhook subscriptions at Siigo for a tenant, recording
//! them (`UpstreamSubscriptionProvisioned`), listing and removing them.
//! With `via_source`, a `header-secret` source is created in the same
//! transaction and Siigo is asked to deliver to it with the source's
//! secret in a custom header, so Siigo's webhooks arrive verified and fan
//! out to the tenant's subscriptions.

use crate::commands::{execute_with_retry, Written};
use crate::context::CommandContext;
use crate::error::AppError;
use crate::pagination::{paginate, Page, PageRequest};
use crate::ports::{
    AggregateStore, AppendError, Appended, Batch, Change, SiigoAccount, SiigoApi,
    SiigoWebhookRequest, UpstreamFailure, UpstreamReadModel,
};
use crate::shared::Shared;
use crate::sources::{NewSource, SourceService, SourceView};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use hookline_domain::pointer::JsonPointer;
use hookline_domain::source::{
    EventTypeRule, HeaderName, Source, SourceKind, SourceName, DEFAULT_SECRET_HEADER,
};
use hookline_domain::upstream::{
    Provider, ProvisionUpstream, RemoveUpstream, UpstreamCommand, UpstreamError, UpstreamState,
    UpstreamStatus, UpstreamSubscription, UpstreamTopic,
};
use hookline_domain::{SourceId, TenantId, UpstreamId, ValidationError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub const DEFAULT_SIIGO_BASE_URL: &str = "https://api.siigo.com";
/// The `Partner-Id` sent unless one is given (Siigo asks it to name the
/// integration).
pub const DEFAULT_PARTNER_ID: &str = "Hookline";
/// Associated data binding sealed credentials to their subscription.
pub const SEALING_CONTEXT_UPSTREAM: &str = "upstream-credentials";
const TOPIC_PREFIX: &str = "public.siigoapi.";
/// Most events (one Siigo subscription each) per provisioning.
const MAX_EVENTS: usize = 20;

/// The `Partner-Id` for an account: the one given, else the seed's client
/// id when it fits Siigo's rule (3–100 letters and digits), else
/// [`DEFAULT_PARTNER_ID`].
///
/// # Errors
/// A given partner id that breaks Siigo's rule.
pub fn partner_id_for(given: Option<&str>, client_id: &str) -> Result<String, ValidationError> {
    let fits =
        |s: &str| (3..=100).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
    match given {
        Some(p) if fits(p) => Ok(p.to_string()),
        Some(_) => Err(ValidationError::new(
            "partner_id",
            "Siigo's Partner-Id must be 3–100 letters and digits (no spaces or hyphens)",
        )),
        None if fits(client_id) => Ok(client_id.to_string()),
        None => Ok(DEFAULT_PARTNER_ID.to_string()),
    }
}

/// The Siigo topic for an event the seed names: `products.create` →
/// `public.siigoapi.products.create`; a full topic passes as it is.
///
/// # Errors
/// A name that cannot be a topic.
pub fn siigo_topic(event: &str) -> Result<String, ValidationError> {
    let e = event.trim();
    let ok = !e.is_empty()
        && e.len() <= 100
        && e.split('.').all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if !ok {
        return Err(ValidationError::new(
            "events",
            format!(
                "'{}' is not a Siigo event (dot-separated names such as products.create or public.siigoapi.products.create)",
                e.chars().take(64).collect::<String>()
            ),
        ));
    }
    Ok(if e.starts_with(TOPIC_PREFIX) {
        e.to_string()
    } else {
        format!("{TOPIC_PREFIX}{e}")
    })
}

/// The events to subscribe to, each with its topic, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiigoEvents(Vec<(String, String)>);

impl SiigoEvents {
    /// The seed's comma-separated list (`invoices.send,invoices.update`).
    ///
    /// # Errors
    /// An empty list, too many, or a name that cannot be a topic.
    pub fn parse_list(items: &[String]) -> Result<Self, ValidationError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for item in items.iter().flat_map(|i| i.split(',')) {
            let name = item.trim();
            if name.is_empty() {
                continue;
            }
            let topic = siigo_topic(name)?;
            if !out.iter().any(|(_, t)| *t == topic) {
                out.push((name.to_string(), topic));
            }
        }
        if out.is_empty() {
            return Err(ValidationError::new("events", "name at least one event"));
        }
        if out.len() > MAX_EVENTS {
            return Err(ValidationError::new(
                "events",
                format!("at most {MAX_EVENTS} events at once (each is a subscription at Siigo)"),
            ));
        }
        Ok(Self(out))
    }

    /// The events with their topics.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Where Siigo delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiigoTarget {
    /// A URL of the tenant's choosing.
    Url(String),
    /// A new `header-secret` source of the tenant.
    ViaSource,
}

/// What to provision.
#[derive(Debug, Clone)]
pub struct SiigoProvision {
    pub target: SiigoTarget,
    pub events: SiigoEvents,
    pub account: SiigoAccount,
    pub description: Option<String>,
    /// Custom headers Siigo sends with each delivery (checked like a
    /// subscription's).
    pub headers: BTreeMap<String, String>,
}

/// An upstream subscription as responses show it (no credentials).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamView {
    pub id: UpstreamId,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub base_url: String,
    pub url: String,
    pub topics: Vec<UpstreamTopic>,
    pub description: Option<String>,
    pub header_names: Vec<String>,
    pub source_id: Option<SourceId>,
    /// The Siigo username, masked.
    pub account: String,
    pub status: UpstreamStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The source created by `via_source`, with its secret: only in the
    /// answer that created it.
    pub source: Option<SourceView>,
}

impl UpstreamView {
    pub fn render(state: &UpstreamState) -> Self {
        Self {
            id: state.id,
            tenant_id: state.tenant_id,
            provider: state.provider,
            base_url: state.base_url.clone(),
            url: state.url.clone(),
            topics: state.topics.clone(),
            description: state.description.clone(),
            header_names: state.header_names.clone(),
            source_id: state.source_id,
            account: state.account_hint.clone(),
            status: state.status,
            created_at: state.created_at,
            updated_at: state.updated_at,
            source: None,
        }
    }
}

/// The sealed part of an upstream subscription.
#[derive(Serialize, Deserialize)]
struct Sealable {
    account: SiigoAccount,
    headers: BTreeMap<String, String>,
}

fn sealing_context(id: UpstreamId) -> String {
    format!("{SEALING_CONTEXT_UPSTREAM}:{id}")
}

/// `ab…e.com`: enough to tell accounts apart.
fn account_hint(username: &str) -> String {
    let chars: Vec<char> = username.chars().collect();
    if chars.len() < 8 {
        return "…".to_string();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 5..].iter().collect();
    format!("{head}…{tail}")
}

fn upstream_error(e: UpstreamFailure) -> AppError {
    let detail = e.to_string();
    match e {
        UpstreamFailure::Refused { .. } => AppError::Upstream {
            unavailable: false,
            code: "upstream_refused",
            detail,
        },
        UpstreamFailure::Unauthorized(_) => AppError::Upstream {
            unavailable: false,
            code: "upstream_unauthorized",
            detail,
        },
        UpstreamFailure::Unavailable(_) | UpstreamFailure::Protocol(_) => AppError::Upstream {
            unavailable: true,
            code: "upstream_unavailable",
            detail,
        },
    }
}

fn map_error(id: &str, e: AggregateError<UpstreamError>) -> AppError {
    match e {
        AggregateError::UserError(UpstreamError::NotFound) => {
            AppError::not_found("upstream subscription", id)
        }
        AggregateError::UserError(UpstreamError::Removed) => AppError::conflict(
            "upstream_subscription_removed",
            format!("upstream subscription '{id}' was already removed"),
        ),
        other => crate::commands::map_store_error(other),
    }
}

pub struct SiigoService {
    shared: Shared,
    siigo: Arc<dyn SiigoApi>,
    store: Arc<dyn AggregateStore<UpstreamSubscription>>,
    read: Arc<dyn UpstreamReadModel>,
    sources: Arc<SourceService>,
}

impl fmt::Debug for SiigoService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiigoService").finish_non_exhaustive()
    }
}

impl SiigoService {
    pub fn new(
        shared: Shared,
        siigo: Arc<dyn SiigoApi>,
        store: Arc<dyn AggregateStore<UpstreamSubscription>>,
        read: Arc<dyn UpstreamReadModel>,
        sources: Arc<SourceService>,
    ) -> Self {
        Self {
            shared,
            siigo,
            store,
            read,
            sources,
        }
    }

    /// Provisions one Siigo subscription per event and records them. When
    /// one fails, those already made are deleted again and nothing is
    /// recorded.
    ///
    /// # Errors
    /// Validation errors; 422 `upstream_refused`/`upstream_unauthorized`
    /// when Siigo refuses; 502 `upstream_unavailable`.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn provision(
        &self,
        ctx: &CommandContext,
        input: SiigoProvision,
    ) -> Result<Written<UpstreamView>, AppError> {
        let mut headers = input.headers.clone();
        let (url, source) = match &input.target {
            SiigoTarget::Url(url) => (url.clone(), None),
            SiigoTarget::ViaSource => {
                self.sources.check_limit(ctx.tenant_id).await?;
                let prepared = self.sources.prepare(
                    ctx,
                    NewSource {
                        name: SourceName::parse(&format!(
                            "Siigo ({})",
                            account_hint(&input.account.username)
                        ))?,
                        kind: SourceKind::HeaderSecret,
                        secret: None,
                        header_name: Some(HeaderName::parse(DEFAULT_SECRET_HEADER, "header_name")?),
                        event_type: Some(EventTypeRule::Pointer(JsonPointer::parse(
                            "/topic",
                            "event_type",
                        )?)),
                        data: Some(JsonPointer::root()),
                        idempotency: None,
                    },
                )?;
                let view = self
                    .sources
                    .prepared_view(&prepared)
                    .ok_or_else(|| AppError::Internal("a prepared source has no state".into()))?;
                if headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case(DEFAULT_SECRET_HEADER))
                {
                    return Err(ValidationError::new(
                        format!("headers.{DEFAULT_SECRET_HEADER}"),
                        "is set by Hookline to the source's secret with via_source",
                    )
                    .into());
                }
                headers.insert(
                    DEFAULT_SECRET_HEADER.to_string(),
                    prepared.secret.expose().to_string(),
                );
                (view.ingest_url.clone(), Some((prepared, view)))
            }
        };
        let mut made: Vec<UpstreamTopic> = Vec::new();
        for (event, topic) in &input.events.0 {
            let request = SiigoWebhookRequest {
                url: url.clone(),
                topic: topic.clone(),
                name: input.description.clone(),
                headers: headers.clone(),
            };
            match self.siigo.create_webhook(&input.account, &request).await {
                Ok(hook) => made.push(UpstreamTopic {
                    event: event.clone(),
                    topic: topic.clone(),
                    upstream_id: hook.id,
                }),
                Err(e) => {
                    return Err(self.undo(&input.account, &made, upstream_error(e)).await);
                }
            }
        }
        let id = UpstreamId::from_uuid(self.shared.entropy.new_id());
        let at = self.shared.clock.now();
        let sealed = serde_json::to_vec(&Sealable {
            account: input.account.clone(),
            headers: headers.clone(),
        })
        .map_err(|e| AppError::Internal(format!("credentials did not serialise: {e}")))
        .and_then(|bytes| self.shared.cipher.seal(&bytes, &sealing_context(id)));
        let sealed = match sealed {
            Ok(s) => s,
            Err(e) => return Err(self.undo(&input.account, &made, e).await),
        };
        let mut batch = Batch::default();
        let mut source_view = None;
        if let Some((prepared, view)) = source {
            batch.add::<Source>(prepared.change)?;
            source_view = Some(view);
        }
        batch.add(Change::<UpstreamSubscription> {
            aggregate_id: id.to_string(),
            version: 0,
            events: UpstreamSubscription::provision_new(ProvisionUpstream {
                id,
                tenant_id: ctx.tenant_id,
                provider: Provider::Siigo,
                base_url: input.account.base_url.clone(),
                url,
                topics: made.clone(),
                description: input.description.clone(),
                header_names: headers.keys().cloned().collect(),
                source_id: source_view.as_ref().map(|v| v.id),
                credentials: sealed,
                account_hint: account_hint(&input.account.username),
                at,
            }),
            metadata: ctx.metadata(at),
        })?;
        let position = match self.store.append(batch, None).await {
            Ok(Appended::Written(p)) => p,
            Ok(Appended::Replayed(_)) => None,
            Err(e) => {
                tracing::error!(upstream_ids = ?made.iter().map(|m| &m.upstream_id).collect::<Vec<_>>(), "provisioned at Siigo but recording failed; removing them at Siigo");
                let failure = match e {
                    AppendError::Conflict => AppError::Internal("fresh ids collided".into()),
                    AppendError::Other(e) => e,
                };
                return Err(self.undo(&input.account, &made, failure).await);
            }
        };
        let mut consistent = self
            .shared
            .settle(UpstreamSubscription::TYPE, position)
            .await;
        if source_view.is_some() && position.is_some() {
            // The batch's position is its last event, the upstream
            // subscription's: the sources projection never reaches it (it
            // applies Source events only), so waiting for it took the whole
            // consistency timeout and answered "pending" every time.
            consistent &= self
                .shared
                .waiter
                .wait_caught_up(Source::TYPE, self.shared.consistency_timeout)
                .await;
        }
        let mut view = self.render(ctx.tenant_id, id).await?;
        view.source = source_view;
        tracing::info!(upstream_subscription_id = %id, topics = made.len(), "Siigo subscriptions provisioned");
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// Deletes at Siigo what a failed provisioning made, and tells the
    /// caller in `failure` what could not be deleted (it is still at Siigo,
    /// and Hookline has no record of it).
    async fn undo(
        &self,
        account: &SiigoAccount,
        made: &[UpstreamTopic],
        failure: AppError,
    ) -> AppError {
        let mut left = Vec::new();
        for m in made {
            if let Err(e) = self.siigo.delete_webhook(account, &m.upstream_id).await {
                tracing::warn!(upstream_id = %m.upstream_id, error = %e, "could not remove a Siigo subscription after a failed provisioning");
                left.push(format!("{} ({})", m.upstream_id, m.topic));
            }
        }
        if left.is_empty() {
            return failure;
        }
        let leftover = format!(
            "; nothing was recorded, but {} subscription(s) made at Siigo before the failure could not be removed and are still there: {}. Remove them at Siigo",
            left.len(),
            left.join(", ")
        );
        match failure {
            AppError::Upstream {
                unavailable,
                code,
                detail,
            } => AppError::Upstream {
                unavailable,
                code,
                detail: detail + &leftover,
            },
            AppError::Unavailable(detail) => AppError::Unavailable(detail + &leftover),
            // Not shown to the caller: logged above.
            other => other,
        }
    }

    async fn load_state(
        &self,
        tenant: TenantId,
        id: UpstreamId,
    ) -> Result<UpstreamState, AppError> {
        let key = id.to_string();
        let mut loaded = self.store.load(std::slice::from_ref(&key)).await?;
        loaded
            .remove(&key)
            .and_then(|l| l.aggregate.state().cloned())
            .filter(|s| s.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("upstream subscription", id))
    }

    async fn render(&self, tenant: TenantId, id: UpstreamId) -> Result<UpstreamView, AppError> {
        Ok(UpstreamView::render(&self.load_state(tenant, id).await?))
    }

    /// Deletes the subscriptions at Siigo, then records the removal. The
    /// source a `via_source` provisioning created stays (delete it with
    /// `DELETE /v1/sources/{id}`).
    ///
    /// # Errors
    /// 404, 409 when already removed, Siigo's failures.
    pub async fn remove(
        &self,
        ctx: &CommandContext,
        id: UpstreamId,
    ) -> Result<Written<()>, AppError> {
        let state = self.load_state(ctx.tenant_id, id).await?;
        if state.status == UpstreamStatus::Removed {
            return Err(map_error(
                &id.to_string(),
                AggregateError::UserError(UpstreamError::Removed),
            ));
        }
        let credentials = state.credentials.as_ref().ok_or_else(|| {
            AppError::Internal(format!(
                "upstream subscription {id} has no stored credentials"
            ))
        })?;
        let bytes = self.shared.cipher.open(credentials, &sealing_context(id))?;
        let sealed: Sealable = serde_json::from_slice(&bytes).map_err(|e| {
            AppError::Internal(format!("sealed credentials of {id} are unreadable: {e}"))
        })?;
        for topic in &state.topics {
            self.siigo
                .delete_webhook(&sealed.account, &topic.upstream_id)
                .await
                .map_err(upstream_error)?;
        }
        let key = id.to_string();
        let position = execute_with_retry(
            self.store.as_ref(),
            &key,
            || {
                UpstreamCommand::Remove(RemoveUpstream {
                    tenant_id: ctx.tenant_id,
                    at: self.shared.clock.now(),
                })
            },
            &ctx.metadata(self.shared.clock.now()),
        )
        .await
        .map_err(|e| map_error(&key, e))?;
        let consistent = self
            .shared
            .settle(UpstreamSubscription::TYPE, position)
            .await;
        Ok(Written {
            value: (),
            consistent,
        })
    }

    /// # Errors
    /// 404.
    pub async fn get(&self, tenant: TenantId, id: UpstreamId) -> Result<UpstreamView, AppError> {
        let record = self
            .read
            .get(tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("upstream subscription", id))?;
        Ok(UpstreamView::render(&record.state))
    }

    /// Waits (bounded by the consistency timeout) until the read model
    /// holds every upstream subscription recorded before the call: what a
    /// one-shot command does before it lists, since no server may be
    /// running to keep the read model current. True when it does.
    pub async fn settle(&self) -> bool {
        self.shared
            .waiter
            .wait_caught_up(UpstreamSubscription::TYPE, self.shared.consistency_timeout)
            .await
    }

    /// Newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        tenant: TenantId,
        include_removed: bool,
        page: PageRequest,
    ) -> Result<Page<UpstreamView>, AppError> {
        let rows = self
            .read
            .list(tenant, include_removed, page.before, page.limit)
            .await?;
        paginate(
            rows,
            page.limit,
            |r| (r.state.created_at, *r.state.id.as_uuid()),
            |r| Ok(UpstreamView::render(&r.state)),
        )
    }
}
