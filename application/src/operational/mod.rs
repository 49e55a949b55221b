//! Operational webhooks: events about Hookline itself (`hookline.…`),
//! delivered to the tenant's own subscriptions that ask for them by name.
//!
//! - The live read models turn log events into [`Notice`]s
//!   ([`subscription_notice`], [`delivery_notice`]) and keep them in an
//!   outbox in the same transaction as their checkpoint, so none is lost
//!   or made twice.
//! - The [`Notifier`] publishes each notice once it is due, as an event
//!   whose id the notice fixes: publishing it again (after a crash, or
//!   from a second process) finds the id taken and changes nothing.
//!
//! No loops: a notice is never sent to the subscription it is about, and a
//! delivery of an operational event that is abandoned causes no notice.

#[cfg(test)]
mod tests;

use crate::context::{Actor, CommandContext, RequestId};
use crate::deliveries::PublishService;
use crate::error::AppError;
use crate::ports::{DeliveryRecord, StoredEvent, SubscriptionDirectory};
use crate::shared::Shared;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use hookline_domain::delivery::{DeliveryEvent, DeliveryStatus};
use hookline_domain::subscription::{SubscriptionEvent, SubscriptionState};
use hookline_domain::{EventId, EventType, SubscriptionId, TenantId};
use serde_json::{json, Map, Value};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const SUBSCRIPTION_DISABLED: &str = "hookline.subscription.disabled";
pub const SUBSCRIPTION_ENABLED: &str = "hookline.subscription.enabled";
pub const CIRCUIT_OPENED: &str = "hookline.circuit.opened";
pub const CIRCUIT_CLOSED: &str = "hookline.circuit.closed";
pub const DELIVERY_ABANDONED: &str = "hookline.delivery.abandoned";
pub const ROTATION_ENDING: &str = "hookline.secret.rotation_ending";

/// How long before a rotation's overlap ends its notice is sent.
pub const ROTATION_NOTICE_LEAD: chrono::Duration = chrono::Duration::hours(1);

/// An operational event waiting to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The id the published event gets (derived from the log event that
    /// caused the notice, so it is the same whoever derives it).
    pub id: EventId,
    pub tenant_id: TenantId,
    pub event_type: &'static str,
    pub data: Value,
    /// The subscription the notice is about: it is never sent there.
    pub about: Option<SubscriptionId>,
    pub due_at: DateTime<Utc>,
    /// The request that caused the log event, so the notice shows in its
    /// trace.
    pub request_id: Option<String>,
}

/// The notice's id: a digest of the log event that caused it.
fn notice_id(source: &StoredEvent, kind: &str) -> EventId {
    EventId::from_uuid(hookline_domain::ids::digest_uuid(&format!(
        "hookline-notice:{kind}:{}:{}:{}",
        source.aggregate_type, source.aggregate_id, source.sequence
    )))
}

fn millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `subscription_id`, `url` and `description` of the subscription a notice
/// is about.
fn about(state: &SubscriptionState) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("subscription_id".into(), json!(state.id));
    m.insert("url".into(), json!(state.url.as_str()));
    if let Some(d) = &state.description {
        m.insert("description".into(), json!(d));
    }
    m
}

