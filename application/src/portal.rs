//! Portal links: a tenant issues a signed, short-lived link for one of its
//! own customers; opening it starts a console session scoped to the tenant
//! (optionally read-only, optionally to some subscriptions). Every opening
//! and the revocation are events of the link's `PortalLink` aggregate.
//!
//! The token is `hlp_` + base64url(link id ‖ HMAC-SHA256(server key, link
//! id)): unforgeable without the server key, and nothing in the log lets
//! its reader rebuild it.

use crate::commands::{execute_with_retry, Written};
use crate::context::{Actor, CommandContext, RequestId};
use crate::error::AppError;
use crate::operators::OperatorService;
use crate::pagination::{encode_cursor, Page, PageRequest};
use crate::ports::{AggregateStore, LinkSigner, SubscriptionReadModel, TenantReadModel};
use crate::shared::Shared;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use hookline_domain::portal::{
    IssuePortalLink, PortalLink, PortalLinkCommand, PortalLinkError, PortalLinkEvent,
    PortalLinkState, DEFAULT_LINK_SECONDS, MAX_FILTER_IDS, MAX_LINK_SECONDS, MIN_LINK_SECONDS,
};
use hookline_domain::subscription::SubscriptionStatus;
use hookline_domain::tenant::TenantStatus;
use hookline_domain::{SubscriptionId, TenantId, ValidationError};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

pub const PORTAL_TOKEN_PREFIX: &str = "hlp_";
const SIGNING_CONTEXT: &[u8] = b"hookline:portal-link:v1:";
/// What a link made with the admin token records of it: a tag of the
/// token's SHA-256 under the server key, never the token nor its plain hash.
const ADMIN_SEAL_CONTEXT: &[u8] = b"hookline:portal-link:admin-token:v1:";

/// What a tenant asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueLink {
    pub expires_in: chrono::Duration,
    pub read_only: bool,
    pub subscription_filter: Option<Vec<SubscriptionId>>,
}

impl IssueLink {
    /// Checks the requested life and filter size.
    ///
    /// # Errors
    /// Validation errors naming `expires_in` or `subscription_filter`.
    pub fn new(
        expires_in: Option<i64>,
        read_only: bool,
        subscription_filter: Option<Vec<SubscriptionId>>,
    ) -> Result<Self, AppError> {
        let seconds = expires_in.unwrap_or(DEFAULT_LINK_SECONDS);
        if !(MIN_LINK_SECONDS..=MAX_LINK_SECONDS).contains(&seconds) {
            return Err(ValidationError::new(
                "expires_in",
                format!("must be {MIN_LINK_SECONDS}–{MAX_LINK_SECONDS} seconds"),
            )
            .into());
        }
        if let Some(ids) = &subscription_filter {
            if ids.is_empty() || ids.len() > MAX_FILTER_IDS {
                return Err(ValidationError::new(
                    "subscription_filter",
                    format!("must list 1–{MAX_FILTER_IDS} subscription ids (or be left out)"),
                )
                .into());
            }
        }
        let mut filter = subscription_filter;
        if let Some(ids) = filter.as_mut() {
            ids.sort();
            ids.dedup();
        }
        Ok(Self {
            expires_in: chrono::Duration::seconds(seconds),
            read_only,
            subscription_filter: filter,
        })
    }
}

/// A link just issued: the only time its token is visible.
#[derive(Clone, PartialEq)]
pub struct IssuedLink {
    pub id: Uuid,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub read_only: bool,
    pub subscription_filter: Option<Vec<SubscriptionId>>,
}

impl fmt::Debug for IssuedLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedLink")
            .field("id", &self.id)
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What an open link allows: the scope of the console session it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalGrant {
    pub link_id: Uuid,
    pub tenant_id: TenantId,
    pub read_only: bool,
    pub subscription_filter: Option<Vec<SubscriptionId>>,
    pub expires_at: DateTime<Utc>,
}

impl PortalGrant {
    /// Whether the grant reaches this subscription.
    pub fn covers(&self, id: SubscriptionId) -> bool {
        self.subscription_filter
            .as_ref()
            .is_none_or(|ids| ids.contains(&id))
    }

