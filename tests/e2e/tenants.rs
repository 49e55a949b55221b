//! Tenants and API keys as events of the log: the admin API and its CLI
//! equivalents, revocation seen by every process, a tenant rotating its own
//! key, tenant events in the audit chain and in replays, and tenants stored
//! as rows by earlier versions adopted into the log.

use hookline_tests::process::{run_cli, ServerProcess};
use hookline_tests::server::{wait_ready, ADMIN_TOKEN};
use hookline_tests::{eventually, expect_json, fresh_database, Tenant, TestApp};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn status_with(client: &reqwest::Client, url: &str, key: &str) -> u16 {
    client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn works(app: &TestApp, key: &str) -> u16 {
    status_with(&app.client, &app.url("/v1/subscriptions"), key).await
}

#[tokio::test]
async fn operators_list_rename_and_delete_tenants_and_manage_their_keys() {
    let app = TestApp::spawn().await;
    let a = app.tenant("Alpha").await;
    let b = app.tenant("Beta").await;
    let c = app.tenant("Gamma").await;

    // Newest first, two at a time.
    let first = expect_json(
        admin(&app, Method::GET, "/admin/tenants?limit=2", None).await,
        200,
    )
    .await;
    let names: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Gamma", "Beta"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = expect_json(
        admin(
            &app,
            Method::GET,
            &format!("/admin/tenants?limit=2&cursor={cursor}"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(second["data"][0]["name"], "Alpha");
    assert!(second.get("next_cursor").is_none());
    let one = expect_json(
        admin(&app, Method::GET, &format!("/admin/tenants/{}", a.id), None).await,
        200,
    )
    .await;
    assert_eq!(
        (one["status"].as_str(), one["active_keys"].as_u64()),
        (Some("active"), Some(1))
    );

    // Rename; bad names and unknown ids are clear 4xx.
    let renamed = expect_json(
        admin(
            &app,
            Method::PATCH,
            &format!("/admin/tenants/{}", a.id),
            Some(json!({"name": "Alpha Corp"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "Alpha Corp");
    let bad = expect_json(
        admin(
            &app,
            Method::PATCH,
            &format!("/admin/tenants/{}", a.id),
            Some(json!({"name": " "})),
        )
        .await,
        400,
    )
    .await;
    assert!(
        bad["detail"].as_str().unwrap().starts_with("name:"),
        "{bad}"
    );
    let missing = uuid::Uuid::now_v7();
    expect_json(
        admin(
            &app,
            Method::GET,
            &format!("/admin/tenants/{missing}"),
            None,
        )
        .await,
        404,
    )
    .await;
    expect_json(
        admin(&app, Method::GET, "/admin/tenants/not-an-id", None).await,
        400,
    )
    .await;

    // A second key, shown once; lists show hints only.
    let issued = expect_json(
        admin(
            &app,
            Method::POST,
            &format!("/admin/tenants/{}/keys", a.id),
            None,
        )
        .await,
        201,
    )
    .await;
    let second_key = issued["api_key"].as_str().unwrap().to_string();
    assert_eq!(works(&app, &second_key).await, 200);
    let keys = expect_json(
        admin(
            &app,
            Method::GET,
            &format!("/admin/tenants/{}/keys", a.id),
            None,
        )
        .await,
        200,
    )
    .await;
    let keys = keys["data"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        assert!(k.get("api_key").is_none() && k["active"] == true, "{k}");
        assert!(k["hint"].as_str().unwrap().starts_with("hlk_…"));
    }
    assert_eq!(
        issued["hint"].as_str().unwrap(),
        format!("hlk_…{}", &second_key[second_key.len() - 4..])
    );
    // Revoking it: 401 from then on; the first key still works.
    let key_id = issued["id"].as_str().unwrap();
    let res = admin(
        &app,
        Method::DELETE,
        &format!("/admin/tenants/{}/keys/{key_id}", a.id),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(works(&app, &second_key).await, 401);
    assert_eq!(works(&app, &a.api_key).await, 200);
    expect_json(
        admin(
            &app,
            Method::DELETE,
            &format!("/admin/tenants/{}/keys/{missing}", a.id),
            None,
        )
        .await,
        404,
    )
    .await;

    // Deleting a tenant: its keys stop, its subscriptions receive nothing,
    // and lists leave it out unless asked.
    let sub = app
        .subscribe(&b, json!({"url": "http://127.0.0.1:9/x", "events": ["*"]}))
        .await;
    let res = admin(
        &app,
        Method::DELETE,
        &format!("/admin/tenants/{}", b.id),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(works(&app, &b.api_key).await, 401);
    // Once deleted it is 404, unless asked for with include_deleted.
    assert_eq!(
        admin(&app, Method::GET, &format!("/admin/tenants/{}", b.id), None)
            .await
            .status(),
        404
    );
    let shown = expect_json(
        admin(
            &app,
            Method::GET,
            &format!("/admin/tenants/{}?include_deleted=true", b.id),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (shown["status"].as_str(), shown["active_keys"].as_u64()),
        (Some("deleted"), Some(0))
    );
    let listed = expect_json(admin(&app, Method::GET, "/admin/tenants", None).await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let all = expect_json(
        admin(
            &app,
            Method::GET,
            "/admin/tenants?include_deleted=true",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    let status: String =
        sqlx::query_scalar("SELECT status FROM subscriptions_view WHERE id = $1::uuid")
            .bind(sub["id"].as_str().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "deleted");
    expect_json(
        admin(
            &app,
            Method::PATCH,
            &format!("/admin/tenants/{}", b.id),
            Some(json!({"name": "x"})),
        )
        .await,
        409,
    )
    .await;

    // The tenant sees its own tenant events in its audit log, chained.
    let audit = expect_json(
        app.get(&c, "/v1/audit/events?aggregate_type=Tenant").await,
        200,
    )
    .await;
    let types: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["TenantCreated", "ApiKeyIssued"]);
    assert_eq!(audit["data"][0]["metadata"]["actor"], "admin");
    assert!(!audit.to_string().contains(&c.api_key));
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_every_process() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let dir = tempfile::tempdir().unwrap();
    let env = HashMap::from([
        ("DATABASE_URL".to_string(), app.db.url.clone()),
        ("HOOKLINE_DATABASE_URL".to_string(), app.db.url.clone()),
        (
            "HOOKLINE_SECRET_KEY".to_string(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
        ),
    ]);
    let other = ServerProcess::start(
        &["--listen", "127.0.0.1:0", "--role", "api"],
        &env,
        dir.path(),
    )
    .await;
    wait_ready(&app.client, &other.url("/readyz")).await;
    let there = other.url("/v1/subscriptions");
    assert_eq!(status_with(&app.client, &there, &t.api_key).await, 200);
    // A key issued here works there (its cache knew nothing of it).
    let issued = expect_json(
        admin(
            &app,
            Method::POST,
            &format!("/admin/tenants/{}/keys", t.id),
            None,
        )
        .await,
        201,
    )
    .await;
    let key = issued["api_key"].as_str().unwrap().to_string();
    assert_eq!(status_with(&app.client, &there, &key).await, 200);
    let res = admin(
        &app,
        Method::DELETE,
        &format!(
            "/admin/tenants/{}/keys/{}",
            t.id,
            issued["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    eventually(
        "the other process refuses the revoked key",
        WAIT,
        || async { (status_with(&app.client, &there, &key).await == 401).then_some(()) },
    )
    .await;
    assert_eq!(status_with(&app.client, &there, &t.api_key).await, 200);
}

#[tokio::test]
async fn a_tenant_rotates_its_own_key_with_or_without_an_overlap() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rotate = |key: String, body: Option<Value>| {
        let req = app
            .client
            .post(app.url("/v1/api-keys/rotate"))
            .bearer_auth(key);
        async move {
            match body {
                Some(b) => req.json(&b).send().await.unwrap(),
                None => req.send().await.unwrap(),
            }
        }
    };
    let rotated = expect_json(
        rotate(t.api_key.clone(), Some(json!({"overlap_seconds": 2}))).await,
        201,
    )
    .await;
    let new_key = rotated["api_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, t.api_key);
    assert!(rotated["previous_key_expires_at"].is_string());
    assert_eq!(works(&app, &new_key).await, 200);
    assert_eq!(works(&app, &t.api_key).await, 200, "within the overlap");
    // A key being retired cannot rotate: a leaked one would get a key that
    // outlives it.
    let refused = expect_json(rotate(t.api_key.clone(), None).await, 409).await;
    assert_eq!(refused["code"], "key_retiring", "{refused}");
    // Nor can it make a portal link that outlives it: the link ends with
    // the key.
    let link = expect_json(
        app.client
            .post(app.url("/v1/portal-sessions"))
            .bearer_auth(&t.api_key)
            .json(&json!({"expires_in": 604_800}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let ends = chrono::DateTime::parse_from_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
    let key_ends =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_key_expires_at"].as_str().unwrap())
            .unwrap();
    assert!(ends <= key_ends, "{ends} after {key_ends}");
    eventually("the old key stops after its overlap", WAIT, || async {
        (works(&app, &t.api_key).await == 401).then_some(())
    })
    .await;
    // Without an overlap the calling key stops at once.
    let again = expect_json(rotate(new_key.clone(), None).await, 201).await;
    assert_eq!(works(&app, &new_key).await, 401);
    let newest = again["api_key"].as_str().unwrap().to_string();
    assert_eq!(works(&app, &newest).await, 200);
    let too_long = expect_json(
        rotate(newest.clone(), Some(json!({"overlap_seconds": 999_999}))).await,
        400,
    )
    .await;
    assert!(
        too_long["detail"]
            .as_str()
            .unwrap()
            .contains("overlap_seconds"),
        "{too_long}"
    );
    let unknown_field = expect_json(rotate(newest, Some(json!({"overlap": 1}))).await, 400).await;
    assert_eq!(unknown_field["code"], "invalid_body");
}

/// A key's rotation answer (the new key) goes back only to the key that
/// rotated: another key of the tenant repeating the request with its
/// `Idempotency-Key` is a request of its own, so a retiring key cannot
/// collect a key that outlives it.
#[tokio::test]
async fn a_rotation_answer_is_replayed_only_to_the_key_that_rotated() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let second = expect_json(
        app.client
            .post(app.url(&format!("/admin/tenants/{}/keys", t.id)))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let second = second["api_key"].as_str().unwrap().to_string();
    let rotate = |key: &str, idempotency: Option<&str>| {
        let mut req = app
            .client
            .post(app.url("/v1/api-keys/rotate"))
            .bearer_auth(key)
            .json(&json!({"overlap_seconds": 3600}));
        if let Some(k) = idempotency {
            req = req.header("Idempotency-Key", k);
        }
        req.send()
    };
    // The second key is being retired.
    expect_json(rotate(&second, None).await.unwrap(), 201).await;
    let first = rotate(&t.api_key, Some("rotate-prod-key")).await.unwrap();
    assert_eq!(first.status(), 201);
    let minted = first.json::<Value>().await.unwrap()["api_key"].clone();
    // The rotating key gets its answer again (it may have lost it)…
    let again = rotate(&t.api_key, Some("rotate-prod-key")).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["api_key"], minted);
    // …the retiring one does not: its own request, refused.
    let other = rotate(&second, Some("rotate-prod-key")).await.unwrap();
    assert!(other.headers().get("idempotent-replayed").is_none());
    let other = expect_json(other, 409).await;
    assert_eq!(other["code"], "key_retiring", "{other}");
}

#[tokio::test]
async fn tenant_events_are_verified_replayed_and_managed_from_the_command_line() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let env = HashMap::from([(
        "HOOKLINE_SECRET_KEY".to_string(),
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
    )]);
    let cli = |args: Vec<String>| {
        let env = env.clone();
        let url = app.db.url.clone();
        async move {
            let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
            all.extend(["--database-url", &url]);
            run_cli(&all, &env).await
        }
    };
    let created = cli(vec![
        "tenants".into(),
        "create".into(),
        "Beta".into(),
        "--json".into(),
    ])
    .await;
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let beta: Value = serde_json::from_str(created.stdout.trim()).unwrap();
    let beta_key = beta["api_key"].as_str().unwrap().to_string();
    let beta_id = beta["tenant_id"].as_str().unwrap().to_string();
    // The server accepts a key the command line just issued.
    assert_eq!(works(&app, &beta_key).await, 200);
    let renamed = cli(vec![
        "tenants".into(),
        "rename".into(),
        beta_id.clone(),
        "Beta Ltd".into(),
    ])
    .await;
    assert_eq!(renamed.code, Some(0), "{}", renamed.stderr);
    let listed = cli(vec!["tenants".into(), "list".into(), "--json".into()]).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let names: Vec<String> = listed
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["Beta Ltd", "acme"]);
    let issued = cli(vec![
        "tenants".into(),
        "keys".into(),
        "create".into(),
        beta_id.clone(),
    ])
    .await;
    assert_eq!(issued.code, Some(0), "{}", issued.stderr);
    let key_id = issued
        .stdout
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("key_id:")
        .trim()
        .to_string();
    let keys = cli(vec![
        "tenants".into(),
        "keys".into(),
        "list".into(),
        beta_id.clone(),
    ])
    .await;
    assert_eq!(keys.stdout.lines().count(), 2, "{}", keys.stdout);
    assert!(!keys.stdout.contains(&beta_key));
    let revoked = cli(vec![
        "tenants".into(),
        "keys".into(),
        "revoke".into(),
        beta_id.clone(),
        key_id,
    ])
    .await;
    assert_eq!(revoked.code, Some(0), "{}", revoked.stderr);
    let bad = cli(vec![
        "tenants".into(),
        "rename".into(),
        "nope".into(),
        "x".into(),
    ])
    .await;
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("tenant id"), "{}", bad.stderr);
    let deleted = cli(vec!["tenants".into(), "delete".into(), beta_id.clone()]).await;
    assert_eq!(deleted.code, Some(0), "{}", deleted.stderr);
    assert!(deleted.stdout.contains("deleted: its keys no longer work"));
    let again = cli(vec!["tenants".into(), "delete".into(), beta_id]).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stdout.contains("was already deleted"),
        "{}",
        again.stdout
    );
    eventually(
        "the server refuses the deleted tenant's key",
        WAIT,
        || async { (works(&app, &beta_key).await == 401).then_some(()) },
    )
    .await;
    assert_eq!(works(&app, &t.api_key).await, 200);

    // Every tenant event is in the chain, and the read models rebuild.
    let verified = cli(vec!["audit".into(), "verify".into()]).await;
    assert_eq!(verified.code, Some(0), "{}", verified.stderr);
    let tenant_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Tenant'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(tenant_events >= 8, "{tenant_events}");
    let checked = cli(vec![
        "replay".into(),
        "--projection".into(),
        "all".into(),
        "--check".into(),
    ])
    .await;
    assert_eq!(
        checked.code,
        Some(0),
        "{}\n{}",
        checked.stdout,
        checked.stderr
    );
    assert!(
        checked.stdout.contains("tenants: replayed"),
        "{}",
        checked.stdout
    );
    let rebuilt = cli(vec![
        "replay".into(),
        "--projection".into(),
        "tenants".into(),
    ])
    .await;
    assert_eq!(rebuilt.code, Some(0), "{}", rebuilt.stderr);
    assert_eq!(works(&app, &t.api_key).await, 200);
}

#[tokio::test]
async fn tenants_stored_as_rows_are_adopted_into_the_log_and_their_keys_keep_working() {
    let db = fresh_database().await;
    // The schema and rows an earlier version kept.
    for statement in [
        "CREATE TABLE tenants (id uuid PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL)",
        "CREATE TABLE api_keys (id uuid PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenants (id),
            key_hash text NOT NULL UNIQUE, created_at timestamptz NOT NULL, revoked_at timestamptz)",
        "INSERT INTO tenants VALUES ('01900000-0000-7000-8000-000000000001', 'Legacy', '2026-01-01T00:00:00Z')",
    ] {
        sqlx::query(statement).execute(&db.pool).await.unwrap();
    }
    let kept = "hlk_legacy-key-that-still-works";
    let revoked = "hlk_legacy-key-that-was-revoked";
    for (id, key, revoked_at) in [
        ("01900000-0000-7000-8000-000000000010", kept, None),
        (
            "01900000-0000-7000-8000-000000000011",
            revoked,
            Some("2026-02-01T00:00:00Z"),
        ),
    ] {
        sqlx::query(
            "INSERT INTO api_keys VALUES ($1::uuid, '01900000-0000-7000-8000-000000000001', $2, '2026-01-01T00:00:00Z', $3::timestamptz)",
        )
        .bind(id)
        .bind(hookline_application::tenants::hash_key(key))
        .bind(revoked_at)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let pool = db.pool.clone();
    let app = TestApp::on(db).await;
    assert_eq!(works(&app, kept).await, 200);
    assert_eq!(works(&app, revoked).await, 401);
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'Tenant' ORDER BY sequence",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        types,
        [
            "TenantCreated",
            "ApiKeyIssued",
            "ApiKeyIssued",
            "ApiKeyRevoked"
        ]
    );
    let left: bool = sqlx::query_scalar("SELECT to_regclass('public.api_keys') IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!left, "the old tables are gone once adopted");
    let tenant = Tenant {
        id: "01900000-0000-7000-8000-000000000001".into(),
        api_key: kept.into(),
    };
    let audit = expect_json(app.get(&tenant, "/v1/audit/events").await, 200).await;
    assert_eq!(audit["data"][0]["metadata"]["actor"], "system:migration");
    // A second start finds nothing more to adopt.
    let app = app.restart().await;
    assert_eq!(works(&app, kept).await, 200);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Tenant'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(count, 4);
}
