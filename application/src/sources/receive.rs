//! Receiving on `/in/{source_id}`: verify the provider's proof over the raw
//! bytes, turn the body into an event by the source's rules, recognise a
//! provider's retry, and record `InboundReceived` with the publish to the
//! tenant's matching subscriptions in one transaction. A refused request is
//! recorded where its tenant sees it, never as an event.

use super::view::source_sealing_context;
use crate::context::{Actor, CommandContext, RequestId};
use crate::deliveries::{Planned, PublishService};
use crate::error::AppError;
use crate::ports::{
    AggregateStore, AppendError, Appended, Batch, Change, IdempotencyClaim, IdempotencyKeys,
    NewRejection, RejectionLog, TenantReadModel,
};
use crate::shared::Shared;
use chrono::{DateTime, Utc};
use hookline_domain::inbound::{Inbound, ReceiveInbound};
use hookline_domain::payload::check_object;
use hookline_domain::pointer::JsonPointer;
use hookline_domain::source::verify::{body_sha256, Verifier};
use hookline_domain::source::{DeliveryKey, EventTypeRule, Source, SourceState, SourceStatus};
use hookline_domain::tenant::TenantStatus;
use hookline_domain::{EventId, EventType, InboundId, SigningSecret, SourceId, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sources whose unsealed secrets are kept at once.
const MAX_CACHED_SOURCES: usize = 10_000;
/// Longest provider delivery id kept as it is (longer ones are hashed).
const MAX_DELIVERY_ID_LEN: usize = 200;
/// Longest header value kept with an inbound webhook.
const MAX_KEPT_HEADER_LEN: usize = 500;
/// Headers kept with every inbound webhook (besides the source's delivery
/// id header). Never the one carrying a secret.
const KEPT_HEADERS: [&str; 8] = [
    "content-type",
    "user-agent",
    "x-request-id",
    "x-event",
    "webhook-id",
    "webhook-timestamp",
    "svix-id",
    "svix-timestamp",
];

/// An inbound request as the HTTP layer read it.
#[derive(Debug, Clone)]
pub struct InboundRequest {
    /// The path segment, unparsed (anything a provider might send).
    pub source_id: String,
    /// Lowercase names; the first value of each.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub remote_addr: Option<String>,
    pub request_id: RequestId,
}

/// What an accepted request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundAccepted {
    pub inbound_id: InboundId,
    /// The event published to the tenant's subscriptions (none when no
    /// active subscription listens to it).
    pub event_id: Option<EventId>,
    pub deliveries: usize,
    /// True when this request repeats one already accepted (a provider's
    /// retry): nothing new was recorded or published.
    #[serde(skip)]
    pub duplicate: bool,
}

/// How a refused request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalStatus {
    /// 404: no such source.
    NotFound,
    /// 413: the body is larger than the server accepts (not read).
    TooLarge,
    /// 410: the source (or its tenant) was deleted.
    Gone,
    /// 401: the proof is missing, malformed or wrong.
    Unauthorized,
    /// 400: the verified body is not a JSON object.
    BadRequest,
    /// 415: the body is compressed (`Content-Encoding` other than
    /// `identity`); bodies are read as sent, never decompressed.
    UnsupportedMediaType,
    /// 422: the body does not give an event by the source's rules, or the
    /// tenant's catalogue refuses it.
    Unprocessable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRefusal {
    pub status: RefusalStatus,
    pub code: &'static str,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("{}: {}", .0.code, .0.detail)]
    Refused(InboundRefusal),
    /// Storage failed: the provider should retry.
    #[error(transparent)]
    Failed(#[from] AppError),
}

fn refusal(status: RefusalStatus, code: &'static str, detail: impl Into<String>) -> InboundError {
    InboundError::Refused(InboundRefusal {
        status,
        code,
        detail: detail.into(),
    })
}

/// Counts of what the sources received in this process, for metrics.
#[derive(Debug, Default)]
pub struct InboundStats {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
}

/// A snapshot of [`InboundStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundCounts {
    pub accepted: u64,
    pub duplicates: u64,
    /// By refusal code.
    pub refused: BTreeMap<&'static str, u64>,
}

