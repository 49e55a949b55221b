//! The Message aggregate: one published business event, with the body its
//! deliveries send, stored once however many subscriptions receive it.
//! Deliveries refer to it by its id (the event id).
//!
//! A message published with the client's own id (`uid`, Svix's `eventId`)
//! gets an id derived from the tenant and that uid, so publishing the same
//! uid twice collides on the message's first event: the log itself keeps
//! such uids unique per tenant.

use crate::channel::Channels;
use crate::uid::Uid;
use crate::{DeliveryId, EventId, EventType, SubscriptionId, TenantId};
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
    pub channels: Option<Channels>,
    pub uid: Option<Uid>,
    /// The deliveries it lists (1.2), when its id can list them.
    pub deliveries: Option<Vec<ListedDelivery>>,
    pub at: DateTime<Utc>,
}

/// The published `data` inside a message's body (Hookline's envelope),
/// exactly as it was sent: what a `raw` subscription receives. `None` for a
/// body that is not an envelope.
pub fn envelope_data(body: &str) -> Option<&str> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        data: &'a serde_json::value::RawValue,
    }
    // serde reads a struct from a JSON array too (`[1]`); an envelope is
    // an object.
    if !body.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<Envelope<'_>>(body)
        .ok()
        .map(|e| e.data.get())
}

/// The id of the message a tenant publishes under its own `uid`: a
/// UUIDv8 of the SHA-256 of both, the same on every try.
pub fn message_id_for_uid(tenant: TenantId, uid: &Uid) -> EventId {
    EventId::from_uuid(crate::ids::digest_uuid(&format!(
        "hookline-message:{tenant}:{}",
        uid.as_str()
    )))
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
        /// 1.1: the channels the message was published on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channels: Option<Channels>,
        /// 1.1: the client's id of the event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<Uid>,
        /// 1.2: the deliveries publishing made (ADR 0019), each one's
        /// creation recorded here instead of in a `DeliveryEnqueued` of its
        /// own. Readers of the log see each as a `DeliveryEnqueued` 2.0 at
        /// sequence 1 of its delivery.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deliveries: Option<Vec<ListedDelivery>>,
    },
}

/// A delivery a message's event lists: its id is the message's
/// ([`EventId::listed_delivery`] of its place in the list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedDelivery {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    /// The subscription's URL when the message was published.
    pub url: String,
    /// Its subscription was disabled: the delivery is skipped (its
    /// `DeliverySkipped` follows in the same append), not attempted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl DomainEvent for MessageEvent {
    fn event_type(&self) -> String {
        MESSAGE_PUBLISHED.to_string()
    }

    fn event_version(&self) -> String {
        let Self::MessagePublished {
            channels,
            uid,
            deliveries,
            ..
        } = self;
        if deliveries.is_some() {
            "1.2"
        } else if channels.is_some() || uid.is_some() {
            "1.1"
        } else {
            "1.0"
        }
        .to_string()
    }
}

/// The deliveries a message with id `message` lists for `targets`
/// (subscription, URL and whether it is skipped, in order): `None` when
/// its id cannot list them (then each gets a `DeliveryEnqueued` of its
/// own).
pub fn list_deliveries(
    message: EventId,
    targets: impl IntoIterator<Item = (SubscriptionId, String, bool)>,
) -> Option<Vec<ListedDelivery>> {
    targets
        .into_iter()
        .enumerate()
        .map(|(i, (subscription_id, url, skipped))| {
            Some(ListedDelivery {
                id: message.listed_delivery(i)?,
                subscription_id,
                url,
                skipped,
            })
        })
        .collect()
}

/// What readers of the log need of a `MessagePublished` to see the
/// deliveries it lists, read without its body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageListing {
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub event_type: EventType,
    pub published_at: DateTime<Utc>,
    #[serde(default)]
    pub deliveries: Option<Vec<ListedDelivery>>,
}

impl MessageListing {
    /// The `DeliveryEnqueued` 2.0 that begins each delivery a 1.2 message
    /// lists (enqueued and due when the message was published); empty for
    /// earlier versions. A listed id other than the one its place gives is
    /// left out: Hookline never writes one, and a delivery is only ever
    /// found through the id its message names.
    pub fn enqueued(&self) -> Vec<(DeliveryId, crate::delivery::DeliveryEvent)> {
        self.enqueued_where(|_| true)
    }

    /// [`Self::enqueued`] of the listed deliveries `wanted` accepts only.
    pub fn enqueued_where(
        &self,
        wanted: impl Fn(&ListedDelivery) -> bool,
    ) -> Vec<(DeliveryId, crate::delivery::DeliveryEvent)> {
        self.listed()
            .filter(|d| wanted(d))
            .map(|d| {
                let event = crate::delivery::DeliveryEvent::DeliveryEnqueued {
                    delivery_id: d.id,
                    tenant_id: self.tenant_id,
                    subscription_id: d.subscription_id,
                    event_id: self.event_id,
                    event_type: self.event_type.clone(),
                    url: d.url.clone(),
                    body: None,
                    enqueued_at: self.published_at,
                    next_attempt_at: self.published_at,
                };
                (d.id, event)
            })
            .collect()
    }

    /// How many deliveries the message lists: its list's length (an entry
    /// whose id is not the one its place gives counts too; the count
    /// Postgres gives for the stored list).
    pub fn listed_count(&self) -> usize {
        self.deliveries.as_ref().map_or(0, Vec::len)
    }

