//! `hookline connectors siigo sandbox --listen ADDR`: a local stand-in for
//! Siigo, test equipment only. It has Siigo's token endpoint and webhook
//! subscription endpoints (with their checks: token, bearer, `Partner-Id`,
//! topic), records every request it receives, and on request delivers a
//! webhook to its subscribers, with the custom headers they registered.
//!
//! Control routes (not Siigo's): `GET /sandbox/requests` (what arrived),
//! `POST /sandbox/revoke-tokens` (every token is refused from now on),
//! `POST /sandbox/fail-next {"status": 503, "times": 1}` (the next calls
//! to `/v1/...` fail so), `POST /sandbox/slow {"ms": 500}` (every webhook
//! creation answers that late; 0 ends it), `POST /sandbox/fire {"topic"?, "body"?}`
//! (deliver a webhook to matching subscriptions).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Webhook {
    id: String,
    application_id: String,
    url: String,
    topic: String,
    name: Option<String>,
    headers: BTreeMap<String, String>,
    created_at: String,
}

impl Webhook {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "application_id": self.application_id,
            "url": self.url,
            "topic": self.topic,
            "name": self.name,
            "company_key": COMPANY_KEY,
            "active": true,
            "created_at": self.created_at,
        })
    }
}

const COMPANY_KEY: &str = "sandbox-company";

#[derive(Debug, Default)]
struct Sandbox {
    tokens: HashSet<String>,
    issued: u64,
    username: Option<String>,
    webhooks: Vec<Webhook>,
    requests: Vec<Value>,
    fail_next: VecDeque<u16>,
    /// How late a webhook creation answers.
    slow_ms: u64,
}

type Shared = Arc<Mutex<Sandbox>>;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "Status": status.as_u16(),
            "Errors": [{"Code": code, "Message": message, "Params": [], "Detail": null}],
        })),
    )
        .into_response()
}

fn record(sandbox: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    if let Ok(mut s) = sandbox.lock() {
        s.requests.push(json!({
            "method": method.as_str(),
            "path": uri.path(),
            "headers": headers,
            "body": body,
        }));
    }
}

async fn auth(
    State(sandbox): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&sandbox, &method, &uri, &headers, &body);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| {
        parsed
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (Some(username), Some(_)) = (field("username"), field("access_key")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "parameter_required",
            "username and access_key are required",
        );
    };
    let Ok(mut s) = sandbox.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    s.issued += 1;
    let token = format!(
        "sandbox-token-{}-{}",
        s.issued,
        uuid::Uuid::new_v4().simple()
    );
    s.tokens.insert(token.clone());
    s.username = Some(username);
    Json(json!({
        "access_token": token,
        "expires_in": 86400,
        "token_type": "Bearer",
        "scope": "SiigoAPI",
    }))
    .into_response()
}

/// Siigo's checks on every `/v1` call: a forced failure, the bearer token,
/// `Partner-Id`.
fn check(sandbox: &Shared, headers: &HeaderMap) -> Option<Response> {
    let Ok(mut s) = sandbox.lock() else {
        return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    };
    if let Some(status) = s.fail_next.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return Some(error(
            status,
            "sandbox_forced_failure",
            "failure forced through /sandbox/fail-next",
        ));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| s.tokens.contains(t)) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the access token is missing, expired or invalid",
        ));
    }
    let partner = headers.get("partner-id").and_then(|v| v.to_str().ok());
    match partner {
        None => Some(error(
            StatusCode::BAD_REQUEST,
            "header_required",
            "the Partner-Id header is required",
        )),
        Some(p)
            if !(3..=100).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Some(error(
                StatusCode::BAD_REQUEST,
                "invalid_partner_id",
                "Partner-Id must be 3–100 letters and digits",
            ))
        }
        Some(_) => None,
    }
}

