//! Request and response bodies of `/v1/connectors/siigo/subscriptions`,
//! and the checks the HTTP API and the CLI share.

use crate::routes::openapi::schemas::UpstreamStatusSchema;
use crate::routes::sources::dto::SourceResponse;
use chrono::{DateTime, Utc};
use hookline_application::connectors::{
    partner_id_for, SiigoEvents, SiigoProvision, SiigoTarget, UpstreamView,
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
use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{IntoParams, ToSchema};

/// `events`: a list, or the seed's comma-separated text
/// (`products.create,products.update`). Each is a Siigo topic
/// (`public.siigoapi.products.create`) or its short name
/// (`products.create`); at most 20, one subscription at Siigo each.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum EventsBody {
    List(Vec<String>),
    Text(String),
}

const EVENT_NAME_PATTERN: &str = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$";

impl utoipa::PartialSchema for EventsBody {
    fn schema() -> RefOr<Schema> {
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(100))
            .pattern(Some(EVENT_NAME_PATTERN));
        OneOfBuilder::new()
            .item(ArrayBuilder::new().items(name).min_items(Some(1)).max_items(Some(20)))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(1100))
                    .pattern(Some(
                        r"^ *[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)* *(, *[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)* *){0,19}$",
                    )),
            )
            .description(Some(
                "Siigo topics (`public.siigoapi.products.create`) or their short names \
                 (`products.create`): a list, or the seed's comma-separated text; at most 20, \
                 each a subscription at Siigo.",
            ))
            .examples([serde_json::json!(["products.create", "products.stock.update"])])
            .into()
    }
}

impl ToSchema for EventsBody {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("SiigoEvents")
    }
}

/// `POST /v1/connectors/siigo/subscriptions`: the seed tool's arguments.
/// Exactly one of `url` and `via_source: true`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// Where Siigo delivers: checked like a subscription's URL (https; a
    /// private address only when HOOKLINE_ALLOW_PRIVATE_TARGETS allows it).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = "uri", min_length = 10, max_length = 2048)]
    pub url: Option<String>,
    /// Create a `header-secret` source and have Siigo deliver to its
    /// ingest URL, with the source's secret in the custom header.
    #[serde(default)]
    pub via_source: Option<bool>,
    #[serde(default)]
    #[schema(value_type = EventsBody, required = true)]
    pub events: Option<EventsBody>,
    /// The Siigo API user (usually an e-mail), 1–200 characters.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub username: Option<String>,
    /// The user's access key, 1–500 characters; stored sealed, never shown.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub access_key: Option<String>,
    /// The seed's OAuth-style client id: the `Partner-Id` sent to Siigo
    /// when it is 3–100 letters and digits and `partner_id` is absent;
    /// stored sealed.
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub client_id: Option<String>,
    /// The seed's OAuth-style client secret: stored sealed; the current
    /// Siigo API has no use for it, so it is sent nowhere.
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub client_secret: Option<String>,
    /// Siigo's `Partner-Id` header: 3–100 letters and digits.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9]{3,100}$")]
    pub partner_id: Option<String>,
    /// Sent to Siigo as the subscription's `name` and kept here, at most
    /// 500 characters.
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
    /// Custom headers Siigo is asked to send with each delivery (the same
    /// rules as a subscription's `headers`).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// A local Siigo stand-in (`hookline connectors siigo sandbox`)
    /// instead of HOOKLINE_SIIGO_URL: an IP address HOOKLINE_ALLOW_PRIVATE_TARGETS
    /// allows (Siigo has no public sandbox host), plain `http://` only on
    /// loopback.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = "uri", max_length = 2048)]
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

