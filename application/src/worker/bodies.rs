//! The bodies attempts send, read once per published event and shared by
//! all its deliveries, in a cache bounded by bytes. The stored body is
//! Hookline's envelope; each other payload format's body is derived from it
//! once per message and cached beside it (never stored per subscription).

use crate::error::AppError;
use crate::ports::{DueDelivery, MessageBodies};
use hookline_domain::message::envelope_data;
use hookline_domain::subscription::PayloadFormat;
use hookline_domain::EventId;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Most bytes of bodies kept between attempts.
pub const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;

type Cache = (HashMap<(EventId, PayloadFormat), Arc<str>>, usize);

pub struct Bodies {
    source: Arc<dyn MessageBodies>,
    cache: Mutex<Cache>,
}

/// Keeps `body` under `key`, starting over when the cache would pass its
/// bound.
fn keep(cache: &mut Cache, key: (EventId, PayloadFormat), body: &Arc<str>) {
    if cache.1 + body.len() > MAX_CACHED_BYTES {
        cache.0.clear();
        cache.1 = 0;
    }
    cache.1 += body.len();
    cache.0.insert(key, body.clone());
}

impl fmt::Debug for Bodies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bodies").finish_non_exhaustive()
    }
}

impl Bodies {
    pub fn new(source: Arc<dyn MessageBodies>) -> Self {
        Self {
            source,
            cache: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Gives every delivery its body: those enqueued with one inline keep
    /// it, the others get their message's (one read for all that miss).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn fill(&self, due: &mut [DueDelivery]) -> Result<(), AppError> {
        let mut missing: Vec<EventId> = Vec::new();
        if let Ok(cache) = self.cache.lock() {
            for d in due.iter_mut().filter(|d| d.body.is_none()) {
                match cache.0.get(&(d.event_id, PayloadFormat::Hookline)) {
                    Some(body) => d.body = Some(body.clone()),
                    None => missing.push(d.event_id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        missing.dedup();
        let found = self.source.bodies(&missing).await?;
        if let Ok(mut cache) = self.cache.lock() {
            for (id, body) in &found {
                keep(&mut cache, (*id, PayloadFormat::Hookline), body);
            }
        }
        for d in due.iter_mut().filter(|d| d.body.is_none()) {
            d.body = found.get(&d.event_id).cloned();
        }
        Ok(())
    }

    /// The body a subscription of `format` gets for message `event`, whose
    /// envelope is `envelope`: derived once per message and format.
    pub fn formatted(
        &self,
        event: EventId,
        envelope: &Arc<str>,
        format: PayloadFormat,
    ) -> Arc<str> {
        if format == PayloadFormat::Hookline {
            return envelope.clone();
        }
        let key = (event, format);
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.0.get(&key).cloned()) {
            return hit;
        }
        let body: Arc<str> = match format {
            PayloadFormat::Hookline => envelope.clone(),
            PayloadFormat::Raw => match envelope_data(envelope) {
                Some(data) => Arc::from(data),
                // Not an envelope (never, for bodies Hookline wrote).
                None => envelope.clone(),
            },
        };
        if let Ok(mut cache) = self.cache.lock() {
            keep(&mut cache, key, &body);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    struct One(Arc<str>, std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl MessageBodies for One {
        async fn bodies(&self, ids: &[EventId]) -> Result<HashMap<EventId, Arc<str>>, AppError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(ids.iter().map(|id| (*id, self.0.clone())).collect())
        }
    }

    #[test]
    fn raw_bodies_are_the_data_cut_once_per_message() {
        let envelope: Arc<str> = Arc::from(
            r#"{"id":"e","timestamp":"t","event":"a.b","data":{"b": 2,"a":[1, 2]},"tenant_id":"t"}"#,
        );
        let bodies = Bodies::new(Arc::new(One(envelope.clone(), Default::default())));
        let event = EventId::from_uuid(uuid::Uuid::from_u128(7));
        let raw = bodies.formatted(event, &envelope, PayloadFormat::Raw);
        assert_eq!(&*raw, r#"{"b": 2,"a":[1, 2]}"#);
        let again = bodies.formatted(event, &envelope, PayloadFormat::Raw);
        assert!(Arc::ptr_eq(&raw, &again), "derived once, then shared");
        let hookline = bodies.formatted(event, &envelope, PayloadFormat::Hookline);
        assert!(Arc::ptr_eq(&hookline, &envelope));
    }
}
