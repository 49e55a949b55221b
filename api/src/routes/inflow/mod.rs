//! InFlow's webhook subscription API at `/inflow/{companyId}/webhooks`, so
//! tools written for InFlow manage Hookline subscriptions by changing the
//! base URL. `companyId` is the tenant id; authentication is the tenant's
//! API key. An adapter over the subscription service: what it creates are
//! ordinary subscriptions signed `hmac-sha256-base64`
//! (`x-inflow-hmac-sha256`), visible in `/v1` with their history.
//!
//! The request id (`webHookSubscriptionRequestId`) is kept in the
//! subscription's description, `InFlow webhook (request <id>)`: a repeat
//! of the request that last wrote a subscription changes nothing, and the
//! same id with another body is refused.

pub mod dto;

use super::openapi::examples as ex;
use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dto::{WebHookSubscriptionRequest, WebHookSubscriptionResponse};
use hookline_application::pagination::PageRequest;
use hookline_application::subscriptions::{
    CreateSubscription, ListSubscriptions, ReadSubscription, SubscriptionChanges, SubscriptionView,
};
use hookline_application::AppError;
use hookline_domain::subscription::{Description, SubscriptionStatus};
use hookline_domain::{
    EventFilter, SignatureScheme, SubscriptionId, TargetUrl, TenantId, ValidationError,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, subscribe))
        .routes(routes!(read, unsubscribe))
}

const MARKER: &str = "InFlow webhook";

fn description(request_id: Option<Uuid>) -> String {
    match request_id {
        Some(r) => format!("{MARKER} (request {r})"),
        None => MARKER.to_string(),
    }
}

/// `companyId` must be the caller's tenant.
fn company(tenant: TenantId, raw: &str) -> ApiResult<()> {
    match Uuid::parse_str(raw) {
        Ok(id) if id == *tenant.as_uuid() => Ok(()),
        _ => Err(ApiError::from(AppError::NothingFound {
            code: "not_found",
            detail: format!(
                "no company '{}' for this API key: companyId is the tenant's id",
                raw.chars().take(64).collect::<String>()
            ),
        })),
    }
}

fn uuid_field(field: &str, raw: Option<&str>) -> Result<Option<Uuid>, ValidationError> {
    raw.map(|s| Uuid::parse_str(s).map_err(|_| ValidationError::new(field, "must be a UUID")))
        .transpose()
}

/// A subscription this API manages: InFlow-signed. Others of the tenant
/// are not InFlow's to see.
async fn inflow_subscription(
    state: &AppState,
    tenant: TenantId,
    raw: &str,
    include_inactive: bool,
) -> ApiResult<SubscriptionView> {
    let not_found = || ApiError::from(AppError::not_found("webhook subscription", raw));
    let id = Uuid::parse_str(raw).map_err(|_| not_found())?;
    let view = state
        .subscriptions
        .get(
            tenant,
            SubscriptionId::from_uuid(id),
            ReadSubscription {
                include_inactive,
                as_of: None,
            },
        )
        .await?;
    if view.signature_scheme != SignatureScheme::HmacSha256Base64 {
        return Err(not_found());
    }
    Ok(view)
}

/// The id of the subscription a PUT without `webHookSubscriptionId`
/// creates under its `webHookSubscriptionRequestId`: the same on every
/// try of that request, distinct per tenant.
fn subscription_for_request(tenant: TenantId, request_id: Uuid) -> Uuid {
    hookline_domain::ids::digest_uuid(&format!(
        "hookline-inflow-subscription:{tenant}:{request_id}"
    ))
}

