//! The binary as users run it: `serve` with the embedded Postgres, signals,
//! restarts, and the CLI commands.

use hookline_tests::process::{run_cli, ServerProcess};
use hookline_tests::{expect_json, fresh_database};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// `hookline tenants create <name> --json` against a data directory.
async fn create_tenant(
    name: &str,
    data_dir: &str,
    env: &HashMap<String, String>,
) -> hookline_tests::process::Output {
    let out = run_cli(
        &["tenants", "create", name, "--json", "--data-dir", data_dir],
        env,
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out
}

fn env() -> HashMap<String, String> {
    HashMap::from([("HOOKLINE_ADMIN_TOKEN".to_string(), "proc-admin".to_string())])
}

/// The postmaster's pid as its cluster's pid file has it (inside the
/// server's PID namespace when it has its own).
fn postmaster_pid(data: &std::path::Path) -> String {
    let pid_file = std::fs::read_to_string(data.join("pg/data/postmaster.pid")).unwrap();
    pid_file.lines().next().unwrap().trim().to_string()
}

/// Sends `signal` (`KILL`, `TERM`) to process `pid`.
fn send(signal: &str, pid: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}").as_str(), pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

#[tokio::test]
async fn serve_with_the_embedded_postgres_survives_restarts_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_str = data.to_str().unwrap().to_string();
    let env = env();
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, &data).await;
    let client = reqwest::Client::new();
    hookline_tests::server::wait_ready(&client, &server.url("/readyz")).await;
    assert!(data.join("pg/data/PG_VERSION").exists());
    assert!(
        data.join("pg/run/.s.PGSQL.5432").exists(),
        "a Unix socket inside the data dir"
    );

    // The CLI works against the same data directory while the server runs.
    let out = create_tenant("Acme", &data_str, &env).await;
    let line = out.stdout.trim_end();
    let parsed: Value = serde_json::from_str(line).unwrap();
    let tenant_id = parsed["tenant_id"].as_str().unwrap();
    let key = parsed["api_key"].as_str().unwrap();
    assert_eq!(
        line,
        format!("{{\"tenant_id\": \"{tenant_id}\", \"api_key\": \"{key}\"}}")
    );

    let plain = run_cli(
        &["tenants", "create", "Plain", "--data-dir", &data_str],
        &env,
    )
    .await;
    assert_eq!(plain.code, Some(0));
    assert!(plain.stdout.contains("tenant_id:") && plain.stdout.contains("hlk_"));

    let created = client
        .post(server.url("/v1/subscriptions"))
        .bearer_auth(key)
        .json(&json!({"url": "https://example.com/hook", "events": ["a.b"], "secret": "process-secret-4242", "headers": {"X-Token": "hdr-value-777"}}))
        .send()
        .await
        .unwrap();
    let created = expect_json(created, 201).await;
    let id = created["id"].as_str().unwrap();

    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(30)).await, Some(0));
    let logs = server.logs();
    assert!(
        logs.contains("stopping the embedded Postgres cluster"),
        "{logs}"
    );
    assert!(
        !data.join("pg/data/postmaster.pid").exists(),
        "the cluster was stopped"
    );
    for secret in ["process-secret-4242", "hdr-value-777", key] {
        assert!(!logs.contains(secret), "logs leak {secret}");
    }

    // Data survives a restart; SIGINT stops it as well.
    let mut again = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, &data).await;
    let read = client
        .get(again.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let read = expect_json(read, 200).await;
    assert_eq!(read["url"], "https://example.com/hook");
    again.signal("INT");
    assert_eq!(again.wait(Duration::from_secs(30)).await, Some(0));
    assert!(!data.join("pg/data/postmaster.pid").exists());

    // A CLI command with the cluster stopped starts it and stops it again.
    let out = run_cli(
        &[
            "tenants",
            "create",
            "Later",
            "--json",
            "--data-dir",
            &data_str,
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!data.join("pg/data/postmaster.pid").exists());

    // Several at once: one starts it, the others use it, and the last to
    // finish stops it, whichever that is.
    let args = ["audit", "verify", "--data-dir", data_str.as_str()];
    let runs = (0..3).map(|_| run_cli(&args, &env));
    for out in futures::future::join_all(runs).await {
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }
    assert!(
        !data.join("pg/data/postmaster.pid").exists(),
        "concurrent commands left the cluster running"
    );

    // SIGTERM while the command starts the cluster: it ends the command
    // (not the default kill) and the cluster is stopped again.
    let child = tokio::process::Command::new(hookline_tests::process::binary())
        .args(["tenants", "list", "--data-dir", &data_str])
        .envs(&env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.code().is_some(),
        "killed by the signal: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !data.join("pg/data/postmaster.pid").exists(),
        "an interrupted command left the cluster running"
    );
}

/// A crash of the whole machine's processes: Hookline and its Postgres both
/// killed with SIGKILL. The next start finds a stale pid file (and, for a
/// moment, a postmaster nobody reaped yet), waits it out, lets Postgres
/// recover, and serves the data committed before.
#[tokio::test]
async fn the_embedded_postgres_recovers_after_hookline_and_postgres_are_both_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = env();
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, &data).await;
    let client = reqwest::Client::new();
    let tenant = client
        .post(server.url("/admin/tenants"))
        .bearer_auth("proc-admin")
        .json(&json!({"name": "Crashy"}))
        .send()
        .await
        .unwrap();
    let tenant = expect_json(tenant, 201).await;
    let key = tenant["api_key"].as_str().unwrap();
    let created = client
        .post(server.url("/v1/subscriptions"))
        .bearer_auth(key)
        .json(&json!({"url": "https://example.com/crash", "events": ["a.b"]}))
        .send()
        .await
        .unwrap();
    let id = expect_json(created, 201).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let postmaster = postmaster_pid(&data);
    server.signal("KILL");
    server.wait(Duration::from_secs(10)).await;
    send("KILL", &postmaster);
    assert!(
        data.join("pg/data/postmaster.pid").exists(),
        "a stale pid file stays behind"
    );

    let mut again = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, &data).await;
    let read = client
        .get(again.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(read, 200).await["url"],
        "https://example.com/crash"
    );
    again.signal("TERM");
    assert_eq!(again.wait(Duration::from_secs(30)).await, Some(0));
    assert!(!data.join("pg/data/postmaster.pid").exists());
}

