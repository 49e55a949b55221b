//! The Svix-compatible API (`/api/v1`) seen from Hookline's side: its own
//! OpenAPI document, its guard, the secret reveal in the log, its objects
//! in `/v1` and `/admin`, trailing slashes and the body limit. (The SDKs'
//! flows are in `svix_sdk.rs`.)

use hookline_tests::receiver::TestReceiver;
use hookline_tests::server::ADMIN_TOKEN;
use hookline_tests::{expect_json, Tenant, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

pub(crate) async fn svix(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// [`svix`]'s answer, which must have `status`, as JSON.
pub(crate) async fn svix_json(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    expect_json(svix(app, method, path, body).await, status).await
}

/// Racing PUTs of one new object: one creates it (201), the others
/// update it (200).
async fn one_created_the_rest_updated(
    puts: impl Iterator<Item = impl std::future::Future<Output = reqwest::Response>>,
) {
    let statuses: Vec<u16> = futures::future::join_all(puts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
}

fn concrete(path: &str) -> String {
    path.replace("{app_id}", "app-x")
        .replace("{endpoint_id}", "ep-x")
        .replace("{msg_id}", "msg-x")
        .replace("{event_type_name}", "invoice.paid")
        .replace("{attempt_id}", "atmpt-x")
}

#[tokio::test]
async fn its_document_is_the_committed_one_and_every_operation_is_guarded_as_documented() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let res = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let served = res.bytes().await.unwrap();
    let committed =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/svix-openapi.json"))
            .unwrap();
    assert!(
        committed == served.as_ref(),
        "docs/svix-openapi.json differs from GET /api/v1/openapi.json; regenerate it with \
         HOOKLINE_WRITE_OPENAPI=1 cargo test -p hookline-api the_committed_"
    );
    let doc: Value = serde_json::from_slice(&served).unwrap();
    let t = app.tenant("svix-guard").await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = app.url(&concrete(path));
            if op.get("security").is_some() {
                // No token, then a tenant's API key (not an organisation
                // token): 401 in Svix's shape.
                for auth in [None, Some(t.api_key.clone())] {
                    let mut req = app.client.request(method.clone(), &url);
                    if let Some(token) = &auth {
                        req = req.bearer_auth(token);
                    }
                    let res = req.send().await.unwrap();
                    let body = expect_json(res, 401).await;
                    assert_eq!(body["code"], "authentication_failed", "{method} {path}");
                    assert!(body["detail"].is_string(), "{method} {path}");
                }
            } else {
                let res = app
                    .client
                    .request(method.clone(), &url)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    res.status().is_success(),
                    "{method} {path}: {}",
                    res.status()
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 40);
}

#[tokio::test]
async fn objects_made_here_are_ordinary_hookline_objects_and_a_secret_read_is_in_the_log() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let receiver = TestReceiver::start().await;
    let made = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/",
            Some(json!({"name": "Acme", "uid": "acme", "metadata": {"plan": "pro"}})),
        )
        .await,
        201,
    )
    .await;
    let app_id = made["id"].as_str().unwrap();
    let tenant_id = app_id.strip_prefix("app_").unwrap();
    let tenant_uuid = uuid::Uuid::parse_str(tenant_id).unwrap().to_string();
    let endpoint = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/acme/endpoint",
            Some(json!({
                "url": receiver.url("/hook"),
                "uid": "main",
                "channels": ["eu"],
                "throttleRate": 20000
            })),
        )
        .await,
        201,
    )
    .await;
    let ep_uuid = uuid::Uuid::parse_str(
        endpoint["id"]
            .as_str()
            .unwrap()
            .strip_prefix("ep_")
            .unwrap(),
    )
    .unwrap()
    .to_string();
    // Svix's throttleRate is the subscription's rate limit, capped at
    // Hookline's maximum.
    assert_eq!(endpoint["throttleRate"], 10000, "{endpoint}");
    let secret = expect_json(
        svix(
            &app,
            Method::GET,
            "/api/v1/app/acme/endpoint/main/secret",
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(secret["key"].as_str().unwrap().starts_with("whsec_"));

    // The tenant, in /admin, with its uid and metadata.
    let tenant = expect_json(
        app.client
            .get(app.url(&format!("/admin/tenants/{tenant_uuid}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(tenant["uid"], "acme");
    assert_eq!(tenant["metadata"], json!({"plan": "pro"}));

    // A key for it: /v1 sees the subscription and its history, with the
    // secret reveal (who, which request), never the secret.
    let key = expect_json(
        app.client
            .post(app.url(&format!("/admin/tenants/{tenant_uuid}/keys")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let t = Tenant {
        id: tenant_uuid.clone(),
        api_key: key["api_key"].as_str().unwrap().to_string(),
    };
    let sub = expect_json(
        app.get(&t, &format!("/v1/subscriptions/{ep_uuid}")).await,
        200,
    )
    .await;
    assert_eq!(sub["signature_scheme"], "svix");
    assert_eq!(sub["payload_format"], "raw");
    assert_eq!(sub["uid"], "main");
    assert_eq!(sub["channels"], json!(["eu"]));
    assert_eq!(sub["rate_limit"], 10000);
    for (rate, expected) in [(json!(5), json!(5)), (Value::Null, Value::Null)] {
        let patched = expect_json(
            svix(
                &app,
                Method::PATCH,
                "/api/v1/app/acme/endpoint/main",
                Some(json!({ "throttleRate": rate })),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(patched["throttleRate"], expected, "{patched}");
        let sub = expect_json(
            app.get(&t, &format!("/v1/subscriptions/{ep_uuid}")).await,
            200,
        )
        .await;
        assert_eq!(sub["rate_limit"], expected, "{sub}");
    }
    assert!(
        sub["secret"].as_str().unwrap().contains('…'),
        "masked in /v1"
    );
    let history = expect_json(
        app.get(&t, &format!("/v1/subscriptions/{ep_uuid}/history"))
            .await,
        200,
    )
    .await;
    let events: Vec<&Value> = history["data"].as_array().unwrap().iter().collect();
    let reveal = events
        .iter()
        .find(|e| e["event_type"] == "SecretRevealed")
        .unwrap_or_else(|| panic!("no SecretRevealed in {history}"));
    assert_eq!(reveal["metadata"]["actor"], "admin", "{reveal}");
    let text = history.to_string();
    assert!(
        !text.contains(secret["key"].as_str().unwrap()),
        "the secret is never in the history"
    );

    // A message published here is delivered as Svix delivers it: the
    // payload's bytes exactly (key order and spacing kept).
    let payload = r#"{"b": 1, "a": [true, 1.50]}"#;
    let res = app
        .client
        .post(app.url("/api/v1/app/acme/msg"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"eventType": "invoice.paid", "payload": {payload}, "channels": ["eu"]}}"#
        ))
        .send()
        .await
        .unwrap();
    let msg = expect_json(res, 202).await;
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].header("svix-id"), msg["id"].as_str());
    assert_eq!(got[0].header("webhook-id"), msg["id"].as_str());
    assert_eq!(String::from_utf8_lossy(&got[0].body), payload);
    // /v1 shows the delivery's payload as it was sent: the data alone.
    let delivery = got[0].header("x-hookline-delivery").unwrap().to_string();
    let res = app.get(&t, &format!("/v1/deliveries/{delivery}")).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.contains(&format!("\"payload\":{payload}")),
        "the bytes as sent: {text}"
    );
}

#[tokio::test]
async fn svix_errors_and_limits() {
    let app = TestApp::spawn().await;
    app.ready().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Limits", "uid": "limits"})),
        )
        .await,
        201,
    )
    .await;
    // Bad JSON, a wrong type, a missing field: 422 with a located list.
    for body in [
        json!({"payload": {}}),
        json!({"eventType": "a.b", "payload": 5}),
    ] {
        let res = svix(&app, Method::POST, "/api/v1/app/limits/msg", Some(body)).await;
        let err = expect_json(res, 422).await;
        let detail = err["detail"].as_array().unwrap();
        assert!(
            !detail.is_empty()
                && detail.iter().all(|d| d["loc"][0] == "body"
                    && d["msg"].is_string()
                    && d["type"].is_string()),
            "{err}"
        );
    }
    // A compressed body: 415, not a JSON error; two tokens: 401.
    let res = app
        .client
        .post(app.url("/api/v1/app/limits/msg"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("{\"eventType\": \"a.b\", \"payload\": {}}")
        .send()
        .await
        .unwrap();
    let err = expect_json(res, 415).await;
    assert_eq!(err["code"], "unsupported_media_type", "{err}");
    let res = app
        .client
        .get(app.url("/api/v1/app"))
        .bearer_auth(ADMIN_TOKEN)
        .header("authorization", "Bearer hlo_other")
        .send()
        .await
        .unwrap();
    let err = expect_json(res, 401).await;
    assert!(
        err["detail"].as_str().unwrap().contains("more than one"),
        "{err}"
    );
    // An endpoint filter naming Hookline's namespace in another case
    // never matches: refused, located at the entry.
    let res = svix(
        &app,
        Method::POST,
        "/api/v1/app/limits/endpoint",
        Some(json!({"url": "https://example.com/ops", "filterTypes": ["invoice.paid", "HOOKLINE.circuit.opened"]})),
    )
    .await;
    let err = expect_json(res, 422).await;
    assert_eq!(err["detail"][0]["loc"][1], "filterTypes", "{err}");
    assert!(
        err["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("lowercase"),
        "{err}"
    );
    // Hookline's operational event types are its own to describe.
    for name in ["hookline.circuit.opened", "hookline.nothing.here"] {
        for (method, body) in [
            (Method::PUT, Some(json!({"description": "mine"}))),
            (Method::PATCH, Some(json!({"description": "mine"}))),
            (Method::DELETE, None),
        ] {
            let res = svix(&app, method, &format!("/api/v1/event-type/{name}"), body).await;
            let err = expect_json(res, 409).await;
            assert_eq!(err["code"], "event_type_reserved", "{name}: {err}");
        }
    }
    // A list's iterator must be an id of what it lists, its order one of
    // two words: 422 located at the query parameter.
    for (path, param) in [
        (
            "/api/v1/app?iterator=ep_0190b2a400007000800000000000000a",
            "iterator",
        ),
        ("/api/v1/app/limits/endpoint?iterator=app_x", "iterator"),
        ("/api/v1/app/limits/msg?iterator=limits", "iterator"),
        ("/api/v1/app?order=sideways", "order"),
        ("/api/v1/app/limits/endpoint?order=up", "order"),
    ] {
        let res = svix(&app, Method::GET, path, None).await;
        let err = expect_json(res, 422).await;
        assert_eq!(
            err["detail"][0]["loc"],
            json!(["query", param]),
            "{path}: {err}"
        );
    }
    // A payload over 1 MiB: 413 in Svix's shape (the /api/v1 body limit is
    // larger than Hookline's own).
    let big = "x".repeat(1024 * 1024);
    let res = svix(
        &app,
        Method::POST,
        "/api/v1/app/limits/msg",
        Some(json!({"eventType": "a.b", "payload": {"big": big}})),
    )
    .await;
    let err = expect_json(res, 413).await;
    assert_eq!(err["code"], "payload_too_large");
    // Unknown routes and apps: 404 with code and detail.
    let err = expect_json(
        svix(
            &app,
            Method::GET,
            "/api/v1/app/limits/endpoint/x/stats",
            None,
        )
        .await,
        404,
    )
    .await;
    assert_eq!(err["code"], "not_found");
    let err = expect_json(
        svix(&app, Method::GET, "/api/v1/app/nobody", None).await,
        404,
    )
    .await;
    assert_eq!(err["code"], "not_found");
    // A body-less POST (resend) is read as empty, never as a 415.
    let res = app
        .client
        .post(app.url("/api/v1/app/limits/msg/msg-none/endpoint/ep-none/resend"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The same idempotency key with another body is a conflict.
    for (n, status) in [(1, 202), (2, 409)] {
        let res = app
            .client
            .post(app.url("/api/v1/app/limits/msg"))
            .bearer_auth(ADMIN_TOKEN)
            .header("idempotency-key", "k-1")
            .json(&json!({"eventType": "a.b", "payload": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "body {n}");
    }
    // A trailing slash is the same path, for the key as for the router.
    let endpoint = |path: &'static str| {
        app.client
            .post(app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("idempotency-key", "k-2")
            .json(&json!({"url": "https://example.com/slash"}))
            .send()
    };
    let made = expect_json(endpoint("/api/v1/app/limits/endpoint").await.unwrap(), 201).await;
    let again = endpoint("/api/v1/app/limits/endpoint/").await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = expect_json(again, 201).await;
    assert_eq!(again["id"], made["id"]);
}

/// Found by the contract run (scripts/contract): every rate and filter an
/// input carries is checked, also SDK 1.x's `rateLimit` and `filterTypes`
/// beside `throttleRate` and `eventTypes`,
/// and an event type's `name` in a PUT or PATCH body must be a name.
#[tokio::test]
async fn svix_checks_every_rate_and_name_it_is_given() {
    let app = TestApp::spawn().await;
    app.ready().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Rates", "uid": "rates"})),
        )
        .await,
        201,
    )
    .await;
    for method in [Method::POST, Method::PUT] {
        let path = if method == Method::POST {
            "/api/v1/app/rates/endpoint".to_string()
        } else {
            "/api/v1/app/rates/endpoint/ep-rates".to_string()
        };
        let body = json!({"url": "https://example.com/hook", "throttleRate": 1, "rateLimit": 0});
        let err = expect_json(svix(&app, method.clone(), &path, Some(body)).await, 422).await;
        assert_eq!(
            err["detail"][0]["loc"],
            json!(["body", "throttleRate"]),
            "{method} {err}"
        );
    }
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": "rate.checked", "description": "d"})),
        )
        .await,
        201,
    )
    .await;
    for method in [Method::PUT, Method::PATCH] {
        let body = json!({"name": "000", "description": "d"});
        let err = expect_json(
            svix(
                &app,
                method.clone(),
                "/api/v1/event-type/rate.checked",
                Some(body),
            )
            .await,
            422,
        )
        .await;
        assert_eq!(
            err["detail"][0]["loc"],
            json!(["body", "name"]),
            "{method} {err}"
        );
    }
}

/// `PUT` is idempotent: requests racing to put one new uid all succeed,
/// one creating it (201) and the others updating it (200), for
/// applications and endpoints alike.
#[tokio::test]
async fn concurrent_puts_of_one_new_uid_create_it_once_and_update_it() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let puts = (0..8).map(|i| {
        svix(
            &app,
            Method::PUT,
            "/api/v1/app/put-race",
            Some(json!({"name": format!("racer {i}")})),
        )
    });
    one_created_the_rest_updated(puts).await;
    let apps = expect_json(
        svix(&app, Method::GET, "/api/v1/app?limit=250", None).await,
        200,
    )
    .await;
    let racers = apps["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["uid"] == "put-race")
        .count();
    assert_eq!(racers, 1);

    let puts = (0..8).map(|i| {
        svix(
            &app,
            Method::PUT,
            "/api/v1/app/put-race/endpoint/ep-race",
            Some(json!({"url": rx.url(&format!("/r{i}"))})),
        )
    });
    one_created_the_rest_updated(puts).await;
    let endpoints = expect_json(
        svix(&app, Method::GET, "/api/v1/app/put-race/endpoint", None).await,
        200,
    )
    .await;
    assert_eq!(
        endpoints["data"].as_array().unwrap().len(),
        1,
        "{endpoints}"
    );
}

/// A time is the same wherever it is read: the create response, the
/// message, the list (read model) and the application.
#[tokio::test]
async fn a_message_and_an_application_read_the_same_times_everywhere() {
    let app = TestApp::spawn().await;
    let made = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "clock", "uid": "clock"})),
        )
        .await,
        201,
    )
    .await;
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(at(&made["updatedAt"]) >= at(&made["createdAt"]), "{made}");
    let sent = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/clock/msg",
            Some(json!({"eventType": "a.b", "payload": {}})),
        )
        .await,
        202,
    )
    .await;
    let id = sent["id"].as_str().unwrap();
    let one = expect_json(
        svix(
            &app,
            Method::GET,
            &format!("/api/v1/app/clock/msg/{id}"),
            None,
        )
        .await,
        200,
    )
    .await;
    hookline_tests::read_models_caught_up(&app.db.pool).await;
    let list = expect_json(
        svix(&app, Method::GET, "/api/v1/app/clock/msg", None).await,
        200,
    )
    .await;
    let listed = &list["data"][0];
    assert_eq!(listed["id"], sent["id"]);
    assert_eq!(sent["timestamp"], one["timestamp"]);
    assert_eq!(sent["timestamp"], listed["timestamp"], "{sent} {listed}");
}

