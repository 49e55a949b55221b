//! Endpoints (`/api/v1/app/{app_id}/endpoint`): Hookline subscriptions
//! that deliver the message's payload exactly (`raw`), signed with the
//! `svix` scheme, filtered by exact event types and by channels. Their
//! secret can be read back: each read is recorded in the log
//! (`SecretRevealed`, ADR 0015).

use super::apps::{metadata, rate};
use super::error::{iterator_names, Invalid, SvixError, SvixResult};
use super::extract::{parse_time, svix_time, ListResponse, Params, SvixBody, SvixJson};
use super::ids::{self, Ref};
use super::{app, context, endpoint, Organisation};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hookline_application::subscriptions::{
    CreateSubscription, StatusChange, SubscriptionChanges, SubscriptionView,
};
use hookline_application::AppError;
use hookline_domain::channel::Channels;
use hookline_domain::sealed::SECRET_PREFIX;
use hookline_domain::subscription::{
    CustomHeaders, Description, PayloadFormat, RateLimit, SubscriptionStatus, MAX_RATE_LIMIT,
};
use hookline_domain::uid::Uid;
use hookline_domain::{
    AllowList, EventFilter, EventPattern, EventType, SignatureScheme, SigningSecret, TargetUrl,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, upsert, patch, remove))
        .routes(routes!(read_secret))
        .routes(routes!(rotate))
        .routes(routes!(recover))
}

/// Why an endpoint made through this API is disabled.
const DISABLED_HERE: &str = "disabled through the Svix-compatible API";
/// Svix's default rotation overlap.
const DEFAULT_GRACE_SECONDS: i64 = 86_400;
/// Longest overlap Svix allows.
const MAX_GRACE_SECONDS: i64 = 604_800;
/// The longest window a recovery may cover (Svix: 14 days, and 5 minutes
/// of slack).
const MAX_RECOVER_WINDOW: Duration = Duration::minutes(14 * 24 * 60 + 5);

/// `EndpointIn` (and `EndpointUpdate`, which is it without `secret` and
/// `headers`).
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    /// Where deliveries go: an http(s) URL that Hookline's target rules
    /// allow.
    #[serde(default)]
    #[schema(value_type = String, required = true, format = "uri")]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The client's own id for it: 1–256 of `a-zA-Z0-9-_.`, not starting
    /// with `ep_`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    /// The event types it receives, matched exactly (no wildcards);
    /// absent or `null`: every type. Each is a Hookline event name
    /// (`resource.action`: letters, digits and `_` in dot-separated
    /// segments, at most 100 characters).
    #[serde(default)]
    #[schema(min_items = 1)]
    pub event_types: Option<Vec<String>>,
    /// SDK 1.x's name for `eventTypes`.
    #[serde(default)]
    #[schema(deprecated)]
    pub filter_types: Option<Vec<String>>,
    /// It receives only messages on one of these channels; absent or
    /// `null`: every message.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10)]
    pub channels: Option<Vec<String>>,
    /// `whsec_` and the base64 of 24–75 bytes; absent: generated.
    #[serde(default)]
    #[schema(pattern = r"^(whsec_)?[a-zA-Z0-9+/=]{32,100}$")]
    pub secret: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Headers sent with every delivery (create only).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Deliveries per second at most (1–65535); Hookline keeps it as the
    /// subscription's rate limit, capped at 10000.
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 1, maximum = 65535)]
    pub throttle_rate: Option<i64>,
    /// SDK 1.x's name for `throttleRate`.
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(deprecated, minimum = 1, maximum = 65535)]
    pub rate_limit: Option<i64>,
}

/// `EndpointPatch`: absent fields stay; `null` clears `uid`, `eventTypes`
/// (every type again) and `channels` (every channel again).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    /// Absent or `null`: unchanged (so for `description`, `disabled` and
    /// `metadata`).
    #[serde(default)]
    #[schema(format = "uri")]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<Vec<String>>, min_items = 1)]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<Vec<String>>, deprecated)]
    pub filter_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 10)]
    pub channels: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "crate::routes::common::present_whole_number"
    )]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 65535)]
    pub throttle_rate: Option<Option<i64>>,
}

