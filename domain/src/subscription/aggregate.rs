//! The Subscription aggregate: state rebuilt from its events, and `decide`,
//! which turns a command into new events or a refusal.

use super::commands::{
    CloseCircuit, OpenCircuit, ReleaseProbe, RotateSecret, Subscribe, SubscriptionCommand,
    UpdateSubscription,
};
use super::error::SubscriptionError;
use super::events::SubscriptionEvent;
use super::flow::{Circuit, RateLimit};
use super::values::{Description, PayloadFormat};
use crate::channel::Channels;
use crate::metadata::Metadata;
use crate::sealed::{Sealed, SecretHint};
use crate::uid::Uid;
use crate::{EventFilter, SignatureScheme, SubscriptionId, TargetUrl, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Receives deliveries.
    Active,
    /// Kept, but receives nothing until enabled again (by a client, or
    /// automatically disabled after a 410 Gone).
    Disabled,
    /// Soft-deleted: readable in history, never delivered to again.
    Deleted,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
        }
    }
}

/// Most secrets that sign a delivery at once: the current one and those
/// replaced by rotations whose overlap has not ended. A rotation past it is
/// refused rather than cutting a promised overlap short.
pub const MAX_SIGNING_SECRETS: usize = 5;

/// A secret replaced by a rotation, still signing until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: Sealed,
    pub hint: SecretHint,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredState")]
pub struct SubscriptionState {
    pub id: SubscriptionId,
    pub tenant_id: TenantId,
    pub url: TargetUrl,
    pub events: EventFilter,
    pub header_names: Vec<String>,
    pub headers: Option<Sealed>,
    pub description: Option<Description>,
    pub signature_scheme: SignatureScheme,
    pub secret: Sealed,
    pub secret_hint: SecretHint,
    /// Replaced secrets whose overlap may not have ended yet, oldest first.
    pub previous_secrets: Vec<PreviousSecret>,
    pub status: SubscriptionStatus,
    pub disabled_reason: Option<String>,
    /// Attempts per second, across every worker.
    pub rate_limit: Option<RateLimit>,
    /// Set while the circuit breaker holds deliveries back.
    pub circuit: Option<Circuit>,
    /// When failures last stopped counting (enabled, or circuit closed):
    /// only failures after it open the circuit or disable it.
    pub flow_reset_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub payload_format: PayloadFormat,
    /// `None`: every channel.
    pub channels: Option<Channels>,
    pub uid: Option<Uid>,
    pub metadata: Metadata,
}

impl SubscriptionState {
    /// Whether a message of this type and these channels is for this
    /// subscription (its event filter and its channels admit it).
    pub fn wants(&self, event: &crate::EventType, channels: Option<&Channels>) -> bool {
        self.events.matches(event) && Channels::admits(self.channels.as_ref(), channels)
    }

    /// The replaced secrets still signing at `at`.
    pub fn previous_secrets_at(&self, at: DateTime<Utc>) -> impl Iterator<Item = &PreviousSecret> {
        self.previous_secrets
            .iter()
            .filter(move |p| p.expires_at > at)
    }
}

/// The state as read models stored it: before several overlaps were kept,
/// it had one `previous_secret`.
#[derive(Deserialize)]
struct StoredState {
    id: SubscriptionId,
    tenant_id: TenantId,
    url: TargetUrl,
    events: EventFilter,
    header_names: Vec<String>,
    headers: Option<Sealed>,
    description: Option<Description>,
    signature_scheme: SignatureScheme,
    secret: Sealed,
    secret_hint: SecretHint,
    #[serde(default)]
    previous_secrets: Vec<PreviousSecret>,
    #[serde(default)]
    previous_secret: Option<PreviousSecret>,
    status: SubscriptionStatus,
    disabled_reason: Option<String>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    circuit: Option<Circuit>,
    #[serde(default)]
    flow_reset_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default)]
    payload_format: PayloadFormat,
    #[serde(default)]
    channels: Option<Channels>,
    #[serde(default)]
    uid: Option<Uid>,
    #[serde(default)]
    metadata: Metadata,
}

