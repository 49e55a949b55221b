//! Request and response bodies of `/v1/connectors/siigo/subscriptions`,
//! and the checks the HTTP API and the CLI share.

use crate::routes::sources::dto::SourceResponse;
use chrono::{DateTime, Utc};
use hookline_application::connectors::{
    partner_id_for, SiigoEvents, SiigoProvision, SiigoTarget, UpstreamView, DEFAULT_SIIGO_BASE_URL,
};
use hookline_application::error::Validator;
use hookline_application::ports::SiigoAccount;
use hookline_application::AppError;
use hookline_domain::subscription::CustomHeaders;
use hookline_domain::upstream::{UpstreamStatus, UpstreamTopic};
use hookline_domain::validation::check_free_text;
use hookline_domain::{AllowList, SourceId, TargetUrl, TenantId, UpstreamId, ValidationError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `events`: a list, or the seed's comma-separated text.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum EventsBody {
    List(Vec<String>),
    Text(String),
}

/// `POST /v1/connectors/siigo/subscriptions`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// Where Siigo delivers (or `via_source`).
    #[serde(default)]
    pub url: Option<String>,
    /// Create a `header-secret` source and have Siigo deliver to it.
    #[serde(default)]
    pub via_source: Option<bool>,
    #[serde(default)]
    pub events: Option<EventsBody>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub partner_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// A Siigo stand-in's base URL (the sandbox) instead of
    /// https://api.siigo.com.
    #[serde(default)]
    pub sandbox_url: Option<String>,
}

impl fmt::Debug for ProvisionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionRequest")
            .field("url", &self.url)
            .field("via_source", &self.via_source)
            .field("events", &self.events)
            .field("sandbox_url", &self.sandbox_url)
            .finish_non_exhaustive()
    }
}

fn credential(
    v: &mut Validator,
    field: &str,
    value: Option<String>,
    required: bool,
    max: usize,
) -> String {
    match value {
        None if required => {
            v.fail(ValidationError::new(field, "is required"));
            String::new()
        }
        None => String::new(),
        Some(s) => {
            if (required && s.trim().is_empty())
                || s.chars().count() > max
                || s.chars().any(char::is_control)
            {
                v.fail(ValidationError::new(
                    field,
                    format!(
                        "must be {}–{max} characters without control characters",
                        usize::from(required)
                    ),
                ));
            }
            s
        }
    }
}

/// Where Siigo is: `sandbox_url` (checked like a target URL: https, or an
/// address `allow` permits) or the real API.
///
/// # Errors
/// A sandbox URL that is not usable.
pub fn siigo_base(sandbox_url: Option<&str>, allow: &AllowList) -> Result<String, ValidationError> {
    match sandbox_url {
        None => Ok(DEFAULT_SIIGO_BASE_URL.to_string()),
        Some(raw) => {
            let url = TargetUrl::parse(raw, allow)
                .map_err(|e| ValidationError::new("sandbox_url", e.reason))?;
            let text = url.as_str().trim_end_matches('/').to_string();
            if text.contains('?') || text.contains('#') {
                return Err(ValidationError::new(
                    "sandbox_url",
                    "must be a base URL without query or fragment",
                ));
            }
            Ok(text)
        }
    }
}

impl ProvisionRequest {
    /// # Errors
    /// Validation errors naming every bad field.
    pub fn into_provision(self, allow: &AllowList) -> Result<SiigoProvision, AppError> {
        let mut v = Validator::default();
        let target = match (self.url.as_deref(), self.via_source == Some(true)) {
            (Some(_), true) => {
                v.fail(ValidationError::new(
                    "url",
                    "give either url or via_source: true, not both",
                ));
                None
            }
            (Some(u), false) => v
                .check(TargetUrl::parse(u, allow))
                .map(|u| SiigoTarget::Url(u.to_string())),
            (None, true) => Some(SiigoTarget::ViaSource),
            (None, false) => {
                v.fail(ValidationError::new(
                    "url",
                    "is required (or via_source: true, to receive Siigo's webhooks through a new source)",
                ));
                None
            }
        };
        let events = match self.events {
            Some(EventsBody::List(list)) => v.check(SiigoEvents::parse_list(&list)),
            Some(EventsBody::Text(text)) => v.check(SiigoEvents::parse_list(&[text])),
            None => {
                v.fail(ValidationError::new("events", "is required"));
                None
            }
        };
        let username = credential(&mut v, "username", self.username, true, 200);
        let access_key = credential(&mut v, "access_key", self.access_key, true, 500);
        let client_id = credential(&mut v, "client_id", self.client_id, false, 500);
        let client_secret = credential(&mut v, "client_secret", self.client_secret, false, 500);
        let partner_id = v.check(partner_id_for(self.partner_id.as_deref(), &client_id));
        let base_url = v.check(siigo_base(self.sandbox_url.as_deref(), allow));
        let description = match self.description {
            Some(d) if !d.is_empty() => v
                .check(check_free_text("description", &d, 500))
                .map(|()| Some(d)),
            _ => Some(None),
        };
        let headers = v.check(CustomHeaders::parse(self.headers.unwrap_or_default()));
        v.finish()?;
        match (target, events, partner_id, base_url, description, headers) {
            (
                Some(target),
                Some(events),
                Some(partner_id),
                Some(base_url),
                Some(description),
                Some(headers),
            ) => Ok(SiigoProvision {
                target,
                events,
                account: SiigoAccount {
                    base_url,
                    username,
                    access_key,
                    client_id,
                    client_secret,
                    partner_id,
                },
                description,
                headers: headers.as_map().clone(),
            }),
            _ => Err(AppError::Internal(
                "validation passed without values".into(),
            )),
        }
    }
}

/// Query of the list.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListUpstreamQuery {
    #[serde(default)]
    pub include_removed: Option<bool>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct UpstreamTopicResponse {
    pub event: String,
    pub topic: String,
    /// Siigo's id for this subscription.
    pub upstream_id: String,
}

/// A subscription provisioned at Siigo (no credentials).
#[derive(Debug, Serialize)]
pub struct UpstreamResponse {
    pub id: UpstreamId,
    pub tenant_id: TenantId,
    pub provider: &'static str,
    pub base_url: String,
    pub url: String,
    pub events: Vec<UpstreamTopicResponse>,
    /// Siigo's ids, in the order of `events`.
    pub upstream_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub header_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_id: Option<SourceId>,
    /// The Siigo username, masked.
    pub account: String,
    pub status: UpstreamStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The source `via_source` created, with its secret (this answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceResponse>,
}

impl From<UpstreamView> for UpstreamResponse {
    fn from(v: UpstreamView) -> Self {
        Self {
            id: v.id,
            tenant_id: v.tenant_id,
            provider: v.provider.as_str(),
            base_url: v.base_url,
            url: v.url,
            upstream_ids: v.topics.iter().map(|t| t.upstream_id.clone()).collect(),
            events: v
                .topics
                .into_iter()
                .map(
                    |UpstreamTopic {
                         event,
                         topic,
                         upstream_id,
                     }| UpstreamTopicResponse {
                        event,
                        topic,
                        upstream_id,
                    },
                )
                .collect(),
            description: v.description,
            header_names: v.header_names,
            source_id: v.source_id,
            account: v.account,
            status: v.status,
            created_at: v.created_at,
            updated_at: v.updated_at,
            source: v.source.map(SourceResponse::from),
        }
    }
}
