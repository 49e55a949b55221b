//! Readiness over Postgres: the database answers and this process's
//! projections have caught up since start.

use super::projections::Projections;
use async_trait::async_trait;
use hookline_application::ports::Readiness;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PgReadiness {
    pool: PgPool,
    projections: Projections,
}

impl PgReadiness {
    pub fn new(pool: PgPool, projections: Projections) -> Self {
        Self { pool, projections }
    }
}

#[async_trait]
impl Readiness for PgReadiness {
    async fn database(&self, timeout: Duration) -> Result<(), String> {
        let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&self.pool);
        match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the database is unreachable: {e}")),
            Err(_) => Err(format!(
                "the database did not answer within {} s",
                timeout.as_secs()
            )),
        }
    }

    fn projections(&self) -> Result<BTreeMap<String, i64>, String> {
        self.projections.readiness()?;
        Ok(self
            .projections
            .positions()
            .into_iter()
            .map(|(name, p)| (name, p.position))
            .collect())
    }
}