/// A server whose embedded Postgres dies (killed, out of memory) starts it
/// again and goes on serving: nothing committed is lost, and `/readyz`
/// comes back without anyone restarting anything.
#[tokio::test]
async fn a_server_starts_its_embedded_postgres_again_when_the_postmaster_dies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = env();
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, &data).await;
    let client = reqwest::Client::new();
    let tenant = client
        .post(server.url("/admin/tenants"))
        .bearer_auth("proc-admin")
        .json(&json!({"name": "Phoenix"}))
        .send()
        .await
        .unwrap();
    let tenant = expect_json(tenant, 201).await;
    let key = tenant["api_key"].as_str().unwrap();

    let postmaster = postmaster_pid(&data);
    send("KILL", &postmaster);

    // Until the old postmaster is gone, its pid file and a connection or
    // a cached readiness may still look alive: wait for a new postmaster,
    // then for readiness.
    hookline_tests::eventually(
        "the server started its Postgres again and is ready",
        Duration::from_secs(60),
        || async {
            let pid = std::fs::read_to_string(data.join("pg/data/postmaster.pid")).ok()?;
            let pid = pid.lines().next()?.trim().to_string();
            if pid == postmaster {
                return None;
            }
            let ready = client.get(server.url("/readyz")).send().await.ok()?;
            (ready.status() == 200).then_some(())
        },
    )
    .await;
    assert!(
        server.logs().contains("starting it again"),
        "{}",
        server.logs()
    );
    let created = client
        .post(server.url("/v1/subscriptions"))
        .bearer_auth(key)
        .json(&json!({"url": "https://example.com/again", "events": ["a.b"]}))
        .send()
        .await
        .unwrap();
    expect_json(created, 201).await;
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(30)).await, Some(0));
    assert!(!data.join("pg/data/postmaster.pid").exists());
}

