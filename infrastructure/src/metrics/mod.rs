//! Prometheus metrics: the in-process [`Registry`] (the `Metrics` port),
//! and the [`Exposition`] that renders it with the database gauges, the
//! connection pools and the process metrics at scrape time.

mod process;
mod registry;
mod text;

pub use registry::Registry;
pub use text::{Histogram, Text};

use crate::postgres::metrics::PgGauges;
use async_trait::async_trait;
use hookline_application::ports::MetricsExposition;
use hookline_application::AppError;
use sqlx::PgPool;
use std::sync::Arc;

/// Everything `GET /metrics` shows.
#[derive(Debug)]
pub struct Exposition {
    registry: Arc<Registry>,
    gauges: PgGauges,
    /// `(name, pool)`: `api` and `background`.
    pools: Vec<(&'static str, PgPool)>,
}

impl Exposition {
    pub fn new(
        registry: Arc<Registry>,
        gauges: PgGauges,
        pools: Vec<(&'static str, PgPool)>,
    ) -> Self {
        Self {
            registry,
            gauges,
            pools,
        }
    }

    async fn database(&self, t: &mut Text) {
        let gauges = match self.gauges.read().await {
            Ok(g) => g,
            Err(e) => {
                // The process's own series still answer.
                tracing::warn!(error = %e, "reading the metrics gauges failed");
                t.family(
                    "hookline_database_up",
                    "gauge",
                    "Whether the gauges read from the database could be read (1) or not (0).",
                );
                t.sample("hookline_database_up", &[], 0.0);
                return;
            }
        };
        t.family(
            "hookline_database_up",
            "gauge",
            "Whether the gauges read from the database could be read (1) or not (0).",
        );
        t.sample("hookline_database_up", &[], 1.0);
        let q = &gauges.queue;
        t.family(
            "hookline_queue_deliveries",
            "gauge",
            "Deliveries awaiting an attempt, by state: due (claimable now), scheduled (due later), leased (held by a worker), parked (behind an open circuit). The same from every process.",
        );
        for (state, n) in [
            ("due", q.due),
            ("scheduled", q.scheduled),
            ("leased", q.leased),
            ("parked", q.parked),
        ] {
            t.sample("hookline_queue_deliveries", &[("state", state)], n as f64);
        }
        t.family(
            "hookline_queue_oldest_due_age_seconds",
            "gauge",
            "How long the oldest claimable delivery has waited past its due time (0 when none is due).",
        );
        t.sample(
            "hookline_queue_oldest_due_age_seconds",
            &[],
            q.oldest_due_age_seconds,
        );
        t.family(
            "hookline_projection_lag_positions",
            "gauge",
            "Log positions between a projection's checkpoint and the newest committed event it follows.",
        );
        for p in &gauges.projections {
            t.sample(
                "hookline_projection_lag_positions",
                &[("projection", &p.name)],
                p.positions as f64,
            );
        }
        t.family(
            "hookline_projection_lag_seconds",
            "gauge",
            "Age of the oldest event a projection has not applied yet (0 when caught up).",
        );
        for p in &gauges.projections {
            t.sample(
                "hookline_projection_lag_seconds",
                &[("projection", &p.name)],
                p.seconds,
            );
        }
        t.family(
            "hookline_subscriptions",
            "gauge",
            "Subscriptions (not deleted) by state: active, circuit_open (active, its circuit open), disabled.",
        );
        for (state, n) in &gauges.subscriptions {
            t.sample("hookline_subscriptions", &[("state", state)], *n as f64);
        }
    }

    fn pools(&self, t: &mut Text) {
        t.family(
            "hookline_db_pool_connections",
            "gauge",
            "Open database connections of this process, by pool and state (in_use, idle).",
        );
        for (name, pool) in &self.pools {
            let size = f64::from(pool.size());
            let idle = pool.num_idle() as f64;
            t.sample(
                "hookline_db_pool_connections",
                &[("pool", name), ("state", "in_use")],
                (size - idle).max(0.0),
            );
            t.sample(
                "hookline_db_pool_connections",
                &[("pool", name), ("state", "idle")],
                idle,
            );
        }
        t.family(
            "hookline_db_pool_max_connections",
            "gauge",
            "The most connections each pool of this process opens.",
        );
        for (name, pool) in &self.pools {
            t.sample(
                "hookline_db_pool_max_connections",
                &[("pool", name)],
                f64::from(pool.options().get_max_connections()),
            );
        }
    }
}

#[async_trait]
impl MetricsExposition for Exposition {
    async fn render(&self) -> Result<String, AppError> {
        let mut t = Text::new();
        t.family(
            "hookline_build_info",
            "gauge",
            "The running Hookline version (always 1).",
        );
        t.sample(
            "hookline_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        self.registry.render(&mut t);
        self.database(&mut t).await;
        self.pools(&mut t);
        process::render(&mut t);
        Ok(t.finish())
    }
}
