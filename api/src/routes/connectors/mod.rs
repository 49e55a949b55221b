//! `/v1/connectors/siigo/subscriptions`: provision webhook subscriptions
//! at Siigo (optionally through a new source), list and remove them.

pub mod dto;

use super::common::PageResponse;
use super::openapi::examples as ex;
use super::{no_content, written, Ctx};
use crate::error::ApiResult;
use crate::extract::{parse_id, ApiJson, ApiQuery};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dto::{ListUpstreamQuery, ProvisionRequest, UpstreamResponse};
use hookline_application::pagination::PageRequest;
use hookline_domain::UpstreamId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(provision, list))
        .routes(routes!(read, remove))
}

fn upstream_id(raw: &str) -> ApiResult<UpstreamId> {
    parse_id(raw, UpstreamId::parse)
}

/// Provision a subscription at Siigo
///
/// Obtains a token with the account's credentials (cached per credential
/// set for 25 minutes), then creates one webhook subscription at Siigo per
/// event, delivering to `url` or, with `via_source`, to a new
/// `header-secret` source (answered in `source`, with its secret). The
/// provisioning is recorded (`UpstreamSubscriptionProvisioned`, with
/// Siigo's ids and the credentials sealed).
#[utoipa::path(
    post,
    path = "/connectors/siigo/subscriptions",
    operation_id = "provision_siigo_subscription",
    tag = "connectors",
    request_body(content = ProvisionRequest, example = json!(ex::provision_siigo())),
    responses(
        (status = 201, description = "Provisioned.", body = UpstreamResponse,
            links(
                ("GetSiigoSubscription" = (operation_id = "get_siigo_subscription", parameters(("id" = "$response.body#/id")))),
                ("RemoveSiigoSubscription" = (operation_id = "remove_siigo_subscription", parameters(("id" = "$response.body#/id")))),
            ),
            example = json!(ex::upstream(true))),
        (status = 400, description = "- `validation_error`: a field breaks its rules (each is named: `url`, `events`, `username`, `access_key`, `client_id`, `client_secret`, `partner_id`, `description`, `headers.<name>`, `sandbox_url`), or both or neither of `url` and `via_source` are given"),
        (status = 409, description = "- `source_limit_reached`: `via_source`, and the tenant has the most sources allowed"),
        (status = 422, description = "- `upstream_refused`: Siigo refused the request (an unknown topic, a bad Partner-Id, …); its answer is in `detail`\n- `upstream_unauthorized`: Siigo refused the credentials, also with a fresh token"),
        (status = 502, description = "- `upstream_unavailable`: Siigo could not be reached, kept failing (5xx, timeouts) after the retries, or answered something unexpected; nothing was recorded and what was created there was undone"),
    )
)]
async fn provision(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<ProvisionRequest>,
) -> ApiResult<Response> {
    let input = input.into_provision(&state.siigo_url, &state.allow_list)?;
    // Siigo is changed from here on: the provisioning runs to its end
    // (recorded, or undone at Siigo) in a task of its own, even when the
    // request timeout gives up on this answer, and the timeout waits for
    // it as for a commit (then `503 outcome_unknown`, see the request's
    // trace). Cut off half-way, it left subscriptions at Siigo that
    // Hookline had no record of.
    hookline_application::commitment::point_of_no_return();
    let siigo = state.siigo.clone();
    let created = state
        .finishing
        .spawn(async move { siigo.provision(&ctx, input).await })
        .await
        .map_err(|e| {
            hookline_application::AppError::Internal(format!(
                "the Siigo provisioning task failed: {e}"
            ))
        })??;
    written(StatusCode::CREATED, created.map(UpstreamResponse::from))
}

/// List subscriptions provisioned at Siigo
///
/// Newest first; active ones unless `include_removed`. No credentials.
#[utoipa::path(
    get,
    path = "/connectors/siigo/subscriptions",
    operation_id = "list_siigo_subscriptions",
    tag = "connectors",
    params(ListUpstreamQuery),
    responses(
        (status = 200, description = "A page of upstream subscriptions.",
            body = PageResponse<UpstreamResponse>, example = json!({"data": [ex::upstream(false)]})),
        (status = 400, description = "- `validation_error`: `limit` or `cursor` is malformed"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListUpstreamQuery>,
) -> ApiResult<Response> {
    let page = state
        .siigo
        .list(
            caller.tenant_id,
            query.include_removed == Some(true),
            PageRequest::parse(query.limit, query.cursor.as_deref())?,
        )
        .await?;
    Ok(Json(PageResponse::from_page(page, UpstreamResponse::from)).into_response())
}

/// Get a subscription provisioned at Siigo
#[utoipa::path(
    get,
    path = "/connectors/siigo/subscriptions/{id}",
    operation_id = "get_siigo_subscription",
    tag = "connectors",
    params(("id" = Uuid, Path, description = "The upstream subscription's id (Hookline's).")),
    responses(
        (status = 200, description = "The upstream subscription (no credentials).", body = UpstreamResponse,
            example = json!(ex::upstream(false))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such upstream subscription for this tenant"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = state.siigo.get(caller.tenant_id, upstream_id(&id)?).await?;
    Ok(Json(UpstreamResponse::from(view)).into_response())
}

/// Remove a subscription provisioned at Siigo
///
/// Deletes each of its webhook subscriptions at Siigo (one already gone
/// counts as deleted) and records the removal. A source it created stays.
#[utoipa::path(
    delete,
    path = "/connectors/siigo/subscriptions/{id}",
    operation_id = "remove_siigo_subscription",
    tag = "connectors",
    params(("id" = Uuid, Path, description = "The upstream subscription's id (Hookline's).")),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such upstream subscription for this tenant"),
        (status = 409, description = "- `upstream_subscription_removed`: it was already removed\n- `concurrent_modification`: another request changed it at the same time; retry"),
        (status = 422, description = "- `upstream_refused`: Siigo refused the request (an unknown topic, a bad Partner-Id, …); its answer is in `detail`\n- `upstream_unauthorized`: Siigo refused the credentials, also with a fresh token"),
        (status = 502, description = "- `upstream_unavailable`: Siigo could not be reached, kept failing (5xx, timeouts) after the retries, or answered something unexpected; nothing was recorded and what was created there was undone"),
    )
)]
async fn remove(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = upstream_id(&id)?;
    Ok(no_content(state.siigo.remove(&ctx, id).await?))
}
