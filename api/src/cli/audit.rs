//! `hookline audit export|verify|heads`: files and printing around the
//! application's audit service.

use super::EXIT_TAMPERED;
use crate::startup::Services;
use anyhow::Context;
use hookline_application::audit::chain::canonical;
use hookline_application::audit::verify::ChainHead;
use hookline_application::audit::{AnchoredHeads, Verification, EXPORT_WRITE_FAILED};
use hookline_application::AppError;
use hookline_domain::TenantId;
use sha2::{Digest, Sha256};
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Output to a file (written aside under a name of its own, renamed when
/// complete) or stdout.
struct Output {
    writer: Box<dyn Write + Send>,
    /// The partial file and where it goes once written; a partial file
    /// still named here when the output is dropped (a failure, an
    /// interruption) is removed.
    paths: Option<(PathBuf, PathBuf)>,
}

impl Output {
    fn open(path: Option<&Path>, force: bool) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self {
                writer: Box::new(std::io::BufWriter::new(std::io::stdout())),
                paths: None,
            });
        };
        if path.exists() && !force {
            anyhow::bail!(
                "{} already exists; pass --force to replace it",
                path.display()
            );
        }
        remove_abandoned_partials(path);
        // The writer's pid is in the name: a later export to the same path
        // removes what a killed one left (its process is gone).
        let partial = PathBuf::from(format!(
            "{}.{}-{}.partial",
            path.display(),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        // The whole log (or a tenant's) goes in: readable by its owner only.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        Ok(Self {
            writer: Box::new(std::io::BufWriter::new(file)),
            paths: Some((partial, path.to_path_buf())),
        })
    }

    fn finish(mut self, force: bool) -> anyhow::Result<()> {
        self.writer.flush().context("writing the output")?;
        // Closes the file before it is renamed.
        self.writer = Box::new(std::io::sink());
        if let Some((partial, path)) = &self.paths {
            if !force && path.exists() {
                anyhow::bail!(
                    "{} appeared while writing; pass --force to replace it",
                    path.display()
                );
            }
            std::fs::rename(partial, path)
                .with_context(|| format!("renaming to {}", path.display()))?;
            self.paths = None;
        }
        Ok(())
    }

    fn abandon(self) {}
}

impl Drop for Output {
    fn drop(&mut self) {
        self.writer = Box::new(std::io::sink());
        if let Some((partial, _)) = self.paths.take() {
            drop(std::fs::remove_file(partial));
        }
    }
}

/// Removes the partial files of exports to `path` whose process is gone
/// (killed while it wrote: a `kill -9` leaves its partial file, a whole
/// copy of the log so far). A running export's file is left alone.
fn remove_abandoned_partials(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".partial"))
        else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let abandoned = entry.path();
            if std::fs::remove_file(&abandoned).is_ok() {
                eprintln!(
                    "removed {}, left by an export that was killed",
                    abandoned.display()
                );
            }
        }
    }
}

/// The longest line of a heads file read (a head is a few hundred bytes).
const MAX_HEADS_LINE: usize = 64 * 1024;

fn rate(n: u64, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64().max(1e-3)
}

/// Streams the log in commit order as JSON Lines, from one consistent
/// snapshot. A dropped connection fails the export (exit code 1, and no
/// output file is left behind).
pub async fn export(
    s: &Services,
    tenant: Option<TenantId>,
    after: i64,
    output: Option<&Path>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let mut out = Output::open(output, force)?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut progress = |exported: u64| {
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "exported {exported} events ({:.0}/s)…",
                rate(exported, started)
            );
            last_report = Instant::now();
        }
    };
    match s
        .audit
        .export(tenant, after, &mut out.writer, &mut progress)
        .await
    {
        Ok((exported, last)) => {
            out.finish(force)?;
            eprintln!(
                "exported {exported} events in {:.1} s ({:.0}/s); last position {last}",
                started.elapsed().as_secs_f64(),
                rate(exported, started)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.abandon();
            // To a file, the partial file is removed; to stdout, lines
            // went out unless the request was refused before any did.
            let nothing_written = output.is_some() || matches!(e, AppError::Validation(_));
            let e = match e {
                AppError::Validation(errors) => anyhow::anyhow!(
                    "--after {after}: {}",
                    errors.first().map(|e| e.reason.clone()).unwrap_or_default()
                ),
                // The output's fault (a reader that stopped, a full disk),
                // not Hookline's.
                AppError::Internal(m) if m.starts_with(EXPORT_WRITE_FAILED) => anyhow::anyhow!(m),
                other => anyhow::Error::new(other),
            };
            Err(e.context(if nothing_written {
                "the export is incomplete; nothing was written"
            } else {
                "the export is incomplete: it stopped part-way (its last line may be cut short)"
            }))
        }
    }
}

