//! Tenants and API keys: create a tenant (its key is shown once and stored
//! hashed), and authenticate a request's bearer key.

use crate::error::AppError;
use crate::ports::{ApiKeyRecord, Clock, TenantDirectory};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hookline_domain::{TenantId, ValidationError};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

pub const API_KEY_PREFIX: &str = "hlk_";
pub const MAX_TENANT_NAME_CHARS: usize = 200;

/// What creating a tenant returns: the only time the key is visible.
#[derive(Clone, Serialize)]
pub struct NewTenant {
    pub tenant_id: TenantId,
    pub api_key: String,
}

impl fmt::Debug for NewTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTenant")
            .field("tenant_id", &self.tenant_id)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: Uuid,
}

pub struct TenantService {
    directory: Arc<dyn TenantDirectory>,
    clock: Arc<dyn Clock>,
    /// hash → key; keys are never revoked today, so entries stay valid.
    cache: RwLock<HashMap<String, ApiKeyRecord>>,
}

impl fmt::Debug for TenantService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantService").finish_non_exhaustive()
    }
}

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl TenantService {
    pub fn new(directory: Arc<dyn TenantDirectory>, clock: Arc<dyn Clock>) -> Self {
        Self {
            directory,
            clock,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Creates a tenant named `name` and its first API key.
    ///
    /// # Errors
    /// A validation error for a bad name, or a storage error.
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, name: &str) -> Result<NewTenant, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_TENANT_NAME_CHARS {
            return Err(ValidationError::new(
                "name",
                format!("must be 1–{MAX_TENANT_NAME_CHARS} characters"),
            )
            .into());
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new("name", "must not contain control characters").into());
        }
        let tenant_id = TenantId::from_uuid(Uuid::now_v7());
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let api_key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let key_id = Uuid::now_v7();
        self.directory
            .insert_tenant(
                tenant_id,
                name,
                key_id,
                &hash_key(&api_key),
                self.clock.now(),
            )
            .await?;
        tracing::info!(%tenant_id, "tenant created");
        Ok(NewTenant { tenant_id, api_key })
    }

    /// The principal behind a bearer key, or `None` for an unknown key.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn authenticate(&self, api_key: &str) -> Result<Option<Principal>, AppError> {
        if !api_key.starts_with(API_KEY_PREFIX) || api_key.len() > 200 {
            return Ok(None);
        }
        let hash = hash_key(api_key);
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(&hash).cloned()) {
            return Ok(Some(Principal {
                tenant_id: hit.tenant_id,
                key_id: hit.key_id,
            }));
        }
        let found = self.directory.find_key(&hash).await?;
        if let Some(record) = &found {
            if let Ok(mut cache) = self.cache.write() {
                cache.insert(hash, record.clone());
            }
        }
        Ok(found.map(|r| Principal {
            tenant_id: r.tenant_id,
            key_id: r.key_id,
        }))
    }
}
