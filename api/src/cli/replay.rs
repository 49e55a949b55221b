//! `hookline replay [--projection NAME|all] [--check]`.

use super::EXIT_DIFFERENT;
use crate::startup::Services;
use std::process::ExitCode;

pub async fn run(s: Services, projection: String, check: bool) -> anyhow::Result<ExitCode> {
    let targets = s
        .replay
        .targets(&projection)
        .map_err(|e| anyhow::anyhow!("--projection: {e}"))?;
    let mut differ = false;
    for which in targets {
        let report = s.replay.run(which, check).await?;
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
    Ok(if differ {
        ExitCode::from(EXIT_DIFFERENT)
    } else {
        ExitCode::SUCCESS
    })
}
