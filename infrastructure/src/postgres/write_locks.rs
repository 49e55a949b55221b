//! [`WriteLocks`] over Postgres advisory locks: a transaction-scoped lock
//! held on a pooled connection until the guard is dropped, so every
//! process sharing the database serialises the same "check, then write".

use super::log_reader::unavailable;
use async_trait::async_trait;
use hookline_application::ports::{WriteLockGuard, WriteLocks};
use hookline_application::AppError;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};

#[derive(Debug, Clone)]
pub struct PgWriteLocks {
    pool: PgPool,
}

impl PgWriteLocks {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The advisory lock key of `name` (its own namespace: no projection's).
fn key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("hookline-write:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Rolls the transaction back when dropped, which releases the lock at
/// once (not when the pool next uses the connection).
struct Held(Option<Transaction<'static, Postgres>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = tx.rollback().await {
                        tracing::warn!(error = %e, "releasing a write lock failed (the connection closes, which releases it)");
                    }
                });
            }
        }
    }
}

#[async_trait]
impl WriteLocks for PgWriteLocks {
    async fn hold(&self, name: &str) -> Result<WriteLockGuard, AppError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key(name))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        Ok(WriteLockGuard(Box::new(Held(Some(tx)))))
    }
}
