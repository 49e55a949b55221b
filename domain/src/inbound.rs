//! The Inbound aggregate: one verified webhook a provider delivered to a
//! source, recorded exactly as received (`InboundReceived`), in the same
//! transaction as the event it published to the tenant's subscriptions.

use crate::source::SourceKind;
use crate::{EventId, EventType, InboundId, SourceId, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const INBOUND_RECEIVED: &str = "InboundReceived";

#[derive(Debug, Clone, PartialEq)]
pub enum InboundCommand {
    Receive(ReceiveInbound),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveInbound {
    pub inbound_id: InboundId,
    pub tenant_id: TenantId,
    pub source_id: SourceId,
    pub source_kind: SourceKind,
    /// The provider's id of this delivery (from a header or the body), or
    /// `sha256:<hex>` of the body when it gives none.
    pub delivery_id: String,
    pub event_type: EventType,
    /// The event published to the tenant's subscriptions; `None` when no
    /// active subscription listened to it.
    pub event_id: Option<EventId>,
    /// The request headers kept with it (never the one carrying a secret).
    pub headers: BTreeMap<String, String>,
    /// The body exactly as received.
    pub body: String,
    pub remote_addr: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum InboundEvent {
    InboundReceived {
        inbound_id: InboundId,
        tenant_id: TenantId,
        source_id: SourceId,
        source_kind: SourceKind,
        delivery_id: String,
        event_type: EventType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<EventId>,
        headers: BTreeMap<String, String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote_addr: Option<String>,
        received_at: DateTime<Utc>,
    },
}

impl DomainEvent for InboundEvent {
    fn event_type(&self) -> String {
        INBOUND_RECEIVED.to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("the inbound webhook was already recorded")]
    AlreadyRecorded,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    received: Option<InboundEvent>,
}

impl Inbound {
    pub fn received(&self) -> Option<&InboundEvent> {
        self.received.as_ref()
    }

    /// The decision as a plain function, for the append that records the
    /// webhook together with what it publishes.
    pub fn receive_new(cmd: ReceiveInbound) -> InboundEvent {
        InboundEvent::InboundReceived {
            inbound_id: cmd.inbound_id,
            tenant_id: cmd.tenant_id,
            source_id: cmd.source_id,
            source_kind: cmd.source_kind,
            delivery_id: cmd.delivery_id,
            event_type: cmd.event_type,
            event_id: cmd.event_id,
            headers: cmd.headers,
            body: cmd.body,
            remote_addr: cmd.remote_addr,
            received_at: cmd.at,
        }
    }

    /// # Errors
    /// When it was recorded already.
    pub fn decide(&self, command: InboundCommand) -> Result<Vec<InboundEvent>, InboundError> {
        match command {
            InboundCommand::Receive(cmd) => {
                if self.received.is_some() {
                    return Err(InboundError::AlreadyRecorded);
                }
                Ok(vec![Self::receive_new(cmd)])
            }
        }
    }
}

impl Aggregate for Inbound {
    const TYPE: &'static str = "Inbound";
    type Command = InboundCommand;
    type Event = InboundEvent;
    type Error = InboundError;
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
        self.received = Some(event);
    }
}
