//! `hookline replay [--projection NAME|all] [--check]`.

use super::EXIT_DIFFERENT;
use crate::startup::OpenDatabase;
use hookline_infrastructure::config::Settings;
use hookline_infrastructure::postgres::replay::{rebuild, Rebuildable};
use std::process::ExitCode;

pub async fn run(
    database: &OpenDatabase,
    _settings: &Settings,
    projection: &str,
    check: bool,
) -> anyhow::Result<ExitCode> {
    let targets = Rebuildable::parse(projection).map_err(anyhow::Error::msg)?;
    let mut differ = false;
    for which in targets {
        let report = rebuild(&database.db.pool, which, check).await?;
        let speed = format!(
            "{} events in {:.2} s ({:.0} events/s)",
            report.events,
            report.elapsed.as_secs_f64(),
            report.events_per_second()
        );
        if check {
            if report.differences.is_empty() {
                println!(
                    "{}: replayed {speed}; the live read model matches the log",
                    report.projection
                );
            } else {
                differ = true;
                println!("{}: replayed {speed}; DIFFERENCES:", report.projection);
                for d in &report.differences {
                    println!("  {d}");
                }
            }
        } else {
            println!(
                "{}: rebuilt from position 0, {speed}; swapped in",
                report.projection
            );
        }
    }
    Ok(if differ {
        ExitCode::from(EXIT_DIFFERENT)
    } else {
        ExitCode::SUCCESS
    })
}
