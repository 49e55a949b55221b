//! `GET /metrics` end to end: counters and histograms move as real
//! receivers accept and refuse deliveries, `promtool check metrics` accepts
//! the scrape, access is by token or loopback, a worker-only process
//! serves its metrics on `--metrics-listen`, and two processes on one
//! database report the same queue and projection gauges. Also checks the
//! shipped alerting rules with `promtool check rules` / `promtool test
//! rules` and that the Grafana dashboard parses.

use hookline_tests::process::ServerProcess;
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::webhooks::publish;
use hookline_tests::{eventually, expect_json, TestApp};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// One sample: its name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// The samples of an exposition (comments skipped). Label values here
/// never hold `,` or `"`, which keeps this parser short.
fn parse(text: &str) -> Vec<(Series, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").expect("label=\"value\"");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().expect("a number"),
            };
            (
                Series {
                    name: name.to_string(),
                    labels,
                },
                value,
            )
        })
        .collect()
}

/// The sum of the samples named `name` having all of `labels`.
fn sum(samples: &[(Series, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .sum()
}

async fn scrape_url(client: &reqwest::Client, url: &str) -> String {
    let res = client.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {url}");
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    res.text().await.unwrap()
}

async fn scrape(app: &TestApp) -> Vec<(Series, f64)> {
    parse(&scrape_url(&app.client, &app.url("/metrics")).await)
}

fn promtool() -> PathBuf {
    let found = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("promtool"))
                    .find(|p| p.exists())
            })
        });
    found.unwrap_or_else(|| {
        panic!(
            "promtool is not installed; it comes with Debian's `prometheus` package \
             (scripts/test installs it: sudo apt-get install prometheus)"
        )
    })
}

