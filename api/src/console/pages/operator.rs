//! The operator's pages (signed in with `HOOKLINE_ADMIN_TOKEN`): every
//! tenant, creating tenants, issuing and revoking their keys, and opening a
//! tenant's console (what the operator then does is recorded with actor
//! `admin`).

use super::{shell, show_once, take_once};
use crate::console::i18n::M;
use crate::console::layout::{csrf, time, urlencode, Nav};
use crate::console::session::{Role, ShownOnce};
use crate::console::web::Query;
use crate::console::web::{see_other, Failure, PageResult, Posted, PostedAny, Viewer};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use hookline_application::pagination::PageRequest;
use hookline_application::tenants::IssuedKey;
use hookline_application::{Actor, CommandContext};
use hookline_domain::tenant::{TenantName, TenantStatus};
use hookline_domain::TenantId;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

fn require_operator(viewer: &Viewer) -> Result<(), Failure> {
    if viewer.is_operator() {
        Ok(())
    } else {
        Err(Failure::new(StatusCode::FORBIDDEN, "operator_only"))
    }
}

fn admin_ctx(viewer: &Viewer) -> CommandContext {
    CommandContext {
        request_id: viewer.request_id.clone(),
        tenant_id: TenantId::from_uuid(Uuid::nil()),
        actor: Actor::Admin,
    }
}

