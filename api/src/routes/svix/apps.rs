//! Applications (`/api/v1/app`): Hookline tenants, named by `app_…` id or
//! by their uid. Applications created here get no API key of their own
//! (the organisation's tokens act for them); `/admin` can issue one.

use super::error::{iterator_names, Invalid, SvixError, SvixResult};
use super::extract::{svix_time, ListResponse, Params, SvixJson};
use super::ids::{self, Ref};
use super::{app, context, Organisation};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_application::tenants::{ListOrder, TenantChanges, TenantDetails, TenantView};
use hookline_application::AppError;
use hookline_domain::metadata::Metadata;
use hookline_domain::tenant::TenantName;
use hookline_domain::uid::Uid;
use hookline_domain::TenantId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, upsert, patch, remove))
}

/// `ApplicationIn`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    /// The tenant's name: 1–200 characters, one line, no control
    /// characters or bidirectional controls, with a letter or digit of any
    /// script.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub name: Option<String>,
    /// The client's own id for it: 1–256 of `a-zA-Z0-9-_.`, not starting
    /// with `app_`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Accepted (1–65535) and not kept: Hookline has no per-application
    /// rate.
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 1, maximum = 65535)]
    pub throttle_rate: Option<i64>,
    /// SDK 1.x's name for `throttleRate`.
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(deprecated, minimum = 1, maximum = 65535)]
    pub rate_limit: Option<i64>,
}

/// `ApplicationPatch`: absent fields stay; `uid: null` removes the uid.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    /// Absent or `null`: unchanged.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    /// `null` removes the uid.
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<Option<String>>,
    /// Absent or `null`: unchanged.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "crate::routes::common::present_whole_number"
    )]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 65535)]
    pub throttle_rate: Option<Option<i64>>,
}

/// `ApplicationOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    /// Accepted, not kept (Hookline has no per-application rate limit).
    pub throttle_rate: Option<u16>,
    pub metadata: BTreeMap<String, String>,
    #[serde(serialize_with = "svix_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "svix_time")]
    pub updated_at: DateTime<Utc>,
}

