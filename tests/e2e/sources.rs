//! Inbound sources end to end: an InFlow-style sender (a real HTTP client
//! signing as InFlow's seed describes) posts good and bad webhooks to a
//! source; the good ones reach two internal subscribers with verified
//! signatures and can be traced from the inbound request id; the bad ones
//! are 401 and recorded; a provider retry creates nothing new. And every
//! kind of hostile input gets a clear 4xx, never a 5xx.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures::StreamExt as _;
use hookline_tests::receiver::TestReceiver;
use hookline_tests::webhooks::{hmac_sha256, official_verify, standard_signature};
use hookline_tests::{eventually, expect_json, Tenant, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// InFlow's way, per seed 003: base64 HMAC-SHA256 of the raw body, keyed
/// with the secret's UTF-8 text.
fn inflow_signature(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(secret.as_bytes(), body))
}

/// An InFlow-style sender: POSTs the raw bytes with InFlow's headers.
async fn inflow_send(
    app: &TestApp,
    ingest_url: &str,
    body: &str,
    signature: Option<&str>,
    request_id: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(ingest_url)
        .header("content-type", "application/json")
        .header("x-request-id", request_id)
        .body(body.to_string());
    if let Some(sig) = signature {
        req = req.header("x-inflow-hmac-sha256", sig);
    }
    req.send().await.unwrap()
}

async fn create_source(app: &TestApp, t: &Tenant, body: Value) -> Value {
    expect_json(app.post(t, "/v1/sources", body).await, 201).await
}

fn sales_order(id: &str) -> String {
    // Formatting and key order as a provider might send them: the bytes
    // are what is signed.
    format!(
        "{{\"event\": \"salesOrder.updated\", \"data\": {{\"salesOrderId\": \"{id}\", \"total\": 12345678901234567890}},\n \"timestamp\": \"2025-10-28T12:00:00Z\"}}"
    )
}