    /// The command context of what the link's holder does.
    pub fn context(&self, request_id: RequestId) -> CommandContext {
        CommandContext {
            request_id,
            tenant_id: self.tenant_id,
            actor: Actor::Portal(self.link_id),
        }
    }
}

impl From<&PortalLinkState> for PortalGrant {
    fn from(s: &PortalLinkState) -> Self {
        Self {
            link_id: s.link_id,
            tenant_id: s.tenant_id,
            read_only: s.read_only,
            subscription_filter: s.subscription_filter.clone(),
            expires_at: s.expires_at,
        }
    }
}

/// One opening of a link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkUse {
    pub opened_at: DateTime<Utc>,
    pub request_id: Option<String>,
}

/// A link as its tenant sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PortalLinkView {
    pub id: Uuid,
    pub read_only: bool,
    pub subscription_filter: Option<Vec<SubscriptionId>>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// What made it no longer stands (the API key or operator key is
    /// revoked, the admin token is another, the tenant is deleted): it
    /// opens nothing, whatever its expiry.
    pub ended: bool,
    pub uses: Vec<LinkUse>,
}

/// Whether what a link stands on is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    Backed,
    /// The tenant is deleted (or unknown).
    TenantGone,
    /// The key, operator key or admin token it was made with no longer works.
    MakerGone,
}

pub struct PortalService {
    shared: Shared,
    store: Arc<dyn AggregateStore<PortalLink>>,
    signer: Arc<dyn LinkSigner>,
    subscriptions: Arc<dyn SubscriptionReadModel>,
    tenants: Arc<dyn TenantReadModel>,
    operators: Arc<OperatorService>,
    /// The SHA-256 of this process's admin token, if it has one.
    admin_token: Option<[u8; 32]>,
}

impl fmt::Debug for PortalService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalService").finish_non_exhaustive()
    }
}

fn map_error(id: Uuid, e: AggregateError<PortalLinkError>) -> AppError {
    match e {
        AggregateError::UserError(PortalLinkError::NotFound) => {
            AppError::not_found("portal session", id)
        }
        AggregateError::UserError(PortalLinkError::Expired) => AppError::conflict(
            "portal_link_expired",
            "this portal link has expired; ask for a new one",
        ),
        AggregateError::UserError(PortalLinkError::Revoked) => AppError::conflict(
            "portal_link_revoked",
            "this portal link has been revoked; ask for a new one",
        ),
        AggregateError::UserError(PortalLinkError::UsedUp) => AppError::conflict(
            "portal_link_used_up",
            format!(
                "this portal link has been opened {} times, its limit; ask for a new one",
                hookline_domain::portal::MAX_OPENS
            ),
        ),
        AggregateError::UserError(other) => {
            AppError::conflict("portal_link_conflict", other.to_string())
        }
        other => crate::commands::map_store_error(other),
    }
}

fn invalid_link() -> AppError {
    AppError::NothingFound {
        code: "portal_link_invalid",
        detail: "this portal link is not valid; check that it was copied whole".into(),
    }
}

impl PortalService {
    pub fn new(
        shared: Shared,
        store: Arc<dyn AggregateStore<PortalLink>>,
        signer: Arc<dyn LinkSigner>,
        subscriptions: Arc<dyn SubscriptionReadModel>,
        tenants: Arc<dyn TenantReadModel>,
        operators: Arc<OperatorService>,
        admin_token: Option<&str>,
    ) -> Self {
        Self {
            shared,
            store,
            signer,
            subscriptions,
            tenants,
            operators,
            admin_token: admin_token.map(|t| Sha256::digest(t.as_bytes()).into()),
        }
    }

    fn admin_seal_message(digest: &[u8; 32]) -> Vec<u8> {
        let mut m = ADMIN_SEAL_CONTEXT.to_vec();
        m.extend_from_slice(digest);
        m
    }

    /// The seal a link made now with the admin token records.
    fn admin_seal(&self) -> Result<Option<String>, AppError> {
        self.admin_token
            .as_ref()
            .map(|d| Ok(hex::encode(self.signer.sign(&Self::admin_seal_message(d))?)))
            .transpose()
    }