/// Reads a heads file of `audit heads`, checking it is whole: the digest
/// and count of its last line match the heads above it, and it was made
/// for the same tenants as this check (a file of every tenant's heads
/// would name other tenants' heads as missing).
fn read_anchors(path: &Path, tenant: Option<TenantId>) -> anyhow::Result<AnchoredHeads> {
    let mut expected = AnchoredHeads::new();
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut digest = Sha256::new();
    let mut lines = 0u64;
    let mut footer: Option<serde_json::Value> = None;
    let mut n = 0usize;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        n += 1;
        // A line at a time, each bounded: a file that is not a heads file
        // (a device, one endless line) is refused, not read into memory.
        let read = std::io::Read::take(&mut reader, MAX_HEADS_LINE as u64 + 1)
            .read_until(b'\n', &mut raw)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        if raw.len() > MAX_HEADS_LINE {
            anyhow::bail!(
                "{}:{n}: a line of over {MAX_HEADS_LINE} bytes: not a heads file as `audit heads` writes it",
                path.display()
            );
        }
        let line = std::str::from_utf8(&raw)
            .with_context(|| format!("{}:{n}: not UTF-8 text", path.display()))?;
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{n}: not JSON", path.display()))?;
        if footer.is_some() {
            anyhow::bail!(
                "{}:{n}: a line after the digest line: not a heads file as `audit heads` writes it",
                path.display()
            );
        }
        if value.get("digest").is_some() {
            footer = Some(value);
            continue;
        }
        digest.update(line.as_bytes());
        digest.update(b"\n");
        lines += 1;
        let head: ChainHead = serde_json::from_value(value)
            .with_context(|| format!("{}:{n}: not a chain head", path.display()))?;
        expected.insert(
            (head.aggregate_type, head.aggregate_id, head.sequence),
            head.link,
        );
    }
    let Some(footer) = footer else {
        anyhow::bail!(
            "{} has no digest line: it is not a whole heads file (truncated, or not made by `audit heads`)",
            path.display()
        );
    };
    if footer["digest"].as_str() != Some(hex::encode(digest.finalize()).as_str())
        || footer["aggregates"].as_u64() != Some(lines)
    {
        anyhow::bail!(
            "{} does not match its own digest line: heads were changed, added or removed since `audit heads` wrote it",
            path.display()
        );
    }
    // Files made before the scope was recorded have no `tenant`.
    if let Some(made_for) = footer.get("tenant") {
        let checked = tenant.map(|t| t.to_string());
        if made_for.as_str() != checked.as_deref() {
            anyhow::bail!(
                "{} holds the heads of {}; check it with {}",
                path.display(),
                made_for
                    .as_str()
                    .map_or_else(|| "every tenant".to_string(), |t| format!("tenant {t}")),
                made_for
                    .as_str()
                    .map_or_else(|| "no --tenant".to_string(), |t| format!("--tenant {t}")),
            );
        }
    }
    Ok(expected)
}

