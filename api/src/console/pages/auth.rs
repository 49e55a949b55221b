//! Signing in (API key or admin token), signing out, the language switch,
//! opening a portal link, and the built-in help page.

use crate::console::i18n::{Locale, M};
use crate::console::layout::{bare_page, urlencode};
use crate::console::session::{Role, Session};
use crate::console::web::Query;
use crate::console::web::{
    admin_fingerprint, cookie, html, html_status, locale, see_other, session_cookie, AnonymousPost,
    Failure, PageResult, PostedAny, LANG_COOKIE, SESSION_COOKIE,
};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use hookline_application::AppError;
use maud::html as markup;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// `/console`: the dashboard, or sign-in without a session.
pub async fn home() -> Response {
    see_other("/console/dashboard")
}

/// What the sign-in page says besides its forms, and where it goes after.
#[derive(Debug, Clone, Copy, Default)]
struct SignInPage<'a> {
    error: Option<M>,
    /// Why the viewer is here again: their session or portal link ended.
    ended: Option<M>,
    /// The console page to open after signing in.
    next: Option<&'a str>,
}

fn sign_in_form(locale: Locale, admin: bool, page: SignInPage<'_>, status: StatusCode) -> Response {
    let t = |m: M| m.text(locale);
    let next = page.next.filter(|n| stays_in_the_console(n));
    let content = markup! {
        div.signin {
            h1 { (t(M::SignInTitle)) }
            @if let Some(why) = page.ended {
                div.notice.warn role="status" { (t(why)) }
            }
            p.lead { (t(M::SignInLead)) }
            @if let Some(e) = page.error {
                div.notice.error role="alert" { (t(e)) }
            }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="kind" value="tenant";
                @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                div.field {
                    label for="api_key" { (t(M::ApiKey)) }
                    input #api_key type="password" name="credential" autocomplete="off" required
                        aria-describedby="api_key-hint";
                    p.hint #api_key-hint { (t(M::ApiKeyHint)) }
                }
                button type="submit" { (t(M::SignIn)) }
            }
            @if admin {
                h2 { (t(M::OperatorSignIn)) }
                form method="post" action="/console/sign-in" {
                    input type="hidden" name="kind" value="operator";
                    @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                    div.field {
                        label for="admin_token" { (t(M::AdminToken)) }
                        input #admin_token type="password" name="credential" autocomplete="off" required
                            aria-describedby="admin_token-hint";
                        p.hint #admin_token-hint { (t(M::AdminTokenHint)) }
                    }
                    button.secondary type="submit" { (t(M::SignInAsOperator)) }
                }
            }
        }
    };
    html_status(
        status,
        bare_page(locale, t(M::SignInTitle), "/console/sign-in", content),
    )
}

/// `GET /console/sign-in`.
#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    /// `portal` or `session`: what ended (set by the redirect here).
    #[serde(default)]
    ended: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let ended = match q.ended.as_deref() {
        Some("portal") => Some(M::PortalSessionEnded),
        Some("session") => Some(M::SessionEnded),
        _ => None,
    };
    sign_in_form(
        locale(&headers),
        state.admin_token.is_some(),
        SignInPage {
            ended,
            next: q.next.as_deref(),
            ..SignInPage::default()
        },
        StatusCode::OK,
    )
}