impl InboundStats {
    fn refused(&self, code: &'static str) {
        if let Ok(mut map) = self.refused.lock() {
            *map.entry(code).or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> InboundCounts {
        InboundCounts {
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            refused: self.refused.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }
}

/// A source with its secrets unsealed, for the version it was read at.
struct Prepared {
    version: i64,
    state: SourceState,
    /// Current secret first, then rotated-out ones with the end of their
    /// overlap.
    secrets: Vec<(SigningSecret, Option<DateTime<Utc>>)>,
}

impl Prepared {
    fn verifier(&self, now: DateTime<Utc>) -> Verifier {
        Verifier::new(
            self.state.kind,
            self.state.header_name.clone(),
            self.secrets
                .iter()
                .filter(|(_, until)| until.is_none_or(|u| now < u))
                .map(|(s, _)| s.clone())
                .collect(),
        )
    }
}

pub struct InboundService {
    shared: Shared,
    sources: Arc<dyn AggregateStore<Source>>,
    store: Arc<dyn AggregateStore<Inbound>>,
    keys: Arc<dyn IdempotencyKeys>,
    publish: Arc<PublishService>,
    tenants: Arc<dyn TenantReadModel>,
    rejections: Arc<dyn RejectionLog>,
    stats: InboundStats,
    cache: Mutex<HashMap<SourceId, Arc<Prepared>>>,
}

impl fmt::Debug for InboundService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundService").finish_non_exhaustive()
    }
}

/// What a request's body gave by the source's rules.
struct Mapped<'a> {
    event_type: EventType,
    data: &'a serde_json::value::RawValue,
    delivery_id: String,
}

