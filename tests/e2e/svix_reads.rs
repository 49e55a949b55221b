//! The Svix-compatible API's endpoint headers, one attempt, a message's
//! destinations and an endpoint's statistics, against real receivers.

use crate::svix_api::{svix, svix_json};
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::{eventually, expect_json, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn get(app: &TestApp, path: &str) -> Value {
    expect_json(svix(app, Method::GET, path, None).await, 200).await
}

async fn no_content(app: &TestApp, method: Method, path: &str, body: Value) {
    let res = svix(app, method, path, Some(body)).await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn endpoint_headers_are_read_replaced_and_merged_and_sent() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let receiver = TestReceiver::start().await;
    svix_json(
        &app,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "Heads", "uid": "heads"})),
        201,
    )
    .await;
    svix_json(
        &app,
        Method::POST,
        "/api/v1/app/heads/endpoint",
        Some(json!({"url": receiver.url("/h"), "uid": "main", "headers": {"X-Made": "at-create"}})),
        201,
    )
    .await;
    let path = "/api/v1/app/heads/endpoint/main/headers";
    assert_eq!(
        get(&app, path).await,
        json!({"headers": {"X-Made": "at-create"}, "sensitive": []})
    );
    // PUT replaces them all; the sensitive ones are named, not shown.
    no_content(
        &app,
        Method::PUT,
        path,
        json!({"headers": {"X-Team": "billing", "Authorization": "Bearer very-secret-token"}}),
    )
    .await;
    assert_eq!(
        get(&app, path).await,
        json!({"headers": {"X-Team": "billing"}, "sensitive": ["Authorization"]})
    );
    // PATCH merges: a value sets (whatever the case), null removes.
    no_content(
        &app,
        Method::PATCH,
        path,
        json!({"headers": {"x-team": null, "X-Region": "eu"}}),
    )
    .await;
    assert_eq!(
        get(&app, path).await,
        json!({"headers": {"X-Region": "eu"}, "sensitive": ["Authorization"]})
    );
    // The message goes out with them, the sensitive one in full.
    let msg = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/heads/msg",
        Some(json!({"eventType": "a.b", "payload": {"n": 1}})),
        202,
    )
    .await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("x-region"), Some("eu"));
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer very-secret-token")
    );
    assert_eq!(got[0].header("x-team"), None);
    assert_eq!(got[0].header("svix-id"), msg["id"].as_str());
    // Concurrent patches apply one after the other: none is lost.
    let patches = (0..12).map(|i| {
        let app = &app;
        async move {
            svix(
                app,
                Method::PATCH,
                path,
                Some(json!({"headers": {format!("X-Par-{i}"): format!("v{i}")}})),
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(patches).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    let all = get(&app, path).await;
    for i in 0..12 {
        assert_eq!(
            all["headers"][format!("X-Par-{i}")],
            format!("v{i}"),
            "{all}"
        );
    }
    // A name twice (in two cases) is refused, as in PUT.
    let err = svix_json(
        &app,
        Method::PATCH,
        path,
        Some(json!({"headers": {"X-B": "upper", "x-b": "lower"}})),
        422,
    )
    .await;
    assert!(
        err["detail"][0]["msg"].as_str().unwrap().contains("twice"),
        "{err}"
    );
    let names: Vec<String> = (0..12).map(|i| format!("X-Par-{i}")).collect();
    no_content(
        &app,
        Method::PATCH,
        path,
        json!({"headers": {}, "deleteHeaders": names}),
    )
    .await;
    // Svix's current API removes with `deleteHeaders`.
    no_content(
        &app,
        Method::PATCH,
        path,
        json!({"headers": {}, "deleteHeaders": ["AUTHORIZATION"]}),
    )
    .await;
    assert_eq!(
        get(&app, path).await,
        json!({"headers": {"X-Region": "eu"}, "sensitive": []})
    );
    // Hookline's header rules hold here too, in Svix's error shape.
    let err = svix_json(
        &app,
        Method::PUT,
        path,
        Some(json!({"headers": {"Content-Type": "text/plain"}})),
        422,
    )
    .await;
    assert_eq!(
        err["detail"][0]["loc"],
        json!(["body", "headers", "Content-Type"]),
        "{err}"
    );
    let err = svix_json(
        &app,
        Method::PATCH,
        path,
        Some(json!({"deleteHeaders": []})),
        422,
    )
    .await;
    assert_eq!(err["detail"][0]["loc"], json!(["body"]), "{err}");
    // Unchanged headers write nothing: the subscription's history holds
    // the create and the changes only (two before, 12 patches, their
    // removal, the deletion below).
    no_content(
        &app,
        Method::PUT,
        path,
        json!({"headers": {"X-Region": "eu"}}),
    )
    .await;
    let ep = get(&app, "/api/v1/app/heads/endpoint/main").await;
    let sub = ep["id"].as_str().unwrap().strip_prefix("ep_").unwrap();
    let sub = uuid::Uuid::parse_str(sub).unwrap();
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Subscription' AND aggregate_id = $1 AND event_type = 'SubscriptionUpdated'",
    )
    .bind(sub.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(count, 16);
    // Someone else's endpoint, or none: 404.
    let err = svix_json(
        &app,
        Method::GET,
        "/api/v1/app/heads/endpoint/nobody/headers",
        None,
        404,
    )
    .await;
    assert_eq!(err["code"], "not_found");
}

#[tokio::test]
async fn a_messages_attempt_destinations_and_an_endpoints_stats() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let ok = TestReceiver::start().await;
    let refusing = TestReceiver::start().await;
    refusing.default_reply(Reply::status(400).body("no thanks"));
    svix_json(
        &app,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "Reads", "uid": "reads"})),
        201,
    )
    .await;
    let mut endpoints = vec![];
    for (uid, url) in [
        ("good", ok.url("/ok")),
        ("bad", refusing.url("/no")),
        ("off", ok.url("/off")),
    ] {
        let ep = svix_json(
            &app,
            Method::POST,
            "/api/v1/app/reads/endpoint",
            Some(json!({"url": url, "uid": uid, "disabled": uid == "off"})),
            201,
        )
        .await;
        endpoints.push(ep["id"].as_str().unwrap().to_string());
    }
    let msg = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/reads/msg",
        Some(json!({"eventType": "a.b", "eventId": "evt-1", "payload": {"n": 1}})),
        202,
    )
    .await;
    let msg_id = msg["id"].as_str().unwrap();
    ok.wait_for(1, WAIT).await;
    refusing.wait_for(1, WAIT).await;

    // One attempt, by its id, with the answer's body.
    let attempts = eventually("both attempts listed", WAIT, || async {
        let page = get(&app, &format!("/api/v1/app/reads/attempt/msg/{msg_id}")).await;
        (page["data"].as_array().unwrap().len() == 2).then_some(page)
    })
    .await;
    let failed = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["status"] == 2)
        .unwrap();
    let one = get(
        &app,
        &format!(
            "/api/v1/app/reads/msg/evt-1/attempt/{}",
            failed["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(one["id"], failed["id"]);
    assert_eq!(one["response"], "no thanks");
    assert_eq!(one["responseStatusCode"], 400);
    assert_eq!(one["endpointId"], endpoints[1].as_str());
    // Not an attempt of that message, or not an attempt id: 404.
    let other = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/reads/msg",
        Some(json!({"eventType": "c.d", "payload": {}})),
        202,
    )
    .await;
    for path in [
        format!(
            "/api/v1/app/reads/msg/{}/attempt/{}",
            other["id"].as_str().unwrap(),
            failed["id"].as_str().unwrap()
        ),
        format!("/api/v1/app/reads/msg/{msg_id}/attempt/atmpt_nope"),
        format!(
            "/api/v1/app/reads/msg/{msg_id}/attempt/{}",
            uuid::Uuid::now_v7()
        ),
    ] {
        let err = svix_json(&app, Method::GET, &path, None, 404).await;
        assert_eq!(err["code"], "not_found", "{path}");
    }

    // Where the message went: each endpoint once, by id, with its status.
    let mut sorted = endpoints.clone();
    sorted.sort();
    let status_of = |id: &str| match id {
        x if x == endpoints[0] => (0, "success"),
        x if x == endpoints[1] => (2, "fail"),
        _ => (4, "canceled"),
    };
    let all = get(&app, &format!("/api/v1/app/reads/msg/{msg_id}/endpoint")).await;
    assert_eq!(all["done"], true);
    let listed: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, sorted);
    for d in all["data"].as_array().unwrap() {
        let (status, text) = status_of(d["id"].as_str().unwrap());
        assert_eq!(d["status"], status, "{d}");
        assert_eq!(d["statusText"], text, "{d}");
        assert_eq!(d["nextAttempt"], Value::Null, "{d}");
    }
    assert_eq!(
        all["data"][sorted.iter().position(|e| *e == endpoints[2]).unwrap()]["disabled"],
        true
    );
    // A page at a time, forwards and back.
    let first = get(
        &app,
        &format!("/api/v1/app/reads/msg/{msg_id}/endpoint?limit=2"),
    )
    .await;
    assert_eq!(first["done"], false);
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let rest = get(
        &app,
        &format!(
            "/api/v1/app/reads/msg/{msg_id}/endpoint?limit=2&iterator={}",
            first["iterator"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(rest["done"], true);
    assert_eq!(rest["data"][0]["id"], sorted[2].as_str());
    let back = get(
        &app,
        &format!(
            "/api/v1/app/reads/msg/{msg_id}/endpoint?limit=2&iterator={}",
            rest["prevIterator"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(back["data"], first["data"]);
    let err = svix_json(
        &app,
        Method::GET,
        &format!("/api/v1/app/reads/msg/{msg_id}/endpoint?iterator=msg_x"),
        None,
        422,
    )
    .await;
    assert_eq!(err["detail"][0]["loc"], json!(["query", "iterator"]));
    // An endpoint id the message did not go to is no iterator of this
    // list either.
    let err = svix_json(
        &app,
        Method::GET,
        &format!(
            "/api/v1/app/reads/msg/{msg_id}/endpoint?iterator=ep_0190b2a400007000800000000000000a"
        ),
        None,
        422,
    )
    .await;
    assert_eq!(
        err["detail"][0]["loc"],
        json!(["query", "iterator"]),
        "{err}"
    );

    // A resend is a later delivery of the message: found by the message
    // too (flagged, not by its creation time), its attempt listed, and
    // the endpoint's status is its latest delivery's.
    let res = svix(
        &app,
        Method::POST,
        &format!("/api/v1/app/reads/msg/{msg_id}/endpoint/good/resend"),
        None,
    )
    .await;
    assert_eq!(res.status(), 202);
    ok.wait_for(3, WAIT).await;
    eventually("the resend's attempt listed", WAIT, || async {
        let page = get(&app, &format!("/api/v1/app/reads/attempt/msg/{msg_id}")).await;
        let data = page["data"].as_array().unwrap().clone();
        (data.len() == 3 && data.iter().any(|a| a["triggerType"] == 1)).then_some(())
    })
    .await;
    let again = get(&app, &format!("/api/v1/app/reads/msg/{msg_id}/endpoint")).await;
    assert_eq!(again["data"].as_array().unwrap().len(), 3, "{again}");
    let resent: Vec<(uuid::Uuid, bool)> = sqlx::query_as(
        "SELECT id, resent FROM deliveries_view WHERE event_id = $1 ORDER BY created_at",
    )
    .bind(uuid::Uuid::parse_str(msg_id.strip_prefix("msg_").unwrap()).unwrap())
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        resent.iter().map(|r| r.1).collect::<Vec<_>>(),
        [false, false, false, true]
    );
    // The migration flags resends made before it (from the log).
    sqlx::query("UPDATE deliveries_view SET resent = false")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let migration = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../infrastructure/migrations/20261220000020_deliveries_by_message.sql"),
    )
    .unwrap();
    let backfill = migration
        .split(';')
        .find(|s| s.contains("UPDATE deliveries_view"))
        .unwrap();
    sqlx::query(backfill).execute(&app.db.pool).await.unwrap();
    let flagged: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM deliveries_view WHERE resent")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(flagged, [resent[3].0]);

    // Statistics over the last 28 days, and refused windows.
    let stats = |uid: &'static str| {
        let app = &app;
        async move { get(app, &format!("/api/v1/app/reads/endpoint/{uid}/stats")).await }
    };
    // Both messages went to each endpoint (no filters): wait for the
    // second one's outcomes.
    for (uid, want) in [
        (
            "good",
            json!({"success": 3, "pending": 0, "sending": 0, "fail": 0, "canceled": 0}),
        ),
        (
            "bad",
            json!({"success": 0, "pending": 0, "sending": 0, "fail": 2, "canceled": 0}),
        ),
        (
            "off",
            json!({"success": 0, "pending": 0, "sending": 0, "fail": 0, "canceled": 2}),
        ),
    ] {
        let want = &want;
        let last = std::sync::Mutex::new(Value::Null);
        let last = &last;
        let got = tokio::time::timeout(WAIT, async {
            loop {
                let now = stats(uid).await;
                if now == *want {
                    return;
                }
                *last.lock().unwrap() = now;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(got.is_ok(), "the stats of {uid}: {}", last.lock().unwrap());
    }
    let long_ago = chrono::Utc::now() - chrono::Duration::days(1);
    let err = svix_json(
        &app,
        Method::GET,
        &format!(
            "/api/v1/app/reads/endpoint/good/stats?until={}",
            urlencoding(&(chrono::Utc::now() + chrono::Duration::hours(1)))
        ),
        None,
        400,
    )
    .await;
    assert_eq!(err["code"], "invalid_range");
    let err = svix_json(
        &app,
        Method::GET,
        "/api/v1/app/reads/endpoint/good/stats?since=2020-01-01T00:00:00Z",
        None,
        400,
    )
    .await;
    assert_eq!(err["code"], "invalid_range");
    let yesterday = get(
        &app,
        &format!(
            "/api/v1/app/reads/endpoint/good/stats?since={}&until={}",
            urlencoding(&(chrono::Utc::now() - chrono::Duration::days(2))),
            urlencoding(&long_ago)
        ),
    )
    .await;
    assert_eq!(
        yesterday,
        json!({"success": 0, "pending": 0, "sending": 0, "fail": 0, "canceled": 0})
    );
}

/// A time as the query takes it unencoded (`Z`, no `+`).
fn urlencoding(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What a Svix SDK sends is applied or refused, never dropped: `tag` on
/// attempt lists and `exclude_apps_with_no_endpoints` are refused,
/// `with_msg` and the event types' `order` are applied, a raw payload's
/// content type other than JSON is refused; a PUT of an endpoint is the
/// whole endpoint (its uid too); un-archiving an event type keeps its
/// creation time; schema errors are located in `schemas`.
#[tokio::test]
async fn what_the_sdks_send_is_applied_or_refused() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let receiver = TestReceiver::start().await;
    svix_json(
        &app,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "Sdk", "uid": "sdk"})),
        201,
    )
    .await;
    let ep = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/sdk/endpoint",
        Some(json!({"url": receiver.url("/x"), "uid": "named"})),
        201,
    )
    .await;
    let ep_id = ep["id"].as_str().unwrap();
    let msg = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/sdk/msg",
        Some(json!({"eventType": "a.b", "payload": {"k": "v"}})),
        202,
    )
    .await;
    receiver.wait_for(1, WAIT).await;
    let by_ep = format!("/api/v1/app/sdk/attempt/endpoint/{ep_id}");
    let page = eventually("the attempt listed", WAIT, || async {
        let page = get(&app, &format!("{by_ep}?with_msg=true&with_content=true")).await;
        (page["data"].as_array().unwrap().len() == 1).then_some(page)
    })
    .await;
    assert_eq!(page["data"][0]["msg"]["id"], msg["id"]);
    assert_eq!(page["data"][0]["msg"]["payload"], json!({"k": "v"}));
    let plain = get(&app, &by_ep).await;
    assert!(plain["data"][0].get("msg").is_none(), "{plain}");
    for path in [
        format!("{by_ep}?tag=x"),
        format!(
            "/api/v1/app/sdk/attempt/msg/{}?tag=x",
            msg["id"].as_str().unwrap()
        ),
        "/api/v1/app?exclude_apps_with_no_endpoints=true".to_string(),
    ] {
        let err = svix_json(&app, Method::GET, &path, None, 422).await;
        assert_eq!(err["detail"][0]["loc"][0], "query", "{path}: {err}");
    }
    // An attempt is an iterator only of the lists that hold it: not of
    // another endpoint's attempts, nor of another message's.
    let other = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/sdk/endpoint",
        Some(json!({"url": receiver.url("/y")})),
        201,
    )
    .await;
    let second = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/sdk/msg",
        Some(json!({"eventType": "a.b", "payload": {"n": 2}})),
        202,
    )
    .await;
    receiver.wait_for(3, WAIT).await;
    let by_other = format!(
        "/api/v1/app/sdk/attempt/endpoint/{}",
        other["id"].as_str().unwrap()
    );
    let theirs = eventually("the other endpoint's attempt listed", WAIT, || async {
        let page = get(&app, &by_other).await;
        page["data"][0]["id"].as_str().map(str::to_string)
    })
    .await;
    for path in [
        format!("{by_ep}?iterator={theirs}"),
        format!(
            "/api/v1/app/sdk/attempt/msg/{}?iterator={theirs}",
            msg["id"].as_str().unwrap()
        ),
    ] {
        let err = svix_json(&app, Method::GET, &path, None, 422).await;
        assert_eq!(
            err["detail"][0]["loc"],
            json!(["query", "iterator"]),
            "{path}: {err}"
        );
    }
    // In its own lists it pages on.
    for path in [
        format!("{by_other}?iterator={theirs}"),
        format!(
            "/api/v1/app/sdk/attempt/msg/{}?iterator={theirs}",
            second["id"].as_str().unwrap()
        ),
    ] {
        let page = get(&app, &path).await;
        assert!(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["id"].as_str() != Some(theirs.as_str())),
            "{path}: {page}"
        );
    }
    // A raw payload's content type: JSON only.
    let raw = |content_type: &str| {
        json!({"eventType": "a.b", "payload": {}, "transformationsParams": {
            "rawPayload": "{\"raw\": true}", "headers": {"content-type": content_type}}})
    };
    let err = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/sdk/msg",
        Some(raw("application/vnd.custom+json")),
        422,
    )
    .await;
    assert_eq!(
        err["detail"][0]["loc"],
        json!(["body", "transformationsParams", "headers"])
    );
    for json_type in ["application/json", "application/json; charset=utf-8"] {
        svix_json(
            &app,
            Method::POST,
            "/api/v1/app/sdk/msg",
            Some(raw(json_type)),
            202,
        )
        .await;
    }
    // PUT is the whole endpoint: addressed by id, without a uid it has
    // none; addressed by its uid, it keeps it.
    let put = svix_json(
        &app,
        Method::PUT,
        "/api/v1/app/sdk/endpoint/named",
        Some(json!({"url": receiver.url("/y")})),
        200,
    )
    .await;
    assert_eq!(put["uid"], "named");
    let put = svix_json(
        &app,
        Method::PUT,
        &format!("/api/v1/app/sdk/endpoint/{ep_id}"),
        Some(json!({"url": receiver.url("/y")})),
        200,
    )
    .await;
    assert_eq!(put["uid"], Value::Null, "{put}");
    // Event types: descending order, un-archiving keeps createdAt, schema
    // errors located in `schemas`.
    for name in ["zz.one", "zz.two"] {
        svix_json(
            &app,
            Method::POST,
            "/api/v1/event-type",
            Some(json!({"name": name, "description": "d"})),
            201,
        )
        .await;
    }
    let names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let desc = get(&app, "/api/v1/event-type?order=descending&limit=1").await;
    assert_eq!(names(&desc), ["zz.two"]);
    let next = get(
        &app,
        &format!(
            "/api/v1/event-type?order=descending&limit=1&iterator={}",
            desc["iterator"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(names(&next), ["zz.one"]);
    let asc = get(&app, "/api/v1/event-type?limit=250").await;
    let all = names(&asc);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    let created = get(&app, "/api/v1/event-type/zz.one").await["createdAt"].clone();
    let res = svix(&app, Method::DELETE, "/api/v1/event-type/zz.one", None).await;
    assert_eq!(res.status(), 204);
    let back = svix_json(
        &app,
        Method::PATCH,
        "/api/v1/event-type/zz.one",
        Some(json!({"archived": false})),
        200,
    )
    .await;
    assert_eq!(back["archived"], false);
    assert_eq!(back["createdAt"], created);
    assert_ne!(back["updatedAt"], created);
    let err = svix_json(
        &app,
        Method::PATCH,
        "/api/v1/event-type/zz.two",
        Some(json!({"schemas": {"1": {"type": 12}}})),
        422,
    )
    .await;
    assert_eq!(err["detail"][0]["loc"][1], "schemas", "{err}");
    assert_eq!(err["detail"][0]["loc"][2], "1", "{err}");
    // Located at the version the request gave (the newest, which is kept).
    let err = svix_json(
        &app,
        Method::PATCH,
        "/api/v1/event-type/zz.two",
        Some(json!({"schemas": {"2": {"type": "object"}, "7": {"type": "nope"}}})),
        422,
    )
    .await;
    assert_eq!(
        err["detail"][0]["loc"],
        json!(["body", "schemas", "7", "type"]),
        "{err}"
    );
    // An unknown route here points at this API's document.
    let err = svix_json(&app, Method::GET, "/api/v1/nothing/here", None, 404).await;
    assert!(
        err["detail"]
            .as_str()
            .unwrap()
            .contains("svix-compatibility.md"),
        "{err}"
    );
}

/// As Svix's server does, `after` alone pages forwards in time from it: the
/// oldest messages after it first (each page newest first), the newer
/// ones through `prevIterator`, so a client syncing from where it stopped
/// misses none. With `before` as well, or alone, pages run newest first.
#[tokio::test]
async fn after_alone_pages_forwards_in_time() {
    let app = TestApp::spawn().await;
    svix_json(
        &app,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "Sync", "uid": "sync"})),
        201,
    )
    .await;
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(1);
    let mut sent = Vec::new();
    for i in 0..7 {
        let m = svix_json(
            &app,
            Method::POST,
            "/api/v1/app/sync/msg",
            Some(json!({"eventType": "a.b", "payload": {"i": i}})),
            202,
        )
        .await;
        sent.push(m["id"].as_str().unwrap().to_string());
    }
    let after = t0
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .replace('+', "%2B");
    let ids = |page: &Value| -> Vec<String> { hookline_tests::strings(&page["data"], "id") };
    let mut page = get(&app, &format!("/api/v1/app/sync/msg?after={after}&limit=3")).await;
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let mut got = ids(&page);
        // Each page newest first.
        got.reverse();
        seen.extend(got);
        pages += 1;
        assert!(pages <= 3, "{page}");
        if page["done"] == true {
            break;
        }
        page = get(
            &app,
            &format!(
                "/api/v1/app/sync/msg?limit=3&iterator={}",
                page["prevIterator"].as_str().unwrap()
            ),
        )
        .await;
    }
    assert_eq!(seen, sent, "oldest first across pages, none missed");
    // The first page held the oldest three.
    let first = get(&app, &format!("/api/v1/app/sync/msg?after={after}&limit=3")).await;
    assert_eq!(
        ids(&first),
        [sent[2].clone(), sent[1].clone(), sent[0].clone()]
    );
    assert_eq!(first["done"], false);
    // `before` too: newest first, as without either.
    let before = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .replace('+', "%2B");
    let both = get(
        &app,
        &format!("/api/v1/app/sync/msg?after={after}&before={before}&limit=3"),
    )
    .await;
    assert_eq!(
        ids(&both),
        [sent[6].clone(), sent[5].clone(), sent[4].clone()]
    );
    // A message lists at most 5 channels, as Svix allows.
    let six: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    let err = svix_json(
        &app,
        Method::POST,
        "/api/v1/app/sync/msg",
        Some(json!({"eventType": "a.b", "payload": {}, "channels": six})),
        422,
    )
    .await;
    assert_eq!(
        err["detail"][0]["loc"],
        json!(["body", "channels"]),
        "{err}"
    );
}