/// Runs `promtool args…` (with `stdin`), asserting it succeeds.
fn run_promtool(args: &[&str], stdin: Option<&str>, dir: &Path) -> String {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[tokio::test]
async fn counters_and_histograms_move_as_deliveries_succeed_and_fail() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
        env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "1".into());
    })
    .await;
    app.ready().await;
    let t = app.tenant("acme").await;
    let ok = TestReceiver::start().await;
    let down = TestReceiver::start().await;
    down.default_reply(Reply::status(503));
    let picky = TestReceiver::start().await;
    picky.default_reply(Reply::status(400));
    let mut subscription_ids = Vec::new();
    for rx in [&ok, &down, &picky] {
        let s = app
            .subscribe(&t, json!({"url": rx.url("/hook"), "events": ["order.*"]}))
            .await;
        subscription_ids.push(s["id"].as_str().unwrap().to_string());
    }
    let before = scrape(&app).await;
    assert_eq!(sum(&before, "hookline_events_published_total", &[]), 0.0);
    assert_eq!(sum(&before, "hookline_attempts_total", &[]), 0.0);

    let n = 3;
    let mut delivery_ids = Vec::new();
    for i in 0..n {
        let published = publish(&app, &t, "order.placed", json!({"i": i})).await;
        for d in published["deliveries"].as_array().unwrap() {
            delivery_ids.push(d["id"].as_str().unwrap().to_string());
        }
    }
    ok.wait_for(n, WAIT).await;
    // Each refused delivery: the 503 is retried once, then abandoned; the
    // 400 fails at once.
    let after = eventually("every outcome is counted", WAIT, || async {
        let s = scrape(&app).await;
        let attempts = |o: &str| sum(&s, "hookline_attempts_total", &[("outcome", o)]);
        (attempts("delivered") == 3.0
            && attempts("retry") == 3.0
            && attempts("abandoned") == 3.0
            && attempts("failed") == 3.0)
            .then_some(s)
    })
    .await;
    let n = f64::from(u32::try_from(n).unwrap());
    assert_eq!(sum(&after, "hookline_events_published_total", &[]), n);
    assert_eq!(
        sum(&after, "hookline_deliveries_enqueued_total", &[]),
        3.0 * n
    );
    let attempts = |labels: &[(&str, &str)]| sum(&after, "hookline_attempts_total", labels);
    assert_eq!(
        attempts(&[
            ("outcome", "delivered"),
            ("error_kind", "none"),
            ("status_class", "2xx")
        ]),
        n
    );
    assert_eq!(
        attempts(&[
            ("outcome", "retry"),
            ("error_kind", "http_status"),
            ("status_class", "5xx")
        ]),
        n
    );
    assert_eq!(
        attempts(&[
            ("outcome", "abandoned"),
            ("error_kind", "http_status"),
            ("status_class", "5xx")
        ]),
        n
    );
    assert_eq!(
        attempts(&[
            ("outcome", "failed"),
            ("error_kind", "http_status"),
            ("status_class", "4xx")
        ]),
        n
    );
    // Every attempt timed; only the delivered ones have a latency.
    assert_eq!(
        sum(&after, "hookline_attempt_duration_seconds_count", &[]),
        4.0 * n
    );
    assert_eq!(
        sum(
            &after,
            "hookline_attempt_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        4.0 * n
    );
    assert!(sum(&after, "hookline_attempt_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(
        sum(&after, "hookline_delivery_latency_seconds_count", &[]),
        n
    );
    assert!(sum(&after, "hookline_delivery_latency_seconds_sum", &[]) > 0.0);
    // HTTP requests by route template, never the raw path.
    assert_eq!(
        sum(
            &after,
            "hookline_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/v1/events"),
                ("status_class", "2xx")
            ]
        ),
        n
    );
    let missing = app
        .get(&t, "/v1/subscriptions/01936f2e-5b7a-7c3d-9e4f-1a2b3c4d5e6f")
        .await;
    assert_eq!(missing.status(), 404);
    let last = scrape(&app).await;
    assert_eq!(
        sum(
            &last,
            "hookline_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/v1/subscriptions/{id}"),
                ("status_class", "4xx")
            ]
        ),
        1.0
    );
    assert!(
        sum(
            &last,
            "hookline_http_request_duration_seconds_count",
            &[("route", "/v1/events")]
        ) >= n
    );
    // No ids as label values: not the tenant's, a subscription's or a
    // delivery's, nor a raw path.
    let text = scrape_url(&app.client, &app.url("/metrics")).await;
    for id in subscription_ids
        .iter()
        .chain(&delivery_ids)
        .chain([&t.id, &"01936f2e-5b7a-7c3d-9e4f-1a2b3c4d5e6f".to_string()])
    {
        assert!(!text.contains(id.as_str()), "{id} appears in:\n{text}");
    }
    // The gauges: subscriptions by state, the queue drained.
    assert_eq!(
        sum(&last, "hookline_subscriptions", &[("state", "active")]),
        3.0
    );
    assert_eq!(sum(&last, "hookline_database_up", &[]), 1.0);
    for projection in ["tenants", "subscriptions", "deliveries", "event_types"] {
        assert_eq!(
            last.iter()
                .filter(|(s, _)| s.name == "hookline_projection_lag_seconds"
                    && s.labels.get("projection").map(String::as_str) == Some(projection))
                .count(),
            1,
            "{projection}"
        );
    }
    assert!(
        sum(
            &last,
            "hookline_db_pool_max_connections",
            &[("pool", "api")]
        ) > 0.0
    );
    assert!(sum(&last, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(sum(&last, "process_open_fds", &[]) > 0.0);
    // Prometheus's own checker accepts the exposition.
    run_promtool(&["check", "metrics"], Some(&text), &repo_root());
}

#[tokio::test]
async fn a_tenant_label_only_when_asked_for() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_METRICS_PER_TENANT".into(), "true".into());
    })
    .await;
    app.ready().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let rx = TestReceiver::start().await;
    for t in [&a, &b] {
        app.subscribe(t, json!({"url": rx.url("/hook"), "events": ["x.*"]}))
            .await;
    }
    publish(&app, &a, "x.one", json!({})).await;
    publish(&app, &a, "x.one", json!({})).await;
    publish(&app, &b, "x.one", json!({})).await;
    rx.wait_for(3, WAIT).await;
    let s = eventually("the attempts are counted", WAIT, || async {
        let s = scrape(&app).await;
        (sum(&s, "hookline_attempts_total", &[("outcome", "delivered")]) == 3.0).then_some(s)
    })
    .await;
    let published = |t: &str| sum(&s, "hookline_events_published_total", &[("tenant", t)]);
    assert_eq!(published(&a.id), 2.0);
    assert_eq!(published(&b.id), 1.0);
    assert_eq!(
        sum(
            &s,
            "hookline_attempts_total",
            &[("tenant", &b.id), ("outcome", "delivered")]
        ),
        1.0
    );
    let text = scrape_url(&app.client, &app.url("/metrics")).await;
    run_promtool(&["check", "metrics"], Some(&text), &repo_root());
}

