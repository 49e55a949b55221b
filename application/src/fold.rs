//! The one way to rebuild an aggregate from stored events, used wherever
//! an aggregate is loaded outside cqrs-es (batched outcomes, point-in-time
//! reads, the event store adapters).

use crate::error::AppError;
use crate::ports::{Loaded, StoredEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;

/// A stored event as the aggregate's event type.
///
/// # Errors
/// When the payload is not an `A::Event` (a bug or a tampered log).
pub fn parse<A: Aggregate + 'static>(stored: &StoredEvent) -> Result<A::Event, AppError> {
    stored.payload.parse_owned().map_err(|e| {
        AppError::Internal(format!(
            "{} {} event {} ({}) is unreadable: {e}",
            stored.aggregate_type, stored.aggregate_id, stored.sequence, stored.event_type
        ))
    })
}

/// The aggregate its events (in sequence order) leave behind.
///
/// # Errors
/// As [`parse`].
pub fn rebuild<'a, A: Aggregate + 'static>(
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> Result<Loaded<A>, AppError> {
    let mut loaded = Loaded::<A>::default();
    for stored in events {
        apply(&mut loaded, stored)?;
    }
    Ok(loaded)
}

/// The aggregate as the events recorded up to `at` left it.
///
/// # Errors
/// As [`parse`].
pub fn rebuild_as_of<A: Aggregate + 'static>(
    events: &[StoredEvent],
    at: DateTime<Utc>,
) -> Result<Loaded<A>, AppError> {
    rebuild(events.iter().filter(|e| e.recorded_at <= at))
}

/// The 404 of a point-in-time read at `at` that found nothing, for a
/// resource the caller may see (`owned`): when its first event was
/// recorded after `at` the answer says when, since the `created_at` a
/// resource shows comes from the command and its event is recorded moments
/// later. For anything else, the plain 404 (nothing about another
/// tenant's resources).
pub fn absent_at(
    events: &[StoredEvent],
    at: DateTime<Utc>,
    owned: bool,
    resource: &'static str,
    id: impl std::fmt::Display,
) -> AppError {
    match events.first() {
        Some(first) if owned && first.recorded_at > at => AppError::NothingFound {
            code: "not_found",
            detail: format!(
                "{resource} '{id}' did not exist at {}: its first event was recorded at {} \
                 (as_of follows when events were recorded, moments after the created_at they carry)",
                at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                first
                    .recorded_at
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
        },
        _ => AppError::not_found(resource, id),
    }
}

/// Several aggregates' events, ordered by aggregate and sequence, rebuilt
/// one by one.
///
/// # Errors
/// As [`parse`].
pub fn rebuild_each<A: Aggregate + 'static>(
    events: &[StoredEvent],
) -> Result<std::collections::HashMap<String, Loaded<A>>, AppError> {
    let mut out: std::collections::HashMap<String, Loaded<A>> = std::collections::HashMap::new();
    for stored in events {
        apply(out.entry(stored.aggregate_id.clone()).or_default(), stored)?;
    }
    Ok(out)
}

/// One stored event applied. A message's `DeliveriesAttempted` holds its
/// deliveries' events (ADR 0023), none of the message's own: it only
/// moves the message's version.
fn apply<A: Aggregate + 'static>(
    loaded: &mut Loaded<A>,
    stored: &StoredEvent,
) -> Result<(), AppError> {
    if !crate::listing::holds_outcomes(stored) {
        loaded.aggregate.apply(parse::<A>(stored)?);
    }
    loaded.version = stored.sequence;
    Ok(())
}