/// A PUT replaces an event type, as Svix's server does: a schema or group
/// it leaves out is gone (a create's defaults), not kept and still checked.
#[tokio::test]
async fn putting_an_event_type_replaces_what_it_leaves_out() {
    let app = TestApp::spawn().await;
    svix_json(
        &app,
        Method::POST,
        "/api/v1/event-type",
        Some(
            json!({"name": "order.placed", "description": "d", "groupName": "Sales",
                        "deprecated": true,
                        "schemas": {"1": {"type": "object", "required": ["a"]}}}),
        ),
        201,
    )
    .await;
    svix_json(
        &app,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "Shop", "uid": "shop"})),
        201,
    )
    .await;
    let refused = svix(
        &app,
        Method::POST,
        "/api/v1/app/shop/msg",
        Some(json!({"eventType": "order.placed", "payload": {"b": 1}})),
    )
    .await;
    assert_eq!(refused.status(), 422);
    let put = svix_json(
        &app,
        Method::PUT,
        "/api/v1/event-type/order.placed",
        Some(json!({"description": "replaced"})),
        200,
    )
    .await;
    assert_eq!(put["description"], "replaced");
    assert_eq!(put["deprecated"], false);
    assert_eq!(put["schemas"], Value::Null, "{put}");
    assert_eq!(put["groupName"], "order", "{put}");
    // Payloads are no longer checked against the schema that was left out.
    svix_json(
        &app,
        Method::POST,
        "/api/v1/app/shop/msg",
        Some(json!({"eventType": "order.placed", "payload": {"b": 1}})),
        202,
    )
    .await;
    // A description left out is gone too.
    let bare = svix_json(
        &app,
        Method::PUT,
        "/api/v1/event-type/order.placed",
        Some(json!({})),
        200,
    )
    .await;
    assert_eq!(bare["description"], "", "{bare}");
    svix_json(
        &app,
        Method::PUT,
        "/api/v1/event-type/order.placed",
        Some(json!({"description": "replaced"})),
        200,
    )
    .await;
    // The same PUT again changes nothing, and writes nothing.
    let events = |app: &TestApp| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events WHERE aggregate_type = 'EventType'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let before = events(&app).await;
    let again = svix_json(
        &app,
        Method::PUT,
        "/api/v1/event-type/order.placed",
        Some(json!({"description": "replaced"})),
        200,
    )
    .await;
    assert_eq!(again["schemas"], Value::Null);
    assert_eq!(events(&app).await, before);
}