impl InboundService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Shared,
        sources: Arc<dyn AggregateStore<Source>>,
        store: Arc<dyn AggregateStore<Inbound>>,
        keys: Arc<dyn IdempotencyKeys>,
        publish: Arc<PublishService>,
        tenants: Arc<dyn TenantReadModel>,
        rejections: Arc<dyn RejectionLog>,
    ) -> Self {
        Self {
            shared,
            sources,
            store,
            keys,
            publish,
            tenants,
            rejections,
            stats: InboundStats::default(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn stats(&self) -> InboundCounts {
        self.stats.snapshot()
    }

    /// The source with its secrets, read from the log (exact: a source
    /// created a moment ago works at once), unsealed once per version.
    async fn prepared(&self, id: SourceId) -> Result<Option<Arc<Prepared>>, AppError> {
        let key = id.to_string();
        let mut loaded = self.sources.load(std::slice::from_ref(&key)).await?;
        let Some(loaded) = loaded.remove(&key) else {
            return Ok(None);
        };
        if let Ok(cache) = self.cache.lock() {
            if let Some(p) = cache.get(&id).filter(|p| p.version == loaded.version) {
                return Ok(Some(p.clone()));
            }
        }
        let Some(state) = loaded.aggregate.state().cloned() else {
            return Ok(None);
        };
        let context = source_sealing_context(id);
        let open = |sealed| -> Result<SigningSecret, AppError> {
            let bytes = self.shared.cipher.open(sealed, &context)?;
            String::from_utf8(bytes)
                .map(SigningSecret::from_unsealed)
                .map_err(|_| AppError::Internal(format!("the secret of source {id} is not UTF-8")))
        };
        let mut secrets = vec![(open(&state.secret)?, None)];
        for previous in state.previous_secrets.iter().rev() {
            secrets.push((open(&previous.secret)?, Some(previous.expires_at)));
        }
        let prepared = Arc::new(Prepared {
            version: loaded.version,
            state,
            secrets,
        });
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED_SOURCES {
                cache.clear();
            }
            cache.insert(id, prepared.clone());
        }
        Ok(Some(prepared))
    }

    /// Records a refusal for the tenant to see, and counts it.
    async fn refuse(
        &self,
        state: &SourceState,
        req: &InboundRequest,
        at: DateTime<Utc>,
        status: RefusalStatus,
        code: &'static str,
        detail: String,
    ) -> InboundError {
        self.stats.refused(code);
        let rejection = NewRejection {
            tenant_id: state.tenant_id,
            source_id: state.id,
            reason: code,
            // Stored and shown: no control character (a NUL cannot be
            // stored) from what the sender wrote.
            detail: hookline_domain::validation::printable(&detail),
            remote_addr: req.remote_addr.clone(),
            request_id: req.request_id.to_string(),
            body_sha256: body_sha256(&req.body),
            body_bytes: req.body.len() as u64,
            received_at: at,
        };
        if let Err(e) = self.rejections.record(&rejection).await {
            tracing::warn!(error = %e, source_id = %state.id, "recording a rejected inbound request failed");
        }
        tracing::info!(source_id = %state.id, reason = code, "inbound request refused");
        refusal(status, code, detail)
    }

    /// A request whose body is over the size limit, refused before it was
    /// read: recorded for the source's tenant and counted like any other
    /// refusal (`req.body` is empty; `detail` says what was declared).
    pub async fn refuse_too_large(&self, req: InboundRequest, detail: String) -> InboundError {
        let code = "payload_too_large";
        let source = match SourceId::parse(&req.source_id) {
            Ok(id) => self.prepared(id).await.ok().flatten(),
            Err(_) => None,
        };
        match source {
            Some(p) if p.state.status != SourceStatus::Deleted => {
                let now = self.shared.clock.now();
                self.refuse(&p.state, &req, now, RefusalStatus::TooLarge, code, detail)
                    .await
            }
            _ => {
                self.stats.refused(code);
                refusal(RefusalStatus::TooLarge, code, detail)
            }
        }
    }

    /// Handles one request to `/in/{source_id}`.
    ///
    /// # Errors
    /// [`InboundError::Refused`] with how to answer (unknown or deleted
    /// source, failed verification, a body that gives no event);
    /// [`InboundError::Failed`] when storage failed (answer 503 so the
    /// provider retries).
    #[tracing::instrument(skip_all, fields(request_id = %req.request_id))]
    pub async fn receive(&self, req: InboundRequest) -> Result<InboundAccepted, InboundError> {
        let not_found = || {
            self.stats.refused("source_not_found");
            refusal(
                RefusalStatus::NotFound,
                "source_not_found",
                "no source has this id; use the ingest_url of a source",
            )
        };
        let id = SourceId::parse(&req.source_id).map_err(|_| not_found())?;
        let Some(prepared) = self.prepared(id).await? else {
            return Err(not_found());
        };
        let state = &prepared.state;
        if state.status == SourceStatus::Deleted || !self.tenant_active(state.tenant_id).await? {
            self.stats.refused("source_deleted");
            return Err(refusal(
                RefusalStatus::Gone,
                "source_deleted",
                "this source has been deleted; it accepts no more webhooks",
            ));
        }
        let now = self.shared.clock.now();
        if let Some(encoding) = compressed(&req.headers) {
            return Err(self
                .refuse(
                    state,
                    &req,
                    now,
                    RefusalStatus::UnsupportedMediaType,
                    "unsupported_media_type",
                    format!(
                        "Content-Encoding `{encoding}` is not supported: send the body uncompressed \
                         (it is verified and stored exactly as sent)"
                    ),
                )
                .await);
        }
        if let Err(r) = prepared
            .verifier(now)
            .verify(&req.headers, &req.body, now.timestamp())
        {
            return Err(self
                .refuse(
                    state,
                    &req,
                    now,
                    RefusalStatus::Unauthorized,
                    r.reason.as_str(),
                    r.detail,
                )
                .await);
        }
        let body = match std::str::from_utf8(&req.body) {
            Ok(text) => match check_object("body", text) {
                Ok(()) => text,
                Err(e) => {
                    return Err(self
                        .refuse(
                            state,
                            &req,
                            now,
                            RefusalStatus::BadRequest,
                            "invalid_body",
                            format!("the body {}", e.reason),
                        )
                        .await)
                }
            },
            Err(_) => {
                return Err(self
                    .refuse(
                        state,
                        &req,
                        now,
                        RefusalStatus::BadRequest,
                        "invalid_body",
                        "the body is not UTF-8 text".to_string(),
                    )
                    .await)
            }
        };
        let mapped = match map_body(state, &req.headers, body) {
            Ok(m) => m,
            Err((code, detail)) => {
                return Err(self
                    .refuse(state, &req, now, RefusalStatus::Unprocessable, code, detail)
                    .await)
            }
        };
        self.record(&prepared, &req, body, mapped, now).await
    }

    async fn tenant_active(&self, tenant: TenantId) -> Result<bool, AppError> {
        Ok(self
            .tenants
            .get(tenant)
            .await?
            .is_some_and(|t| t.status == TenantStatus::Active))
    }

    /// Records the accepted webhook with what it publishes (unless it
    /// repeats one accepted within the window).
    async fn record(
        &self,
        prepared: &Prepared,
        req: &InboundRequest,
        body: &str,
        mapped: Mapped<'_>,
        now: DateTime<Utc>,
    ) -> Result<InboundAccepted, InboundError> {
        let state = &prepared.state;
        // A space cannot occur in a client's Idempotency-Key, so these
        // never collide with publishes' keys.
        let claim_key = format!("inbound {} {}", state.id, mapped.delivery_id);
        let window = Duration::from_secs(u64::from(state.idempotency.window_seconds));
        if let Some(first) = self
            .keys
            .first_answer(state.tenant_id, &claim_key, window)
            .await?
        {
            return Ok(self.duplicate(first.response));
        }
        let ctx = CommandContext {
            request_id: req.request_id.clone(),
            tenant_id: state.tenant_id,
            actor: Actor::Source(state.id),
        };
        let planned = match self
            .publish
            .plan(&ctx, &mapped.event_type, mapped.data, now)
            .await
        {
            Ok(p) => p,
            Err(e @ (AppError::Unavailable(_) | AppError::Internal(_) | AppError::Busy { .. })) => {
                return Err(e.into())
            }
            Err(e) => {
                return Err(self
                    .refuse(
                        state,
                        req,
                        now,
                        RefusalStatus::Unprocessable,
                        "event_refused",
                        format!("the tenant's event-type catalogue refuses this event: {e}"),
                    )
                    .await)
            }
        };
        let inbound_id = InboundId::from_uuid(self.shared.entropy.new_id());
        // The backlog's admission is held until the batch is appended.
        let (event_id, deliveries, published, _admitted) = match planned {
            Some(Planned {
                batch,
                published,
                admitted,
            }) => (
                Some(published.event_id),
                published.deliveries.len(),
                batch,
                Some(admitted),
            ),
            None => (None, 0, Batch::default(), None),
        };
        let mut batch = Batch::default();
        batch.add(Change::<Inbound> {
            aggregate_id: inbound_id.to_string(),
            version: 0,
            events: vec![Inbound::receive_new(ReceiveInbound {
                inbound_id,
                tenant_id: state.tenant_id,
                source_id: state.id,
                source_kind: state.kind,
                delivery_id: mapped.delivery_id,
                event_type: mapped.event_type,
                event_id,
                headers: kept_headers(state, &req.headers),
                body: body.to_string(),
                remote_addr: req.remote_addr.clone(),
                at: now,
            })],
            metadata: ctx.metadata(now),
        })?;
        batch.extend(published);
        let accepted = InboundAccepted {
            inbound_id,
            event_id,
            deliveries,
            duplicate: false,
        };
        let response =
            serde_json::to_value(&accepted).map_err(|e| AppError::Internal(e.to_string()))?;
        let fingerprint = body_sha256(&req.body);
        let claim = IdempotencyClaim {
            tenant: state.tenant_id,
            key: &claim_key,
            fingerprint: &fingerprint,
            ttl: window,
            response: &response,
        };
        match self.store.append(batch, Some(claim)).await {
            Ok(Appended::Written(_)) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(inbound_id = %inbound_id, source_id = %state.id, deliveries, "inbound webhook accepted");
                Ok(accepted)
            }
            Ok(Appended::Replayed(first)) => Ok(self.duplicate(first.response)),
            Err(AppendError::Conflict) => {
                Err(AppError::Internal("fresh inbound ids collided".into()).into())
            }
            Err(AppendError::Other(e)) => Err(e.into()),
        }
    }

    fn duplicate(&self, first: serde_json::Value) -> InboundAccepted {
        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
        let mut answer: InboundAccepted =
            serde_json::from_value(first).unwrap_or(InboundAccepted {
                inbound_id: InboundId::from_uuid(uuid::Uuid::nil()),
                event_id: None,
                deliveries: 0,
                duplicate: true,
            });
        answer.duplicate = true;
        tracing::info!(inbound_id = %answer.inbound_id, "inbound webhook repeated; nothing new recorded");
        answer
    }
}