impl From<StoredState> for SubscriptionState {
    fn from(s: StoredState) -> Self {
        let mut previous_secrets = s.previous_secrets;
        previous_secrets.extend(s.previous_secret);
        Self {
            id: s.id,
            tenant_id: s.tenant_id,
            url: s.url,
            events: s.events,
            header_names: s.header_names,
            headers: s.headers,
            description: s.description,
            signature_scheme: s.signature_scheme,
            secret: s.secret,
            secret_hint: s.secret_hint,
            previous_secrets,
            status: s.status,
            disabled_reason: s.disabled_reason,
            rate_limit: s.rate_limit,
            circuit: s.circuit,
            flow_reset_at: s.flow_reset_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
            payload_format: s.payload_format,
            channels: s.channels,
            uid: s.uid,
            metadata: s.metadata,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    state: Option<SubscriptionState>,
}

impl From<SubscriptionState> for Subscription {
    /// Resumes folding from a stored state (read models keep the state).
    fn from(state: SubscriptionState) -> Self {
        Self { state: Some(state) }
    }
}

impl Subscription {
    /// `None` until `Subscribed`.
    pub fn state(&self) -> Option<&SubscriptionState> {
        self.state.as_ref()
    }

    /// The state of a subscription owned by `tenant`, not deleted.
    fn live(&self, tenant: TenantId) -> Result<&SubscriptionState, SubscriptionError> {
        let state = self
            .state
            .as_ref()
            .filter(|s| s.tenant_id == tenant)
            .ok_or(SubscriptionError::NotFound)?;
        if state.status == SubscriptionStatus::Deleted {
            return Err(SubscriptionError::Deleted);
        }
        Ok(state)
    }

    /// Decides which events `command` causes, without changing anything.
    ///
    /// # Errors
    /// A [`SubscriptionError`] when the command is not allowed in the
    /// current state.
    pub fn decide(
        &self,
        command: SubscriptionCommand,
    ) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        match command {
            SubscriptionCommand::Subscribe(cmd) => self.subscribe(cmd),
            SubscriptionCommand::Update(cmd) => self.update(cmd),
            SubscriptionCommand::RotateSecret(cmd) => self.rotate(cmd),
            SubscriptionCommand::Disable(cmd) => {
                let state = self.live(cmd.tenant_id)?;
                let reason = cmd.reason.trim();
                if reason.is_empty() {
                    return Err(SubscriptionError::EmptyReason);
                }
                if state.status == SubscriptionStatus::Disabled {
                    return Ok(vec![]);
                }
                Ok(vec![SubscriptionEvent::SubscriptionDisabled {
                    reason: crate::outcome::truncate_chars(reason, 500),
                    disabled_at: cmd.at,
                }])
            }
            SubscriptionCommand::Enable(cmd) => {
                let state = self.live(cmd.tenant_id)?;
                if state.status == SubscriptionStatus::Active {
                    return Ok(vec![]);
                }
                Ok(vec![SubscriptionEvent::SubscriptionEnabled {
                    enabled_at: cmd.at,
                }])
            }
            SubscriptionCommand::Unsubscribe(cmd) => {
                self.live(cmd.tenant_id)?;
                Ok(vec![SubscriptionEvent::Unsubscribed {
                    unsubscribed_at: cmd.at,
                }])
            }
            SubscriptionCommand::RevealSecret(cmd) => {
                self.live(cmd.tenant_id)?;
                Ok(vec![SubscriptionEvent::SecretRevealed {
                    revealed_at: cmd.at,
                }])
            }
            SubscriptionCommand::OpenCircuit(cmd) => self.open_circuit(cmd),
            SubscriptionCommand::ReleaseProbe(cmd) => self.release_probe(cmd),
            SubscriptionCommand::CloseCircuit(cmd) => self.close_circuit(&cmd),
        }
    }

    fn open_circuit(&self, cmd: OpenCircuit) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        let state = self.live(cmd.tenant_id)?;
        if state.status != SubscriptionStatus::Active || state.circuit.is_some() {
            return Ok(vec![]);
        }
        Ok(vec![SubscriptionEvent::EndpointCircuitOpened {
            consecutive_failures: cmd.consecutive_failures,
            cause: cmd.cause,
            opened_at: cmd.at,
            next_probe_at: cmd.next_probe_at.max(cmd.at),
        }])
    }

