//! The benchmark's receiver: answers 204 (or 503 to half of the first
//! attempts in the retry storm), verifies every Standard Webhooks signature
//! and records when each delivery first arrived.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

#[derive(Default)]
pub struct Stats {
    /// Delivery ids seen at least once.
    pub seen: Mutex<HashSet<String>>,
    /// ms from publish (the body's timestamp) to the first arrival.
    pub latencies: Mutex<Vec<f64>>,
    /// ms from publish to each delivery's first attempt (retry storm).
    pub first_attempts: Mutex<Vec<f64>>,
    pub requests: AtomicU64,
    pub bad_signatures: AtomicU64,
    pub last_arrival: Mutex<Option<Instant>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub address: SocketAddr,
    pub stats: Arc<Stats>,
    keys: Arc<RwLock<HashMap<String, Vec<u8>>>>,
}

#[derive(Clone)]
struct AppState {
    stats: Arc<Stats>,
    keys: Arc<RwLock<HashMap<String, Vec<u8>>>>,
    storm: bool,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let id = header(headers, "webhook-id");
    let ts = header(headers, "webhook-timestamp");
    // Like the official verifiers: a timestamp more than five minutes off
    // is refused (replay protection).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match ts.parse::<i64>() {
        Ok(t) if (now - t).abs() <= 300 => {}
        _ => return false,
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    header(headers, "webhook-signature")
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    timestamp: &'a str,
}

fn since_publish(body: &[u8]) -> Option<f64> {
    let env: Envelope<'_> = serde_json::from_slice(body).ok()?;
    let at = chrono::DateTime::parse_from_rfc3339(env.timestamp).ok()?;
    let ms =
        (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_microseconds()? as f64 / 1000.0;
    Some(ms.max(0.0))
}

async fn handle(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    let key = state
        .keys
        .read()
        .ok()
        .and_then(|k| k.get(uri.path()).cloned());
    if !key.is_some_and(|k| verify(&k, &headers, &body)) {
        state.stats.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let id = header(&headers, "webhook-id").to_string();
    let first_attempt = header(&headers, "x-hookline-attempt") == "1";
    let latency = since_publish(&body);
    if state.storm && first_attempt {
        if let Some(ms) = latency {
            state.stats.first_attempts.lock().unwrap().push(ms);
        }
        // Half of the first attempts fail (decided by the id, so stable).
        if id.bytes().last().is_some_and(|b| b % 2 == 0) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let new = state.stats.seen.lock().unwrap().insert(id);
    if new {
        if let Some(ms) = latency {
            state.stats.latencies.lock().unwrap().push(ms);
        }
        *state.stats.last_arrival.lock().unwrap() = Some(Instant::now());
    }
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start(storm: bool) -> Self {
        let stats = Arc::new(Stats::default());
        let keys = Arc::new(RwLock::new(HashMap::new()));
        let state = AppState {
            stats: stats.clone(),
            keys: keys.clone(),
            storm,
        };
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            stats,
            keys,
        }
    }

    /// Expects deliveries on `path` signed with `secret` (`whsec_…`).
    pub fn expect(&self, path: &str, secret: &str) {
        let key = STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        self.keys.write().unwrap().insert(path.to_string(), key);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}
