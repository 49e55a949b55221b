//! Request and response bodies of `/v1/portal-sessions`.

use chrono::{DateTime, Utc};
use hookline_application::pagination::PageRequest;
use hookline_application::portal::{IssueLink, PortalLinkView};
use hookline_application::AppError;
use hookline_domain::SubscriptionId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `POST /v1/portal-sessions` (every field optional).
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePortalSessionRequest {
    /// Seconds the link stays valid: 1–604800 (7 days), default 3600.
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 1, maximum = 604800)]
    pub expires_in: Option<i64>,
    /// The link's holder can look but not change anything (default false).
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Only these subscriptions (of the caller's tenant, not deleted) are
    /// visible, and none can be created; absent: the whole tenant.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, min_items = 1, max_items = 100)]
    pub subscription_filter: Option<Vec<String>>,
}

impl CreatePortalSessionRequest {
    /// # Errors
    /// Validation errors naming the field.
    pub fn into_input(self) -> Result<IssueLink, AppError> {
        let filter = self
            .subscription_filter
            .map(|ids| {
                ids.iter()
                    .map(|id| {
                        SubscriptionId::parse(id).map_err(|e| {
                            hookline_domain::ValidationError::new("subscription_filter", e.reason)
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        IssueLink::new(self.expires_in, self.read_only.unwrap_or(false), filter)
    }
}

/// What creating a portal session answers: the link (shown only here).
#[derive(Serialize, ToSchema)]
pub struct PortalSessionCreatedResponse {
    pub id: Uuid,
    /// The link to hand to the customer; its token is shown only here.
    #[schema(format = "uri")]
    pub url: String,
    pub expires_at: DateTime<Utc>,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, nullable = false)]
    pub subscription_filter: Option<Vec<SubscriptionId>>,
}

impl std::fmt::Debug for PortalSessionCreatedResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSessionCreatedResponse")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One opening of the link.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalUseResponse {
    pub opened_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub request_id: Option<String>,
}

/// A portal session (link) and every use of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalSessionResponse {
    pub id: Uuid,
    pub status: PortalSessionStatus,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, nullable = false)]
    pub subscription_filter: Option<Vec<SubscriptionId>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub revoked_at: Option<DateTime<Utc>>,
    pub uses: Vec<PortalUseResponse>,
}

impl PortalSessionResponse {
    pub fn of(v: PortalLinkView, now: DateTime<Utc>) -> Self {
        Self {
            id: v.id,
            status: PortalSessionStatus::of(&v, now),
            read_only: v.read_only,
            subscription_filter: v.subscription_filter,
            created_at: v.issued_at,
            expires_at: v.expires_at,
            revoked_at: v.revoked_at,
            uses: v
                .uses
                .into_iter()
                .map(|u| PortalUseResponse {
                    opened_at: u.opened_at,
                    request_id: u.request_id,
                })
                .collect(),
        }
    }
}

/// Query parameters of `GET /v1/portal-sessions`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPortalSessionsQuery {
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl ListPortalSessionsQuery {
    /// # Errors
    /// Validation errors for `limit` or `cursor`.
    pub fn into_page(self) -> Result<PageRequest, AppError> {
        PageRequest::parse(self.limit, self.cursor.as_deref())
    }
}

/// Where a link stands now.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PortalSessionStatus {
    /// It opens the console (until `expires_at`).
    Active,
    /// Its time is over.
    Expired,
    /// Revoked (by the tenant, or by its holder's logout).
    Revoked,
    /// What made it no longer stands: the API key or operator key that
    /// made it is revoked, or the admin token that made it is another.
    Ended,
}

impl PortalSessionStatus {
    pub fn of(v: &PortalLinkView, now: DateTime<Utc>) -> Self {
        if v.revoked_at.is_some() {
            Self::Revoked
        } else if now >= v.expires_at {
            Self::Expired
        } else if v.ended {
            Self::Ended
        } else {
            Self::Active
        }
    }
}

/// A portal session (link) in a list: its uses counted, not listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalSessionSummary {
    pub id: Uuid,
    pub status: PortalSessionStatus,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, nullable = false)]
    pub subscription_filter: Option<Vec<SubscriptionId>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// How many times it was opened.
    pub uses: usize,
}

impl PortalSessionSummary {
    pub fn of(v: PortalLinkView, now: DateTime<Utc>) -> Self {
        Self {
            id: v.id,
            status: PortalSessionStatus::of(&v, now),
            read_only: v.read_only,
            subscription_filter: v.subscription_filter,
            created_at: v.issued_at,
            expires_at: v.expires_at,
            revoked_at: v.revoked_at,
            uses: v.uses.len(),
        }
    }
}
