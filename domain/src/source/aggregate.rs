//! The Source aggregate: state rebuilt from its events, and `decide`.

use super::commands::{CreateSource, RotateSourceSecret, SourceCommand, UpdateSource};
use super::events::SourceEvent;
use super::values::{
    DeliveryKey, EventTypeRule, HeaderName, Idempotency, SourceKind, SourceName,
    DEFAULT_SECRET_HEADER,
};
use super::SourceError;
use crate::pointer::JsonPointer;
use crate::sealed::{Sealed, SecretHint};
use crate::subscription::{PreviousSecret, MAX_SIGNING_SECRETS};
use crate::{SourceId, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    Active,
    /// Soft-deleted: `/in/{id}` answers 410; it stays in the log.
    Deleted,
}

impl SourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    pub id: SourceId,
    pub tenant_id: TenantId,
    pub name: SourceName,
    pub kind: SourceKind,
    pub header_name: Option<HeaderName>,
    pub event_type: EventTypeRule,
    pub data: JsonPointer,
    pub idempotency: Idempotency,
    pub secret: Sealed,
    pub secret_hint: SecretHint,
    /// Replaced secrets whose overlap may not have ended yet, oldest first.
    pub previous_secrets: Vec<PreviousSecret>,
    pub status: SourceStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SourceState {
    /// The replaced secrets still accepted at `at`.
    pub fn previous_secrets_at(&self, at: DateTime<Utc>) -> impl Iterator<Item = &PreviousSecret> {
        self.previous_secrets
            .iter()
            .filter(move |p| p.expires_at > at)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    state: Option<SourceState>,
}

impl From<SourceState> for Source {
    fn from(state: SourceState) -> Self {
        Self { state: Some(state) }
    }
}

impl Source {
    pub fn state(&self) -> Option<&SourceState> {
        self.state.as_ref()
    }

    fn live(&self, tenant: TenantId) -> Result<&SourceState, SourceError> {
        let state = self
            .state
            .as_ref()
            .filter(|s| s.tenant_id == tenant)
            .ok_or(SourceError::NotFound)?;
        if state.status == SourceStatus::Deleted {
            return Err(SourceError::Deleted);
        }
        Ok(state)
    }

    /// The creation decision as a plain function, for a creation appended
    /// in one transaction with other changes (a source provisioned at
    /// Siigo together with its upstream subscription).
    ///
    /// # Errors
    /// A header name missing for a kind that reads its secret from one, or
    /// given for a kind that does not.
    pub fn create_new(cmd: CreateSource) -> Result<SourceEvent, SourceError> {
        let header_name = match (cmd.kind, cmd.header_name) {
            (SourceKind::HeaderSecret, None) => return Err(SourceError::HeaderNameRequired),
            (SourceKind::Siigo, None) => Some(
                HeaderName::parse(DEFAULT_SECRET_HEADER, "header_name")
                    .map_err(|_| SourceError::HeaderNameRequired)?,
            ),
            (kind, Some(_)) if !kind.uses_secret_header() => {
                return Err(SourceError::HeaderNameNotUsed(kind))
            }
            (_, given) => given,
        };
        check_headers(header_name.as_ref(), &cmd.idempotency)?;
        Ok(SourceEvent::SourceCreated {
            source_id: cmd.source_id,
            tenant_id: cmd.tenant_id,
            name: cmd.name,
            kind: cmd.kind,
            header_name,
            event_type: cmd.event_type,
            data: cmd.data,
            idempotency: cmd.idempotency,
            secret: cmd.secret,
            secret_hint: cmd.secret_hint,
            created_at: cmd.at,
        })
    }

    /// # Errors
    /// A [`SourceError`] when the command is not allowed in this state.
    pub fn decide(&self, command: SourceCommand) -> Result<Vec<SourceEvent>, SourceError> {
        match command {
            SourceCommand::Create(cmd) => {
                if self.state.is_some() {
                    return Err(SourceError::AlreadyExists);
                }
                Ok(vec![Self::create_new(cmd)?])
            }
            SourceCommand::Update(cmd) => self.update(cmd),
            SourceCommand::RotateSecret(cmd) => self.rotate(cmd),
            SourceCommand::Delete(cmd) => {
                self.live(cmd.tenant_id)?;
                Ok(vec![SourceEvent::SourceDeleted { deleted_at: cmd.at }])
            }
        }
    }

    fn update(&self, cmd: UpdateSource) -> Result<Vec<SourceEvent>, SourceError> {
        let state = self.live(cmd.tenant_id)?;
        if cmd.header_name.is_some() && !state.kind.uses_secret_header() {
            return Err(SourceError::HeaderNameNotUsed(state.kind));
        }
        let name = cmd.name.filter(|n| *n != state.name);
        let header_name = cmd
            .header_name
            .filter(|h| Some(h) != state.header_name.as_ref());
        let event_type = cmd.event_type.filter(|e| *e != state.event_type);
        let data = cmd.data.filter(|d| *d != state.data);
        let idempotency = cmd.idempotency.filter(|i| *i != state.idempotency);
        if name.is_none()
            && header_name.is_none()
            && event_type.is_none()
            && data.is_none()
            && idempotency.is_none()
        {
            return Ok(vec![]);
        }
        if header_name.is_some() || idempotency.is_some() {
            check_headers(
                header_name.as_ref().or(state.header_name.as_ref()),
                idempotency.as_ref().unwrap_or(&state.idempotency),
            )?;
        }
        Ok(vec![SourceEvent::SourceUpdated {
            name,
            header_name,
            event_type,
            data,
            idempotency,
            updated_at: cmd.at,
        }])
    }

    fn rotate(&self, cmd: RotateSourceSecret) -> Result<Vec<SourceEvent>, SourceError> {
        let state = self.live(cmd.tenant_id)?;
        if cmd.previous_secret_expires_at < cmd.at {
            return Err(SourceError::OverlapInThePast);
        }
        let accepted = 1 + state.previous_secrets_at(cmd.at).count();
        if accepted >= MAX_SIGNING_SECRETS {
            return Err(SourceError::TooManySecrets(MAX_SIGNING_SECRETS));
        }
        Ok(vec![SourceEvent::SourceSecretRotated {
            secret: cmd.secret,
            secret_hint: cmd.secret_hint,
            previous_secret_hint: state.secret_hint.clone(),
            previous_secret_expires_at: cmd.previous_secret_expires_at,
            rotated_at: cmd.at,
        }])
    }

    pub fn apply_event(&mut self, event: SourceEvent) {
        if let SourceEvent::SourceCreated {
            source_id,
            tenant_id,
            name,
            kind,
            header_name,
            event_type,
            data,
            idempotency,
            secret,
            secret_hint,
            created_at,
        } = event
        {
            self.state = Some(SourceState {
                id: source_id,
                tenant_id,
                name,
                kind,
                header_name,
                event_type,
                data,
                idempotency,
                secret,
                secret_hint,
                previous_secrets: Vec::new(),
                status: SourceStatus::Active,
                created_at,
                updated_at: created_at,
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        state.updated_at = event.occurred_at();
        match event {
            SourceEvent::SourceCreated { .. } => {}
            SourceEvent::SourceUpdated {
                name,
                header_name,
                event_type,
                data,
                idempotency,
                ..
            } => {
                if let Some(v) = name {
                    state.name = v;
                }
                if let Some(v) = header_name {
                    state.header_name = Some(v);
                }
                if let Some(v) = event_type {
                    state.event_type = v;
                }
                if let Some(v) = data {
                    state.data = v;
                }
                if let Some(v) = idempotency {
                    state.idempotency = v;
                }
            }
            SourceEvent::SourceSecretRotated {
                secret,
                secret_hint,
                previous_secret_expires_at,
                rotated_at,
                ..
            } => {
                let old_secret = std::mem::replace(&mut state.secret, secret);
                let old_hint = std::mem::replace(&mut state.secret_hint, secret_hint);
                state.previous_secrets.retain(|p| p.expires_at > rotated_at);
                state.previous_secrets.push(PreviousSecret {
                    secret: old_secret,
                    hint: old_hint,
                    expires_at: previous_secret_expires_at,
                });
            }
            SourceEvent::SourceDeleted { .. } => state.status = SourceStatus::Deleted,
        }
    }
}

impl Aggregate for Source {
    const TYPE: &'static str = "Source";
    type Command = SourceCommand;
    type Event = SourceEvent;
    type Error = SourceError;
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

/// Headers whose values are recorded or passed on must not carry secrets:
/// the secret header is not `x-request-id` (the request id, recorded and
/// sent to subscribers), and the delivery id (recorded with each webhook)
/// is read neither from the secret header nor from a credentials header.
fn check_headers(
    secret_header: Option<&HeaderName>,
    idempotency: &Idempotency,
) -> Result<(), SourceError> {
    if secret_header.is_some_and(HeaderName::is_request_id) {
        return Err(SourceError::SecretInRequestId);
    }
    if let DeliveryKey::Header(id_header) = &idempotency.key {
        if Some(id_header) == secret_header {
            return Err(SourceError::DeliveryIdIsSecret(id_header.as_str().into()));
        }
        if id_header.carries_credentials() {
            return Err(SourceError::DeliveryIdIsCredential(
                id_header.as_str().into(),
            ));
        }
    }
    Ok(())
}