/// The notice a subscription's event causes, given the subscription's
/// state after it.
pub fn subscription_notice(
    state: &SubscriptionState,
    event: &SubscriptionEvent,
    source: &StoredEvent,
) -> Option<Notice> {
    let mut data = about(state);
    let (kind, due_at) = match event {
        SubscriptionEvent::SubscriptionDisabled {
            reason,
            disabled_at,
        } => {
            data.insert("reason".into(), json!(reason));
            data.insert("automatic".into(), json!(reason.starts_with("auto:")));
            data.insert("disabled_at".into(), json!(millis(*disabled_at)));
            (SUBSCRIPTION_DISABLED, *disabled_at)
        }
        SubscriptionEvent::SubscriptionEnabled { enabled_at } => {
            data.insert("enabled_at".into(), json!(millis(*enabled_at)));
            (SUBSCRIPTION_ENABLED, *enabled_at)
        }
        SubscriptionEvent::EndpointCircuitOpened {
            consecutive_failures,
            cause,
            opened_at,
            next_probe_at,
        } => {
            data.insert("consecutive_failures".into(), json!(consecutive_failures));
            data.insert(
                "cause".into(),
                json!({
                    "delivery_id": cause.delivery_id,
                    "error_kind": cause.error_kind,
                    "status_code": cause.status_code,
                    "message": cause.message,
                    "failed_at": millis(cause.failed_at),
                }),
            );
            data.insert("opened_at".into(), json!(millis(*opened_at)));
            data.insert("next_probe_at".into(), json!(millis(*next_probe_at)));
            (CIRCUIT_OPENED, *opened_at)
        }
        SubscriptionEvent::EndpointCircuitClosed {
            delivery_id,
            closed_at,
        } => {
            if let Some(d) = delivery_id {
                data.insert("delivery_id".into(), json!(d));
            }
            data.insert("closed_at".into(), json!(millis(*closed_at)));
            (CIRCUIT_CLOSED, *closed_at)
        }
        SubscriptionEvent::SecretRotated {
            secret_hint,
            previous_secret_hint,
            previous_secret_expires_at,
            rotated_at,
            ..
        } => {
            if previous_secret_expires_at <= rotated_at {
                return None; // no overlap: nothing is ending later
            }
            data.insert("previous_secret_hint".into(), json!(previous_secret_hint));
            data.insert("secret_hint".into(), json!(secret_hint));
            data.insert(
                "previous_secret_expires_at".into(),
                json!(millis(*previous_secret_expires_at)),
            );
            let due = (*previous_secret_expires_at - ROTATION_NOTICE_LEAD).max(*rotated_at);
            // The receiver at this subscription is the one that must switch:
            // it is told too (a rotation is not caused by failures, so this
            // cannot loop).
            return Some(Notice {
                id: notice_id(source, ROTATION_ENDING),
                tenant_id: state.tenant_id,
                event_type: ROTATION_ENDING,
                data: Value::Object(data),
                about: None,
                due_at: due,
                request_id: source.request().map(|m| m.request_id),
            });
        }
        _ => return None,
    };
    Some(Notice {
        id: notice_id(source, kind),
        tenant_id: state.tenant_id,
        event_type: kind,
        data: Value::Object(data),
        about: Some(state.id),
        due_at,
        request_id: source.request().map(|m| m.request_id),
    })
}

/// The notice a delivery's event causes, given the delivery's record after
/// it: `hookline.delivery.abandoned` when its retries ran out, unless it
/// carried an operational event itself.
pub fn delivery_notice(
    record: &DeliveryRecord,
    event: &DeliveryEvent,
    source: &StoredEvent,
) -> Option<Notice> {
    let DeliveryEvent::AttemptFailed {
        status: DeliveryStatus::Abandoned,
        started_at,
        duration_ms,
        ..
    } = event
    else {
        return None;
    };
    let carried = EventType::parse(&record.event_type, "event_type").ok()?;
    if carried.is_operational() {
        return None;
    }
    let abandoned_at = *started_at
        + chrono::Duration::milliseconds(i64::try_from(*duration_ms).unwrap_or(i64::MAX / 2));
    let mut data = Map::new();
    data.insert("delivery_id".into(), json!(record.id));
    data.insert("subscription_id".into(), json!(record.subscription_id));
    data.insert("event_id".into(), json!(record.event_id));
    data.insert("event_type".into(), json!(record.event_type));
    data.insert("url".into(), json!(record.url));
    data.insert("attempts".into(), json!(record.attempts));
    if let Some(code) = record.last_status_code {
        data.insert("last_status_code".into(), json!(code));
    }
    if let Some(kind) = record.last_error_kind {
        data.insert("last_error_kind".into(), json!(kind));
    }
    if let Some(e) = &record.last_error {
        data.insert("last_error".into(), json!(e));
    }
    if let Some(r) = &record.request_id {
        data.insert("request_id".into(), json!(r));
    }
    data.insert("abandoned_at".into(), json!(millis(abandoned_at)));
    Some(Notice {
        id: notice_id(source, DELIVERY_ABANDONED),
        tenant_id: record.tenant_id,
        event_type: DELIVERY_ABANDONED,
        data: Value::Object(data),
        about: Some(record.subscription_id),
        due_at: abandoned_at,
        request_id: record.request_id.clone(),
    })
}