/// `serve` on a port in use fails before it starts the embedded cluster:
/// nothing is left running.
#[tokio::test]
async fn serve_on_a_port_in_use_leaves_no_postgres_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = run_cli(
        &[
            "serve",
            "--listen",
            &address,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &env(),
    )
    .await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("listening on {address}")),
        "{}",
        out.stderr
    );
    assert!(!data.join("pg/data/postmaster.pid").exists());
    drop(taken);
}

/// A command whose standard output is closed (`| head`, a pager quit
/// early) says so and exits 1: no panic, and the cluster it started is
/// stopped.
#[tokio::test]
async fn a_command_whose_output_is_closed_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_str = data.to_str().unwrap();
    let made = run_cli(
        &["tenants", "create", "Piped", "--data-dir", data_str],
        &env(),
    )
    .await;
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let mut child = tokio::process::Command::new(hookline_tests::process::binary())
        .args(["tenants", "list", "--data-dir", data_str])
        .envs(env())
        .env_remove("DATABASE_URL")
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing to standard output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!data.join("pg/data/postmaster.pid").exists());
}

#[tokio::test]
async fn migrate_and_cli_errors() {
    let db = fresh_database().await;
    let out = run_cli(&["migrate", "--database-url", &db.url], &HashMap::new()).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("migrations applied"));

    let out = run_cli(
        &["tenants", "create", "", "--database-url", &db.url],
        &HashMap::new(),
    )
    .await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("name"), "{}", out.stderr);

    let out = run_cli(
        &[
            "migrate",
            "--database-url",
            "postgres://user:hunter2@127.0.0.1:1/db",
        ],
        &HashMap::new(),
    )
    .await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.starts_with("error:"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"));

    let dir = tempfile::tempdir().unwrap();
    let missing = HashMap::from([("HOOKLINE_PG_BIN".to_string(), "/nonexistent".to_string())]);
    let out = run_cli(
        &["migrate", "--data-dir", dir.path().to_str().unwrap()],
        &missing,
    )
    .await;
    assert_eq!(out.code, Some(1));
    // The setting is named, with its value: the binaries may well be on
    // PATH, and installing them again would not help.
    assert!(
        out.stderr.contains("HOOKLINE_PG_BIN is /nonexistent"),
        "{}",
        out.stderr
    );

    // A setting the embedded cluster owns is refused before it starts.
    let owned = HashMap::from([(
        "HOOKLINE_PG_CONF".to_string(),
        "work_mem = 8MB; port = 5999".to_string(),
    )]);
    let out = run_cli(
        &["migrate", "--data-dir", dir.path().to_str().unwrap()],
        &owned,
    )
    .await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("HOOKLINE_PG_CONF: 'port = 5999'"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("pg/data/postmaster.pid").exists());

    let bad = HashMap::from([("HOOKLINE_MAX_BODY_BYTES".to_string(), "lots".to_string())]);
    let out = run_cli(&["migrate", "--database-url", &db.url], &bad).await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("HOOKLINE_MAX_BODY_BYTES"));

    // A server that is not there: said at once, with the reason.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let started = std::time::Instant::now();
    let out = run_cli(
        &[
            "migrate",
            "--database-url",
            &format!("postgres://nobody@127.0.0.1:{port}/none"),
        ],
        &HashMap::new(),
    )
    .await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    let out = run_cli(&["frobnicate"], &HashMap::new()).await;
    assert_ne!(out.code, Some(0));
}

