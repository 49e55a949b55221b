//! Connectors end to end, with real processes on 127.0.0.1:
//!
//! - Siigo: the sandbox (`hookline connectors siigo sandbox`, its own
//!   process) stands in for Siigo; `hookline connectors siigo subscribe`
//!   (another process) provisions through it, and the test reads what the
//!   sandbox received: the token request's payload, the bearer, the
//!   subscription payloads with headers and events. A second provision
//!   reuses the token; after a forced 401 the client refreshes once. The
//!   sandbox fires a webhook that arrives through the header-secret source
//!   at a Hookline subscriber.
//! - InFlow's subscription API at `/inflow/{companyId}/webhooks`: PUT,
//!   GET, DELETE, a repeated request id, and a delivery that passes the
//!   seed's own Python verification snippet.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hookline_tests::process::{binary, run_cli};
use hookline_tests::receiver::TestReceiver;
use hookline_tests::webhooks::publish;
use hookline_tests::{expect_json, Tenant, TestApp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(15);

/// The sandbox process and its base URL.
struct Sandbox {
    _child: Child,
    url: String,
    client: reqwest::Client,
}

impl Sandbox {
    async fn start() -> Self {
        let mut child = Command::new(binary())
            .args(["connectors", "siigo", "sandbox", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the sandbox");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = next_line(&mut lines).await;
        assert!(
            first.starts_with("THIS IS TEST EQUIPMENT"),
            "the sandbox says what it is: {first}"
        );
        let second = next_line(&mut lines).await;
        let url = second
            .strip_prefix("Siigo sandbox listening on ")
            .unwrap_or_else(|| panic!("unexpected line {second:?}"))
            .to_string();
        Self {
            _child: child,
            url,
            client: reqwest::Client::new(),
        }
    }

    /// Everything the sandbox received, in order.
    async fn requests(&self) -> Vec<Value> {
        let all: Value = self
            .client
            .get(format!("{}/sandbox/requests", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.as_array().cloned().unwrap_or_default()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let res = self
            .client
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "sandbox {path}");
        res.json().await.unwrap()
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the sandbox printed in time")
        .unwrap()
        .expect("the sandbox is running")
}

fn of<'a>(requests: &'a [Value], method: &str, path: &str) -> Vec<&'a Value> {
    requests
        .iter()
        .filter(|r| r["method"] == method && r["path"] == path)
        .collect()
}

/// The CLI's environment: the server's own settings (the same sealing key)
/// and where providers reach the server.
fn cli_env(app: &TestApp) -> HashMap<String, String> {
    let mut env = app.env.clone();
    env.insert("HOOKLINE_PUBLIC_URL".into(), app.base.clone());
    env
}

#[tokio::test]
async fn siigo_is_provisioned_through_the_sandbox_and_its_webhooks_arrive_through_a_source() {
    let app = TestApp::spawn().await;
    let t = app.tenant("siigo").await;
    let sandbox = Sandbox::start().await;
    let erp = TestReceiver::start().await;
    app.subscribe(
        &t,
        json!({"url": erp.url("/siigo"), "events": ["public.siigoapi.*"]}),
    )
    .await;

    // 1. The seed tool's arguments, through the CLI process.
    let out = run_cli(
        &[
            "connectors",
            "siigo",
            "subscribe",
            "--via-source",
            "products.create,products.stock.update",
            "api@acme.example",
            "access-key-0001",
            "AcmeClient1",
            "client-secret-0001",
            "--tenant",
            &t.id,
            "--description",
            "Acme stock to the ERP",
            "--header",
            "X-Erp-Token=erp-token-1",
            "--header",
            "X-Warehouse=main",
            "--sandbox-url",
            &sandbox.url,
            "--json",
            "--database-url",
            &app.db.url,
        ],
        &cli_env(&app),
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let made: Value = serde_json::from_str(&out.stdout).expect("--json prints the subscription");
    assert_eq!(made["upstream_ids"].as_array().unwrap().len(), 2, "{made}");
    let source = &made["source"];
    let secret = source["secret"].as_str().unwrap().to_string();
    let header = source["header_name"].as_str().unwrap().to_string();
    assert!(source["ingest_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/in/", app.base)));
    assert!(!out.stdout.contains("access-key-0001") && !out.stdout.contains("client-secret-0001"));

    let requests = sandbox.requests().await;
    let auth = of(&requests, "POST", "/auth");
    assert_eq!(auth.len(), 1, "{requests:?}");
    // The token request's payload: exactly Siigo's two fields.
    assert_eq!(
        auth[0]["body"],
        json!({"username": "api@acme.example", "access_key": "access-key-0001"})
    );
    let creates = of(&requests, "POST", "/v1/webhooks");
    assert_eq!(creates.len(), 2, "one subscription per event");
    let mut topics = vec![];
    let mut bearer = String::new();
    for c in &creates {
        let h = &c["headers"];
        let auth_header = h["authorization"].as_str().unwrap();
        assert!(
            auth_header.starts_with("Bearer sandbox-token-1-"),
            "{auth_header}"
        );
        bearer = auth_header.to_string();
        assert_eq!(h["partner-id"], "AcmeClient1");
        let b = &c["body"];
        assert_eq!(b["url"], source["ingest_url"]);
        assert_eq!(b["name"], "Acme stock to the ERP");
        assert_eq!(b["headers"]["X-Erp-Token"], "erp-token-1");
        assert_eq!(b["headers"]["X-Warehouse"], "main");
        // The source's secret travels in the custom header Siigo replays.
        let sent: HashMap<String, String> = serde_json::from_value(b["headers"].clone()).unwrap();
        assert!(
            sent.iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(&header) && *v == secret),
            "{sent:?}"
        );
        topics.push(b["topic"].as_str().unwrap().to_string());
    }
    topics.sort();
    assert_eq!(
        topics,
        [
            "public.siigoapi.products.create",
            "public.siigoapi.products.stock.update"
        ]
    );

    // 2. A second provision within 25 minutes (another process) reuses
    // the token.
    let out = run_cli(
        &[
            "connectors",
            "siigo",
            "subscribe",
            &erp.url("/direct"),
            "products.update",
            "api@acme.example",
            "access-key-0001",
            "AcmeClient1",
            "client-secret-0001",
            "--tenant",
            &t.id,
            "--sandbox-url",
            &sandbox.url,
            "--database-url",
            &app.db.url,
        ],
        &cli_env(&app),
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "prints Siigo's id: {}",
        out.stdout
    );
    let requests = sandbox.requests().await;
    assert_eq!(
        of(&requests, "POST", "/auth").len(),
        1,
        "the token was reused"
    );
    let creates = of(&requests, "POST", "/v1/webhooks");
    assert_eq!(creates.len(), 3);
    assert_eq!(creates[2]["headers"]["authorization"], bearer.as_str());

    // 3. Siigo forgets the token: one 401, one refresh, then success (over
    // HTTP this time).
    sandbox.post("/sandbox/revoke-tokens", json!({})).await;
    let res = app
        .post(
            &t,
            "/v1/connectors/siigo/subscriptions",
            json!({
                "url": erp.url("/direct"),
                "events": ["products.create"],
                "username": "api@acme.example",
                "access_key": "access-key-0001",
                "client_id": "AcmeClient1",
                "sandbox_url": sandbox.url,
            }),
        )
        .await;
    let created = expect_json(res, 201).await;
    let requests = sandbox.requests().await;
    assert_eq!(of(&requests, "POST", "/auth").len(), 2, "refreshed once");
    let creates = of(&requests, "POST", "/v1/webhooks");
    assert_eq!(creates.len(), 5, "the refused call and its retry");
    assert_eq!(creates[3]["headers"]["authorization"], bearer.as_str());
    assert_ne!(creates[4]["headers"]["authorization"], bearer.as_str());
    assert!(created.get("access_key").is_none());
    let listed = expect_json(app.get(&t, "/v1/connectors/siigo/subscriptions").await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    // A provisioning repeated with its Idempotency-Key (its answer lost)
    // gets the first record, and Siigo is called once.
    let provision = || {
        reqwest::Client::new()
            .post(app.url("/v1/connectors/siigo/subscriptions"))
            .bearer_auth(&t.api_key)
            .header("Idempotency-Key", "provision-direct-2")
            .json(&json!({
                "url": erp.url("/again"),
                "events": ["products.delete"],
                "username": "api@acme.example",
                "access_key": "access-key-0001",
                "client_id": "AcmeClient1",
                "sandbox_url": sandbox.url,
            }))
            .send()
    };
    let first = expect_json(provision().await.unwrap(), 201).await;
    let again = provision().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(again, 201).await["id"], first["id"]);
    let requests = sandbox.requests().await;
    let creates = of(&requests, "POST", "/v1/webhooks");
    assert_eq!(creates.len(), 6, "Siigo was called once for both");
    let listed = expect_json(app.get(&t, "/v1/connectors/siigo/subscriptions").await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 4);
    // Through a source, over HTTP: answered as soon as both read models
    // have it, not marked pending after the whole consistency timeout.
    let started = std::time::Instant::now();
    let res = app
        .post(
            &t,
            "/v1/connectors/siigo/subscriptions",
            json!({
                "via_source": true,
                "events": ["products.update"],
                "username": "api@acme.example",
                "access_key": "access-key-0001",
                "client_id": "AcmeClient1",
                "sandbox_url": sandbox.url,
            }),
        )
        .await;
    assert!(
        res.headers().get("x-hookline-consistency").is_none(),
        "{:?} after {:?}",
        res.headers().get("x-hookline-consistency"),
        started.elapsed()
    );
    let via = expect_json(res, 201).await;
    assert!(via["source"]["id"].is_string(), "{via}");
    // No credential in the log, not even sealed ones in plain sight.
    let log: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM events")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    for payload in &log {
        for secret_text in ["access-key-0001", "client-secret-0001", secret.as_str()] {
            assert!(!payload.contains(secret_text), "{payload}");
        }
    }

    // 4. The sandbox fires: Siigo's webhook reaches the ERP through the
    // header-secret source.
    let fired = sandbox
        .post(
            "/sandbox/fire",
            json!({"topic": "public.siigoapi.products.stock.update", "body": {"available_quantity": 7}}),
        )
        .await;
    assert_eq!(fired["sent"][0]["status"], 200, "{fired}");
    let got = erp.wait_for(1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["event"], "public.siigoapi.products.stock.update");
    assert_eq!(body["data"]["available_quantity"], 7);
    assert_eq!(body["data"]["company_key"], "sandbox-company");

    // Removing it deletes the subscriptions at Siigo.
    let id = made["id"].as_str().unwrap();
    let res = app
        .delete(&t, &format!("/v1/connectors/siigo/subscriptions/{id}"))
        .await;
    assert_eq!(res.status(), 204);
    let requests = sandbox.requests().await;
    assert_eq!(
        requests.iter().filter(|r| r["method"] == "DELETE").count(),
        2
    );
}

#[tokio::test]
async fn siigo_cli_errors_are_clear_and_change_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("siigo-bad").await;
    let sandbox = Sandbox::start().await;
    let run = |args: Vec<String>| {
        let env = cli_env(&app);
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&refs, &env).await
        }
    };
    let base = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "connectors",
            "siigo",
            "subscribe",
            "--via-source",
            "products.create",
            "api@acme.example",
            "k",
            "AcmeClient1",
            "s",
            "--database-url",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        v.push(app.db.url.clone());
        v.extend(extra.iter().map(ToString::to_string));
        v
    };
    let out = run(base(&[
        "--tenant",
        &t.id,
        "--header",
        "no-equals-sign",
        "--sandbox-url",
        &sandbox.url,
    ]))
    .await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("KEY=VALUE"), "{}", out.stderr);
    let out = run(base(&[
        "--tenant",
        "not-a-uuid",
        "--sandbox-url",
        &sandbox.url,
    ]))
    .await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("--tenant"), "{}", out.stderr);
    let out = run(base(&[
        "--tenant",
        &t.id,
        "--sandbox-url",
        "http://203.0.113.9:1",
    ]))
    .await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("sandbox_url"), "{}", out.stderr);
    assert!(sandbox.requests().await.is_empty(), "nothing reached Siigo");
    let listed = expect_json(app.get(&t, "/v1/connectors/siigo/subscriptions").await, 200).await;
    assert_eq!(listed["data"], json!([]));
}

