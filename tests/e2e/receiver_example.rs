//! The receiver the README and docs/receiving.md hand to newcomers
//! (`examples/receiver.py`, Python standard library only) verifies real
//! deliveries of every signature scheme, and refuses them with a wrong secret.

use hookline_tests::webhooks::{publish, wait_status};
use hookline_tests::{expect_json, Tenant, TestApp};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(15);

struct PyReceiver {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    url: String,
}

impl PyReceiver {
    async fn start(secret: &str, scheme: &str) -> Self {
        Self::start_accepting(&[secret], scheme).await
    }

    /// A receiver accepting requests signed by any of `secrets`.
    async fn start_accepting(secrets: &[&str], scheme: &str) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", "0", "--scheme", scheme])
            .args(secrets.iter().flat_map(|s| ["--secret", s]))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs examples/receiver.py");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = next_line(&mut lines).await;
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        Self {
            _child: child,
            lines,
            url,
        }
    }

    async fn next(&mut self) -> Value {
        serde_json::from_str(&next_line(&mut self.lines).await).unwrap()
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the receiver printed a line in time")
        .unwrap()
        .expect("the receiver is still running")
}

async fn subscribe(
    app: &TestApp,
    t: &Tenant,
    url: &str,
    scheme: &str,
    secret: Option<&str>,
) -> Value {
    let mut body =
        json!({"url": format!("{url}hooks"), "events": ["invoice.*"], "signature_scheme": scheme});
    if let Some(secret) = secret {
        body["secret"] = json!(secret);
    }
    expect_json(app.post(t, "/v1/subscriptions", body).await, 201).await
}

#[tokio::test]
async fn the_example_receiver_verifies_every_scheme_and_rejects_a_wrong_secret() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;

    // Standard Webhooks with the generated secret: subscribe first, start the
    // receiver with the secret from the answer, then point the URL at it.
    let placeholder = subscribe(&app, &t, "http://127.0.0.1:9/", "standard-webhooks", None).await;
    let generated = placeholder["secret"].as_str().unwrap();
    let mut standard = PyReceiver::start(generated, "standard-webhooks").await;
    let path = format!("/v1/subscriptions/{}", placeholder["id"].as_str().unwrap());
    let res = app
        .patch(&t, &path, json!({"url": format!("{}hooks", standard.url)}))
        .await;
    expect_json(res, 200).await;

    // It accepts the secret a rotation will bring too (one signature, by
    // the current secret: no overlap to rely on).
    let mut hex =
        PyReceiver::start_accepting(&["gestiq-secret-1", "gestiq-secret-2"], "hmac-sha256-hex")
            .await;
    let hex_sub = subscribe(
        &app,
        &t,
        &hex.url,
        "hmac-sha256-hex",
        Some("gestiq-secret-1"),
    )
    .await;
    let mut b64 = PyReceiver::start("inflow-secret-1", "hmac-sha256-base64").await;
    subscribe(
        &app,
        &t,
        &b64.url,
        "hmac-sha256-base64",
        Some("inflow-secret-1"),
    )
    .await;
    // Two svix-scheme subscriptions to one receiver: their webhook-id is
    // the message's, the same for both; neither is a duplicate.
    let svix_secret = "whsec_c3ZpeC1yZWNlaXZlci1zZWNyZXQtMDE=";
    let mut svix = PyReceiver::start(svix_secret, "svix").await;
    for path in ["", "again/"] {
        subscribe(
            &app,
            &t,
            &format!("{}{path}", svix.url),
            "svix",
            Some(svix_secret),
        )
        .await;
    }
    // A receiver holding the wrong secret must refuse what it gets.
    let mut wrong = PyReceiver::start(
        "whsec_d3JvbmctLXNlY3JldC0tMTIzNDU2Nzg=",
        "standard-webhooks",
    )
    .await;
    let mismatched = subscribe(&app, &t, &wrong.url, "standard-webhooks", None).await;

    let accepted = publish(
        &app,
        &t,
        "invoice.created",
        json!({"invoice_id": "inv-1", "invoice_number": "F-001", "amount": "99.50", "currency": "USD"}),
    )
    .await;
    let deliveries = accepted["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 6);
    let delivery_for = |sub: &Value| {
        deliveries
            .iter()
            .find(|d| d["subscription_id"] == sub["id"])
            .map(|d| d["id"].as_str().unwrap().to_string())
            .unwrap()
    };

    let mut lines = Vec::new();
    for rx in [&mut standard, &mut hex, &mut b64, &mut svix] {
        lines.push(rx.next().await);
    }
    lines.push(svix.next().await);
    for line in lines {
        assert_eq!(line["verified"], true, "{line}");
        assert_eq!(line["duplicate"], false);
        assert_eq!(line["event"], "invoice.created");
        assert_eq!(line["attempt"], "1");
        assert_eq!(
            line["data"],
            json!({"invoice_id": "inv-1", "invoice_number": "F-001", "amount": "99.50", "currency": "USD"})
        );
        let id = line["delivery"].as_str().unwrap();
        wait_status(&app, &t, id, "delivered", WAIT).await;
    }

    let refused = wrong.next().await;
    assert_eq!(refused["verified"], false, "{refused}");
    let id = delivery_for(&mismatched);
    assert_eq!(refused["delivery"], id.as_str());
    let failed = wait_status(&app, &t, &id, "failed", WAIT).await;
    assert_eq!(failed["last_status_code"], 401, "{failed}");

    // The hex subscription rotates: the next delivery is signed by the new
    // secret only, and the receiver holding both accepts it.
    let rotated = expect_json(
        app.post(
            &t,
            &format!(
                "/v1/subscriptions/{}/rotate-secret",
                hex_sub["id"].as_str().unwrap()
            ),
            json!({"secret": "gestiq-secret-2"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        rotated["previous_secret_expires_at"],
        Value::Null,
        "{rotated}"
    );
    publish(&app, &t, "invoice.paid", json!({"invoice_id": "inv-1"})).await;
    let after = hex.next().await;
    assert_eq!(after["verified"], true, "{after}");
    assert_eq!(after["event"], "invoice.paid");
}
