//! What a subscription's page posts: send test, enable, disable, rotate
//! the secret (shown once), delete with a confirmation.

use super::{load, sub_id, visible};
use crate::console::i18n::M;
use crate::console::layout::{csrf, Nav};
use crate::console::pages::shell;
use crate::console::session::ShownOnce;
use crate::console::web::{see_other, Failure, PageResult, Posted, Viewer};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use hookline_application::subscriptions::SubscriptionView;
use maud::html;

/// After a POST that made a secret: shown once by the secret page.
pub(super) fn show_once(
    state: &AppState,
    viewer: &Viewer,
    view: SubscriptionView,
    created: bool,
) -> Response {
    let page = format!("/console/subscriptions/{}/secret", view.id);
    crate::console::pages::show_once(
        state,
        viewer,
        ShownOnce::Secret {
            view: Box::new(view),
            created,
        },
        &page,
    )
}

/// `GET /console/subscriptions/{id}/secret`: the secret just made, once;
/// afterwards the subscription's page.
pub async fn shown_secret(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
) -> PageResult {
    let id = sub_id(&id)?;
    let secret = |o: &ShownOnce| matches!(o, ShownOnce::Secret { .. });
    match crate::console::pages::take_once(&state, &viewer, *id.as_uuid(), secret) {
        Some(ShownOnce::Secret { view, created }) => {
            let heading = if created {
                M::SubscriptionCreated
            } else {
                M::SecretRotated
            };
            Ok(secret_page(&state, &viewer, &uri, &view, heading).await)
        }
        _ => Ok(see_other(&format!("/console/subscriptions/{id}"))),
    }
}

/// The page that shows a secret once (after creating or rotating).
async fn secret_page(
    state: &AppState,
    viewer: &Viewer,
    uri: &Uri,
    view: &SubscriptionView,
    heading: M,
) -> Response {
    let t = |m: M| viewer.t(m);
    let content = html! {
        h1 { (t(heading)) }
        div.notice.warn role="status" {
            p { strong { (t(M::SecretOnce)) } }
            div.secret {
                code #secret-value data-shown-once { (view.secret) }
                button.secondary type="button" data-copy="#secret-value" data-copied=(t(M::Copied)) aria-describedby="copy-status" hidden { (t(M::Copy)) }
                span #copy-status role="status" aria-live="polite" {}
            }
        }
        dl.props {
            dt { (t(M::Url)) } dd { (view.url) }
            dt { (t(M::Events)) } dd { @for (i, e) in view.events.iter().enumerate() { @if i > 0 { ", " } code { (e) } } }
        }
        p { a.button href={ "/console/subscriptions/" (view.id) } { (t(M::ContinueToSubscription)) } }
    };
    shell(state, viewer, t(heading), Nav::Subscriptions, uri, content).await
}

/// `POST /console/subscriptions/{id}/test`: the seeds' "Probar".
pub async fn test_send(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    let id = visible(&state, &post.viewer, &id).await?;
    let published = state.publish.test_send(&post.viewer.ctx()?, id).await?;
    let delivery = published
        .value
        .deliveries
        .first()
        .map(|d| format!("&delivery={}", d.id))
        .unwrap_or_default();
    Ok(see_other(&format!(
        "/console/subscriptions/{id}?done=test_sent{delivery}#deliveries"
    )))
}

/// `POST /console/subscriptions/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    let id = visible(&state, &post.viewer, &id).await?;
    state.subscriptions.enable(&post.viewer.ctx()?, id).await?;
    Ok(see_other(&format!(
        "/console/subscriptions/{id}?done=enabled"
    )))
}

/// `POST /console/subscriptions/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    let id = visible(&state, &post.viewer, &id).await?;
    state
        .subscriptions
        .disable(
            &post.viewer.ctx()?,
            id,
            "disabled in the console".to_string(),
        )
        .await?;
    Ok(see_other(&format!(
        "/console/subscriptions/{id}?done=disabled"
    )))
}

/// `POST /console/subscriptions/{id}/rotate`: shows the new secret once.
pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    let id = visible(&state, &post.viewer, &id).await?;
    let rotated = state
        .subscriptions
        .rotate_secret(&post.viewer.ctx()?, id, None, None)
        .await?;
    Ok(show_once(&state, &post.viewer, rotated.value, false))
}

/// `GET /console/subscriptions/{id}/delete`: the confirmation, naming the
/// URL.
pub async fn confirm_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
) -> PageResult {
    if !viewer.can_write() {
        return Err(Failure::new(StatusCode::FORBIDDEN, "read_only"));
    }
    let view = load(&state, &viewer, sub_id(&id)?).await?;
    let t = |m: M| viewer.t(m);
    let content = html! {
        div.confirm {
            h1 { (t(M::DeleteTitle)) }
            p { (t(M::DeleteQuestion)) }
            p { strong #delete-url { (view.url) } }
            p.muted { (t(M::DeleteExplain)) }
            div.actions {
                form.inline method="post" action={ "/console/subscriptions/" (view.id) "/delete" } {
                    (csrf(&viewer))
                    button.danger type="submit" { (t(M::ConfirmDelete)) }
                }
                a.button.secondary href={ "/console/subscriptions/" (view.id) } { (t(M::Cancel)) }
            }
        }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::DeleteTitle),
        Nav::Subscriptions,
        &uri,
        content,
    )
    .await)
}

/// `POST /console/subscriptions/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    let id = visible(&state, &post.viewer, &id).await?;
    state.subscriptions.delete(&post.viewer.ctx()?, id).await?;
    Ok(see_other("/console/subscriptions?done=deleted"))
}
