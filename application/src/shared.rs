//! The ports every service uses, bundled so constructors stay short.

use crate::ports::{Clock, Entropy, EventLog, LogPosition, ProjectionWaiter, SecretCipher};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Shared {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub cipher: Arc<dyn SecretCipher>,
    /// The log read directly (histories, point-in-time reads).
    pub log: Arc<dyn EventLog>,
    pub waiter: Arc<dyn ProjectionWaiter>,
    /// How long a write waits for the read models before answering.
    pub consistency_timeout: Duration,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("consistency_timeout", &self.consistency_timeout)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Waits (bounded) until the read models of `aggregate_type` include
    /// `position`; true when they do (or there was nothing to wait for).
    pub async fn settle(&self, aggregate_type: &str, position: Option<LogPosition>) -> bool {
        match position {
            Some(p) => {
                self.waiter
                    .wait_for(aggregate_type, p, self.consistency_timeout)
                    .await
            }
            None => true,
        }
    }

    /// `n` unpredictable bytes.
    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut bytes = [0u8; N];
        self.entropy.fill(&mut bytes);
        bytes
    }
}