/// The event name, data and delivery id a verified body gives by the
/// source's rules, or the refusal code and why.
fn map_body<'a>(
    state: &SourceState,
    headers: &BTreeMap<String, String>,
    body: &'a str,
) -> Result<Mapped<'a>, (&'static str, String)> {
    let event_type = match &state.event_type {
        EventTypeRule::Fixed(name) => name.clone(),
        EventTypeRule::Pointer(pointer) => {
            let name = pointer.select_string(body).ok_or_else(|| {
                (
                    "event_type_unresolved",
                    format!("the body has no string at {pointer} to name the event (the source's event_type)"),
                )
            })?;
            EventType::parse(&name, "event_type").map_err(|e| {
                (
                    "event_type_unresolved",
                    format!(
                        "the body's {pointer} is not an event name Hookline accepts: {}",
                        e.reason
                    ),
                )
            })?
        }
    };
    let data = state
        .data
        .select(body)
        .filter(|raw| raw.get().starts_with('{'))
        .ok_or_else(|| {
            (
                "data_unresolved",
                format!(
                    "the body has no JSON object at '{}' to be the event's data (the source's data)",
                    state.data
                ),
            )
        })?;
    Ok(Mapped {
        event_type,
        data,
        delivery_id: delivery_id(&state.idempotency.key, headers, body),
    })
}

