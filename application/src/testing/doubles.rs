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
        // The number above the last 32 bits, which a message id that lists
        // its deliveries clears (ADR 0019).
        Uuid::from_u128((0x0190_0000_0000_7000_8000_0000_0000_0000_u128) | (u128::from(n) << 32))
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

    async fn hand_over(
        &self,
        _worker: &str,
        deliveries: &[(DueDelivery, std::time::Duration)],
    ) -> Result<(), AppError> {
        self.deferred
            .lock()
            .unwrap()
            .extend(deliveries.iter().map(|(d, wait)| (d.delivery_id, *wait)));
        let mut due = self.due.lock().unwrap();
        for (d, _) in deliveries {
            due.push_back(DueDelivery {
                span: None,
                ..d.clone()
            });
        }
        Ok(())
    }

    async fn next_due_in(&self) -> Result<Option<std::time::Duration>, AppError> {
        Ok(None)
    }

    async fn forget(&self, attempts: &[(DeliveryId, u32)]) -> Result<(), AppError> {
        let stale = |d: &DueDelivery| {
            attempts
                .iter()
                .any(|(id, attempt)| d.delivery_id == *id && d.attempt <= *attempt)
        };
        self.due.lock().unwrap().retain(|d| !stale(d));
        self.leased.lock().unwrap().retain(|_, d| !stale(d));
        Ok(())
    }
}

/// A JSON Schema compiler for unit tests that knows `type` (at the root
/// and of each property) and `required`; anything else is ignored. The
/// real one (draft 2020-12) is in `hookline-infrastructure`.
pub struct TinySchemas;

struct TinySchema(serde_json::Value);

