//! Endpoints (`/api/v1/app/{app_id}/endpoint`): Hookline subscriptions
//! that deliver the message's payload exactly (`raw`), signed with the
//! `svix` scheme, filtered by exact event types and by channels. Their
//! secret can be read back: each read is recorded in the log
//! (`SecretRevealed`, ADR 0011).

use super::apps::{metadata, present, rate};
use super::error::{Invalid, SvixError, SvixResult};
use super::extract::{parse_time, svix_time, ListResponse, Params, SvixBody, SvixJson};
use super::ids::{self, Ref};
use super::{app, context, endpoint, Organisation, Routes};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    CustomHeaders, Description, PayloadFormat, SubscriptionStatus,
};
use hookline_domain::uid::Uid;
use hookline_domain::{
    AllowList, EventFilter, EventPattern, EventType, SignatureScheme, SigningSecret, TargetUrl,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub fn routes() -> Routes {
    vec![
        ("/api/v1/app/{app_id}/endpoint", get(list).post(create)),
        (
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
            get(read).put(upsert).patch(patch).delete(remove),
        ),
        (
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret",
            get(read_secret),
        ),
        (
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
            post(rotate),
        ),
        (
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
            post(recover),
        ),
    ]
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
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// SDK 1.x's name for `eventTypes`.
    #[serde(default)]
    pub filter_types: Option<Vec<String>>,
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub throttle_rate: Option<i64>,
    #[serde(default)]
    pub rate_limit: Option<i64>,
}

/// `EndpointPatch`: absent fields stay; `null` clears `uid`, `eventTypes`
/// (every type again) and `channels` (every channel again).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub filter_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub channels: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    pub throttle_rate: Option<Option<i64>>,
}

/// `EndpointOut`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: u8,
    /// Accepted, not kept.
    pub throttle_rate: Option<u16>,
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
            throttle_rate: None,
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
#[derive(Debug, Serialize)]
pub struct EndpointSecretOut {
    pub key: String,
}

/// `EndpointSecretRotateIn`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateIn {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub grace_period_seconds: Option<i64>,
}

/// `RecoverIn`.
#[derive(Debug, Default, Deserialize)]
pub struct RecoverIn {
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
}

/// `RecoverOut`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOut {
    pub id: String,
    pub status: &'static str,
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

/// Svix's `eventTypes`: exact names (no wildcards); none means every type.
fn event_filter(types: Option<&[String]>) -> SvixResult<EventFilter> {
    let Some(types) = types else {
        return Ok(EventFilter::try_from(vec![EventPattern::All])?);
    };
    if types.is_empty() {
        return Err(SvixError::invalid(Invalid::body(
            "eventTypes",
            "eventTypes can't be empty, it must have at least one item.",
        )));
    }
    let mut errors = Vec::new();
    let mut patterns = Vec::new();
    for (i, t) in types.iter().enumerate() {
        match EventType::parse(t, &format!("eventTypes.{i}")) {
            Ok(name) => patterns.push(EventPattern::Exact(name)),
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
        rate(self.throttle_rate.or(self.rate_limit))?;
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
            channels: channels(self.channels.as_deref())?,
            uid: self.uid.as_deref().map(endpoint_uid).transpose()?,
            metadata: metadata(self.metadata)?,
            disabled: (self.disabled == Some(true)).then(|| DISABLED_HERE.to_string()),
            // Svix lets several endpoints share a URL and filter.
            allow_duplicates: true,
            ..CreateSubscription::new(
                url(self.url.as_deref(), allow)?,
                event_filter(types.as_deref())?,
            )
        })
    }
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

async fn list(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    params: Params,
) -> SvixResult<Json<ListResponse<EndpointOut>>> {
    let tenant = app(&state, &app_id).await?;
    let limit = params.limit()?;
    let ascending = match params.get("order") {
        None | Some("descending") => false,
        Some("ascending") => true,
        Some(other) => {
            return Err(SvixError::invalid(Invalid::query(
                "order",
                format!("'{other}' is not 'ascending' or 'descending'"),
            )))
        }
    };
    let cursor = params.iterator();
    let after = match cursor {
        Some(c) => match ids::endpoint_ref(c.id) {
            Ok(Ref::Id(id)) => Some(id),
            _ => {
                return Err(SvixError::invalid(Invalid::query(
                    "iterator",
                    "is not an endpoint id from a previous page",
                )))
            }
        },
        None => None,
    };
    let backwards = cursor.is_some_and(|c| c.backwards);
    let (views, more) = state
        .subscriptions
        .list_in_order(tenant.id, ascending != backwards, after, limit)
        .await
        .map_err(|e| match e {
            AppError::NotFound { .. } => {
                SvixError::invalid(Invalid::query("iterator", "names no endpoint"))
            }
            other => other.into(),
        })?;
    Ok(Json(ListResponse::page(
        views.into_iter().map(EndpointOut::from).collect(),
        more,
        backwards,
        |e| e.id.clone(),
    )))
}

async fn read(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> SvixResult<Json<EndpointOut>> {
    let tenant = app(&state, &app_id).await?;
    Ok(Json(
        endpoint(&state, tenant.id, &endpoint_id).await?.into(),
    ))
}

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
    match endpoint(&state, tenant.id, &endpoint_id).await {
        Ok(current) => {
            rate(input.throttle_rate.or(input.rate_limit))?;
            let types = input.event_types.or(input.filter_types);
            let uid = match input.uid.as_deref() {
                Some(u) => Some(endpoint_uid(u)?),
                None => path_uid.or(current.uid.clone()),
            };
            let changes = SubscriptionChanges {
                url: Some(url(input.url.as_deref(), state.subscriptions.allow_list())?),
                events: Some(event_filter(types.as_deref())?),
                description: Some(description(input.description.as_deref())?),
                channels: Some(channels(input.channels.as_deref())?),
                uid: Some(uid),
                metadata: Some(metadata(input.metadata)?),
                status: status_change(Some(input.disabled == Some(true)), current.status),
                allow_duplicates: true,
                ..SubscriptionChanges::default()
            };
            let changed = state
                .subscriptions
                .update(&ctx, current.id, changes)
                .await
                .map_err(map_write)?;
            Ok((StatusCode::OK, Json(EndpointOut::from(changed.value))).into_response())
        }
        Err(SvixError::Http {
            status: StatusCode::NOT_FOUND,
            ..
        }) => {
            if input.uid.is_none() {
                input.uid = path_uid.map(|u| u.as_str().to_string());
            }
            let command = input.into_command(state.subscriptions.allow_list())?;
            let made = state
                .subscriptions
                .create(&ctx, command)
                .await
                .map_err(map_write)?;
            Ok((StatusCode::CREATED, Json(EndpointOut::from(made.value))).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn patch(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(input): SvixJson<EndpointPatch>,
) -> SvixResult<Json<EndpointOut>> {
    let tenant = app(&state, &app_id).await?;
    let current = endpoint(&state, tenant.id, &endpoint_id).await?;
    rate(input.throttle_rate.flatten())?;
    let types = input.event_types.or(input.filter_types);
    let changes = SubscriptionChanges {
        url: input
            .url
            .as_deref()
            .map(|u| url(Some(u), state.subscriptions.allow_list()))
            .transpose()?,
        events: types.map(|t| event_filter(t.as_deref())).transpose()?,
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
            SvixError::invalid(Invalid::body(field, format!("'{v}' is not a date-time")))
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