/// What Hookline does not keep is refused, not dropped: event types'
/// feature flags, message tags (and
/// the `tag` filter, which would otherwise answer every message), schemas
/// under keys that are not versions; and a recovery window that ends
/// before it starts. The newest schema version is kept.
#[tokio::test]
async fn what_hookline_does_not_keep_is_refused_not_dropped() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Refusals", "uid": "refusals"})),
        )
        .await,
        201,
    )
    .await;
    let located = |err: &Value, place: &str, field: &str| {
        assert_eq!(err["detail"][0]["loc"], json!([place, field]), "{err}");
    };
    let err = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/refusals/msg",
            Some(json!({"eventType": "a.b", "payload": {}, "tags": ["t1"]})),
        )
        .await,
        422,
    )
    .await;
    located(&err, "body", "tags");
    // An empty list keeps nothing: accepted.
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/refusals/msg",
            Some(json!({"eventType": "a.b", "payload": {}, "tags": []})),
        )
        .await,
        202,
    )
    .await;
    let err = expect_json(
        svix(&app, Method::GET, "/api/v1/app/refusals/msg?tag=t1", None).await,
        422,
    )
    .await;
    located(&err, "query", "tag");
    let err = expect_json(
        svix(
            &app,
            Method::GET,
            "/api/v1/app/refusals/msg?event_types=a.b,bad%20name",
            None,
        )
        .await,
        422,
    )
    .await;
    located(&err, "query", "event_types");

    // Feature flags (Hookline shows every type to every application).
    for (body, field) in [
        (
            json!({"name": "flag.one", "description": "d", "featureFlag": "beta"}),
            "featureFlag",
        ),
        (
            json!({"name": "flag.two", "description": "d", "featureFlags": ["beta"]}),
            "featureFlags",
        ),
    ] {
        let err = expect_json(
            svix(&app, Method::POST, "/api/v1/event-type", Some(body)).await,
            422,
        )
        .await;
        located(&err, "body", field);
    }
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": "flag.none", "description": "d", "featureFlag": null, "featureFlags": []})),
        )
        .await,
        201,
    )
    .await;
    for schemas in [
        json!({"abc": {"type": "object"}}),
        json!({"0": {}}),
        json!({"1": 5}),
    ] {
        let err = expect_json(
            svix(
                &app,
                Method::POST,
                "/api/v1/event-type",
                Some(json!({"name": "sch.bad", "description": "d", "schemas": schemas})),
            )
            .await,
            422,
        )
        .await;
        located(&err, "body", "schemas");
    }
    let made = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": "sch.good", "description": "d", "schemas": {
                "2": {"type": "object", "title": "two"},
                "10": {"type": "object", "title": "ten"},
            }})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(made["schemas"]["1"]["title"], "ten", "{made}");

    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/refusals/endpoint",
            Some(json!({"url": rx.url("/r"), "uid": "ep"})),
        )
        .await,
        201,
    )
    .await;
    let err = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/refusals/endpoint/ep/recover",
            Some(json!({"since": "2026-12-03T00:00:00Z", "until": "2026-12-01T00:00:00Z"})),
        )
        .await,
        422,
    )
    .await;
    located(&err, "body", "until");
    // Times chrono reads but Postgres cannot store: 422, not a 500.
    for (since, field) in [
        ("-262143-01-01T00:00:00", "since"),
        ("-5000-01-01T00:00:00", "since"),
    ] {
        let err = expect_json(
            svix(
                &app,
                Method::POST,
                "/api/v1/app/refusals/endpoint/ep/recover",
                Some(json!({"since": since, "until": since})),
            )
            .await,
            422,
        )
        .await;
        located(&err, "body", field);
    }
    let err = expect_json(
        svix(
            &app,
            Method::GET,
            "/api/v1/app/refusals/msg?before=-5000-01-01T00:00:00",
            None,
        )
        .await,
        422,
    )
    .await;
    located(&err, "query", "before");
}

