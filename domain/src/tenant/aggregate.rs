//! The Tenant aggregate: state rebuilt from its events, and `decide`.

use super::commands::{
    ChangeDetails, ChangeSettings, IssueApiKey, RevokeApiKey, RotateApiKey, TenantCommand,
};
use super::error::TenantError;
use super::events::TenantEvent;
use super::{TenantName, MAX_ACTIVE_KEYS};
use crate::metadata::Metadata;
use crate::uid::Uid;
use crate::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    /// Soft-deleted: its keys stop working, it stays in the log.
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyState {
    pub key_id: Uuid,
    pub key_hash: String,
    pub hint: String,
    pub issued_at: DateTime<Utc>,
    /// When the key stops working, once revoked.
    pub revoked_from: Option<DateTime<Utc>>,
}

impl ApiKeyState {
    /// Whether the key still authenticates at `now`.
    pub fn works_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_from.is_none_or(|from| now < from)
    }
}

/// What a tenant chose about how Hookline treats its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Refuse publishing event types that are not in the catalogue (or are
    /// archived).
    #[serde(default)]
    pub strict_event_types: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantState {
    pub id: TenantId,
    pub name: TenantName,
    pub status: TenantStatus,
    pub keys: Vec<ApiKeyState>,
    /// Absent in states stored before settings existed.
    #[serde(default)]
    pub settings: TenantSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Absent in states stored before uids existed.
    #[serde(default)]
    pub uid: Option<Uid>,
    #[serde(default)]
    pub metadata: Metadata,
}

