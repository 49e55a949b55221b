//! Load scenarios: closed-loop publishers or an open-loop rate, through the
//! public HTTP API, against the release server in its own process.

use crate::procstat::{cpu_seconds, peak_rss_mb, postgres_cpu_seconds};
use crate::receiver::Receiver;
use crate::report::{percentile, Outcome, Report, Target};
use crate::{Cluster, ADMIN_TOKEN, SECRET_KEY};
use serde_json::json;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Scenario {
    pub name: &'static str,
    pub duration: Duration,
    /// Closed loop: this many publishers, each sending its next event when
    /// the previous one is answered.
    pub publishers: usize,
    /// Open loop: this many events per second, whatever the answers.
    pub rate: Option<f64>,
    pub subscriptions: usize,
    pub storm: bool,
    pub env: Vec<(&'static str, &'static str)>,
}

impl Scenario {
    pub fn steady(duration: Duration) -> Self {
        Self {
            name: "steady",
            duration,
            publishers: 32,
            rate: None,
            subscriptions: 1,
            storm: false,
            env: vec![],
        }
    }
    pub fn fanout(duration: Duration) -> Self {
        Self {
            name: "fanout",
            duration,
            publishers: 32,
            rate: None,
            subscriptions: 5,
            storm: false,
            env: vec![],
        }
    }
    pub fn latency(duration: Duration) -> Self {
        Self {
            name: "latency",
            duration,
            publishers: 0,
            rate: Some(500.0),
            subscriptions: 1,
            storm: false,
            env: vec![],
        }
    }
    pub fn retry_storm(duration: Duration) -> Self {
        Self {
            name: "retry-storm",
            duration,
            publishers: 32,
            rate: None,
            subscriptions: 1,
            storm: true,
            env: vec![("HOOKLINE_RETRY_SCHEDULE", "1,2,4")],
        }
    }
}

struct Server {
    child: Child,
    address: String,
    logs: Arc<Mutex<Vec<String>>>,
}

/// `BENCH_PROCESSES=split`: two API processes (publishers split between
/// them) and two worker processes on the one database, instead of one
/// process doing everything (`docs/scaling.md`).
fn split_processes() -> bool {
    std::env::var("BENCH_PROCESSES").is_ok_and(|v| v == "split")
}

async fn start_server(cluster: &Cluster, db_url: &str, name: &str, env: &[(&str, &str)]) -> Server {
    start_role(cluster, db_url, name, env, None).await
}

/// A server process; with a role, `--role <role>` (a worker listens on
/// no port: its address is left empty).
async fn start_role(
    cluster: &Cluster,
    db_url: &str,
    name: &str,
    env: &[(&str, &str)],
    role: Option<&str>,
) -> Server {
    let exe = std::env::current_exe().expect("bench executable");
    let data_dir = cluster.dir.join(format!("server-{name}"));
    let worker = role == Some("worker");
    let mut child = Command::new(exe)
        .args([
            "hookline",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            db_url,
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(role.map(|r| vec!["--role", r]).unwrap_or_default())
        .env("HOOKLINE_ALLOW_PRIVATE_TARGETS", "127.0.0.0/8")
        .env("HOOKLINE_SECRET_KEY", SECRET_KEY)
        .env("HOOKLINE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn,hookline_api::startup=info")
        .envs(env.iter().copied())
        .envs(
            std::env::vars().filter(|(k, _)| k.starts_with("HOOKLINE_") && k != "HOOKLINE_PG_CONF"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    let stderr = child.stderr.take().expect("stderr");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink = logs.clone();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("address=").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
            sink.lock().unwrap().push(line);
        }
    });
    let address = if worker {
        drop(rx);
        String::new()
    } else {
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("the server did not start: {:?}", logs.lock().unwrap()))
            .expect("address")
    };
    Server {
        child,
        address,
        logs,
    }
}

#[derive(Default)]
struct Published {
    latencies: Vec<f64>,
    deliveries: Vec<String>,
    events: u64,
    errors: u64,
}

#[derive(serde::Deserialize)]
struct Accepted {
    deliveries: Vec<AcceptedDelivery>,
}

#[derive(serde::Deserialize)]
struct AcceptedDelivery {
    id: String,
}