/// Where Siigo is: `sandbox_url`, or `default` (HOOKLINE_SIIGO_URL). A
/// sandbox is a local stand-in (Siigo has no public sandbox host): its host
/// must be an IP address `allow` permits (a private or loopback address the
/// operator allowed), and plain `http://` is for loopback only.
///
/// # Errors
/// A sandbox URL that is not usable.
pub fn siigo_base(
    sandbox_url: Option<&str>,
    default: &str,
    allow: &AllowList,
) -> Result<String, ValidationError> {
    let Some(raw) = sandbox_url else {
        return Ok(default.to_string());
    };
    let bad = |why: &str| ValidationError::new("sandbox_url", why);
    // The URL parser drops these silently; the URL is stored as parsed.
    if raw.chars().any(char::is_control) || raw.trim() != raw {
        return Err(bad(
            "must not contain control characters or start or end with spaces",
        ));
    }
    let url =
        url::Url::parse(raw).map_err(|_| bad("must be a URL such as http://127.0.0.1:8089"))?;
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        Some(url::Host::Domain("localhost")) => std::net::IpAddr::from([127, 0, 0, 1]),
        _ => {
            return Err(bad(
                "must be the address of a local Siigo stand-in (an IP address allowed by HOOKLINE_ALLOW_PRIVATE_TARGETS); Siigo itself has no sandbox host",
            ))
        }
    };
    if !allow.allows(ip) {
        return Err(bad(
            "is not an address HOOKLINE_ALLOW_PRIVATE_TARGETS allows (a sandbox must be a local stand-in)",
        ));
    }
    if !(url.scheme() == "https" || (url.scheme() == "http" && ip.is_loopback())) {
        return Err(bad("must be https:// (plain http:// only on loopback)"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad(
            "must be a base URL without query, fragment or credentials",
        ));
    }
    if url.port() == Some(0) {
        return Err(bad("must not use port 0"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

impl ProvisionRequest {
    /// # Errors
    /// Validation errors naming every bad field.
    pub fn into_provision(
        self,
        default_base: &str,
        allow: &AllowList,
    ) -> Result<SiigoProvision, AppError> {
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
        let base_url = v.check(siigo_base(self.sandbox_url.as_deref(), default_base, allow));
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
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUpstreamQuery {
    /// Removed subscriptions too.
    #[serde(default)]
    pub include_removed: Option<bool>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// One topic of an upstream subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamTopicResponse {
    pub event: String,
    pub topic: String,
    /// Siigo's id for this subscription.
    pub upstream_id: String,
}

/// A subscription provisioned at Siigo (no credentials).
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamResponse {
    #[schema(value_type = uuid::Uuid)]
    pub id: UpstreamId,
    #[schema(value_type = uuid::Uuid)]
    pub tenant_id: TenantId,
    /// `siigo`.
    #[schema(value_type = String)]
    pub provider: &'static str,
    pub base_url: String,
    pub url: String,
    pub events: Vec<UpstreamTopicResponse>,
    /// Siigo's ids, in the order of `events`.
    pub upstream_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    /// The custom headers Siigo was asked to send (names only).
    pub header_names: Vec<String>,
    /// The source Siigo delivers to (`via_source`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>, nullable = false)]
    pub source_id: Option<SourceId>,
    /// The Siigo username, masked.
    pub account: String,
    #[schema(value_type = UpstreamStatusSchema)]
    pub status: UpstreamStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The source `via_source` created, with its secret (this answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SourceResponse>, nullable = false)]
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

#[cfg(test)]
mod tests {
    use super::siigo_base;
    use hookline_domain::AllowList;

    #[test]
    fn a_sandbox_url_is_stored_as_parsed_and_control_characters_are_refused() {
        let allow = AllowList::parse("127.0.0.0/8").unwrap();
        let base = |raw: &str| siigo_base(Some(raw), "https://api.siigo.com", &allow);
        assert_eq!(
            base("http://127.0.0.1:8089/").unwrap(),
            "http://127.0.0.1:8089"
        );
        for hostile in [
            "\u{0}http://127.0.0.1:8089",
            "http://127.0.0.1:8089\u{1}",
            " http://127.0.0.1:8089",
            "http://127.0.0.1:80\t89",
        ] {
            let e = base(hostile).unwrap_err();
            assert_eq!(e.field, "sandbox_url", "{hostile:?}");
        }
    }
}
