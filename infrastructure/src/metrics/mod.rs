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

/// How long a scrape waits for the database gauges.
const GAUGES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

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
        // A database that does not answer must not hold the scrape past
        // Prometheus's timeout (10 s by default, the pool's own wait):
        // `hookline_database_up 0` is the answer then.
        let read = match tokio::time::timeout(GAUGES_TIMEOUT, self.gauges.read()).await {
            Ok(read) => read.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "the database did not answer within {GAUGES_TIMEOUT:?}"
            )),
        };
        let gauges = match read {
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
            "Deliveries awaiting an attempt, by state: due (claimable now), scheduled (due later), leased (held by a worker for an attempt), waiting (held back by a worker for their turn: a slow receiver's share, a rate limit), parked (behind an open circuit). The same from every process.",
        );
        for (state, n) in [
            ("due", q.due),
            ("scheduled", q.scheduled),
            ("leased", q.leased),
            ("waiting", q.waiting),
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
            "hookline_queue_oldest_waiting_age_seconds",
            "gauge",
            "How long the oldest delivery a worker holds back for its turn (a slow receiver's share, a rate limit) has been due (0 when none waits).",
        );
        t.sample(
            "hookline_queue_oldest_waiting_age_seconds",
            &[],
            q.oldest_waiting_age_seconds,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A database that accepts connections and never answers (a hung
    /// server, a stopped postmaster's socket): the scrape still answers,
    /// within the gauges' timeout, saying the database is down.
    #[tokio::test]
    async fn a_database_that_does_not_answer_does_not_hold_the_scrape() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                conns.push(conn);
            }
        });
        let options = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username("nobody");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options);
        let exposition = Exposition::new(
            Arc::new(Registry::new(false)),
            PgGauges::new(pool, Vec::new()),
            Vec::new(),
        );
        let started = Instant::now();
        let text = exposition.render().await.unwrap();
        assert!(
            started.elapsed() < GAUGES_TIMEOUT + Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(text.contains("hookline_database_up 0"), "{text}");
        held.abort();
    }
}