    /// Whether `seal` was made with this process's admin token.
    fn admin_seal_holds(&self, seal: &str) -> bool {
        match (&self.admin_token, hex::decode(seal)) {
            (Some(d), Ok(tag)) => self.signer.verify(&Self::admin_seal_message(d), &tag),
            _ => false,
        }
    }

    fn message(id: Uuid) -> Vec<u8> {
        let mut m = SIGNING_CONTEXT.to_vec();
        m.extend_from_slice(id.as_bytes());
        m
    }

    fn token(&self, id: Uuid) -> Result<String, AppError> {
        let tag = self.signer.sign(&Self::message(id))?;
        let mut raw = id.as_bytes().to_vec();
        raw.extend_from_slice(&tag);
        Ok(format!(
            "{PORTAL_TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(raw)
        ))
    }

    /// The link id a token names, if its signature holds.
    pub fn verify_token(&self, token: &str) -> Option<Uuid> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.strip_prefix(PORTAL_TOKEN_PREFIX)?)
            .ok()?;
        if raw.len() != 48 {
            return None;
        }
        let id = Uuid::from_slice(&raw[..16]).ok()?;
        self.signer
            .verify(&Self::message(id), &raw[16..])
            .then_some(id)
    }

    async fn load(&self, id: Uuid) -> Result<Option<PortalLinkState>, AppError> {
        let key = id.to_string();
        Ok(self
            .store
            .load(std::slice::from_ref(&key))
            .await?
            .remove(&key)
            .and_then(|l| l.aggregate.state().cloned()))
    }

    /// Issues a link for the caller's tenant. With a filter, every listed
    /// subscription must be the tenant's and not deleted.
    ///
    /// # Errors
    /// Validation errors for unknown subscriptions.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn issue(
        &self,
        ctx: &CommandContext,
        input: IssueLink,
    ) -> Result<Written<IssuedLink>, AppError> {
        if let Some(ids) = &input.subscription_filter {
            for id in ids {
                let found = self.subscriptions.get(ctx.tenant_id, *id).await?;
                if found.is_none_or(|r| r.state.status == SubscriptionStatus::Deleted) {
                    return Err(ValidationError::new(
                        "subscription_filter",
                        format!("subscription '{id}' was not found"),
                    )
                    .into());
                }
            }
        }
        let id = self.shared.entropy.new_id();
        let token = self.token(id)?;
        let at = self.shared.clock.now();
        let mut expires_at = at + input.expires_in;
        // A link made with an API key that is being retired (an earlier
        // rotation's overlap, a revocation taking effect later) ends when
        // the key does: a leaked key must not mint access that outlives it.
        if let crate::context::Actor::ApiKey(key_id) = &ctx.actor {
            let retires = self
                .tenants
                .get(ctx.tenant_id)
                .await?
                .and_then(|t| t.key(*key_id).and_then(|k| k.revoked_from));
            if let Some(retires) = retires {
                expires_at = expires_at.min(retires);
            }
        }
        let issued_with_key = match &ctx.actor {
            Actor::ApiKey(key_id) => Some(*key_id),
            _ => None,
        };
        let issued_with_operator_key = match &ctx.actor {
            Actor::OperatorKey(key_id) => Some(*key_id),
            _ => None,
        };
        // A link made with the admin token ends when the server's admin
        // token changes (its sessions as well), as a console session
        // signed in with it does.
        let issued_with_admin_token = match &ctx.actor {
            Actor::Admin => self.admin_seal()?,
            _ => None,
        };
        let command = IssuePortalLink {
            link_id: id,
            tenant_id: ctx.tenant_id,
            read_only: input.read_only,
            subscription_filter: input.subscription_filter.clone(),
            expires_at,
            issued_with_key,
            issued_with_operator_key,
            issued_with_admin_token,
            at,
        };
        execute_with_retry(
            self.store.as_ref(),
            &id.to_string(),
            || PortalLinkCommand::Issue(command.clone()),
            &ctx.metadata(at),
        )
        .await
        .map_err(|e| map_error(id, e))?;
        tracing::info!(link_id = %id, "portal link issued");
        Ok(Written {
            value: IssuedLink {
                id,
                token,
                expires_at,
                read_only: input.read_only,
                subscription_filter: input.subscription_filter,
            },
            consistent: true,
        })
    }

    /// Opens a link: checks its signature, that it is neither expired nor
    /// revoked and that its tenant still exists, and records the use.
    ///
    /// # Errors
    /// 404 `portal_link_invalid` for a forged or unknown token; 409
    /// `portal_link_expired` / `portal_link_revoked`.
    pub async fn open(&self, token: &str, request_id: RequestId) -> Result<PortalGrant, AppError> {
        let id = self.verify_token(token).ok_or_else(invalid_link)?;
        let state = self.load(id).await?.ok_or_else(invalid_link)?;
        let at = self.shared.clock.now();
        self.still_backed(id, &state, at).await?;
        let grant = PortalGrant::from(&state);
        execute_with_retry(
            self.store.as_ref(),
            &id.to_string(),
            || PortalLinkCommand::Open { at },
            &grant.context(request_id.clone()).metadata(at),
        )
        .await
        .map_err(|e| map_error(id, e))?;
        tracing::info!(link_id = %id, tenant_id = %state.tenant_id, "portal link opened");
        Ok(grant)
    }

    /// Whether the link's tenant is still active and the API key (or
    /// operator key, or admin token) it was made with still works: a link
    /// made with a key revoked since (one that leaked, say), or with an
    /// admin token changed since, opens nothing, and its sessions end.
    async fn still_backed(
        &self,
        id: Uuid,
        state: &PortalLinkState,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        match self.backing(state, now).await? {
            Backing::Backed => Ok(()),
            Backing::MakerGone => Err(map_error(
                id,
                AggregateError::UserError(PortalLinkError::Revoked),
            )),
            Backing::TenantGone => Err(invalid_link()),
        }
    }

    async fn backing(
        &self,
        state: &PortalLinkState,
        now: DateTime<Utc>,
    ) -> Result<Backing, AppError> {
        let Some(t) = self
            .tenants
            .get(state.tenant_id)
            .await?
            .filter(|t| t.status == TenantStatus::Active)
        else {
            return Ok(Backing::TenantGone);
        };
        let key_works = state
            .issued_with_key
            .is_none_or(|k| t.key(k).is_some_and(|key| key.works_at(now)));
        let operator_key_works = match state.issued_with_operator_key {
            Some(k) => self.operators.works(k).await?,
            None => true,
        };
        let admin_token_same = state
            .issued_with_admin_token
            .as_deref()
            .is_none_or(|seal| self.admin_seal_holds(seal));
        Ok(if key_works && operator_key_works && admin_token_same {
            Backing::Backed
        } else {
            Backing::MakerGone
        })
    }

    /// Whether a session opened with link `id` may still act: the link is
    /// neither revoked (by any process) nor expired.
    ///
    /// # Errors
    /// As [`PortalService::open`].
    pub async fn check(&self, id: Uuid) -> Result<PortalGrant, AppError> {
        let state = self.load(id).await?.ok_or_else(invalid_link)?;
        let now = self.shared.clock.now();
        state
            .usable_at(now)
            .map_err(|e| map_error(id, AggregateError::UserError(e)))?;
        self.still_backed(id, &state, now).await?;
        Ok(PortalGrant::from(&state))
    }

    /// Revokes one of the caller's tenant's links: it no longer opens, and
    /// sessions opened with it end at their next request.
    ///
    /// # Errors
    /// 404 for a link of another tenant or none.
    pub async fn revoke(&self, ctx: &CommandContext, id: Uuid) -> Result<Written<()>, AppError> {
        let at = self.shared.clock.now();
        execute_with_retry(
            self.store.as_ref(),
            &id.to_string(),
            || PortalLinkCommand::Revoke {
                tenant_id: ctx.tenant_id,
                at,
            },
            &ctx.metadata(at),
        )
        .await
        .map_err(|e| map_error(id, e))?;
        Ok(Written {
            value: (),
            consistent: true,
        })
    }

    /// Revokes the link `token` is, by its holder (the Svix-compatible
    /// API's logout): the link opens nothing more and its sessions end.
    /// Logging out a revoked link records nothing more; an expired one is
    /// recorded as revoked too.
    ///
    /// # Errors
    /// 404 `portal_link_invalid` for a forged or unknown token.
    #[tracing::instrument(skip_all, fields(request_id = %request_id))]
    pub async fn log_out(&self, token: &str, request_id: RequestId) -> Result<(), AppError> {
        let id = self.verify_token(token).ok_or_else(invalid_link)?;
        let state = self.load(id).await?.ok_or_else(invalid_link)?;
        let grant = PortalGrant::from(&state);
        self.revoke(&grant.context(request_id), id).await?;
        tracing::info!(link_id = %id, tenant_id = %state.tenant_id, "portal link logged out");
        Ok(())
    }

    /// The tenant's links that may still open, newest first: those issued
    /// within the longest life a link may have (7 days), revoked and
    /// expired ones among them too. Link ids are UUIDv7, so these are the
    /// links whose ids are past the id of that moment.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<PortalLinkView>, AppError> {
        let since = self.shared.clock.now() - chrono::Duration::seconds(MAX_LINK_SECONDS);
        let firsts = self
            .shared
            .log
            .first_events_in_id_range(
                PortalLink::TYPE,
                tenant,
                lowest_v7_id_at(since),
                page.before.map(|(_, id)| id),
                page.limit.saturating_add(1),
            )
            .await?;
        let more = firsts.len() > page.limit as usize;
        let mut data = Vec::with_capacity(firsts.len());
        for first in firsts.iter().take(page.limit as usize) {
            let id = Uuid::parse_str(&first.aggregate_id)
                .map_err(|e| AppError::Internal(format!("a portal link's id: {e}")))?;
            data.push(self.get(tenant, id).await?);
        }
        let next_cursor = if more {
            data.last().map(|v| encode_cursor(v.issued_at, v.id))
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }

    /// A link of the tenant, with every use, from its events.
    ///
    /// # Errors
    /// 404 for a link of another tenant or none.
    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<PortalLinkView, AppError> {
        let events = self
            .shared
            .log
            .aggregate_history(PortalLink::TYPE, &id.to_string())
            .await?;
        let mut link = PortalLink::default();
        let mut uses = Vec::new();
        for stored in &events {
            let event: PortalLinkEvent = crate::fold::parse::<PortalLink>(stored)?;
            if let PortalLinkEvent::PortalLinkOpened { opened_at } = &event {
                uses.push(LinkUse {
                    opened_at: *opened_at,
                    request_id: stored.request().map(|m| m.request_id),
                });
            }
            link.apply_event(event);
        }
        let state = link
            .state()
            .filter(|s| s.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("portal session", id))?;
        let ended = self.backing(state, self.shared.clock.now()).await? != Backing::Backed;
        Ok(PortalLinkView {
            id,
            read_only: state.read_only,
            subscription_filter: state.subscription_filter.clone(),
            issued_at: state.issued_at,
            expires_at: state.expires_at,
            revoked_at: state.revoked_at,
            ended,
            uses,
        })
    }
}