fn tenant_id(raw: &str) -> Result<TenantId, Failure> {
    TenantId::parse(raw).map_err(|_| Failure::new(StatusCode::NOT_FOUND, "page_not_found"))
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn create_form(viewer: &Viewer, value: &str, error: Option<&str>) -> Markup {
    let t = |m: M| viewer.t(m);
    html! {
        h2 { (t(M::CreateTenant)) }
        form method="post" action="/console/tenants" novalidate {
            (csrf(viewer))
            div.field {
                label for="tenant-name" { (t(M::TenantName)) }
                input #tenant-name type="text" name="name" value=(value) required
                    aria-describedby="tenant-name-error" aria-invalid=[error.map(|_| "true")];
                p.error-text #tenant-name-error role="alert" { @if let Some(e) = error { (e) } }
            }
            button type="submit" { (t(M::CreateTenant)) }
        }
    }
}

/// `GET /console/tenants`.
pub async fn tenants(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> PageResult {
    require_operator(&viewer)?;
    let content = tenants_content(&state, &viewer, &q, "", None).await?;
    Ok(shell(
        &state,
        &viewer,
        viewer.t(M::Tenants),
        Nav::Tenants,
        &uri,
        content,
    )
    .await)
}

/// The tenants page: the list, and the create form with what was typed
/// and its error (a refused create keeps the list in view).
async fn tenants_content(
    state: &AppState,
    viewer: &Viewer,
    q: &ListQuery,
    name: &str,
    error: Option<&str>,
) -> Result<Markup, Failure> {
    let page = state
        .tenants
        .list(false, PageRequest::parse(Some(100), q.cursor.as_deref())?)
        .await?;
    let t = |m: M| viewer.t(m);
    Ok(html! {
        h1 { (t(M::Tenants)) }
        (crate::console::layout::done_notice(viewer.locale, q.done.as_deref()))
        @if page.data.is_empty() {
            div.empty { p { (t(M::NoTenants)) } }
        } @else {
            div.table-wrap { table #tenants {
                thead { tr { th scope="col" { (t(M::TenantName)) } th scope="col" { (t(M::ActiveKeys)) } th scope="col" { (t(M::Created)) } th scope="col" { (t(M::Actions)) } } }
                tbody {
                    @for tenant in &page.data {
                        tr data-tenant=(tenant.id) {
                            td { a href={ "/console/tenants/" (tenant.id) } { (tenant.name) } }
                            td { (tenant.active_keys) }
                            td { (time(tenant.created_at)) }
                            td {
                                form.inline method="post" action={ "/console/tenants/" (tenant.id) "/open" } {
                                    (csrf(viewer))
                                    button.secondary type="submit" { (t(M::OpenConsole)) span.visually-hidden { " " (tenant.name) } }
                                }
                            }
                        }
                    }
                }
            } }
        }
        @if let Some(next) = &page.next_cursor {
            p { a href={ "/console/tenants?cursor=" (urlencode(next)) } { (t(M::NextPage)) } }
        }
        (create_form(viewer, name, error))
    })
}

fn key_once(viewer: &Viewer, key: &IssuedKey) -> Markup {
    let t = |m: M| viewer.t(m);
    html! {
        div.notice.warn role="status" {
            p { strong { (t(M::KeyOnce)) } }
            div.secret {
                code #key-value data-shown-once { (key.api_key) }
                button.secondary type="button" data-copy="#key-value" data-copied=(t(M::Copied)) aria-describedby="copy-status" hidden { (t(M::Copy)) }
                span #copy-status role="status" aria-live="polite" {}
            }
        }
    }
}

/// `POST /console/tenants`.
pub async fn create_tenant(State(state): State<AppState>, uri: Uri, post: Posted) -> PageResult {
    let Posted { viewer, form } = post;
    require_operator(&viewer)?;
    let raw = form.get("name").unwrap_or("").to_string();
    let name = match TenantName::parse(&raw) {
        Ok(n) => n,
        Err(e) => {
            let msg = crate::console::i18n::field_error(viewer.locale, &e);
            let content =
                tenants_content(&state, &viewer, &ListQuery::default(), &raw, Some(&msg)).await?;
            let mut r = shell(
                &state,
                &viewer,
                viewer.t(M::Tenants),
                Nav::Tenants,
                &uri,
                content,
            )
            .await;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(r);
        }
    };
    let created = state.tenants.create(&admin_ctx(&viewer), name).await?.value;
    let page = format!(
        "/console/tenants/{}/keys/{}",
        created.tenant.id, created.key.id
    );
    let once = ShownOnce::Key {
        tenant_id: created.tenant.id,
        key: created.key,
        new_tenant: Some(created.tenant.name),
    };
    Ok(show_once(&state, &viewer, once, &page))
}

/// `GET /console/tenants/{id}/keys/{key_id}`: the key just issued (with
/// the tenant just created), once; afterwards the tenant's page.
pub async fn shown_key(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path((id, key_id)): Path<(String, String)>,
) -> PageResult {
    require_operator(&viewer)?;
    let id = tenant_id(&id)?;
    let of_this_tenant =
        |o: &ShownOnce| matches!(o, ShownOnce::Key { tenant_id, .. } if *tenant_id == id);
    let once = Uuid::parse_str(&key_id)
        .ok()
        .and_then(|key_id| take_once(&state, &viewer, key_id, of_this_tenant));
    let Some(ShownOnce::Key {
        key, new_tenant, ..
    }) = once
    else {
        return Ok(see_other(&format!("/console/tenants/{id}")));
    };
    let Some(name) = new_tenant else {
        let view = state.tenants.get(id).await?;
        let keys = state.tenants.keys(id).await?;
        return Ok(tenant_page(&state, &viewer, &uri, &view, &keys, Some(&key), None).await);
    };
    let t = |m: M| viewer.t(m);
    let content = html! {
        h1 { (t(M::TenantCreated)) ": " (name) }
        (key_once(&viewer, &key))
        p { a.button href={ "/console/tenants/" (id) } { (t(M::Continue)) } }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::TenantCreated),
        Nav::Tenants,
        &uri,
        content,
    )
    .await)
}

/// `GET /console/tenants/{id}`.
pub async fn tenant(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    require_operator(&viewer)?;
    let id = tenant_id(&id)?;
    let view = state.tenants.get(id).await?;
    let keys = state.tenants.keys(id).await?;
    Ok(tenant_page(&state, &viewer, &uri, &view, &keys, None, q.done.as_deref()).await)
}

