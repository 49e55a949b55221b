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
    /// A request with this key came first, its changes were stored, and
    /// its process stopped before the answer was kept: it is not run again,
    /// and its answer is lost (`request_id` tells where to look).
    Lost {
        fingerprint: String,
        request_id: String,
    },
}

/// A key as one request holds it: its scope, the key, and the request's
/// own claim id, so that only the request that claimed a key answers or
/// lets go of it (a claim taken over from a request thought stopped is no
/// longer that request's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKey {
    pub scope: String,
    pub key: String,
    pub claim: uuid::Uuid,
    /// The id of the request holding it (its events carry it).
    pub request_id: String,
    /// Whether running the request again is how a lost answer is found
    /// again (a publish keeps its key in the log and answers a repeat with
    /// what it first published): its claim is taken over even when its
    /// request stored something.
    pub rerun_safe: bool,
}

#[async_trait]
pub trait IdempotentRequests: Send + Sync {
    /// Claims the key for a request with this fingerprint. A record older
    /// than `ttl`, or a claim not renewed within `stale` (its process
    /// stopped) whose request stored nothing, counts as free; one whose
    /// request stored something is [`KeyClaim::Lost`].
    ///
    /// # Errors
    /// Storage errors.
    async fn claim(
        &self,
        held: &HeldKey,
        fingerprint: &str,
        ttl: Duration,
        stale: Duration,
    ) -> Result<KeyClaim, AppError>;

    /// Shows that the request holding the key still runs.
    ///
    /// # Errors
    /// Storage errors.
    async fn renew(&self, held: &HeldKey) -> Result<(), AppError>;

    /// Keeps the answer to the request that claimed the key; `false` when
    /// the claim is no longer this request's.
    ///
    /// # Errors
    /// Storage errors.
    async fn answer(&self, held: &HeldKey, answer: &RememberedAnswer) -> Result<bool, AppError>;

    /// Lets go of a claim whose request got no answer worth keeping (an
    /// error), so that the request may be tried again. Nothing when the
    /// claim is not (or no longer) this request's.
    ///
    /// # Errors
    /// Storage errors.
    async fn release(&self, held: &HeldKey) -> Result<(), AppError>;

    /// Forgets records older than `ttl`.
    ///
    /// # Errors
    /// Storage errors.
    async fn forget_expired(&self, ttl: Duration) -> Result<u64, AppError>;
}