    fn release_probe(
        &self,
        cmd: ReleaseProbe,
    ) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        let state = self.live(cmd.tenant_id)?;
        match &state.circuit {
            Some(c) if state.status == SubscriptionStatus::Active && c.next_probe_at <= cmd.at => {
                Ok(vec![SubscriptionEvent::EndpointCircuitProbeReleased {
                    delivery_id: cmd.delivery_id,
                    released_at: cmd.at,
                    next_probe_at: cmd.next_probe_at.max(cmd.at),
                }])
            }
            _ => Ok(vec![]),
        }
    }

    fn close_circuit(
        &self,
        cmd: &CloseCircuit,
    ) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        let state = self.live(cmd.tenant_id)?;
        if state.circuit.is_none() {
            return Ok(vec![]);
        }
        Ok(vec![SubscriptionEvent::EndpointCircuitClosed {
            delivery_id: cmd.delivery_id,
            closed_at: cmd.at,
        }])
    }

    fn subscribe(&self, cmd: Subscribe) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        if let Some(state) = &self.state {
            return Err(if state.tenant_id == cmd.tenant_id {
                SubscriptionError::AlreadyExists
            } else {
                SubscriptionError::IdTaken
            });
        }
        Ok(vec![SubscriptionEvent::Subscribed {
            subscription_id: cmd.subscription_id,
            tenant_id: cmd.tenant_id,
            url: cmd.url,
            events: cmd.events,
            header_names: cmd.header_names,
            headers: cmd.headers,
            description: cmd.description,
            signature_scheme: cmd.signature_scheme,
            secret: cmd.secret,
            secret_hint: cmd.secret_hint,
            rate_limit: cmd.rate_limit,
            subscribed_at: cmd.at,
            payload_format: Some(cmd.payload_format).filter(|f| !f.is_default()),
            channels: cmd.channels,
            uid: cmd.uid,
            metadata: Some(cmd.metadata).filter(|m| !m.is_empty()),
        }])
    }

    fn update(&self, cmd: UpdateSubscription) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        let state = self.live(cmd.tenant_id)?;
        if cmd
            .unchanged_since
            .is_some_and(|t| t.timestamp_micros() != state.updated_at.timestamp_micros())
        {
            return Err(SubscriptionError::ChangedMeanwhile);
        }
        let url = cmd.url.filter(|u| *u != state.url);
        let events = cmd.events.filter(|e| *e != state.events);
        let description = cmd.description.filter(|d| *d != state.description);
        let signature_scheme = cmd
            .signature_scheme
            .filter(|s| *s != state.signature_scheme);
        let channels = cmd.channels.filter(|c| *c != state.channels);
        let uid = cmd.uid.filter(|u| *u != state.uid);
        let metadata = cmd.metadata.filter(|m| *m != state.metadata);
        let rate_limit = cmd.rate_limit.filter(|r| *r != state.rate_limit);
        // Sealed values never compare equal (fresh nonce), so a headers
        // change is recorded unless both old and new are empty.
        let headers = cmd
            .headers
            .filter(|(names, _)| !(names.is_empty() && state.header_names.is_empty()));
        let (header_names, headers) = match headers {
            Some((names, sealed)) => (Some(names), Some(sealed)),
            None => (None, None),
        };
        if url.is_none()
            && events.is_none()
            && description.is_none()
            && signature_scheme.is_none()
            && headers.is_none()
            && channels.is_none()
            && uid.is_none()
            && metadata.is_none()
            && rate_limit.is_none()
        {
            return Ok(vec![]);
        }
        Ok(vec![SubscriptionEvent::SubscriptionUpdated {
            url,
            events,
            header_names,
            headers,
            description,
            signature_scheme,
            rate_limit,
            updated_at: cmd.at,
            channels,
            uid,
            metadata,
        }])
    }

    fn rotate(&self, cmd: RotateSecret) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        let state = self.live(cmd.tenant_id)?;
        if cmd.previous_secret_expires_at < cmd.at {
            return Err(SubscriptionError::OverlapInThePast);
        }
        // A scheme that carries one signature, by the current secret, has
        // no overlap: the replaced secret stops at the rotation (and
        // counts towards no limit). Otherwise the current secret and every
        // overlap still running must keep signing: refuse rather than drop
        // one.
        let previous_secret_expires_at = if state.signature_scheme.signs_with_every_secret() {
            let signing = 1 + state.previous_secrets_at(cmd.at).count();
            if signing >= MAX_SIGNING_SECRETS {
                return Err(SubscriptionError::TooManySecrets(MAX_SIGNING_SECRETS));
            }
            cmd.previous_secret_expires_at
        } else {
            cmd.at
        };
        Ok(vec![SubscriptionEvent::SecretRotated {
            secret: cmd.secret,
            secret_hint: cmd.secret_hint,
            previous_secret_hint: state.secret_hint.clone(),
            previous_secret_expires_at,
            rotated_at: cmd.at,
        }])
    }

    /// Applies one event to the state (also used by read models that fold
    /// an aggregate's history).
    pub fn apply_event(&mut self, event: SubscriptionEvent) {
        match event {
            SubscriptionEvent::Subscribed {
                subscription_id,
                tenant_id,
                url,
                events,
                header_names,
                headers,
                description,
                signature_scheme,
                secret,
                secret_hint,
                rate_limit,
                subscribed_at,
                payload_format,
                channels,
                uid,
                metadata,
            } => {
                self.state = Some(SubscriptionState {
                    id: subscription_id,
                    tenant_id,
                    url,
                    events,
                    header_names,
                    headers,
                    description,
                    signature_scheme,
                    secret,
                    secret_hint,
                    previous_secrets: Vec::new(),
                    status: SubscriptionStatus::Active,
                    disabled_reason: None,
                    rate_limit,
                    circuit: None,
                    flow_reset_at: None,
                    created_at: subscribed_at,
                    updated_at: subscribed_at,
                    payload_format: payload_format.unwrap_or_default(),
                    channels,
                    uid,
                    metadata: metadata.unwrap_or_default(),
                });
            }
            other => {
                if let Some(state) = self.state.as_mut() {
                    state.apply_change(other);
                }
            }
        }
    }
}

