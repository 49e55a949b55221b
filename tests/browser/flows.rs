//! What tenants, operators and their customers do in the console.

use crate::harness::{
    axe_violations, body_text, click, find, js, run, screenshot, sign_in, sign_in_operator,
    type_into, wait_path, wait_text, wait_text_in, WAIT,
};
use fantoccini::Locator;
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::{eventually, expect_json, TestApp};
use serde_json::{json, Value};

#[test]
fn a_tenant_signs_in_and_creates_a_subscription_from_a_whole_group_and_one_event() {
    run("create_subscription", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let rx = TestReceiver::start().await;
        sign_in(&c, &app, &t).await;
        c.goto(&app.url("/console/subscriptions")).await.unwrap();
        wait_text(&c, "No subscriptions yet").await;
        screenshot(&c, "empty-state").await;
        click(&c, ".empty a.button").await;
        wait_path(&c, "/console/subscriptions/new").await;
        type_into(&c, "#url", &rx.url("/hooks")).await;
        type_into(&c, "#description", "ERP sync").await;
        // The whole Invoices group with its "select all", and one payment.
        click(&c, "input[data-select-all='Invoices']").await;
        let checked = js(
            &c,
            "Array.from(document.querySelectorAll(\"input[data-group='Invoices']\")).every(b => b.checked)",
        )
        .await;
        assert_eq!(checked, json!(true), "select all checks the whole group");
        click(&c, "input[id='ev-payment.received']").await;
        screenshot(&c, "subscription-form").await;
        click(
            &c,
            "form[action='/console/subscriptions'] button[type=submit]",
        )
        .await;
        let secret = find(&c, "#secret-value").await.text().await.unwrap();
        assert!(
            secret.starts_with("whsec_"),
            "the secret is shown: {secret}"
        );
        screenshot(&c, "secret-once").await;

        // Stored with exactly those events.
        let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
        let sub = &list["data"][0];
        let mut events: Vec<&str> = sub["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        events.sort_unstable();
        assert_eq!(
            events,
            vec![
                "invoice.authorized",
                "invoice.cancelled",
                "invoice.created",
                "invoice.rejected",
                "invoice.sent",
                "payment.received"
            ]
        );
        assert_eq!(sub["description"], "ERP sync");

        // It appears in the list; the secret is never shown again.
        click(&c, "a.button[href^='/console/subscriptions/']").await;
        wait_text(&c, "Delivery log").await;
        let page = body_text(&c).await;
        assert!(!page.contains(&secret), "the secret is shown only once");
        c.goto(&app.url("/console/subscriptions")).await.unwrap();
        wait_text_in(&c, "#subscriptions", &rx.url("/hooks")).await;
        wait_text_in(&c, "#subscriptions", "ERP sync").await;
        wait_text_in(&c, "#subscriptions", "payment.received").await;
        screenshot(&c, "subscriptions").await;
        // Back to the page that showed the secret (Chromium keeps pages
        // whole in its back/forward cache): it is loaded again, and the
        // server shows the subscription instead.
        c.back().await.unwrap();
        c.back().await.unwrap();
        eventually(
            "Back shows the subscription, not its secret",
            WAIT,
            || async {
                let url = c.current_url().await.ok()?;
                let body = body_text(&c).await;
                (!url.path().ends_with("/secret")
                    && body.contains("Delivery log")
                    && !body.contains(&secret))
                .then_some(())
            },
        )
        .await;
        c.goto(&app.url("/console/subscriptions")).await.unwrap();
        assert!(!body_text(&c).await.contains(&secret));
    });
}

