//! Hostile input and hostile sites: script in a description and in a
//! receiver's answer stays text; a form posted from another site is
//! refused.

use crate::harness::{body_text, find, js, run, sign_in, wait_path, wait_text, WAIT};
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::{expect_json, TestApp};
use serde_json::json;

const SCRIPT: &str =
    "<script>window.__xss = 'description'</script><img src=x onerror=\"window.__xss='img'\">";
const ANSWER: &str = "<script>window.__xss = 'excerpt'</script><b onmouseover=alert(1)>boom</b>";

#[test]
fn script_in_a_description_and_in_a_receivers_answer_is_shown_as_text() {
    run("xss", |c| async move {
        let app = TestApp::spawn_with(|env| {
            env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "0".into());
        })
        .await;
        let t = app.tenant("Acme").await;
        let rx = TestReceiver::start().await;
        rx.default_reply(
            Reply::status(500)
                .header("content-type", "text/html")
                .body(ANSWER),
        );
        let sub = app
            .subscribe(
                &t,
                json!({"url": rx.url("/in?q=<script>x</script>"), "events": ["order.created"],
                       "description": SCRIPT, "headers": {"X-Note": "<script>h</script>"}}),
            )
            .await;
        let id = sub["id"].as_str().unwrap().to_string();
        let published = expect_json(
            app.post(
                &t,
                "/v1/events",
                json!({"event_type": "order.created", "data": {"note": "</pre><script>window.__xss='payload'</script>"}}),
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
        sign_in(&c, &app, &t).await;
        for path in [
            "/console/subscriptions".to_string(),
            format!("/console/subscriptions/{id}"),
            format!("/console/deliveries/{delivery}"),
            format!("/console/subscriptions/{id}/history"),
            "/console/dashboard".to_string(),
        ] {
            c.goto(&app.url(&path)).await.unwrap();
            find(&c, "main h1").await;
            assert_eq!(
                js(&c, "window.__xss === undefined").await,
                json!(true),
                "{path}"
            );
            assert!(c.get_alert_text().await.is_err(), "no dialog on {path}");
        }
        // Shown, as text.
        c.goto(&app.url(&format!("/console/subscriptions/{id}")))
            .await
            .unwrap();
        wait_text(&c, "<script>window.__xss = 'description'</script>").await;
        c.goto(&app.url(&format!("/console/deliveries/{delivery}")))
            .await
            .unwrap();
        wait_text(&c, "<script>window.__xss = 'excerpt'</script>").await;
        wait_text(&c, "</pre><script>window.__xss='payload'</script>").await;
        assert_eq!(
            js(
                &c,
                "document.querySelectorAll('main script, main img[src=x], main b').length"
            )
            .await,
            json!(0)
        );
        assert_eq!(js(&c, "window.__xss === undefined").await, json!(true));
    });
}

/// A page on another site that posts a form to the console on load.
fn attack_page(target: &str) -> String {
    format!(
        "<!doctype html><html><body><form id=f method=post action=\"{target}\">\
         <input name=_csrf value=guess></form>\
         <script>document.getElementById('f').submit()</script></body></html>"
    )
}

#[test]
fn a_form_posted_from_another_site_is_refused() {
    run("csrf", |c| async move {
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
        let target = app.url(&format!("/console/subscriptions/{id}/delete"));
        let evil = TestReceiver::start().await;
        evil.default_reply(
            Reply::status(200)
                .header("content-type", "text/html")
                .body(&attack_page(&target)),
        );
        // Another site (localhost is not 127.0.0.1): the SameSite=Lax
        // cookie is not sent with a cross-site POST, so the post is not even
        // signed in.
        c.goto(&format!("http://localhost:{}/attack", evil.address.port()))
            .await
            .unwrap();
        wait_path(&c, "/console/").await;
        let landed = c.current_url().await.unwrap();
        assert!(
            landed.path() == "/console/sign-in"
                || body_text(&c)
                    .await
                    .contains("did not come from this console"),
            "refused: {landed}"
        );
        expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
        // The same site but another origin (another port): the cookie goes
        // along, and the origin check (and the missing CSRF token) refuse it.
        sign_in(&c, &app, &t).await;
        c.goto(&format!("http://127.0.0.1:{}/attack", evil.address.port()))
            .await
            .unwrap();
        wait_text(&c, "did not come from this console").await;
        expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
        // Still signed in, and the console's own form works.
        c.goto(&app.url(&format!("/console/subscriptions/{id}/delete")))
            .await
            .unwrap();
        crate::harness::click(
            &c,
            &format!("form[action='/console/subscriptions/{id}/delete'] button"),
        )
        .await;
        wait_text(&c, "The subscription was deleted").await;
        expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 404).await;
    });
}