fn start(state: &AppState, session: Session, to: &str) -> Response {
    let token = state.console.sessions.start(session);
    let mut r = see_other(to);
    if let Ok(v) = HeaderValue::from_str(&session_cookie(&token, state.console.secure(), None)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn csrf_token() -> String {
    crate::console::session::new_token()
}

/// `POST /console/sign-in`.
pub async fn sign_in(State(state): State<AppState>, post: AnonymousPost) -> PageResult {
    let AnonymousPost {
        form,
        locale,
        client,
    } = post;
    let admin = state.admin_token.is_some();
    let refused = |error: M| SignInPage {
        error: Some(error),
        next: form.get("next"),
        ..SignInPage::default()
    };
    if let Some(wait) = state.console.sign_ins.blocked(client) {
        let mut r = sign_in_form(
            locale,
            admin,
            refused(M::TooManySignIns),
            StatusCode::TOO_MANY_REQUESTS,
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        return Ok(r);
    }
    let credential = form.get("credential").unwrap_or("").trim();
    let session = match form.get("kind") {
        Some("operator") => match &state.admin_token {
            Some(token)
                if !credential.is_empty()
                    && bool::from(credential.as_bytes().ct_eq(token.expose().as_bytes())) =>
            {
                Some(Session::new(
                    Role::Operator { viewing: None },
                    csrf_token(),
                    Some(admin_fingerprint(token.expose())),
                ))
            }
            _ => None,
        },
        _ => state
            .auth
            .authenticate(credential)
            .await
            .map_err(Failure::from)?
            .map(|p| {
                Session::new(
                    Role::Tenant {
                        tenant_id: p.tenant_id,
                        key_id: p.key_id,
                    },
                    csrf_token(),
                    None,
                )
            }),
    };
    let Some(session) = session else {
        state.console.sign_ins.failed(client);
        tracing::warn!(%client, "console sign-in refused");
        return Ok(sign_in_form(
            locale,
            admin,
            refused(M::SignInFailed),
            StatusCode::UNAUTHORIZED,
        ));
    };
    // A success does not clear the client's failures: one valid key
    // would otherwise let it guess the admin token without limit.
    let to = match (form.get("next"), &session.role) {
        (Some(next), _) if stays_in_the_console(next) => next,
        (_, Role::Operator { .. }) => "/console/tenants",
        _ => "/console/dashboard",
    };
    let to = to.to_string();
    Ok(start(&state, session, &to))
}

/// `POST /console/sign-out`.
pub async fn sign_out(State(state): State<AppState>, PostedAny(post): PostedAny) -> Response {
    state.console.sessions.end(&post.viewer.token);
    let mut r = see_other("/console/sign-in");
    if let Ok(v) = HeaderValue::from_str(&session_cookie("", state.console.secure(), Some(0))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    set: Option<String>,
    #[serde(default)]
    back: Option<String>,
}

/// `GET /console/lang?set=es&back=/console/...`: remembers the language
/// (a preference cookie; nothing on the server changes).
pub async fn language(State(state): State<AppState>, Query(q): Query<LangQuery>) -> Response {
    let back = q
        .back
        .filter(|b| stays_in_the_console(b))
        .unwrap_or_else(|| "/console".to_string());
    let mut r = see_other(&back);
    if let Some(l) = q.set.as_deref().and_then(Locale::from_code) {
        let mut c = format!(
            "{LANG_COOKIE}={}; Path=/console; SameSite=Strict; Max-Age=31536000",
            l.code()
        );
        if state.console.secure() {
            c.push_str("; Secure");
        }
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

/// Whether `back` is a console page as the browser will resolve it: under
/// `/console`, with no dot segments (`..`, also as `%2e`), empty segments or
/// backslashes that would take it elsewhere.
fn stays_in_the_console(back: &str) -> bool {
    let path = back.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    (path == "/console" || path.starts_with("/console/"))
        && back.bytes().all(|c| c.is_ascii_graphic() && c != b'\\')
        && !lower.contains("//")
        && !lower.contains("%2e")
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

#[derive(Debug, Deserialize)]
pub struct PortalQuery {
    #[serde(default)]
    token: Option<String>,
}

/// `GET /console/portal?token=hlp_…`: checks the link, records its use, and
/// starts a session scoped to the link's tenant. A browser already signed
/// in to the console is asked first: a link opened from another site would
/// otherwise move it into another tenant's console unnoticed.
pub async fn open_portal(
    State(state): State<AppState>,
    CurrentRequestId(request_id): CurrentRequestId,
    headers: HeaderMap,
    Query(q): Query<PortalQuery>,
) -> PageResult {
    let token = q.token.unwrap_or_default();
    let signed_in = cookie(&headers, SESSION_COOKIE)
        .is_some_and(|current| state.console.sessions.peek(current).is_some());
    if signed_in {
        let locale = locale(&headers);
        let t = |m: M| m.text(locale);
        let content = markup! {
            h1 { (t(M::PortalSwitchTitle)) }
            p { (t(M::PortalSwitchBody)) }
            form method="post" action="/console/portal" {
                input type="hidden" name="token" value=(token);
                button type="submit" { (t(M::PortalSwitchOpen)) }
            }
            p { a href="/console" { (t(M::PortalSwitchKeep)) } }
        };
        // The language switch comes back to this page, link and all.
        let here = format!("/console/portal?token={}", urlencode(&token));
        return Ok(html(bare_page(
            locale,
            t(M::PortalSwitchTitle),
            &here,
            content,
        )));
    }
    open_link(&state, request_id, &token, None).await
}

/// `POST /console/portal` (the confirmation's form, from this origin
/// only): ends the session this browser had and opens the link.
pub async fn confirm_portal(
    State(state): State<AppState>,
    CurrentRequestId(request_id): CurrentRequestId,
    headers: HeaderMap,
    post: AnonymousPost,
) -> PageResult {
    let token = post.form.get("token").unwrap_or_default().to_string();
    open_link(&state, request_id, &token, cookie(&headers, SESSION_COOKIE)).await
}

/// Opens a portal link; a session the browser had (`replacing`) ends only
/// once the link is found good, so a bad link signs nobody out.
async fn open_link(
    state: &AppState,
    request_id: hookline_application::RequestId,
    token: &str,
    replacing: Option<&str>,
) -> PageResult {
    let grant = match state.portal.open(token.trim(), request_id).await {
        Ok(grant) => grant,
        Err(AppError::Conflict { code, detail }) => {
            return Err(Failure {
                status: StatusCode::GONE,
                code: code.to_string(),
                detail,
            })
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(current) = replacing {
        state.console.sessions.end(current);
    }
    let session = Session::new(Role::Portal(grant), csrf_token(), None);
    Ok(start(state, session, "/console/subscriptions"))
}

/// `GET /console/docs`: what the console is for and where to read more.
pub async fn docs(headers: HeaderMap) -> Response {
    let locale = locale(&headers);
    let t = |m: M| m.text(locale);
    let content = markup! {
        h1 { (t(M::HelpTitle)) }
        p { (t(M::HelpIntro)) }
        h2 { (t(M::HelpSubscriptionsTitle)) }
        p { (t(M::HelpSubscriptions)) }
        h2 { (t(M::HelpVerifyTitle)) }
        p { (t(M::HelpVerify)) }
        h2 { (t(M::HelpDeliveriesTitle)) }
        p { (t(M::HelpDeliveries)) }
        h2 { (t(M::HelpPortalTitle)) }
        p { (t(M::HelpPortal)) }
        h2 { (t(M::HelpMoreTitle)) }
        p { (t(M::HelpMore)) }
        ul {
            li { code { "docs/console.md" } }
            li { code { "docs/api.md" } }
            li { code { "docs/receiving.md" } }
        }
        p { a href="/console" { (t(M::BackToConsole)) } }
    };
    html(bare_page(locale, t(M::HelpTitle), "/console/docs", content))
}

#[cfg(test)]
mod tests {
    use super::stays_in_the_console;

    #[test]
    fn the_language_switch_goes_back_to_console_pages_only() {
        for good in [
            "/console",
            "/console/subscriptions?event=a.b&cursor=x",
            "/console/portal?token=hlp_abc",
        ] {
            assert!(stays_in_the_console(good), "{good}");
        }
        for bad in [
            "/console/../../v1/subscriptions",
            "/console/..//localhost:18911/x",
            "/console/%2E%2e/v1",
            "/console/./x",
            "/consolex",
            "//evil.example/console",
            "/console\\..\\v1",
            "https://evil.example/console",
            "/console/a b",
        ] {
            assert!(!stays_in_the_console(bad), "{bad}");
        }
    }
}
