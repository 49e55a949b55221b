//! An endpoint's custom headers
//! (`/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers`): read, replaced
//! (`PUT`) or merged (`PATCH`), as Svix does. They are the subscription's
//! headers, sealed in the log like every header Hookline keeps; a read
//! opens them. The values of the headers Svix counts as sensitive
//! (`Authorization`, `X-Api-Key`, …) are never read back: their names are
//! listed in `sensitive` instead.

use super::error::{SvixError, SvixResult};
use super::extract::SvixJson;
use super::{app, context, endpoint, Organisation};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookline_application::subscriptions::SubscriptionChanges;
use hookline_application::AppError;
use hookline_domain::subscription::CustomHeaders;
use hookline_domain::SubscriptionId;
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

/// How many times a merge is made again when the endpoint changed while it
/// was being made.
const MERGE_TRIES: usize = 3;

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
    /// `null` removes it; headers not named stay.
    pub headers: BTreeMap<String, Option<String>>,
    /// Headers to remove (before `headers` is applied).
    #[serde(default)]
    pub delete_headers: Option<Vec<String>>,
}

/// `headers` with `patch` applied: names compare without case.
fn merged(
    mut headers: BTreeMap<String, String>,
    patch: &EndpointHeadersPatchIn,
) -> BTreeMap<String, String> {
    let deleted = patch.delete_headers.iter().flatten().map(|n| (n, None));
    let set = patch.headers.iter().map(|(n, v)| (n, v.as_ref()));
    for (name, value) in deleted.chain(set) {
        headers.retain(|have, _| !have.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers
}

/// Makes `wanted` (from the headers as they were `at`) the endpoint's
/// headers, unless they are so already. `Ok(false)`: the endpoint changed
/// since `at`.
async fn set(
    state: &AppState,
    org: &Organisation,
    request_id: &hookline_application::RequestId,
    tenant: hookline_domain::TenantId,
    id: SubscriptionId,
    (current, at): (BTreeMap<String, String>, chrono::DateTime<chrono::Utc>),
    wanted: BTreeMap<String, String>,
) -> SvixResult<bool> {
    if wanted == current {
        return Ok(true);
    }
    let changes = SubscriptionChanges {
        headers: Some(CustomHeaders::parse(wanted)?),
        unchanged_since: Some(at),
        ..SubscriptionChanges::default()
    };
    let ctx = context(org, request_id.clone(), tenant);
    match state.subscriptions.update(&ctx, id, changes).await {
        Ok(_) => Ok(true),
        Err(AppError::Conflict {
            code: "changed_meanwhile",
            ..
        }) => Ok(false),
        Err(e) => Err(e.into()),
    }
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
    let (headers, _) = state.subscriptions.headers(tenant.id, target.id).await?;
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
        (status = 409, description = "- `changed_meanwhile`: the endpoint kept changing while the headers were set; send again"),
    )
)]
async fn replace(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(input): SvixJson<EndpointHeadersIn>,
) -> SvixResult<StatusCode> {
    merge(&state, &org, &request_id, &app_id, &endpoint_id, |_| {
        input.headers.clone()
    })
    .await
}

/// Patch Endpoint Headers
///
/// Sets the headers given with a value and removes those given as `null`;
/// the others stay.
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
        (status = 409, description = "- `changed_meanwhile`: the endpoint kept changing while the headers were merged; send again"),
    )
)]
async fn patch(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(input): SvixJson<EndpointHeadersPatchIn>,
) -> SvixResult<StatusCode> {
    merge(
        &state,
        &org,
        &request_id,
        &app_id,
        &endpoint_id,
        |current| merged(current.clone(), &input),
    )
    .await
}

/// Sets the headers `wanted` makes of the current ones, made again from
/// the new current ones when the endpoint changed meanwhile.
async fn merge(
    state: &AppState,
    org: &Organisation,
    request_id: &hookline_application::RequestId,
    app_id: &str,
    endpoint_id: &str,
    wanted: impl Fn(&BTreeMap<String, String>) -> BTreeMap<String, String>,
) -> SvixResult<StatusCode> {
    let tenant = app(state, app_id).await?;
    let target = endpoint(state, tenant.id, endpoint_id).await?;
    for _ in 0..MERGE_TRIES {
        let current = state.subscriptions.headers(tenant.id, target.id).await?;
        let new = wanted(&current.0);
        if set(state, org, request_id, tenant.id, target.id, current, new).await? {
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    Err(SvixError::new(
        StatusCode::CONFLICT,
        "changed_meanwhile",
        "the endpoint kept changing while its headers were set; send the request again",
    ))
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

    #[test]
    fn a_patch_sets_replaces_and_removes_whatever_the_case() {
        let patch = EndpointHeadersPatchIn {
            headers: [
                ("x-team".to_string(), Some("sales".to_string())),
                ("AUTHORIZATION".to_string(), None),
                ("X-New".to_string(), Some("1".to_string())),
                ("X-Absent".to_string(), None),
            ]
            .into_iter()
            .collect(),
            delete_headers: Some(vec!["x-gone".to_string(), "X-New".to_string()]),
        };
        let got = merged(
            map(&[
                ("Authorization", "a"),
                ("X-Team", "billing"),
                ("X-Keep", "k"),
                ("X-Gone", "g"),
            ]),
            &patch,
        );
        // Deletions first: a header both deleted and set is set.
        assert_eq!(
            got,
            map(&[("X-Keep", "k"), ("X-New", "1"), ("x-team", "sales")])
        );
    }
}