async fn tenant_page(
    state: &AppState,
    viewer: &Viewer,
    uri: &Uri,
    view: &hookline_application::tenants::TenantView,
    keys: &[hookline_application::tenants::ApiKeyView],
    issued: Option<&IssuedKey>,
    done: Option<&str>,
) -> axum::response::Response {
    let t = |m: M| viewer.t(m);
    let content = html! {
        p { a href="/console/tenants" { "← " (t(M::Tenants)) } }
        h1 { (view.name) }
        (crate::console::layout::done_notice(viewer.locale, done))
        @if let Some(k) = issued { (key_once(viewer, k)) }
        dl.props {
            dt { "ID" } dd { code { (view.id) } }
            dt { (t(M::Status)) } dd { @if view.status == TenantStatus::Active { span.badge.ok { (t(M::StatusActive)) } } @else { span.badge.muted { (t(M::StatusDeleted)) } } }
            dt { (t(M::Created)) } dd { (time(view.created_at)) }
        }
        div.actions {
            form.inline method="post" action={ "/console/tenants/" (view.id) "/open" } {
                (csrf(viewer)) button type="submit" { (t(M::OpenConsole)) }
            }
            form.inline method="post" action={ "/console/tenants/" (view.id) "/keys" } {
                (csrf(viewer)) button.secondary type="submit" { (t(M::IssueKey)) }
            }
        }
        h2 { (t(M::ApiKeys)) }
        div.table-wrap { table #keys {
            thead { tr { th scope="col" { (t(M::Key)) } th scope="col" { (t(M::Created)) } th scope="col" { (t(M::Status)) } th scope="col" { (t(M::Actions)) } } }
            tbody {
                @for k in keys {
                    tr {
                        td { code { (k.hint) } }
                        td { (time(k.created_at)) }
                        td { @if k.active { span.badge.ok { (t(M::StatusActive)) } } @else { span.badge.muted { (t(M::Revoked)) } } }
                        td { @if k.active {
                            form.inline method="post" action={ "/console/tenants/" (view.id) "/keys/" (k.id) "/revoke" }
                                data-confirm=(t(M::ConfirmRevokeKey)) {
                                (csrf(viewer)) button.danger type="submit" { (t(M::Revoke)) span.visually-hidden { " " (k.hint) } }
                            }
                        } }
                    }
                }
            }
        } }
    };
    shell(state, viewer, &view.name, Nav::Tenants, uri, content).await
}

/// `POST /console/tenants/{id}/keys`: issues a key, shown once by
/// [`shown_key`].
pub async fn issue_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    require_operator(&post.viewer)?;
    let id = tenant_id(&id)?;
    let key = state
        .tenants
        .issue_key(&admin_ctx(&post.viewer), id)
        .await?
        .value;
    let page = format!("/console/tenants/{id}/keys/{}", key.id);
    let once = ShownOnce::Key {
        tenant_id: id,
        key,
        new_tenant: None,
    };
    Ok(show_once(&state, &post.viewer, once, &page))
}

/// `POST /console/tenants/{id}/keys/{key_id}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    post: Posted,
) -> PageResult {
    require_operator(&post.viewer)?;
    let id = tenant_id(&id)?;
    let key_id = Uuid::parse_str(&key_id)
        .map_err(|_| Failure::new(StatusCode::NOT_FOUND, "page_not_found"))?;
    state
        .tenants
        .revoke_key(&admin_ctx(&post.viewer), id, key_id)
        .await?;
    Ok(see_other(&format!("/console/tenants/{id}?done=revoked")))
}

/// `POST /console/tenants/{id}/open`: the operator works in this tenant's
/// console.
pub async fn open_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    require_operator(&post.viewer)?;
    let id = tenant_id(&id)?;
    let view = state.tenants.get(id).await?;
    if view.status != TenantStatus::Active {
        return Err(Failure::new(StatusCode::CONFLICT, "tenant_deleted"));
    }
    state.console.sessions.update(&post.viewer.token, |s| {
        s.role = Role::Operator { viewing: Some(id) };
    });
    Ok(see_other("/console/subscriptions"))
}

/// `POST /console/tenants/leave`: back to the tenant list.
pub async fn leave(State(state): State<AppState>, PostedAny(post): PostedAny) -> PageResult {
    require_operator(&post.viewer)?;
    state.console.sessions.update(&post.viewer.token, |s| {
        s.role = Role::Operator { viewing: None };
    });
    Ok(see_other("/console/tenants"))
}