/// `EndpointOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: u8,
    /// The subscription's rate limit (deliveries per second).
    pub throttle_rate: Option<u32>,
    pub disabled: bool,
    pub event_types: Option<Vec<String>>,
    /// SDK 1.x's name for `eventTypes`.
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub metadata: BTreeMap<String, String>,
    #[serde(serialize_with = "svix_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "svix_time")]
    pub updated_at: DateTime<Utc>,
}

impl From<SubscriptionView> for EndpointOut {
    fn from(v: SubscriptionView) -> Self {
        // Every event type is Svix's "no filter".
        let types = (v.events != ["*"]).then_some(v.events);
        Self {
            id: ids::endpoint(&v.id),
            uid: v.uid.map(|u| u.as_str().to_string()),
            url: v.url,
            description: v.description.unwrap_or_default(),
            version: 1,
            throttle_rate: v.rate_limit,
            disabled: v.status == SubscriptionStatus::Disabled,
            filter_types: types.clone(),
            event_types: types,
            channels: v.channels.map(|c| c.to_strings()),
            metadata: v.metadata.as_map().clone(),
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// `EndpointSecretOut`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSecretOut {
    pub key: String,
}

/// `EndpointSecretRotateIn`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = EndpointSecretRotateIn)]
#[serde(rename_all = "camelCase")]
pub struct RotateIn {
    /// The new secret (`whsec_…`); absent: generated.
    #[serde(default)]
    #[schema(pattern = r"^(whsec_)?[a-zA-Z0-9+/=]{32,100}$")]
    pub key: Option<String>,
    /// How long the previous secret keeps signing (default 86400).
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_period_seconds: Option<i64>,
}

/// `RecoverIn`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RecoverIn {
    /// RFC 3339 (without an offset: UTC).
    #[serde(default)]
    #[schema(value_type = String, required = true, format = DateTime)]
    pub since: Option<String>,
    /// Default: now.
    #[schema(format = DateTime)]
    #[serde(default)]
    pub until: Option<String>,
}

/// `RecoverOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOut {
    pub id: String,
    /// `finished`: Hookline queues the recovery's deliveries before
    /// answering.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// `endpoint.recover`.
    #[schema(value_type = String)]
    pub task: &'static str,
    #[serde(serialize_with = "svix_time")]
    pub updated_at: DateTime<Utc>,
}

fn url(u: Option<&str>, allow: &AllowList) -> SvixResult<TargetUrl> {
    let u = u.ok_or_else(|| SvixError::invalid(Invalid::body("url", "field required")))?;
    TargetUrl::parse(u, allow).map_err(|e| SvixError::invalid(Invalid::body("url", e.reason)))
}

fn description(d: Option<&str>) -> SvixResult<Option<Description>> {
    match d {
        None | Some("") => Ok(None),
        Some(d) => Description::parse(d).map(Some).map_err(SvixError::from),
    }
}

/// Svix's `eventTypes` (or SDK 1.x's `filterTypes`, the `field` named in
/// refusals): exact names (no wildcards); none means every type.
fn event_filter(types: Option<&[String]>, field: &str) -> SvixResult<EventFilter> {
    let Some(types) = types else {
        return Ok(EventFilter::try_from(vec![EventPattern::All])?);
    };
    if types.is_empty() {
        return Err(SvixError::invalid(Invalid::body(
            field,
            format!("{field} can't be empty, it must have at least one item."),
        )));
    }
    let mut errors = Vec::new();
    let mut patterns = Vec::new();
    for (i, t) in types.iter().enumerate() {
        let at = format!("{field}.{i}");
        let pattern = EventType::parse(t, &at).map(EventPattern::Exact);
        match pattern.and_then(|p| p.check_namespace_case(&at).map(|()| p)) {
            Ok(pattern) => patterns.push(pattern),
            Err(e) => errors.push(Invalid::body(&e.field, e.reason)),
        }
    }
    if !errors.is_empty() {
        return Err(SvixError::Validation(errors));
    }
    Ok(EventFilter::try_from(patterns)?)
}

fn channels(c: Option<&[String]>) -> SvixResult<Option<Channels>> {
    c.map(|c| Channels::parse(c, "channels"))
        .transpose()
        .map_err(SvixError::from)
}