#[test]
fn a_bad_url_and_a_short_secret_are_refused_inline_with_the_apis_messages() {
    run("inline_validation", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        sign_in(&c, &app, &t).await;
        c.goto(&app.url("/console/subscriptions/new"))
            .await
            .unwrap();
        type_into(&c, "#url", "ftp://example.com/hooks").await;
        type_into(&c, "#secret", "short").await;
        // Leaving the field checks it with the API's rules.
        click(&c, "#description").await;
        wait_text_in(&c, "#url-error", "must use https://").await;
        wait_text_in(&c, "#secret-error", "between 8 and 500 characters").await;
        assert_eq!(
            find(&c, "#url")
                .await
                .attr("aria-invalid")
                .await
                .unwrap()
                .as_deref(),
            Some("true")
        );
        // Submitting anyway: the server says the same, next to each field.
        click(&c, "input[id='ev-invoice.created']").await;
        click(
            &c,
            "form[action='/console/subscriptions'] button[type=submit]",
        )
        .await;
        wait_text_in(&c, "#form-errors", "correct the fields").await;
        wait_text_in(&c, "#url-error", "must use https://").await;
        wait_text_in(&c, "#secret-error", "between 8 and 500 characters (got 5)").await;
        // What was typed is kept (but never the secret).
        assert_eq!(
            find(&c, "#url")
                .await
                .prop("value")
                .await
                .unwrap()
                .as_deref(),
            Some("ftp://example.com/hooks")
        );
        assert_eq!(
            find(&c, "#secret")
                .await
                .prop("value")
                .await
                .unwrap()
                .as_deref(),
            Some("")
        );
        screenshot(&c, "validation").await;
        let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
        assert_eq!(
            list["data"].as_array().unwrap().len(),
            0,
            "nothing was created"
        );
        // Fixed, and the button clicked twice at once: one subscription,
        // and the page with its secret (not "already exists").
        find(&c, "#url").await.clear().await.unwrap();
        type_into(&c, "#url", "https://example.com/hooks").await;
        js(
            &c,
            "(() => { const b = document.querySelector(\"form[action='/console/subscriptions'] button[type=submit]\"); b.click(); setTimeout(() => b.click(), 30); return true; })()",
        )
        .await;
        let secret = find(&c, "#secret-value").await.text().await.unwrap();
        assert!(secret.starts_with("whsec_"), "{secret}");
        let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "made once");
    });
}

#[test]
fn send_test_shows_a_delivered_entry_in_the_log_as_it_happens() {
    run("send_test", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let rx = TestReceiver::start().await;
        let sub = app
            .subscribe(
                &t,
                json!({"url": rx.url("/in"), "events": ["invoice.created"]}),
            )
            .await;
        let id = sub["id"].as_str().unwrap().to_string();
        sign_in(&c, &app, &t).await;
        c.goto(&app.url(&format!("/console/subscriptions/{id}")))
            .await
            .unwrap();
        click(
            &c,
            &format!("form[action='/console/subscriptions/{id}/test'] button"),
        )
        .await;
        wait_text(&c, "A test event was sent").await;
        // The log updates by itself: no reload.
        let row = find(&c, "#delivery-log tr[data-status='delivered']").await;
        assert!(row.text().await.unwrap().contains("webhook.test"));
        assert_eq!(rx.count(), 1);
        assert!(rx.received()[0].header("webhook-id").is_some());
        screenshot(&c, "subscription").await;
    });
}

#[test]
fn a_failing_receivers_delivery_is_retried_from_the_ui_as_a_new_attempt() {
    run("retry", |c| async move {
        let app = TestApp::spawn_with(|env| {
            env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "0".into());
        })
        .await;
        let t = app.tenant("Acme").await;
        let rx = TestReceiver::start().await;
        rx.script(vec![Reply::status(500).body("database is down")]);
        app.subscribe(
            &t,
            json!({"url": rx.url("/in"), "events": ["order.created"]}),
        )
        .await;
        let published = expect_json(
            app.post(
                &t,
                "/v1/events",
                json!({"event_type": "order.created", "data": {"invoice_id": "inv-1"}}),
            )
            .await,
            202,
        )
        .await;
        let delivery = published["deliveries"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        sign_in(&c, &app, &t).await;
        c.goto(&app.url(&format!("/console/deliveries/{delivery}")))
            .await
            .unwrap();
        // The failure shows up by itself (live), with the receiver's answer.
        find(&c, "#attempts article[data-attempt='1']").await;
        c.refresh().await.unwrap();
        wait_text_in(&c, "#delivery-status", "abandoned").await;
        wait_text_in(&c, "#attempts", "database is down").await;
        wait_text_in(&c, "#payload", "inv-1").await;
        click(
            &c,
            &format!("form[action='/console/deliveries/{delivery}/retry'] button"),
        )
        .await;
        wait_text(&c, "Another attempt is queued").await;
        let second = find(&c, "#attempts article[data-attempt='2']").await;
        eventually("the second attempt is delivered", WAIT, || async {
            second
                .text()
                .await
                .ok()?
                .contains("delivered")
                .then_some(())
        })
        .await;
        assert!(
            body_text(&c).await.contains("Attempt 1"),
            "the first attempt stays"
        );
        screenshot(&c, "delivery").await;
        assert_eq!(rx.count(), 2);
    });
}

