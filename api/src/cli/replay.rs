//! `hookline replay [--projection NAME|all] [--check]`.

use super::EXIT_DIFFERENT;
use crate::startup::Services;
use futures::StreamExt;
use std::process::ExitCode;

/// Read models rebuilt at once by `--projection all`: one rebuild leaves a
/// core idle while it waits for its reads and commits (each applies in a
/// few lanes of its own). They share the log, and a read model another
/// one reads when it finishes is rebuilt before it (`ReplayService::stages`).
/// Read models that share their reads of the log are one run
/// (`ReplayService::units`).
const AT_ONCE: usize = 2;

pub async fn run(s: Services, projection: String, check: bool) -> anyhow::Result<ExitCode> {
    let targets = s
        .replay
        .targets(&projection)
        .map_err(|e| anyhow::anyhow!("--projection: {e}"))?;
    let mut differ = false;
    // Reported in order; a failed rebuild is reported when it fails and
    // does not cut the others short (the command fails once they are done).
    let mut failed: Vec<&'static str> = Vec::new();
    for stage in s.replay.stages(&targets) {
        let mut runs = futures::stream::iter(s.replay.units(&stage))
            .map(|unit| {
                let replay = s.replay.clone();
                // A task each, so that both readers use a core.
                let names = unit.clone();
                let run = tokio::spawn(async move { replay.run_unit(&names, check).await });
                async move {
                    match run.await {
                        Ok(results) => unit
                            .into_iter()
                            .zip(results)
                            .map(|(which, result)| {
                                result.map_err(|e| (which, anyhow::Error::from(e)))
                            })
                            .collect::<Vec<_>>(),
                        Err(e) => unit
                            .into_iter()
                            .map(|which| Err((which, anyhow::anyhow!("the rebuild stopped: {e}"))))
                            .collect(),
                    }
                }
            })
            .buffered(AT_ONCE)
            .flat_map(futures::stream::iter);
        while let Some(result) = runs.next().await {
            let report = match result {
                Ok(report) => report,
                Err((which, e)) => {
                    eprintln!("{which}: {e:#}");
                    failed.push(which);
                    continue;
                }
            };
            let speed = format!(
                "{} events in {:.2} s ({:.0} events/s)",
                report.events,
                report.elapsed.as_secs_f64(),
                report.events_per_second()
            );
            if !check {
                out!(
                    "{}: rebuilt from position 0, {speed}; swapped in",
                    report.projection
                );
            } else if report.differences.is_empty() {
                out!(
                "{}: replayed {speed}; the live read model matches the log up to its checkpoint (position {}; a projection that lags shows in GET /readyz)",
                report.projection,
                report.checkpoint.position
            );
            } else {
                differ = true;
                out!("{}: replayed {speed}; DIFFERENCES:", report.projection);
                for d in &report.differences {
                    out!("  {d}");
                }
            }
        }
    }
    if !failed.is_empty() {
        let verb = if check { "check" } else { "rebuild" };
        let others = if failed.len() == targets.len() {
            String::new()
        } else if check {
            "; the others were checked".to_string()
        } else {
            "; the others were rebuilt".to_string()
        };
        anyhow::bail!("could not {verb} {} (see above){others}", failed.join(", "));
    }
    Ok(if differ {
        ExitCode::from(EXIT_DIFFERENT)
    } else {
        ExitCode::SUCCESS
    })
}