/// The built-in event types every application has are the organisation's
/// event types here too: listed, read, replaced by a create, cleared of
/// their schema; PUTs of one new name at once, and PUTs naming an id that
/// names nothing, behave as upserts should.
#[tokio::test]
async fn built_in_event_types_are_the_organisations_and_upserts_hold_under_races() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let builtin = expect_json(
        svix(
            &app,
            Method::GET,
            "/api/v1/event-type/customer.created",
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(builtin["schemas"]["1"].is_object(), "{builtin}");
    let listed = expect_json(
        svix(&app, Method::GET, "/api/v1/event-type?limit=250", None).await,
        200,
    )
    .await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "customer.created"),
        "{listed}"
    );
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Built-ins", "uid": "builtins"})),
        )
        .await,
        201,
    )
    .await;
    let message = json!({"eventType": "customer.created", "payload": {"id": "cus_1"}});
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/builtins/msg",
            Some(message.clone()),
        )
        .await,
        422,
    )
    .await;
    // A schema of the client's own on a built-in (which comes with an
    // example the client cannot see) is taken, not refused on `/example`.
    let own = expect_json(
        svix(
            &app,
            Method::PATCH,
            "/api/v1/event-type/customer.updated",
            Some(json!({"schemas": {"1": {"type": "object", "required": ["zzz"]}}})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(own["schemas"]["1"]["required"], json!(["zzz"]), "{own}");
    // A client's create of that name replaces the built-in: no schema.
    let mine = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": "customer.created", "description": "mine"})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(mine["description"], "mine", "{mine}");
    assert!(mine["schemas"].is_null(), "{mine}");
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/builtins/msg",
            Some(message),
        )
        .await,
        202,
    )
    .await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": "customer.created", "description": "again"})),
        )
        .await,
        409,
    )
    .await;

    // `schemas: null` in a patch removes the schema.
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(
                json!({"name": "sch.cleared", "description": "d", "schemas": {
                    "1": {"type": "object", "required": ["id"]},
                }}),
            ),
        )
        .await,
        201,
    )
    .await;
    let empty = json!({"eventType": "sch.cleared", "payload": {}});
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/builtins/msg",
            Some(empty.clone()),
        )
        .await,
        422,
    )
    .await;
    let patched = expect_json(
        svix(
            &app,
            Method::PATCH,
            "/api/v1/event-type/sch.cleared",
            Some(json!({"schemas": null})),
        )
        .await,
        200,
    )
    .await;
    assert!(patched["schemas"].is_null(), "{patched}");
    expect_json(
        svix(&app, Method::POST, "/api/v1/app/builtins/msg", Some(empty)).await,
        202,
    )
    .await;

    // PUTs of one new event type at once: one creates it, the others
    // update it.
    let puts = (0..8).map(|i| {
        svix(
            &app,
            Method::PUT,
            "/api/v1/event-type/race.put",
            Some(json!({"description": format!("racer {i}")})),
        )
    });
    one_created_the_rest_updated(puts).await;

    // A PUT naming an id that names nothing creates nothing.
    let unknown_app = "/api/v1/app/app_0123456789abcdef0123456789abcdef";
    for _ in 0..2 {
        expect_json(
            svix(&app, Method::PUT, unknown_app, Some(json!({"name": "x"}))).await,
            404,
        )
        .await;
    }
    let unknown_endpoint = "/api/v1/app/builtins/endpoint/ep_0123456789abcdef0123456789abcdef";
    expect_json(
        svix(
            &app,
            Method::PUT,
            unknown_endpoint,
            Some(json!({"url": rx.url("/put")})),
        )
        .await,
        404,
    )
    .await;
    let endpoints = expect_json(
        svix(&app, Method::GET, "/api/v1/app/builtins/endpoint", None).await,
        200,
    )
    .await;
    assert_eq!(endpoints["data"], json!([]), "{endpoints}");

    // Secret reads and rotations at once on one endpoint all succeed.
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/builtins/endpoint",
            Some(json!({"url": rx.url("/s"), "uid": "busy"})),
        )
        .await,
        201,
    )
    .await;
    // (Four rotations: five secrets may sign at once.)
    let calls = (0..12).map(|i| {
        if i % 3 == 0 {
            svix(
                &app,
                Method::POST,
                "/api/v1/app/builtins/endpoint/busy/secret/rotate",
                Some(json!({})),
            )
        } else {
            svix(
                &app,
                Method::GET,
                "/api/v1/app/builtins/endpoint/busy/secret",
                None,
            )
        }
    });
    let statuses: Vec<u16> = futures::future::join_all(calls)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // A burst of reads, each recorded on the endpoint, takes turns within
    // the process instead of racing: none runs out of retries.
    let reads = (0..80).map(|_| {
        svix(
            &app,
            Method::GET,
            "/api/v1/app/builtins/endpoint/busy/secret",
            None,
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(reads)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// A page of messages with their content ends once it holds 4 MiB of
/// payloads, with an iterator to the rest (250 messages of 1 MiB were one
/// 262 MB answer); every message is still listed once.
#[tokio::test]
async fn message_pages_with_content_stay_bounded_in_bytes() {
    let app = TestApp::spawn().await;
    app.ready().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Big", "uid": "big"})),
        )
        .await,
        201,
    )
    .await;
    let filler = "x".repeat(900 * 1024);
    for i in 0..7 {
        expect_json(
            svix(
                &app,
                Method::POST,
                "/api/v1/app/big/msg",
                Some(json!({"eventType": "big.one", "payload": {"i": i, "filler": filler}})),
            )
            .await,
            202,
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/app/big/msg?limit=250".to_string();
    loop {
        let page = expect_json(svix(&app, Method::GET, &path, None).await, 200).await;
        let data = page["data"].as_array().unwrap();
        assert!(!data.is_empty() && data.len() <= 5, "{}", data.len());
        seen.extend(data.iter().map(|m| m["payload"]["i"].as_i64().unwrap()));
        if page["done"] == true {
            break;
        }
        path = format!(
            "/api/v1/app/big/msg?limit=250&iterator={}",
            page["iterator"].as_str().unwrap()
        );
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..7).collect::<Vec<_>>());
    // Without content, one page.
    let page = expect_json(
        svix(
            &app,
            Method::GET,
            "/api/v1/app/big/msg?limit=250&with_content=false",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 7);
}

/// A message created with an idempotency key whose answer a stopped
/// process never kept: the repeat runs again, and since publishing keeps
/// its key in the log, it answers the message first made (no second one,
/// no `idempotency_answer_lost`).
#[tokio::test]
async fn a_message_whose_answer_was_lost_is_answered_again_by_its_repeat() {
    let app = TestApp::spawn().await;
    app.ready().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Lost", "uid": "lost"})),
        )
        .await,
        201,
    )
    .await;
    let send = || {
        app.client
            .post(app.url("/api/v1/app/lost/msg"))
            .bearer_auth(ADMIN_TOKEN)
            .header("idempotency-key", "lost-1")
            .json(&json!({"eventType": "a.b", "payload": {"n": 1}}))
            .send()
    };
    let first = expect_json(send().await.unwrap(), 202).await;
    sqlx::query(
        "UPDATE idempotent_requests
            SET status = NULL, body = NULL, answered_at = NULL,
                claimed_at = now() - interval '1 hour'
          WHERE key = 'lost-1'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let again = expect_json(send().await.unwrap(), 202).await;
    assert_eq!(again["id"], first["id"], "{again}");
    let list = expect_json(
        svix(&app, Method::GET, "/api/v1/app/lost/msg", None).await,
        200,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}

/// Whole numbers written with a zero fraction are taken as JSON Schema's
/// `integer` allows (as `/v1` takes them); fractions are refused.
#[tokio::test]
async fn whole_numbers_with_a_zero_fraction_are_taken_and_fractions_refused() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let rx = TestReceiver::start().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Numbers", "uid": "nums", "throttleRate": 3.0})),
        )
        .await,
        201,
    )
    .await;
    let endpoint = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/nums/endpoint",
            Some(json!({"url": rx.url("/n"), "uid": "n", "throttleRate": 2.0})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(endpoint["throttleRate"], 2, "{endpoint}");
    let rotated = svix(
        &app,
        Method::POST,
        "/api/v1/app/nums/endpoint/n/secret/rotate",
        Some(json!({"gracePeriodSeconds": 60.0})),
    )
    .await;
    assert!(rotated.status().is_success(), "{}", rotated.status());
    for (path, body) in [
        ("/api/v1/app/nums/endpoint/n", json!({"throttleRate": 2.5})),
        (
            "/api/v1/app/nums/endpoint/n/secret/rotate",
            json!({"gracePeriodSeconds": 60.5}),
        ),
    ] {
        let method = if path.ends_with("rotate") {
            Method::POST
        } else {
            Method::PATCH
        };
        let refused = expect_json(svix(&app, method, path, Some(body)).await, 422).await;
        assert!(refused.to_string().contains("whole number"), "{refused}");
    }
}
