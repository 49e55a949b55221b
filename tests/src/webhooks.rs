//! Helpers for delivery tests: publishing, waiting for a delivery's status,
//! and verifying signatures independently of Hookline's own signing code.

use crate::eventually;
use crate::server::{expect_json, Tenant, TestApp};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

/// `data` the built-in `invoice.created` type's schema accepts.
pub fn invoice() -> Value {
    json!({"invoice_id": "inv-1", "invoice_number": "001", "amount": "1500.00", "currency": "USD"})
}

/// Publishes an event and returns the 202 body.
pub async fn publish(app: &TestApp, t: &Tenant, event_type: &str, data: Value) -> Value {
    let res = app
        .post(
            t,
            "/v1/events",
            json!({"event_type": event_type, "data": data}),
        )
        .await;
    expect_json(res, 202).await
}

/// Waits until the delivery has `status` and returns it.
pub async fn wait_status(
    app: &TestApp,
    t: &Tenant,
    delivery_id: &str,
    status: &str,
    timeout: Duration,
) -> Value {
    let path = format!("/v1/deliveries/{delivery_id}");
    let mut last = Value::Null;
    let found = tokio::time::timeout(timeout, async {
        loop {
            let res = app.get(t, &path).await;
            if res.status() == 200 {
                let v: Value = res.json().await.unwrap();
                if v["status"] == status {
                    return v;
                }
                last = v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    match found {
        Ok(v) => v,
        Err(_) => panic!("delivery {delivery_id} did not reach {status}; last seen: {last}"),
    }
}

/// Waits until the subscription has `status`.
pub async fn wait_subscription_status(app: &TestApp, t: &Tenant, id: &str, status: &str) -> Value {
    let path = format!("/v1/subscriptions/{id}?include_inactive=true");
    eventually("subscription status", Duration::from_secs(10), || async {
        let v: Value = app.get(t, &path).await.json().await.ok()?;
        (v["status"] == status).then_some(v)
    })
    .await
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Standard Webhooks by the spec, written here from scratch: the key is the
/// base64 part of `whsec_…`, the content `{id}.{timestamp}.{body}`.
pub fn standard_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &content)))
}

/// Verifies with the official Standard Webhooks Rust library.
pub fn official_verify(secret: &str, headers: &http::HeaderMap, body: &[u8]) -> bool {
    let wh = standardwebhooks::Webhook::new(secret).expect("whsec secret");
    wh.verify(body, headers).is_ok()
}