async fn publish_one(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    seq: u64,
    into: &Mutex<Published>,
) {
    let body = json!({"event_type": "bench.tick", "data": {"seq": seq, "customer": "Acme Corp", "amount": "1500.00", "currency": "USD"}});
    let started = Instant::now();
    let result = client.post(url).bearer_auth(key).json(&body).send().await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let accepted = match result {
        Ok(res) if res.status() == 202 => res.json::<Accepted>().await.ok(),
        _ => None,
    };
    let mut p = into.lock().unwrap();
    match accepted {
        Some(a) => {
            p.latencies.push(ms);
            p.events += 1;
            p.deliveries.extend(a.deliveries.into_iter().map(|d| d.id));
        }
        None => p.errors += 1,
    }
}

async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    publishers: usize,
    until: Instant,
) -> Published {
    let out = Arc::new(Mutex::new(Published::default()));
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let (client, url, key, out) = (
            client.clone(),
            url.to_string(),
            key.to_string(),
            out.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut seq = (p as u64) << 32;
            while Instant::now() < until {
                publish_one(&client, &url, &key, seq, &out).await;
                seq += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap()
}

async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    rate: f64,
    start: Instant,
    until: Instant,
) -> Published {
    let out = Arc::new(Mutex::new(Published::default()));
    let mut tasks = tokio::task::JoinSet::new();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut n: u32 = 0;
    loop {
        let at = start + interval * n;
        if at >= until {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let (client, url, key, out) = (
            client.clone(),
            url.to_string(),
            key.to_string(),
            out.clone(),
        );
        let seq = u64::from(n);
        tasks.spawn(async move { publish_one(&client, &url, &key, seq, &out).await });
        n += 1;
    }
    while tasks.join_next().await.is_some() {}
    Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap()
}

pub async fn run(cluster: &Cluster, s: Scenario) -> Report {
    let mut report = Report::new(s.name);
    let db = cluster
        .database(&format!("bench_{}", s.name.replace('-', "_")))
        .await;
    let receiver = Receiver::start(s.storm).await;
    let split = split_processes();
    let mut server = if split {
        start_role(cluster, &db, s.name, &s.env, Some("api")).await
    } else {
        start_server(cluster, &db, s.name, &s.env).await
    };
    let mut others: Vec<Server> = Vec::new();
    if split {
        others.push(
            start_role(
                cluster,
                &db,
                &format!("{}-api2", s.name),
                &s.env,
                Some("api"),
            )
            .await,
        );
        for w in 1..=2 {
            others.push(
                start_role(
                    cluster,
                    &db,
                    &format!("{}-worker{w}", s.name),
                    &s.env,
                    Some("worker"),
                )
                .await,
            );
        }
    }
    let base = format!("http://{}", server.address);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    hookline_tests::eventually("the server is ready", Duration::from_secs(60), || async {
        let r = client.get(format!("{base}/readyz")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let tenant: serde_json::Value = client
        .post(format!("{base}/admin/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = tenant["api_key"].as_str().unwrap().to_string();
    for i in 0..s.subscriptions {
        let path = format!("/s{i}");
        let sub: serde_json::Value = client
            .post(format!("{base}/v1/subscriptions"))
            .bearer_auth(&key)
            .json(&json!({"url": receiver.url(&path), "events": ["bench.*"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        receiver.expect(&path, sub["secret"].as_str().unwrap());
    }
    let pid = server.child.id().expect("server pid");
    let pids: Vec<u32> = std::iter::once(pid)
        .chain(others.iter().filter_map(|o| o.child.id()))
        .collect();
    let servers_cpu = |pids: &[u32]| pids.iter().map(|p| cpu_seconds(*p, false)).sum::<f64>();
    let me = std::process::id();
    let (server_cpu0, pg_cpu0, bench_cpu0) = (
        servers_cpu(&pids),
        postgres_cpu_seconds(cluster.data_dir()),
        cpu_seconds(me, false),
    );
    let url = format!("{base}/v1/events");
    let start = Instant::now();
    let until = start + s.duration;
    let mut published = match (s.rate, others.first().filter(|_| split)) {
        (Some(rate), _) => open_loop(&client, &url, &key, rate, start, until).await,
        (None, None) => closed_loop(&client, &url, &key, s.publishers, until).await,
        // Half the publishers on each API process.
        (None, Some(api2)) => {
            let url2 = format!("http://{}/v1/events", api2.address);
            let half = s.publishers / 2;
            let (mut a, b) = tokio::join!(
                closed_loop(&client, &url, &key, s.publishers - half, until),
                closed_loop(&client, &url2, &key, half, until)
            );
            a.events += b.events;
            a.errors += b.errors;
            a.latencies.extend(b.latencies);
            a.deliveries.extend(b.deliveries);
            a
        }
    };
    let load_secs = start.elapsed().as_secs_f64();
    let load_end = Instant::now();
    let expected = published.deliveries.len();
    eprintln!(
        "  {} events accepted ({} deliveries), waiting for the receiver…",
        published.events, expected
    );
    let drained = tokio::time::timeout(Duration::from_secs(300), async {
        loop {
            if receiver.stats.seen.lock().unwrap().len() >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok();
    let seen = receiver.stats.seen.lock().unwrap().clone();
    let lost = published
        .deliveries
        .iter()
        .filter(|id| !seen.contains(*id))
        .count();
    let last = receiver
        .stats
        .last_arrival
        .lock()
        .unwrap()
        .unwrap_or(load_end);
    let (server_cpu, pg_cpu, bench_cpu) = (
        servers_cpu(&pids) - server_cpu0,
        postgres_cpu_seconds(cluster.data_dir()) - pg_cpu0,
        cpu_seconds(me, false) - bench_cpu0,
    );
    let rss = pids.iter().map(|p| peak_rss_mb(*p)).fold(0.0, f64::max);
    for p in &pids {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(p.to_string())
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), server.child.wait()).await;
    for mut o in others {
        let _ = tokio::time::timeout(Duration::from_secs(30), o.child.wait()).await;
    }
    let bad = receiver.stats.bad_signatures.load(Ordering::Relaxed);

    let events_per_s = published.events as f64 / load_secs;
    let deliveries_per_s = seen.len() as f64 / last.duration_since(start).as_secs_f64().max(1e-3);
    let mut lat = receiver.stats.latencies.lock().unwrap().clone();
    let mine = s.name;
    report.metric(
        "events accepted/s",
        events_per_s,
        "/s",
        match mine {
            "steady" => Some(Target::AtLeast(2000.0)),
            _ => None,
        },
    );
    report.metric(
        "deliveries/s at receiver",
        deliveries_per_s,
        "/s",
        match mine {
            "steady" => Some(Target::AtLeast(2000.0)),
            "fanout" => Some(Target::AtLeast(4000.0)),
            _ => None,
        },
    );
    report.metric(
        "publish p50",
        percentile(&mut published.latencies, 50.0),
        "ms",
        None,
    );
    report.metric(
        "publish p95",
        percentile(&mut published.latencies, 95.0),
        "ms",
        None,
    );
    report.metric(
        "publish p99",
        percentile(&mut published.latencies, 99.0),
        "ms",
        match mine {
            "steady" => Some(Target::AtMost(30.0)),
            _ => None,
        },
    );
    report.metric(
        "enqueue→receiver p50",
        percentile(&mut lat, 50.0),
        "ms",
        None,
    );
    report.metric(
        "enqueue→receiver p95",
        percentile(&mut lat, 95.0),
        "ms",
        None,
    );
    report.metric(
        "enqueue→receiver p99",
        percentile(&mut lat, 99.0),
        "ms",
        match mine {
            "latency" => Some(Target::AtMost(25.0)),
            _ => None,
        },
    );
    if s.storm {
        let mut first = receiver.stats.first_attempts.lock().unwrap().clone();
        report.metric(
            "first attempt after enqueue p99",
            percentile(&mut first, 99.0),
            "ms",
            None,
        );
        report.metric(
            "requests at receiver (incl. retries)",
            receiver.stats.requests.load(Ordering::Relaxed) as f64,
            "",
            None,
        );
    }
    report.metric(
        "drain time",
        last.saturating_duration_since(load_end).as_secs_f64(),
        "s",
        None,
    );
    report.metric("server peak RSS", rss, "MB", Some(Target::AtMost(150.0)));
    report.metric("server CPU", server_cpu, "s", None);
    report.metric("Postgres CPU", pg_cpu, "s", None);
    report.metric("load generator + receiver CPU", bench_cpu, "s", None);
    report.metric(
        "server + Postgres CPU per delivery",
        (server_cpu + pg_cpu) * 1e6 / (seen.len().max(1) as f64),
        "µs",
        None,
    );

    report.metric("publish errors", published.errors as f64, "", None);
    report.metric(
        "accepted but never delivered",
        lost as f64,
        "",
        Some(Target::AtMost(0.0)),
    );
    report.metric("bad signatures", bad as f64, "", Some(Target::AtMost(0.0)));
    if !drained || lost > 0 || bad > 0 {
        report.outcome = Outcome::Failed;
        let logs = server.logs.lock().unwrap();
        report.notes.push(format!(
            "server log tail: {:?}",
            logs.iter().rev().take(5).collect::<Vec<_>>()
        ));
    }
    report
}
