//! Secret rotations keep every promise they make: each secret a rotation
//! handed out signs until the expiry it was given, up to a cap past which
//! rotating is refused; concurrent rotations all get a working secret or a
//! 409; legacy schemes sign with the newest secret only.

use hookline_tests::receiver::TestReceiver;
use hookline_tests::webhooks::{hmac_sha256, official_verify, publish};
use hookline_tests::{expect_json, TestApp};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn every_secret_a_rotation_handed_out_keeps_signing_until_its_expiry() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let path = format!(
        "/v1/subscriptions/{}/rotate-secret",
        sub["id"].as_str().unwrap()
    );
    let s0 = sub["secret"].as_str().unwrap().to_string();
    let first = expect_json(app.post(&t, &path, json!({})).await, 200).await;
    let s1 = first["secret"].as_str().unwrap().to_string();
    let promised = first["previous_secret_expires_at"].clone();
    // Rotating again at once must not cut S0's overlap short.
    let second = expect_json(app.post(&t, &path, json!({})).await, 200).await;
    let s2 = second["secret"].as_str().unwrap().to_string();
    publish(&app, &t, "a.b", json!({"n": 1})).await;
    let got = rx.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(
        r.header("webhook-signature").unwrap().split(' ').count(),
        3,
        "the current secret and both overlaps sign"
    );
    for secret in [&s0, &s1, &s2] {
        assert!(official_verify(secret, &r.headers, &r.body), "{secret}");
    }
    let read = expect_json(
        app.get(
            &t,
            &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
        )
        .await,
        200,
    )
    .await;
    assert!(read["previous_secret_expires_at"].as_str() >= promised.as_str());

    // Up to the cap (five secrets signing at once); past it, a 409.
    for _ in 0..2 {
        expect_json(app.post(&t, &path, json!({})).await, 200).await;
    }
    let refused = expect_json(app.post(&t, &path, json!({})).await, 409).await;
    assert_eq!(refused["code"], "too_many_secrets");
}

#[tokio::test]
async fn concurrent_rotations_each_hand_out_a_working_secret_or_a_409() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let path = format!(
        "/v1/subscriptions/{}/rotate-secret",
        sub["id"].as_str().unwrap()
    );
    let answers = futures::future::join_all((0..6).map(|_| app.post(&t, &path, json!({})))).await;
    let mut secrets = vec![sub["secret"].as_str().unwrap().to_string()];
    let mut refused = 0;
    for res in answers {
        match res.status().as_u16() {
            200 => {
                let v: serde_json::Value = res.json().await.unwrap();
                secrets.push(v["secret"].as_str().unwrap().to_string());
            }
            409 => refused += 1,
            other => panic!("unexpected {other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(secrets.len(), 5, "four rotations fit under the cap");
    assert_eq!(refused, 2);
    publish(&app, &t, "a.b", json!({"n": 1})).await;
    let got = rx.wait_for(1, WAIT).await;
    for secret in &secrets {
        assert!(
            official_verify(secret, &got[0].headers, &got[0].body),
            "a secret some caller holds does not verify"
        );
    }
}

#[tokio::test]
async fn legacy_schemes_sign_with_the_newest_secret() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(
            &t,
            json!({"url": rx.url("/r"), "events": ["a.b"], "signature_scheme": "hmac-sha256-hex"}),
        )
        .await;
    let path = format!(
        "/v1/subscriptions/{}/rotate-secret",
        sub["id"].as_str().unwrap()
    );
    let rotated = expect_json(app.post(&t, &path, json!({})).await, 200).await;
    let newest = rotated["secret"].as_str().unwrap();
    publish(&app, &t, "a.b", json!({"n": 1})).await;
    let got = rx.wait_for(1, WAIT).await;
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(newest.as_bytes(), &got[0].body))
    );
    assert_eq!(got[0].header("x-signature"), Some(expected.as_str()));
}