/// A command that only reads refuses a data directory without a cluster
/// (a mistyped one read as an empty, intact log); a cluster whose first
/// start was cut short before it got Hookline's settings is set aside and
/// made again (started as it was, it listened on the default port and
/// socket), and a killed `initdb`'s staging directory is removed.
#[tokio::test]
async fn reads_need_a_cluster_and_an_interrupted_initialisation_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_str = data.to_str().unwrap();
    for args in [
        vec!["audit", "verify", "--data-dir", data_str],
        vec!["tenants", "list", "--data-dir", data_str],
    ] {
        let out = run_cli(&args, &env()).await;
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("holds no Hookline database"),
            "{}",
            out.stderr
        );
        assert!(!data.join("pg/data").exists(), "{args:?} made a cluster");
    }

    // What an earlier version killed during its first start left: an
    // initialised cluster without Hookline's settings, and a staging
    // directory of a killed initdb.
    std::fs::create_dir_all(data.join("pg/data")).unwrap();
    std::fs::write(data.join("pg/data/PG_VERSION"), "15\n").unwrap();
    std::fs::write(data.join("pg/data/postgresql.conf"), "# stock\n").unwrap();
    std::fs::create_dir_all(data.join("pg/data.new-999/base")).unwrap();
    let made = run_cli(
        &["tenants", "create", "Again", "--data-dir", data_str],
        &env(),
    )
    .await;
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let conf = std::fs::read_to_string(data.join("pg/data/postgresql.conf")).unwrap();
    assert!(
        conf.contains("include_if_exists = 'hookline.conf'"),
        "{conf}"
    );
    assert!(!data.join("pg/data.new-999").exists());
    let aside: Vec<String> = std::fs::read_dir(data.join("pg"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("data.unfinished-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let listed = run_cli(&["tenants", "list", "--data-dir", data_str], &env()).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(listed.stdout.contains("Again"), "{}", listed.stdout);
}

/// A connection the server ends (stopping, crashing: SQLSTATE 57P01) is
/// "unavailable" (503, retry later), not an internal error (500).
#[tokio::test]
async fn a_connection_the_database_ends_is_unavailable_not_internal() {
    use hookline_application::AppError;
    use hookline_infrastructure::postgres::log_reader::unavailable;
    let db = fresh_database().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let ended = sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(
        matches!(&ended, sqlx::Error::Database(e) if e.code().as_deref() == Some("57P01")),
        "{ended:?}"
    );
    assert!(matches!(unavailable(ended), AppError::Unavailable(_)));
    let wrong = sqlx::query("SELECT * FROM no_such_table")
        .execute(&db.pool)
        .await
        .unwrap_err();
    assert!(matches!(unavailable(wrong), AppError::Internal(_)));
}

/// An export whose reader goes away says it stopped part-way (the output's
/// fault, not an internal error); a `RUST_LOG` typo is refused at start.
#[tokio::test]
async fn an_export_whose_reader_stops_says_so_and_a_log_filter_that_hides_everything_is_refused() {
    // Enough events that the export writes while it reads (not only when
    // it finishes).
    let app = hookline_tests::TestApp::spawn().await;
    app.ready().await;
    for i in 0..150 {
        app.tenant(&format!("export {i}")).await;
    }
    let mut child = tokio::process::Command::new(hookline_tests::process::binary())
        .args(["audit", "export", "--database-url", &app.db.url])
        .envs(env())
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the export is incomplete: it stopped part-way")
            && stderr.contains("writing the export")
            && !stderr.contains("internal error")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let data_str = dir.path().join("data").to_str().unwrap().to_string();
    let data_str = data_str.as_str();
    // A typo of a level would silence every line: refused at start.
    let mut quiet = env();
    quiet.insert("RUST_LOG".into(), "degub".into());
    let out = run_cli(&["tenants", "list", "--data-dir", data_str], &quiet).await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("RUST_LOG 'degub'"), "{}", out.stderr);
}

/// A data directory or setting that is not UTF-8 is refused, not read as
/// another directory (bytes replaced) or as unset.
#[tokio::test]
async fn settings_that_are_not_utf8_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let mut raw = dir.path().as_os_str().as_bytes().to_vec();
    raw.extend_from_slice(b"/x\xff");
    let bad = std::ffi::OsStr::from_bytes(&raw);
    let by_flag = tokio::process::Command::new(hookline_tests::process::binary())
        .arg("tenants")
        .arg("list")
        .arg("--data-dir")
        .arg(bad)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    let by_env = tokio::process::Command::new(hookline_tests::process::binary())
        .args(["tenants", "list"])
        .env("HOOKLINE_DATA_DIR", bad)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    for (out, says) in [(by_flag, "--data-dir"), (by_env, "HOOKLINE_DATA_DIR")] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("not valid UTF-8"),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing made"
    );
}