impl TenantState {
    pub fn key(&self, id: Uuid) -> Option<&ApiKeyState> {
        self.keys.iter().find(|k| k.key_id == id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    state: Option<TenantState>,
}

impl From<TenantState> for Tenant {
    /// Resumes folding from a stored state (read models keep the state).
    fn from(state: TenantState) -> Self {
        Self { state: Some(state) }
    }
}

impl Tenant {
    /// `None` until `TenantCreated`.
    pub fn state(&self) -> Option<&TenantState> {
        self.state.as_ref()
    }

    fn live(&self) -> Result<&TenantState, TenantError> {
        let state = self.state.as_ref().ok_or(TenantError::NotFound)?;
        if state.status == TenantStatus::Deleted {
            return Err(TenantError::Deleted);
        }
        Ok(state)
    }

    /// Decides which events `command` causes, without changing anything.
    ///
    /// # Errors
    /// A [`TenantError`] when the command is not allowed in this state.
    pub fn decide(&self, command: TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        match command {
            TenantCommand::Create(cmd) => {
                if self.state.is_some() {
                    return Err(TenantError::AlreadyExists);
                }
                let mut events = vec![TenantEvent::TenantCreated {
                    tenant_id: cmd.tenant_id,
                    name: cmd.name,
                    created_at: cmd.at,
                    uid: cmd.uid,
                    metadata: Some(cmd.metadata).filter(|m| !m.is_empty()),
                }];
                if let Some(key) = cmd.first_key {
                    events.push(issued(key));
                }
                Ok(events)
            }
            TenantCommand::Rename(cmd) => {
                let state = self.live()?;
                if state.name == cmd.name {
                    return Ok(vec![]);
                }
                Ok(vec![TenantEvent::TenantRenamed {
                    name: cmd.name,
                    renamed_at: cmd.at,
                }])
            }
            TenantCommand::IssueKey(cmd) => self.issue(cmd),
            TenantCommand::RevokeKey(cmd) => self.revoke(&cmd),
            TenantCommand::RotateKey(cmd) => self.rotate(cmd),
            TenantCommand::Delete(cmd) => {
                self.live()?;
                Ok(vec![TenantEvent::TenantDeleted { deleted_at: cmd.at }])
            }
            TenantCommand::ChangeSettings(cmd) => self.change_settings(cmd),
            TenantCommand::ChangeDetails(cmd) => self.change_details(cmd),
        }
    }

    fn change_details(&self, cmd: ChangeDetails) -> Result<Vec<TenantEvent>, TenantError> {
        let state = self.live()?;
        let uid = cmd.uid.filter(|u| *u != state.uid);
        let metadata = cmd.metadata.filter(|m| *m != state.metadata);
        if uid.is_none() && metadata.is_none() {
            return Ok(vec![]);
        }
        Ok(vec![TenantEvent::TenantDetailsChanged {
            uid,
            metadata,
            changed_at: cmd.at,
        }])
    }

    fn change_settings(&self, cmd: ChangeSettings) -> Result<Vec<TenantEvent>, TenantError> {
        let state = self.live()?;
        let strict_event_types = cmd
            .changes
            .strict_event_types
            .filter(|s| *s != state.settings.strict_event_types);
        if strict_event_types.is_none() {
            return Ok(vec![]);
        }
        Ok(vec![TenantEvent::TenantSettingsChanged {
            strict_event_types,
            changed_at: cmd.at,
        }])
    }

    fn issue(&self, cmd: IssueApiKey) -> Result<Vec<TenantEvent>, TenantError> {
        let state = self.live()?;
        if state.key(cmd.key_id).is_some() {
            return Err(TenantError::KeyExists);
        }
        let active = state.keys.iter().filter(|k| k.works_at(cmd.at)).count();
        if active >= MAX_ACTIVE_KEYS {
            return Err(TenantError::TooManyKeys(active));
        }
        Ok(vec![issued(cmd)])
    }

    fn rotate(&self, cmd: RotateApiKey) -> Result<Vec<TenantEvent>, TenantError> {
        let state = self.live()?;
        let old = state.key(cmd.old_key_id).ok_or(TenantError::KeyNotFound)?;
        if old.revoked_from.is_some() {
            return Err(TenantError::KeyRetiring);
        }
        let revoke = RevokeApiKey {
            key_id: cmd.old_key_id,
            effective_at: cmd.old_until,
            at: cmd.at,
        };
        // Checked first: a rotation that cannot revoke issues nothing.
        let mut revoked = self.revoke(&revoke)?;
        let mut events = self.issue(cmd.new_key)?;
        events.append(&mut revoked);
        Ok(events)
    }

    fn revoke(&self, cmd: &RevokeApiKey) -> Result<Vec<TenantEvent>, TenantError> {
        let state = self.live()?;
        let key = state.key(cmd.key_id).ok_or(TenantError::KeyNotFound)?;
        if cmd.effective_at < cmd.at {
            return Err(TenantError::RevocationInThePast);
        }
        // Already refused from then on (or earlier): nothing changes.
        if key
            .revoked_from
            .is_some_and(|from| from <= cmd.effective_at)
        {
            return Ok(vec![]);
        }
        Ok(vec![TenantEvent::ApiKeyRevoked {
            key_id: cmd.key_id,
            revoked_at: cmd.at,
            effective_at: cmd.effective_at,
        }])
    }

    /// Applies one event to the state.
    pub fn apply_event(&mut self, event: TenantEvent) {
        if let TenantEvent::TenantCreated {
            tenant_id,
            name,
            created_at,
            uid,
            metadata,
        } = event
        {
            self.state = Some(TenantState {
                id: tenant_id,
                name,
                status: TenantStatus::Active,
                keys: vec![],
                settings: TenantSettings::default(),
                created_at,
                updated_at: created_at,
                uid,
                metadata: metadata.unwrap_or_default(),
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        // Never backwards: events of one command may carry times read a
        // moment apart (a key issued with its tenant).
        state.updated_at = state.updated_at.max(event.occurred_at());
        match event {
            TenantEvent::TenantCreated { .. } => {}
            TenantEvent::TenantRenamed { name, .. } => state.name = name,
            TenantEvent::ApiKeyIssued {
                key_id,
                key_hash,
                hint,
                issued_at,
            } => state.keys.push(ApiKeyState {
                key_id,
                key_hash,
                hint,
                issued_at,
                revoked_from: None,
            }),
            TenantEvent::ApiKeyRevoked {
                key_id,
                effective_at,
                ..
            } => {
                if let Some(key) = state.keys.iter_mut().find(|k| k.key_id == key_id) {
                    key.revoked_from = Some(effective_at);
                }
            }
            TenantEvent::TenantDeleted { .. } => state.status = TenantStatus::Deleted,
            TenantEvent::TenantSettingsChanged {
                strict_event_types, ..
            } => {
                if let Some(strict) = strict_event_types {
                    state.settings.strict_event_types = strict;
                }
            }
            TenantEvent::TenantDetailsChanged { uid, metadata, .. } => {
                if let Some(uid) = uid {
                    state.uid = uid;
                }
                if let Some(metadata) = metadata {
                    state.metadata = metadata;
                }
            }
        }
    }
}

fn issued(cmd: IssueApiKey) -> TenantEvent {
    TenantEvent::ApiKeyIssued {
        key_id: cmd.key_id,
        key_hash: cmd.key_hash,
        hint: cmd.hint,
        issued_at: cmd.at,
    }
}

impl Aggregate for Tenant {
    const TYPE: &'static str = "Tenant";
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;
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
