//! The subscriptions API, endpoint by endpoint.

use hookline_tests::{events_of, expect_json, TestApp};
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<String> {
    hookline_tests::strings(&page["data"], "id")
}

#[tokio::test]
async fn create_returns_the_full_record_and_the_secret_once() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let created = app
        .subscribe(
            &t,
            json!({
                "url": "https://example.com/hooks",
                "events": ["invoice.created", "payment.*"],
                "headers": {"X-Team": "billing"},
                "description": "invoices to the ERP",
                "signature_scheme": "hmac-sha256-hex"
            }),
        )
        .await;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        secret.len(),
        "whsec_".len() + 32,
        "24 random bytes in base64"
    );
    assert_eq!(created["url"], "https://example.com/hooks");
    let mut events: Vec<String> = serde_json::from_value(created["events"].clone()).unwrap();
    events.sort();
    assert_eq!(events, vec!["invoice.created", "payment.*"]);
    assert_eq!(created["headers"], json!({"X-Team": "billing"}));
    assert_eq!(created["description"], "invoices to the ERP");
    assert_eq!(created["signature_scheme"], "hmac-sha256-hex");
    assert_eq!(created["status"], "active");
    assert_eq!(created["tenant_id"], t.id);
    assert!(created["created_at"].is_string());

    // Afterwards the secret is masked.
    let id = created["id"].as_str().unwrap();
    let read = expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
    let masked = read["secret"].as_str().unwrap();
    assert_eq!(masked, format!("whsec_…{}", &secret[secret.len() - 4..]));
    let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert_eq!(list["data"][0]["secret"], masked);
}

#[tokio::test]
async fn a_client_secret_and_the_seed_single_event_form_are_accepted() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let created = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "event": "invoice.created", "secret": "my-webhook-secret"}),
        )
        .await;
    assert_eq!(created["secret"], "my-webhook-secret");
    assert_eq!(created["events"], json!(["invoice.created"]));
    assert_eq!(created["signature_scheme"], "standard-webhooks");
}

#[tokio::test]
async fn a_duplicate_active_subscription_conflicts() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let first = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b", "c.*"]}),
        )
        .await;
    // Same URL and the same set of events, in another order: 409.
    let dup = app
        .post(
            &t,
            "/v1/subscriptions",
            json!({"url": "https://example.com/a", "events": ["c.*", "a.b", "a.b"]}),
        )
        .await;
    let body = expect_json(dup, 409).await;
    assert_eq!(body["code"], "duplicate_subscription");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains(first["id"].as_str().unwrap()));
    // Another event set, or another tenant, is fine.
    app.subscribe(
        &t,
        json!({"url": "https://example.com/a", "events": ["a.b"]}),
    )
    .await;
    let other = app.tenant("other").await;
    app.subscribe(
        &other,
        json!({"url": "https://example.com/a", "events": ["a.b", "c.*"]}),
    )
    .await;
    // Once deleted, the same subscription may be created again.
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&t, &format!("/v1/subscriptions/{id}"))
            .await
            .status(),
        204
    );
    app.subscribe(
        &t,
        json!({"url": "https://example.com/a", "events": ["a.b", "c.*"]}),
    )
    .await;
}