    /// The listed deliveries each at the place its id gives.
    pub fn listed(&self) -> impl Iterator<Item = &ListedDelivery> {
        self.deliveries
            .iter()
            .flatten()
            .enumerate()
            .filter(|(i, d)| self.event_id.listed_delivery(*i) == Some(d.id))
            .map(|(_, d)| d)
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
    #[serde(default)]
    pub channels: Option<Channels>,
    #[serde(default)]
    pub uid: Option<Uid>,
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
            channels: cmd.channels,
            uid: cmd.uid,
            deliveries: cmd.deliveries,
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
            channels,
            uid,
            deliveries: _,
        } = event;
        self.state = Some(MessageState {
            event_id,
            tenant_id,
            event_type,
            body,
            published_at,
            channels,
            uid,
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
            channels: None,
            uid: None,
            deliveries: None,
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

    #[test]
    fn raw_data_is_cut_from_the_envelope_byte_for_byte() {
        let body = r#"{"id":"x","timestamp":"t","event":"a.b","data":{"z": 1, "a":"\u00e9", "n":1.50},"tenant_id":"t"}"#;
        assert_eq!(
            envelope_data(body),
            Some(r#"{"z": 1, "a":"\u00e9", "n":1.50}"#)
        );
        assert_eq!(envelope_data("[1]"), None);
        assert_eq!(envelope_data("{}"), None);
    }

    #[test]
    fn uid_messages_have_stable_ids_per_tenant_and_version_1_1() {
        let t1 = TenantId::from_uuid(Uuid::from_u128(1));
        let t2 = TenantId::from_uuid(Uuid::from_u128(2));
        let uid = Uid::parse("evt-1", "eventId").unwrap();
        assert_eq!(message_id_for_uid(t1, &uid), message_id_for_uid(t1, &uid));
        assert_ne!(message_id_for_uid(t1, &uid), message_id_for_uid(t2, &uid));
        assert_eq!(message_id_for_uid(t1, &uid).as_uuid().get_version_num(), 8);
        let event = Message::publish_new(PublishMessage {
            event_id: message_id_for_uid(t1, &uid),
            tenant_id: t1,
            event_type: EventType::parse("a.b", "event_type").unwrap(),
            body: "{}".into(),
            channels: Some(Channels::parse(&["eu"], "channels").unwrap()),
            uid: Some(uid),
            deliveries: None,
            at: DateTime::UNIX_EPOCH,
        });
        assert_eq!(event.event_version(), "1.1");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["channels"], serde_json::json!(["eu"]));
        assert_eq!(json["uid"], "evt-1");
    }

    #[test]
    fn a_listing_message_is_1_2_and_begins_each_delivery_it_lists() {
        let id = EventId::listing(Uuid::now_v7());
        let sub = |n| SubscriptionId::from_uuid(Uuid::from_u128(n));
        let deliveries = list_deliveries(
            id,
            [
                (sub(1), "https://a/".into(), false),
                (sub(2), "https://b/".into(), false),
            ],
        );
        let event = Message::publish_new(PublishMessage {
            event_id: id,
            tenant_id: TenantId::from_uuid(Uuid::from_u128(9)),
            event_type: EventType::parse("a.b", "event_type").unwrap(),
            body: "{}".into(),
            channels: None,
            uid: None,
            deliveries,
            at: DateTime::UNIX_EPOCH,
        });
        assert_eq!(event.event_version(), "1.2");
        let json = serde_json::to_string(&event).unwrap();
        let listing: MessageListing = serde_json::from_str(&json).unwrap();
        let enqueued = listing.enqueued();
        assert_eq!(enqueued.len(), 2);
        let crate::delivery::DeliveryEvent::DeliveryEnqueued {
            delivery_id,
            subscription_id,
            url,
            event_id,
            body,
            ..
        } = &enqueued[1].1
        else {
            panic!("not an enqueue: {enqueued:?}");
        };
        assert_eq!(*delivery_id, id.listed_delivery(1).unwrap());
        assert_eq!(delivery_id.listing_message(), Some(id));
        assert_eq!((*subscription_id, url.as_str()), (sub(2), "https://b/"));
        assert_eq!((*event_id, body), (id, &None));
        // The shape round-trips, and an empty list is still a listing.
        assert_eq!(serde_json::from_str::<MessageEvent>(&json).unwrap(), event);
        assert_eq!(list_deliveries(id, []), Some(vec![]));
        // An id that cannot list gives no list.
        let random = EventId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001));
        assert_eq!(
            list_deliveries(random, [(sub(1), "https://a/".into(), false)]),
            None
        );
    }

    #[test]
    fn a_listed_id_out_of_its_place_begins_no_delivery() {
        let id = EventId::listing(Uuid::now_v7());
        let event = MessageEvent::MessagePublished {
            event_id: id,
            tenant_id: TenantId::from_uuid(Uuid::from_u128(9)),
            event_type: EventType::parse("a.b", "event_type").unwrap(),
            body: "{}".into(),
            published_at: DateTime::UNIX_EPOCH,
            channels: None,
            uid: None,
            deliveries: Some(vec![ListedDelivery {
                id: id.listed_delivery(3).unwrap(),
                subscription_id: SubscriptionId::from_uuid(Uuid::from_u128(1)),
                url: "https://a/".into(),
                skipped: false,
            }]),
        };
        let json = serde_json::to_string(&event).unwrap();
        let listing: MessageListing = serde_json::from_str(&json).unwrap();
        assert!(listing.enqueued().is_empty());
    }
}