async fn create(
    State(sandbox): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&sandbox, &method, &uri, &headers, &body);
    let slow_ms = sandbox.lock().map(|s| s.slow_ms).unwrap_or_default();
    if slow_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(slow_ms)).await;
    }
    if let Some(refused) = check(&sandbox, &headers) {
        return refused;
    }
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| {
        parsed
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(application_id), Some(url), Some(topic)) =
        (field("application_id"), field("url"), field("topic"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "parameter_required",
            "application_id, url and topic are required",
        );
    };
    if !topic.starts_with("public.siigoapi.") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_reference",
            "the topic is not a Siigo topic",
        );
    }
    let headers: BTreeMap<String, String> = parsed
        .get("headers")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let webhook = Webhook {
        id: uuid::Uuid::new_v4().to_string(),
        application_id: application_id.to_string(),
        url: url.to_string(),
        topic: topic.to_string(),
        name: field("name").map(str::to_string),
        headers,
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    let answer = webhook.json();
    if let Ok(mut s) = sandbox.lock() {
        s.webhooks.push(webhook);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn list(
    State(sandbox): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&sandbox, &method, &uri, &headers, b"");
    if let Some(refused) = check(&sandbox, &headers) {
        return refused;
    }
    let all: Vec<Value> = sandbox
        .lock()
        .map(|s| s.webhooks.iter().map(Webhook::json).collect())
        .unwrap_or_default();
    Json(Value::Array(all)).into_response()
}

async fn remove(
    State(sandbox): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    record(&sandbox, &method, &uri, &headers, b"");
    if let Some(refused) = check(&sandbox, &headers) {
        return refused;
    }
    let Ok(mut s) = sandbox.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let before = s.webhooks.len();
    s.webhooks.retain(|w| w.id != id);
    if s.webhooks.len() == before {
        return error(StatusCode::NOT_FOUND, "not_found", "no such webhook");
    }
    Json(json!({"id": id, "deleted": true})).into_response()
}

async fn requests(State(sandbox): State<Shared>) -> Response {
    let all = sandbox
        .lock()
        .map(|s| s.requests.clone())
        .unwrap_or_default();
    Json(Value::Array(all)).into_response()
}

async fn revoke(State(sandbox): State<Shared>) -> Response {
    if let Ok(mut s) = sandbox.lock() {
        s.tokens.clear();
    }
    Json(json!({"revoked": true})).into_response()
}

async fn slow(State(sandbox): State<Shared>, Json(body): Json<Value>) -> Response {
    let ms = body
        .get("ms")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(60_000);
    if let Ok(mut s) = sandbox.lock() {
        s.slow_ms = ms;
    }
    Json(json!({"ms": ms})).into_response()
}

async fn fail_next(State(sandbox): State<Shared>, Json(body): Json<Value>) -> Response {
    let status = body.get("status").and_then(Value::as_u64).unwrap_or(503);
    let times = body
        .get("times")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .min(100);
    if let Ok(mut s) = sandbox.lock() {
        for _ in 0..times {
            s.fail_next.push_back(u16::try_from(status).unwrap_or(503));
        }
    }
    Json(json!({"status": status, "times": times})).into_response()
}

/// Delivers a webhook, as Siigo would, to every subscription of the topic
/// (all of them without one): the product body with `company_key`,
/// `username` and `topic`, and the subscription's custom headers.
async fn fire(State(sandbox): State<Shared>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
    let topic = request
        .get("topic")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (targets, username) = match sandbox.lock() {
        Ok(s) => (
            s.webhooks
                .iter()
                .filter(|w| topic.as_ref().is_none_or(|t| *t == w.topic))
                .cloned()
                .collect::<Vec<_>>(),
            s.username.clone().unwrap_or_default(),
        ),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let client = reqwest::Client::new();
    let mut sent = Vec::new();
    for hook in targets {
        let mut payload = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "code": "SKU-001",
            "name": "Sandbox product",
            "available_quantity": 10,
            "company_key": COMPANY_KEY,
            "username": username,
            "topic": hook.topic,
        });
        if let (Some(Value::Object(extra)), Value::Object(target)) =
            (request.get("body"), &mut payload)
        {
            for (k, v) in extra {
                target.insert(k.clone(), v.clone());
            }
        }
        let mut req = client.post(&hook.url).json(&payload);
        for (k, v) in &hook.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let status = match req.send().await {
            Ok(r) => json!(r.status().as_u16()),
            Err(e) => json!(format!("not delivered: {e}")),
        };
        sent.push(
            json!({"webhook_id": hook.id, "url": hook.url, "status": status, "body": payload}),
        );
    }
    Json(json!({"sent": sent})).into_response()
}

/// The sandbox's routes.
pub fn router() -> Router {
    let state: Shared = Arc::default();
    Router::new()
        .route("/auth", post(auth))
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/{id}", delete(remove))
        .route("/sandbox/requests", get(requests))
        .route("/sandbox/revoke-tokens", post(revoke))
        .route("/sandbox/fail-next", post(fail_next))
        .route("/sandbox/slow", post(slow))
        .route("/sandbox/fire", post(fire))
        .with_state(state)
}

/// Serves the sandbox on `listen` until `shutdown` completes.
///
/// # Errors
/// When the address cannot be bound.
pub async fn run(
    listen: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr()?;
    println!("THIS IS TEST EQUIPMENT: a local stand-in for Siigo (fake tokens, nothing stored, nothing sent to Siigo). Use it for tests and demonstrations only.");
    println!("Siigo sandbox listening on http://{address}");
    use std::io::Write as _;
    drop(std::io::stdout().flush());
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
