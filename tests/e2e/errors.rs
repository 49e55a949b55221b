//! One error shape for every 4xx and 5xx, and no input that makes the server
//! panic or answer 500.

use hookline_tests::{expect_json, TestApp};
use serde_json::{json, Value};

fn assert_shape(body: &Value) {
    let obj = body.as_object().expect("error body is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["code", "detail", "request_id"], "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_requests_get_clear_4xx() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_MAX_BODY_BYTES".into(), "4096".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/v1/subscriptions"))
            .bearer_auth(&t.api_key)
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };

    let b = expect_json(
        post("{\"url\": ", Some("application/json")).await.unwrap(),
        400,
    )
    .await;
    assert_shape(&b);
    assert_eq!(b["code"], "malformed_json");
    let b = expect_json(post("[1,2]", Some("application/json")).await.unwrap(), 400).await;
    assert_eq!(b["code"], "invalid_body");
    let b = expect_json(
        post(
            "{\"url\":\"https://example.com/x\",\"events\":[\"a.b\"],\"extra\":1}",
            Some("application/json"),
        )
        .await
        .unwrap(),
        400,
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("extra"), "{b}");
    let b = expect_json(
        post(
            "{\"url\": 5, \"events\": \"a.b\"}",
            Some("application/json"),
        )
        .await
        .unwrap(),
        400,
    )
    .await;
    assert_shape(&b);
    let b = expect_json(post("{}", Some("text/plain")).await.unwrap(), 415).await;
    assert_shape(&b);
    let b = expect_json(post("{}", None).await.unwrap(), 415).await;
    assert_eq!(b["code"], "unsupported_media_type");
    // A compressed body is refused as such (it was read as malformed JSON).
    let res = app
        .client
        .post(app.url("/v1/subscriptions"))
        .bearer_auth(&t.api_key)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(vec![0x1f_u8, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])
        .send()
        .await
        .unwrap();
    let b = expect_json(res, 415).await;
    assert_shape(&b);
    assert!(b["detail"].as_str().unwrap().contains("`gzip`"), "{b}");
    // Two Authorization headers: refused, whichever one is right.
    for (first, second) in [
        (t.api_key.as_str(), "hlk_wrong"),
        ("hlk_wrong", t.api_key.as_str()),
    ] {
        let res = app
            .client
            .get(app.url("/v1/subscriptions"))
            .header("authorization", format!("Bearer {first}"))
            .header("authorization", format!("Bearer {second}"))
            .send()
            .await
            .unwrap();
        let b = expect_json(res, 401).await;
        assert!(
            b["detail"].as_str().unwrap().contains("more than one"),
            "{b}"
        );
    }

    let big =
        json!({"url": "https://example.com/x", "events": ["a.b"], "description": "d".repeat(5000)});
    let res = app
        .client
        .post(app.url("/v1/subscriptions"))
        .bearer_auth(&t.api_key)
        .json(&big)
        .send()
        .await
        .unwrap();
    let b = expect_json(res, 413).await;
    assert_shape(&b);
    assert_eq!(b["code"], "payload_too_large");

    let b = expect_json(app.get(&t, "/v1/subscriptions/not-a-uuid").await, 400).await;
    assert_eq!(b["code"], "invalid_id");
    assert!(b["detail"].as_str().unwrap().contains("not-a-uuid"));
    let b = expect_json(
        app.get(&t, "/v1/subscriptions/0190b2a4-0000-7000-8000-000000000000")
            .await,
        404,
    )
    .await;
    assert_shape(&b);
    let b = expect_json(app.get(&t, "/v1/nothing-here").await, 404).await;
    assert_shape(&b);
    let res = app
        .client
        .put(app.url("/v1/subscriptions"))
        .bearer_auth(&t.api_key)
        .send()
        .await
        .unwrap();
    let b = expect_json(res, 405).await;
    assert_shape(&b);
    assert_eq!(b["code"], "method_not_allowed");
}

