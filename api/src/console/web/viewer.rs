//! The signed-in viewer: the session behind the cookie, checked against the
//! log on every request (a revoked key, a revoked portal link or a changed
//! admin token ends it).

use super::{admin_fingerprint, cookie, locale, session_cookie, Failure, SESSION_COOKIE};
use crate::console::i18n::{Locale, M};
use crate::console::session::{Role, Session};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookline_application::{Actor, AppError, CommandContext, RequestId};
use hookline_domain::tenant::TenantStatus;
use hookline_domain::{SubscriptionId, TenantId};
use subtle::ConstantTimeEq;

/// The signed-in viewer of a console request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub token: String,
    pub session: Session,
    pub locale: Locale,
    pub request_id: RequestId,
}

impl Viewer {
    /// The tenant whose console this is (none: an operator outside any).
    pub fn tenant(&self) -> Option<TenantId> {
        match &self.session.role {
            Role::Tenant { tenant_id, .. } => Some(*tenant_id),
            Role::Operator { viewing } => *viewing,
            Role::Portal(grant) => Some(grant.tenant_id),
        }
    }

    /// The tenant, or a failure sending an operator to the tenant list.
    pub fn require_tenant(&self) -> Result<TenantId, Failure> {
        self.tenant()
            .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, "no_tenant_selected"))
    }

    pub fn is_operator(&self) -> bool {
        matches!(self.session.role, Role::Operator { .. })
    }

    pub fn portal(&self) -> Option<&hookline_application::portal::PortalGrant> {
        match &self.session.role {
            Role::Portal(g) => Some(g),
            _ => None,
        }
    }

    /// Whether this session may change anything.
    pub fn can_write(&self) -> bool {
        self.portal().is_none_or(|g| !g.read_only)
    }

    /// Whether the session may create subscriptions (a portal link scoped
    /// to some subscriptions may not).
    pub fn can_create(&self) -> bool {
        self.can_write()
            && self
                .portal()
                .is_none_or(|g| g.subscription_filter.is_none())
    }

    /// Why this session may not create: a read-only link, or one scoped to
    /// some subscriptions (or any portal link, for portal links).
    pub fn refuse_create(&self) -> Failure {
        let code = if self.can_write() {
            "create_not_allowed"
        } else {
            "read_only"
        };
        Failure::new(StatusCode::FORBIDDEN, code)
    }

    /// Whether the session reaches this subscription.
    pub fn covers(&self, id: SubscriptionId) -> bool {
        self.portal().is_none_or(|g| g.covers(id))
    }

    /// 404 (as for another tenant's) unless the session reaches `id`.
    pub fn check_covers(&self, id: SubscriptionId) -> Result<(), Failure> {
        if self.covers(id) {
            Ok(())
        } else {
            Err(AppError::not_found("subscription", id).into())
        }
    }

    /// The command context of a change made in this session.
    pub fn ctx(&self) -> Result<CommandContext, Failure> {
        let tenant_id = self.require_tenant()?;
        let actor = match &self.session.role {
            Role::Tenant { key_id, .. } => Actor::ApiKey(*key_id),
            Role::Operator { .. } => Actor::Admin,
            Role::Portal(g) => Actor::Portal(g.link_id),
        };
        Ok(CommandContext {
            request_id: self.request_id.clone(),
            tenant_id,
            actor,
        })
    }

    pub fn t(&self, m: M) -> &'static str {
        m.text(self.locale)
    }
}

/// Why a request with a session cookie has no session.
#[derive(Debug, Clone, Copy)]
enum Ended {
    /// The portal link it was opened with was revoked or expired, or what
    /// made the link no longer stands.
    Portal,
    /// Sign-out, idle time, its lifetime, a restart, or what it signed in
    /// with no longer works.
    Session,
}

