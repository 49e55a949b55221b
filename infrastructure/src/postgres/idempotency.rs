//! Remembered answers to requests sent with an idempotency key
//! (`idempotent_requests`). A plain table, not events: what it keeps is a
//! cache of responses, not a fact about Hookline's objects.

use super::log_reader::unavailable;
use async_trait::async_trait;
use hookline_application::ports::{HeldKey, IdempotentRequests, KeyClaim, RememberedAnswer};
use hookline_application::AppError;
use sqlx::{PgPool, Row};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PgIdempotentRequests {
    pool: PgPool,
}

impl PgIdempotentRequests {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Runs `sql` on the claim `held` (`$1` scope, `$2` key, `$3` its
    /// claim id).
    async fn on_own_claim(&self, sql: &'static str, held: &HeldKey) -> Result<(), AppError> {
        sqlx::query(sql)
            .bind(&held.scope)
            .bind(&held.key)
            .bind(held.claim)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl IdempotentRequests for PgIdempotentRequests {
    async fn claim(
        &self,
        held: &HeldKey,
        fingerprint: &str,
        ttl: Duration,
        stale: Duration,
    ) -> Result<KeyClaim, AppError> {
        // A record past its lifetime, or a claim left unanswered and not
        // renewed for too long (its process stopped) whose request stored
        // nothing (no event carries its request id), is taken over.
        let claimed = sqlx::query(
            "INSERT INTO idempotent_requests AS r (scope, key, fingerprint, claimed_at, claimed_by, request_id)
             VALUES ($1, $2, $3, now(), $6, $7)
             ON CONFLICT (scope, key) DO UPDATE
                SET fingerprint = EXCLUDED.fingerprint, status = NULL, body = NULL,
                    claimed_at = now(), answered_at = NULL, claimed_by = EXCLUDED.claimed_by,
                    request_id = EXCLUDED.request_id
              WHERE r.claimed_at < now() - make_interval(secs => $4)
                 OR (r.answered_at IS NULL AND r.claimed_at < now() - make_interval(secs => $5)
                     AND ($8 OR NOT EXISTS (SELECT 1 FROM events e
                                             WHERE e.metadata ->> 'request_id' = r.request_id)))
             RETURNING 1",
        )
        .bind(&held.scope)
        .bind(&held.key)
        .bind(fingerprint)
        .bind(ttl.as_secs_f64())
        .bind(stale.as_secs_f64())
        .bind(held.claim)
        .bind(&held.request_id)
        .bind(held.rerun_safe)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        if claimed.is_some() {
            return Ok(KeyClaim::Claimed);
        }
        let row = sqlx::query(
            "SELECT fingerprint, status, body, request_id,
                    CASE WHEN NOT $4 AND answered_at IS NULL
                              AND claimed_at < now() - make_interval(secs => $3)
                         THEN EXISTS (SELECT 1 FROM events e
                                       WHERE e.metadata ->> 'request_id' = r.request_id)
                         ELSE false END AS lost
               FROM idempotent_requests r WHERE scope = $1 AND key = $2",
        )
        .bind(&held.scope)
        .bind(&held.key)
        .bind(stale.as_secs_f64())
        .bind(held.rerun_safe)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            // Released between the two statements: free again.
            return Box::pin(self.claim(held, fingerprint, ttl, stale)).await;
        };
        let fingerprint: String = row.try_get("fingerprint").map_err(unavailable)?;
        let lost: bool = row.try_get("lost").map_err(unavailable)?;
        let request_id: Option<String> = row.try_get("request_id").map_err(unavailable)?;
        if let (true, Some(request_id)) = (lost, request_id) {
            // Left by a stopped process after its request stored something.
            return Ok(KeyClaim::Lost {
                fingerprint,
                request_id,
            });
        }
        let status: Option<i32> = row.try_get("status").map_err(unavailable)?;
        let body: Option<Vec<u8>> = row.try_get("body").map_err(unavailable)?;
        Ok(KeyClaim::Taken {
            fingerprint,
            answer: status.map(|status| RememberedAnswer {
                status: u16::try_from(status).unwrap_or(200),
                body: body.unwrap_or_default(),
            }),
        })
    }

    async fn renew(&self, held: &HeldKey) -> Result<(), AppError> {
        self.on_own_claim(
            "UPDATE idempotent_requests SET claimed_at = now()
              WHERE scope = $1 AND key = $2 AND claimed_by = $3 AND answered_at IS NULL",
            held,
        )
        .await
    }

    async fn answer(&self, held: &HeldKey, answer: &RememberedAnswer) -> Result<bool, AppError> {
        let done = sqlx::query(
            "UPDATE idempotent_requests SET status = $4, body = $5, answered_at = now()
              WHERE scope = $1 AND key = $2 AND claimed_by = $3 AND answered_at IS NULL",
        )
        .bind(&held.scope)
        .bind(&held.key)
        .bind(held.claim)
        .bind(i32::from(answer.status))
        .bind(&answer.body)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, held: &HeldKey) -> Result<(), AppError> {
        self.on_own_claim(
            "DELETE FROM idempotent_requests
              WHERE scope = $1 AND key = $2 AND claimed_by = $3 AND answered_at IS NULL",
            held,
        )
        .await
    }

    async fn forget_expired(&self, ttl: Duration) -> Result<u64, AppError> {
        let done = sqlx::query(
            "DELETE FROM idempotent_requests WHERE claimed_at < now() - make_interval(secs => $1)",
        )
        .bind(ttl.as_secs_f64())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected())
    }
}