#[tokio::test]
async fn hostile_input_never_panics_or_answers_500() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<String> = vec![
        "null".into(),
        "\"string\"".into(),
        "{\"url\": null, \"events\": null}".into(),
        "{\"url\": \"https://example.com/\\u0000\", \"events\": [\"a.b\"]}".into(),
        "{\"url\": \"https://example.com/a\", \"events\": [\"a.b\\u0000\"]}".into(),
        "{\"url\": \"https://example.com/a\", \"events\": [\"a.b\"], \"description\": \"\\u0000\"}".into(),
        "{\"url\": \"https://example.com/a\", \"events\": [\"a.b\"], \"secret\": \"abcdefgh\\u0000\"}".into(),
        "{\"url\": \"https://example.com/a\", \"events\": [\"a.b\"], \"headers\": {\"X-A\": \"\\u0000\"}}".into(),
        "{\"url\": \"https://exa\u{1F600}mple.com/a\", \"events\": [\"a.b\"]}".into(),
        "{\"url\": \"https://example.com/a\", \"events\": [1e999]}".into(),
        "{\"url\": \"https://[::ffff:10.0.0.1]/a\", \"events\": [\"a.b\"]}".into(),
        "{\"url\": \"https://0x7f000001/a\", \"events\": [\"a.b\"]}".into(),
        "{\"url\": \"https://2130706433/a\", \"events\": [\"a.b\"]}".into(),
        nested,
        "\u{FEFF}{}".into(),
        "{\"url\": \"https://example.com/a\", \"events\": [\"a.b\"], \"signature_scheme\": {}}".into(),
        "{\"reason\": \"a\\u0000b\"}".into(),
        "[\"https://example.com/b\", [\"a.b\"]]".into(),
    ];
    let paths = [
        ("POST", "/v1/subscriptions".to_string()),
        ("PATCH", format!("/v1/subscriptions/{id}")),
        ("POST", format!("/v1/subscriptions/{id}/rotate-secret")),
        ("POST", format!("/v1/subscriptions/{id}/disable")),
        ("POST", "/admin/tenants".to_string()),
    ];
    for (method, path) in &paths {
        for body in &bodies {
            let req = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .header("content-type", "application/json")
                .body(body.clone());
            let req = if path.starts_with("/admin") {
                req.bearer_auth(hookline_tests::server::ADMIN_TOKEN)
            } else {
                req.bearer_auth(&t.api_key)
            };
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            assert!(status < 500, "{method} {path} {body:.80} -> {status}");
            if status >= 400 {
                let b: Value = res.json().await.unwrap();
                assert_shape(&b);
            }
        }
    }
    for weird in [
        "%00",
        "..%2F..%2Fetc",
        "%F0%9F%98%80",
        "'%20OR%201=1",
        &"9".repeat(300),
    ] {
        let res = app.get(&t, &format!("/v1/subscriptions/{weird}")).await;
        assert!(res.status().is_client_error(), "{weird}: {}", res.status());
    }
    for query in [
        "limit=-1",
        "limit=99999999999999999999",
        "cursor=%00",
        "event=%00",
        // A forged cursor one microsecond before Postgres's earliest time.
        "cursor=LTIxMDg2NjgwMzIwMDAwMDAwMTowMWEyM2Y0NS03YzYyLTcwNDctYTMyYy01YWEyZWYxNGIwZmE",
    ] {
        for list in ["/v1/subscriptions", "/v1/deliveries", "/v1/sources"] {
            let res = app.get(&t, &format!("{list}?{query}")).await;
            assert!(
                res.status().is_client_error(),
                "{list}?{query}: {}",
                res.status()
            );
        }
    }
    // The subscription is intact.
    let read = expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
    assert_eq!(read["url"], "https://example.com/a");
}

/// Reads what the server sends until it closes the connection (or `limit`
/// passes, which fails the test).
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut got))
        .await
        .expect("the server closed the connection in time")
        .ok();
    String::from_utf8_lossy(&got).into_owned()
}

