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
    if !events
        .iter()
        .any(|e| lists_deliveries(e) || holds_outcomes(e))
    {
        return Ok(events);
    }
    let mut out = Vec::with_capacity(events.len() * 2);
    for event in events {
        let enqueued = delivery_events_of(&event)?;
        if !holds_outcomes(&event) {
            out.push(event);
        }
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
        let enqueued = delivery_events_of(&row)?;
        let own = usize::from(!holds_outcomes(&row));
        if !page.is_empty() && page.len() + own + enqueued.len() > limit {
            break;
        }
        if own == 1 {
            page.push(row);
        }
        page.extend(enqueued);
    }
    Ok(page)
}

/// The `Message` event that holds the first outcomes of deliveries it
/// lists (ADR 0023): each entry is the event its delivery would have
/// stored at sequence 2.
pub const DELIVERIES_ATTEMPTED: &str = "DeliveriesAttempted";

/// The version of [`DELIVERIES_ATTEMPTED`].
pub const ATTEMPTED_VERSION: &str = "1.0";

#[derive(serde::Deserialize)]
struct Attempted<'a> {
    #[serde(borrow)]
    outcomes: Vec<AttemptedEntry<'a>>,
}

#[derive(serde::Deserialize)]
struct AttemptedEntry<'a> {
    delivery_id: String,
    event_type: String,
    event_version: String,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

/// Whether `event` is a message event holding first outcomes.
pub fn holds_outcomes(event: &StoredEvent) -> bool {
    event.aggregate_type == Message::TYPE && event.event_type == DELIVERIES_ATTEMPTED
}

/// The sequence-2 events of the deliveries a `DeliveriesAttempted` row
/// holds, at the row's place, with its metadata (and so its chain link,
/// which their later events follow); empty for any other event.
///
/// # Errors
/// A `DeliveriesAttempted` row that does not have its shape.
pub fn outcomes_of(row: &StoredEvent) -> Result<Vec<StoredEvent>, serde_json::Error> {
    if !holds_outcomes(row) {
        return Ok(Vec::new());
    }
    let attempted: Attempted<'_> = row.payload.parse()?;
    Ok(attempted
        .outcomes
        .into_iter()
        .map(|entry| StoredEvent {
            position: row.position,
            tx_id: row.tx_id,
            aggregate_type: Delivery::TYPE.to_string(),
            aggregate_id: entry.delivery_id,
            sequence: 2,
            event_type: entry.event_type,
            event_version: entry.event_version,
            payload: StoredJson::from_log_text(entry.payload.get().to_owned()),
            metadata: row.metadata.clone(),
            recorded_at: row.recorded_at,
        })
        .collect())
}

/// The delivery events a `Message` row stands for, as readers of the log
/// see them: the beginnings of the deliveries a listing message lists
/// (ADR 0019), the first outcomes a `DeliveriesAttempted` holds
/// (ADR 0023), nothing for another row.
///
/// # Errors
/// A row of either kind that does not have its shape.
pub fn delivery_events_of(row: &StoredEvent) -> Result<Vec<StoredEvent>, serde_json::Error> {
    if holds_outcomes(row) {
        outcomes_of(row)
    } else {
        enqueued_of(row)
    }
}

/// The most deliveries a message may list for their first outcomes to be
/// gathered into its rows.
pub const MAX_GATHERED: usize = 16;

/// Whether the first outcomes of the deliveries a message lists are
/// gathered into its `DeliveriesAttempted` rows: when it lists several
/// and at most [`MAX_GATHERED`] (`count`, its list's length). A message's
/// list never changes, so every writer decides the same for each
/// delivery. A message of one delivery gains nothing from it; one of
/// many would have each append and each load of its deliveries read all
/// its outcomes so far (a fan-out of 500 fell behind its backlog bound).
/// Their deliveries keep rows of their own.
pub fn gathers_outcomes(count: usize) -> bool {
    (2..=MAX_GATHERED).contains(&count)
}

/// The messages whose `DeliveriesAttempted` may take rows of `rows`:
/// see [`gather_first_outcomes`].
pub fn first_outcome_messages(rows: &[crate::audit::chain::Unlinked]) -> Vec<String> {
    let mut messages: Vec<String> = gatherable(rows).map(|(_, m)| m.1).collect();
    messages.sort_unstable();
    messages.dedup();
    messages
}

fn gatherable(
    rows: &[crate::audit::chain::Unlinked],
) -> impl Iterator<Item = (usize, crate::audit::chain::AggregateKey)> + '_ {
    rows.iter().enumerate().filter_map(|(i, row)| {
        if row.aggregate_type != Delivery::TYPE || row.sequence != 2 {
            return None;
        }
        listing_message(&(row.aggregate_type.clone(), row.aggregate_id.clone())).map(|m| (i, m))
    })
}

