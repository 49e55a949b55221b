//! Logging: human-readable lines by default, one JSON object per line with
//! `HOOKLINE_LOG_FORMAT=json`. Levels come from `RUST_LOG` (default `info`).
//!
//! Spans carry `request_id` (and `tenant_id`, `delivery_id`, `attempt` where
//! known). In text lines they appear as the span context; in JSON lines every
//! field of every enclosing span is lifted to the top level, so each object
//! has `request_id`, `tenant_id`, `delivery_id` and `attempt` as plain keys.

use crate::config::LogFormat;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,tower_http=warn";

/// Levels a bare `RUST_LOG` directive may be.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
/// Where this program's logs come from: a bare directive (a target without
/// a level) must name one of them, or it would show nothing at all.
const TARGETS: [&str; 12] = [
    "hookline", "sqlx", "hyper", "tower", "axum", "reqwest", "tokio", "h2", "rustls", "cqrs",
    "postgres", "tracing",
];

/// Checks a `RUST_LOG` value: every directive must parse, and a bare word
/// must be a level or one of this program's log targets (`degub` is a
/// target that exists nowhere: it would silence every line).
///
/// # Errors
/// What is wrong, naming `RUST_LOG`.
pub fn check_filter(value: &str) -> Result<(), String> {
    EnvFilter::builder()
        .parse(value)
        .map_err(|e| format!("RUST_LOG '{value}' is not a log filter: {e}"))?;
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.contains(['=', '[', ':']) {
            continue;
        }
        let level = LEVELS.iter().any(|l| directive.eq_ignore_ascii_case(l))
            || directive
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .is_ok();
        let target = TARGETS.iter().any(|t| directive.starts_with(t));
        if !level && !target {
            return Err(format!(
                "RUST_LOG '{value}': '{directive}' is neither a level ({}) nor a target of this program's logs (hookline…, sqlx, hyper, …); it would hide every log line",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(())
}

/// Installs the global subscriber. Calling it twice is harmless (the second
/// call does nothing), which keeps tests that start several servers simple.
pub fn init(format: LogFormat) {
    init_with_default(format, DEFAULT_FILTER);
}

/// Like [`init`], with another filter when `RUST_LOG` is unset.
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let result = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
            .map_err(|e| e.to_string()),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(JsonLines)
            .try_init()
            .map_err(|e| e.to_string()),
    };
    // An error only means a subscriber is already installed.
    drop(result);
}

/// Span fields kept for JSON lines.
#[derive(Debug, Default)]
struct SpanFields(Map<String, Value>);

struct Collect<'a>(&'a mut Map<String, Value>);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }
}

/// Writes one JSON object per event with the fields of all enclosing spans.
struct JsonLines;

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = SpanFields::default();
            attrs.record(&mut Collect(&mut fields.0));
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<SpanFields>() {
                values.record(&mut Collect(&mut fields.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        if let Some(scope) = ctx.event_scope(event) {
            let mut innermost = None;
            for span in scope.from_root() {
                innermost = Some(span.name());
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &fields.0 {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
            if let Some(name) = innermost {
                line.insert("span".into(), Value::String(name.to_string()));
            }
        }
        event.record(&mut Collect(&mut line));
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // One write per line keeps lines whole when threads log at once.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::check_filter;

    #[test]
    fn a_log_filter_that_would_hide_everything_or_does_not_parse_is_refused() {
        for good in [
            "info",
            "DEBUG",
            "warn,hookline_api=debug",
            "hookline_infrastructure",
            "sqlx::query=error",
            "info,[request{request_id=x}]=trace",
            "warn,reqwest,postgres_es",
            "3",
            "",
        ] {
            assert!(check_filter(good).is_ok(), "{good}");
        }
        for bad in [
            "degub",
            "hookline=bogus[",
            "info,inof",
            "hookline=loud",
            "info, hookline_api=debug",
        ] {
            let e = check_filter(bad).unwrap_err();
            assert!(e.starts_with("RUST_LOG"), "{bad}: {e}");
        }
    }
}