impl SubscriptionState {
    /// Applies an event that changes an existing subscription.
    fn apply_change(&mut self, event: SubscriptionEvent) {
        // Reading the secret changes nothing about the subscription.
        if let SubscriptionEvent::SecretRevealed { .. } = event {
            return;
        }
        self.updated_at = event.occurred_at();
        match event {
            SubscriptionEvent::Subscribed { .. } | SubscriptionEvent::SecretRevealed { .. } => {}
            SubscriptionEvent::SubscriptionUpdated {
                url,
                events,
                header_names,
                headers,
                description,
                signature_scheme,
                channels,
                uid,
                metadata,
                rate_limit,
                ..
            } => {
                if let Some(channels) = channels {
                    self.channels = channels;
                }
                if let Some(uid) = uid {
                    self.uid = uid;
                }
                if let Some(metadata) = metadata {
                    self.metadata = metadata;
                }
                if let Some(url) = url {
                    self.url = url;
                }
                if let Some(events) = events {
                    self.events = events;
                }
                if let Some(names) = header_names {
                    self.header_names = names;
                }
                if let Some(headers) = headers {
                    self.headers = headers;
                }
                if let Some(description) = description {
                    self.description = description;
                }
                if let Some(scheme) = signature_scheme {
                    self.signature_scheme = scheme;
                }
                if let Some(limit) = rate_limit {
                    self.rate_limit = limit;
                }
            }
            SubscriptionEvent::SecretRotated {
                secret,
                secret_hint,
                previous_secret_expires_at,
                rotated_at,
                ..
            } => {
                let old_secret = std::mem::replace(&mut self.secret, secret);
                let old_hint = std::mem::replace(&mut self.secret_hint, secret_hint);
                // Overlaps that ended by now sign nothing more.
                self.previous_secrets.retain(|p| p.expires_at > rotated_at);
                self.previous_secrets.push(PreviousSecret {
                    secret: old_secret,
                    hint: old_hint,
                    expires_at: previous_secret_expires_at,
                });
            }
            SubscriptionEvent::SubscriptionDisabled { reason, .. } => {
                self.status = SubscriptionStatus::Disabled;
                self.disabled_reason = Some(reason);
            }
            SubscriptionEvent::SubscriptionEnabled { enabled_at } => {
                self.status = SubscriptionStatus::Active;
                self.disabled_reason = None;
                // A fresh start: earlier failures no longer count.
                self.circuit = None;
                self.flow_reset_at = Some(enabled_at);
            }
            SubscriptionEvent::Unsubscribed { .. } => {
                self.status = SubscriptionStatus::Deleted;
            }
            SubscriptionEvent::EndpointCircuitOpened {
                consecutive_failures,
                cause,
                opened_at,
                next_probe_at,
            } => {
                self.circuit = Some(Circuit {
                    opened_at,
                    cause,
                    consecutive_failures,
                    probes: 0,
                    probe: None,
                    next_probe_at,
                });
            }
            SubscriptionEvent::EndpointCircuitProbeReleased {
                delivery_id,
                next_probe_at,
                ..
            } => {
                if let Some(c) = self.circuit.as_mut() {
                    c.probes = c.probes.saturating_add(1);
                    c.probe = Some(delivery_id);
                    c.next_probe_at = next_probe_at;
                }
            }
            SubscriptionEvent::EndpointCircuitClosed { closed_at, .. } => {
                self.circuit = None;
                self.flow_reset_at = Some(closed_at);
            }
        }
    }
}

impl Aggregate for Subscription {
    const TYPE: &'static str = "Subscription";
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = SubscriptionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.apply_event(event);
    }
}