impl From<TenantView> for ApplicationOut {
    fn from(t: TenantView) -> Self {
        Self {
            id: ids::app(&t.id),
            uid: t.uid.map(|u| u.as_str().to_string()),
            name: t.name,
            throttle_rate: None,
            metadata: t.metadata.as_map().clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

fn name(n: Option<&str>) -> SvixResult<TenantName> {
    match n {
        None => Err(SvixError::invalid(Invalid::body("name", "field required"))),
        Some(n) if n.trim().is_empty() => Err(SvixError::invalid(Invalid::body(
            "name",
            "Application names must be at least one character",
        ))),
        Some(n) => TenantName::parse(n).map_err(SvixError::from),
    }
}

pub(super) fn metadata(m: Option<BTreeMap<String, String>>) -> SvixResult<Metadata> {
    Metadata::parse(m.unwrap_or_default(), "metadata").map_err(SvixError::from)
}

/// A rate (`throttleRate`): accepted from 1 to 65535, not enforced.
pub(super) fn rate(r: Option<i64>) -> SvixResult<()> {
    match r {
        Some(n) if !(1..=i64::from(u16::MAX)).contains(&n) => Err(SvixError::invalid(
            Invalid::body("throttleRate", "must be between 1 and 65535"),
        )),
        _ => Ok(()),
    }
}

impl ApplicationIn {
    fn into_details(self) -> SvixResult<TenantDetails> {
        rate(self.throttle_rate)?;
        rate(self.rate_limit)?;
        Ok(TenantDetails {
            name: name(self.name.as_deref())?,
            uid: self
                .uid
                .as_deref()
                .map(|u| ids::new_uid(u, "uid", ids::APP))
                .transpose()?,
            metadata: metadata(self.metadata)?,
        })
    }
}

fn created(status: StatusCode, t: TenantView) -> Response {
    (status, Json(ApplicationOut::from(t))).into_response()
}

/// Create Application
///
/// With `get_if_exists=true`, an application with this `uid` is answered
/// (200) as it is instead of a 409.
#[utoipa::path(
    post,
    path = "/api/v1/app",
    operation_id = "v1.application.create",
    tag = "Application",
    params(("get_if_exists" = Option<bool>, Query, description = "Answer the existing application with this uid (200) instead of 409.")),
    request_body = ApplicationIn,
    responses(
        (status = 201, description = "Created.", body = ApplicationOut),
        (status = 200, description = "`get_if_exists=true`: the existing application.", body = ApplicationOut),
        (status = 409, description = "- `conflict`: an application with this uid exists"),
    )
)]
async fn create(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    params: Params,
    SvixJson(input): SvixJson<ApplicationIn>,
) -> SvixResult<Response> {
    let get_if_exists = params.flag("get_if_exists", false)?;
    let details = input.into_details()?;
    let existing = || async {
        match &details.uid {
            Some(uid) => state.tenants.find_by_uid(uid).await,
            None => Ok(None),
        }
    };
    if let Some(id) = existing().await? {
        if get_if_exists {
            return Ok(created(StatusCode::OK, state.tenants.get(id).await?));
        }
        return Err(SvixError::conflict(
            "An application with that id or uid already exists",
        ));
    }
    let ctx = context(&org, request_id, TenantId::ORGANISATION);
    match state.tenants.create_with(&ctx, details.clone()).await {
        Ok(w) => Ok(created(StatusCode::CREATED, w.value)),
        // Created by a concurrent request meanwhile.
        Err(AppError::Conflict {
            code: "uid_taken", ..
        }) => match existing().await? {
            Some(id) if get_if_exists => Ok(created(StatusCode::OK, state.tenants.get(id).await?)),
            _ => Err(SvixError::conflict(
                "An application with that id or uid already exists",
            )),
        },
        Err(e) => Err(e.into()),
    }
}

/// List Applications
#[utoipa::path(
    get,
    path = "/api/v1/app",
    operation_id = "v1.application.list",
    tag = "Application",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 250, description = "Page size (default 50)."),
        ("iterator" = Option<String>, Query, description = "`iterator` (or `prevIterator`) of a previous page."),
        ("order" = Option<super::openapi::Ordering>, Query, description = "By creation: `ascending` (default) or `descending`."),
    ),
    responses((status = 200, description = "A page.", body = ListResponse<ApplicationOut>))
)]
async fn list(
    State(state): State<AppState>,
    params: Params,
) -> SvixResult<Json<ListResponse<ApplicationOut>>> {
    if params.flag("exclude_apps_with_no_endpoints", false)? {
        // Not ignored: the list would answer the applications it asks to
        // leave out.
        return Err(SvixError::invalid(Invalid::query(
            "exclude_apps_with_no_endpoints",
            "Hookline lists every application; list an application's endpoints to see whether it has any",
        )));
    }
    let limit = params.limit()?;
    let ascending = params.ascending(true)?;
    let (after, backwards) = params.page_start("an application", |c| ids::app_ref(c).ok()?.id())?;
    let order = if ascending != backwards {
        ListOrder::OldestFirst
    } else {
        ListOrder::NewestFirst
    };
    let (apps, more) = state
        .tenants
        .list_in_order(order, after, limit)
        .await
        .map_err(iterator_names("names no application"))?;
    Ok(Json(ListResponse::page(
        apps.into_iter().map(ApplicationOut::from).collect(),
        more,
        backwards,
        |a| a.id.clone(),
    )))
}