fn type_ok(want: &str, v: &serde_json::Value) -> bool {
    match want {
        "object" => v.is_object(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

impl crate::ports::DataSchema for TinySchema {
    fn violations(&self, data: &serde_json::Value) -> Vec<crate::ports::SchemaViolation> {
        use crate::ports::SchemaViolation;
        let mut out = Vec::new();
        if let Some(t) = self.0["type"].as_str() {
            if !type_ok(t, data) {
                out.push(SchemaViolation {
                    pointer: String::new(),
                    message: format!("{data} is not of type \"{t}\""),
                });
            }
        }
        for r in self.0["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if data.get(r).is_none() {
                out.push(SchemaViolation {
                    pointer: String::new(),
                    message: format!("\"{r}\" is a required property"),
                });
            }
        }
        if let Some(props) = self.0["properties"].as_object() {
            for (k, p) in props {
                if let (Some(v), Some(t)) = (data.get(k), p["type"].as_str()) {
                    if !type_ok(t, v) {
                        out.push(SchemaViolation {
                            pointer: format!("/{k}"),
                            message: format!("{v} is not of type \"{t}\""),
                        });
                    }
                }
            }
        }
        out
    }
}

impl crate::ports::SchemaCompiler for TinySchemas {
    fn compile(
        &self,
        schema: &serde_json::Value,
    ) -> Result<Arc<dyn crate::ports::DataSchema>, Vec<crate::ports::SchemaViolation>> {
        if let Some(t) = schema.get("type").filter(|t| !t.is_string()) {
            return Err(vec![crate::ports::SchemaViolation {
                pointer: "/type".into(),
                message: format!(
                    "{t} is not valid under any of the schemas listed in the 'anyOf' keyword"
                ),
            }]);
        }
        Ok(Arc::new(TinySchema(schema.clone())))
    }
}

/// Flow control in memory: slots per subscription on the given clock, and
/// whatever the test says is failing, due for a probe or recovered.
pub struct MemoryFlow {
    clock: Arc<FixedClock>,
    pub next: Mutex<HashMap<hookline_domain::SubscriptionId, DateTime<Utc>>>,
    pub failing: Mutex<Vec<crate::ports::Failing>>,
    pub failing_since: Mutex<Vec<crate::ports::Failing>>,
    pub probes: Mutex<Vec<crate::ports::ProbeDue>>,
    pub recovered: Mutex<Vec<crate::ports::Recovered>>,
    pub parked: Mutex<Vec<(hookline_domain::SubscriptionId, DateTime<Utc>)>>,
    pub unparked: Mutex<Vec<hookline_domain::SubscriptionId>>,
    /// Subscriptions whose circuit the read model still shows open.
    pub still_open: Mutex<Vec<hookline_domain::SubscriptionId>>,
    /// Calls of `unpark_closed`, with what they answered.
    pub unparked_closed: Mutex<Vec<(hookline_domain::SubscriptionId, bool)>>,
    pub held: Mutex<Vec<(DeliveryId, DateTime<Utc>)>>,
    pub released: Mutex<Vec<(hookline_domain::SubscriptionId, DeliveryId, DateTime<Utc>)>>,
}

impl MemoryFlow {
    pub fn new(clock: Arc<FixedClock>) -> Self {
        Self {
            clock,
            next: Mutex::default(),
            failing: Mutex::default(),
            failing_since: Mutex::default(),
            probes: Mutex::default(),
            recovered: Mutex::default(),
            parked: Mutex::default(),
            unparked: Mutex::default(),
            still_open: Mutex::default(),
            unparked_closed: Mutex::default(),
            held: Mutex::default(),
            released: Mutex::default(),
        }
    }
}

#[async_trait]
impl crate::ports::FlowControl for MemoryFlow {
    async fn reserve(
        &self,
        wants: &[(hookline_domain::SubscriptionId, u32, std::time::Duration)],
        horizon: std::time::Duration,
    ) -> Result<HashMap<hookline_domain::SubscriptionId, crate::ports::Reservation>, AppError> {
        use crate::ports::{Clock, Reservation};
        let now = self.clock.now();
        let mut next = self.next.lock().unwrap();
        let mut out = HashMap::new();
        for (sub, n, spacing) in wants {
            let start = next.get(sub).copied().unwrap_or(now).max(now);
            if start >= now + Duration::from_std(horizon).unwrap() {
                out.insert(*sub, Reservation::Busy(start));
                continue;
            }
            next.insert(*sub, start + Duration::from_std(*spacing * *n).unwrap());
            out.insert(*sub, Reservation::From(start));
        }
        Ok(out)
    }

    async fn park(
        &self,
        subscription: hookline_domain::SubscriptionId,
        until: DateTime<Utc>,
    ) -> Result<u64, AppError> {
        self.parked.lock().unwrap().push((subscription, until));
        Ok(1)
    }

    async fn hold(
        &self,
        _worker: &str,
        deliveries: &[DeliveryId],
        until: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.held
            .lock()
            .unwrap()
            .extend(deliveries.iter().map(|d| (*d, until)));
        Ok(())
    }

    async fn unpark(&self, subscription: hookline_domain::SubscriptionId) -> Result<u64, AppError> {
        self.unparked.lock().unwrap().push(subscription);
        Ok(1)
    }

    async fn unpark_closed(
        &self,
        subscription: hookline_domain::SubscriptionId,
    ) -> Result<Option<u64>, AppError> {
        let closed = !self.still_open.lock().unwrap().contains(&subscription);
        self.unparked_closed
            .lock()
            .unwrap()
            .push((subscription, closed));
        Ok(closed.then_some(0))
    }

    async fn release_probe(
        &self,
        subscription: hookline_domain::SubscriptionId,
        probe: DeliveryId,
        others_until: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.released
            .lock()
            .unwrap()
            .push((subscription, probe, others_until));
        Ok(())
    }

    async fn failing(&self, _threshold: u32) -> Result<Vec<crate::ports::Failing>, AppError> {
        Ok(std::mem::take(&mut *self.failing.lock().unwrap()))
    }

    async fn failing_since(
        &self,
        _since: DateTime<Utc>,
    ) -> Result<Vec<crate::ports::Failing>, AppError> {
        Ok(std::mem::take(&mut *self.failing_since.lock().unwrap()))
    }

    async fn probes_due(
        &self,
        _now: DateTime<Utc>,
    ) -> Result<Vec<crate::ports::ProbeDue>, AppError> {
        Ok(std::mem::take(&mut *self.probes.lock().unwrap()))
    }

    async fn recovered(&self) -> Result<Vec<crate::ports::Recovered>, AppError> {
        Ok(std::mem::take(&mut *self.recovered.lock().unwrap()))
    }

    async fn backlog(
        &self,
        _subscriptions: &[hookline_domain::SubscriptionId],
    ) -> Result<HashMap<hookline_domain::SubscriptionId, u64>, AppError> {
        Ok(HashMap::new())
    }
}
