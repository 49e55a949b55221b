//! `GET /openapi.json`: the running server serves the committed
//! `docs/openapi.json`, and every operation it documents is routed and
//! guarded as documented.

use hookline_tests::server::ADMIN_TOKEN;
use hookline_tests::TestApp;
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert!(res.headers().contains_key("x-request-id"));
    let served = res.bytes().await.unwrap();
    let doc: Value = serde_json::from_slice(&served).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let path = committed_path();
    if std::env::var_os("HOOKLINE_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == served.as_ref(),
        "docs/openapi.json differs from what the server serves at GET /openapi.json.\n\
         Regenerate it with\n    \
         HOOKLINE_WRITE_OPENAPI=1 cargo test -p hookline-api the_committed_copy_is_current\n\
         (or HOOKLINE_WRITE_OPENAPI=1 cargo test -p hookline-tests --test e2e the_served_document)\n\
         and commit the result."
    );
}

/// A concrete path for a documented one.
fn concrete(path: &str) -> String {
    path.replace("{id}", "01936f2e-5b7a-7c3d-9e4f-1a2b3c4d5e6f")
        .replace("{key_id}", "01936f2e-4a11-7e55-b066-5e6f708192a3")
        .replace("{name}", "invoice.created")
        .replace("{request_id}", "req-openapi-1")
        .replace("{file}", "docs.js")
        .replace("{source_id}", "01936f2e-5b7a-7c3d-9e4f-1a2b3c4d5e6f")
        .replace("{companyId}", "01936f2e-4a10-7c3d-8e4f-1a2b3c4d5e01")
        .replace("{webHookId}", "01936f2e-5b7a-7c3d-9e4f-1a2b3c4d5e6f")
}

/// Every documented operation exists: the guarded ones answer 401 with
/// the wrong credentials (the guard runs only on a matched route, so an
/// undocumented path would be the fallback's 404), and the public ones
/// answer without any.
#[tokio::test]
async fn every_documented_operation_is_routed_and_guarded_as_documented() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let t = app.tenant("openapi").await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = app.url(&concrete(path));
            let scheme = op["security"][0]
                .as_object()
                .and_then(|s| s.keys().next().cloned());
            let id = op["operationId"].as_str().unwrap();
            match scheme.as_deref() {
                Some(scheme) => {
                    // No credentials, then the other guard's.
                    let wrong = if scheme == "tenant_api_key" {
                        ADMIN_TOKEN.to_string()
                    } else {
                        t.api_key.clone()
                    };
                    for auth in [None, Some(wrong)] {
                        let mut req = app.client.request(method.clone(), &url);
                        if let Some(token) = &auth {
                            req = req.bearer_auth(token);
                        }
                        let res = req.send().await.unwrap();
                        assert_eq!(res.status(), 401, "{id}: {method} {path} with {auth:?}");
                        assert_eq!(res.headers()["www-authenticate"], "Bearer", "{id}");
                        let body: Value = res.json().await.unwrap();
                        assert_eq!(body["code"], "unauthorized", "{id}");
                    }
                }
                None if id == "receive_inbound" => {
                    // Public, and routed: an unknown source is its own 404
                    // (the fallback's is `not_found`).
                    let res = app
                        .client
                        .request(method.clone(), &url)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 404, "{id}: {method} {path}");
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["code"], "source_not_found", "{id}");
                }
                None => {
                    let res = app
                        .client
                        .request(method.clone(), &url)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200, "{id}: {method} {path}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 72);
}
