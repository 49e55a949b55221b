//! Authenticating a request's bearer key: by its SHA-256 digest, cached in
//! memory until the tenants read model moves (a revocation in any process
//! reaches every process's cache that way).

use crate::error::AppError;
use crate::ports::{ApiKeyRecord, Clock, ProjectionWaiter, TenantReadModel};
use cqrs_es::Aggregate;
use hookline_domain::tenant::Tenant;
use hookline_domain::TenantId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

pub const API_KEY_PREFIX: &str = "hlk_";
/// Longest bearer token looked up at all.
const MAX_KEY_LEN: usize = 200;

/// The hex SHA-256 of a key: what the log and the read model keep.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: Uuid,
}

pub struct Authenticator {
    read: Arc<dyn TenantReadModel>,
    clock: Arc<dyn Clock>,
    waiter: Arc<dyn ProjectionWaiter>,
    /// How long an unknown key waits for the tenants read model to catch
    /// up (a key issued a moment ago, perhaps by another process).
    catch_up: Duration,
    /// digest → (record, read-model version it was read at).
    cache: RwLock<HashMap<String, (ApiKeyRecord, u64)>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(
        read: Arc<dyn TenantReadModel>,
        clock: Arc<dyn Clock>,
        waiter: Arc<dyn ProjectionWaiter>,
        catch_up: Duration,
    ) -> Self {
        Self {
            read,
            clock,
            waiter,
            catch_up,
            cache: RwLock::new(HashMap::new()),
        }
    }

    async fn lookup(&self, hash: &str) -> Result<Option<ApiKeyRecord>, AppError> {
        let version = self.read.version();
        if let Some((record, at)) = self.cache.read().ok().and_then(|c| c.get(hash).cloned()) {
            if at == version {
                return Ok(Some(record));
            }
        }
        let found = self.read.find_key(hash).await?;
        if let (Some(record), Ok(mut cache)) = (&found, self.cache.write()) {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(hash.to_string(), (record.clone(), version));
        }
        Ok(found)
    }

    /// The principal behind a bearer key, or `None` for a key that is
    /// unknown, revoked or whose tenant was deleted.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn authenticate(&self, api_key: &str) -> Result<Option<Principal>, AppError> {
        if !api_key.starts_with(API_KEY_PREFIX) || api_key.len() > MAX_KEY_LEN {
            return Ok(None);
        }
        let hash = hash_key(api_key);
        let mut found = self.lookup(&hash).await?;
        if found.is_none() {
            // Issued a moment ago (perhaps by another process): give the
            // read model a moment to include it, and look again even when
            // it did not catch up with the whole log in that time: it may
            // have applied the key meanwhile.
            self.waiter
                .wait_caught_up(Tenant::TYPE, self.catch_up)
                .await;
            found = self.lookup(&hash).await?;
        }
        let now = self.clock.now();
        Ok(found.filter(|r| r.works_at(now)).map(|r| Principal {
            tenant_id: r.tenant_id,
            key_id: r.key_id,
        }))
    }
}