/// The provider's id of this delivery by the source's rule, or the body's
/// SHA-256 when the request has none.
fn delivery_id(key: &DeliveryKey, headers: &BTreeMap<String, String>, body: &str) -> String {
    let given = match key {
        DeliveryKey::Header(name) => headers.get(name.as_str()).map(|v| v.trim().to_string()),
        DeliveryKey::Pointer(pointer) => scalar_at(pointer, body),
        DeliveryKey::BodyHash => None,
    };
    match given.filter(|v| !v.is_empty()) {
        Some(v) if v.len() <= MAX_DELIVERY_ID_LEN && !v.chars().any(char::is_control) => v,
        Some(v) => format!("sha256:{}", body_sha256(v.as_bytes())),
        None => format!("sha256:{}", body_sha256(body.as_bytes())),
    }
}

/// A string or number at `pointer`, as text.
fn scalar_at(pointer: &JsonPointer, body: &str) -> Option<String> {
    let raw = pointer.select(body)?;
    match serde_json::from_str::<serde_json::Value>(raw.get()).ok()? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The headers kept with an inbound webhook: a fixed few that help trace
/// it, and the source's delivery id header; never its secret header.
fn kept_headers(
    state: &SourceState,
    headers: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let id_header = match &state.idempotency.key {
        DeliveryKey::Header(h) => Some(h.as_str()),
        _ => None,
    };
    let secret_header = state.header_name.as_ref().map(|h| h.as_str());
    headers
        .iter()
        .filter(|(name, _)| {
            (KEPT_HEADERS.contains(&name.as_str()) || Some(name.as_str()) == id_header)
                && Some(name.as_str()) != secret_header
        })
        .map(|(name, value)| {
            (
                name.clone(),
                value.chars().take(MAX_KEPT_HEADER_LEN).collect(),
            )
        })
        .collect()
}

/// The request's `Content-Encoding`, printable and short, when it is not
/// `identity`.
fn compressed(headers: &BTreeMap<String, String>) -> Option<String> {
    let value = headers.get("content-encoding")?.trim();
    (!value.is_empty() && !value.eq_ignore_ascii_case("identity")).then(|| {
        hookline_domain::validation::printable(&value.chars().take(40).collect::<String>())
    })
}
