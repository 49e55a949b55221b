//! `hookline audit export|verify|heads`.

use super::EXIT_TAMPERED;
use crate::startup::OpenDatabase;
use anyhow::Context;
use futures::StreamExt;
use hookline_application::audit::chain::canonical;
use hookline_application::audit::verify::{ChainHead, ChainVerifier};
use hookline_application::audit::AuditEvent;
use hookline_application::ports::StoredEvent;
use hookline_domain::TenantId;
use hookline_infrastructure::postgres::audit::{by_aggregate, commit_order_page, position_of};
use sha2::{Digest, Sha256};
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const PAGE: i64 = 2000;

/// A connection of its own: if it drops, the command fails instead of
/// silently carrying on with another.
async fn dedicated(database: &OpenDatabase, name: &str) -> anyhow::Result<PgConnection> {
    database
        .db
        .options
        .clone()
        .application_name(name)
        .connect()
        .await
        .context("connecting to the database")
}

/// Output to a file (written aside, renamed when complete) or stdout.
struct Output {
    writer: Box<dyn Write>,
    paths: Option<(PathBuf, PathBuf)>,
}

impl Output {
    fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            None => Ok(Self {
                writer: Box::new(std::io::BufWriter::new(std::io::stdout())),
                paths: None,
            }),
            Some(path) => {
                let partial = PathBuf::from(format!("{}.partial", path.display()));
                let file = std::fs::File::create(&partial)
                    .with_context(|| format!("creating {}", partial.display()))?;
                Ok(Self {
                    writer: Box::new(std::io::BufWriter::new(file)),
                    paths: Some((partial, path.to_path_buf())),
                })
            }
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.writer.flush().context("writing the output")?;
        drop(self.writer);
        if let Some((partial, path)) = self.paths {
            std::fs::rename(&partial, &path)
                .with_context(|| format!("renaming to {}", path.display()))?;
        }
        Ok(())
    }

    fn abandon(self) {
        drop(self.writer);
        if let Some((partial, _)) = self.paths {
            drop(std::fs::remove_file(partial));
        }
    }
}

