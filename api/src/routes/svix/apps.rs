//! Applications (`/api/v1/app`): Hookline tenants, named by `app_…` id or
//! by their uid. Applications created here get no API key of their own
//! (the organisation's tokens act for them); `/admin` can issue one.

use super::error::{Invalid, SvixError, SvixResult};
use super::extract::{svix_time, ListResponse, Params, SvixJson};
use super::ids::{self, Ref};
use super::{app, context, Organisation, Routes};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_application::tenants::{ListOrder, TenantChanges, TenantDetails, TenantView};
use hookline_application::AppError;
use hookline_domain::metadata::Metadata;
use hookline_domain::tenant::TenantName;
use hookline_domain::uid::Uid;
use hookline_domain::TenantId;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

pub fn routes() -> Routes {
    vec![
        ("/api/v1/app", get(list).post(create)),
        (
            "/api/v1/app/{app_id}",
            get(read).put(upsert).patch(patch).delete(remove),
        ),
    ]
}

/// A present JSON field, `null` included (`Some(None)`).
pub(super) fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `ApplicationIn`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub throttle_rate: Option<i64>,
    /// SDK 1.x's name for `throttleRate`.
    #[serde(default)]
    pub rate_limit: Option<i64>,
}

/// `ApplicationPatch`: absent fields stay; `uid: null` removes the uid.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    pub throttle_rate: Option<Option<i64>>,
}

/// `ApplicationOut`.
#[derive(Debug, Serialize)]
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
        rate(self.throttle_rate.or(self.rate_limit))?;
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

async fn list(
    State(state): State<AppState>,
    params: Params,
) -> SvixResult<Json<ListResponse<ApplicationOut>>> {
    let limit = params.limit()?;
    let ascending = match params.get("order") {
        None | Some("ascending") => true,
        Some("descending") => false,
        Some(other) => {
            return Err(SvixError::invalid(Invalid::query(
                "order",
                format!("'{other}' is not 'ascending' or 'descending'"),
            )))
        }
    };
    let cursor = params.iterator();
    let after = match cursor {
        Some(c) => match ids::app_ref(c.id) {
            Ok(Ref::Id(id)) => Some(id),
            _ => {
                return Err(SvixError::invalid(Invalid::query(
                    "iterator",
                    "is not an application id from a previous page",
                )))
            }
        },
        None => None,
    };
    let backwards = cursor.is_some_and(|c| c.backwards);
    let order = if ascending != backwards {
        ListOrder::OldestFirst
    } else {
        ListOrder::NewestFirst
    };
    let (apps, more) = state
        .tenants
        .list_in_order(order, after, limit)
        .await
        .map_err(|e| match e {
            AppError::NotFound { .. } => {
                SvixError::invalid(Invalid::query("iterator", "names no application"))
            }
            other => other.into(),
        })?;
    Ok(Json(ListResponse::page(
        apps.into_iter().map(ApplicationOut::from).collect(),
        more,
        backwards,
        |a| a.id.clone(),
    )))
}

async fn read(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
) -> SvixResult<Json<ApplicationOut>> {
    Ok(Json(app(&state, &app_id).await?.into()))
}

async fn upsert(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(app_id): Path<String>,
    SvixJson(input): SvixJson<ApplicationIn>,
) -> SvixResult<Response> {
    let mut details = input.into_details()?;
    // Named by a uid that names nothing yet: the new application gets it.
    let path_uid = match ids::app_ref(&app_id) {
        Ok(Ref::Uid(uid)) => Some(uid),
        _ => None,
    };
    match app(&state, &app_id).await {
        Ok(existing) => {
            let uid = details
                .uid
                .take()
                .or(path_uid.filter(|u| existing.uid.as_ref() == Some(u)));
            let ctx = context(&org, request_id, existing.id);
            let changed = state
                .tenants
                .change(
                    &ctx,
                    existing.id,
                    TenantChanges {
                        name: Some(details.name),
                        uid: Some(uid),
                        metadata: Some(details.metadata),
                    },
                )
                .await?;
            Ok(created(StatusCode::OK, changed.value))
        }
        Err(SvixError::Http {
            status: StatusCode::NOT_FOUND,
            ..
        }) => {
            if details.uid.is_none() {
                details.uid = path_uid;
            }
            let ctx = context(&org, request_id, TenantId::ORGANISATION);
            let made = state.tenants.create_with(&ctx, details).await?;
            Ok(created(StatusCode::CREATED, made.value))
        }
        Err(e) => Err(e),
    }
}

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
