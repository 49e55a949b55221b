//! The flow controller: a process manager that watches each subscription's
//! run of failed attempts and acts on it through the Subscription
//! aggregate.
//!
//! - `threshold` consecutive failures open the circuit: the subscription's
//!   queued deliveries are parked (no attempts, no retries used up) until
//!   the first probe.
//! - When a probe is due, the oldest waiting delivery goes out alone; the
//!   others stay parked until the next probe, which waits twice as long
//!   (from `probe_min` up to `probe_max`).
//! - A successful attempt closes the circuit and releases the backlog, in
//!   due order (within the rate limit, which the workers keep).
//! - A subscription whose attempts have all failed for `auto_disable_after`
//!   is disabled (`auto: failing since …`).
//!
//! Every decision is an event of the subscription (actor `system:flow`);
//! commands are idempotent, so several processes may run a controller.

#[cfg(test)]
mod tests;

use crate::commands::execute_with_retry;
use crate::context::{Actor, CommandContext, RequestId};
use crate::error::AppError;
use crate::ports::{AggregateStore, FlowControl};
use crate::shared::Shared;
use chrono::{DateTime, SecondsFormat, Utc};
use hookline_domain::subscription::{
    probe_interval, CloseCircuit, DisableSubscription, OpenCircuit, ReleaseProbe, Subscription,
    SubscriptionCommand,
};
use hookline_domain::{SubscriptionId, TenantId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// Consecutive failed attempts that open a circuit.
    pub circuit_threshold: u32,
    /// The first probe's wait; each later one waits twice as long.
    pub probe_min: Duration,
    /// The longest wait between probes.
    pub probe_max: Duration,
    /// A subscription failing this long is disabled.
    pub auto_disable_after: Duration,
    /// How often the controller looks.
    pub tick: Duration,
}

impl Default for FlowSettings {
    fn default() -> Self {
        Self {
            circuit_threshold: 10,
            probe_min: Duration::from_secs(30),
            probe_max: Duration::from_secs(600),
            auto_disable_after: Duration::from_secs(5 * 24 * 3600),
            tick: Duration::from_secs(1),
        }
    }
}

/// What one look did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    pub opened: usize,
    pub probed: usize,
    pub closed: usize,
    pub disabled: usize,
}

/// How long after closing a circuit the controller waits for the
/// subscriptions read model to show it closed (see [`FlowController::tick`]).
const CLOSING_WATCH: chrono::Duration = chrono::Duration::minutes(5);

pub struct FlowController {
    shared: Shared,
    store: Arc<dyn AggregateStore<Subscription>>,
    control: Arc<dyn FlowControl>,
    settings: FlowSettings,
    /// Circuits closed whose close the read model did not show yet, with
    /// when they were closed.
    closing: Mutex<HashMap<SubscriptionId, DateTime<Utc>>>,
}