/// A SIGTERM while a keyed publish commits: the publish answers `503
/// outcome_unknown` (its commit outlasts twice the request timeout), and
/// the process waits for that commit instead of stopping the embedded
/// cluster under it, so the trace shows what the answer said to look up.
/// (The process stopped Postgres under the commit, which was lost.)
#[tokio::test]
async fn a_sigterm_lets_a_commit_under_way_finish_before_stopping_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_str = data.to_str().unwrap().to_string();
    let mut env = env();
    env.insert("HOOKLINE_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, &data).await;
    let client = reqwest::Client::new();
    hookline_tests::server::wait_ready(&client, &server.url("/readyz")).await;
    let out = create_tenant("Acme", &data_str, &env).await;
    let key = serde_json::from_str::<Value>(out.stdout.trim()).unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    // Commits of a marked message take 10 s (a deferred trigger), far past
    // the 2 s answer.
    let url = format!(
        "postgres://hookline@localhost:5432/hookline?host={}",
        data.join("pg/run").display()
    );
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    for sql in [
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.payload::text LIKE '%slow-commit%' THEN PERFORM pg_sleep(10); END IF; RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON events
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
    ] {
        sqlx::query(sql).execute(&db).await.unwrap();
    }
    let sub = client
        .post(server.url("/v1/subscriptions"))
        .bearer_auth(&key)
        .json(&json!({"url": "https://example.com/hook", "events": ["a.b"]}))
        .send()
        .await
        .unwrap();
    expect_json(sub, 201).await;
    let publish = tokio::spawn(
        client
            .post(server.url("/v1/events"))
            .bearer_auth(&key)
            .header("x-request-id", "slow-commit-1")
            .header("idempotency-key", "slow-commit-1")
            .json(&json!({"event_type": "a.b", "data": {"mark": "slow-commit"}}))
            .send(),
    );
    // The SIGTERM comes while the commit is under way.
    hookline_tests::eventually("the commit is under way", Duration::from_secs(10), || {
        let db = db.clone();
        async move {
            let sleeping: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep')",
            )
            .fetch_one(&db)
            .await
            .ok()?;
            sleeping.then_some(())
        }
    })
    .await;
    db.close().await;
    server.signal("TERM");
    let body = expect_json(publish.await.unwrap().unwrap(), 503).await;
    assert_eq!(body["code"], "outcome_unknown");
    assert_eq!(server.wait(Duration::from_secs(30)).await, Some(0));

    let mut again = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, &data).await;
    let trace = client
        .get(again.url("/v1/requests/slow-commit-1"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let trace = expect_json(trace, 200).await;
    assert_eq!(
        trace["summary"]["events"].as_u64().map(|n| n > 0),
        Some(true),
        "{trace}"
    );
    again.signal("TERM");
    assert_eq!(again.wait(Duration::from_secs(30)).await, Some(0));
}

/// The embedded cluster's processes, postmaster first (from its pid file
/// and `/proc`).
fn postgres_processes(data: &std::path::Path) -> Vec<i32> {
    let pid_file = std::fs::read_to_string(data.join("pg/data/postmaster.pid")).unwrap();
    let postmaster: i32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: the comm may hold spaces, not ')'.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids
}

fn signal_all(pids: &[i32], signal: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
    }
}

/// A SIGTERM while the database does not answer (every Postgres process
/// stopped): the server does not wait for it forever; it stops its
/// background work after the drain time and goes on to stop the cluster.
/// (It waited for its connections to be given back, for good.)
#[tokio::test]
async fn a_sigterm_is_not_held_up_by_a_database_that_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env = env();
    env.insert("HOOKLINE_WEBHOOK_TIMEOUT_SECONDS".into(), "1".into());
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, &data).await;
    let client = reqwest::Client::new();
    hookline_tests::server::wait_ready(&client, &server.url("/readyz")).await;
    let pids = postgres_processes(&data);
    assert!(pids.len() > 1, "the postmaster and its backends: {pids:?}");
    signal_all(&pids, "STOP");
    // Resumed however the test ends, so no stopped cluster is left behind.
    struct Resume(std::path::PathBuf);
    impl Drop for Resume {
        fn drop(&mut self) {
            signal_all(&postgres_processes(&self.0), "CONT");
        }
    }
    let resume = Resume(data.clone());
    // Background work runs into the stopped database.
    hookline_tests::eventually("readiness fails", Duration::from_secs(20), || {
        let client = client.clone();
        let url = server.url("/readyz");
        async move {
            let res = client.get(url).timeout(Duration::from_secs(2)).send().await;
            (!res.is_ok_and(|r| r.status() == 200)).then_some(())
        }
    })
    .await;
    server.signal("TERM");
    let reached = hookline_tests::eventually(
        "the server goes on to stop the cluster",
        Duration::from_secs(45),
        || {
            let logs = server.logs();
            async move {
                logs.contains("stopping the embedded Postgres cluster")
                    .then_some(())
            }
        },
    )
    .await;
    drop(resume);
    let () = reached;
    assert!(
        server.wait(Duration::from_secs(60)).await.is_some(),
        "the server exits"
    );
}

