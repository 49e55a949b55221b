//! Deliveries listed in their message's event (ADR 0019).
//!
//! Publishing a message whose id can list its deliveries stores one
//! `MessagePublished` 1.2 that lists them instead of one `DeliveryEnqueued`
//! per delivery. Readers of the log see what they saw before: after each
//! 1.2 message, the `DeliveryEnqueued` 2.0 of every delivery it lists, at
//! sequence 1 of that delivery, with the message's position, commit order,
//! metadata and chain link. A delivery's first stored event is its
//! sequence 2, chained from that link.

use crate::ports::{StoredEvent, StoredJson};
use cqrs_es::{Aggregate, DomainEvent};
use hookline_domain::delivery::Delivery;
use hookline_domain::message::{ListedDelivery, Message, MessageListing, MESSAGE_PUBLISHED};

/// The version of `MessagePublished` that lists deliveries.
pub const LISTING_VERSION: &str = "1.2";

/// Whether `event` is a message event listing deliveries.
pub fn lists_deliveries(event: &StoredEvent) -> bool {
    event.aggregate_type == Message::TYPE
        && event.event_type == MESSAGE_PUBLISHED
        && event.event_version == LISTING_VERSION
}

/// The listing of a message event that lists deliveries (`None` for any
/// other event), read without its body.
///
/// # Errors
/// A 1.2 message event that does not have its shape.
pub fn listing_of(message: &StoredEvent) -> Result<Option<MessageListing>, serde_json::Error> {
    if !lists_deliveries(message) {
        return Ok(None);
    }
    message.payload.parse().map(Some)
}

/// The `DeliveryEnqueued` each delivery a listing message lists begins
/// with, as stored events (empty for any other event).
///
/// # Errors
/// A 1.2 message event that does not have its shape.
pub fn enqueued_of(message: &StoredEvent) -> Result<Vec<StoredEvent>, serde_json::Error> {
    enqueued_of_some(message, |_| true)
}

/// [`enqueued_of`] of the deliveries `wanted` accepts only.
///
/// # Errors
/// A 1.2 message event that does not have its shape.
pub fn enqueued_of_some(
    message: &StoredEvent,
    wanted: impl Fn(&ListedDelivery) -> bool,
) -> Result<Vec<StoredEvent>, serde_json::Error> {
    match listing_of(message)? {
        Some(listing) => Ok(beginnings(message, &listing, wanted)),
        None => Ok(Vec::new()),
    }
}

/// The beginnings of `listing`'s deliveries `wanted` accepts, as events
/// of the log at `message`'s place. Their payloads are held typed: the
/// readers that fold them (the feed, the projection, the recorder's
/// loads) take the event without a text to write and parse again.
pub fn beginnings(
    message: &StoredEvent,
    listing: &MessageListing,
    wanted: impl Fn(&ListedDelivery) -> bool,
) -> Vec<StoredEvent> {
    listing
        .enqueued_where(wanted)
        .into_iter()
        .map(|(delivery_id, event)| StoredEvent {
            position: message.position,
            tx_id: message.tx_id,
            aggregate_type: Delivery::TYPE.to_string(),
            aggregate_id: delivery_id.to_string(),
            sequence: 1,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: StoredJson::typed(event),
            metadata: message.metadata.clone(),
            recorded_at: message.recorded_at,
        })
        .collect()
}

/// `events` as readers of the log see them: each listing message followed
/// by the `DeliveryEnqueued` of the deliveries it lists.
///
/// # Errors
/// A 1.2 message event that does not have its shape.
pub fn expand(events: Vec<StoredEvent>) -> Result<Vec<StoredEvent>, serde_json::Error> {
    if !events.iter().any(lists_deliveries) {
        return Ok(events);
    }
    let mut out = Vec::with_capacity(events.len() * 2);
    for event in events {
        let enqueued = enqueued_of(&event)?;
        out.push(event);
        out.extend(enqueued);
    }
    Ok(out)
}

/// The message whose event may begin the delivery `key` names (ADR 0019):
/// its link is the one a listed delivery's first stored event follows.
pub fn listing_message(
    key: &crate::audit::chain::AggregateKey,
) -> Option<crate::audit::chain::AggregateKey> {
    if key.0 != Delivery::TYPE {
        return None;
    }
    let message = hookline_domain::DeliveryId::parse(&key.1)
        .ok()?
        .listing_message()?;
    Some((Message::TYPE.to_string(), message.to_string()))
}

/// A page of at most `limit` events read from `rows` (stored rows in
/// order, at most `limit` of them): each listing message with the
/// `DeliveryEnqueued` of its deliveries, never cut among them (they share
/// its position, which pages continue after). A first message whose
/// deliveries alone pass `limit` is given whole.
///
/// # Errors
/// A 1.2 message event that does not have its shape.
pub fn expand_page(
    rows: Vec<StoredEvent>,
    limit: usize,
) -> Result<Vec<StoredEvent>, serde_json::Error> {
    let mut page: Vec<StoredEvent> = Vec::with_capacity(rows.len());
    for row in rows {
        let enqueued = enqueued_of(&row)?;
        if !page.is_empty() && page.len() + 1 + enqueued.len() > limit {
            break;
        }
        page.push(row);
        page.extend(enqueued);
    }
    Ok(page)
}
