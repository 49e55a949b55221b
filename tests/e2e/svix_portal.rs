//! The Svix-compatible API's app portal access and logout (links to the
//! console), an endpoint's attempted messages, and example messages, against
//! real receivers.

use crate::svix_api::svix;
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::server::ADMIN_TOKEN;
use hookline_tests::{eventually, expect_json, TestApp};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn as_key(app: &TestApp, key: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Opens a portal link; the console page it lands on, or its status.
async fn open(app: &TestApp, url: &str) -> Result<String, u16> {
    let path = url.split_once("/console/").map(|(_, p)| p).unwrap();
    let res = no_redirects()
        .get(app.url(&format!("/console/{path}")))
        .send()
        .await
        .unwrap();
    if res.status() != 303 {
        return Err(res.status().as_u16());
    }
    assert_eq!(res.headers()[LOCATION], "/console/subscriptions");
    let cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("hookline_console="))
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    Ok(no_redirects()
        .get(app.url("/console/subscriptions"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap())
}

async fn logout(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn app_portal_access_opens_the_console_until_logout_or_the_key_is_revoked() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let rx = TestReceiver::start().await;
    let operator = expect_json(
        app.client
            .post(app.url("/admin/operator-keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "portal"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let key = operator["api_key"].as_str().unwrap().to_string();

    // The body's application is created when the path names none.
    let access = expect_json(
        as_key(
            &app,
            &key,
            "/api/v1/auth/app-portal-access/shop-1",
            json!({"application": {"name": "Shop", "uid": "shop-1"}, "capabilities": ["ViewBase", "ViewEndpointSecret"]}),
        )
        .await,
        200,
    )
    .await;
    let token = access["token"].as_str().unwrap().to_string();
    let url = access["url"].as_str().unwrap().to_string();
    assert!(token.starts_with("hlp_"), "{access}");
    assert!(
        url.ends_with(&format!("/console/portal?token={token}")),
        "{access}"
    );
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/shop-1/endpoint",
            Some(json!({"url": rx.url("/shop"), "uid": "main"})),
        )
        .await,
        201,
    )
    .await;
    // Opens the application's console, read-only (capabilities without
    // ManageEndpoint and CreateAttempts).
    let page = open(&app, &url).await.unwrap();
    assert!(page.contains(&rx.url("/shop")), "the app's endpoint");
    assert!(page.contains("read-only"), "read-only badge");

    // Without capabilities: the full console; for 1 hour at least.
    let full = expect_json(
        as_key(
            &app,
            &key,
            "/api/v1/auth/app-portal-access/shop-1",
            json!({"expiry": 3600}),
        )
        .await,
        200,
    )
    .await;
    let page = open(&app, full["url"].as_str().unwrap()).await.unwrap();
    assert!(page.contains(&rx.url("/shop")) && !page.contains("read-only"));

    // What Svix refuses, in its 422 shape; an unknown app is a 404.
    for (body, field) in [
        (json!({"expiry": 60}), "expiry"),
        (json!({"expiry": 604_801}), "expiry"),
        (json!({"capabilities": ["ManageEndpoint"]}), "capabilities"),
        (
            json!({"capabilities": ["Everything"]}),
            "unknown variant `Everything`",
        ),
        (json!({"sessionId": "has space"}), "sessionId"),
        (json!({"featureFlags": []}), "featureFlags"),
    ] {
        let e = expect_json(
            as_key(
                &app,
                &key,
                "/api/v1/auth/app-portal-access/shop-1",
                body.clone(),
            )
            .await,
            422,
        )
        .await;
        assert!(e.to_string().contains(field), "{body}: {e}");
    }
    let e = expect_json(
        as_key(&app, &key, "/api/v1/auth/app-portal-access/nope", json!({})).await,
        404,
    )
    .await;
    assert_eq!(e["code"], "not_found");

    // The link's holder logs out: it opens nothing more.
    let res = logout(&app, &token).await;
    assert_eq!(res.status(), 204);
    assert_eq!(open(&app, &url).await, Err(410));
    assert_eq!(logout(&app, &token).await.status(), 204, "twice is once");
    // Other tokens cannot log out.
    for bad in [key.as_str(), ADMIN_TOKEN, "hlp_AAAA"] {
        let res = logout(&app, bad).await;
        assert_eq!(res.status(), 401, "{bad}");
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["code"], "authentication_failed", "{e}");
    }
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Revoking the operator key that made a link ends the link.
    let full_url = full["url"].as_str().unwrap();
    assert!(open(&app, full_url).await.is_ok());
    let revoked = app
        .client
        .delete(app.url(&format!(
            "/admin/operator-keys/{}",
            operator["id"].as_str().unwrap()
        )))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    assert_eq!(open(&app, full_url).await, Err(410));

    // The log: a 1.2 issue naming the operator key (never a token), the
    // logout's revocation by the link's holder.
    let events: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT event_type, event_version, payload::text, metadata::text FROM events
          WHERE aggregate_type = 'PortalLink' ORDER BY global_position",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let issued: Vec<_> = events
        .iter()
        .filter(|e| e.0 == "PortalLinkIssued")
        .collect();
    assert_eq!(issued.len(), 2);
    for e in &issued {
        assert_eq!(e.1, "1.2");
        assert!(e.2.contains(operator["id"].as_str().unwrap()), "{}", e.2);
        assert!(e.3.contains("operator_key:"), "{}", e.3);
    }
    let revocation = events.iter().find(|e| e.0 == "PortalLinkRevoked").unwrap();
    assert!(
        serde_json::from_str::<Value>(&revocation.3).unwrap()["actor"]
            .as_str()
            .unwrap()
            .starts_with("portal:"),
        "{}",
        revocation.3
    );
    for e in &events {
        assert!(!e.2.contains(&token[4..20]) && !e.3.contains(&token[4..20]));
    }
}

/// A link made with the admin token ends when the server's admin token
/// changes (a restart with another), as the console sessions signed in
/// with it do; a restart with the same token keeps it.
#[tokio::test]
async fn a_link_made_with_the_admin_token_ends_when_that_token_changes() {
    let app = TestApp::spawn().await;
    app.ready().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Sealed", "uid": "sealed"})),
        )
        .await,
        201,
    )
    .await;
    let access = expect_json(
        as_key(
            &app,
            ADMIN_TOKEN,
            "/api/v1/auth/app-portal-access/sealed",
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let url = access["url"].as_str().unwrap().to_string();
    let token = access["token"].as_str().unwrap().to_string();
    assert!(open(&app, &url).await.is_ok());

    // The log holds a seal of the token: neither the token nor its hash.
    let (version, payload): (String, String) = sqlx::query_as(
        "SELECT event_version, payload::text FROM events
          WHERE aggregate_type = 'PortalLink' AND event_type = 'PortalLinkIssued'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(version, "1.3");
    let seal = serde_json::from_str::<Value>(&payload).unwrap()["issued_with_admin_token"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{payload}"));
    let plain_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(ADMIN_TOKEN));
    assert_eq!(seal.len(), 64, "{payload}");
    assert!(
        seal != plain_hash && !payload.contains(ADMIN_TOKEN),
        "{payload}"
    );
    assert!(!payload.contains(&token[4..20]));

    let app = app.restart().await;
    app.ready().await;
    assert!(open(&app, &url).await.is_ok(), "same token: the link holds");

    let mut app = app;
    app.env
        .insert("HOOKLINE_ADMIN_TOKEN".into(), "another-admin-token".into());
    let app = app.restart().await;
    app.ready().await;
    assert_eq!(open(&app, &url).await, Err(410), "another token: ended");
}

#[tokio::test]
async fn an_endpoints_attempted_messages_each_once_with_their_latest_status() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let rx = TestReceiver::start().await;
    let other = TestReceiver::start().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Sent", "uid": "sent"})),
        )
        .await,
        201,
    )
    .await;
    for (uid, url) in [("main", rx.url("/m")), ("other", other.url("/o"))] {
        expect_json(
            svix(
                &app,
                Method::POST,
                "/api/v1/app/sent/endpoint",
                Some(json!({"url": url, "uid": uid})),
            )
            .await,
            201,
        )
        .await;
    }
    // The first message's answer asks to come back in an hour (a retry is
    // scheduled then); the others succeed.
    rx.script(vec![Reply::status(429).header("retry-after", "3600")]);
    let mut ids = vec![];
    for (i, (event_type, channel)) in [("a.one", "eu"), ("a.two", "us"), ("a.one", "us")]
        .iter()
        .enumerate()
    {
        if i == 1 {
            rx.wait_for(1, WAIT).await;
        }
        let msg = expect_json(
            svix(
                &app,
                Method::POST,
                "/api/v1/app/sent/msg",
                Some(json!({"eventType": event_type, "payload": {"n": i}, "channels": [channel]})),
            )
            .await,
            202,
        )
        .await;
        ids.push(msg["id"].as_str().unwrap().to_string());
    }
    rx.wait_for(3, WAIT).await;
    other.wait_for(3, WAIT).await;
    let path = "/api/v1/app/sent/endpoint/main/msg";
    // Newest first; the first message's delivery failed once: pending.
    let page = eventually("three messages listed", WAIT, || async {
        let page = expect_json(svix(&app, Method::GET, path, None).await, 200).await;
        let statuses: Vec<i64> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["status"].as_i64().unwrap())
            .collect();
        (statuses.len() == 3 && statuses[..2] == [0, 0]).then_some(page)
    })
    .await;
    let listed: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        vec![ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]
    );
    let first = &page["data"][2];
    assert_eq!(first["status"], 1, "{first}");
    assert_eq!(first["statusText"], "pending");
    assert!(first["nextAttempt"].is_string(), "{first}");
    assert_eq!(first["payload"], json!({"n": 0}));
    assert_eq!(first["eventType"], "a.one");
    assert_eq!(first["channels"], json!(["eu"]));
    assert!(first["tags"].is_null() && first["deliverAt"].is_null());

    // Filters: status, event types, channel; a page of one and the next.
    let q = |query: &str| format!("{path}?{query}");
    let ids_of = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    for (query, want) in [
        ("status=1", vec![ids[0].clone()]),
        ("status=0", vec![ids[2].clone(), ids[1].clone()]),
        ("status=3", vec![]),
        ("event_types=a.one", vec![ids[2].clone(), ids[0].clone()]),
        ("channel=us", vec![ids[2].clone(), ids[1].clone()]),
        ("channel=us&event_types=a.two", vec![ids[1].clone()]),
    ] {
        let page = expect_json(svix(&app, Method::GET, &q(query), None).await, 200).await;
        assert_eq!(ids_of(&page), want, "{query}");
    }
    let one = expect_json(svix(&app, Method::GET, &q("limit=1"), None).await, 200).await;
    assert_eq!(ids_of(&one), vec![ids[2].clone()]);
    assert_eq!(one["done"], false);
    let next = expect_json(
        svix(
            &app,
            Method::GET,
            &q(&format!(
                "limit=1&iterator={}",
                one["iterator"].as_str().unwrap()
            )),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ids_of(&next), vec![ids[1].clone()]);
    let back = expect_json(
        svix(
            &app,
            Method::GET,
            &q(&format!(
                "limit=5&iterator={}",
                next["prevIterator"].as_str().unwrap()
            )),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ids_of(&back), vec![ids[2].clone()]);
    // Without content: `{}` payloads.
    let bare = expect_json(
        svix(&app, Method::GET, &q("with_content=false"), None).await,
        200,
    )
    .await;
    assert_eq!(bare["data"][0]["payload"], json!({}));

    // A resend is the message's latest delivery: the pending message, sent
    // again and delivered, shows success; no message moves, so a walk of
    // the pages that started before the resends sees each one once.
    rx.default_reply(Reply::status(200));
    let first_page = expect_json(svix(&app, Method::GET, &q("limit=1"), None).await, 200).await;
    for id in [&ids[0], &ids[2]] {
        let res = svix(
            &app,
            Method::POST,
            &format!("/api/v1/app/sent/msg/{id}/endpoint/main/resend"),
            None,
        )
        .await;
        assert_eq!(res.status(), 202);
    }
    let page = eventually("the resend's success shown", WAIT, || async {
        let page = expect_json(svix(&app, Method::GET, path, None).await, 200).await;
        (page["data"][2]["status"] == 0).then_some(page)
    })
    .await;
    assert_eq!(
        ids_of(&page),
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    assert!(page["data"][2]["nextAttempt"].is_null(), "{page}");
    let mut walked = ids_of(&first_page);
    let mut iterator = first_page["iterator"].as_str().unwrap().to_string();
    loop {
        let next = expect_json(
            svix(
                &app,
                Method::GET,
                &q(&format!("limit=1&iterator={iterator}")),
                None,
            )
            .await,
            200,
        )
        .await;
        walked.extend(ids_of(&next));
        if next["done"] == true {
            break;
        }
        iterator = next["iterator"].as_str().unwrap().to_string();
    }
    assert_eq!(walked, vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]);

    // An endpoint made after the messages gets one only by resends: listed
    // once (however many), with the latest resend's status.
    let late_rx = TestReceiver::start().await;
    late_rx.script(vec![Reply::status(200)]);
    late_rx.default_reply(Reply::status(429).header("retry-after", "3600"));
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/sent/endpoint",
            Some(json!({"url": late_rx.url("/late"), "uid": "late"})),
        )
        .await,
        201,
    )
    .await;
    for sent in 1..=2 {
        let res = svix(
            &app,
            Method::POST,
            &format!("/api/v1/app/sent/msg/{}/endpoint/late/resend", ids[1]),
            None,
        )
        .await;
        assert_eq!(res.status(), 202);
        late_rx.wait_for(sent, WAIT).await;
    }
    let late = eventually("the second resend's status", WAIT, || async {
        let page = expect_json(
            svix(
                &app,
                Method::GET,
                "/api/v1/app/sent/endpoint/late/msg",
                None,
            )
            .await,
            200,
        )
        .await;
        (page["data"][0]["status"] == 1).then_some(page)
    })
    .await;
    assert_eq!(ids_of(&late), vec![ids[1].clone()], "{late}");

    // Refused: tags, an unknown status, an iterator of another endpoint's
    // message; another app's endpoint is not found.
    // `lone` goes to the other endpoint only: never to `main`.
    let lone = expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/sent/endpoint/other/send-example",
            Some(json!({"eventType": "svix.ping"})),
        )
        .await,
        200,
    )
    .await;
    for query in [
        "tag=x".to_string(),
        "status=9".to_string(),
        format!("iterator={}", lone["id"].as_str().unwrap()),
        "iterator=ep_nope".to_string(),
    ] {
        let e = expect_json(svix(&app, Method::GET, &q(&query), None).await, 422).await;
        assert!(e["detail"].is_array(), "{query}: {e}");
    }
    expect_json(
        svix(
            &app,
            Method::GET,
            "/api/v1/app/sent/endpoint/nope/msg",
            None,
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn an_example_message_goes_to_one_endpoint_only() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let rx = TestReceiver::start().await;
    let other = TestReceiver::start().await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Examples", "uid": "ex"})),
        )
        .await,
        201,
    )
    .await;
    for (uid, url, types) in [
        ("main", rx.url("/m"), json!(["nothing.matches"])),
        ("other", other.url("/o"), Value::Null),
    ] {
        expect_json(
            svix(
                &app,
                Method::POST,
                "/api/v1/app/ex/endpoint",
                Some(json!({"url": url, "uid": uid, "filterTypes": types})),
            )
            .await,
            201,
        )
        .await;
    }
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": "user.signup", "description": "A user signed up",
                "schemas": {"1": {"type": "object", "examples": [{"first": true}, {"second": true}]}}})),
        )
        .await,
        201,
    )
    .await;
    let send = |body: Value| {
        svix(
            &app,
            Method::POST,
            "/api/v1/app/ex/endpoint/main/send-example",
            Some(body),
        )
    };

    // The schema's examples, by index; Svix's ping; a built-in type's
    // example from the catalogue. Sent to `main` whatever its filter.
    let sent = expect_json(
        send(json!({"eventType": "user.signup", "exampleIndex": 1})).await,
        200,
    )
    .await;
    assert_eq!(sent["payload"], json!({"second": true}));
    assert_eq!(sent["eventType"], "user.signup");
    let first = expect_json(send(json!({"eventType": "user.signup"})).await, 200).await;
    let ping = expect_json(send(json!({"eventType": "svix.ping"})).await, 200).await;
    let builtin = expect_json(send(json!({"eventType": "invoice.created"})).await, 200).await;
    assert!(
        builtin["payload"]
            .as_object()
            .is_some_and(|o| !o.is_empty()),
        "{builtin}"
    );
    let got = rx.wait_for(4, WAIT).await;
    // Deliveries of different messages may arrive in any order: by id.
    let body_of = |id: &Value| {
        got.iter()
            .find(|r| r.header("svix-id") == id.as_str())
            .map(|r| r.json())
            .unwrap_or_else(|| panic!("no delivery of {id}"))
    };
    assert_eq!(body_of(&sent["id"]), json!({"second": true}));
    assert_eq!(body_of(&first["id"]), json!({"first": true}));
    assert_eq!(body_of(&ping["id"]), json!({"success": true}));
    assert_eq!(body_of(&builtin["id"]), builtin["payload"]);
    // An ordinary message, listed; no other endpoint got it.
    let listed = expect_json(
        svix(
            &app,
            Method::GET,
            &format!("/api/v1/app/ex/msg/{}", sent["id"].as_str().unwrap()),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(listed["payload"], json!({"second": true}));
    assert_eq!(other.count(), 0);

    // Refused: no type, an unknown one, an index past the examples, a type
    // without any example.
    let e = expect_json(send(json!({})).await, 422).await;
    assert!(e.to_string().contains("eventType"), "{e}");
    let e = expect_json(
        send(json!({"eventType": "user.signup", "exampleIndex": 2})).await,
        422,
    )
    .await;
    assert!(e.to_string().contains("exampleIndex"), "{e}");
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": "odd.examples", "description": "not objects",
                "schemas": {"1": {"examples": [42, [1, 2]]}}})),
        )
        .await,
        201,
    )
    .await;
    for index in [0, 1] {
        let e = expect_json(
            send(json!({"eventType": "odd.examples", "exampleIndex": index})).await,
            422,
        )
        .await;
        assert!(e.to_string().contains("not a JSON object"), "{e}");
    }
    let e = expect_json(send(json!({"eventType": "never.defined"})).await, 404).await;
    assert_eq!(e["code"], "not_found");
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": "bare.type", "description": "no examples"})),
        )
        .await,
        201,
    )
    .await;
    let e = expect_json(send(json!({"eventType": "bare.type"})).await, 400).await;
    assert_eq!(e["code"], "invalid_scheme");
    assert_eq!(rx.count(), 4, "nothing more was sent");
}
