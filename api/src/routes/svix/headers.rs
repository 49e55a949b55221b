//! An endpoint's custom headers
//! (`/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers`): read, replaced
//! (`PUT`) or merged (`PATCH`), as Svix does. They are the subscription's
//! headers, sealed in the log like every header Hookline keeps; a read
//! opens them. The values of the headers Svix counts as sensitive
//! (`Authorization`, `X-Api-Key`, …) are never read back: their names are
//! listed in `sensitive` instead.

use super::error::SvixResult;
use super::extract::SvixJson;
use super::{app, context, endpoint, Organisation};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookline_application::subscriptions::HeadersChange;
use hookline_domain::subscription::CustomHeaders;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read, replace, patch))
}

/// The headers whose values Svix redacts in reads (lower case).
const SENSITIVE: [&str; 6] = [
    "authorization",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "x-api-key",
    "x-auth-token",
];

fn sensitive(name: &str) -> bool {
    SENSITIVE.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// `EndpointHeadersOut`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointHeadersOut {
    /// The headers and their values, but the sensitive ones.
    pub headers: BTreeMap<String, String>,
    /// The names of the headers whose values are not shown.
    pub sensitive: Vec<String>,
}

impl From<BTreeMap<String, String>> for EndpointHeadersOut {
    fn from(all: BTreeMap<String, String>) -> Self {
        let (hidden, headers): (BTreeMap<_, _>, BTreeMap<_, _>) =
            all.into_iter().partition(|(name, _)| sensitive(name));
        Self {
            headers,
            sensitive: hidden.into_keys().collect(),
        }
    }
}

/// `EndpointHeadersIn`: every header the endpoint sends from now on.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EndpointHeadersIn {
    /// At most 20; names and values as in Hookline's subscriptions (no
    /// signature, content, connection or `webhook-*`/`svix-*` headers).
    pub headers: BTreeMap<String, String>,
}

/// `EndpointHeadersPatchIn`: headers to set, and to remove (as `null`,
/// Svix's open-source server, or in `deleteHeaders`, Svix's current API).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHeadersPatchIn {
    /// A value sets the header (whatever the case of its name before),
    /// `null` removes it; headers not named stay. A name may be given once
    /// (in any case).
    pub headers: BTreeMap<String, Option<String>>,
    /// Headers to remove (before `headers` is applied).
    #[serde(default)]
    pub delete_headers: Option<Vec<String>>,
}

/// Get Endpoint Headers
///
/// The headers sent with every delivery. Values of sensitive headers
/// (`Authorization`, `Proxy-Authorization`, `X-Api-Key`, `X-Auth-Token`, …)
/// are not shown: their names are in `sensitive`.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operation_id = "v1.endpoint.get-headers",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    responses(
        (status = 200, description = "The headers.", body = EndpointHeadersOut),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> SvixResult<Json<EndpointHeadersOut>> {
    let tenant = app(&state, &app_id).await?;
    let target = endpoint(&state, tenant.id, &endpoint_id).await?;
    let headers = state.subscriptions.headers(tenant.id, target.id).await?;
    Ok(Json(headers.into()))
}

/// Update Endpoint Headers
///
/// Replaces every header (an empty object removes them all). Applies to
/// the endpoint's next attempt.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operation_id = "v1.endpoint.update-headers",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    request_body = EndpointHeadersIn,
    responses(
        (status = 204, description = "Replaced."),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn replace(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(input): SvixJson<EndpointHeadersIn>,
) -> SvixResult<StatusCode> {
    let headers = CustomHeaders::parse(input.headers)?;
    let target = (app_id.as_str(), endpoint_id.as_str());
    change(
        &state,
        &org,
        request_id,
        target,
        HeadersChange::Replace(headers),
    )
    .await
}

/// Patch Endpoint Headers
///
/// Removes the headers named in `deleteHeaders`, then sets those given
/// with a value and removes those given as `null`; the others stay.
/// Concurrent patches are applied one after the other.
#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operation_id = "v1.endpoint.patch-headers",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    request_body = EndpointHeadersPatchIn,
    responses(
        (status = 204, description = "Patched."),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn patch(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(input): SvixJson<EndpointHeadersPatchIn>,
) -> SvixResult<StatusCode> {
    let patch = HeadersChange::Patch {
        delete: input.delete_headers.unwrap_or_default(),
        set: input.headers,
    };
    let target = (app_id.as_str(), endpoint_id.as_str());
    change(&state, &org, request_id, target, patch).await
}

/// Applies `change` to the headers of the endpoint `(app, endpoint)` names.
async fn change(
    state: &AppState,
    org: &Organisation,
    request_id: hookline_application::RequestId,
    (app_id, endpoint_id): (&str, &str),
    change: HeadersChange,
) -> SvixResult<StatusCode> {
    let tenant = app(state, app_id).await?;
    let target = endpoint(state, tenant.id, endpoint_id).await?;
    let ctx = context(org, request_id, tenant.id);
    state
        .subscriptions
        .change_headers(&ctx, target.id, change)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn sensitive_values_are_named_not_shown() {
        let out = EndpointHeadersOut::from(map(&[
            ("Authorization", "Bearer x"),
            ("X-API-KEY", "k"),
            ("X-Team", "billing"),
        ]));
        assert_eq!(out.headers, map(&[("X-Team", "billing")]));
        assert_eq!(out.sensitive, vec!["Authorization", "X-API-KEY"]);
    }
}
