//! Hookline's benchmark. Starts a private Postgres cluster (fsync and
//! synchronous commit on), the release server as a separate process and a
//! verifying receiver, drives load through the public HTTP API only, waits
//! until every accepted delivery has arrived, and prints one table.
//!
//! ```text
//! cargo run --release -p hookline-tests --bin bench -- [--scenario NAME|all] [--duration SECS] [--json FILE]
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod load;
mod procstat;
mod receiver;
mod replay;
mod report;

use clap::Parser;
use hookline_infrastructure::postgres::local::LocalPostgres;
use report::{Outcome, Report};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Hookline's benchmark")]
struct Args {
    /// steady, fanout, latency, retry-storm, replay, or all.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Seconds of load per scenario.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Events generated for the replay scenario: half as many deliveries,
    /// rounded down to whole messages of `--replay-fanout` (at least one).
    #[arg(long, default_value_t = 1_000_000)]
    replay_events: u64,
    /// The shape of the replay scenario's log: `listed` (what Hookline
    /// writes: a `MessagePublished` 1.2 listing its deliveries, then their
    /// outcomes), `enqueued` (written before ADR 0019: the message, a
    /// `DeliveryEnqueued` 2.0 per delivery, the outcomes) or `inline` (no
    /// message: a `DeliveryEnqueued` 1.0 with the body per delivery, then
    /// the outcomes).
    #[arg(long, default_value = "listed", value_parser = ["listed", "enqueued", "inline"])]
    replay_shape: String,
    /// Deliveries per message in the replay scenario's log (1 to 64): each
    /// published event fans out to this many subscriptions. In the
    /// `listed` shape, a message of 2 to 16 deliveries holds their
    /// outcomes in one `DeliveriesAttempted` row, as Hookline writes it
    /// (ADR 0023).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    replay_fanout: u64,
    /// The executable whose `hookline migrate` and `hookline replay` the
    /// replay scenario runs (another build's `bench`, to time its replay
    /// of the same history in the shape that build wrote); default: this
    /// one.
    #[arg(long)]
    replay_with: Option<PathBuf>,
}

/// The allocator the `hookline` binary uses (the bench binary contains the
/// server).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const ADMIN_TOKEN: &str = "bench-admin";

/// The shared cluster and where its data lives.
pub struct Cluster {
    pub pg: LocalPostgres,
    pub dir: PathBuf,
}

impl Cluster {
    pub async fn database(&self, name: &str) -> String {
        self.pg
            .create_database(name, None)
            .await
            .expect("create database");
        self.pg.url(name)
    }

    /// Drops a finished scenario's database and checkpoints, so the next
    /// scenario starts on a quiet cluster (no flush or vacuum of the last
    /// one's data running under it).
    pub async fn settle(&self, database: &str) {
        use sqlx::{ConnectOptions, Connection};
        let Ok(mut conn) = self.pg.options("postgres").connect().await else {
            eprintln!("warning: could not connect to drop {database}");
            return;
        };
        for sql in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            "CHECKPOINT".to_string(),
        ] {
            if let Err(e) = sqlx::query(&sql).execute(&mut conn).await {
                eprintln!("warning: {sql}: {e}");
            }
        }
        drop(conn.close().await);
    }

    pub fn data_dir(&self) -> &Path {
        self.pg.data_dir()
    }
}

fn main() -> ExitCode {
    // The benchmark binary doubles as the server, so both come from the
    // same (release) build.
    let mut argv = std::env::args_os();
    if std::env::args().nth(1).as_deref() == Some("hookline") {
        let _ = argv.next();
        return hookline_api::cli::main_from(argv);
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let scenarios: Vec<&str> = match args.scenario.as_str() {
        "all" => vec!["steady", "fanout", "latency", "retry-storm", "replay"],
        one @ ("steady" | "fanout" | "latency" | "retry-storm" | "replay") => vec![one],
        other => {
            eprintln!("error: unknown scenario '{other}' (steady, fanout, latency, retry-storm, replay, all)");
            return ExitCode::from(2);
        }
    };
    if scenarios.contains(&"replay") && args.replay_events / 2 < args.replay_fanout {
        eprintln!(
            "error: --replay-events ({}) must be at least twice --replay-fanout ({}): the log would be empty",
            args.replay_events, args.replay_fanout
        );
        return ExitCode::from(2);
    }
    let dir = tempfile::Builder::new()
        .prefix("hookline-bench-")
        .tempdir()
        .expect("temp dir");
    eprintln!("starting a private Postgres cluster (fsync on, synchronous_commit on)…");
    let pg = match LocalPostgres::ensure_running(dir.path()).await {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cluster = Cluster {
        pg,
        dir: dir.path().to_path_buf(),
    };
    let duration = Duration::from_secs(args.duration);
    let mut reports = Vec::new();
    for name in scenarios {
        eprintln!("── scenario {name} ──");
        let report = match name {
            "steady" => load::run(&cluster, load::Scenario::steady(duration)).await,
            "fanout" => load::run(&cluster, load::Scenario::fanout(duration)).await,
            "latency" => load::run(&cluster, load::Scenario::latency(duration)).await,
            "retry-storm" => load::run(&cluster, load::Scenario::retry_storm(duration)).await,
            _ => {
                let log = replay::Log {
                    events: args.replay_events,
                    shape: &args.replay_shape,
                    fanout: args.replay_fanout,
                };
                replay::run(&cluster, &log, args.replay_with.as_deref()).await
            }
        };
        reports.push(report);
        cluster
            .settle(&format!("bench_{}", name.replace('-', "_")))
            .await;
    }
    let Cluster { pg, .. } = cluster;
    drop(pg.release(true).await);
    report::print(&reports);
    if let Some(path) = &args.json {
        let json: Vec<HashMap<&str, serde_json::Value>> =
            reports.iter().map(Report::to_json).collect();
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).expect("write json");
        eprintln!("wrote {}", path.display());
    }
    if reports.iter().any(|r| r.outcome == Outcome::Failed) {
        eprintln!("FAILED: see the result rows above");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
