//! `hookline replay [--projection NAME|all] [--check]`.

use super::EXIT_DIFFERENT;
use crate::startup::Services;
use futures::StreamExt;
use std::process::ExitCode;

/// Read models rebuilt at once by `--projection all`: they share nothing
/// but the log, and one rebuild leaves a core idle while it waits for its
/// reads and commits (each rebuild applies in a few lanes of its own).
const AT_ONCE: usize = 2;

pub async fn run(s: Services, projection: String, check: bool) -> anyhow::Result<ExitCode> {
    let targets = s
        .replay
        .targets(&projection)
        .map_err(|e| anyhow::anyhow!("--projection: {e}"))?;
    let mut differ = false;
    let replay = &s.replay;
    // Reported in order; a failed rebuild does not cut the others short
    // (the first failure is the command's error once they are done).
    let mut runs = futures::stream::iter(targets)
        .map(|which| replay.run(which, check))
        .buffered(AT_ONCE);
    let mut failed = None;
    while let Some(result) = runs.next().await {
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                failed.get_or_insert(e);
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
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(if differ {
        ExitCode::from(EXIT_DIFFERENT)
    } else {
        ExitCode::SUCCESS
    })
}