/// The deliveries whose first outcomes a stored `DeliveriesAttempted`'s
/// payload (its text) holds.
///
/// # Errors
/// A payload that does not have its shape.
pub fn attempted_in(payload: &str) -> Result<Vec<String>, serde_json::Error> {
    let attempted: Attempted<'_> = serde_json::from_str(payload)?;
    Ok(attempted
        .outcomes
        .into_iter()
        .map(|o| o.delivery_id)
        .collect())
}

/// Whether `row` is a `DeliveriesAttempted` about to be appended.
pub fn holds_outcomes_row(row: &crate::audit::chain::Unlinked) -> bool {
    row.aggregate_type == Message::TYPE && row.event_type == DELIVERIES_ATTEMPTED
}

/// The deliveries whose first outcomes `row` (a `DeliveriesAttempted`
/// about to be appended) holds.
pub fn attempted_ids(row: &crate::audit::chain::Unlinked) -> Vec<String> {
    row.payload["outcomes"]
        .as_array()
        .map(|outcomes| {
            outcomes
                .iter()
                .filter_map(|o| o["delivery_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `rows` with the first outcomes (sequence 2) of listed deliveries
/// gathered into one `DeliveriesAttempted` per message, at the sequence
/// `next` gives for it (the message's newest stored sequence plus one;
/// a message missing from `next` keeps its deliveries' rows).
pub fn gather_first_outcomes(
    rows: Vec<crate::audit::chain::Unlinked>,
    next: &std::collections::HashMap<String, i64>,
) -> Vec<crate::audit::chain::Unlinked> {
    use std::collections::HashMap;
    let chosen: HashMap<usize, String> = gatherable(&rows)
        .filter(|(_, m)| next.contains_key(&m.1))
        .map(|(i, m)| (i, m.1))
        .collect();
    if chosen.is_empty() {
        return rows;
    }
    // A row per message and metadata: every outcome a row holds has the
    // row's metadata (a message's first outcomes recorded together share
    // it).
    let mut others = Vec::with_capacity(rows.len());
    let mut groups: Vec<(String, Vec<crate::audit::chain::Unlinked>)> = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        match chosen.get(&i) {
            None => others.push(row),
            Some(message) => match groups
                .iter_mut()
                .find(|(m, g)| m == message && g[0].metadata == row.metadata)
            {
                Some((_, group)) => group.push(row),
                None => groups.push((message.clone(), vec![row])),
            },
        }
    }
    // The gathered rows first: a delivery's later events in the batch
    // follow their links.
    let mut kept = Vec::with_capacity(groups.len() + others.len());
    let mut sequences: HashMap<String, i64> = HashMap::new();
    for (message, group) in groups {
        let sequence = sequences
            .entry(message.clone())
            .or_insert_with(|| next.get(&message).copied().unwrap_or(2));
        let metadata = group[0].metadata.clone();
        let outcomes: Vec<serde_json::Value> = group
            .into_iter()
            .map(|row| {
                serde_json::json!({
                    "delivery_id": row.aggregate_id,
                    "event_type": row.event_type,
                    "event_version": row.event_version,
                    "payload": row.payload,
                })
            })
            .collect();
        kept.push(crate::audit::chain::Unlinked {
            aggregate_type: Message::TYPE.to_string(),
            sequence: *sequence,
            aggregate_id: message,
            event_type: DELIVERIES_ATTEMPTED.to_string(),
            event_version: ATTEMPTED_VERSION.to_string(),
            payload: serde_json::json!({ "outcomes": outcomes }),
            metadata,
            payload_text: None,
        });
        *sequence += 1;
    }
    kept.extend(others);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{link_all, stored_link, Unlinked};
    use hookline_domain::{DeliveryId, EventId};
    use serde_json::json;
    use std::collections::HashMap;
    use uuid::Uuid;

    fn message() -> EventId {
        EventId::listing(Uuid::now_v7())
    }

    fn outcome(delivery: &str, sequence: i64, kind: &str, request: &str) -> Unlinked {
        Unlinked {
            aggregate_type: Delivery::TYPE.to_string(),
            aggregate_id: delivery.to_string(),
            sequence,
            event_type: kind.to_string(),
            event_version: "1.0".to_string(),
            payload: json!({"type": kind, "status_code": 200}),
            metadata: json!({"request_id": request}),
            payload_text: None,
        }
    }

    fn stored(row: &Unlinked, position: i64) -> StoredEvent {
        StoredEvent {
            position,
            tx_id: 9,
            aggregate_type: row.aggregate_type.clone(),
            aggregate_id: row.aggregate_id.clone(),
            sequence: row.sequence,
            event_type: row.event_type.clone(),
            event_version: row.event_version.clone(),
            payload: StoredJson::from_value(&row.payload).unwrap(),
            metadata: StoredJson::from_value(&row.metadata).unwrap(),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_messages_first_outcomes_are_one_row_that_readers_see_as_theirs() {
        let m = message();
        let (a, b, c) = (
            m.listed_delivery(0).unwrap().to_string(),
            m.listed_delivery(1).unwrap().to_string(),
            m.listed_delivery(2).unwrap().to_string(),
        );
        let other = DeliveryId::from_uuid(Uuid::now_v7()).to_string();
        let rows = vec![
            outcome(&a, 2, "DeliverySucceeded", "r1"),
            outcome(&other, 2, "DeliverySucceeded", "r2"),
            outcome(&b, 2, "AttemptFailed", "r1"),
            // A later event of the same delivery stays a row of its own.
            outcome(&b, 3, "DeliveryAbandoned", "r1"),
            // Another metadata: another row of the message.
            outcome(&c, 2, "DeliverySucceeded", "r3"),
            // Not a first outcome.
            outcome(&c, 4, "DeliverySucceeded", "r1"),
        ];
        assert_eq!(first_outcome_messages(&rows), [m.to_string()]);
        let next = HashMap::from([(m.to_string(), 2)]);
        let mut gathered = gather_first_outcomes(rows, &next);
        // The gathered rows come first, at the message's next sequences.
        let kinds: Vec<(&str, i64, &str)> = gathered
            .iter()
            .map(|r| (r.aggregate_type.as_str(), r.sequence, r.event_type.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("Message", 2, DELIVERIES_ATTEMPTED),
                ("Message", 3, DELIVERIES_ATTEMPTED),
                ("Delivery", 2, "DeliverySucceeded"),
                ("Delivery", 3, "DeliveryAbandoned"),
                ("Delivery", 4, "DeliverySucceeded"),
            ]
        );
        assert_eq!(attempted_ids(&gathered[0]), [a.clone(), b.clone()]);
        assert_eq!(attempted_ids(&gathered[1]), std::slice::from_ref(&c));
        assert_eq!(gathered[0].metadata, json!({"request_id": "r1"}));
        assert!(holds_outcomes_row(&gathered[0]) && !holds_outcomes_row(&gathered[2]));

        // Readers see each outcome at sequence 2 of its delivery, at the
        // row's place, with its metadata and link; not the row itself.
        link_all(&mut gathered, &HashMap::new());
        let row = stored(&gathered[0], 7);
        assert_eq!(
            attempted_in(row.payload.as_str()).unwrap(),
            [a.clone(), b.clone()]
        );
        let seen = expand(vec![row.clone()]).unwrap();
        let seen: Vec<(&str, i64, &str, i64)> = seen
            .iter()
            .map(|e| {
                (
                    e.aggregate_id.as_str(),
                    e.sequence,
                    e.event_type.as_str(),
                    e.position,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (a.as_str(), 2, "DeliverySucceeded", 7),
                (b.as_str(), 2, "AttemptFailed", 7)
            ]
        );
        let outcomes = outcomes_of(&row).unwrap();
        assert_eq!(
            outcomes[1].payload.to_value(),
            json!({"type": "AttemptFailed", "status_code": 200})
        );
        assert_eq!(
            crate::audit::chain::stored_link_of(&outcomes[1].metadata).as_deref(),
            stored_link(&gathered[0].metadata)
        );
        // A page never cuts among them.
        assert_eq!(expand_page(vec![row.clone()], 1).unwrap().len(), 2);
        // Another event stands for none.
        assert!(outcomes_of(&stored(&gathered[2], 8)).unwrap().is_empty());
    }

    #[test]
    fn messages_of_two_to_sixteen_deliveries_gather_their_first_outcomes() {
        assert!(!gathers_outcomes(0) && !gathers_outcomes(1));
        assert!(gathers_outcomes(2) && gathers_outcomes(MAX_GATHERED));
        assert!(!gathers_outcomes(MAX_GATHERED + 1) && !gathers_outcomes(500));
    }

    #[test]
    fn outcomes_of_a_message_the_append_does_not_know_stay_rows_of_their_own() {
        let m = message();
        let a = m.listed_delivery(0).unwrap().to_string();
        let rows = vec![outcome(&a, 2, "DeliverySucceeded", "r1")];
        let kept = gather_first_outcomes(rows, &HashMap::new());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].aggregate_type, Delivery::TYPE);
    }
}
