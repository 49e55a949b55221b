//! The Operators aggregate: the organisation's operator API keys, which act
//! for every tenant (as the admin token does) on the Svix-compatible API.
//! There is one such aggregate, [`OPERATORS_ID`]. Keys are stored as
//! SHA-256 digests only, like tenant keys.

use crate::validation::check_free_text;
use crate::ValidationError;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of the one Operators aggregate.
pub const OPERATORS_ID: &str = "operators";
/// Most operator keys that work at once.
pub const MAX_OPERATOR_KEYS: usize = 20;
/// Longest key name.
pub const MAX_KEY_NAME_CHARS: usize = 100;

pub const OPERATOR_KEY_ISSUED: &str = "OperatorKeyIssued";
pub const OPERATOR_KEY_REVOKED: &str = "OperatorKeyRevoked";

/// What an operator key is for (`svix-migration`), 1–100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyName(String);

impl KeyName {
    /// # Errors
    /// A [`ValidationError`] on `name`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let name = s.trim();
        if name.is_empty() {
            return Err(ValidationError::new("name", "must not be empty"));
        }
        check_free_text("name", name, MAX_KEY_NAME_CHARS)?;
        if name.contains('\n') || name.contains('\t') {
            return Err(ValidationError::new("name", "must be one line"));
        }
        crate::validation::check_name("name", name)?;
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OperatorCommand {
    Issue(IssueOperatorKey),
    Revoke(RevokeOperatorKey),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IssueOperatorKey {
    pub key_id: Uuid,
    pub name: KeyName,
    /// Hex SHA-256 of the key (never the key).
    pub key_hash: String,
    pub hint: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RevokeOperatorKey {
    pub key_id: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OperatorEvent {
    OperatorKeyIssued {
        key_id: Uuid,
        name: KeyName,
        key_hash: String,
        hint: String,
        issued_at: DateTime<Utc>,
    },
    OperatorKeyRevoked {
        key_id: Uuid,
        revoked_at: DateTime<Utc>,
    },
}

impl DomainEvent for OperatorEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OperatorKeyIssued { .. } => OPERATOR_KEY_ISSUED,
            Self::OperatorKeyRevoked { .. } => OPERATOR_KEY_REVOKED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("there is no such operator key")]
    KeyNotFound,
    #[error("the operator key id is already taken")]
    KeyExists,
    #[error("{0} operator keys already work; revoke one first")]
    TooManyKeys(usize),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorKeyState {
    pub key_id: Uuid,
    pub name: KeyName,
    pub key_hash: String,
    pub hint: String,
    pub issued_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Operators {
    keys: Vec<OperatorKeyState>,
}

impl Operators {
    /// Every key ever issued, oldest first.
    pub fn keys(&self) -> &[OperatorKeyState] {
        &self.keys
    }

    /// The working key with this digest.
    pub fn find(&self, key_hash: &str) -> Option<&OperatorKeyState> {
        self.keys
            .iter()
            .find(|k| k.revoked_at.is_none() && k.key_hash == key_hash)
    }

    /// # Errors
    /// An [`OperatorError`] when the command is not allowed.
    pub fn decide(&self, command: OperatorCommand) -> Result<Vec<OperatorEvent>, OperatorError> {
        match command {
            OperatorCommand::Issue(cmd) => {
                if self.keys.iter().any(|k| k.key_id == cmd.key_id) {
                    return Err(OperatorError::KeyExists);
                }
                let working = self.keys.iter().filter(|k| k.revoked_at.is_none()).count();
                if working >= MAX_OPERATOR_KEYS {
                    return Err(OperatorError::TooManyKeys(working));
                }
                Ok(vec![OperatorEvent::OperatorKeyIssued {
                    key_id: cmd.key_id,
                    name: cmd.name,
                    key_hash: cmd.key_hash,
                    hint: cmd.hint,
                    issued_at: cmd.at,
                }])
            }
            OperatorCommand::Revoke(cmd) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.key_id == cmd.key_id)
                    .ok_or(OperatorError::KeyNotFound)?;
                if key.revoked_at.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![OperatorEvent::OperatorKeyRevoked {
                    key_id: cmd.key_id,
                    revoked_at: cmd.at,
                }])
            }
        }
    }

    pub fn apply_event(&mut self, event: OperatorEvent) {
        match event {
            OperatorEvent::OperatorKeyIssued {
                key_id,
                name,
                key_hash,
                hint,
                issued_at,
            } => self.keys.push(OperatorKeyState {
                key_id,
                name,
                key_hash,
                hint,
                issued_at,
                revoked_at: None,
            }),
            OperatorEvent::OperatorKeyRevoked { key_id, revoked_at } => {
                if let Some(k) = self.keys.iter_mut().find(|k| k.key_id == key_id) {
                    k.revoked_at = Some(revoked_at);
                }
            }
        }
    }
}

impl Aggregate for Operators {
    const TYPE: &'static str = "Operators";
    type Command = OperatorCommand;
    type Event = OperatorEvent;
    type Error = OperatorError;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(n: u128) -> OperatorCommand {
        OperatorCommand::Issue(IssueOperatorKey {
            key_id: Uuid::from_u128(n),
            name: KeyName::parse("svix").unwrap(),
            key_hash: format!("hash{n}"),
            hint: "hlo_…abcd".into(),
            at: DateTime::UNIX_EPOCH,
        })
    }

    fn fold(ops: &mut Operators, cmd: OperatorCommand) -> Result<(), OperatorError> {
        for e in ops.decide(cmd)? {
            ops.apply_event(e);
        }
        Ok(())
    }

    #[test]
    fn keys_are_issued_found_by_digest_and_revoked() {
        let mut ops = Operators::default();
        fold(&mut ops, issue(1)).unwrap();
        assert!(ops.find("hash1").is_some());
        assert_eq!(fold(&mut ops, issue(1)), Err(OperatorError::KeyExists));
        let revoke = OperatorCommand::Revoke(RevokeOperatorKey {
            key_id: Uuid::from_u128(1),
            at: DateTime::UNIX_EPOCH,
        });
        fold(&mut ops, revoke.clone()).unwrap();
        assert!(ops.find("hash1").is_none());
        assert!(ops.decide(revoke).unwrap().is_empty());
        let missing = OperatorCommand::Revoke(RevokeOperatorKey {
            key_id: Uuid::from_u128(9),
            at: DateTime::UNIX_EPOCH,
        });
        assert_eq!(ops.decide(missing), Err(OperatorError::KeyNotFound));
    }

    #[test]
    fn at_most_twenty_keys_work() {
        let mut ops = Operators::default();
        for n in 0..20 {
            fold(&mut ops, issue(n)).unwrap();
        }
        assert_eq!(
            fold(&mut ops, issue(99)),
            Err(OperatorError::TooManyKeys(20))
        );
        assert!(KeyName::parse("  ").is_err());
        assert!(KeyName::parse("a\nb").is_err());
    }
}