#[tokio::test]
async fn inflow_webhooks_are_verified_fanned_out_traced_and_retries_are_recognised() {
    let app = TestApp::spawn().await;
    let t = app.tenant("erp").await;
    let a = TestReceiver::start().await;
    let b = TestReceiver::start().await;
    let sub_a = app
        .subscribe(&t, json!({"url": a.url("/a"), "events": ["salesOrder.*"]}))
        .await;
    let sub_b = app
        .subscribe(
            &t,
            json!({"url": b.url("/b"), "events": ["salesOrder.updated"]}),
        )
        .await;
    let source = create_source(
        &app,
        &t,
        json!({"name": "InFlow production", "kind": "inflow"}),
    )
    .await;
    let secret = source["secret"].as_str().unwrap().to_string();
    assert_eq!(
        STANDARD.decode(&secret).unwrap().len(),
        32,
        "a base64 secret, as InFlow's"
    );
    let ingest = source["ingest_url"].as_str().unwrap().to_string();
    assert_eq!(
        ingest,
        app.url(&format!("/in/{}", source["id"].as_str().unwrap()))
    );
    assert_eq!(source["event_type"], "/event");
    assert_eq!(source["data"], "/data");

    // A good webhook.
    let body = sales_order("so-1");
    let res = inflow_send(
        &app,
        &ingest,
        &body,
        Some(&inflow_signature(&secret, body.as_bytes())),
        "inflow-delivery-1",
    )
    .await;
    let answer = expect_json(res, 200).await;
    assert_eq!(answer["status"], "accepted");
    assert_eq!(answer["deliveries"], 2);
    for (receiver, sub) in [(&a, &sub_a), (&b, &sub_b)] {
        let got = receiver.wait_for(1, WAIT).await;
        let delivery = &got[0];
        assert!(
            official_verify(
                sub["secret"].as_str().unwrap(),
                &delivery.headers,
                &delivery.body
            ),
            "Standard Webhooks signature verifies"
        );
        assert_eq!(delivery.header("x-request-id"), Some("inflow-delivery-1"));
        assert_eq!(delivery.header("x-event"), Some("salesOrder.updated"));
        let envelope = delivery.json();
        assert_eq!(envelope["event"], "salesOrder.updated");
        // The data is InFlow's `data`, byte for byte (the big number too).
        let text = String::from_utf8(delivery.body.to_vec()).unwrap();
        assert!(
            text.contains(r#""data":{"salesOrderId": "so-1", "total": 12345678901234567890}"#),
            "{text}"
        );
    }

    // A wrongly signed one, and one without a signature: 401, recorded.
    let forged = sales_order("so-2");
    let res = inflow_send(
        &app,
        &ingest,
        &forged,
        Some(&inflow_signature("not-the-secret", forged.as_bytes())),
        "forged-1",
    )
    .await;
    let err = expect_json(res, 401).await;
    assert_eq!(err["code"], "signature_invalid");
    assert_eq!(err["request_id"], "forged-1");
    let res = inflow_send(&app, &ingest, &forged, None, "forged-2").await;
    assert_eq!(expect_json(res, 401).await["code"], "signature_missing");
    let rejections = expect_json(
        app.get(
            &t,
            &format!("/v1/sources/{}/rejections", source["id"].as_str().unwrap()),
        )
        .await,
        200,
    )
    .await;
    let rows = rejections["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["reason"], "signature_missing");
    assert_eq!(rows[1]["reason"], "signature_invalid");
    assert_eq!(rows[1]["request_id"], "forged-1");
    assert!(rows[1]["remote_addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(rows[1]["body_bytes"], forged.len());
    assert!(rows[1].get("body").is_none(), "no body is kept");
    // The refusals are counted in /metrics too, by code.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "hookline_inbound_refused_total{code=\"signature_invalid\"} 1",
        "hookline_inbound_refused_total{code=\"signature_missing\"} 1",
        "hookline_inbound_requests_total{outcome=\"accepted\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }

    // InFlow retries the first delivery: 200, the same inbound id, nothing new.
    let res = inflow_send(
        &app,
        &ingest,
        &body,
        Some(&inflow_signature(&secret, body.as_bytes())),
        "inflow-retry",
    )
    .await;
    let again = expect_json(res, 200).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["inbound_id"], answer["inbound_id"]);
    assert!(
        app.get(&t, "/v1/requests/inflow-retry").await.status() == 404,
        "the retry caused nothing"
    );

    // Support follows the webhook from InFlow to every attempt.
    let trace = eventually("the trace shows both attempts", WAIT, || async {
        let v: Value = app
            .get(&t, "/v1/requests/inflow-delivery-1")
            .await
            .json()
            .await
            .ok()?;
        (v["summary"]["attempts"] == 2).then_some(v)
    })
    .await;
    let types: Vec<&str> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(types[0], "InboundReceived", "{types:?}");
    assert!(types.contains(&"MessagePublished"));
    assert_eq!(
        types.iter().filter(|t| **t == "DeliveryEnqueued").count(),
        2
    );
    assert_eq!(trace["summary"]["deliveries"], 2);
    let inbound = &trace["events"][0];
    assert_eq!(
        inbound["metadata"]["actor"],
        format!("source:{}", source["id"].as_str().unwrap())
    );
    assert_eq!(
        inbound["payload"]["body_bytes"],
        body.len(),
        "bodies left out of lists"
    );
    assert_eq!(
        inbound["payload"]["delivery_id"].as_str().unwrap().len(),
        "sha256:".len() + 64
    );
    // The raw body is in the log exactly as received.
    let full = expect_json(
        app.get(
            &t,
            "/v1/requests/inflow-delivery-1/events?include_payload=true",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(full["data"][0]["payload"]["body"], body);

    // Nothing more reached the subscribers.
    let deliveries = expect_json(app.get(&t, "/v1/deliveries").await, 200).await;
    assert_eq!(deliveries["data"].as_array().unwrap().len(), 2);
    assert_eq!(a.count() + b.count(), 2);
}

#[tokio::test]
async fn sources_are_managed_like_subscriptions() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let other = app.tenant("other").await;

    let bad = expect_json(
        app.post(&t, "/v1/sources", json!({"name": "", "kind": "svix", "event_type": "event", "data": "data", "idempotency": {"header": "a", "pointer": "/b"}})).await,
        400,
    )
    .await;
    let detail = bad["detail"].as_str().unwrap();
    for field in ["name:", "kind:", "event_type:", "data:", "idempotency:"] {
        assert!(detail.contains(field), "{field} in {detail}");
    }
    let no_header = expect_json(
        app.post(
            &t,
            "/v1/sources",
            json!({"name": "x", "kind": "header-secret"}),
        )
        .await,
        400,
    )
    .await;
    assert!(no_header["detail"]
        .as_str()
        .unwrap()
        .contains("header_name"));
    let unused = expect_json(
        app.post(
            &t,
            "/v1/sources",
            json!({"name": "x", "kind": "inflow", "header_name": "x-a"}),
        )
        .await,
        400,
    )
    .await;
    assert!(unused["detail"].as_str().unwrap().contains("header_name"));

    let created = create_source(
        &app,
        &t,
        json!({"name": "Standard", "kind": "standard-webhooks", "event_type": "/type", "data": "/data",
               "idempotency": {"header": "Webhook-Id", "window_seconds": 3600}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        created["idempotency"],
        json!({"header": "webhook-id", "window_seconds": 3600})
    );
    let read = expect_json(app.get(&t, &format!("/v1/sources/{id}")).await, 200).await;
    assert_ne!(read["secret"], secret, "masked after creation");
    assert_eq!(
        app.get(&other, &format!("/v1/sources/{id}")).await.status(),
        404
    );

    let patched = expect_json(
        app.patch(
            &t,
            &format!("/v1/sources/{id}"),
            json!({"name": "Renamed", "event_type": "order.placed"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["name"], "Renamed");
    assert_eq!(patched["event_type"], "order.placed");
    let refused = expect_json(
        app.patch(&t, &format!("/v1/sources/{id}"), json!({"secret": "x"}))
            .await,
        400,
    )
    .await;
    assert!(refused["detail"]
        .as_str()
        .unwrap()
        .contains("rotate-secret"));
    assert_eq!(
        app.patch(&t, &format!("/v1/sources/{id}"), json!({}))
            .await
            .status(),
        400
    );

    // Rotation keeps the old secret working during the overlap.
    let rotated = expect_json(
        app.post(&t, &format!("/v1/sources/{id}/rotate-secret"), json!({}))
            .await,
        200,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert!(rotated["previous_secret_expires_at"].is_string());
    let ingest = created["ingest_url"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp().to_string();
    for (n, key) in [(1, &secret), (2, &new_secret)] {
        let body = format!(r#"{{"type":"x.y","data":{{"n":{n}}}}}"#);
        let msg_id = format!("msg_{n}");
        let res = app
            .client
            .post(ingest)
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", &now)
            .header(
                "webhook-signature",
                standard_signature(key, &msg_id, &now, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let v = expect_json(res, 200).await;
        assert_eq!(v["status"], "accepted", "secret {n}");
    }

    let listed = expect_json(app.get(&t, "/v1/sources?limit=1").await, 200).await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let history = expect_json(app.get(&t, &format!("/v1/sources/{id}/history")).await, 200).await;
    let types: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["SourceCreated", "SourceUpdated", "SourceSecretRotated"]
    );
    assert_eq!(history["data"][0]["payload"]["secret"], "[sealed]");

    assert_eq!(
        app.delete(&t, &format!("/v1/sources/{id}")).await.status(),
        204
    );
    assert_eq!(
        app.get(&t, &format!("/v1/sources/{id}")).await.status(),
        404
    );
    let deleted = expect_json(
        app.get(&t, &format!("/v1/sources/{id}?include_deleted=true"))
            .await,
        200,
    )
    .await;
    assert_eq!(deleted["status"], "deleted");
    let gone = app.client.post(ingest).body("{}").send().await.unwrap();
    assert_eq!(expect_json(gone, 410).await["code"], "source_deleted");
    assert_eq!(
        app.delete(&t, &format!("/v1/sources/{id}")).await.status(),
        409
    );
}

/// A POST with a chunked body (no Content-Length), over a raw connection.
async fn chunked_post(
    addr: std::net::SocketAddr,
    url: &str,
    signature: &str,
    body: &[u8],
) -> (String, u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = url.split_once(&addr.to_string()).unwrap().1;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nx-inflow-hmac-sha256: {signature}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(1000) {
        request.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
        request.extend(chunk);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    // The server may answer and close before reading everything.
    drop(stream.write_all(&request).await);
    let mut response = Vec::new();
    drop(stream.read_to_end(&mut response).await);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b.trim()).ok())
        .unwrap_or(Value::Null);
    ("oversized chunked".into(), status, body)
}

#[tokio::test]
async fn hostile_input_on_in_gets_a_clear_4xx_never_a_5xx() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_MAX_BODY_BYTES".into(), "4096".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let receiver = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": receiver.url("/"), "events": ["*"]}))
        .await;
    let inflow = create_source(&app, &t, json!({"name": "InFlow", "kind": "inflow"})).await;
    let inflow_url = inflow["ingest_url"].as_str().unwrap().to_string();
    let secret = inflow["secret"].as_str().unwrap().to_string();
    let standard =
        create_source(&app, &t, json!({"name": "SW", "kind": "standard-webhooks"})).await;
    let standard_url = standard["ingest_url"].as_str().unwrap().to_string();
    let sw_secret = standard["secret"].as_str().unwrap().to_string();

    let mut answers: Vec<(String, u16, Value)> = Vec::new();
    let check = |what: &str, res: reqwest::Response| {
        let what = what.to_string();
        async move {
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (what, status, body)
        }
    };

    // An oversized body, declared and chunked.
    let big = format!(r#"{{"event":"a.b","data":{{"x":"{}"}}}}"#, "x".repeat(8000));
    let sig = inflow_signature(&secret, big.as_bytes());
    answers.push(
        check(
            "oversized",
            app.client
                .post(&inflow_url)
                .header("x-inflow-hmac-sha256", &sig)
                .body(big.clone())
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(chunked_post(app.address, &inflow_url, &sig, big.as_bytes()).await);
    // A huge declared length with `Expect: 100-continue`: refused at
    // once, without inviting the body.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let path = inflow_url.split_once(&app.address.to_string()).unwrap().1;
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        stream
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut first = vec![0u8; 200];
        let n = tokio::time::timeout(WAIT, stream.read(&mut first))
            .await
            .expect("an answer without the body")
            .unwrap();
        let head = String::from_utf8_lossy(&first[..n]).into_owned();
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    // Missing headers, bad base64, a signature of the wrong length.
    let body = r#"{"event":"a.b","data":{}}"#;
    answers.push(
        check(
            "missing signature",
            app.client
                .post(&inflow_url)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(
        check(
            "bad base64",
            app.client
                .post(&inflow_url)
                .header("x-inflow-hmac-sha256", "@@not base64@@")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(
        check(
            "short signature",
            app.client
                .post(&inflow_url)
                .header("x-inflow-hmac-sha256", "AAAA")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(
        check(
            "non-ASCII header",
            app.client
                .post(&inflow_url)
                .header(
                    "x-inflow-hmac-sha256",
                    reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
                )
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    // Signed, but not JSON, not an object, or without an event name.
    for (what, b) in [
        ("not json", "hello"),
        ("array", "[1,2]"),
        ("no event", r#"{"data":{}}"#),
        (
            "bad event name",
            r#"{"event":"SalesOrderUpdatedV1","data":{}}"#,
        ),
        ("data not an object", r#"{"event":"a.b","data":[1]}"#),
        // A NUL quoted in the refusal's detail must not stop it being kept.
        ("NUL in event name", r#"{"event":"a\u0000b","data":{}}"#),
        (
            "duplicate keys",
            r#"{"event":"a.b","event":"c.d","data":{}}"#,
        ),
    ] {
        answers.push(
            check(
                what,
                app.client
                    .post(&inflow_url)
                    .header(
                        "x-inflow-hmac-sha256",
                        inflow_signature(&secret, b.as_bytes()),
                    )
                    .body(b)
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
    }
    // A body labelled compressed, signed as sent: refused for what it is
    // (bodies are verified and stored as sent, never decompressed).
    let labelled = r#"{"event":"a.b","data":{}}"#;
    answers.push(
        check(
            "compressed",
            app.client
                .post(&inflow_url)
                .header(
                    "x-inflow-hmac-sha256",
                    inflow_signature(&secret, labelled.as_bytes()),
                )
                .header("content-encoding", "gzip")
                .body(labelled)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    // Standard Webhooks: replayed outside the tolerance, malformed parts.
    let old = (chrono::Utc::now().timestamp() - 600).to_string();
    let sw_body = r#"{"type":"a.b","data":{}}"#;
    answers.push(
        check(
            "replayed timestamp",
            app.client
                .post(&standard_url)
                .header("webhook-id", "msg_1")
                .header("webhook-timestamp", &old)
                .header(
                    "webhook-signature",
                    standard_signature(&sw_secret, "msg_1", &old, sw_body.as_bytes()),
                )
                .body(sw_body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(
        check(
            "timestamp not a number",
            app.client
                .post(&standard_url)
                .header("webhook-id", "msg_1")
                .header("webhook-timestamp", "yesterday")
                .header("webhook-signature", "v1,AAAA")
                .body(sw_body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(
        check(
            "missing webhook-id",
            app.client
                .post(&standard_url)
                .header("webhook-timestamp", &old)
                .body(sw_body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    // Unknown and malformed source ids, wrong method.
    answers.push(
        check(
            "unknown source",
            app.client
                .post(app.url(&format!("/in/{}", uuid::Uuid::now_v7())))
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(
        check(
            "malformed source id",
            app.client
                .post(app.url("/in/not-a-uuid"))
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(
        check(
            "escaped path",
            app.client
                .post(app.url("/in/%ff%fe"))
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    answers.push(
        check(
            "wrong method",
            app.client.get(&inflow_url).send().await.unwrap(),
        )
        .await,
    );

    let expected: &[(&str, u16, &str)] = &[
        ("oversized", 413, "payload_too_large"),
        ("oversized chunked", 413, "payload_too_large"),
        ("missing signature", 401, "signature_missing"),
        ("bad base64", 401, "signature_malformed"),
        ("short signature", 401, "signature_invalid"),
        ("non-ASCII header", 401, "signature_malformed"),
        ("not json", 400, "invalid_body"),
        ("array", 400, "invalid_body"),
        ("no event", 422, "event_type_unresolved"),
        ("bad event name", 422, "event_type_unresolved"),
        ("data not an object", 422, "data_unresolved"),
        ("NUL in event name", 422, "event_type_unresolved"),
        ("duplicate keys", 400, "invalid_body"),
        ("compressed", 415, "unsupported_media_type"),
        ("replayed timestamp", 401, "timestamp_outside_tolerance"),
        ("timestamp not a number", 401, "signature_malformed"),
        ("missing webhook-id", 401, "signature_missing"),
        ("unknown source", 404, "source_not_found"),
        ("malformed source id", 404, "source_not_found"),
        ("escaped path", 400, "invalid_path"),
        ("wrong method", 405, "method_not_allowed"),
    ];
    assert_eq!(answers.len(), expected.len());
    for ((what, status, body), (want_what, want_status, want_code)) in answers.iter().zip(expected)
    {
        assert_eq!(what, want_what);
        assert!(*status < 500, "{what}: {status} {body}");
        assert_eq!(
            (*status, body["code"].as_str().unwrap_or("")),
            (*want_status, *want_code),
            "{what}: {body}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {body}"
        );
    }
    // Nothing got through, and the source's tenant sees the refusals.
    assert_eq!(receiver.count(), 0);
    let rejections = expect_json(
        app.get(
            &t,
            &format!("/v1/sources/{}/rejections", inflow["id"].as_str().unwrap()),
        )
        .await,
        200,
    )
    .await;
    let listed = rejections["data"].as_array().unwrap();
    assert_eq!(listed.len(), 15, "{rejections}");
    assert!(
        listed
            .iter()
            .any(|r| r["detail"].as_str().is_some_and(|d| d.contains("a\\u{0}b"))),
        "{rejections}"
    );
    // Bodies over the limit, refused unread, are listed too.
    assert_eq!(
        listed
            .iter()
            .filter(|r| r["reason"] == "payload_too_large")
            .count(),
        3,
        "{rejections}"
    );
    // The server still answers.
    let good = r#"{"event":"a.b","data":{"ok":true}}"#;
    let res = app
        .client
        .post(&inflow_url)
        .header(
            "x-inflow-hmac-sha256",
            inflow_signature(&secret, good.as_bytes()),
        )
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, 200).await["status"], "accepted");
    receiver.wait_for(1, WAIT).await;
}

#[tokio::test]
async fn no_recorded_header_can_carry_a_source_secret() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let refused = |body: Value, field: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            let res = expect_json(app.post(t, "/v1/sources", body).await, 400).await;
            assert_eq!(res["code"], "validation_error", "{res}");
            let detail = res["detail"].as_str().unwrap().to_string();
            assert!(detail.starts_with(field), "{field}: {detail}");
        }
    };
    // The request id is recorded with every event and sent to subscribers.
    refused(
        json!({"name": "a", "kind": "header-secret", "header_name": "X-Request-Id", "secret": "SuperSecretValue123"}),
        "header_name:",
    )
    .await;
    // The delivery id is recorded with each webhook.
    refused(
        json!({"name": "b", "kind": "header-secret", "header_name": "X-Tok", "idempotency": {"header": "x-tok"}}),
        "idempotency.header:",
    )
    .await;
    refused(
        json!({"name": "c", "kind": "inflow", "idempotency": {"header": "Authorization"}}),
        "idempotency.header:",
    )
    .await;
    // Hookline's own names are not an inbound event.
    refused(
        json!({"name": "d", "kind": "inflow", "event_type": "HookLine.circuit.opened"}),
        "event_type:",
    )
    .await;
    // A change is checked against what it keeps.
    let source = create_source(
        &app,
        &t,
        json!({"name": "e", "kind": "header-secret", "header_name": "x-tok", "idempotency": {"header": "x-delivery"}}),
    )
    .await;
    let id = source["id"].as_str().unwrap();
    let res = expect_json(
        app.patch(
            &t,
            &format!("/v1/sources/{id}"),
            json!({"header_name": "X-Delivery"}),
        )
        .await,
        400,
    )
    .await;
    assert!(
        res["detail"]
            .as_str()
            .unwrap()
            .starts_with("idempotency.header:"),
        "{res}"
    );
    let list = expect_json(app.get(&t, "/v1/sources").await, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}

/// Refusals of two sources taking turns are each kept to the newest 1000
/// (pruning looked at one shared id sequence: one of the two sources was
/// never pruned, so anyone with its ingest URL could grow it without end).
#[tokio::test]
async fn each_sources_refusals_stay_bounded_when_sources_take_turns() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let a = create_source(&app, &t, json!({"name": "A", "kind": "inflow"})).await;
    let b = create_source(&app, &t, json!({"name": "B", "kind": "inflow"})).await;
    let urls = [a, b].map(|s| s["ingest_url"].as_str().unwrap().to_string());
    let client = reqwest::Client::new();
    let sends = (0..2100).map(|i| {
        let (client, url) = (client.clone(), urls[i % 2].clone());
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .header("x-inflow-hmac-sha256", "bm90IGEgc2lnbmF0dXJl")
                .body("{}")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses: Vec<u16> = futures::stream::iter(sends)
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let kept: Vec<i64> =
        sqlx::query_scalar("SELECT count(*) FROM inbound_rejections GROUP BY source_id ORDER BY 1")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(kept, vec![1000, 1000]);
}
