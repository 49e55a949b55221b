//! A real HTTP receiver on 127.0.0.1 that records every request and answers
//! as the test tells it (status, headers, delay), so tests can check exactly
//! what arrived.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            body: String::new(),
            delay: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }
}

/// What arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// The query string (empty without one).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
    /// Record requests without their bodies (for tests sending many
    /// large ones).
    forget_bodies: bool,
}

/// While closed, requests wait before they are recorded or answered.
#[derive(Clone)]
struct Gate(Arc<watch::Sender<bool>>);

#[derive(Clone)]
pub struct TestReceiver {
    pub address: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    count: watch::Receiver<usize>,
    gate: Gate,
}

#[derive(Clone)]
struct AppState {
    inner: Arc<Mutex<Inner>>,
    count: Arc<watch::Sender<usize>>,
    gate: Gate,
}

async fn handle(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut open = state.gate.0.subscribe();
    let _ = open.wait_for(|o| *o).await;
    let reply = {
        let mut inner = state.inner.lock().unwrap();
        let body = if inner.forget_bodies {
            Bytes::new()
        } else {
            body
        };
        inner.received.push(Received {
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            headers,
            body,
            at: Instant::now(),
        });
        let n = inner.received.len();
        state.count.send_replace(n);
        inner
            .script
            .pop_front()
            .or_else(|| inner.default.clone())
            .unwrap_or_else(|| Reply::status(200))
    };
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (n, v) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    response
}

impl TestReceiver {
    /// Starts a receiver answering 200 until told otherwise.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// The same on another local address (e.g. `[::1]:0`).
    pub async fn start_on(bind: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let (tx, rx) = watch::channel(0usize);
        let gate = Gate(Arc::new(watch::channel(true).0));
        let state = AppState {
            inner: inner.clone(),
            count: Arc::new(tx),
            gate: gate.clone(),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            inner,
            count: rx,
            gate,
        }
    }

    /// Holds incoming requests (unrecorded, unanswered) until `resume`.
    pub fn pause(&self) {
        self.gate.0.send_replace(false);
    }

    pub fn resume(&self) {
        self.gate.0.send_replace(true);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Answers these replies, in order, to the next requests.
    pub fn script(&self, replies: Vec<Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// Answers this once the script is used up.
    pub fn default_reply(&self, reply: Reply) {
        self.inner.lock().unwrap().default = Some(reply);
    }

    /// Records requests without their bodies from now on.
    pub fn forget_bodies(&self) {
        self.inner.lock().unwrap().forget_bodies = true;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until at least `n` requests arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut rx = self.count.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await;
        assert!(
            reached.is_ok(),
            "expected {n} requests, got {} within {timeout:?}",
            self.count()
        );
        self.received()
    }
}