#[tokio::test]
async fn lists_are_newest_first_filtered_and_paginated() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let mut created = Vec::new();
    for (i, events) in [
        json!(["invoice.created"]),
        json!(["invoice.*"]),
        json!(["payment.received"]),
        json!(["*"]),
        json!(["customer.updated", "invoice.sent"]),
    ]
    .into_iter()
    .enumerate()
    {
        let s = app
            .subscribe(
                &t,
                json!({"url": format!("https://example.com/{i}"), "events": events}),
            )
            .await;
        created.push(s["id"].as_str().unwrap().to_string());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    let all = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert_eq!(ids(&all), newest_first);
    assert!(all.get("next_cursor").is_none());

    // ?event= matches exact names and wildcards.
    let inv = expect_json(
        app.get(&t, "/v1/subscriptions?event=invoice.created").await,
        200,
    )
    .await;
    assert_eq!(
        ids(&inv),
        vec![created[3].clone(), created[1].clone(), created[0].clone()]
    );
    let pay = expect_json(
        app.get(&t, "/v1/subscriptions?event=payment.received")
            .await,
        200,
    )
    .await;
    assert_eq!(ids(&pay), vec![created[3].clone(), created[2].clone()]);
    let none = expect_json(app.get(&t, "/v1/subscriptions?event=stock.low").await, 200).await;
    assert_eq!(ids(&none), vec![created[3].clone()]);

    // Pages of two, following next_cursor.
    let mut seen = Vec::new();
    let mut path = "/v1/subscriptions?limit=2".to_string();
    loop {
        let page = expect_json(app.get(&t, &path).await, 200).await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids);
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/subscriptions?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=garbage",
        "event=Bad",
        "include_inactive=maybe",
        "unknown=1",
    ] {
        let body = expect_json(app.get(&t, &format!("/v1/subscriptions?{bad}")).await, 400).await;
        assert!(body["detail"].is_string(), "{bad}");
    }
}

#[tokio::test]
async fn delete_is_soft() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let path = format!("/v1/subscriptions/{id}");
    let res = app.delete(&t, &path).await;
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());

    let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert!(ids(&list).is_empty());
    let list = expect_json(
        app.get(&t, "/v1/subscriptions?include_inactive=true").await,
        200,
    )
    .await;
    assert_eq!(ids(&list), vec![id.to_string()]);
    assert_eq!(list["data"][0]["status"], "deleted");

    expect_json(app.get(&t, &path).await, 404).await;
    let read = expect_json(
        app.get(&t, &format!("{path}?include_inactive=true")).await,
        200,
    )
    .await;
    assert_eq!(read["status"], "deleted");

    // A deleted subscription cannot be changed or deleted again.
    let again = expect_json(app.delete(&t, &path).await, 409).await;
    assert_eq!(again["code"], "subscription_deleted");
    let patch = expect_json(app.patch(&t, &path, json!({"description": "x"})).await, 409).await;
    assert_eq!(patch["code"], "subscription_deleted");
    expect_json(
        app.post(&t, &format!("{path}/rotate-secret"), json!({}))
            .await,
        409,
    )
    .await;

    let history = expect_json(app.get(&t, &format!("{path}/history")).await, 200).await;
    let types: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["Subscribed", "Unsubscribed"]);
}

#[tokio::test]
async fn patch_changes_each_field() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(&t, json!({"url": "https://example.com/a", "events": ["a.b"], "description": "old", "headers": {"X-A": "1"}}))
        .await;
    let path = format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());

    let updated = expect_json(
        app.patch(&t, &path, json!({"url": "https://example.org/new", "events": ["c.*"], "signature_scheme": "hmac-sha256-base64"})).await,
        200,
    )
    .await;
    assert_eq!(updated["url"], "https://example.org/new");
    assert_eq!(updated["events"], json!(["c.*"]));
    assert_eq!(updated["signature_scheme"], "hmac-sha256-base64");
    assert_eq!(updated["description"], "old");
    assert_eq!(updated["headers"], json!({"X-A": "1"}));
    assert!(updated["secret"].as_str().unwrap().starts_with("whsec_…"));

    let cleared = expect_json(
        app.patch(
            &t,
            &path,
            json!({"description": null, "headers": {"X-B": "2"}}),
        )
        .await,
        200,
    )
    .await;
    assert!(cleared["description"].is_null());
    assert_eq!(cleared["headers"], json!({"X-B": "2"}));
    let no_headers = expect_json(app.patch(&t, &path, json!({"headers": null})).await, 200).await;
    assert_eq!(no_headers["headers"], json!({}));

    // The list (a projection) shows the change right away.
    let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert_eq!(list["data"][0]["url"], "https://example.org/new");

    let empty = expect_json(app.patch(&t, &path, json!({})).await, 400).await;
    assert!(empty["detail"].as_str().unwrap().contains("at least one"));
    let secret = expect_json(
        app.patch(&t, &path, json!({"secret": "abcdefghij"})).await,
        400,
    )
    .await;
    assert!(secret["detail"].as_str().unwrap().contains("rotate-secret"));
    let unknown = expect_json(app.patch(&t, &path, json!({"colour": "red"})).await, 400).await;
    assert!(unknown["detail"].as_str().unwrap().contains("colour"));
    let bad = expect_json(
        app.patch(&t, &path, json!({"url": "http://example.org/x"}))
            .await,
        400,
    )
    .await;
    assert!(bad["detail"].as_str().unwrap().starts_with("url:"));

    // An update that would duplicate another active subscription conflicts.
    app.subscribe(
        &t,
        json!({"url": "https://example.com/other", "events": ["x.y"]}),
    )
    .await;
    let dup = expect_json(
        app.patch(
            &t,
            &path,
            json!({"url": "https://example.com/other", "events": ["x.y"]}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(dup["code"], "duplicate_subscription");

    let history = expect_json(app.get(&t, &format!("{path}/history")).await, 200).await;
    let data = history["data"].as_array().unwrap();
    let types: Vec<&str> = data
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "Subscribed",
            "SubscriptionUpdated",
            "SubscriptionUpdated",
            "SubscriptionUpdated"
        ]
    );
    // Updates record only what changed.
    assert_eq!(data[1]["payload"]["url"], "https://example.org/new");
    assert!(data[1]["payload"].get("description").is_none());
    assert!(data[2]["payload"]["description"].is_null());
}

