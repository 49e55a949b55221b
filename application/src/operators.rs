//! Operator API keys: tokens that act for the organisation (every tenant)
//! like the admin token, issued and revoked by operators, kept in the log
//! as SHA-256 digests only (the `Operators` aggregate). The Svix-compatible
//! API takes them as its organisation tokens.

use crate::commands::{execute_with_retry, map_store_error, Written};
use crate::context::CommandContext;
use crate::error::AppError;
use crate::ports::AggregateStore;
use crate::shared::Shared;
use crate::tenants::hash_key;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use hookline_domain::operator::{
    IssueOperatorKey, KeyName, OperatorCommand, OperatorError, Operators, RevokeOperatorKey,
    OPERATORS_ID,
};
use hookline_domain::TenantId;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

pub const OPERATOR_KEY_PREFIX: &str = "hlo_";
/// Longest bearer token looked up at all.
const MAX_KEY_LEN: usize = 200;

/// An operator key as lists show it: never the key.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorKeyView {
    pub id: Uuid,
    pub name: String,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just issued: the only time it is visible.
#[derive(Clone, PartialEq)]
pub struct IssuedOperatorKey {
    pub view: OperatorKeyView,
    pub api_key: String,
}

impl fmt::Debug for IssuedOperatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedOperatorKey")
            .field("view", &self.view)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

pub struct OperatorService {
    shared: Shared,
    store: Arc<dyn AggregateStore<Operators>>,
}

impl fmt::Debug for OperatorService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorService").finish_non_exhaustive()
    }
}

fn map_error(e: AggregateError<OperatorError>) -> AppError {
    match e {
        AggregateError::UserError(OperatorError::KeyNotFound) => AppError::NothingFound {
            code: "not_found",
            detail: "there is no such operator key".into(),
        },
        AggregateError::UserError(e @ OperatorError::TooManyKeys(_)) => {
            AppError::conflict("too_many_keys", e.to_string())
        }
        AggregateError::UserError(e) => AppError::conflict("operator_key_conflict", e.to_string()),
        other => map_store_error(other),
    }
}

fn view(k: &hookline_domain::operator::OperatorKeyState) -> OperatorKeyView {
    OperatorKeyView {
        id: k.key_id,
        name: k.name.as_str().to_string(),
        hint: k.hint.clone(),
        created_at: k.issued_at,
        revoked_at: k.revoked_at,
    }
}

impl OperatorService {
    pub fn new(shared: Shared, store: Arc<dyn AggregateStore<Operators>>) -> Self {
        Self { shared, store }
    }

    /// The keys as the log leaves them (exact: a revocation by any process
    /// counts at once).
    async fn current(&self) -> Result<Operators, AppError> {
        let id = OPERATORS_ID.to_string();
        Ok(self
            .store
            .load(std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .map(|l| l.aggregate)
            .unwrap_or_default())
    }

    async fn run(
        &self,
        ctx: &CommandContext,
        make: impl FnMut() -> OperatorCommand + Send,
    ) -> Result<bool, AppError> {
        let ctx = ctx.for_tenant(TenantId::ORGANISATION);
        let position = execute_with_retry(
            self.store.as_ref(),
            OPERATORS_ID,
            make,
            &ctx.metadata(self.shared.clock.now()),
        )
        .await
        .map_err(map_error)?;
        Ok(position.is_some())
    }

    /// Issues a key (shown once).
    ///
    /// # Errors
    /// 409 when too many keys work already.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
    pub async fn issue(
        &self,
        ctx: &CommandContext,
        name: KeyName,
    ) -> Result<Written<IssuedOperatorKey>, AppError> {
        let secret = self.shared.random_bytes::<32>();
        let api_key = format!("{OPERATOR_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let hint = format!(
            "{OPERATOR_KEY_PREFIX}…{}",
            &api_key[api_key.len().saturating_sub(4)..]
        );
        let key_id = self.shared.entropy.new_id();
        let at = self.shared.clock.now();
        let command = IssueOperatorKey {
            key_id,
            name: name.clone(),
            key_hash: hash_key(&api_key),
            hint: hint.clone(),
            at,
        };
        self.run(ctx, || OperatorCommand::Issue(command.clone()))
            .await?;
        tracing::info!(key_id = %key_id, "operator key issued");
        Ok(Written {
            value: IssuedOperatorKey {
                view: OperatorKeyView {
                    id: key_id,
                    name: name.as_str().to_string(),
                    hint,
                    created_at: at,
                    revoked_at: None,
                },
                api_key,
            },
            consistent: true,
        })
    }

    /// Every key ever issued, oldest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self) -> Result<Vec<OperatorKeyView>, AppError> {
        Ok(self.current().await?.keys().iter().map(view).collect())
    }

    /// Revokes a key from now on.
    ///
    /// # Errors
    /// 404 for an unknown key.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, key_id = %key_id))]
    pub async fn revoke(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
    ) -> Result<Written<()>, AppError> {
        self.run(ctx, || {
            OperatorCommand::Revoke(RevokeOperatorKey {
                key_id,
                at: self.shared.clock.now(),
            })
        })
        .await?;
        tracing::info!("operator key revoked");
        Ok(Written {
            value: (),
            consistent: true,
        })
    }

    /// Whether operator key `key_id` works (issued and not revoked).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn works(&self, key_id: Uuid) -> Result<bool, AppError> {
        Ok(self
            .current()
            .await?
            .keys()
            .iter()
            .any(|k| k.key_id == key_id && k.revoked_at.is_none()))
    }

    /// The id of the working operator key `token` is, if it is one.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Uuid>, AppError> {
        if !token.starts_with(OPERATOR_KEY_PREFIX) || token.len() > MAX_KEY_LEN {
            return Ok(None);
        }
        let hash = hash_key(token);
        Ok(self.current().await?.find(&hash).map(|k| k.key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Actor, RequestId};
    use crate::testing::World;

    fn ctx() -> CommandContext {
        CommandContext {
            request_id: RequestId::from_client("req-op").unwrap(),
            tenant_id: TenantId::ORGANISATION,
            actor: Actor::Admin,
        }
    }

    #[tokio::test]
    async fn an_operator_key_works_until_revoked_and_only_its_digest_is_stored() {
        let world = World::default();
        let service = OperatorService::new(world.shared.clone(), world.store(()));
        let issued = service
            .issue(&ctx(), KeyName::parse("svix migration").unwrap())
            .await
            .unwrap()
            .value;
        assert!(issued.api_key.starts_with("hlo_"));
        assert_eq!(
            service.authenticate(&issued.api_key).await.unwrap(),
            Some(issued.view.id)
        );
        assert_eq!(service.authenticate("hlo_nope").await.unwrap(), None);
        assert_eq!(service.authenticate("hlk_other").await.unwrap(), None);
        let logged: String = world
            .log
            .all()
            .iter()
            .map(|e| e.payload.as_str().to_string())
            .collect();
        assert!(!logged.contains(&issued.api_key));
        assert!(logged.contains(&hash_key(&issued.api_key)));
        service.revoke(&ctx(), issued.view.id).await.unwrap();
        assert_eq!(service.authenticate(&issued.api_key).await.unwrap(), None);
        assert!(service.list().await.unwrap()[0].revoked_at.is_some());
        let err = service.revoke(&ctx(), Uuid::nil()).await.unwrap_err();
        assert!(matches!(err, AppError::NothingFound { .. }), "{err:?}");
    }
}
