//! The bodies attempts send, read once per published event and shared by
//! all its deliveries, in a cache bounded by bytes.

use crate::error::AppError;
use crate::ports::{DueDelivery, MessageBodies};
use hookline_domain::EventId;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Most bytes of bodies kept between attempts.
pub const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;

pub struct Bodies {
    source: Arc<dyn MessageBodies>,
    cache: Mutex<(HashMap<EventId, Arc<str>>, usize)>,
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
                match cache.0.get(&d.event_id) {
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
                if cache.1 + body.len() > MAX_CACHED_BYTES {
                    cache.0.clear();
                    cache.1 = 0;
                }
                cache.1 += body.len();
                cache.0.insert(*id, body.clone());
            }
        }
        for d in due.iter_mut().filter(|d| d.body.is_none()) {
            d.body = found.get(&d.event_id).cloned();
        }
        Ok(())
    }
}