#[test]
fn delete_asks_for_a_confirmation_that_names_the_url() {
    run("delete", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let rx = TestReceiver::start().await;
        let sub = app
            .subscribe(
                &t,
                json!({"url": rx.url("/gone"), "events": ["invoice.created"]}),
            )
            .await;
        let id = sub["id"].as_str().unwrap().to_string();
        sign_in(&c, &app, &t).await;
        c.goto(&app.url(&format!("/console/subscriptions/{id}")))
            .await
            .unwrap();
        click(&c, &format!("a[href='/console/subscriptions/{id}/delete']")).await;
        wait_text_in(&c, "#delete-url", &rx.url("/gone")).await;
        // Still there until confirmed.
        expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
        screenshot(&c, "delete-confirmation").await;
        click(
            &c,
            &format!("form[action='/console/subscriptions/{id}/delete'] button"),
        )
        .await;
        wait_text(&c, "The subscription was deleted").await;
        assert!(!body_text(&c).await.contains(&rx.url("/gone")));
        expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 404).await;
    });
}

#[test]
fn the_console_speaks_spanish_errors_included() {
    run("spanish", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        // Accept-Language chooses it before anyone signs in…
        let page = app
            .client
            .get(app.url("/console/sign-in"))
            .header("accept-language", "es-EC,es;q=0.9,en;q=0.5")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Iniciar sesión en Hookline"), "{page}");
        assert!(page.contains("lang=\"es\""));
        // …and the switch keeps it.
        sign_in(&c, &app, &t).await;
        click(&c, "nav.lang a[lang='es']").await;
        wait_text(&c, "Panel").await;
        assert_eq!(js(&c, "document.documentElement.lang").await, json!("es"));
        c.goto(&app.url("/console/subscriptions")).await.unwrap();
        wait_text(&c, "Aún no hay suscripciones").await;
        c.goto(&app.url("/console/subscriptions/new"))
            .await
            .unwrap();
        type_into(&c, "#url", "ftp://example.com/x").await;
        type_into(&c, "#secret", "corto").await;
        click(&c, "#description").await;
        wait_text_in(&c, "#url-error", "URL: debe usar https://").await;
        wait_text_in(
            &c,
            "#secret-error",
            "Secreto: debe tener entre 8 y 500 caracteres (tiene 5)",
        )
        .await;
        click(
            &c,
            "form[action='/console/subscriptions'] button[type=submit]",
        )
        .await;
        wait_text_in(&c, "#form-errors", "Corrija los campos").await;
        // An application error, translated, with its English detail below.
        c.goto(&app.url("/console/subscriptions/00000000-0000-0000-0000-000000000000"))
            .await
            .unwrap();
        wait_text(&c, "No se encontró").await;
        screenshot(&c, "spanish").await;
        click(&c, "nav.lang a[lang='en']").await;
        wait_text(&c, "It was not found").await;
        assert_eq!(js(&c, "document.documentElement.lang").await, json!("en"));
    });
}

async fn portal_link(app: &TestApp, t: &hookline_tests::Tenant, body: Value) -> Value {
    expect_json(app.post(t, "/v1/portal-sessions", body).await, 201).await
}