/// Get Application
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}",
    operation_id = "v1.application.get",
    tag = "Application",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid.")),
    responses(
        (status = 200, description = "The application.", body = ApplicationOut),
        (status = 404, description = "- `not_found`: no such application"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
) -> SvixResult<Json<ApplicationOut>> {
    Ok(Json(app(&state, &app_id).await?.into()))
}

/// Update Application
///
/// Creates it (201) when the path's uid names none (it becomes its uid);
/// otherwise replaces its name, uid and metadata (200). An id (`app_…`)
/// that names no application is a 404: ids are given out by the server.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}",
    operation_id = "v1.application.update",
    tag = "Application",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid.")),
    request_body = ApplicationIn,
    responses(
        (status = 200, description = "Updated.", body = ApplicationOut),
        (status = 201, description = "Created.", body = ApplicationOut),
        (status = 404, description = "- `not_found`: the path is an id (`app_…`) that names no application"),
        (status = 409, description = "- `conflict`: another application has this uid"),
    )
)]
async fn upsert(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(app_id): Path<String>,
    SvixJson(input): SvixJson<ApplicationIn>,
) -> SvixResult<Response> {
    let details = input.into_details()?;
    // Named by a uid that names nothing yet: the new application gets it.
    let path_uid = match ids::app_ref(&app_id) {
        Ok(Ref::Uid(uid)) => Some(uid),
        _ => None,
    };
    // Two requests putting a new uid at once: the one whose create finds
    // the uid taken updates what the other created (a PUT is idempotent).
    // The winner's object may take a moment to be found by its uid (read
    // models trail the log): look again, a little later each time, for up
    // to 5 s (`LostRace`).
    let mut race = crate::routes::LostRace::new();
    loop {
        match app(&state, &app_id).await {
            Ok(existing) => {
                let uid = details.uid.clone().or(path_uid
                    .clone()
                    .filter(|u| existing.uid.as_ref() == Some(u)));
                let ctx = context(&org, request_id.clone(), existing.id);
                let changed = state
                    .tenants
                    .change(
                        &ctx,
                        existing.id,
                        TenantChanges {
                            name: Some(details.name.clone()),
                            uid: Some(uid),
                            metadata: Some(details.metadata.clone()),
                        },
                    )
                    .await;
                match changed {
                    Ok(changed) => return Ok(created(StatusCode::OK, changed.value)),
                    // The other racers update it at the same time: again.
                    Err(AppError::Conflict {
                        code: "concurrent_modification",
                        ..
                    }) if race.again().await => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // Named by an id (`app_…`) that names no application: ids
            // are given out by the server, so there is nothing to create
            // under it (each PUT made another application).
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
                let mut new = details.clone();
                if new.uid.is_none() {
                    new.uid.clone_from(&path_uid);
                }
                let ctx = context(&org, request_id.clone(), TenantId::ORGANISATION);
                match state.tenants.create_with(&ctx, new).await {
                    Ok(made) => return Ok(created(StatusCode::CREATED, made.value)),
                    Err(AppError::Conflict {
                        code: "uid_taken", ..
                    }) if path_uid.is_some() && race.again().await => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Patch Application
#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}",
    operation_id = "v1.application.patch",
    tag = "Application",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid.")),
    request_body = ApplicationPatch,
    responses(
        (status = 200, description = "Patched.", body = ApplicationOut),
        (status = 404, description = "- `not_found`: no such application"),
        (status = 409, description = "- `conflict`: another application has this uid"),
    )
)]
async fn patch(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(app_id): Path<String>,
    SvixJson(input): SvixJson<ApplicationPatch>,
) -> SvixResult<Json<ApplicationOut>> {
    let existing = app(&state, &app_id).await?;
    rate(input.throttle_rate.flatten())?;
    let uid: Option<Option<Uid>> = match input.uid {
        None => None,
        Some(None) => Some(None),
        Some(Some(u)) => Some(Some(ids::new_uid(&u, "uid", ids::APP)?)),
    };
    let changes = TenantChanges {
        name: input.name.as_deref().map(|n| name(Some(n))).transpose()?,
        uid,
        metadata: input.metadata.map(|m| metadata(Some(m))).transpose()?,
    };
    let ctx = context(&org, request_id, existing.id);
    let changed = state.tenants.change(&ctx, existing.id, changes).await?;
    Ok(Json(changed.value.into()))
}

/// Delete Application
///
/// Deletes the tenant (soft: its history stays; its uid is free again).
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}",
    operation_id = "v1.application.delete",
    tag = "Application",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "- `not_found`: no such application"),
    )
)]
async fn remove(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(app_id): Path<String>,
) -> SvixResult<StatusCode> {
    let existing = app(&state, &app_id).await?;
    let ctx = context(&org, request_id, existing.id);
    state.tenants.delete(&ctx, existing.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
