//! Secret rotations keep every promise they make: each secret a rotation
//! handed out signs until the expiry it was given, up to a cap past which
//! rotating is refused; concurrent rotations all get a working secret or a
//! 409; legacy schemes sign with the newest secret only.

use hookline_tests::receiver::TestReceiver;
use hookline_tests::webhooks::{hmac_sha256, official_verify, publish};
use hookline_tests::{events_of, expect_json, TestApp};
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

/// A `/v1` POST repeated with its `Idempotency-Key` is not run again: a
/// rotation whose answer was lost, retried, hands out the same secret and
/// rotates once; a create retried makes one subscription. The same key
/// with another body is refused; publishing keeps its own keys.
#[tokio::test]
async fn a_post_repeated_with_its_idempotency_key_runs_once() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: serde_json::Value| {
        client
            .post(app.url(path))
            .bearer_auth(&t.api_key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let body = json!({"url": "https://example.com/once", "events": ["a.b"]});
    let made = post("/v1/subscriptions", "make-1", body.clone())
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    assert!(made.headers().get("idempotent-replayed").is_none());
    let made = made.json::<serde_json::Value>().await.unwrap();
    let again = post("/v1/subscriptions", "make-1", body).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = again.json::<serde_json::Value>().await.unwrap();
    assert_eq!(again["id"], made["id"]);
    assert_eq!(again["secret"], made["secret"]);

    let path = format!(
        "/v1/subscriptions/{}/rotate-secret",
        made["id"].as_str().unwrap()
    );
    let first = expect_json(post(&path, "rot-1", json!({})).await.unwrap(), 200).await;
    let retried = expect_json(post(&path, "rot-1", json!({})).await.unwrap(), 200).await;
    assert_eq!(first["secret"], retried["secret"], "one rotation");
    // Kept sealed: no secret an answer carried is in the table as itself.
    let kept: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT body FROM idempotent_requests WHERE body IS NOT NULL")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(kept.len(), 2, "the create and the rotation");
    for secret in [&made["secret"], &first["secret"]] {
        let secret = secret.as_str().unwrap().as_bytes();
        assert!(
            kept.iter()
                .all(|b| !b.windows(secret.len()).any(|w| w == secret)),
            "a secret is stored in the clear"
        );
    }
    let history = expect_json(
        app.get(
            &t,
            &format!("{}/history", path.trim_end_matches("/rotate-secret")),
        )
        .await,
        200,
    )
    .await;
    let rotations = events_of(&history, "SecretRotated").len();
    assert_eq!(rotations, 1, "{history}");
    // The same key for another request, or a key that is no key: refused.
    let reused = expect_json(
        post(
            &path,
            "rot-1",
            json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        )
        .await
        .unwrap(),
        409,
    )
    .await;
    assert_eq!(reused["code"], "idempotency_key_reused");
    let bad = expect_json(post(&path, "a key", json!({})).await.unwrap(), 400).await;
    assert!(
        bad["detail"].as_str().unwrap().contains("idempotency_key"),
        "{bad}"
    );
    // A failed request keeps nothing: with the cause fixed, the key runs.
    let other = format!("/v1/subscriptions/{}/rotate-secret", uuid::Uuid::now_v7());
    expect_json(post(&other, "rot-2", json!({})).await.unwrap(), 404).await;
    // Publishing answers repeats from its own keys, in the log.
    let event = json!({"event_type": "a.b", "data": {"n": 1}});
    let published = expect_json(
        post("/v1/events", "pub-1", event.clone()).await.unwrap(),
        202,
    )
    .await;
    let republished = expect_json(post("/v1/events", "pub-1", event).await.unwrap(), 202).await;
    assert_eq!(published["event_id"], republished["event_id"]);
}

/// A request cut off after its changes were handed to the database (here
/// the client gives up while the rotation waits for the read models) keeps
/// its answer: the repeat with its key gets the secret the first made, and
/// the secret was rotated once.
#[tokio::test]
async fn a_rotation_whose_client_went_away_is_answered_to_its_repeat() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let sub = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/gone", "events": ["a.b"]}),
        )
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    let path = format!("/v1/subscriptions/{id}/rotate-secret");
    // Hold the subscription's read model row: the rotation commits, then
    // waits for the read model to show it.
    let mut hold = app.db.pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM subscriptions_view WHERE id::text = $1 FOR UPDATE")
        .bind(&id)
        .fetch_all(&mut *hold)
        .await
        .unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let cut = impatient
        .post(app.url(&path))
        .bearer_auth(&t.api_key)
        .header("Idempotency-Key", "gone-1")
        .json(&json!({}))
        .send()
        .await;
    assert!(cut.is_err(), "the client gave up before the answer");
    hold.rollback().await.unwrap();
    let repeat = reqwest::Client::new()
        .post(app.url(&path))
        .bearer_auth(&t.api_key)
        .header("Idempotency-Key", "gone-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(repeat.headers()["idempotent-replayed"], "true");
    let answer = expect_json(repeat, 200).await;
    let history = expect_json(
        app.get(&t, &format!("/v1/subscriptions/{id}/history"))
            .await,
        200,
    )
    .await;
    assert_eq!(events_of(&history, "SecretRotated").len(), 1, "{history}");
    assert!(answer["secret"].as_str().unwrap().starts_with("whsec_"));
}