#[test]
fn a_read_only_portal_link_shows_but_changes_nothing_and_reaches_no_other_tenant() {
    run("portal_read_only", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let other = app.tenant("Globex").await;
        let rx = TestReceiver::start().await;
        let mine = app
            .subscribe(
                &t,
                json!({"url": rx.url("/mine"), "events": ["invoice.created"]}),
            )
            .await;
        let theirs = app
            .subscribe(
                &other,
                json!({"url": rx.url("/theirs"), "events": ["invoice.created"]}),
            )
            .await;
        let mine_id = mine["id"].as_str().unwrap().to_string();
        let theirs_id = theirs["id"].as_str().unwrap().to_string();
        let link = portal_link(&app, &t, json!({"read_only": true})).await;
        let url = link["url"].as_str().unwrap().to_string();
        assert!(
            url.starts_with(&app.url("/console/portal?token=hlp_")),
            "{url}"
        );
        c.delete_all_cookies().await.ok();
        // Opened the way customers meet it: a link on another site (the
        // tenant's own app; localhost is not 127.0.0.1). The session cookie
        // must go along with the redirect that follows.
        let site = TestReceiver::start().await;
        site.default_reply(
            Reply::status(200)
                .header("content-type", "text/html")
                .body(&format!(
                    "<!doctype html><title>App</title><a id=go href=\"{url}\">Webhooks</a>"
                )),
        );
        c.goto(&format!("http://localhost:{}/app", site.address.port()))
            .await
            .unwrap();
        crate::harness::click(&c, "#go").await;
        wait_path(&c, "/console/subscriptions").await;
        wait_text_in(&c, "#subscriptions", &rx.url("/mine")).await;
        let page = body_text(&c).await;
        assert!(!page.contains(&rx.url("/theirs")));
        assert!(page.contains("read-only"));
        screenshot(&c, "portal").await;
        // No action is offered…
        c.goto(&app.url(&format!("/console/subscriptions/{mine_id}")))
            .await
            .unwrap();
        wait_text(&c, "Delivery log").await;
        assert!(c
            .find(Locator::Css(&format!(
                "form[action='/console/subscriptions/{mine_id}/test']"
            )))
            .await
            .is_err());
        // …and a change made anyway (with the page's own CSRF token) is refused.
        let status = c
            .execute_async(
                r#"const [id, done] = arguments;
                   fetch('/console/subscriptions/' + id + '/disable', {method: 'POST',
                         headers: {'content-type': 'application/x-www-form-urlencoded'},
                         body: '_csrf=' + encodeURIComponent(document.querySelector('input[name=_csrf]').value)})
                     .then(r => done(r.status));"#,
                vec![json!(mine_id)],
            )
            .await
            .unwrap();
        assert_eq!(status, json!(403));
        let sub = expect_json(
            app.get(&t, &format!("/v1/subscriptions/{mine_id}")).await,
            200,
        )
        .await;
        assert_eq!(sub["status"], "active");
        // Another tenant's subscription is not there.
        c.goto(&app.url(&format!("/console/subscriptions/{theirs_id}")))
            .await
            .unwrap();
        wait_text(&c, "It was not found").await;
        // The use is recorded.
        let id = link["id"].as_str().unwrap();
        let read = expect_json(app.get(&t, &format!("/v1/portal-sessions/{id}")).await, 200).await;
        assert_eq!(read["uses"].as_array().unwrap().len(), 1);
        // Revoked: the open session ends and the link no longer opens.
        let res = app.delete(&t, &format!("/v1/portal-sessions/{id}")).await;
        assert_eq!(res.status(), 204);
        c.goto(&app.url("/console/subscriptions")).await.unwrap();
        wait_path(&c, "/console/sign-in").await;
        c.goto(&url).await.unwrap();
        wait_text(&c, "This portal link has been revoked").await;
    });
}

#[test]
fn an_expired_portal_link_no_longer_opens_and_its_sessions_end() {
    run("portal_expired", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let link = portal_link(&app, &t, json!({"expires_in": 2})).await;
        let url = link["url"].as_str().unwrap().to_string();
        c.delete_all_cookies().await.ok();
        c.goto(&url).await.unwrap();
        wait_path(&c, "/console/subscriptions").await;
        // Once its time is up, the session it opened ends…
        eventually("the portal session ends", WAIT, || async {
            c.goto(&app.url("/console/subscriptions")).await.ok()?;
            let url = c.current_url().await.ok()?;
            url.path().starts_with("/console/sign-in").then_some(())
        })
        .await;
        // …and the link says it expired.
        c.goto(&url).await.unwrap();
        wait_text(&c, "This portal link has expired").await;
        screenshot(&c, "portal-expired").await;
    });
}

