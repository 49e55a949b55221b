//! `/admin`: tenant creation for automation, authorised by
//! `HOOKLINE_ADMIN_TOKEN`. Without that setting the admin API does not
//! exist (404).

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/tenants", post(create_tenant))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    name: String,
}

fn authorize(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let Some(token) = &state.admin_token else {
        return Err(ApiError::not_found(
            "the admin API is disabled; set HOOKLINE_ADMIN_TOKEN to enable it",
        ));
    };
    let given = crate::middleware::bearer_token(headers, "HOOKLINE_ADMIN_TOKEN")?;
    if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "send `Authorization: Bearer <HOOKLINE_ADMIN_TOKEN>`",
        ))
    }
}

async fn create_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ApiJson<CreateTenant>, ApiError>,
) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    let ApiJson(input) = body?;
    let tenant = state.tenants.create(&input.name).await?;
    Ok((StatusCode::CREATED, Json(tenant)).into_response())
}
