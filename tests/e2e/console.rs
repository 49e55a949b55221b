//! The console over plain HTTP: portal sessions through the API (and what
//! the log records of them), session cookies, security headers, cached
//! assets, CSRF tokens and the sign-in limit. (Flows in a browser are in
//! tests/browser.)

use hookline_tests::receiver::TestReceiver;
use hookline_tests::{events_of, expect_json, TestApp};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn session_cookie(headers: &HeaderMap) -> String {
    let raw = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("hookline_console="))
        .expect("a session cookie");
    raw.split(';').next().unwrap().to_string()
}

/// Signs in with the form (as a browser would) and returns the cookie.
pub(crate) async fn sign_in(app: &TestApp, key: &str) -> String {
    let res = no_redirects()
        .post(app.url("/console/sign-in"))
        .form(&[("kind", "tenant"), ("credential", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let set = res
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/console"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "plain HTTP without a public https URL"
    );
    session_cookie(res.headers())
}

#[tokio::test]
async fn portal_sessions_are_issued_read_and_revoked_and_the_log_keeps_no_token() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let other = app.tenant("globex").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(
            &t,
            json!({"url": rx.url("/a"), "events": ["order.created"]}),
        )
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    let theirs = app
        .subscribe(
            &other,
            json!({"url": rx.url("/b"), "events": ["order.created"]}),
        )
        .await;

    // Defaults: one hour, read-write, the whole tenant.
    let res = app
        .client
        .post(app.url("/v1/portal-sessions"))
        .bearer_auth(&t.api_key)
        .send()
        .await
        .unwrap();
    let link = expect_json(res, 201).await;
    let url = link["url"].as_str().unwrap();
    let token = url.split("token=").nth(1).unwrap();
    assert!(token.starts_with("hlp_"));
    assert_eq!(link["read_only"], false);
    let expires: chrono::DateTime<chrono::Utc> =
        link["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(59) && left <= chrono::Duration::hours(1),
        "{left}"
    );

    // Bad input is refused with the field named.
    for (body, field) in [
        (json!({"expires_in": 0}), "expires_in"),
        (json!({"expires_in": 10_000_000}), "expires_in"),
        (json!({"subscription_filter": []}), "subscription_filter"),
        (
            json!({"subscription_filter": ["nope"]}),
            "subscription_filter",
        ),
        (
            json!({"subscription_filter": [theirs["id"]]}),
            "subscription_filter",
        ),
    ] {
        let e = expect_json(app.post(&t, "/v1/portal-sessions", body.clone()).await, 400).await;
        assert!(e["detail"].as_str().unwrap().contains(field), "{body}: {e}");
    }
    let e = expect_json(
        app.post(&t, "/v1/portal-sessions", json!({"readonly": true}))
            .await,
        400,
    )
    .await;
    assert_eq!(e["code"], "invalid_body");

    // Opening it records a use and starts a session scoped to the tenant.
    let opened = no_redirects()
        .get(app.url(&format!("/console/portal?token={token}")))
        .header("x-request-id", "portal-open-1")
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()[LOCATION], "/console/subscriptions");
    let cookie = session_cookie(opened.headers());
    let page = no_redirects()
        .get(app.url("/console/subscriptions"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&rx.url("/a")) && !page.contains(&rx.url("/b")));

    // A forged or altered token opens nothing.
    let mut forged = token.to_string();
    forged.replace_range(10..11, if &token[10..11] == "A" { "B" } else { "A" });
    for bad in [forged.as_str(), "hlp_AAAA", "nonsense"] {
        let res = no_redirects()
            .get(app.url(&format!("/console/portal?token={bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{bad}");
        assert!(res.headers().get(SET_COOKIE).is_none());
    }

    let id = link["id"].as_str().unwrap();
    let read = expect_json(app.get(&t, &format!("/v1/portal-sessions/{id}")).await, 200).await;
    assert_eq!(read["uses"].as_array().unwrap().len(), 1);
    assert_eq!(read["uses"][0]["request_id"], "portal-open-1");
    // Another tenant cannot see or revoke it.
    expect_json(
        app.get(&other, &format!("/v1/portal-sessions/{id}")).await,
        404,
    )
    .await;
    assert_eq!(
        app.delete(&other, &format!("/v1/portal-sessions/{id}"))
            .await
            .status(),
        404
    );

    // Revoked: the session ends, the link no longer opens; revoking twice is fine.
    assert_eq!(
        app.delete(&t, &format!("/v1/portal-sessions/{id}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&t, &format!("/v1/portal-sessions/{id}"))
            .await
            .status(),
        204
    );
    let after = no_redirects()
        .get(app.url("/console/subscriptions"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()[LOCATION], "/console/sign-in?ended=portal");
    let again = no_redirects()
        .get(app.url(&format!("/console/portal?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);

    // The log: issued, opened (by the portal, under the opening request), revoked; no token.
    let events: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT event_type, event_version, payload::text, metadata::text FROM events
          WHERE aggregate_type = 'PortalLink' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        types,
        vec!["PortalLinkIssued", "PortalLinkOpened", "PortalLinkRevoked"]
    );
    // Issued with an API key: 1.1 names the key (its id).
    let versions: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(versions, vec!["1.1", "1.0", "1.0"]);
    assert!(
        events[0].2.contains("\"issued_with_key\""),
        "{}",
        events[0].2
    );
    assert!(events[1].3.contains(&format!("portal:{id}")) && events[1].3.contains("portal-open-1"));
    for e in &events {
        assert!(
            !e.2.contains(&token[4..20]) && !e.3.contains(&token[4..20]),
            "no token in the log"
        );
    }

    // Scoped to a subscription: only that one is visible.
    let scoped = expect_json(
        app.post(
            &t,
            "/v1/portal-sessions",
            json!({"subscription_filter": [sub_id], "read_only": true, "expires_in": 600}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(scoped["subscription_filter"], json!([sub_id]));
}

#[tokio::test]
async fn console_pages_carry_a_strict_csp_and_assets_are_cached() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("default-src 'none'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    let css = html
        .split("href=\"")
        .find_map(|p| p.split('"').next().filter(|u| u.ends_with(".css")))
        .unwrap()
        .to_string();
    assert!(css.starts_with("/console/assets/console-"), "{css}");
    let asset = app.client.get(app.url(&css)).send().await.unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = asset.headers()["etag"].to_str().unwrap().to_string();
    let again = app
        .client
        .get(app.url(&css))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = app
        .client
        .get(app.url("/console/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // Not signed in: to the sign-in page.
    let res = no_redirects()
        .get(app.url("/console/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()[LOCATION],
        "/console/sign-in?next=%2Fconsole%2Fsubscriptions"
    );
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_or_from_another_origin_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(
            &t,
            json!({"url": rx.url("/a"), "events": ["order.created"]}),
        )
        .await;
    let id = sub["id"].as_str().unwrap();
    let cookie = sign_in(&app, &t.api_key).await;
    let path = format!("/console/subscriptions/{id}/delete");
    for (token, origin) in [
        (None, None),
        (Some("wrong"), None),
        (None, Some("http://evil.example")),
    ] {
        let mut req = no_redirects().post(app.url(&path)).header(COOKIE, &cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let form: Vec<(&str, &str)> = token.map(|t| vec![("_csrf", t)]).unwrap_or_default();
        let res = req.form(&form).send().await.unwrap();
        assert_eq!(res.status(), 403, "{token:?} {origin:?}");
    }
    expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
    // With the page's token it works.
    let page = no_redirects()
        .get(app.url(&path))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    let res = post_form(&app, &cookie, &path, &[("_csrf", csrf)]).await;
    assert_eq!(res.status(), 303);
    expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 404).await;
    // Signing out ends the session on the server.
    let out = no_redirects()
        .post(app.url("/console/sign-out"))
        .header(COOKIE, &cookie)
        .form(&[("_csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = no_redirects()
        .get(app.url("/console/dashboard"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.headers()[LOCATION],
        "/console/sign-in?ended=session&next=%2Fconsole%2Fdashboard"
    );
}

#[tokio::test]
async fn sign_ins_are_rate_limited_and_sessions_end_with_their_key() {
    let app = TestApp::spawn_with(|env| {
        env.insert(
            "HOOKLINE_PUBLIC_URL".into(),
            "https://hooks.example.com".into(),
        );
    })
    .await;
    let t = app.tenant("acme").await;
    let client = no_redirects();
    let wrong = || async {
        client
            .post(app.url("/console/sign-in"))
            .form(&[("kind", "tenant"), ("credential", "hlk_wrong")])
            .send()
            .await
            .unwrap()
            .status()
    };
    for i in 0..9 {
        assert_eq!(wrong().await, 401, "attempt {i}");
    }
    // A success in between does not clear the failures (one valid key
    // must not allow guessing the admin token without limit).
    let res = client
        .post(app.url("/console/sign-in"))
        .form(&[("kind", "tenant"), ("credential", t.api_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(wrong().await, 401, "the tenth failure");
    let res = client
        .post(app.url("/console/sign-in"))
        .form(&[("kind", "tenant"), ("credential", t.api_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        429,
        "even a right key waits once the limit is reached"
    );
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins"));
    let operator = client
        .post(app.url("/console/sign-in"))
        .form(&[
            ("kind", "operator"),
            ("credential", hookline_tests::server::ADMIN_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), 429);

    // On another server (limits are per process), a session ends when its key is revoked;
    // with an https public URL the cookie is Secure.
    let app = TestApp::spawn_with(|env| {
        env.insert(
            "HOOKLINE_PUBLIC_URL".into(),
            "https://hooks.example.com".into(),
        );
    })
    .await;
    let t = app.tenant("acme").await;
    let res = client
        .post(app.url("/console/sign-in"))
        .form(&[("kind", "tenant"), ("credential", t.api_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Secure"));
    let cookie = session_cookie(res.headers());
    let ok = client
        .get(app.url("/console/dashboard"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let keys = expect_json(
        app.client
            .get(app.url(&format!("/admin/tenants/{}/keys", t.id)))
            .bearer_auth(hookline_tests::server::ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let key_id = keys["data"][0]["id"].as_str().unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/admin/tenants/{}/keys/{key_id}", t.id)))
        .bearer_auth(hookline_tests::server::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let gone = client
        .get(app.url("/console/dashboard"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 303);
    assert_eq!(
        gone.headers()[LOCATION],
        "/console/sign-in?ended=session&next=%2Fconsole%2Fdashboard"
    );
    // A portal link on that server points at the public URL.
    let t2 = app.tenant("globex").await;
    let link = expect_json(app.post(&t2, "/v1/portal-sessions", json!({})).await, 201).await;
    assert!(link["url"]
        .as_str()
        .unwrap()
        .starts_with("https://hooks.example.com/console/portal?token=hlp_"));
}

/// The CSRF token of a console page.
/// A console form posted from the console's own origin with `cookie`.
pub(crate) async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    no_redirects()
        .post(app.url(path))
        .header(COOKIE, cookie)
        .header("origin", &app.base)
        .form(fields)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn csrf_of(app: &TestApp, cookie: &str, path: &str) -> String {
    let page = no_redirects()
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on {path}: {page}"))
        .to_string()
}

pub(crate) async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let res = no_redirects()
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_subscription_list_shows_disabled_ones_and_filters_the_whole_list() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    // The oldest: a description to search for, beyond the first page.
    let needle = app
        .subscribe(
            &t,
            json!({"url": rx.url("/needle"), "events": ["order.created"], "description": "The NEEDLE one"}),
        )
        .await;
    for i in 0..100 {
        app.subscribe(
            &t,
            json!({"url": rx.url(&format!("/hay-{i}")), "events": ["order.created"]}),
        )
        .await;
    }
    let off = app
        .subscribe(
            &t,
            json!({"url": rx.url("/switched-off"), "events": ["order.created"]}),
        )
        .await;
    let off_id = off["id"].as_str().unwrap();
    let res = app
        .post(
            &t,
            &format!("/v1/subscriptions/{off_id}/disable"),
            json!({}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let cookie = sign_in(&app, &t.api_key).await;
    let until_listed = || async {
        hookline_tests::eventually(
            "the disabled subscription is listed",
            std::time::Duration::from_secs(10),
            || async {
                let (_, body) = page(&app, &cookie, "/console/subscriptions?status=disabled").await;
                body.contains("/switched-off").then_some(body)
            },
        )
        .await
    };
    // Disabled: listed, and the filter finds it (and only it).
    let disabled = until_listed().await;
    assert!(!disabled.contains("/hay-"), "only the disabled one");
    let (_, all) = page(&app, &cookie, "/console/subscriptions").await;
    assert!(all.contains("/switched-off"), "listed without a filter");
    // A search covers the whole list, not the first page of 100.
    // A NUL is in no subscription (and is no error).
    let (status, none) = page(&app, &cookie, "/console/subscriptions?q=a%00b").await;
    assert_eq!(status, 200);
    assert!(!none.contains("/hay-") && !none.contains("/needle"));
    let (_, found) = page(&app, &cookie, "/console/subscriptions?q=needle").await;
    assert!(found.contains("/needle"), "{found}");
    assert!(!found.contains("/hay-"));
    assert!(needle["id"].is_string());
    // The next page keeps the filters (101 active ones match: the needle
    // and the hay; the disabled one does not).
    let (_, active) = page(
        &app,
        &cookie,
        "/console/subscriptions?status=active&q=127.0.0.1",
    )
    .await;
    assert!(!active.contains("/switched-off"));
    let next = active
        .split("href=\"/console/subscriptions?cursor=")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a next page");
    assert!(
        next.contains("&amp;q=127.0.0.1") && next.contains("&amp;status=active"),
        "{next}"
    );
    let (_, second) = page(
        &app,
        &cookie,
        &format!(
            "/console/subscriptions?cursor={}",
            next.replace("&amp;", "&")
        ),
    )
    .await;
    assert!(second.contains("/needle"), "the oldest on the second page");
    assert!(!second.contains("/switched-off") && !second.contains("/hay-"));
    // The language switch comes back to the same page with its filters.
    assert!(
        active.contains("back=%2Fconsole%2Fsubscriptions%3Fstatus%3Dactive%26q%3D127.0.0.1"),
        "language switch link"
    );
}

#[tokio::test]
async fn console_forms_and_addresses_answer_with_their_errors() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let cookie = sign_in(&app, &t.api_key).await;
    let csrf = csrf_of(&app, &cookie, "/console/subscriptions/new").await;
    let post = |form: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        let url = app.url("/console/subscriptions");
        let base = app.base.clone();
        async move {
            let res = no_redirects()
                .post(url)
                .header(COOKIE, cookie)
                .header("origin", base)
                .form(&form)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let base = |extra: Vec<(&'static str, String)>| {
        let mut f = vec![
            ("_csrf", csrf.clone()),
            ("url", "https://example.com/hook".to_string()),
            ("events", "order.created".to_string()),
        ];
        f.extend(extra);
        f
    };
    // The console's own checks: the message is on the form.
    let (status, body) = post(base(vec![("headers", "novalue".into())])).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("“novalue” is not a header line"),
        "the header line is named"
    );
    let (status, body) = post(base(vec![("headers", "X-Ok: a\nx-ok: b".into())])).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("is given twice"),
        "a repeated header is refused"
    );
    let (status, body) = post(base(vec![("rate_limit", "1.5".into())])).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("Enter a whole number from 1 to 10000"),
        "rate limit message"
    );
    // The API's errors on indexed or keyed fields are marked on theirs.
    let (status, body) = post(base(vec![("headers", "X Bad: v".into())])).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("id=\"headers-error\" role=\"alert\">headers.X Bad"),
        "{body}"
    );
    let (status, body) = post(vec![
        ("_csrf", csrf.clone()),
        ("url", "https://example.com/hook".to_string()),
        ("custom_events", "bad-name.x".to_string()),
    ])
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("id=\"events-error\" role=\"alert\">events"),
        "{body}"
    );
    // The text field it came from points at the message, marked invalid.
    assert!(
        body.contains("aria-describedby=\"custom_events-hint events-error\" aria-invalid=\"true\""),
        "{body}"
    );

    // A GET of an action's address is a page, not an empty 405.
    let (status, body) = page(
        &app,
        &cookie,
        "/console/subscriptions/00000000-0000-0000-0000-000000000000/rotate",
    )
    .await;
    assert_eq!(status, 405);
    assert!(body.contains("This address is an action"), "{body}");
    // A language switch's return address with a line break is not followed.
    let res = no_redirects()
        .get(app.url("/console/lang?set=es&back=/console%0d%0aX-Evil:%201"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/console");
    // A portal link's validity that is not a number is refused.
    let csrf = csrf_of(&app, &cookie, "/console/portal-links").await;
    let res = post_form(
        &app,
        &cookie,
        "/console/portal-links",
        &[("_csrf", csrf.as_str()), ("expires_in", "abc")],
    )
    .await;
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("must be a whole number of seconds"), "{body}");
    assert!(!body.contains("hlp_"), "no link was issued");
    // A date before what Postgres stores is the filter's error, not a 500.
    let sub = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/dated", "events": ["a.b"]}),
        )
        .await;
    let id = sub["id"].as_str().unwrap();
    let (status, body) = page(
        &app,
        &cookie,
        &format!("/console/subscriptions/{id}?since=-5000-01-01T00:00"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("since: must be a date and time"), "{body}");
    // Every wrong filter is named at once, and an empty range says why.
    let (_, body) = page(
        &app,
        &cookie,
        &format!("/console/subscriptions/{id}?since=notatime&until=2020-13-45&status=bogus"),
    )
    .await;
    for field in ["status:", "since:", "until:"] {
        assert!(body.contains(field), "{field} in {body}");
    }
    let (_, body) = page(
        &app,
        &cookie,
        &format!("/console/subscriptions/{id}?since=2026-12-06T10:00&until=2026-12-05T10:00"),
    )
    .await;
    assert!(body.contains("until: must be after the start"), "{body}");
    // The log's live fragment shows no rows for a filter it cannot read.
    let (status, _) = page(
        &app,
        &cookie,
        &format!("/console/subscriptions/{id}/deliveries?until=-5000-01-01T00:00"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_operator_leaves_the_console_of_a_tenant_deleted_meanwhile() {
    let app = TestApp::spawn().await;
    let t = app.tenant("doomed").await;
    let res = no_redirects()
        .post(app.url("/console/sign-in"))
        .form(&[
            ("kind", "operator"),
            ("credential", hookline_tests::server::ADMIN_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = session_cookie(res.headers());
    let tenant_page = format!("/console/tenants/{}", t.id);
    let csrf = csrf_of(&app, &cookie, &tenant_page).await;
    let res = post_form(
        &app,
        &cookie,
        &format!("{tenant_page}/open"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (status, _) = page(&app, &cookie, "/console/subscriptions").await;
    assert_eq!(status, 200, "working in the tenant's console");
    let res = app
        .client
        .delete(app.url(&format!("/admin/tenants/{}", t.id)))
        .bearer_auth(hookline_tests::server::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = post_form(
        &app,
        &cookie,
        "/console/subscriptions",
        &[
            ("_csrf", csrf.as_str()),
            ("url", "https://example.com/late"),
            ("events", "order.created"),
        ],
    )
    .await;
    assert_eq!(
        res.status(),
        404,
        "no tenant is open any more: nothing is created in the deleted one"
    );
    let subs = expect_json(
        app.client
            .get(app.url(&format!("/admin/tenants/{}?include_deleted=true", t.id)))
            .bearer_auth(hookline_tests::server::ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(subs["status"], "deleted");
    let (status, _) = page(&app, &cookie, "/console/tenants").await;
    assert_eq!(status, 200, "still signed in as the operator");
}

/// The value of a hidden field of a console page.
async fn hidden_of(app: &TestApp, cookie: &str, path: &str, name: &str) -> String {
    let (_, page) = page(app, cookie, path).await;
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no {name} on {path}: {page}"))
        .to_string()
}

#[tokio::test]
async fn a_page_shown_for_one_tenant_or_version_changes_nothing_once_either_moved_on() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let beta = app.tenant("beta").await;
    let res = no_redirects()
        .post(app.url("/console/sign-in"))
        .form(&[
            ("kind", "operator"),
            ("credential", hookline_tests::server::ADMIN_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(res.headers());
    let open = |id: String| {
        let cookie = cookie.clone();
        let app = &app;
        async move {
            let path = format!("/console/tenants/{id}");
            let csrf = csrf_of(app, &cookie, &path).await;
            let res = post_form(
                app,
                &cookie,
                &format!("{path}/open"),
                &[("_csrf", csrf.as_str())],
            )
            .await;
            assert_eq!(res.status(), 303);
        }
    };
    // Tab A: the new-subscription form of Acme; tab B then opens Beta.
    open(acme.id.clone()).await;
    let csrf = csrf_of(&app, &cookie, "/console/subscriptions/new").await;
    let shown_for = hidden_of(&app, &cookie, "/console/subscriptions/new", "_tenant").await;
    assert_eq!(shown_for, acme.id);
    open(beta.id.clone()).await;
    let res = post_form(
        &app,
        &cookie,
        "/console/subscriptions",
        &[
            ("_csrf", csrf.as_str()),
            ("_tenant", shown_for.as_str()),
            ("url", "https://example.com/meant-for-acme"),
            ("events", "order.created"),
        ],
    )
    .await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("another tenant"));
    // A form that does not say which tenant it was shown for is refused
    // the same way.
    let res = post_form(
        &app,
        &cookie,
        "/console/subscriptions",
        &[
            ("_csrf", csrf.as_str()),
            ("url", "https://example.com/tenant-unknown"),
            ("events", "order.created"),
        ],
    )
    .await;
    assert_eq!(res.status(), 409);
    for t in [&acme, &beta] {
        let subs = expect_json(app.get(t, "/v1/subscriptions").await, 200).await;
        assert_eq!(subs["data"].as_array().map(Vec::len), Some(0), "{subs}");
    }

    // An edit form saved after another change to the subscription.
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(
            &acme,
            json!({"url": rx.url("/a"), "events": ["order.created"]}),
        )
        .await;
    let id = sub["id"].as_str().unwrap();
    let tenant_cookie = sign_in(&app, &acme.api_key).await;
    let edit = format!("/console/subscriptions/{id}/edit");
    let csrf = csrf_of(&app, &tenant_cookie, &edit).await;
    let seen = hidden_of(&app, &tenant_cookie, &edit, "_seen").await;
    let res = app
        .patch(
            &acme,
            &format!("/v1/subscriptions/{id}"),
            json!({"events": ["order.created", "order.paid"]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = post_form(
        &app,
        &tenant_cookie,
        &format!("/console/subscriptions/{id}"),
        &[
            ("_csrf", csrf.as_str()),
            ("_seen", seen.as_str()),
            ("url", rx.url("/a").as_str()),
            ("events", "order.created"),
            ("description", "only the description"),
        ],
    )
    .await;
    assert_eq!(res.status(), 409);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("changed after you opened the form"));
    // A form without the version it was made from changes nothing either.
    let res = post_form(
        &app,
        &tenant_cookie,
        &format!("/console/subscriptions/{id}"),
        &[
            ("_csrf", csrf.as_str()),
            ("url", rx.url("/a").as_str()),
            ("events", "order.created"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("out of date"));
    let now = expect_json(
        app.get(&acme, &format!("/v1/subscriptions/{id}")).await,
        200,
    )
    .await;
    assert_eq!(
        now["events"],
        json!(["order.created", "order.paid"]),
        "{now}"
    );
}

#[tokio::test]
async fn a_new_secret_is_shown_once_after_a_redirect_and_a_reload_rotates_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(
            &t,
            json!({"url": rx.url("/a"), "events": ["order.created"]}),
        )
        .await;
    let id = sub["id"].as_str().unwrap();
    let cookie = sign_in(&app, &t.api_key).await;
    let csrf = csrf_of(&app, &cookie, &format!("/console/subscriptions/{id}")).await;
    let res = post_form(
        &app,
        &cookie,
        &format!("/console/subscriptions/{id}/rotate"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()[LOCATION].to_str().unwrap().to_string();
    assert_eq!(to, format!("/console/subscriptions/{id}/secret"));
    let (status, shown) = page(&app, &cookie, &to).await;
    assert_eq!(status, 200);
    let secret = shown
        .split("id=\"secret-value\" data-shown-once>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    // Reloaded: the subscription's page, the secret no longer shown, and
    // no second rotation.
    let (status, again) = page(&app, &cookie, &to).await;
    assert_eq!(status, 303);
    assert!(!again.contains(&secret));
    let history = expect_json(
        app.get(&t, &format!("/v1/subscriptions/{id}/history"))
            .await,
        200,
    )
    .await;
    let rotations = events_of(&history, "SecretRotated").len();
    assert_eq!(rotations, 1, "{history}");
    // Two rotations of two subscriptions before either page is opened:
    // each page shows its own secret.
    let other = app
        .subscribe(
            &t,
            json!({"url": rx.url("/c"), "events": ["order.created"]}),
        )
        .await;
    let other = other["id"].as_str().unwrap();
    for sub in [id, other] {
        let res = post_form(
            &app,
            &cookie,
            &format!("/console/subscriptions/{sub}/rotate"),
            &[("_csrf", csrf.as_str())],
        )
        .await;
        assert_eq!(res.status(), 303);
    }
    let mut shown_secrets = Vec::new();
    for sub in [id, other] {
        let (status, shown) = page(
            &app,
            &cookie,
            &format!("/console/subscriptions/{sub}/secret"),
        )
        .await;
        assert_eq!(status, 200, "{sub}");
        assert!(
            shown.contains(&format!("/console/subscriptions/{sub}")),
            "{shown}"
        );
        let secret = shown
            .split("id=\"secret-value\" data-shown-once>")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap()
            .to_string();
        assert!(
            secret.starts_with("whsec_") && secret != "whsec_",
            "{secret}"
        );
        shown_secrets.push(secret);
    }
    assert_ne!(shown_secrets[0], shown_secrets[1]);
    assert_ne!(shown_secrets[0], secret);
    // The trace of a request that caused no delivery says so (not "the
    // delivery is queued").
    let res = app
        .client
        .post(app.url("/v1/subscriptions"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "made-no-delivery")
        .json(&json!({"url": rx.url("/b"), "events": ["order.paid"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (status, trace) = page(&app, &cookie, "/console/requests/made-no-delivery").await;
    assert_eq!(status, 200);
    assert!(
        trace.contains("No delivery was attempted for this request."),
        "{trace}"
    );
    assert!(!trace.contains("the delivery is queued"));
    // …and shows no empty deliveries table.
    assert!(
        trace.contains("This request caused no delivery."),
        "{trace}"
    );
    assert!(!trace.contains("<th scope=\"col\">URL</th>"), "{trace}");
}

/// A portal link opened by a browser already signed in asks first: a link
/// from another site would otherwise move the session into another
/// tenant's console unnoticed. Confirmed (from this origin only), the old
/// session ends and the link's starts.
#[tokio::test]
async fn a_portal_link_asks_before_it_replaces_a_session() {
    let app = TestApp::spawn().await;
    let mine = app.tenant("mine").await;
    let theirs = app.tenant("theirs").await;
    let link = expect_json(
        app.post(&theirs, "/v1/portal-sessions", json!({})).await,
        201,
    )
    .await;
    let url = link["url"].as_str().unwrap();
    let token = url.split("token=").nth(1).unwrap().to_string();
    let cookie = sign_in(&app, &mine.api_key).await;
    let asked = no_redirects()
        .get(app.url(&format!("/console/portal?token={token}")))
        .header(COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    assert!(asked.headers().get(SET_COOKIE).is_none());
    let asking = asked.text().await.unwrap();
    assert!(asking.contains("Open this portal link?"));
    // Its language switch comes back to the question, with the link.
    let switch = asking
        .split("href=\"")
        .map(|s| s.split('"').next().unwrap().replace("&amp;", "&"))
        .find(|h| h.starts_with("/console/lang?set=es"))
        .expect("a switch to Spanish");
    let switched = no_redirects()
        .get(app.url(&switch))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);
    let back = switched.headers()[LOCATION].to_str().unwrap().to_string();
    assert_eq!(back, format!("/console/portal?token={token}"));
    let (status, _) = page(&app, &cookie, "/console/subscriptions").await;
    assert_eq!(status, 200, "the session is still there");

    // A confirmation posted from another site is refused.
    let forged = no_redirects()
        .post(app.url("/console/portal"))
        .header(COOKIE, &cookie)
        .header("origin", "https://evil.example")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let (status, _) = page(&app, &cookie, "/console/subscriptions").await;
    assert_eq!(status, 200);
    // A bad link, confirmed, opens nothing and signs nobody out.
    let bad = post_form(&app, &cookie, "/console/portal", &[("token", "hlp_forged")]).await;
    assert_eq!(bad.status(), 404);
    let (status, _) = page(&app, &cookie, "/console/subscriptions").await;
    assert_eq!(status, 200, "a bad link ended the session");

    let confirmed = post_form(
        &app,
        &cookie,
        "/console/portal",
        &[("token", token.as_str())],
    )
    .await;
    assert_eq!(confirmed.status(), 303);
    let portal = session_cookie(confirmed.headers());
    assert_ne!(portal, cookie);
    let (status, _) = page(&app, &portal, "/console/subscriptions").await;
    assert_eq!(status, 200);
    let (status, _) = page(&app, &cookie, "/console/subscriptions").await;
    assert_eq!(status, 303, "the earlier session ended");
}

/// A query that does not fit a page (a repeated parameter) gets the
/// console's translated error page, not a plain-text 400; the language
/// switch never leads out of the console.
#[tokio::test]
async fn odd_queries_get_the_console_error_page() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let cookie = sign_in(&app, &t.api_key).await;
    for path in [
        "/console/subscriptions?event=a.b&event=c.d",
        "/console/portal-links?done=a&done=b",
        "/console/lang?set=es&set=en",
    ] {
        let res = app
            .client
            .get(app.url(path))
            .header(COOKIE, &cookie)
            .header("accept-language", "es")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let body = res.text().await.unwrap();
        assert!(body.contains("lang=\"es\""), "{path}: {body}");
        assert!(body.contains("twice"), "{path}: {body}");
        assert!(!body.contains("deserialize"), "no raw parser text: {body}");
    }
    for back in [
        "/console/../../v1/subscriptions",
        "/console/..//localhost:1/x",
    ] {
        let res = no_redirects()
            .get(app.url(&format!("/console/lang?set=en&back={}", urlencoding(back))))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()[LOCATION], "/console", "{back}");
    }
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A portal link is as good as the API key it was made with: revoking the
/// key (one that leaked, say) ends the links it made and their sessions.
#[tokio::test]
async fn a_portal_link_ends_with_the_key_that_made_it() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let admin =
        |req: reqwest::RequestBuilder| req.bearer_auth(hookline_tests::server::ADMIN_TOKEN).send();
    let made = expect_json(
        admin(
            app.client
                .post(app.url(&format!("/admin/tenants/{}/keys", t.id))),
        )
        .await
        .unwrap(),
        201,
    )
    .await;
    let key = made["api_key"].as_str().unwrap();
    let key_id = made["id"].as_str().unwrap();
    let issue = || async {
        let res = app
            .client
            .post(app.url("/v1/portal-sessions"))
            .bearer_auth(key)
            .json(&json!({"expires_in": 604800}))
            .send()
            .await
            .unwrap();
        let link = expect_json(res, 201).await;
        link["url"]
            .as_str()
            .unwrap()
            .split("token=")
            .nth(1)
            .unwrap()
            .to_string()
    };
    let (opened, unopened) = (issue().await, issue().await);
    let res = no_redirects()
        .get(app.url(&format!("/console/portal?token={opened}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let portal = session_cookie(res.headers());
    let (status, _) = page(&app, &portal, "/console/subscriptions").await;
    assert_eq!(status, 200);
    // A link made with the tenant's other key is not affected.
    let other = expect_json(app.post(&t, "/v1/portal-sessions", json!({})).await, 201).await;
    let other = other["url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_string();

    let res = admin(
        app.client
            .delete(app.url(&format!("/admin/tenants/{}/keys/{key_id}", t.id))),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = page(&app, &portal, "/console/subscriptions").await;
    assert_eq!(status, 303, "the session opened with the link ended");
    let res = no_redirects()
        .get(app.url(&format!("/console/portal?token={unopened}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let res = no_redirects()
        .get(app.url(&format!("/console/portal?token={other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

/// A portal link limited to some subscriptions says what it sees on a
/// request's trace: "no delivery to the subscriptions this link shows",
/// not that the request caused none.
#[tokio::test]
async fn a_scoped_trace_says_what_the_link_shows() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let a = app
        .subscribe(
            &t,
            json!({"url": rx.url("/a"), "events": ["order.created"]}),
        )
        .await;
    app.subscribe(&t, json!({"url": rx.url("/b"), "events": ["order.paid"]}))
        .await;
    let res = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "paid-to-b")
        .json(&json!({"event_type": "order.paid", "data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    rx.wait_for(1, std::time::Duration::from_secs(30)).await;
    hookline_tests::read_models_caught_up(&app.db.pool).await;
    let link = expect_json(
        app.post(
            &t,
            "/v1/portal-sessions",
            json!({"subscription_filter": [a["id"]], "read_only": true}),
        )
        .await,
        201,
    )
    .await;
    let url = link["url"].as_str().unwrap();
    let opened = no_redirects()
        .get(app.url(&format!(
            "/console/portal?{}",
            url.split('?').nth(1).unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    let cookie = session_cookie(opened.headers());
    let (status, trace) = page(&app, &cookie, "/console/requests/paid-to-b").await;
    assert_eq!(status, 200);
    assert!(
        trace.contains("This request caused no delivery to the subscriptions this link shows."),
        "{trace}"
    );
    assert!(
        !trace.contains("This request caused no delivery."),
        "{trace}"
    );
    // Nor an empty table of the log's events.
    assert!(
        trace.contains("No event of this request concerns the subscriptions this link shows."),
        "{trace}"
    );
    assert!(
        !trace.contains("<th scope=\"col\">Position</th>"),
        "{trace}"
    );
    // The tenant's own session sees the delivery.
    let own = sign_in(&app, &t.api_key).await;
    let (_, full) = page(&app, &own, "/console/requests/paid-to-b").await;
    assert!(full.contains(&rx.url("/b")), "{full}");
}

/// The dashboard's failing subscriptions include one whose receiver fails
/// while its deliveries still wait for retries: a receiver down for hours
/// shows before its retries run out.
#[tokio::test]
async fn the_dashboard_shows_a_subscription_failing_before_its_retries_run_out() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "600".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.default_reply(hookline_tests::receiver::Reply::status(500));
    let cookie = sign_in(&app, &t.api_key).await;
    let (_, body) = page(&app, &cookie, "/console/dashboard").await;
    assert!(
        body.contains("No delivery failed in the last 24 hours"),
        "{body}"
    );
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/down"), "events": ["a.b"]}))
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    let published = expect_json(
        app.post(&t, "/v1/events", json!({"event_type": "a.b", "data": {}}))
            .await,
        202,
    )
    .await;
    let delivery = published["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    rx.wait_for(1, std::time::Duration::from_secs(30)).await;
    hookline_tests::eventually(
        "the failed attempt listed",
        std::time::Duration::from_secs(30),
        || async {
            let d = expect_json(
                app.get(&t, &format!("/v1/deliveries?subscription_id={id}"))
                    .await,
                200,
            )
            .await;
            (d["data"][0]["id"] == delivery.as_str() && d["data"][0]["last_status_code"] == 500)
                .then_some(())
        },
    )
    .await;
    let (_, body) = page(&app, &cookie, "/console/dashboard").await;
    assert!(
        body.contains(&format!("/console/subscriptions/{id}")),
        "the retrying subscription is listed: {body}"
    );
    assert!(!body.contains("No delivery failed"), "{body}");
}
