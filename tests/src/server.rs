//! The real Hookline server, in-process on port 0, against a fresh database.

use crate::cluster::{fresh_database, TestDatabase};
use hookline_api::Application;
use hookline_infrastructure::config::{CliOverrides, Settings};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestApp {
    pub address: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub data_dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub api_key: String,
}

fn default_env() -> HashMap<String, String> {
    HashMap::from([
        ("HOOKLINE_ADMIN_TOKEN".to_string(), ADMIN_TOKEN.to_string()),
        (
            "HOOKLINE_ALLOW_PRIVATE_TARGETS".to_string(),
            "127.0.0.0/8,::1/128".to_string(),
        ),
        (
            "HOOKLINE_SECRET_KEY".to_string(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
        ),
        // Tests share two cores and one cluster with tests that load it
        // hard (a 300,000-event insert, rebuilds): a read model may trail
        // its log by more than the default 2 s there, and a key issued a
        // moment earlier would then be unknown. Waiting longer changes
        // nothing when they keep up.
        (
            "HOOKLINE_CONSISTENCY_TIMEOUT_MS".to_string(),
            "10000".to_string(),
        ),
    ])
}

impl TestApp {
    /// A server with the default test settings on a fresh database.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A server whose environment `tweak` may change (keys are `HOOKLINE_*`
    /// variable names).
    pub async fn spawn_with(tweak: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        let mut env = default_env();
        tweak(&mut env);
        let db = fresh_database().await;
        let data_dir = tempfile::tempdir().expect("data dir");
        Self::start(db, data_dir, env).await
    }

    /// A server with the default test settings on `db`.
    pub async fn on(db: TestDatabase) -> Self {
        let data_dir = tempfile::tempdir().expect("data dir");
        Self::start(db, data_dir, default_env()).await
    }

    async fn start(
        db: TestDatabase,
        data_dir: tempfile::TempDir,
        env: HashMap<String, String>,
    ) -> Self {
        let cli = CliOverrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.path().to_path_buf()),
            database_url: Some(db.url.clone()),
            ..CliOverrides::default()
        };
        let settings = Settings::load(&cli, |k| env.get(k).cloned()).expect("test settings");
        let app = Application::build(settings).await.expect("build app");
        let address = app.address().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            db,
            data_dir,
            env,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server run");
        }
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let env = std::mem::take(&mut self.env);
        let TestApp { db, data_dir, .. } = self;
        Self::start(db, data_dir, env).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn ready(&self) {
        wait_ready(&self.client, &self.url("/readyz")).await;
    }

    /// Creates a tenant through the admin API.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let res = self
            .client
            .post(self.url("/admin/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("admin request");
        assert_eq!(res.status(), 201, "create tenant");
        let body: Value = res.json().await.expect("json");
        Tenant {
            id: body["tenant_id"].as_str().expect("tenant_id").to_string(),
            api_key: body["api_key"].as_str().expect("api_key").to_string(),
        }
    }

    /// An authenticated request with an optional JSON body.
    pub async fn call(
        &self,
        tenant: &Tenant,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&tenant.api_key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, tenant: &Tenant, path: &str) -> Response {
        self.call(tenant, Method::GET, path, None).await
    }

    pub async fn post(&self, tenant: &Tenant, path: &str, body: Value) -> Response {
        self.call(tenant, Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, tenant: &Tenant, path: &str, body: Value) -> Response {
        self.call(tenant, Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, tenant: &Tenant, path: &str) -> Response {
        self.call(tenant, Method::DELETE, path, None).await
    }

    /// Creates a subscription and returns its JSON (asserting 201).
    pub async fn subscribe(&self, tenant: &Tenant, body: Value) -> Value {
        let res = self.post(tenant, "/v1/subscriptions", body).await;
        let status = res.status();
        let json: Value = res.json().await.expect("json");
        assert_eq!(status, 201, "create subscription: {json}");
        json
    }
}

/// The events of a history answer (`{data: [event…]}`) of one type.
pub fn events_of<'a>(history: &'a Value, event_type: &str) -> Vec<&'a Value> {
    history["data"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["event_type"] == event_type)
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a JSON body, asserting the status first (with the body in the
/// message when it differs).
pub async fn expect_json(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Polls a `/readyz` URL until it answers 200.
pub async fn wait_ready(client: &reqwest::Client, url: &str) {
    crate::eventually(
        "the server is ready",
        std::time::Duration::from_secs(30),
        || async {
            let res = client.get(url).send().await.ok()?;
            (res.status() == 200).then_some(())
        },
    )
    .await;
}