/// Where notices wait until they are published.
#[async_trait]
pub trait NoticeOutbox: Send + Sync {
    /// Up to `limit` notices due at `now`, each leased to the caller for
    /// `lease` (another process takes it only after that).
    ///
    /// # Errors
    /// Storage errors.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Notice>, AppError>;

    /// The notice is published (or needs no publishing): removes it.
    ///
    /// # Errors
    /// Storage errors.
    async fn done(&self, id: EventId) -> Result<(), AppError>;
}

/// What one look did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub published: usize,
    /// Due notices that needed no event: nobody listens, it was already
    /// published, or (a rotation notice) a later rotation superseded it.
    pub dropped: usize,
}

/// Publishes due notices.
pub struct Notifier {
    shared: Shared,
    outbox: Arc<dyn NoticeOutbox>,
    directory: Arc<dyn SubscriptionDirectory>,
    publish: Arc<PublishService>,
    tick: Duration,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

/// Notices published per look.
const BATCH: u32 = 100;
/// A notice not sent within this long after it was due is dropped: news
/// that old would mislead (workers were down all that time, or a read
/// model was rebuilt from an old checkpoint).
pub const MAX_LATENESS: chrono::Duration = chrono::Duration::hours(24);
/// How long a claimed notice is left to its claimer.
const LEASE: Duration = Duration::from_secs(30);

impl Notifier {
    pub fn new(
        shared: Shared,
        outbox: Arc<dyn NoticeOutbox>,
        directory: Arc<dyn SubscriptionDirectory>,
        publish: Arc<PublishService>,
        tick: Duration,
    ) -> Self {
        Self {
            shared,
            outbox,
            directory,
            publish,
            tick,
        }
    }

    /// Looks every `tick` until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            match self.send_due().await {
                Ok(sent) if sent.published + sent.dropped >= BATCH as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "operational notices could not be sent"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.tick) => {}
            }
        }
    }

    /// Publishes the notices due now.
    ///
    /// # Errors
    /// Storage errors; a notice that fails stays in the outbox for the
    /// next look.
    pub async fn send_due(&self) -> Result<Sent, AppError> {
        let now = self.shared.clock.now();
        let mut sent = Sent::default();
        for notice in self.outbox.claim_due(now, BATCH, LEASE).await? {
            if now - notice.due_at > MAX_LATENESS || !self.still_true(&notice).await? {
                self.outbox.done(notice.id).await?;
                sent.dropped += 1;
                continue;
            }
            let request_id = notice
                .request_id
                .as_deref()
                .and_then(RequestId::recorded)
                .unwrap_or_else(|| RequestId::system("operational", notice.id));
            let ctx = CommandContext {
                request_id,
                tenant_id: notice.tenant_id,
                actor: Actor::System("operational"),
            };
            match self.publish.publish_operational(&ctx, &notice).await {
                Ok(published) => {
                    if published {
                        sent.published += 1;
                    } else {
                        sent.dropped += 1;
                    }
                    self.outbox.done(notice.id).await?;
                }
                Err(e) => {
                    tracing::warn!(notice = %notice.id, event_type = notice.event_type, error = %e, "operational notice not published; will try again");
                }
            }
        }
        Ok(sent)
    }

    /// A rotation notice stands while the rotated-out secret still ends
    /// when it said (a later rotation may have replaced it).
    async fn still_true(&self, notice: &Notice) -> Result<bool, AppError> {
        if notice.event_type != ROTATION_ENDING {
            return Ok(true);
        }
        let Some(id) = notice.data["subscription_id"]
            .as_str()
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
        else {
            return Ok(false);
        };
        let Some(state) = self.directory.get(SubscriptionId::from_uuid(id)).await? else {
            return Ok(false);
        };
        let hint = notice.data["previous_secret_hint"].as_str();
        let ends = notice.data["previous_secret_expires_at"].as_str();
        // A previous secret signs only under a scheme that carries every
        // secret's signature (the scheme may have changed since).
        Ok(
            state.status != hookline_domain::subscription::SubscriptionStatus::Deleted
                && state.signature_scheme.signs_with_every_secret()
                && state.previous_secrets.iter().any(|p| {
                    Some(p.hint.as_str()) == hint && Some(millis(p.expires_at).as_str()) == ends
                }),
        )
    }
}