#[tokio::test]
async fn rotate_secret_returns_the_new_secret_once_and_keeps_the_old_for_the_overlap() {
    let app = TestApp::spawn_with(|env| {
        env.insert(
            "HOOKLINE_SECRET_ROTATION_OVERLAP_SECONDS".into(),
            "3600".into(),
        );
    })
    .await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let path = format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());
    let old = s["secret"].as_str().unwrap().to_string();

    let before = chrono::Utc::now();
    let rotated = expect_json(
        app.post(&t, &format!("{path}/rotate-secret"), json!({}))
            .await,
        200,
    )
    .await;
    let new = rotated["secret"].as_str().unwrap();
    assert!(new.starts_with("whsec_") && new.len() == 38);
    assert_ne!(new, old);
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(rotated["previous_secret_expires_at"].clone()).unwrap();
    let overlap = expires - before;
    assert!(
        overlap > chrono::Duration::minutes(59) && overlap <= chrono::Duration::minutes(61),
        "{overlap}"
    );

    let read = expect_json(app.get(&t, &path).await, 200).await;
    assert_eq!(read["secret"], format!("whsec_…{}", &new[new.len() - 4..]));
    assert_eq!(
        read["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );

    // A secret of the client's choosing; the body may also be empty.
    let chosen = expect_json(
        app.post(
            &t,
            &format!("{path}/rotate-secret"),
            json!({"secret": "chosen-secret-123"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(chosen["secret"], "chosen-secret-123");
    let short = expect_json(
        app.post(
            &t,
            &format!("{path}/rotate-secret"),
            json!({"secret": "short"}),
        )
        .await,
        400,
    )
    .await;
    assert!(short["detail"].as_str().unwrap().starts_with("secret:"));
    let res = app
        .client
        .post(app.url(&format!("{path}/rotate-secret")))
        .bearer_auth(&t.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let history = expect_json(app.get(&t, &format!("{path}/history")).await, 200).await;
    let text = history.to_string();
    assert!(!text.contains(&old[6..]), "history leaks a secret");
    assert!(!text.contains(&new[6..]), "history leaks a secret");
    assert!(!text.contains("chosen-secret-123"));
    let rotations = events_of(&history, "SecretRotated");
    assert_eq!(rotations.len(), 3);
    assert_eq!(rotations[0]["payload"]["secret"], "[sealed]");
}

#[tokio::test]
async fn disable_and_enable() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let path = format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());
    let disabled = expect_json(
        app.post(
            &t,
            &format!("{path}/disable"),
            json!({"reason": "maintenance"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["disabled_reason"], "maintenance");
    // Disabled subscriptions are inactive: not listed by default, but readable.
    let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert!(ids(&list).is_empty());
    expect_json(app.get(&t, &path).await, 200).await;
    let enabled = expect_json(
        app.post(&t, &format!("{path}/enable"), json!({})).await,
        200,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert!(enabled.get("disabled_reason").is_none());
    let history = expect_json(app.get(&t, &format!("{path}/history")).await, 200).await;
    let types: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["Subscribed", "SubscriptionDisabled", "SubscriptionEnabled"]
    );
}

#[tokio::test]
async fn history_lists_events_with_versions_positions_and_metadata() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let path = format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());
    expect_json(app.patch(&t, &path, json!({"description": "d"})).await, 200).await;
    let history = expect_json(app.get(&t, &format!("{path}/history")).await, 200).await;
    let data = history["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (i, e) in data.iter().enumerate() {
        assert_eq!(e["sequence"], i as i64 + 1);
        assert_eq!(e["event_version"], "1.0");
        assert!(e["position"].as_i64().unwrap() > 0);
        assert!(e["recorded_at"].is_string());
        assert_eq!(e["metadata"]["tenant_id"], t.id);
        assert!(e["metadata"]["actor"]
            .as_str()
            .unwrap()
            .starts_with("api_key:"));
        assert!(e["metadata"]["request_id"].is_string());
        assert!(e["metadata"]["occurred_at"].is_string());
    }
    assert!(data[0]["position"].as_i64() < data[1]["position"].as_i64());
    assert_eq!(data[0]["payload"]["type"], "Subscribed");
    assert_eq!(data[0]["payload"]["secret"], "[sealed]");
}

#[tokio::test]
async fn concurrent_updates_of_one_subscription_all_land() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let path = format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());
    let calls = (0..8).map(|i| {
        let app = &app;
        let t = &t;
        let path = &path;
        async move {
            app.patch(t, path, json!({"description": format!("d{i}")}))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(calls).await;
    // Conflicts are retried: every update either lands or reports 409, none fails.
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let landed = statuses.iter().filter(|s| **s == 200).count();
    let history = expect_json(app.get(&t, &format!("{path}/history")).await, 200).await;
    let seqs: Vec<i64> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gap-free sequences"
    );
    assert_eq!(seqs.len() - 1, landed, "each landed update recorded once");
}

#[tokio::test]
async fn a_tenant_holds_at_most_its_subscription_limit() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_MAX_SUBSCRIPTIONS_PER_TENANT".into(), "2".into());
    })
    .await;
    let t = app.tenant("acme").await;
    for n in 0..2 {
        app.subscribe(
            &t,
            json!({"url": format!("https://example.com/{n}"), "events": ["a.b"]}),
        )
        .await;
    }
    let refused = expect_json(
        app.post(
            &t,
            "/v1/subscriptions",
            json!({"url": "https://example.com/x", "events": ["a.b"]}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(refused["code"], "subscription_limit_reached");
    assert!(refused["detail"]
        .as_str()
        .unwrap()
        .contains("HOOKLINE_MAX_SUBSCRIPTIONS_PER_TENANT"));
    // Another tenant has a limit of its own.
    let other = app.tenant("other").await;
    app.subscribe(
        &other,
        json!({"url": "https://example.com/x", "events": ["a.b"]}),
    )
    .await;
}

#[tokio::test]
async fn operations_refuse_a_query_or_a_body_they_do_not_take() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/h", "events": ["a.*"]}),
        )
        .await;
    let id = s["id"].as_str().unwrap();
    // No query parameters: a query string is refused, as an unknown
    // parameter is where there are some.
    for path in [
        "/v1/settings?bogus=1".to_string(),
        format!("/v1/subscriptions/{id}/history?bogus=1"),
    ] {
        let err = expect_json(app.get(&t, &path).await, 400).await;
        assert_eq!(err["code"], "invalid_query", "{path}: {err}");
    }
    // No body: none or {} is fine, anything else is refused.
    let enable = format!("/v1/subscriptions/{id}/enable");
    for body in [json!({"zzz_unknown": 1}), json!([])] {
        let err = expect_json(app.post(&t, &enable, body).await, 400).await;
        assert_eq!(err["code"], "invalid_body", "{err}");
    }
    expect_json(app.post(&t, &enable, json!({})).await, 200).await;
    let res = app
        .client
        .post(app.url(&enable))
        .bearer_auth(&t.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
