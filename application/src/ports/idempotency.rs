//! Remembered answers to requests sent with an idempotency key (the
//! Svix-compatible API's `idempotency-key` on every POST).

use crate::error::AppError;
use async_trait::async_trait;
use std::time::Duration;

/// An answer worth giving again: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key was free (or its record expired): this request owns it now.
    Claimed,
    /// A request with this key came first. `answer` is `None` while it
    /// is still being answered.
    Taken {
        fingerprint: String,
        answer: Option<RememberedAnswer>,
    },
}

#[async_trait]
pub trait IdempotentRequests: Send + Sync {
    /// Claims `key` in `scope` for a request with this fingerprint. A
    /// record older than `ttl`, or a claim not answered within `stale`,
    /// counts as free.
    ///
    /// # Errors
    /// Storage errors.
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        ttl: Duration,
        stale: Duration,
    ) -> Result<KeyClaim, AppError>;

    /// Keeps the answer to the request that claimed `key`.
    ///
    /// # Errors
    /// Storage errors.
    async fn answer(
        &self,
        scope: &str,
        key: &str,
        answer: &RememberedAnswer,
    ) -> Result<(), AppError>;

    /// Lets go of a claim whose request got no answer worth keeping (an
    /// error), so that the request may be tried again.
    ///
    /// # Errors
    /// Storage errors.
    async fn release(&self, scope: &str, key: &str) -> Result<(), AppError>;

    /// Forgets records older than `ttl`.
    ///
    /// # Errors
    /// Storage errors.
    async fn forget_expired(&self, ttl: Duration) -> Result<u64, AppError>;
}