/// The seed's verification snippet (003), run as written: base64-decode
/// the header, HMAC-SHA256 of the raw body keyed with the secret's UTF-8
/// bytes, constant-time compare.
async fn seed_python_verifies(secret: &str, body: &[u8], signature_header: &str) -> bool {
    const SNIPPET: &str = r#"
import hmac, hashlib, base64, sys
YOUR_WEBHOOK_SECRET = sys.argv[1]
signature_header = sys.argv[2]
payload = sys.stdin.buffer.read()  # Raw bytes
expected_signature = base64.b64decode(signature_header)
secret_key = YOUR_WEBHOOK_SECRET.encode('utf-8')
calculated_hmac = hmac.new(secret_key, payload, hashlib.sha256).digest()
is_valid = hmac.compare_digest(calculated_hmac, expected_signature)
print("valid" if is_valid else "invalid")
"#;
    use tokio::io::AsyncWriteExt as _;
    let mut child = Command::new("python3")
        .args(["-c", SNIPPET, secret, signature_header])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(body).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    match String::from_utf8_lossy(&out.stdout).trim() {
        "valid" => true,
        "invalid" => false,
        other => panic!("unexpected output {other}"),
    }
}

async fn inflow(
    app: &TestApp,
    t: &Tenant,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(&format!("/inflow/{}{path}", t.id)))
        .bearer_auth(&t.api_key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn inflow_subscription_api_manages_ordinary_subscriptions_that_the_seed_verifies() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let t = app.tenant("inflow-tools").await;
    let other = app.tenant("someone-else").await;
    let rx = TestReceiver::start().await;
    let hook_id = "6f1d2c3b-4a59-4e8f-9d0c-1b2a3c4d5e6f";
    let put = json!({
        "webHookSubscriptionId": hook_id,
        "webHookSubscriptionRequestId": "0b5e2f71-9c3d-4a1e-8f60-7d2c1b0a9e8f",
        "url": rx.url("/inflow"),
        "events": ["salesOrder.created", "salesOrder.updated"],
    });

    // PUT subscribes; the base64 secret is shown only here.
    let res = inflow(&app, &t, Method::PUT, "/webhooks", Some(put.clone())).await;
    let created = expect_json(res, 200).await;
    assert_eq!(created["webHookSubscriptionId"], hook_id);
    let secret = created["secret"].as_str().unwrap().to_string();
    assert_eq!(
        STANDARD.decode(&secret).unwrap().len(),
        32,
        "base64 of 32 bytes"
    );
    assert_eq!(created["isDisabled"], false);

    // The same request again: the same subscription, nothing new, no secret.
    let res = inflow(&app, &t, Method::PUT, "/webhooks", Some(put.clone())).await;
    let again = expect_json(res, 200).await;
    assert_eq!(again["webHookSubscriptionId"], hook_id);
    assert!(again.get("secret").is_none());
    // The same request id with another body is refused.
    let mut changed = put.clone();
    changed["events"] = json!(["product.created"]);
    let res = inflow(&app, &t, Method::PUT, "/webhooks", Some(changed)).await;
    assert_eq!(expect_json(res, 409).await["code"], "request_id_reused");
    // An ordinary subscription, visible in /v1, InFlow-signed.
    let v1 = expect_json(
        app.get(&t, &format!("/v1/subscriptions/{hook_id}")).await,
        200,
    )
    .await;
    assert_eq!(v1["signature_scheme"], "hmac-sha256-base64");
    let all = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);

    // GET lists and reads, never with the secret.
    let list = expect_json(inflow(&app, &t, Method::GET, "/webhooks", None).await, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("secret").is_none());
    assert_eq!(
        list[0]["events"],
        json!(["salesOrder.created", "salesOrder.updated"])
    );
    let one = expect_json(
        inflow(&app, &t, Method::GET, &format!("/webhooks/{hook_id}"), None).await,
        200,
    )
    .await;
    assert!(one.get("secret").is_none());
    // Another tenant's key does not reach this company.
    let res = app
        .client
        .get(app.url(&format!("/inflow/{}/webhooks", t.id)))
        .bearer_auth(&other.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, 404).await["code"], "not_found");
    // Another tenant putting this id is told at once that it is taken.
    let started = std::time::Instant::now();
    let res = inflow(
        &app,
        &other,
        Method::PUT,
        "/webhooks",
        Some(json!({"webHookSubscriptionId": hook_id, "url": rx.url("/theirs"), "events": ["salesOrder.created"]})),
    )
    .await;
    assert_eq!(expect_json(res, 409).await["code"], "subscription_id_taken");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A camelCase event is delivered in InFlow's shape, signed as InFlow
    // signs, and the seed's own snippet accepts it.
    let data = json!({"salesOrderId": "8d0bb46c-3c4e-4c8f-9a0f-5d2a5b7e1c11"});
    publish(&app, &t, "salesOrder.created", data.clone()).await;
    let got = rx.wait_for(1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["event"], "salesOrder.created");
    assert_eq!(body["data"], data);
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    let signature = got[0].header("x-inflow-hmac-sha256").unwrap().to_string();
    assert!(seed_python_verifies(&secret, &got[0].body, &signature).await);
    assert!(!seed_python_verifies("not-the-secret", &got[0].body, &signature).await);
    let mut tampered = got[0].body.to_vec();
    tampered.push(b' ');
    assert!(!seed_python_verifies(&secret, &tampered, &signature).await);

    // A PUT with a new request id updates it.
    let mut update = put.clone();
    update["webHookSubscriptionRequestId"] = json!("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
    update["events"] = json!(["salesOrder.updated"]);
    let res = inflow(&app, &t, Method::PUT, "/webhooks", Some(update)).await;
    let updated = expect_json(res, 200).await;
    assert_eq!(updated["events"], json!(["salesOrder.updated"]));
    assert!(updated.get("secret").is_none());

    // Bad input: a clear 400.
    let res = inflow(
        &app,
        &t,
        Method::PUT,
        "/webhooks",
        Some(json!({"webHookSubscriptionId": "nope", "url": "ftp://x", "events": []})),
    )
    .await;
    let err = expect_json(res, 400).await;
    assert_eq!(err["code"], "validation_error");
    assert!(err["request_id"].is_string());

    // DELETE answers 200; it is gone from InFlow's view, kept in /v1's.
    let res = inflow(
        &app,
        &t,
        Method::DELETE,
        &format!("/webhooks/{hook_id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = inflow(&app, &t, Method::GET, &format!("/webhooks/{hook_id}"), None).await;
    assert_eq!(res.status(), 404);
    let v1 = expect_json(
        app.get(
            &t,
            &format!("/v1/subscriptions/{hook_id}?include_inactive=true"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v1["status"], "deleted");
}

#[tokio::test]
async fn concurrent_inflow_puts_of_one_new_id_create_it_once_and_update_it() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let t = app.tenant("inflow-race").await;
    let rx = TestReceiver::start().await;
    let hook_id = uuid::Uuid::now_v7().to_string();
    let puts = (0..8).map(|i| {
        let body = json!({
            "webHookSubscriptionId": hook_id,
            "webHookSubscriptionRequestId": uuid::Uuid::now_v7().to_string(),
            "url": rx.url(&format!("/inflow-{i}")),
            "events": ["salesOrder.created"],
        });
        let (app, t) = (&app, &t);
        async move {
            let res = inflow(app, t, Method::PUT, "/webhooks", Some(body)).await;
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(puts).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{answers:?}");
    let with_secret = answers
        .iter()
        .filter(|(_, b)| b.get("secret").is_some())
        .count();
    assert_eq!(with_secret, 1, "created once: {answers:?}");
    let all = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
    // The same request sent several times at once (a client's retries):
    // the losers are not told they duplicate their own subscription.
    let same = json!({
        "webHookSubscriptionId": uuid::Uuid::now_v7().to_string(),
        "webHookSubscriptionRequestId": uuid::Uuid::now_v7().to_string(),
        "url": rx.url("/inflow-same"),
        "events": ["salesOrder.created"],
    });
    let puts = (0..8).map(|_| {
        let (app, t, body) = (&app, &t, same.clone());
        async move {
            let res = inflow(app, t, Method::PUT, "/webhooks", Some(body)).await;
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(puts).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(_, b)| b.get("secret").is_some())
            .count(),
        1,
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_siigo_provisioning_cut_off_by_the_request_timeout_still_ends_recorded() {
    use hookline_tests::receiver::Reply;
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let t = app.tenant("acme").await;
    // A Siigo that is slow to create the second subscription.
    let siigo = TestReceiver::start().await;
    let hook = |id: &str, topic: &str| {
        Reply::status(200)
            .header("content-type", "application/json")
            .body(
                &json!({"id": id, "url": "https://erp.example/hook", "topic": topic, "active": true})
                    .to_string(),
            )
    };
    siigo.script(vec![
        Reply::status(200)
            .header("content-type", "application/json")
            .body(
                &json!({"access_token": "tok", "expires_in": 86400, "token_type": "Bearer"})
                    .to_string(),
            ),
        hook("up-1", "public.siigoapi.products.create"),
        hook("up-2", "public.siigoapi.products.update").delay(std::time::Duration::from_secs(3)),
    ]);
    let res = app
        .post(
            &t,
            "/v1/connectors/siigo/subscriptions",
            json!({
                "url": "https://erp.example/hook",
                "events": ["products.create", "products.update"],
                "username": "api@acme.example",
                "access_key": "access-key-0001",
                "sandbox_url": siigo.url(""),
            }),
        )
        .await;
    // Not "timed out, nothing stored": the outcome was not known yet.
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("outcome_unknown")),
        "{body}"
    );
    // The provisioning went on to its end: both of Siigo's subscriptions
    // are recorded, none is left behind unknown to Hookline.
    let listed = hookline_tests::eventually("the provisioning is recorded", WAIT, || async {
        let listed =
            expect_json(app.get(&t, "/v1/connectors/siigo/subscriptions").await, 200).await;
        (listed["data"].as_array().map(Vec::len) == Some(1)).then_some(listed)
    })
    .await;
    assert_eq!(
        listed["data"][0]["upstream_ids"],
        json!(["up-1", "up-2"]),
        "{listed}"
    );
}

#[tokio::test]
async fn an_inflow_put_without_an_id_repeated_answers_the_same_subscription() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let t = app.tenant("inflow-retry").await;
    let rx = TestReceiver::start().await;
    let put = json!({
        "webHookSubscriptionRequestId": uuid::Uuid::now_v7().to_string(),
        "url": rx.url("/no-id"),
        "events": ["salesOrder.created"],
    });
    let first = expect_json(
        inflow(&app, &t, Method::PUT, "/webhooks", Some(put.clone())).await,
        200,
    )
    .await;
    assert!(first["secret"].is_string(), "{first}");
    // The answer was lost; the tool sends the same request again.
    let again = expect_json(
        inflow(&app, &t, Method::PUT, "/webhooks", Some(put.clone())).await,
        200,
    )
    .await;
    assert_eq!(
        again["webHookSubscriptionId"],
        first["webHookSubscriptionId"]
    );
    assert!(again.get("secret").is_none(), "{again}");
    let all = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
    // The same request id with another body is refused.
    let mut other = put.clone();
    other["url"] = json!(rx.url("/elsewhere"));
    let res = expect_json(
        inflow(&app, &t, Method::PUT, "/webhooks", Some(other)).await,
        409,
    )
    .await;
    assert_eq!(res["code"], "request_id_reused");
    // Another tenant's request with the same id makes its own.
    let t2 = app.tenant("inflow-other").await;
    let theirs = expect_json(
        inflow(&app, &t2, Method::PUT, "/webhooks", Some(put)).await,
        200,
    )
    .await;
    assert_ne!(
        theirs["webHookSubscriptionId"],
        first["webHookSubscriptionId"]
    );

    // DELETEs sent at once: one unsubscribes, the others find it gone.
    let path = format!(
        "/webhooks/{}",
        first["webHookSubscriptionId"].as_str().unwrap()
    );
    let deletes = (0..5).map(|_| {
        let (app, t, path) = (&app, &t, path.clone());
        async move {
            inflow(app, t, Method::DELETE, &path, None)
                .await
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures::future::join_all(deletes).await;
    statuses.sort_unstable();
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses[1..].iter().all(|s| *s == 404), "{statuses:?}");
}

/// Siigo's answers are read up to a bound: an endless (or 5 MiB) answer
/// to a create is a lost answer, checked against Siigo's list before
/// anything is made again; its error texts come without credentials,
/// control characters or their whole length.
#[tokio::test]
async fn siigos_answers_are_bounded_and_its_error_texts_tamed() {
    use hookline_tests::receiver::Reply;
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let siigo = TestReceiver::start().await;
    let json_reply = |body: Value| {
        Reply::status(200)
            .header("content-type", "application/json")
            .body(&body.to_string())
    };
    // Provisions one subscription for `url` with this access key at a
    // Siigo `siigo`, answering with the status and body.
    let provision = |url: &'static str, access_key: &'static str, siigo: String, status: u16| {
        let app = &app;
        let t = &t;
        async move {
            expect_json(
                app.post(
                    t,
                    "/v1/connectors/siigo/subscriptions",
                    json!({
                        "url": url,
                        "events": ["products.create"],
                        "username": "api@acme.example",
                        "access_key": access_key,
                        "sandbox_url": siigo,
                    }),
                )
                .await,
                status,
            )
            .await
        }
    };
    let token = json!({"access_token": "tok-abcdef-123", "expires_in": 86400});
    // (The first scenario's answer is over 4 MiB; so are the lost ones.)
    let huge = format!("{{\"id\": \"up-1\", \"pad\": \"{}\"}}", "x".repeat(5 << 20));
    // A create whose answer is lost (read up to the bound, then dropped).
    let lost = || {
        Reply::status(200)
            .header("content-type", "application/json")
            .body(&huge)
    };
    siigo.script(vec![
        json_reply(token.clone()),
        lost(),
        // The check before trying again: Siigo's list has it.
        json_reply(json!([{"id": "up-1", "url": "https://erp.example/hook",
                           "topic": "public.siigoapi.products.create"}])),
    ]);
    let created = provision(
        "https://erp.example/hook",
        "access-key-0001",
        siigo.url(""),
        201,
    )
    .await;
    assert_eq!(created["upstream_ids"], json!(["up-1"]), "{created}");
    let creates = siigo
        .received()
        .iter()
        .filter(|r| r.path == "/v1/webhooks")
        .count();
    assert_eq!(creates, 2, "one create and one list, not a second create");

    // Siigo's list in pages: the lost create is on the second one, which
    // the check reads (it was made twice when only the first was read).
    let siigo = TestReceiver::start().await;
    let other = |n: u32| {
        json!({"id": format!("up-other-{n}"), "url": format!("https://erp.example/other-{n}"),
               "topic": "public.siigoapi.products.create"})
    };
    siigo.script(vec![
        json_reply(token.clone()),
        lost(),
        json_reply(
            json!({"pagination": {"page": 1, "page_size": 2, "total_results": 3},
                          "results": [other(1), other(2)],
                          "_links": {"next": {"href": "/v1/webhooks?page=2"}}}),
        ),
        json_reply(
            json!({"pagination": {"page": 2, "page_size": 2, "total_results": 3},
                          "results": [{"id": "up-5", "url": "https://erp.example/paged",
                                       "topic": "public.siigoapi.products.create"}]}),
        ),
    ]);
    let created = provision(
        "https://erp.example/paged",
        "access-key-0005",
        siigo.url(""),
        201,
    )
    .await;
    assert_eq!(created["upstream_ids"], json!(["up-5"]), "{created}");
    let queries = webhook_calls(&siigo);
    // One create, then the list's two pages; no second create.
    assert_eq!(queries, ["", "", "page=2"], "{queries:?}");
    // Found on the first page: the next ones are not read (one that
    // cannot be read must not hide a subscription already found).
    let siigo = TestReceiver::start().await;
    siigo.script(vec![
        json_reply(token.clone()),
        lost(),
        json_reply(
            json!({"pagination": {"page": 1, "page_size": 2, "total_results": 4},
                          "results": [other(1), {"id": "up-6", "url": "https://erp.example/first",
                                                 "topic": "public.siigoapi.products.create"}]}),
        ),
        Reply::status(500),
    ]);
    let created = provision(
        "https://erp.example/first",
        "access-key-0006",
        siigo.url(""),
        201,
    )
    .await;
    assert_eq!(created["upstream_ids"], json!(["up-6"]), "{created}");
    let queries = webhook_calls(&siigo);
    assert_eq!(queries, ["", ""], "{queries:?}");

    // Every try's answer lost, the last one's too: the check after the
    // last try finds what it made (nothing is left at Siigo unrecorded).
    let siigo = TestReceiver::start().await;
    siigo.script(vec![
        json_reply(token.clone()),
        Reply::status(200).body(&huge),
        json_reply(json!([])),
        Reply::status(200).body(&huge),
        json_reply(json!([])),
        Reply::status(200).body(&huge),
        json_reply(json!([{"id": "up-9", "url": "https://erp.example/last",
                           "topic": "public.siigoapi.products.create"}])),
    ]);
    let created = provision(
        "https://erp.example/last",
        "access-key-0003",
        siigo.url(""),
        201,
    )
    .await;
    assert_eq!(created["upstream_ids"], json!(["up-9"]), "{created}");

    // A refusal quoting the credentials (once as JSON escapes them), with
    // a terminal escape and a line break in 100,000 characters.
    let siigo = TestReceiver::start().await;
    let message = format!(
        "bad key access-key-0002 \u{1b}[31mred\nline {}",
        "y".repeat(100_000)
    );
    siigo.script(vec![
        json_reply(token),
        Reply::status(400)
            .header("content-type", "application/json")
            .body(
                &json!({"Errors": [{"Code": "invalid", "Message": message}]})
                    .to_string()
                    .replace("key access-key-0002", "key access\\u002Dkey-0002"),
            ),
    ]);
    let refused = provision(
        "https://erp.example/hook",
        "access-key-0002",
        siigo.url(""),
        422,
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(!detail.contains("access-key-0002"), "{detail}");
    assert!(detail.contains("[redacted]"), "{detail}");
    assert!(!detail.chars().any(char::is_control), "{detail}");
    assert!(detail.len() < 1_000, "{} bytes", detail.len());
}

/// The CLI refuses what it cannot do right: a deleted tenant, and
/// `--via-source` without the address Siigo must be given.
#[tokio::test]
async fn siigo_cli_refuses_a_deleted_tenant_and_a_source_without_a_public_url() {
    let app = TestApp::spawn().await;
    let t = app.tenant("gone").await;
    let sandbox = Sandbox::start().await;
    let args = |tenant: &str| -> Vec<String> {
        [
            "connectors",
            "siigo",
            "subscribe",
            "--via-source",
            "products.create",
            "api@acme.example",
            "k",
            "AcmeClient1",
            "s",
            "--database-url",
            &app.db.url,
            "--tenant",
            tenant,
            "--sandbox-url",
            &sandbox.url,
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    };
    // No HOOKLINE_PUBLIC_URL.
    let mut env = app.env.clone();
    env.remove("HOOKLINE_PUBLIC_URL");
    let a = args(&t.id);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run_cli(&refs, &env).await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("HOOKLINE_PUBLIC_URL"), "{}", out.stderr);
    // A deleted tenant.
    let res = app
        .client
        .delete(app.url(&format!("/admin/tenants/{}", t.id)))
        .bearer_auth(hookline_tests::server::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let out = run_cli(&refs, &cli_env(&app)).await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("deleted"), "{}", out.stderr);
    assert!(sandbox.requests().await.is_empty(), "nothing reached Siigo");
}

/// Ctrl-C, SIGTERM or SIGHUP (a closed terminal) while `connectors siigo
/// subscribe` is making webhooks at Siigo: the command finishes (records
/// them) instead of stopping half-way, which left webhooks at Siigo that
/// Hookline neither recorded nor removed.
#[tokio::test]
async fn an_interrupted_siigo_subscribe_finishes_and_records_what_it_made() {
    let app = TestApp::spawn().await;
    let t = app.tenant("siigo").await;
    let sandbox = Sandbox::start().await;
    for (round, signal) in ["TERM", "HUP"].into_iter().enumerate() {
        interrupted_subscribe(&app, &t, &sandbox, signal, round + 1).await;
    }
}

/// `connectors siigo subscribe` of `events` for `t` through the sandbox,
/// answering in JSON.
fn subscribe_args(events: &str, t: &Tenant, sandbox: &Sandbox, app: &TestApp) -> Vec<String> {
    [
        "connectors",
        "siigo",
        "subscribe",
        "https://erp.example.com/siigo",
        events,
        "api@acme.example",
        "access-key-0001",
        "AcmeClient1",
        "client-secret-0001",
        "--tenant",
        &t.id,
        "--sandbox-url",
        &sandbox.url,
        "--json",
        "--database-url",
        &app.db.url,
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

async fn interrupted_subscribe(
    app: &TestApp,
    t: &Tenant,
    sandbox: &Sandbox,
    signal: &str,
    round: usize,
) {
    sandbox.post("/sandbox/slow", json!({"ms": 700})).await;
    let made_before = of(&sandbox.requests().await, "POST", "/v1/webhooks").len();
    let mut cli = Command::new(binary())
        .args(subscribe_args(
            "products.create,products.update,products.stock.update",
            t,
            sandbox,
            app,
        ))
        .envs(cli_env(app))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Once the first creation has reached Siigo, interrupt.
    hookline_tests::eventually("the first webhook is being made", WAIT, || async {
        let requests = sandbox.requests().await;
        (of(&requests, "POST", "/v1/webhooks").len() > made_before).then_some(())
    })
    .await;
    let pid = cli.id().unwrap().to_string();
    let signalled = std::process::Command::new("kill")
        .args([format!("-{signal}").as_str(), &pid])
        .status()
        .unwrap();
    assert!(signalled.success());
    let out = tokio::time::timeout(Duration::from_secs(60), async {
        let status = cli.wait().await.unwrap();
        let mut stdout = String::new();
        let mut stderr = String::new();
        use tokio::io::AsyncReadExt;
        cli.stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .await
            .unwrap();
        cli.stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        (status, stdout, stderr)
    })
    .await
    .unwrap();
    assert!(
        out.2.contains("interrupted: finishing first"),
        "{signal}: {}",
        out.2
    );
    assert_eq!(out.0.code(), Some(0), "{signal}: {}", out.2);
    let made: Value = serde_json::from_str(&out.1).expect("the subscription");
    assert_eq!(made["upstream_ids"].as_array().unwrap().len(), 3, "{made}");
    sandbox.post("/sandbox/slow", json!({"ms": 0})).await;
    let requests = sandbox.requests().await;
    assert_eq!(of(&requests, "POST", "/v1/webhooks").len(), 3 * round);
    assert!(of(&requests, "DELETE", "/v1/webhooks").is_empty());
    let listed = run_cli(
        &[
            "connectors",
            "siigo",
            "list",
            "--tenant",
            &t.id,
            "--json",
            "--database-url",
            &app.db.url,
        ],
        &cli_env(app),
    )
    .await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(
        listed.stdout.contains(made["id"].as_str().unwrap()),
        "{}",
        listed.stdout
    );
}

#[tokio::test]
async fn the_cli_lists_what_the_cli_provisioned_with_no_server_running() {
    // Only a server ran the upstream subscriptions' projection: with none
    // running, `list` showed nothing of what `subscribe` had just made.
    let mut app = TestApp::spawn().await;
    let t = app.tenant("siigo-offline").await;
    app.stop().await;
    let sandbox = Sandbox::start().await;
    let env = cli_env(&app);
    let args = subscribe_args("products.create", &t, &sandbox, &app);
    let made = run_cli(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let made: Value = serde_json::from_str(&made.stdout).expect("the subscription");
    let id = made["id"].as_str().unwrap();
    let list = |json: bool| {
        let mut args = vec![
            "connectors",
            "siigo",
            "list",
            "--tenant",
            &t.id,
            "--database-url",
            &app.db.url,
        ];
        if json {
            args.push("--json");
        }
        let env = env.clone();
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&refs, &env).await
        }
    };
    let listed = list(true).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let rows: Vec<Value> = listed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{}", listed.stdout);
    assert_eq!(rows[0]["id"], id);
    assert_eq!(rows[0]["upstream_ids"], made["upstream_ids"]);
    assert!(!listed.stderr.contains("warning"), "{}", listed.stderr);
    // Removed from the command line too, it is listed as removed.
    let removed = run_cli(
        &[
            "connectors",
            "siigo",
            "remove",
            id,
            "--tenant",
            &t.id,
            "--database-url",
            &app.db.url,
        ],
        &env,
    )
    .await;
    assert_eq!(removed.code, Some(0), "{}", removed.stderr);
    let listed = list(false).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(!listed.stdout.contains(id), "{}", listed.stdout);
}

/// The query strings of a Siigo stand-in's calls to `/v1/webhooks`, in
/// order (a create has none).
fn webhook_calls(siigo: &TestReceiver) -> Vec<String> {
    siigo
        .received()
        .iter()
        .filter(|r| r.path == "/v1/webhooks")
        .map(|r| r.query.clone())
        .collect()
}