/// The lowest UUIDv7 of the millisecond `at`: every v7 id made at or after
/// `at` is greater.
fn lowest_v7_id_at(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or_default();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod id_range_tests {
    use super::lowest_v7_id_at;
    use chrono::{Duration, TimeZone, Utc};
    use uuid::{NoContext, Timestamp, Uuid};

    fn v7_at(at: chrono::DateTime<Utc>) -> Uuid {
        let secs = u64::try_from(at.timestamp()).unwrap();
        Uuid::new_v7(Timestamp::from_unix(
            NoContext,
            secs,
            at.timestamp_subsec_nanos(),
        ))
    }

    #[test]
    fn ids_made_at_or_after_a_moment_sort_after_its_lowest_id_as_text_too() {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 1, 2, 3).unwrap() + Duration::milliseconds(456);
        let floor = lowest_v7_id_at(at);
        assert_eq!(floor.get_version_num(), 7);
        for later in [at, at + Duration::milliseconds(1), at + Duration::days(3)] {
            let id = v7_at(later);
            assert!(
                id >= floor && id.to_string() >= floor.to_string(),
                "{id} {floor}"
            );
        }
        let earlier = v7_at(at - Duration::milliseconds(1));
        assert!(earlier < floor && earlier.to_string() < floor.to_string());
    }
}