#[test]
fn the_operator_sees_every_tenant_and_works_in_each_ones_console() {
    run("operator", |c| async move {
        let app = TestApp::spawn().await;
        let a = app.tenant("Acme").await;
        let b = app.tenant("Globex").await;
        let rx = TestReceiver::start().await;
        app.subscribe(
            &a,
            json!({"url": rx.url("/acme"), "events": ["invoice.created"]}),
        )
        .await;
        let gb = app
            .subscribe(
                &b,
                json!({"url": rx.url("/globex"), "events": ["payment.received"]}),
            )
            .await;
        sign_in_operator(&c, &app).await;
        wait_text_in(&c, "#tenants", "Acme").await;
        wait_text_in(&c, "#tenants", "Globex").await;
        screenshot(&c, "tenants").await;
        click(&c, &format!("tr[data-tenant='{}'] button", a.id)).await;
        wait_text_in(&c, "#subscriptions", &rx.url("/acme")).await;
        assert!(!body_text(&c).await.contains(&rx.url("/globex")));
        click(&c, "form[action='/console/tenants/leave'] button").await;
        wait_path(&c, "/console/tenants").await;
        click(&c, &format!("tr[data-tenant='{}'] button", b.id)).await;
        wait_text_in(&c, "#subscriptions", &rx.url("/globex")).await;
        assert!(!body_text(&c).await.contains(&rx.url("/acme")));
        // What the operator changes is recorded as the operator's.
        let id = gb["id"].as_str().unwrap();
        c.goto(&app.url(&format!("/console/subscriptions/{id}")))
            .await
            .unwrap();
        click(
            &c,
            &format!("form[action='/console/subscriptions/{id}/disable'] button"),
        )
        .await;
        wait_text(&c, "The subscription is disabled").await;
        let history = expect_json(
            app.get(&b, &format!("/v1/subscriptions/{id}/history"))
                .await,
            200,
        )
        .await;
        let last = history["data"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["event_type"], "SubscriptionDisabled");
        assert_eq!(last["metadata"]["actor"], "admin");
        // And a new tenant, its key shown once.
        click(&c, "form[action='/console/tenants/leave'] button").await;
        type_into(&c, "#tenant-name", "Initech").await;
        click(&c, "form[action='/console/tenants'] button[type=submit]").await;
        let key = find(&c, "#key-value").await.text().await.unwrap();
        assert!(key.starts_with("hlk_"));
        let me = app
            .client
            .get(app.url("/v1/subscriptions"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "the new key works");
    });
}

#[test]
fn history_dashboard_event_types_and_request_traces_show_the_log() {
    run("history_dashboard", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let rx = TestReceiver::start().await;
        let sub = app
            .subscribe(&t, json!({"url": rx.url("/in"), "events": ["invoice.*"], "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
            .await;
        let id = sub["id"].as_str().unwrap().to_string();
        let res = app
            .client
            .post(app.url("/v1/events"))
            .bearer_auth(&t.api_key)
            .header("x-request-id", "ticket-42")
            .json(&json!({"event_type": "invoice.created", "data": {"invoice_id": "inv-9", "invoice_number": "F-9", "amount": "9.00", "currency": "USD"}}))
            .send()
            .await
            .unwrap();
        expect_json(res, 202).await;
        rx.wait_for(1, WAIT).await;
        hookline_tests::read_models_caught_up(&app.db.pool).await;
        sign_in(&c, &app, &t).await;
        c.goto(&app.url(&format!("/console/subscriptions/{id}/history")))
            .await
            .unwrap();
        wait_text(&c, "Subscribed").await;
        let page = body_text(&c).await;
        assert!(page.contains("api_key:"), "who");
        assert!(
            !page.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "secrets never shown"
        );
        screenshot(&c, "history").await;
        c.goto(&app.url("/console/requests/ticket-42"))
            .await
            .unwrap();
        wait_text(&c, "DeliveryEnqueued").await;
        wait_text(&c, "DeliverySucceeded").await;
        screenshot(&c, "request-trace").await;
        c.goto(&app.url("/console/dashboard")).await.unwrap();
        click(&c, "#verify-audit").await;
        wait_text_in(&c, "#audit-result", "intact").await;
        wait_text_in(&c, "#total", "1").await;
        wait_text_in(&c, "#success-rate", "100.0 %").await;
        assert!(
            c.find(Locator::Css("figure.chart svg rect")).await.is_ok(),
            "a bar"
        );
        screenshot(&c, "dashboard").await;
        c.goto(&app.url("/console/event-types")).await.unwrap();
        wait_text(&c, "Invoices").await;
        click(&c, "a[href='/console/event-types/invoice.created']").await;
        wait_text_in(&c, "#example", "inv-123").await;
        screenshot(&c, "event-types").await;
    });
}

#[test]
fn the_pages_pass_axe_and_fit_a_phone() {
    run("accessibility", |c| async move {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let rx = TestReceiver::start().await;
        let sub = app
            .subscribe(
                &t,
                json!({"url": rx.url("/in"), "events": ["order.created"], "description": "ERP"}),
            )
            .await;
        let id = sub["id"].as_str().unwrap().to_string();
        let published = expect_json(
            app.post(
                &t,
                "/v1/events",
                json!({"event_type": "order.created", "data": {"a": 1}}),
            )
            .await,
            202,
        )
        .await;
        let delivery = published["deliveries"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        rx.wait_for(1, WAIT).await;
        c.delete_all_cookies().await.ok();
        let mut pages = vec!["/console/sign-in".to_string()];
        c.goto(&app.url("/console/sign-in")).await.unwrap();
        let mut failures = Vec::new();
        let check = |v: Vec<Value>, page: &str, failures: &mut Vec<String>| {
            for x in v {
                failures.push(format!("{page}: {x}"));
            }
        };
        check(axe_violations(&c).await, "/console/sign-in", &mut failures);
        sign_in(&c, &app, &t).await;
        pages.clear();
        for p in [
            "/console/dashboard".to_string(),
            "/console/subscriptions".to_string(),
            "/console/subscriptions/new".to_string(),
            format!("/console/subscriptions/{id}"),
            format!("/console/subscriptions/{id}/history"),
            format!("/console/subscriptions/{id}/delete"),
            format!("/console/deliveries/{delivery}"),
            "/console/event-types".to_string(),
            "/console/event-types/invoice.created".to_string(),
            "/console/portal-links".to_string(),
        ] {
            c.goto(&app.url(&p)).await.unwrap();
            find(&c, "main h1").await;
            check(axe_violations(&c).await, &p, &mut failures);
            pages.push(p);
        }
        sign_in_operator(&c, &app).await;
        check(axe_violations(&c).await, "/console/tenants", &mut failures);
        assert!(
            failures.is_empty(),
            "serious accessibility violations:\n{}",
            failures.join("\n")
        );

        // A phone-width viewport: nothing scrolls sideways but tables.
        sign_in(&c, &app, &t).await;
        c.set_window_size(390, 844).await.unwrap();
        for p in [
            "/console/subscriptions",
            &format!("/console/subscriptions/{id}"),
            "/console/dashboard",
        ] {
            c.goto(&app.url(p)).await.unwrap();
            find(&c, "main h1").await;
            let fits = js(
                &c,
                "document.documentElement.scrollWidth <= window.innerWidth + 1",
            )
            .await;
            let wide = js(
                &c,
                "Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.table-wrap'))).slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)",
            )
            .await;
            assert_eq!(
                fits,
                json!(true),
                "{p} fits a 390 px wide screen; too wide: {wide}"
            );
        }
        screenshot(&c, "phone").await;
        // Keyboard: the first Tab reaches the skip link, which is visible when focused.
        c.goto(&app.url("/console/subscriptions")).await.unwrap();
        find(&c, "main h1").await;
        c.active_element()
            .await
            .unwrap()
            .send_keys("\u{e004}")
            .await
            .unwrap();
        let focused = js(&c, "document.activeElement.className").await;
        assert_eq!(focused, json!("skip"));
    });
}

#[test]
fn flow_control_shows_a_rate_limit_an_open_circuit_and_skipped_deliveries() {
    run("flow_control", |c| async move {
        let app = TestApp::spawn_with(|env| {
            env.insert("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD".into(), "2".into());
            env.insert("HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS".into(), "600".into());
            env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
            env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "5".into());
        })
        .await;
        let t = app.tenant("Acme").await;
        let rx = TestReceiver::start().await;
        sign_in(&c, &app, &t).await;
        // A rate limit set in the form reaches the subscription; a bad one
        // is refused inline.
        c.goto(&app.url("/console/subscriptions/new"))
            .await
            .unwrap();
        type_into(&c, "#url", &rx.url("/limited")).await;
        click(&c, "input[id='ev-payment.received']").await;
        type_into(&c, "#rate_limit", "0").await;
        js(
            &c,
            "document.querySelector('form[action=\"/console/subscriptions\"]').noValidate = true",
        )
        .await;
        click(
            &c,
            "form[action='/console/subscriptions'] button[type=submit]",
        )
        .await;
        wait_text_in(&c, "#rate_limit-error", "1").await;
        let field = find(&c, "#rate_limit").await;
        field.clear().await.unwrap();
        type_into(&c, "#rate_limit", "25").await;
        click(
            &c,
            "form[action='/console/subscriptions'] button[type=submit]",
        )
        .await;
        find(&c, "#secret-value").await;
        let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
        assert_eq!(list["data"][0]["rate_limit"], 25);
        let limited = list["data"][0]["id"].as_str().unwrap().to_string();
        c.goto(&app.url(&format!("/console/subscriptions/{limited}")))
            .await
            .unwrap();
        wait_text(&c, "25 / s").await;

        // A dead receiver opens its circuit: the list says so and filters
        // on it.
        let dead = TestReceiver::start().await;
        dead.default_reply(Reply::status(503));
        let d = app
            .subscribe(&t, json!({"url": dead.url("/dead"), "events": ["order.*"]}))
            .await;
        let dead_id = d["id"].as_str().unwrap().to_string();
        app.post(
            &t,
            "/v1/events",
            json!({"event_type": "order.created", "data": {}}),
        )
        .await;
        eventually("the circuit opens", WAIT, || async {
            let s = expect_json(
                app.get(&t, &format!("/v1/subscriptions/{dead_id}")).await,
                200,
            )
            .await;
            (!s["circuit"].is_null()).then_some(())
        })
        .await;
        c.goto(&app.url("/console/subscriptions?status=circuit_open"))
            .await
            .unwrap();
        wait_text_in(&c, "#subscriptions", "circuit open").await;
        let page = body_text(&c).await;
        assert!(page.contains(&dead.url("/dead")), "{page}");
        assert!(!page.contains(&rx.url("/limited")), "{page}");
        c.goto(&app.url(&format!("/console/subscriptions/{dead_id}")))
            .await
            .unwrap();
        wait_text(&c, "consecutive failures").await;
        screenshot(&c, "circuit-open").await;

        // Disabled: a published event is recorded as skipped and shown so.
        expect_json(
            app.post(
                &t,
                &format!("/v1/subscriptions/{dead_id}/disable"),
                json!({}),
            )
            .await,
            200,
        )
        .await;
        let published = expect_json(
            app.post(
                &t,
                "/v1/events",
                json!({"event_type": "order.created", "data": {}}),
            )
            .await,
            202,
        )
        .await;
        let skipped = published["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["subscription_id"] == dead_id.as_str())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        c.goto(&app.url(&format!("/console/deliveries/{skipped}")))
            .await
            .unwrap();
        wait_text_in(&c, "#delivery-status", "skipped").await;
    });
}
