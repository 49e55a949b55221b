//! Client-chosen uids, kept unique per scope by `UidClaim` aggregates: a
//! write that gives a uid to a tenant or subscription appends the claim in
//! the same transaction, so of two writers racing for one uid only one
//! commits (the other collides on the claim's sequence and tries again,
//! then finds it taken). Looking a uid up reads its claim and checks that
//! the holder still has it.

use crate::error::AppError;
use crate::metadata::EventMetadata;
use crate::ports::{AggregateStore, Change};
use chrono::{DateTime, Utc};
use hookline_domain::uid::Uid;
use hookline_domain::uid_claim::{ClaimUid, UidClaim, UidClaimError, UidScope};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

#[derive(Clone)]
pub struct UidClaims {
    store: Arc<dyn AggregateStore<UidClaim>>,
}

impl fmt::Debug for UidClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UidClaims").finish_non_exhaustive()
    }
}

impl UidClaims {
    pub fn new(store: Arc<dyn AggregateStore<UidClaim>>) -> Self {
        Self { store }
    }

    /// The last claimant of `uid` in `scope` (it may have let go since:
    /// check that it still has the uid).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn claimant(&self, scope: UidScope, uid: &Uid) -> Result<Option<String>, AppError> {
        let id = scope.claim_id(uid);
        Ok(self
            .store
            .load(std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .and_then(|l| l.aggregate.holder().map(str::to_string)))
    }

    /// The change that gives `uid` to `owner`, to append together with
    /// the owner's own change (`None`: `owner` holds it already). `holds`
    /// says whether another claimant still has the uid.
    ///
    /// # Errors
    /// 409 `uid_taken` while another holder has it; storage errors.
    pub async fn claim<F, Fut>(
        &self,
        scope: UidScope,
        uid: &Uid,
        owner: &str,
        holds: F,
        at: DateTime<Utc>,
        metadata: &EventMetadata,
    ) -> Result<Option<Change<UidClaim>>, AppError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<bool, AppError>>,
    {
        let id = scope.claim_id(uid);
        let loaded = self
            .store
            .load(std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .unwrap_or_default();
        let holder_still_holds = match loaded.aggregate.holder() {
            Some(holder) if holder != owner => holds(holder.to_string()).await?,
            _ => false,
        };
        let events = loaded
            .aggregate
            .decide(ClaimUid {
                scope,
                uid: uid.clone(),
                owner: owner.to_string(),
                holder_still_holds,
                at,
            })
            .map_err(|UidClaimError::Taken(holder)| {
                AppError::conflict(
                    "uid_taken",
                    format!("the uid '{uid}' is already used by '{holder}'"),
                )
            })?;
        if events.is_empty() {
            return Ok(None);
        }
        Ok(Some(Change {
            aggregate_id: id,
            version: loaded.version,
            events,
            metadata: metadata.clone(),
        }))
    }
}
