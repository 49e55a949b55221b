//! The official Svix SDKs, unchanged except the server URL, against a real
//! `hookline serve` process on the harness's Postgres: the Python SDK
//! (PyPI `svix`, pinned in scripts/requirements-test.txt, from the
//! project's .venv) and the JavaScript SDK (npm `svix`, pinned in
//! tests/svix/js/package-lock.json, run with Node). Each runs the core flow
//! of docs/svix-compatibility.md with a real receiver on 127.0.0.1 that
//! verifies every delivery with the SDK's own `Webhook(secret).verify`.
//!
//! scripts/test creates the .venv and installs the JS SDK; run it once (or
//! see tests/svix/README.md) before `cargo test`.

use hookline_tests::process::ServerProcess;
use hookline_tests::{expect_json, fresh_database, TestDatabase};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const ADMIN: &str = "svix-sdk-admin";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// A `hookline serve` process and an operator key (`hlo_…`) for it.
async fn server() -> (ServerProcess, String, tempfile::TempDir, TestDatabase) {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let env = HashMap::from([
        ("HOOKLINE_ADMIN_TOKEN".to_string(), ADMIN.to_string()),
        (
            "HOOKLINE_ALLOW_PRIVATE_TARGETS".to_string(),
            "127.0.0.0/8,::1/128".to_string(),
        ),
    ]);
    let server = ServerProcess::start(
        &["--listen", "127.0.0.1:0", "--database-url", &db.url],
        &env,
        &dir.path().join("data"),
    )
    .await;
    let client = reqwest::Client::new();
    hookline_tests::server::wait_ready(&client, &server.url("/readyz")).await;
    let issued = expect_json(
        client
            .post(server.url("/admin/operator-keys"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "svix-sdk"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let key = issued["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("hlo_"), "{issued}");
    (server, key, dir, db)
}

/// Runs `program args…` to completion (bounded), failing the test with
/// its output and the server's logs unless it exits 0.
async fn run_flow(program: &Path, args: &[&str], server: &ServerProcess, key: &str) {
    let child = tokio::process::Command::new(program)
        .args(args)
        .arg("--server")
        .arg(server.url(""))
        .arg("--token")
        .arg(key)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the SDK flow finished within 5 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the SDK flow failed ({}):\n{stdout}\n{stderr}\n--- server logs (errors) ---\n{}",
        out.status,
        server
            .logs()
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(stdout.contains("ok: "), "{stdout}");
}

#[tokio::test]
async fn python_sdk_core_flow() {
    let python = std::env::var_os("HOOKLINE_TEST_PYTHON")
        .map_or_else(|| workspace().join(".venv/bin/python"), PathBuf::from);
    assert!(
        python.exists(),
        "{} is missing: run scripts/test once (it creates .venv from \
         scripts/requirements-test.txt), or set HOOKLINE_TEST_PYTHON",
        python.display()
    );
    let (server, key, _dir, _db) = server().await;
    run_flow(&python, &["tests/svix/sdk_flow.py"], &server, &key).await;
}

#[tokio::test]
async fn javascript_sdk_core_flow() {
    let node =
        std::env::var_os("HOOKLINE_TEST_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from);
    let available = std::process::Command::new(&node)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        // scripts/test installs Node (or stops, naming it) and asks for
        // this flow; a bare `cargo test` without Node skips it, saying so.
        assert!(
            std::env::var_os("HOOKLINE_REQUIRE_NODE").is_none(),
            "node is not installed, and HOOKLINE_REQUIRE_NODE asks for the JavaScript SDK flow"
        );
        eprintln!("node is not installed: the JavaScript SDK flow is skipped");
        return;
    }
    let sdk = workspace().join("tests/svix/js/node_modules/svix/package.json");
    assert!(
        sdk.exists(),
        "{} is missing: run scripts/test once (it runs `npm ci --ignore-scripts` \
         in tests/svix/js), or do so yourself",
        sdk.display()
    );
    let (server, key, _dir, _db) = server().await;
    run_flow(&node, &["tests/svix/js/sdk_flow.mjs"], &server, &key).await;
}