/// A process stopped after a keyed request's changes were stored and
/// before its answer was kept leaves the key claimed and unanswered (made
/// here by hand: the stored answer removed, the claim made stale). A repeat
/// past the claim's time does not run the request again: it is told the
/// answer was lost and where to look. A claim whose request stored nothing
/// is still taken over and run.
#[tokio::test]
async fn a_keyed_request_stored_before_a_crash_is_not_run_again() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, request_id: &str, body: serde_json::Value| {
        client
            .post(app.url(path))
            .bearer_auth(&t.api_key)
            .header("Idempotency-Key", key)
            .header("X-Request-Id", request_id)
            .json(&body)
            .send()
    };
    let body = json!({"url": "https://example.com/crash", "events": ["a.b"]});
    let made = expect_json(
        post("/v1/subscriptions", "crash-1", "crash-req-1", body.clone())
            .await
            .unwrap(),
        201,
    )
    .await;
    // What a kill between the commit and the kept answer leaves.
    let forget = |key: &'static str| {
        sqlx::query(
            "UPDATE idempotent_requests
                SET status = NULL, body = NULL, answered_at = NULL,
                    claimed_at = now() - interval '1 hour'
              WHERE key = $1",
        )
        .bind(key)
        .execute(&app.db.pool)
    };
    forget("crash-1").await.unwrap();
    let lost = expect_json(
        post("/v1/subscriptions", "crash-1", "crash-req-2", body.clone())
            .await
            .unwrap(),
        409,
    )
    .await;
    assert_eq!(lost["code"], "idempotency_answer_lost", "{lost}");
    assert!(
        lost["detail"].as_str().unwrap().contains("crash-req-1"),
        "{lost}"
    );
    let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["data"][0]["id"], made["id"]);

    // A test send (which a repeat would simply do again) likewise.
    let path = format!("/v1/subscriptions/{}/test", made["id"].as_str().unwrap());
    expect_json(
        post(&path, "crash-2", "crash-req-3", json!({}))
            .await
            .unwrap(),
        202,
    )
    .await;
    forget("crash-2").await.unwrap();
    let lost = expect_json(
        post(&path, "crash-2", "crash-req-4", json!({}))
            .await
            .unwrap(),
        409,
    )
    .await;
    assert_eq!(lost["code"], "idempotency_answer_lost", "{lost}");

    // A claim whose request stored nothing is taken over and run.
    sqlx::query(
        "INSERT INTO idempotent_requests (scope, key, fingerprint, claimed_at, request_id)
         SELECT scope, 'crash-3', fingerprint, now() - interval '1 hour', 'never-stored'
           FROM idempotent_requests WHERE key = 'crash-2'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    expect_json(
        post(&path, "crash-3", "crash-req-5", json!({}))
            .await
            .unwrap(),
        202,
    )
    .await;
}