/// A Svix secret: `whsec_` (optional) and base64 of 24–75 bytes.
fn svix_secret(s: &str, field: &str) -> SvixResult<SigningSecret> {
    let key = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
    match STANDARD.decode(key) {
        Ok(bytes) if (24..=75).contains(&bytes.len()) => {}
        Ok(_) => {
            return Err(SvixError::invalid(Invalid::body(
                field,
                "secret length invalid (it must encode 24 to 75 bytes)",
            )))
        }
        Err(_) => {
            return Err(SvixError::invalid(Invalid::body(
                field,
                "must be 'whsec_' and base64, as in whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            )))
        }
    }
    SigningSecret::parse(&format!("{SECRET_PREFIX}{key}")).map_err(SvixError::from)
}

fn endpoint_uid(u: &str) -> SvixResult<Uid> {
    ids::new_uid(u, "uid", ids::ENDPOINT)
}

impl EndpointIn {
    fn into_command(self, allow: &AllowList) -> SvixResult<CreateSubscription> {
        rate(self.rate_limit)?;
        let rate_limit = throttle(self.throttle_rate.or(self.rate_limit))?;
        event_filter(self.filter_types.as_deref(), "filterTypes")?;
        let types = self.event_types.or(self.filter_types);
        Ok(CreateSubscription {
            secret: self
                .secret
                .as_deref()
                .map(|s| svix_secret(s, "secret"))
                .transpose()?,
            headers: CustomHeaders::parse(self.headers.unwrap_or_default())?,
            description: description(self.description.as_deref())?,
            signature_scheme: SignatureScheme::Svix,
            payload_format: PayloadFormat::Raw,
            rate_limit,
            channels: channels(self.channels.as_deref())?,
            uid: self.uid.as_deref().map(endpoint_uid).transpose()?,
            metadata: metadata(self.metadata)?,
            disabled: (self.disabled == Some(true)).then(|| DISABLED_HERE.to_string()),
            // Svix lets several endpoints share a URL and filter.
            allow_duplicates: true,
            ..CreateSubscription::new(
                url(self.url.as_deref(), allow)?,
                event_filter(types.as_deref(), "eventTypes")?,
            )
        })
    }
}

/// Svix's `throttleRate` (1–65535) as the subscription's rate limit: values
/// over Hookline's maximum (10000 per second) are kept as that maximum.
fn throttle(r: Option<i64>) -> SvixResult<Option<RateLimit>> {
    rate(r)?;
    r.map(|n| RateLimit::parse(n.min(i64::from(MAX_RATE_LIMIT))))
        .transpose()
        .map_err(SvixError::from)
}

fn status_change(disabled: Option<bool>, current: SubscriptionStatus) -> Option<StatusChange> {
    match (disabled, current) {
        (Some(true), SubscriptionStatus::Active) => {
            Some(StatusChange::Disable(DISABLED_HERE.to_string()))
        }
        (Some(false), SubscriptionStatus::Disabled) => Some(StatusChange::Enable),
        _ => None,
    }
}

fn map_write(e: AppError) -> SvixError {
    match e {
        AppError::Conflict {
            code: "subscription_limit_reached",
            detail,
        } => SvixError::bad_request("limit_reached", detail),
        other => other.into(),
    }
}

/// Create Endpoint
///
/// A subscription that receives messages' payloads exactly, signed as Svix
/// signs (`svix-*` and `webhook-*` headers). Without `secret`, one is
/// generated.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint",
    operation_id = "v1.endpoint.create",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid.")),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Created.", body = EndpointOut),
        (status = 400, description = "- `limit_reached`: the application has as many endpoints as allowed"),
        (status = 404, description = "- `not_found`: no such application"),
        (status = 409, description = "- `conflict`: another endpoint of the application has this uid"),
    )
)]
async fn create(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(app_id): Path<String>,
    SvixJson(input): SvixJson<EndpointIn>,
) -> SvixResult<Response> {
    let tenant = app(&state, &app_id).await?;
    let command = input.into_command(state.subscriptions.allow_list())?;
    let ctx = context(&org, request_id, tenant.id);
    let made = state
        .subscriptions
        .create(&ctx, command)
        .await
        .map_err(map_write)?;
    Ok((StatusCode::CREATED, Json(EndpointOut::from(made.value))).into_response())
}