/// Slow or silent clients cannot hold connections open: a connection that
/// sends no complete request head is closed, a body that never finishes gets
/// a 408, and a declared body over the limit is refused before it is sent.
#[tokio::test]
async fn slow_and_silent_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let addr = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let limit = std::time::Duration::from_secs(10);

    // Connected, silent.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent, limit).await, "");

    // Half a request head.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_eq!(read_until_closed(&mut half, limit).await, "");

    // A body that never completes: 408 in the error shape.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nX-Request-Id: slow-body-1\r\nContent-Length: 100\r\n\r\n{{\"",
        t.api_key
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut slow, limit).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_shape(&body);
    assert_eq!(body["code"], "request_timeout");
    assert_eq!(body["request_id"], "slow-body-1");

    // A declared body over the limit: 413 at once, no `100 Continue`.
    let mut large = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n",
        t.api_key
    );
    large.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut large, limit).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_shape(&body);
    assert_eq!(body["code"], "payload_too_large");

    // Ordinary requests are unaffected.
    expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
}

/// Hostile input gets the precise answer, not just any 4xx.
#[tokio::test]
async fn hostile_input_gets_precise_answers() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    let send = |method: &str, path: &str, body: &str| {
        app.client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&t.api_key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };

    // A positional array is not an object, even if serde could read one.
    let b = expect_json(
        send(
            "POST",
            "/v1/subscriptions",
            r#"["https://example.com/b", ["a.b"]]"#,
        )
        .await
        .unwrap(),
        400,
    )
    .await;
    assert_eq!(b["code"], "invalid_body", "{b}");
    // Control characters in a disable reason, and port 0 or control
    // characters in a URL, are refused and name the field.
    for (path, body, field) in [
        (
            format!("/v1/subscriptions/{id}/disable"),
            r#"{"reason": "a\u0000b"}"#,
            "reason: ",
        ),
        (
            format!("/v1/subscriptions/{id}/disable"),
            r#"{"reason": "bell\u0007"}"#,
            "reason: ",
        ),
        (
            "/v1/subscriptions".to_string(),
            r#"{"url": "https://example.com:0/x", "events": ["a.b"]}"#,
            "url: ",
        ),
        (
            "/v1/subscriptions".to_string(),
            r#"{"url": "https://example.com/\r\nX: y", "events": ["a.b"]}"#,
            "url: ",
        ),
    ] {
        let b = expect_json(send("POST", &path, body).await.unwrap(), 400).await;
        assert_eq!(b["code"], "validation_error", "{b}");
        assert!(b["detail"].as_str().unwrap().starts_with(field), "{b}");
    }
    let read = expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
    assert_eq!(read["status"], "active");
    let listed = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "nothing else was created"
    );

    // A path that does not decode to text.
    let b = expect_json(app.get(&t, "/v1/subscriptions/%ff").await, 400).await;
    assert_eq!(b["code"], "invalid_path", "{b}");
    // Query parameters: the message speaks of the parameter, not the parser.
    let b = expect_json(app.get(&t, "/v1/subscriptions?limit=-1").await, 400).await;
    let detail = b["detail"].as_str().unwrap();
    assert!(
        detail.contains("limit") && detail.contains("must be a whole number"),
        "{detail}"
    );

    // Authorization: the scheme in any case; a malformed header is called so.
    let res = app
        .client
        .get(app.url("/v1/subscriptions"))
        .header("authorization", format!("bEaReR {}", t.api_key))
        .send()
        .await
        .unwrap();
    expect_json(res, 200).await;
    let res = app
        .client
        .get(app.url("/v1/subscriptions"))
        .header(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    let b = expect_json(res, 401).await;
    assert!(
        b["detail"].as_str().unwrap().contains("visible ASCII"),
        "{b}"
    );
    let res = app
        .client
        .post(app.url("/admin/tenants"))
        .header(
            "authorization",
            format!("bearer {}", hookline_tests::server::ADMIN_TOKEN),
        )
        .json(&json!({"name": "lowercase"}))
        .send()
        .await
        .unwrap();
    expect_json(res, 201).await;
}