/// Streams the log in commit order as JSON Lines, from one consistent
/// snapshot. A dropped connection fails the export (exit code 1, and no
/// output file is left behind).
pub async fn export(
    database: &OpenDatabase,
    tenant: Option<TenantId>,
    after: i64,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let mut conn = dedicated(database, "hookline-audit-export").await?;
    let mut out = Output::open(output)?;
    let started = Instant::now();
    let mut exported: u64 = 0;
    let result: anyhow::Result<i64> = async {
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await?;
        let mut cursor = position_of(&mut conn, after)
            .await?
            .with_context(|| format!("--after {after}: no event has that position"))?;
        let mut last_report = Instant::now();
        loop {
            let page = commit_order_page(&mut conn, tenant, cursor, PAGE, None, None).await?;
            let Some(last) = page.last() else { break };
            cursor = last.log_position();
            for event in page {
                let line = serde_json::to_string(&AuditEvent::from(event))?;
                out.writer.write_all(line.as_bytes())?;
                out.writer.write_all(b"\n")?;
                exported += 1;
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                eprintln!(
                    "exported {exported} events ({:.0}/s)…",
                    rate(exported, started)
                );
                last_report = Instant::now();
            }
        }
        sqlx::query("COMMIT").execute(&mut conn).await?;
        Ok(cursor.position)
    }
    .await;
    match result {
        Ok(last) => {
            out.finish()?;
            drop(conn.close().await);
            eprintln!(
                "exported {exported} events in {:.1} s ({:.0}/s); last position {last}",
                started.elapsed().as_secs_f64(),
                rate(exported, started)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.abandon();
            Err(e.context(format!(
                "the export stopped after {exported} events and is incomplete; nothing was written"
            )))
        }
    }
}

fn rate(n: u64, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64().max(1e-3)
}

fn head_line(head: &ChainHead) -> anyhow::Result<String> {
    Ok(canonical(&serde_json::to_value(head)?))
}

/// Verifies every chain; with `heads_out`, prints the chain heads and their
/// digest; with `anchored`, also checks heads recorded earlier.
pub async fn verify(
    database: &OpenDatabase,
    tenant: Option<TenantId>,
    anchored: Option<&Path>,
    heads_out: Option<Option<&Path>>,
) -> anyhow::Result<ExitCode> {
    let mut expected: HashMap<(String, String, i64), String> = HashMap::new();
    if let Some(path) = anchored {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let value: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
            if value.get("digest").is_some() {
                continue;
            }
            let head: ChainHead = serde_json::from_value(value)
                .with_context(|| format!("{}:{}: not a chain head", path.display(), n + 1))?;
            expected.insert(
                (head.aggregate_type, head.aggregate_id, head.sequence),
                head.link,
            );
        }
    }
    let mut out = match heads_out {
        Some(path) => Some(Output::open(path)?),
        None => None,
    };
    let mut digest = Sha256::new();
    let mut conn = dedicated(database, "hookline-audit-verify").await?;
    let started = Instant::now();
    let mut verifier = ChainVerifier::default();
    let mut matched = 0usize;
    let mut stream = by_aggregate(&mut conn, tenant);
    let mut emit = |head: ChainHead, out: &mut Option<Output>| -> anyhow::Result<()> {
        if let Some(out) = out.as_mut() {
            let line = head_line(&head)?;
            digest.update(line.as_bytes());
            digest.update(b"\n");
            out.writer.write_all(line.as_bytes())?;
            out.writer.write_all(b"\n")?;
        }
        Ok(())
    };
    while let Some(row) = stream.next().await {
        let event: StoredEvent = row.context("reading the log")?;
        match verifier.push(&event) {
            Ok(finished) => {
                if let Some(head) = finished {
                    emit(head, &mut out)?;
                }
            }
            Err(broken) => {
                if let Some(o) = out.take() {
                    o.abandon();
                }
                eprintln!("TAMPERING DETECTED: {broken}");
                println!("{}", serde_json::to_string(&broken)?);
                return Ok(ExitCode::from(EXIT_TAMPERED));
            }
        }
        if !expected.is_empty() {
            let key = (
                event.aggregate_type.clone(),
                event.aggregate_id.clone(),
                event.sequence,
            );
            if let Some(link) = expected.get(&key) {
                let computed = hookline_application::audit::chain::stored_link(&event.metadata)
                    .unwrap_or_default();
                if computed != link {
                    eprintln!(
                        "TAMPERING DETECTED: {} {} sequence {} (position {}) does not match the anchored head",
                        key.0, key.1, key.2, event.position
                    );
                    return Ok(ExitCode::from(EXIT_TAMPERED));
                }
                matched += 1;
            }
        }
    }
    drop(stream);
    if let Some(head) = verifier.finish() {
        emit(head, &mut out)?;
    }
    if matched < expected.len() {
        eprintln!(
            "TAMPERING DETECTED: {} anchored chain heads are no longer in the log (events were removed)",
            expected.len() - matched
        );
        return Ok(ExitCode::from(EXIT_TAMPERED));
    }
    drop(conn.close().await);
    let summary = format!(
        "verified {} events in {} aggregates in {:.1} s: every chain is intact",
        verifier.events,
        verifier.aggregates,
        started.elapsed().as_secs_f64()
    );
    match out {
        Some(mut o) => {
            let footer = serde_json::json!({
                "digest": hex::encode(digest.finalize()),
                "aggregates": verifier.aggregates,
                "events": verifier.events,
                "generated_at": chrono::Utc::now(),
            });
            writeln!(o.writer, "{footer}")?;
            o.finish()?;
            eprintln!("{summary}");
        }
        None => {
            if !expected.is_empty() {
                println!("{summary}; {matched} anchored heads match");
            } else {
                println!("{summary}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
