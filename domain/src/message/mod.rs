//! The Message aggregate: one published business event, with the body its
//! deliveries send, stored once however many subscriptions receive it.
//! Deliveries refer to it by its id (the event id).

use crate::{EventId, EventType, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

pub const MESSAGE_PUBLISHED: &str = "MessagePublished";

#[derive(Debug, Clone, PartialEq)]
pub enum MessageCommand {
    Publish(PublishMessage),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublishMessage {
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub event_type: EventType,
    /// The request body receivers get, serialised once and sent
    /// byte-identical on every attempt.
    pub body: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MessageEvent {
    MessagePublished {
        event_id: EventId,
        tenant_id: TenantId,
        event_type: EventType,
        body: String,
        published_at: DateTime<Utc>,
    },
}

impl DomainEvent for MessageEvent {
    fn event_type(&self) -> String {
        MESSAGE_PUBLISHED.to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    #[error("the message was already published")]
    AlreadyPublished,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageState {
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub event_type: EventType,
    pub body: String,
    pub published_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    state: Option<MessageState>,
}

impl Message {
    pub fn state(&self) -> Option<&MessageState> {
        self.state.as_ref()
    }

    /// The publish decision as a plain function, for publishing that
    /// appends the message and its deliveries in one transaction.
    pub fn publish_new(cmd: PublishMessage) -> MessageEvent {
        MessageEvent::MessagePublished {
            event_id: cmd.event_id,
            tenant_id: cmd.tenant_id,
            event_type: cmd.event_type,
            body: cmd.body,
            published_at: cmd.at,
        }
    }

    /// # Errors
    /// When the message exists already.
    pub fn decide(&self, command: MessageCommand) -> Result<Vec<MessageEvent>, MessageError> {
        match command {
            MessageCommand::Publish(cmd) => {
                if self.state.is_some() {
                    return Err(MessageError::AlreadyPublished);
                }
                Ok(vec![Self::publish_new(cmd)])
            }
        }
    }

    pub fn apply_event(&mut self, event: MessageEvent) {
        let MessageEvent::MessagePublished {
            event_id,
            tenant_id,
            event_type,
            body,
            published_at,
        } = event;
        self.state = Some(MessageState {
            event_id,
            tenant_id,
            event_type,
            body,
            published_at,
        });
    }
}

impl Aggregate for Message {
    const TYPE: &'static str = "Message";
    type Command = MessageCommand;
    type Event = MessageEvent;
    type Error = MessageError;
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
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    #[test]
    fn a_message_is_published_once() {
        let cmd = PublishMessage {
            event_id: EventId::from_uuid(Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            event_type: EventType::parse("a.b", "event_type").unwrap(),
            body: "{}".into(),
            at: DateTime::UNIX_EPOCH,
        };
        let published = Message::publish_new(cmd.clone());
        TestFramework::<Message>::with(())
            .given_no_previous_events()
            .when(MessageCommand::Publish(cmd.clone()))
            .then_expect_events(vec![published.clone()]);
        TestFramework::<Message>::with(())
            .given(vec![published])
            .when(MessageCommand::Publish(cmd))
            .then_expect_error(MessageError::AlreadyPublished);
    }
}