/// The pid (outside any PID namespace) of the process whose pid inside its
/// namespace is `inner` and whose command line mentions `needle` (this
/// test's own data directory: other processes on the machine may be PID 1
/// of namespaces of their own).
fn outer_pid(inner: &str, needle: &str) -> Option<String> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (nspid.split_whitespace().last() == Some(inner)
                && String::from_utf8_lossy(&cmdline).contains(needle))
            .then(|| pid.to_string())
        })
}

/// In a container started without an init, Hookline is PID 1, and the
/// postmaster `pg_ctl` starts is its child: killed, it stays a zombie
/// until Hookline reaps it, and until then the cluster looked alive and
/// was never started again (a hostile sweep: `/readyz` 503 for good). Run
/// in a PID namespace of its own, the server reaps it and starts it again.
#[tokio::test]
async fn as_pid_1_of_a_container_a_server_still_starts_a_killed_postgres_again() {
    if running_as_root().is_none() {
        eprintln!("skipped: a PID namespace of its own needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_text = data.display().to_string();
    let mut server = ServerProcess::start_under(
        &[
            "unshare",
            "--pid",
            "--ipc",
            "--fork",
            "--mount-proc",
            "--kill-child",
        ],
        &["--listen", "127.0.0.1:0"],
        &env(),
        &data,
    )
    .await;
    let client = reqwest::Client::new();
    let inner = postmaster_pid(&data);
    let postmaster = outer_pid(&inner, &data_text).expect("the postmaster");
    let hookline = outer_pid("1", &data_text).expect("Hookline as PID 1");
    send("KILL", &postmaster);
    hookline_tests::eventually(
        "the server reaped its Postgres, started it again and is ready",
        Duration::from_secs(60),
        || async {
            let pid = std::fs::read_to_string(data.join("pg/data/postmaster.pid")).ok()?;
            if pid.lines().next()?.trim() == inner {
                return None;
            }
            let ready = client.get(server.url("/readyz")).send().await.ok()?;
            (ready.status() == 200).then_some(())
        },
    )
    .await;
    assert!(
        server.logs().contains("starting it again"),
        "{}",
        server.logs()
    );
    // A command run from outside the namespace on the same data directory
    // (the pid file's pid means another process there) uses the running
    // cluster: it neither removes its pid file nor starts a second
    // postmaster on it.
    let pid_file_before = std::fs::read_to_string(data.join("pg/data/postmaster.pid")).unwrap();
    let listed = run_cli(&["tenants", "list", "--data-dir", &data_text], &env()).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(
        std::fs::read_to_string(data.join("pg/data/postmaster.pid")).unwrap(),
        pid_file_before
    );
    let postmasters = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            !cmdline.starts_with("postgres: ")
                && cmdline.contains("bin/postgres")
                && cmdline.contains(&data_text)
        })
        .count();
    assert_eq!(postmasters, 1, "one postmaster on the data directory");
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let zombies = std::fs::read_to_string(format!("/proc/{postmaster}/stat"));
    assert!(
        zombies.is_err(),
        "the old postmaster was reaped: {zombies:?}"
    );
    send("TERM", &hookline);
    assert_eq!(server.wait(Duration::from_secs(30)).await, Some(0));
    assert!(!data.join("pg/data/postmaster.pid").exists());
}

/// Whether this test runs as root (`Some`), from `/proc/self/status`.
fn running_as_root() -> Option<()> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    (uid.split_whitespace().next() == Some("0")).then_some(())
}