fn to_sign_in(parts: &Parts, ended: Option<Ended>) -> Response {
    let fetch = parts.headers.get("x-console-fetch").is_some();
    if fetch {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    // The sign-in page says why, and comes back to the page asked for (a
    // page, not an action: a POST is not replayed).
    let mut to = String::from("/console/sign-in");
    let mut params = Vec::new();
    match ended {
        Some(Ended::Portal) => params.push("ended=portal".to_string()),
        Some(Ended::Session) => params.push("ended=session".to_string()),
        None => {}
    }
    if parts.method == axum::http::Method::GET && !matches!(ended, Some(Ended::Portal)) {
        if let Some(pq) = parts.uri.path_and_query() {
            let path = pq.as_str();
            let path = if path.starts_with("/console") {
                path.to_string()
            } else {
                format!("/console{path}")
            };
            params.push(format!("next={}", crate::console::layout::urlencode(&path)));
        }
    }
    if !params.is_empty() {
        to.push('?');
        to.push_str(&params.join("&"));
    }
    let mut response = Redirect::to(&to).into_response();
    if cookie(&parts.headers, SESSION_COOKIE).is_some() {
        if let Ok(v) = HeaderValue::from_str(&session_cookie("", false, Some(0))) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Whether the session still stands: the key it signed in with works, the
/// admin token is the same, the portal link is neither revoked nor expired.
async fn still_valid(state: &AppState, session: &mut Session) -> Result<bool, Failure> {
    match &mut session.role {
        Role::Tenant { tenant_id, key_id } => {
            let keys = match state.tenants.keys(*tenant_id).await {
                Ok(keys) => keys,
                Err(AppError::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
            Ok(keys.iter().any(|k| k.id == *key_id && k.active))
        }
        Role::Operator { viewing } => {
            let token_same = match (&state.admin_token, session.admin_fingerprint) {
                (Some(token), Some(fp)) => bool::from(admin_fingerprint(token.expose()).ct_eq(&fp)),
                _ => false,
            };
            // A tenant deleted while the operator works in its console is
            // no longer open to them (writes to it would still be taken).
            if let (true, Some(id)) = (token_same, *viewing) {
                let open = match state.tenants.get(id).await {
                    Ok(view) => view.status == TenantStatus::Active,
                    Err(AppError::NotFound { .. }) => false,
                    Err(e) => return Err(e.into()),
                };
                if !open {
                    *viewing = None;
                }
            }
            Ok(token_same)
        }
        Role::Portal(grant) => match state.portal.check(grant.link_id).await {
            Ok(fresh) => {
                *grant = fresh;
                Ok(true)
            }
            Err(
                AppError::Conflict { .. }
                | AppError::NothingFound { .. }
                | AppError::NotFound { .. },
            ) => Ok(false),
            Err(e) => Err(e.into()),
        },
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let locale = locale(&parts.headers);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string) else {
            return Err(to_sign_in(parts, None));
        };
        let refresh = parts
            .headers
            .get("x-console-fetch")
            .is_some_and(|v| v.as_bytes() == b"live");
        let found = if refresh {
            state.console.sessions.peek(&token)
        } else {
            state.console.sessions.get(&token)
        };
        let Some(mut session) = found else {
            let ended = if state.console.sessions.link_ended(&token) {
                Ended::Portal
            } else {
                Ended::Session
            };
            return Err(to_sign_in(parts, Some(ended)));
        };
        match still_valid(state, &mut session).await {
            Ok(true) => {}
            Ok(false) => {
                let ended = if let Role::Portal(_) = session.role {
                    state.console.sessions.end_because_link_ended(&token);
                    Ended::Portal
                } else {
                    state.console.sessions.end(&token);
                    Ended::Session
                };
                return Err(to_sign_in(parts, Some(ended)));
            }
            Err(f) => return Err(f.into_response()),
        }
        let CurrentRequestId(request_id) = CurrentRequestId::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            token,
            session,
            locale,
            request_id,
        })
    }
}