/// Verifies every chain; with `heads_out`, prints the chain heads and their
/// digest (to a file that must not exist yet unless forced: an anchored
/// heads file is evidence); with `anchored`, also checks heads recorded
/// earlier.
pub async fn verify(
    s: &Services,
    tenant: Option<TenantId>,
    anchored: Option<&Path>,
    heads_out: Option<(Option<&Path>, bool)>,
) -> anyhow::Result<ExitCode> {
    let expected = match anchored {
        Some(path) => read_anchors(path, tenant)?,
        None => AnchoredHeads::new(),
    };
    let force = heads_out.is_some_and(|(_, force)| force);
    let mut out = match heads_out {
        Some((path, force)) => Some(Output::open(path, force)?),
        None => None,
    };
    let mut digest = Sha256::new();
    let started = Instant::now();
    let mut emit = |head: ChainHead| -> Result<(), AppError> {
        if let Some(out) = out.as_mut() {
            let line = serde_json::to_value(&head)
                .map(|v| canonical(&v))
                .map_err(|e| AppError::Internal(e.to_string()))?;
            digest.update(line.as_bytes());
            digest.update(b"\n");
            writeln!(out.writer, "{line}")
                .map_err(|e| AppError::Internal(format!("writing the heads: {e}")))?;
        }
        Ok(())
    };
    let outcome = s.audit.verify(tenant, &expected, &mut emit).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if let Some(o) = out.take() {
                o.abandon();
            }
            return Err(anyhow::Error::new(e).context("reading the log"));
        }
    };
    let (events, aggregates, matched) = match outcome {
        Verification::Intact {
            events,
            aggregates,
            matched,
        } => (events, aggregates, matched),
        broken => {
            if let Some(o) = out.take() {
                o.abandon();
            }
            report_tampering(&broken)?;
            return Ok(ExitCode::from(EXIT_TAMPERED));
        }
    };
    if let (Some(t), 0) = (tenant, events) {
        if let Some(o) = out.take() {
            o.abandon();
        }
        anyhow::bail!(
            "the log holds no event of tenant {t}: check the id (`hookline tenants list`)"
        );
    }
    let summary = format!(
        "verified {events} events in {aggregates} aggregates in {:.1} s: every chain is intact",
        started.elapsed().as_secs_f64()
    );
    match out {
        Some(mut o) => {
            let footer = serde_json::json!({
                "digest": hex::encode(digest.finalize()),
                "aggregates": aggregates,
                "events": events,
                "tenant": tenant.map(|t| t.to_string()),
                "generated_at": chrono::Utc::now(),
            });
            writeln!(o.writer, "{footer}")?;
            o.finish(force)?;
            eprintln!("{summary}");
        }
        None if !expected.is_empty() => out!("{summary}; {matched} anchored heads match"),
        None => out!("{summary}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn report_tampering(broken: &Verification) -> anyhow::Result<()> {
    match broken {
        Verification::Broken(link) => {
            eprintln!("TAMPERING DETECTED: {link}");
            out!("{}", serde_json::to_string(link)?);
        }
        Verification::AnchorDiffers {
            aggregate_type,
            aggregate_id,
            sequence,
            position,
        } => {
            eprintln!(
                "TAMPERING DETECTED: {aggregate_type} {aggregate_id} sequence {sequence} (position {position}) does not match the anchored head"
            );
            out!(
                "{}",
                serde_json::json!({
                    "reason": "anchor_differs",
                    "aggregate_type": aggregate_type,
                    "aggregate_id": aggregate_id,
                    "sequence": sequence,
                    "position": position,
                })
            );
        }
        Verification::AnchorsMissing { count, first } => {
            let named: Vec<String> = first
                .iter()
                .take(5)
                .map(|(t, id, seq)| format!("{t} {id} sequence {seq}"))
                .collect();
            eprintln!(
                "TAMPERING DETECTED: {count} anchored chain heads are no longer in the log (events were removed): {}{}",
                named.join(", "),
                if *count > named.len() { ", …" } else { "" }
            );
            let missing: Vec<serde_json::Value> = first
                .iter()
                .map(|(t, id, seq)| {
                    serde_json::json!({"aggregate_type": t, "aggregate_id": id, "sequence": seq})
                })
                .collect();
            out!(
                "{}",
                serde_json::json!({
                    "reason": "anchored_heads_missing",
                    "count": count,
                    "missing": missing,
                })
            );
        }
        Verification::Several(findings) => {
            for finding in findings {
                report_tampering(finding)?;
            }
        }
        Verification::Intact { .. } => {}
    }
    Ok(())
}