#[tokio::test]
async fn with_a_token_metrics_ask_for_it() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_METRICS_TOKEN".into(), "scrape-secret".into());
    })
    .await;
    let url = app.url("/metrics");
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body = expect_json(res, 401).await;
    assert_eq!(body["code"], "unauthorized");
    let res = app
        .client
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, 401).await["code"], "unauthorized");
    // The admin token or an API key is not the metrics token.
    let res = app
        .client
        .get(&url)
        .bearer_auth(hookline_tests::server::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(&url)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("# TYPE hookline_attempts_total counter"));
}

#[tokio::test]
async fn without_a_token_loopback_clients_may_scrape() {
    // The server listens on 127.0.0.1; refusing other clients is checked
    // by `routes::metrics::tests` (no non-loopback traffic in tests).
    let app = TestApp::spawn().await;
    let text = scrape_url(&app.client, &app.url("/metrics")).await;
    assert!(text.contains("# TYPE hookline_queue_deliveries gauge"));
}

/// The address a process logged for its metrics listener.
async fn metrics_address(process: &ServerProcess) -> String {
    eventually("the metrics listener is logged", WAIT, || async {
        let logs = process.logs();
        logs.lines()
            .find(|l| l.contains("serving /metrics"))
            .and_then(|l| l.split("address=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(|a| a.trim_matches('"').to_string())
    })
    .await
}

#[tokio::test]
async fn two_processes_on_one_database_report_the_same_queue_and_lag() {
    // No worker anywhere: what is published stays due.
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_ROLE".into(), "api".into());
    })
    .await;
    let mut env = app.env.clone();
    env.insert("HOOKLINE_DATABASE_URL".into(), app.db.url.clone());
    env.insert("HOOKLINE_LISTEN".into(), "127.0.0.1:0".into());
    let dir = tempfile::tempdir().unwrap();
    let other = ServerProcess::start(&["--role", "api"], &env, dir.path()).await;
    let worker_dir = tempfile::tempdir().unwrap();
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/hook"), "events": ["q.*"]}))
        .await;
    // A disabled subscription's deliveries are skipped as they are
    // enqueued: they are not due.
    let off = app
        .subscribe(&t, json!({"url": rx.url("/off"), "events": ["q.*"]}))
        .await;
    let res = app
        .post(
            &t,
            &format!("/v1/subscriptions/{}/disable", off["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let n = 5;
    for i in 0..n {
        publish(&app, &t, "q.item", json!({"i": i})).await;
    }
    let gauges = |s: &[(Series, f64)]| -> Vec<(Series, f64)> {
        s.iter()
            .filter(|(series, _)| {
                series.name.starts_with("hookline_queue_deliveries")
                    || series.name == "hookline_projection_lag_positions"
                    || series.name == "hookline_subscriptions"
            })
            .cloned()
            .collect()
    };
    let (here, there) = eventually("both processes see the queue alike", WAIT, || async {
        let here = gauges(&scrape(&app).await);
        let there = gauges(&parse(
            &scrape_url(&app.client, &other.url("/metrics")).await,
        ));
        (sum(&here, "hookline_queue_deliveries", &[("state", "due")]) == f64::from(n)
            && sum(&here, "hookline_projection_lag_positions", &[]) == 0.0
            && here == there)
            .then_some((here, there))
    })
    .await;
    assert_eq!(here, there);
    assert_eq!(
        sum(&there, "hookline_subscriptions", &[("state", "active")]),
        1.0
    );
    // The oldest due delivery has been waiting, as both see it.
    let other_text = scrape_url(&app.client, &other.url("/metrics")).await;
    assert!(
        sum(
            &parse(&other_text),
            "hookline_queue_oldest_due_age_seconds",
            &[]
        ) > 0.0
    );
    // The publishing process counted the events; the other did not.
    assert_eq!(
        sum(&scrape(&app).await, "hookline_events_published_total", &[]),
        f64::from(n)
    );
    assert_eq!(
        sum(&parse(&other_text), "hookline_events_published_total", &[]),
        0.0
    );

    // A worker-only process serves its metrics on --metrics-listen, and
    // nothing else there. It drains the queue; every process sees it empty.
    let mut wenv = env.clone();
    wenv.insert("HOOKLINE_METRICS_TOKEN".into(), "tok".into());
    let worker = ServerProcess::start(
        &["--role", "worker", "--metrics-listen", "127.0.0.1:0"],
        &wenv,
        worker_dir.path(),
    )
    .await;
    let address = metrics_address(&worker).await;
    let url = format!("http://{address}/metrics");
    rx.wait_for(usize::try_from(n).unwrap(), WAIT).await;
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401, "the token is still asked for");
    let res = app
        .client
        .get(format!("http://{address}/v1/subscriptions"))
        .bearer_auth(&t.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "the metrics listener serves nothing else"
    );
    let worker_scrape = eventually("the worker counted its attempts", WAIT, || async {
        let res = app
            .client
            .get(&url)
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let s = parse(&res.text().await.unwrap());
        (sum(&s, "hookline_attempts_total", &[("outcome", "delivered")]) == f64::from(n))
            .then_some(s)
    })
    .await;
    assert!(
        sum(
            &worker_scrape,
            "hookline_delivery_latency_seconds_count",
            &[]
        ) == f64::from(n)
    );
    eventually("every process sees the queue empty", WAIT, || async {
        let a = scrape(&app).await;
        let b = parse(&scrape_url(&app.client, &other.url("/metrics")).await);
        let empty = |s: &[(Series, f64)]| sum(s, "hookline_queue_deliveries", &[]) == 0.0;
        (empty(&a) && empty(&b)).then_some(())
    })
    .await;
}

#[test]
fn the_shipped_alerting_rules_pass_promtool() {
    let root = repo_root();
    let dir = root.join("docs/monitoring");
    let mut rules: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yml")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with(".test.yml")
        })
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    rules.sort();
    assert!(!rules.is_empty(), "no rule files in docs/monitoring");
    let mut args = vec!["check", "rules"];
    args.extend(rules.iter().map(String::as_str));
    let out = run_promtool(&args, None, &root);
    assert!(out.contains("SUCCESS"), "{out}");
    // Unit tests of the alerts (they fire, and only when they should).
    let tests: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with(".test.yml")
        })
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(!tests.is_empty(), "no rule tests in docs/monitoring");
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    run_promtool(&args, None, &root);
}