/// SIGTERM just after the postmaster died (killed, out of memory): there is
/// nothing to stop, and the server says so and exits 0 (it exited 1 with
/// "could not send stop signal … No such process").
#[tokio::test]
async fn a_server_stopped_just_after_its_postgres_died_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env(), &data).await;
    let postmaster = postmaster_pid(&data);
    send("KILL", &postmaster);
    server.signal("TERM");
    assert_eq!(
        server.wait(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        server.logs()
    );
}

/// SIGTERM while the server starts (here while it initialises its
/// embedded cluster): the server finishes starting, then stops cleanly
/// with exit 0 and stops the cluster it started. The signals used to be
/// listened for only once serving had begun, so a SIGTERM during the
/// start, or just after "Hookline is listening", killed the process where
/// it stood (no exit code) and left its Postgres running.
#[tokio::test]
async fn a_sigterm_while_the_server_starts_stops_it_cleanly() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = tokio::process::Command::new(hookline_tests::process::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .envs(env())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut logs = String::new();
    let read_all = async {
        let mut signalled = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if !signalled && line.contains("initialising a new Postgres cluster") {
                send("TERM", &pid);
                signalled = true;
            }
            logs.push_str(&line);
            logs.push('\n');
        }
        signalled
    };
    let signalled = tokio::time::timeout(Duration::from_secs(120), read_all)
        .await
        .expect("the server's output ends");
    assert!(signalled, "{logs}");
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the server exits")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(!data.join("pg/data/postmaster.pid").exists(), "{logs}");
}

/// After a crash of Hookline and its Postgres, the pid in the cluster's pid
/// file can belong to another process by the next start (a reboot, a
/// container's restart). The server used to take it for a running cluster,
/// wait 60 s for it and give up; it now sees that process is no postmaster
/// and starts the cluster.
#[tokio::test]
async fn a_pid_file_naming_a_reused_pid_does_not_stop_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env(), &data).await;
    let pid_path = data.join("pg/data/postmaster.pid");
    let pid_file = std::fs::read_to_string(&pid_path).unwrap();
    let postmaster = pid_file.lines().next().unwrap().trim().to_string();
    server.signal("KILL");
    server.wait(Duration::from_secs(10)).await;
    send("KILL", &postmaster);
    hookline_tests::eventually(
        "the postmaster is gone",
        Duration::from_secs(10),
        || async { (!std::path::Path::new(&format!("/proc/{postmaster}")).exists()).then_some(()) },
    )
    .await;
    // Its pid now names a live process that is not a postmaster.
    let mut squatter = tokio::process::Command::new("sleep")
        .arg("120")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let reused = squatter.id().unwrap().to_string();
    let rest: Vec<&str> = pid_file.lines().skip(1).collect();
    std::fs::write(&pid_path, format!("{reused}\n{}\n", rest.join("\n"))).unwrap();

    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env(), &data).await;
    assert!(
        server.logs().contains("not a postmaster"),
        "{}",
        server.logs()
    );
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let _ = squatter.kill().await;

    // Crashed again; now the pid belongs to another cluster's postmaster
    // (another server's, on its own data directory).
    let pid_file = std::fs::read_to_string(&pid_path).unwrap();
    let postmaster = postmaster_pid(&data);
    server.signal("KILL");
    server.wait(Duration::from_secs(10)).await;
    send("KILL", &postmaster);
    hookline_tests::eventually(
        "the second postmaster is gone",
        Duration::from_secs(10),
        || async { (!std::path::Path::new(&format!("/proc/{postmaster}")).exists()).then_some(()) },
    )
    .await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_data = other_dir.path().join("data");
    let mut other = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env(), &other_data).await;
    let rest: Vec<&str> = pid_file.lines().skip(1).collect();
    std::fs::write(
        &pid_path,
        format!("{}\n{}\n", postmaster_pid(&other_data), rest.join("\n")),
    )
    .unwrap();
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env(), &data).await;
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let other_ready = reqwest::get(other.url("/readyz")).await.unwrap();
    assert_eq!(other_ready.status(), 200, "the other cluster is left alone");
    server.signal("TERM");
    other.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(30)).await, Some(0));
    assert_eq!(other.wait(Duration::from_secs(30)).await, Some(0));
}
