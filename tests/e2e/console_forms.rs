//! The console's forms and what they make, over plain HTTP: what is shown
//! once is shown once (a reload makes nothing more), every field's error
//! at once, a stale edit keeps what was typed, a scoped portal link lists
//! its subscriptions whatever their place, an ended session says why.

use crate::console::{csrf_of, no_redirects, page, post_form, session_cookie, sign_in};
use hookline_tests::server::ADMIN_TOKEN;
use hookline_tests::{expect_json, TestApp};
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{json, Value};

fn location(res: &reqwest::Response) -> String {
    res.headers()[LOCATION].to_str().unwrap().to_string()
}

async fn operator(app: &TestApp) -> String {
    let res = no_redirects()
        .post(app.url("/console/sign-in"))
        .form(&[("kind", "operator"), ("credential", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    session_cookie(res.headers())
}

async fn tenant_count(app: &TestApp) -> usize {
    let list = expect_json(
        app.client
            .get(app.url("/admin/tenants?limit=100"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    list["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_tenant_a_key_or_a_portal_link_is_made_once_and_shown_once() {
    let app = TestApp::spawn().await;
    let cookie = operator(&app).await;
    let csrf = csrf_of(&app, &cookie, "/console/tenants").await;
    let before = tenant_count(&app).await;

    // A tenant: the POST redirects to the page that shows its key once.
    let res = post_form(
        &app,
        &cookie,
        "/console/tenants",
        &[("_csrf", csrf.as_str()), ("name", "Gamma")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let shown = location(&res);
    assert!(shown.starts_with("/console/tenants/"), "{shown}");
    let tenant_page = shown.split("/keys/").next().unwrap().to_string();
    // Asked for under another tenant's address first, it stays held.
    let elsewhere = shown.replace(
        tenant_page.trim_start_matches("/console/tenants/"),
        "00000000-0000-0000-0000-000000000000",
    );
    let (status, _) = page(&app, &cookie, &elsewhere).await;
    assert_eq!(status, 303);
    let (status, body) = page(&app, &cookie, &shown).await;
    assert_eq!(status, 200, "still held for its own page");
    assert!(body.contains("Gamma") && body.contains("hlk_"), "{body}");
    assert!(body.contains("data-shown-once"), "cleared when left");
    // Reloaded: the tenant's page, no key, and no second tenant.
    let res = no_redirects()
        .get(app.url(&shown))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), tenant_page);
    assert_eq!(tenant_count(&app).await, before + 1);
    // A refused name keeps the page whole: the list, and what was typed.
    let res = post_form(
        &app,
        &cookie,
        "/console/tenants",
        &[("_csrf", csrf.as_str()), ("name", "   ")],
    )
    .await;
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("id=\"tenants\""), "the list stays: {body}");
    assert!(body.contains("Gamma"), "{body}");
    assert!(body.contains("aria-invalid=\"true\""), "{body}");
    assert_eq!(tenant_count(&app).await, before + 1);

    // A key: the same.
    let res = post_form(
        &app,
        &cookie,
        &format!("{tenant_page}/keys"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), 303);
    let shown = location(&res);
    let (status, body) = page(&app, &cookie, &shown).await;
    assert_eq!(status, 200);
    let key = body
        .split("id=\"key-value\" data-shown-once>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    assert!(key.starts_with("hlk_"));
    let (status, _) = page(&app, &cookie, &shown).await;
    assert_eq!(status, 303, "shown once");
    let (_, body) = page(&app, &cookie, &tenant_page).await;
    assert_eq!(
        body.matches("data-confirm=").count(),
        2,
        "two keys to revoke"
    );
    // Another operator session cannot read it either.
    let other = operator(&app).await;
    let res = post_form(
        &app,
        &cookie,
        &format!("{tenant_page}/keys"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    let (status, _) = page(&app, &other, &location(&res)).await;
    assert_eq!(status, 303, "held by the session that made it");

    // A portal link, made in the new tenant's console with its key.
    let cookie = sign_in(&app, &key).await;
    let csrf = csrf_of(&app, &cookie, "/console/portal-links").await;
    let res = post_form(
        &app,
        &cookie,
        "/console/portal-links",
        &[("_csrf", csrf.as_str()), ("expires_in", "3600")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let shown = location(&res);
    assert!(shown.ends_with("/created"), "{shown}");
    let (status, body) = page(&app, &cookie, &shown).await;
    assert_eq!(status, 200);
    assert!(body.contains("/console/portal?token=hlp_"), "{body}");
    let res = no_redirects()
        .get(app.url(&shown))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), shown.trim_end_matches("/created"));
}

#[tokio::test]
async fn a_wildcard_is_offered_once_whatever_groups_share_it() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "invoice.custom_thing", "group": "Other group"}),
        )
        .await,
        201,
    )
    .await;
    let cookie = sign_in(&app, &t.api_key).await;
    let (status, body) = page(&app, &cookie, "/console/subscriptions/new").await;
    assert_eq!(status, 200);
    assert_eq!(
        body.matches("id=\"wild-invoice.*\"").count(),
        1,
        "one checkbox for invoice.*"
    );
    assert_eq!(body.matches("value=\"invoice.*\"").count(), 1);
}

#[tokio::test]
async fn every_field_error_is_shown_at_once() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let cookie = sign_in(&app, &t.api_key).await;
    let csrf = csrf_of(&app, &cookie, "/console/subscriptions/new").await;
    let long = "d".repeat(600);
    let res = post_form(
        &app,
        &cookie,
        "/console/subscriptions",
        &[
            ("_csrf", csrf.as_str()),
            ("url", "https://10.0.0.1/hook"),
            ("description", long.as_str()),
            ("events", "invoice.created"),
            ("headers", "nocolon"),
            ("rate_limit", "abc"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    for field in ["url", "description", "headers", "rate_limit"] {
        let marker = format!("id=\"{field}-error\" role=\"alert\">");
        let after = body
            .split(&marker)
            .nth(1)
            .unwrap_or_else(|| panic!("{field}: {body}"));
        assert!(!after.starts_with('<'), "{field} has its message: {body}");
    }
    assert!(
        !body.contains("HOOKLINE_"),
        "no server setting named to a tenant"
    );
    let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert!(list["data"].as_array().unwrap().is_empty(), "nothing made");
}

#[tokio::test]
async fn an_edit_saved_after_another_change_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let sub = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/hook", "events": ["invoice.created"]}),
        )
        .await;
    let id = sub["id"].as_str().unwrap();
    let cookie = sign_in(&app, &t.api_key).await;
    let edit = format!("/console/subscriptions/{id}/edit");
    let (_, form) = page(&app, &cookie, &edit).await;
    let seen = |form: &str| {
        form.split("name=\"_seen\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_string()
    };
    let first_seen = seen(&form);
    let csrf = csrf_of(&app, &cookie, &edit).await;
    expect_json(
        app.patch(
            &t,
            &format!("/v1/subscriptions/{id}"),
            json!({"rate_limit": 5}),
        )
        .await,
        200,
    )
    .await;
    let fields = |seen: &str| {
        vec![
            ("_csrf".to_string(), csrf.clone()),
            ("_seen".to_string(), seen.to_string()),
            ("url".to_string(), "https://example.com/hook".to_string()),
            ("description".to_string(), "typed by me".to_string()),
            ("events".to_string(), "invoice.created".to_string()),
            ("rate_limit".to_string(), "7".to_string()),
        ]
    };
    let post = |fields: Vec<(String, String)>| {
        let cookie = cookie.clone();
        let url = app.url(&format!("/console/subscriptions/{id}"));
        let base = app.base.clone();
        async move {
            no_redirects()
                .post(url)
                .header(COOKIE, cookie)
                .header("origin", base)
                .form(&fields)
                .send()
                .await
                .unwrap()
        }
    };
    let res = post(fields(&first_seen)).await;
    assert_eq!(res.status(), 409);
    let body = res.text().await.unwrap();
    assert!(body.contains("nothing was saved"), "{body}");
    assert!(body.contains("value=\"typed by me\""), "kept: {body}");
    let now = expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
    assert_eq!(now["rate_limit"], 5, "the other change stands");
    assert!(now.get("description").is_none_or(Value::is_null));
    // Saved again from that form (it shows the current version): saved.
    let res = post(fields(&seen(&body))).await;
    assert_eq!(res.status(), 303);
    let now = expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
    assert_eq!(now["description"], "typed by me");
    assert_eq!(now["rate_limit"], 7);
}

#[tokio::test]
async fn a_scoped_portal_link_lists_its_subscriptions_wherever_they_are() {
    let app = TestApp::spawn().await;
    let t = app.tenant("big").await;
    let oldest = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/the-one", "events": ["invoice.created"]}),
        )
        .await;
    for i in 0..100 {
        app.subscribe(
            &t,
            json!({"url": format!("https://example.com/other-{i}"), "events": ["invoice.created"]}),
        )
        .await;
    }
    let link = expect_json(
        app.post(
            &t,
            "/v1/portal-sessions",
            json!({"subscription_filter": [oldest["id"]], "read_only": true}),
        )
        .await,
        201,
    )
    .await;
    let token = link["url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap();
    let res = no_redirects()
        .get(app.url(&format!("/console/portal?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = session_cookie(res.headers());
    let (status, body) = page(&app, &cookie, "/console/subscriptions").await;
    assert_eq!(status, 200);
    assert!(body.contains("https://example.com/the-one"), "{body}");
    assert!(!body.contains("other-"), "only the link's");
    assert!(!body.contains("Next page"), "no page of others");

    // The link revoked: the next page says the link ended (not a bare
    // sign-in page), and a live refresh is told to reload.
    let res = app
        .delete(
            &t,
            &format!("/v1/portal-sessions/{}", link["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(res.status(), 204);
    // The first to notice is a page's own refresh (401: the page reloads),
    // and every request after it is still told that the link ended.
    let res = no_redirects()
        .get(app.url("/console/subscriptions"))
        .header(COOKIE, &cookie)
        .header("x-console-fetch", "live")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for _ in 0..2 {
        let res = no_redirects()
            .get(app.url("/console/subscriptions"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/console/sign-in?ended=portal");
    }
    let to = "/console/sign-in?ended=portal".to_string();
    let body = reqwest::get(app.url(&to))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("The portal link this page was opened with has ended"));
}

#[tokio::test]
async fn an_ended_session_says_so_and_signing_in_comes_back_to_the_page() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let res = no_redirects()
        .get(app.url("/console/subscriptions?status=active"))
        .header(COOKIE, "hookline_console=gone")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert_eq!(
        to,
        "/console/sign-in?ended=session&next=%2Fconsole%2Fsubscriptions%3Fstatus%3Dactive"
    );
    let body = reqwest::get(app.url(&to))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("Your session has ended"), "{body}");
    assert!(
        body.contains("name=\"next\" value=\"/console/subscriptions?status=active\""),
        "{body}"
    );
    let res = no_redirects()
        .post(app.url("/console/sign-in"))
        .form(&[
            ("kind", "tenant"),
            ("credential", t.api_key.as_str()),
            ("next", "/console/subscriptions?status=active"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/console/subscriptions?status=active");
    // A next page outside the console is not followed.
    for next in [
        "//evil.example/x",
        "https://evil.example/",
        "/console/../v1",
    ] {
        let res = no_redirects()
            .post(app.url("/console/sign-in"))
            .form(&[
                ("kind", "tenant"),
                ("credential", t.api_key.as_str()),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&res), "/console/dashboard", "{next}");
    }
}

#[tokio::test]
async fn the_audit_chain_is_checked_by_a_post_of_the_console_only() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let cookie = sign_in(&app, &t.api_key).await;
    let (status, body) = page(&app, &cookie, "/console/dashboard?verify=1").await;
    assert_eq!(status, 200);
    assert!(
        !body.contains("id=\"audit-result\""),
        "a GET checks nothing"
    );
    let res = post_form(&app, &cookie, "/console/dashboard", &[]).await;
    assert_eq!(res.status(), 403, "no CSRF token");
    let csrf = csrf_of(&app, &cookie, "/console/dashboard").await;
    let res = post_form(&app, &cookie, "/console/dashboard", &[("_csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"audit-result\""));
}

#[tokio::test]
async fn a_tenants_recent_portal_links_are_listed_with_their_status() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let other = app.tenant("other").await;
    let mut made = Vec::new();
    for body in [
        json!({"expires_in": 1}),
        json!({"read_only": true}),
        json!({}),
    ] {
        let link = expect_json(app.post(&t, "/v1/portal-sessions", body).await, 201).await;
        made.push(link["id"].as_str().unwrap().to_string());
    }
    expect_json(
        app.post(&other, "/v1/portal-sessions", json!({})).await,
        201,
    )
    .await;
    let res = app
        .delete(&t, &format!("/v1/portal-sessions/{}", made[2]))
        .await;
    assert_eq!(res.status(), 204);
    // A link made with a key revoked since: it opens nothing, and says so.
    let second = expect_json(
        app.client
            .post(app.url(&format!("/admin/tenants/{}/keys", t.id)))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let second_key = hookline_tests::server::Tenant {
        id: t.id.clone(),
        api_key: second["api_key"].as_str().unwrap().to_string(),
    };
    let doomed = expect_json(
        app.post(&second_key, "/v1/portal-sessions", json!({}))
            .await,
        201,
    )
    .await;
    let revoked = app
        .client
        .delete(app.url(&format!(
            "/admin/tenants/{}/keys/{}",
            t.id,
            second["key_id"].as_str().or(second["id"].as_str()).unwrap()
        )))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    let read = expect_json(
        app.get(
            &t,
            &format!("/v1/portal-sessions/{}", doomed["id"].as_str().unwrap()),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(read["status"], "ended", "{read}");
    // The first expires a second after it was made.
    hookline_tests::eventually(
        "the first link has expired",
        std::time::Duration::from_secs(10),
        || async {
            let list = expect_json(app.get(&t, "/v1/portal-sessions").await, 200).await;
            (list["data"][3]["status"] == "expired").then_some(list)
        },
    )
    .await;
    let list = expect_json(app.get(&t, "/v1/portal-sessions").await, 200).await;
    let data = list["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|l| l["id"].as_str().unwrap()).collect();
    let doomed_id = doomed["id"].as_str().unwrap();
    assert_eq!(
        ids,
        vec![doomed_id, &made[2], &made[1], &made[0]],
        "newest first, mine only"
    );
    assert_eq!(data[0]["status"], "ended");
    assert_eq!(data[1]["status"], "revoked");
    assert!(data[1]["revoked_at"].is_string());
    assert_eq!(data[2]["status"], "active");
    assert_eq!(data[2]["read_only"], true);
    assert_eq!(data[2]["uses"], 0);
    assert!(list.get("next_cursor").is_none());
    made.push(doomed_id.to_string());

    // Pages: one at a time, through the cursor.
    let first = expect_json(app.get(&t, "/v1/portal-sessions?limit=3").await, 200).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = expect_json(
        app.get(&t, &format!("/v1/portal-sessions?limit=3&cursor={cursor}"))
            .await,
        200,
    )
    .await;
    assert_eq!(rest["data"][0]["id"], made[0].as_str());
    assert!(rest.get("next_cursor").is_none());
    for bad in ["limit=0", "limit=101", "cursor=nonsense", "unknown=1"] {
        let res = app.get(&t, &format!("/v1/portal-sessions?{bad}")).await;
        assert_eq!(res.status(), 400, "{bad}");
    }

    // The console's page lists them, each with a way to its page.
    let cookie = sign_in(&app, &t.api_key).await;
    let (status, body) = page(&app, &cookie, "/console/portal-links").await;
    assert_eq!(status, 200);
    for id in &made {
        assert!(
            body.contains(&format!("href=\"/console/portal-links/{id}\"")),
            "{id}"
        );
    }
    assert_eq!(
        body.matches("<tr data-link=").count(),
        4,
        "not the other tenant's"
    );
    assert!(body.contains(">ended<"), "{body}");
    assert!(
        body.contains(">expired<") && body.contains(">revoked<"),
        "{body}"
    );
    let (_, detail) = page(&app, &cookie, &format!("/console/portal-links/{}", made[0])).await;
    assert!(
        detail.contains(">expired<"),
        "an expired link is not shown active"
    );
}
