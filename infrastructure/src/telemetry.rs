//! Logging: human-readable lines by default, one JSON object per line with
//! `HOOKLINE_LOG_FORMAT=json`. Levels come from `RUST_LOG` (default `info`).
//! Spans carry `request_id` (and `tenant_id`, `delivery_id`, `attempt`
//! where known), so every line of a request names it.

use crate::config::LogFormat;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Calling it twice is harmless (the second
/// call does nothing), which keeps tests that start several servers simple.
pub fn init(format: LogFormat) {
    init_with_default(format, DEFAULT_FILTER);
}

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,tower_http=warn";

/// Like [`init`], with another filter when `RUST_LOG` is unset.
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_span_events(FmtSpan::NONE);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // An error only means a subscriber is already installed.
    drop(result);
}