fn same_events(a: &[String], b: &[String]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// List all subscribed webhooks
///
/// InFlow's `GET /{companyId}/webhooks`: the tenant's active
/// InFlow-signed subscriptions, as a bare array (no secrets).
#[utoipa::path(
    get,
    path = "/inflow/{companyId}/webhooks",
    operation_id = "inflow_list_webhooks",
    tag = "inflow",
    params(("companyId" = Uuid, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The subscriptions.", body = Vec<WebHookSubscriptionResponse>,
            example = json!([ex::inflow_subscription(false)])),
        (status = 404, description = "- `not_found`: `companyId` is not the API key's tenant"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(company_id): Path<String>,
) -> ApiResult<Response> {
    company(caller.tenant_id, &company_id)?;
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .subscriptions
            .list(
                caller.tenant_id,
                ListSubscriptions {
                    page: PageRequest::parse(Some(100), cursor.as_deref())?,
                    ..ListSubscriptions::default()
                },
            )
            .await?;
        out.extend(
            page.data
                .into_iter()
                .filter(|v| v.signature_scheme == SignatureScheme::HmacSha256Base64)
                .map(|v| WebHookSubscriptionResponse::from_view(v, false)),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(Json(out).into_response())
}

/// Subscribe to a webhook
///
/// InFlow's `PUT /{companyId}/webhooks`: creates the subscription
/// `webHookSubscriptionId` (answering its base64 `secret`, the only time it
/// is shown), or updates its `url` and `events`. Deliveries carry
/// `{"event", "data", "timestamp", …}` signed with `x-inflow-hmac-sha256`.
#[utoipa::path(
    put,
    path = "/inflow/{companyId}/webhooks",
    operation_id = "inflow_subscribe_webhook",
    tag = "inflow",
    params(("companyId" = Uuid, Path, description = "The tenant's id.")),
    request_body(content = WebHookSubscriptionRequest, example = json!(ex::inflow_subscribe())),
    responses(
        (status = 200, description = "The subscription (with `secret` when this request created it).",
            body = WebHookSubscriptionResponse, example = json!(ex::inflow_subscription(true))),
        (status = 400, description = "- `validation_error`: a field breaks its rules (each is named: `url`, `events`, `webHookSubscriptionId`, `webHookSubscriptionRequestId`), or `url`/`events` is missing"),
        (status = 404, description = "- `not_found`: `companyId` is not the API key's tenant"),
        (status = 409, description = "- `request_id_reused`: this `webHookSubscriptionRequestId` last wrote the subscription with another `url` or `events`\n- `not_an_inflow_subscription`: the id belongs to a subscription not signed for InFlow (`hmac-sha256-base64`)\n- `subscription_id_taken`: another tenant's subscription has this id; generate another\n- `subscription_deleted`: it has been deleted\n- `duplicate_subscription`: an active subscription already sends these events to this URL\n- `subscription_limit_reached`: the tenant has HOOKLINE_MAX_SUBSCRIPTIONS_PER_TENANT subscriptions\n- `concurrent_modification`: another request changed it at the same time; retry (PUTs of one new id sent at once: one creates it, the others update it)"),
    )
)]
async fn subscribe(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(company_id): Path<String>,
    ApiJson(input): ApiJson<WebHookSubscriptionRequest>,
) -> ApiResult<Response> {
    company(ctx.tenant_id, &company_id)?;
    let mut v = hookline_application::error::Validator::default();
    let id = v
        .check(uuid_field(
            "webHookSubscriptionId",
            input.web_hook_subscription_id.as_deref(),
        ))
        .flatten();
    let request_id = v
        .check(uuid_field(
            "webHookSubscriptionRequestId",
            input.web_hook_subscription_request_id.as_deref(),
        ))
        .flatten();
    let url = match input.url.as_deref() {
        Some(u) => v.check(TargetUrl::parse(u, state.subscriptions.allow_list())),
        None => {
            v.fail(ValidationError::new("url", "is required"));
            None
        }
    };
    let events = match input.events.as_deref() {
        Some(list) => v.check(EventFilter::parse(list)),
        None => {
            v.fail(ValidationError::new("events", "is required"));
            None
        }
    };
    let note = v.check(Description::parse(&description(request_id)));
    v.finish()?;
    let (Some(url), Some(events), Some(note)) = (url, events, note) else {
        return Err(AppError::Internal("validation passed without values".into()).into());
    };
    let listed: Vec<String> = input.events.unwrap_or_default();
    // Without an id, a request id names the subscription it creates, so a
    // retry of that request (its answer lost) finds it instead of making
    // a second one.
    let id = id.or_else(|| request_id.map(|r| subscription_for_request(ctx.tenant_id, r)));
    // A PUT that loses the race to create a new id (several sent at once)
    // looks the winner's subscription up again and updates it, as a PUT
    // sent after it would.
    let mut race = crate::routes::LostRace::new();
    let current = loop {
        let existing = match id {
            Some(id) => match state
                .subscriptions
                .get(
                    ctx.tenant_id,
                    SubscriptionId::from_uuid(id),
                    ReadSubscription {
                        include_inactive: true,
                        as_of: None,
                    },
                )
                .await
            {
                Ok(view) => Some(view),
                Err(AppError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        if let Some(view) = existing {
            break view;
        }
        let command = CreateSubscription {
            secret: Some(state.subscriptions.new_base64_secret()),
            description: Some(note.clone()),
            signature_scheme: SignatureScheme::HmacSha256Base64,
            ..CreateSubscription::new(url.clone(), events.clone())
        };
        let created = match id {
            Some(id) => {
                state
                    .subscriptions
                    .create_with_id(&ctx, SubscriptionId::from_uuid(id), command)
                    .await
            }
            None => state.subscriptions.create(&ctx, command).await,
        };
        match created {
            Ok(created) => {
                return super::written(
                    StatusCode::OK,
                    created.map(|v| WebHookSubscriptionResponse::from_view(v, true)),
                )
            }
            Err(AppError::Conflict {
                code: "subscription_exists",
                ..
            }) if race.again().await => {}
            Err(AppError::Conflict {
                code: "subscription_exists",
                ..
            }) => {
                return Err(AppError::conflict(
                    "concurrent_modification",
                    "this webHookSubscriptionId is being written by another request: retry",
                )
                .into())
            }
            Err(e) => return Err(e.into()),
        }
    };
    if current.signature_scheme != SignatureScheme::HmacSha256Base64 {
        return Err(AppError::conflict(
            "not_an_inflow_subscription",
            "this webHookSubscriptionId names a subscription not signed for InFlow; manage it through /v1/subscriptions",
        )
        .into());
    }
    if current.status == SubscriptionStatus::Deleted {
        return Err(AppError::conflict(
            "subscription_deleted",
            "this webHookSubscriptionId was unsubscribed; generate another to subscribe again",
        )
        .into());
    }
    let unchanged = current.url == url.as_str() && same_events(&current.events, &listed);
    if request_id.is_some() && current.description.as_deref() == Some(note.as_str()) {
        if unchanged {
            // A repeat of the request that last wrote it.
            return Ok(Json(WebHookSubscriptionResponse::from_view(current, false)).into_response());
        }
        return Err(AppError::conflict(
            "request_id_reused",
            "this webHookSubscriptionRequestId already wrote this subscription with another url or events; send a new request id",
        )
        .into());
    }
    if unchanged && current.description.as_deref() == Some(note.as_str()) {
        return Ok(Json(WebHookSubscriptionResponse::from_view(current, false)).into_response());
    }
    let updated = state
        .subscriptions
        .update(
            &ctx,
            current.id,
            SubscriptionChanges {
                url: Some(url),
                events: Some(events),
                description: Some(Some(note)),
                ..SubscriptionChanges::default()
            },
        )
        .await?;
    super::written(
        StatusCode::OK,
        updated.map(|v| WebHookSubscriptionResponse::from_view(v, false)),
    )
}

/// Get a webhook subscription
///
/// InFlow's `GET /{companyId}/webhooks/{webHookId}` (no secret).
#[utoipa::path(
    get,
    path = "/inflow/{companyId}/webhooks/{webHookId}",
    operation_id = "inflow_get_webhook",
    tag = "inflow",
    params(
        ("companyId" = Uuid, Path, description = "The tenant's id."),
        ("webHookId" = Uuid, Path, description = "The subscription's `webHookSubscriptionId`."),
    ),
    responses(
        (status = 200, description = "The subscription (no secret).",
            body = WebHookSubscriptionResponse, example = json!(ex::inflow_subscription(false))),
        (status = 404, description = "- `not_found`: `companyId` is not the API key's tenant, or no InFlow subscription has this id"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((company_id, hook)): Path<(String, String)>,
) -> ApiResult<Response> {
    company(caller.tenant_id, &company_id)?;
    let view = inflow_subscription(&state, caller.tenant_id, &hook, false).await?;
    Ok(Json(WebHookSubscriptionResponse::from_view(view, false)).into_response())
}

/// Unsubscribe from a webhook
///
/// InFlow's `DELETE /{companyId}/webhooks/{webHookId}`: answers 200 with
/// the subscription as it was. It is deleted like any subscription (soft;
/// its history stays).
#[utoipa::path(
    delete,
    path = "/inflow/{companyId}/webhooks/{webHookId}",
    operation_id = "inflow_unsubscribe_webhook",
    tag = "inflow",
    params(
        ("companyId" = Uuid, Path, description = "The tenant's id."),
        ("webHookId" = Uuid, Path, description = "The subscription's `webHookSubscriptionId`."),
    ),
    responses(
        (status = 200, description = "Unsubscribed.",
            body = WebHookSubscriptionResponse, example = json!(ex::inflow_subscription(false))),
        (status = 404, description = "- `not_found`: `companyId` is not the API key's tenant, or no InFlow subscription has this id"),
        (status = 409, description = "- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn unsubscribe(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((company_id, hook)): Path<(String, String)>,
) -> ApiResult<Response> {
    company(ctx.tenant_id, &company_id)?;
    let view = inflow_subscription(&state, ctx.tenant_id, &hook, false).await?;
    let deleted = match state.subscriptions.delete(&ctx, view.id).await {
        // Another DELETE got there first: gone, as a later DELETE finds it.
        Err(AppError::Conflict {
            code: "subscription_deleted",
            ..
        }) => return Err(AppError::not_found("webhook subscription", &hook).into()),
        other => other?,
    };
    let mut answer = WebHookSubscriptionResponse::from_view(view, false);
    answer.is_disabled = true;
    super::written(StatusCode::OK, deleted.map(|()| answer))
}