#[test]
fn the_grafana_dashboard_parses_and_queries_known_series() {
    let path = repo_root().join("docs/monitoring/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    assert!(dashboard["title"].is_string());
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    // Every query is valid PromQL: promtool checks them as recording rules
    // (Grafana's variables replaced by values).
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let expr = expr.replace("$__rate_interval", "5m").replace("$job", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    std::fs::write(dir.path().join("dashboard.yml"), rules).unwrap();
    run_promtool(&["check", "rules", "dashboard.yml"], None, dir.path());
    for series in [
        "hookline_attempts_total",
        "hookline_attempt_duration_seconds_bucket",
        "hookline_delivery_latency_seconds_bucket",
        "hookline_queue_deliveries",
        "hookline_queue_oldest_due_age_seconds",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(series)),
            "no panel queries {series}"
        );
    }
}

#[tokio::test]
async fn open_circuits_parked_backlogs_and_skipped_deliveries_show() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD".into(), "2".into());
        // Probes far apart: the backlog stays parked while the test looks.
        env.insert("HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS".into(), "600".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MAX_SECONDS".into(), "600".into());
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
        env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "50".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let dead = TestReceiver::start().await;
    dead.default_reply(Reply::status(503));
    let quiet = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": dead.url("/dead"), "events": ["order.*"]}))
        .await;
    let paused = app
        .subscribe(&t, json!({"url": quiet.url("/q"), "events": ["audit.*"]}))
        .await;
    let paused = paused["id"].as_str().unwrap();
    publish(&app, &t, "order.placed", json!({"i": 0})).await;
    eventually("the circuit opens", WAIT, || async {
        let s = scrape(&app).await;
        (sum(&s, "hookline_subscriptions", &[("state", "circuit_open")]) == 1.0).then_some(())
    })
    .await;
    for i in 0..10 {
        publish(&app, &t, "order.placed", json!({"backlog": i})).await;
    }
    let s = eventually("the backlog is parked", WAIT, || async {
        let s = scrape(&app).await;
        (sum(&s, "hookline_queue_deliveries", &[("state", "parked")]) >= 10.0).then_some(s)
    })
    .await;
    assert_eq!(
        sum(&s, "hookline_subscriptions", &[("state", "active")]),
        1.0
    );
    assert!(sum(&s, "hookline_attempts_total", &[("outcome", "retry")]) >= 2.0);
    // Parked deliveries are not due: they do not age the oldest-due gauge
    // (only the one the failed attempts left due could).
    assert!(sum(&s, "hookline_queue_deliveries", &[("state", "due")]) <= 1.0);

    // A disabled subscription's deliveries are skipped, and counted so.
    let res = app
        .post(
            &t,
            &format!("/v1/subscriptions/{paused}/disable"),
            json!({"reason": "maintenance"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    publish(&app, &t, "audit.logged", json!({})).await;
    let s = eventually("the skipped delivery is counted", WAIT, || async {
        let s = scrape(&app).await;
        (sum(&s, "hookline_subscriptions", &[("state", "disabled")]) == 1.0).then_some(s)
    })
    .await;
    assert_eq!(
        sum(
            &s,
            "hookline_deliveries_not_attempted_total",
            &[("reason", "skipped")]
        ),
        1.0
    );
    assert_eq!(quiet.count(), 0);
}

#[tokio::test]
async fn deliveries_held_back_by_a_rate_limit_show_as_waiting_not_in_flight() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(
        &t,
        json!({"url": rx.url("/limited"), "events": ["load.*"], "rate_limit": 2}),
    )
    .await;
    let n = 20;
    for i in 0..n {
        publish(&app, &t, "load.tick", json!({"i": i})).await;
    }
    // At 2 a second the worker holds most of them back for their slot:
    // they show as waiting (they used to count as leased, as if being sent)
    // and the oldest has been due a while.
    eventually("the held-back deliveries show as waiting", WAIT, || async {
        let s = scrape(&app).await;
        let waiting = sum(&s, "hookline_queue_deliveries", &[("state", "waiting")]);
        (waiting >= 5.0 && sum(&s, "hookline_queue_oldest_waiting_age_seconds", &[]) > 1.0)
            .then_some(())
    })
    .await;
    rx.wait_for(n, Duration::from_secs(60)).await;
    eventually("nothing waits once all are sent", WAIT, || async {
        let s = scrape(&app).await;
        (sum(&s, "hookline_queue_deliveries", &[("state", "waiting")]) == 0.0
            && sum(&s, "hookline_queue_oldest_waiting_age_seconds", &[]) == 0.0)
            .then_some(())
    })
    .await;
}
