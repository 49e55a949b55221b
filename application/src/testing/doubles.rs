//! Stand-ins for the clock, entropy, cipher, waiter, sender and queue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::error::AppError;
use crate::ports::{
    Clock, DueDelivery, DueQueue, Entropy, LogPosition, OutgoingRequest, ProjectionWaiter,
    SecretCipher, SendResult, WebhookSender,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use hookline_domain::{DeliveryId, Sealed};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use uuid::Uuid;

/// A clock that moves only when told.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl Default for FixedClock {
    fn default() -> Self {
        Self(Mutex::new(t0()))
    }
}

impl FixedClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Ids counting up, bytes from the same counter, no jitter.
#[derive(Debug, Default)]
pub struct SeqEntropy(AtomicU64);

impl Entropy for SeqEntropy {
    fn new_id(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Uuid::from_u128((0x0190_0000_0000_7000_8000_0000_0000_0000_u128) | u128::from(n))
    }
    fn fill(&self, buf: &mut [u8]) {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (n as u8).wrapping_add(i as u8);
        }
    }
    fn jitter(&self) -> f64 {
        0.0
    }
}

/// "Seals" by hex-encoding the plaintext (so it does not appear as
/// itself), bound to its context.
#[derive(Debug, Default)]
pub struct PlainCipher;

impl SecretCipher for PlainCipher {
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Sealed, AppError> {
        Ok(Sealed {
            alg: "plain".into(),
            key_id: context.into(),
            nonce: String::new(),
            ciphertext: hex::encode(plaintext),
        })
    }
    fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, AppError> {
        if sealed.key_id != context {
            return Err(AppError::Internal("sealed for another context".into()));
        }
        hex::decode(&sealed.ciphertext).map_err(|e| AppError::Internal(e.to_string()))
    }
}

/// Read models here are never behind.
#[derive(Debug, Default)]
pub struct NoWait;

#[async_trait]
impl ProjectionWaiter for NoWait {
    async fn wait_for(&self, _: &str, _: LogPosition, _: std::time::Duration) -> bool {
        true
    }
    async fn wait_caught_up(&self, _: &str, _: std::time::Duration) -> bool {
        true
    }
}

/// Answers attempts from a script (a 204 once it runs out) and records
/// every request.
#[derive(Debug, Default)]
pub struct ScriptedSender {
    script: Mutex<VecDeque<crate::ports::SendOutcome>>,
    pub sent: Mutex<Vec<OutgoingRequest>>,
}

impl ScriptedSender {
    pub fn answer(&self, outcome: crate::ports::SendOutcome) {
        self.script.lock().unwrap().push_back(outcome);
    }
}

#[async_trait]
impl WebhookSender for ScriptedSender {
    async fn send(&self, request: OutgoingRequest) -> SendResult {
        self.sent.lock().unwrap().push(request);
        let outcome = self.script.lock().unwrap().pop_front().unwrap_or(
            crate::ports::SendOutcome::Response {
                status: 204,
                retry_after_secs: None,
                excerpt: None,
            },
        );
        SendResult {
            started_at: t0(),
            duration_ms: 3,
            outcome,
        }
    }
}

/// A due queue holding what tests put in it; deferred deliveries come back
/// at once.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub due: Mutex<VecDeque<DueDelivery>>,
    pub deferred: Mutex<Vec<(DeliveryId, std::time::Duration)>>,
    leased: Mutex<HashMap<DeliveryId, DueDelivery>>,
}

#[async_trait]
impl DueQueue for MemoryQueue {
    async fn claim(
        &self,
        _worker: &str,
        limit: u32,
        _lease: std::time::Duration,
    ) -> Result<Vec<DueDelivery>, AppError> {
        let mut due = self.due.lock().unwrap();
        let n = due.len().min(limit as usize);
        let claimed: Vec<DueDelivery> = due.drain(..n).collect();
        let mut leased = self.leased.lock().unwrap();
        for d in &claimed {
            leased.insert(d.delivery_id, d.clone());
        }
        Ok(claimed)
    }

    async fn defer(
        &self,
        _worker: &str,
        deliveries: &[(DeliveryId, std::time::Duration)],
    ) -> Result<(), AppError> {
        self.deferred.lock().unwrap().extend_from_slice(deliveries);
        let mut leased = self.leased.lock().unwrap();
        let mut due = self.due.lock().unwrap();
        for (id, _) in deliveries {
            if let Some(d) = leased.remove(id) {
                due.push_back(d);
            }
        }
        Ok(())
    }

    async fn next_due_in(&self) -> Result<Option<std::time::Duration>, AppError> {
        Ok(None)
    }
}