impl fmt::Debug for FlowController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowController")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl FlowController {
    pub fn new(
        shared: Shared,
        store: Arc<dyn AggregateStore<Subscription>>,
        control: Arc<dyn FlowControl>,
        settings: FlowSettings,
    ) -> Self {
        Self {
            shared,
            store,
            control,
            settings,
            closing: Mutex::new(HashMap::new()),
        }
    }

    /// Looks every `tick` until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tracing::info!(settings = ?self.settings, "flow controller started");
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "flow control could not look at the subscriptions");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.settings.tick) => {}
            }
        }
    }

    fn interval(&self, probes: u32) -> chrono::Duration {
        probe_interval(
            probes,
            chrono(self.settings.probe_min),
            chrono(self.settings.probe_max),
        )
    }

    async fn command(
        &self,
        tenant: TenantId,
        subscription: &str,
        command: SubscriptionCommand,
    ) -> Result<(), AppError> {
        let now = self.shared.clock.now();
        let ctx = CommandContext {
            request_id: RequestId::system("flow", self.shared.entropy.new_id()),
            tenant_id: tenant,
            actor: Actor::System("flow"),
        };
        execute_with_retry(
            self.store.as_ref(),
            subscription,
            || command.clone(),
            &ctx.metadata(now),
        )
        .await
        .map(|_| ())
        .map_err(crate::commands::map_store_error)
    }

    /// One look: opens, probes, closes and disables what is due.
    ///
    /// # Errors
    /// When the read model cannot be queried; a failed command is logged
    /// and retried at the next look.
    pub async fn tick(&self) -> Result<Tick, AppError> {
        let mut done = Tick::default();
        let now = self.shared.clock.now();
        for f in self
            .control
            .failing(self.settings.circuit_threshold)
            .await?
        {
            let Some(cause) = f.last_failure else {
                continue;
            };
            let next_probe_at = now + self.interval(0);
            let id = f.subscription_id.to_string();
            let open = SubscriptionCommand::OpenCircuit(OpenCircuit {
                tenant_id: f.tenant_id,
                consecutive_failures: f.consecutive_failures,
                cause,
                at: now,
                next_probe_at,
            });
            match self.command(f.tenant_id, &id, open).await {
                Ok(()) => {
                    let parked = self.control.park(f.subscription_id, next_probe_at).await?;
                    tracing::warn!(subscription_id = %id, failures = f.consecutive_failures, parked, "circuit opened");
                    done.opened += 1;
                }
                Err(e) => {
                    tracing::warn!(subscription_id = %id, error = %e, "could not open the circuit")
                }
            }
        }
        // Workers park by their view of the subscription, which may trail
        // a close: one may park deliveries again after the close released
        // them (until the next probe, minutes away). Once the read model
        // shows the circuit closed no worker parks by it any more; what
        // was parked until then is released here.
        let closing: Vec<(SubscriptionId, DateTime<Utc>)> = self
            .closing
            .lock()
            .map(|m| m.iter().map(|(id, at)| (*id, *at)).collect())
            .unwrap_or_default();
        for (id, closed_at) in closing {
            let settled = match self.control.unpark_closed(id).await? {
                Some(released) => {
                    if released > 0 {
                        tracing::info!(subscription_id = %id, released, "deliveries parked by a view from before the circuit closed released");
                    }
                    true
                }
                None => now - closed_at > CLOSING_WATCH,
            };
            if settled {
                if let Ok(mut m) = self.closing.lock() {
                    m.remove(&id);
                }
            }
        }
        for r in self.control.recovered().await? {
            let id = r.subscription_id.to_string();
            let close = SubscriptionCommand::CloseCircuit(CloseCircuit {
                tenant_id: r.tenant_id,
                delivery_id: r.delivery_id,
                at: now,
            });
            match self.command(r.tenant_id, &id, close).await {
                Ok(()) => {
                    let released = self.control.unpark(r.subscription_id).await?;
                    if let Ok(mut m) = self.closing.lock() {
                        m.insert(r.subscription_id, now);
                    }
                    tracing::info!(subscription_id = %id, released, "circuit closed");
                    done.closed += 1;
                }
                Err(e) => {
                    tracing::warn!(subscription_id = %id, error = %e, "could not close the circuit")
                }
            }
        }
        for p in self.control.probes_due(now).await? {
            let id = p.subscription_id.to_string();
            // The next probe waits from when this one can go out: a probe
            // the receiver's `Retry-After` holds back is not released again
            // (and counted) before it was even sent.
            let next_probe_at = p.due_at.max(now) + self.interval(p.probes.saturating_add(1));
            let release = SubscriptionCommand::ReleaseProbe(ReleaseProbe {
                tenant_id: p.tenant_id,
                delivery_id: p.delivery_id,
                at: now,
                next_probe_at,
            });
            match self.command(p.tenant_id, &id, release).await {
                Ok(()) => {
                    self.control
                        .release_probe(p.subscription_id, p.delivery_id, next_probe_at)
                        .await?;
                    tracing::info!(subscription_id = %id, delivery_id = %p.delivery_id, "circuit probe released");
                    done.probed += 1;
                }
                Err(e) => {
                    tracing::warn!(subscription_id = %id, error = %e, "could not release a probe")
                }
            }
        }
        let cutoff: DateTime<Utc> = now - chrono(self.settings.auto_disable_after);
        for f in self.control.failing_since(cutoff).await? {
            let id = f.subscription_id.to_string();
            let disable = SubscriptionCommand::Disable(DisableSubscription {
                tenant_id: f.tenant_id,
                reason: format!(
                    "auto: failing since {}",
                    f.failing_since.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
                at: now,
            });
            match self.command(f.tenant_id, &id, disable).await {
                Ok(()) => {
                    tracing::warn!(subscription_id = %id, since = %f.failing_since, "subscription disabled: every attempt failed");
                    done.disabled += 1;
                }
                Err(e) => tracing::warn!(subscription_id = %id, error = %e, "could not disable"),
            }
        }
        Ok(done)
    }
}
