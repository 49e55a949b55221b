//! Loading deliveries their message's event began (ADR 0019): such a
//! delivery has no stored first event, so its `DeliveryEnqueued` is read
//! from the message its id names.

use super::log_reader::{decode, COLUMNS};
use hookline_application::listing::{enqueued_of_some, outcomes_of};
use hookline_application::ports::StoredEvent;
use hookline_domain::DeliveryId;
use sqlx::PgExecutor;
use std::collections::{HashMap, HashSet};

/// The `DeliveryEnqueued` that begins each of `ids` (delivery ids) whose
/// message lists it, by delivery id. Ids no message lists are left out;
/// no query is made when none can be listed.
///
/// # Errors
/// Database errors, or a listing message that cannot be read.
pub async fn listed_beginnings<'e>(
    executor: impl PgExecutor<'e>,
    ids: impl IntoIterator<Item = &str>,
) -> Result<HashMap<String, StoredEvent>, sqlx::Error> {
    let wanted: HashSet<&str> = ids.into_iter().collect();
    let messages = listing_messages(wanted.iter().copied());
    if messages.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events
          WHERE aggregate_type = 'Message' AND aggregate_id = ANY($1) AND sequence = 1"
    ))
    .bind(&messages)
    .fetch_all(executor)
    .await?;
    let wanted: HashSet<DeliveryId> = wanted
        .iter()
        .filter_map(|id| DeliveryId::parse(id).ok())
        .collect();
    let mut found = HashMap::new();
    for row in &rows {
        let message = decode(row)?;
        // Only the deliveries asked for: a message may list thousands.
        let enqueued = enqueued_of_some(&message, |d| wanted.contains(&d.id))
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        for event in enqueued {
            found.insert(event.aggregate_id.clone(), event);
        }
    }
    Ok(found)
}

/// `events` of one or more deliveries (ordered by delivery and sequence)
/// with the `DeliveryEnqueued` of each of `ids` that has no stored first
/// event and whose message lists it, in its place: from `known` (the
/// beginnings the feed read in this process), else from the message.
///
/// # Errors
/// As [`listed_beginnings`].
pub async fn with_listed_beginnings<'e>(
    executor: impl PgExecutor<'e>,
    ids: &[String],
    events: Vec<StoredEvent>,
    known: Vec<StoredEvent>,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let begun: HashSet<&str> = events
        .iter()
        .chain(&known)
        .filter(|e| e.sequence == 1)
        .map(|e| e.aggregate_id.as_str())
        .collect();
    let missing: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| !begun.contains(id))
        .collect();
    let found = if missing.is_empty() {
        HashMap::new()
    } else {
        listed_beginnings(executor, missing).await?
    };
    if found.is_empty() && known.is_empty() {
        return Ok(events);
    }
    let mut all: Vec<StoredEvent> = events;
    all.extend(known);
    all.extend(found.into_values());
    all.sort_by(|a, b| {
        (a.aggregate_id.as_str(), a.sequence).cmp(&(b.aggregate_id.as_str(), b.sequence))
    });
    Ok(all)
}

/// SQL for the id of the message that may list the delivery whose id
/// (text) `id` is: its version nibble 7 and its last 32 bits clear (see
/// `DeliveryId::listing_message`; for another id it names no message).
pub fn listing_message_sql(id: &str) -> String {
    format!("overlay(overlay({id} placing '7' from 15 for 1) placing '00000000' from 29 for 8)")
}

/// The first outcomes (sequence 2) of `ids` (delivery ids) that their
/// messages' `DeliveriesAttempted` rows hold (ADR 0023), by delivery id.
/// No query is made when none can be listed.
///
/// # Errors
/// Database errors, or a row that cannot be read.
pub async fn listed_outcomes<'e>(
    executor: impl PgExecutor<'e>,
    ids: impl IntoIterator<Item = &str>,
) -> Result<HashMap<String, StoredEvent>, sqlx::Error> {
    let wanted: HashSet<&str> = ids.into_iter().collect();
    let messages = listing_messages(wanted.iter().copied());
    let mut found = HashMap::new();
    for row in later_rows(executor, &messages).await? {
        let outcomes = outcomes_of(&row).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        for event in outcomes {
            if wanted.contains(event.aggregate_id.as_str()) {
                found.insert(event.aggregate_id.clone(), event);
            }
        }
    }
    Ok(found)
}

/// The rows of `messages` after their first (their `DeliveriesAttempted`,
/// ADR 0023); no query for none.
///
/// # Errors
/// Database errors, or a row that cannot be read.
async fn later_rows<'e>(
    executor: impl PgExecutor<'e>,
    messages: &[String],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events
          WHERE aggregate_type = 'Message' AND aggregate_id = ANY($1) AND sequence > 1"
    ))
    .bind(messages)
    .fetch_all(executor)
    .await?;
    rows.iter().map(decode).collect()
}

/// `events` of one or more deliveries (ordered by delivery and sequence,
/// each begun) with the first outcome of each of `ids` that has no stored
/// sequence 2 and whose message's `DeliveriesAttempted` holds it, in its
/// place (ADR 0023).
///
/// # Errors
/// As [`listed_outcomes`].
pub async fn with_listed_outcomes<'e>(
    executor: impl PgExecutor<'e>,
    ids: &[String],
    events: Vec<StoredEvent>,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let messages = listing_messages(ids.iter().map(String::as_str));
    let rows = later_rows(executor, &messages).await?;
    with_outcomes_from(ids, events, &rows)
}

/// The ids of the messages that may list `ids` (delivery ids), sorted.
pub fn listing_messages<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut messages: Vec<String> = ids
        .into_iter()
        .filter_map(|id| DeliveryId::parse(id).ok()?.listing_message())
        .map(|m| m.to_string())
        .collect();
    messages.sort_unstable();
    messages.dedup();
    messages
}

/// `events` (see [`with_listed_outcomes`]) with the first outcomes of
/// `ids` that `message_rows` (their messages' rows after the first) hold,
/// for those without a stored sequence 2.
///
/// # Errors
/// A row that cannot be read.
pub fn with_outcomes_from(
    ids: &[String],
    events: Vec<StoredEvent>,
    message_rows: &[StoredEvent],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    if message_rows.is_empty() {
        return Ok(events);
    }
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let attempted: HashSet<&str> = events
        .iter()
        .filter(|e| e.sequence == 2)
        .map(|e| e.aggregate_id.as_str())
        .collect();
    let mut found = Vec::new();
    for row in message_rows {
        let outcomes = outcomes_of(row).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        found.extend(outcomes.into_iter().filter(|e| {
            wanted.contains(e.aggregate_id.as_str()) && !attempted.contains(e.aggregate_id.as_str())
        }));
    }
    if found.is_empty() {
        return Ok(events);
    }
    let mut all = events;
    all.extend(found);
    all.sort_by(|a, b| {
        (a.aggregate_id.as_str(), a.sequence).cmp(&(b.aggregate_id.as_str(), b.sequence))
    });
    Ok(all)
}