/// List Endpoints
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint",
    operation_id = "v1.endpoint.list",
    tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The application's id (`app_…`) or uid."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 250, description = "Page size (default 50)."),
        ("iterator" = Option<String>, Query, description = "`iterator` (or `prevIterator`) of a previous page."),
        ("order" = Option<super::openapi::Ordering>, Query, description = "By creation: `descending` (default) or `ascending`."),
    ),
    responses(
        (status = 200, description = "A page.", body = ListResponse<EndpointOut>),
        (status = 404, description = "- `not_found`: no such application"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    params: Params,
) -> SvixResult<Json<ListResponse<EndpointOut>>> {
    let tenant = app(&state, &app_id).await?;
    let limit = params.limit()?;
    let ascending = params.ascending(false)?;
    let (after, backwards) =
        params.page_start("an endpoint", |c| ids::endpoint_ref(c).ok()?.id())?;
    let (views, more) = state
        .subscriptions
        .list_in_order(tenant.id, ascending != backwards, after, limit)
        .await
        .map_err(iterator_names("names no endpoint"))?;
    Ok(Json(ListResponse::page(
        views.into_iter().map(EndpointOut::from).collect(),
        more,
        backwards,
        |e| e.id.clone(),
    )))
}

/// Get Endpoint
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operation_id = "v1.endpoint.get",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    responses(
        (status = 200, description = "The endpoint.", body = EndpointOut),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> SvixResult<Json<EndpointOut>> {
    let tenant = app(&state, &app_id).await?;
    Ok(Json(
        endpoint(&state, tenant.id, &endpoint_id).await?.into(),
    ))
}

/// Update Endpoint
///
/// Replaces its fields (200; `secret` and `headers` are ignored), or
/// creates it (201) when the path's uid names none (it becomes its uid).
/// An id (`ep_…`) that names no endpoint of the application is a 404.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operation_id = "v1.endpoint.update",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    request_body = EndpointIn,
    responses(
        (status = 200, description = "Updated.", body = EndpointOut),
        (status = 201, description = "Created.", body = EndpointOut),
        (status = 404, description = "- `not_found`: no such application, or the path is an id (`ep_…`) that names no endpoint of it"),
        (status = 409, description = "- `conflict`: another endpoint has this uid"),
    )
)]
async fn upsert(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(mut input): SvixJson<EndpointIn>,
) -> SvixResult<Response> {
    let tenant = app(&state, &app_id).await?;
    let ctx = context(&org, request_id, tenant.id);
    let path_uid = match ids::endpoint_ref(&endpoint_id) {
        Ok(Ref::Uid(uid)) => Some(uid),
        _ => None,
    };
    // `EndpointUpdate` has neither; they change through their own routes.
    input.secret = None;
    input.headers = None;
    // Two requests putting a new uid at once: the one whose create finds
    // the uid taken updates what the other created (a PUT is idempotent).
    // The winner's object may take a moment to be found by its uid (read
    // models trail the log): look again, a little later each time, for up
    // to 5 s (`LostRace`).
    let mut race = crate::routes::LostRace::new();
    loop {
        match endpoint(&state, tenant.id, &endpoint_id).await {
            Ok(current) => {
                rate(input.rate_limit)?;
                let rate_limit = throttle(input.throttle_rate.or(input.rate_limit))?;
                event_filter(input.filter_types.as_deref(), "filterTypes")?;
                let types = input.event_types.clone().or(input.filter_types.clone());
                // `EndpointUpdate` is the whole endpoint: without `uid` it
                // has none, unless the path named it by that uid (as for
                // applications).
                let uid = match input.uid.as_deref() {
                    Some(u) => Some(endpoint_uid(u)?),
                    None => path_uid.clone().filter(|u| current.uid.as_ref() == Some(u)),
                };
                let changes = SubscriptionChanges {
                    url: Some(url(input.url.as_deref(), state.subscriptions.allow_list())?),
                    events: Some(event_filter(types.as_deref(), "eventTypes")?),
                    description: Some(description(input.description.as_deref())?),
                    channels: Some(channels(input.channels.as_deref())?),
                    uid: Some(uid),
                    metadata: Some(metadata(input.metadata.clone())?),
                    status: status_change(Some(input.disabled == Some(true)), current.status),
                    // `EndpointUpdate` is the whole endpoint: no rate, no limit.
                    rate_limit: Some(rate_limit),
                    allow_duplicates: true,
                    ..SubscriptionChanges::default()
                };
                match state.subscriptions.update(&ctx, current.id, changes).await {
                    Ok(changed) => {
                        return Ok((StatusCode::OK, Json(EndpointOut::from(changed.value)))
                            .into_response())
                    }
                    // The other racers update it at the same time: again.
                    Err(AppError::Conflict {
                        code: "concurrent_modification",
                        ..
                    }) if race.again().await => {}
                    Err(e) => return Err(map_write(e)),
                }
            }
            // Named by an id (`ep_…`) that names no endpoint of this
            // application: ids are given out by the server, so there is
            // nothing to create under it (each PUT made another endpoint).
            Err(
                e @ SvixError::Http {
                    status: StatusCode::NOT_FOUND,
                    ..
                },
            ) if path_uid.is_none() => return Err(e),
            Err(SvixError::Http {
                status: StatusCode::NOT_FOUND,
                ..
            }) => {
                let mut new = input.clone();
                if new.uid.is_none() {
                    new.uid = path_uid.as_ref().map(|u| u.as_str().to_string());
                }
                let command = new.into_command(state.subscriptions.allow_list())?;
                match state.subscriptions.create(&ctx, command).await {
                    Ok(made) => {
                        return Ok((StatusCode::CREATED, Json(EndpointOut::from(made.value)))
                            .into_response())
                    }
                    Err(AppError::Conflict {
                        code: "uid_taken", ..
                    }) if path_uid.is_some() && race.again().await => {}
                    Err(e) => return Err(map_write(e)),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Patch Endpoint
#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operation_id = "v1.endpoint.patch",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    request_body = EndpointPatch,
    responses(
        (status = 200, description = "Patched.", body = EndpointOut),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
        (status = 409, description = "- `conflict`: another endpoint has this uid"),
    )
)]
async fn patch(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(input): SvixJson<EndpointPatch>,
) -> SvixResult<Json<EndpointOut>> {
    let tenant = app(&state, &app_id).await?;
    let current = endpoint(&state, tenant.id, &endpoint_id).await?;
    let rate_limit = match input.throttle_rate {
        None => None,
        Some(r) => Some(throttle(r)?),
    };
    let (types, field) = match input.event_types {
        Some(types) => (Some(types), "eventTypes"),
        None => (input.filter_types, "filterTypes"),
    };
    let changes = SubscriptionChanges {
        url: input
            .url
            .as_deref()
            .map(|u| url(Some(u), state.subscriptions.allow_list()))
            .transpose()?,
        events: types
            .map(|t| event_filter(t.as_deref(), field))
            .transpose()?,
        description: input
            .description
            .as_deref()
            .map(|d| description(Some(d)))
            .transpose()?,
        channels: input.channels.map(|c| channels(c.as_deref())).transpose()?,
        uid: match input.uid {
            None => None,
            Some(None) => Some(None),
            Some(Some(u)) => Some(Some(endpoint_uid(&u)?)),
        },
        metadata: input.metadata.map(|m| metadata(Some(m))).transpose()?,
        status: status_change(input.disabled, current.status),
        rate_limit,
        allow_duplicates: true,
        ..SubscriptionChanges::default()
    };
    if changes.is_empty() {
        return Ok(Json(current.into()));
    }
    let ctx = context(&org, request_id, tenant.id);
    let changed = state
        .subscriptions
        .update(&ctx, current.id, changes)
        .await
        .map_err(map_write)?;
    Ok(Json(changed.value.into()))
}

/// Delete Endpoint
///
/// Deletes the subscription (soft: its history stays).
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operation_id = "v1.endpoint.delete",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn remove(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> SvixResult<StatusCode> {
    let tenant = app(&state, &app_id).await?;
    let current = endpoint(&state, tenant.id, &endpoint_id).await?;
    let ctx = context(&org, request_id, tenant.id);
    state.subscriptions.delete(&ctx, current.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn secret_of(
    state: &AppState,
    org: &Organisation,
    request_id: hookline_application::RequestId,
    app_id: &str,
    endpoint_id: &str,
) -> SvixResult<EndpointSecretOut> {
    let tenant = app(state, app_id).await?;
    let current = endpoint(state, tenant.id, endpoint_id).await?;
    let ctx = context(org, request_id, tenant.id);
    let secret = state.subscriptions.reveal_secret(&ctx, current.id).await?;
    Ok(EndpointSecretOut {
        key: secret.expose().to_string(),
    })
}

/// Get Endpoint Secret
///
/// The signing secret in full. Hookline seals secrets and can open them;
/// each reveal is recorded in the log (`SecretRevealed`), so the audit
/// shows who read it and when.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret",
    operation_id = "v1.endpoint.get-secret",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    responses(
        (status = 200, description = "The current secret.", body = EndpointSecretOut),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn read_secret(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> SvixResult<Json<EndpointSecretOut>> {
    Ok(Json(
        secret_of(&state, &org, request_id, &app_id, &endpoint_id).await?,
    ))
}

/// Answers `200 {"key": <the new secret>}` rather than Svix's `204`: the
/// Python SDK (from 2.7) reads the new key from the answer.
/// Rotate Endpoint Secret
///
/// Makes `key` (or a generated secret) current; the previous one keeps
/// signing too for `gracePeriodSeconds` (default 86400). Answers
/// `200 {"key"}` with the new secret (Svix answers 204; the Python SDK
/// from 2.7 reads the key).
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
    operation_id = "v1.endpoint.rotate-secret",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    request_body(content = RotateIn, description = "May be empty (as `{}`)."),
    responses(
        (status = 200, description = "Rotated: the new secret.", body = EndpointSecretOut),
        (status = 400, description = "- `limit_reached`: too many previous secrets still sign; wait for them to expire"),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn rotate(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixBody(input): SvixBody<RotateIn>,
) -> SvixResult<Json<EndpointSecretOut>> {
    let tenant = app(&state, &app_id).await?;
    let current = endpoint(&state, tenant.id, &endpoint_id).await?;
    let grace = input.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(SvixError::invalid(Invalid::body(
            "gracePeriodSeconds",
            format!("must be between 0 and {MAX_GRACE_SECONDS}"),
        )));
    }
    let new_secret = input
        .key
        .as_deref()
        .map(|k| svix_secret(k, "key"))
        .transpose()?;
    let ctx = context(&org, request_id, tenant.id);
    let rotated = state
        .subscriptions
        .rotate_secret(&ctx, current.id, new_secret, Some(Duration::seconds(grace)))
        .await
        .map_err(|e| match e {
            AppError::Conflict {
                code: "too_many_secrets",
                detail,
            } => SvixError::bad_request("limit_reached", detail),
            other => other.into(),
        })?;
    Ok(Json(EndpointSecretOut {
        key: rotated.value.secret,
    }))
}

/// Recover Failed Webhooks
///
/// Sends again, once, every message whose deliveries to this endpoint
/// failed between `since` and `until` (default now), at most 14 days.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
    operation_id = "v1.endpoint.recover",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    request_body = RecoverIn,
    responses(
        (status = 202, description = "Recovery queued.", body = RecoverOut),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn recover(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(input): SvixJson<RecoverIn>,
) -> SvixResult<Response> {
    let tenant = app(&state, &app_id).await?;
    let current = endpoint(&state, tenant.id, &endpoint_id).await?;
    let when = |field: &str, v: &str| {
        parse_time(v).ok_or_else(|| {
            SvixError::invalid(Invalid::body(
                field,
                format!("'{v}' is not a date-time of the years 0000 to 9999"),
            ))
        })
    };
    let since = match input.since.as_deref() {
        Some(v) => when("since", v)?,
        None => return Err(SvixError::invalid(Invalid::body("since", "field required"))),
    };
    let until = input
        .until
        .as_deref()
        .map(|v| when("until", v))
        .transpose()?;
    let now = Utc::now();
    if until.is_some_and(|u| u < since) {
        return Err(SvixError::invalid(Invalid::body(
            "until",
            "must not be before since",
        )));
    }
    if since < until.unwrap_or(now) - MAX_RECOVER_WINDOW {
        return Err(SvixError::invalid(Invalid::body(
            "since",
            "Cannot recover more than 14 days of messages",
        )));
    }
    let ctx = context(&org, request_id.clone(), tenant.id);
    state
        .deliveries
        .recover(&ctx, current.id, since, until)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RecoverOut {
            id: ids::task(&uuid::Uuid::now_v7()),
            status: "finished",
            task: "endpoint.recover",
            updated_at: now,
        }),
    )
        .into_response())
}
