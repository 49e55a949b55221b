//! Reading each setting: whole numbers with their ranges and defaults (one
//! table), and the few settings with a shape of their own.

use super::{
    ConfigError, LogFormat, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_SVIX_MAX_BODY_BYTES,
};
use hookline_domain::retry::{RetryPolicy, DEFAULT_SCHEDULE_SECS};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub(super) fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError(format!("{name} must be a whole number (got '{v}')")))
}

/// One whole-number setting: its variable, the values it may take and its
/// default.
#[derive(Debug, Clone, Copy)]
pub(super) struct Number<T> {
    name: &'static str,
    min: T,
    max: T,
    default: T,
}

impl<T> Number<T>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    /// The value given (or the default), checked against the range.
    pub(super) fn read(self, raw: Option<String>) -> Result<T, ConfigError> {
        let value = match raw {
            Some(v) => parse_num(self.name, &v)?,
            None => self.default,
        };
        if value < self.min || value > self.max {
            return Err(ConfigError(format!(
                "{} must be {}–{} (got {value})",
                self.name, self.min, self.max
            )));
        }
        Ok(value)
    }
}

pub(super) const MAX_BODY_BYTES: Number<usize> = Number {
    name: "HOOKLINE_MAX_BODY_BYTES",
    min: 1024,
    max: 1 << 30,
    default: DEFAULT_MAX_BODY_BYTES,
};
pub(super) const SVIX_MAX_BODY_BYTES: Number<usize> = Number {
    name: "HOOKLINE_SVIX_MAX_BODY_BYTES",
    min: 1024,
    max: 1 << 30,
    default: DEFAULT_SVIX_MAX_BODY_BYTES,
};
pub(super) const REQUEST_TIMEOUT_SECONDS: Number<u64> = Number {
    name: "HOOKLINE_REQUEST_TIMEOUT_SECONDS",
    min: 1,
    max: 3600,
    default: 30,
};
pub(super) const MAX_CONNECTIONS: Number<usize> = Number {
    name: "HOOKLINE_MAX_CONNECTIONS",
    min: 1,
    max: 1_000_000,
    default: 1024,
};
pub(super) const ROTATION_OVERLAP_SECONDS: Number<u64> = Number {
    name: "HOOKLINE_SECRET_ROTATION_OVERLAP_SECONDS",
    min: 0,
    max: 30 * 24 * 3600,
    default: 24 * 3600,
};
pub(super) const CONSISTENCY_TIMEOUT_MS: Number<u64> = Number {
    name: "HOOKLINE_CONSISTENCY_TIMEOUT_MS",
    min: 0,
    max: 60_000,
    default: 2000,
};
pub(super) const WEBHOOK_TIMEOUT_SECONDS: Number<u64> = Number {
    name: "HOOKLINE_WEBHOOK_TIMEOUT_SECONDS",
    min: 1,
    max: 300,
    default: 10,
};
pub(super) const WORKER_CONCURRENCY: Number<usize> = Number {
    name: "HOOKLINE_WORKER_CONCURRENCY",
    min: 1,
    max: 10_000,
    default: 64,
};
pub(super) const IDEMPOTENCY_TTL_SECONDS: Number<u64> = Number {
    name: "HOOKLINE_IDEMPOTENCY_TTL_SECONDS",
    min: 1,
    max: 30 * 24 * 3600,
    default: 24 * 3600,
};
pub(super) const MAX_SUBSCRIPTIONS_PER_TENANT: Number<u64> = Number {
    name: "HOOKLINE_MAX_SUBSCRIPTIONS_PER_TENANT",
    min: 1,
    max: 1_000_000,
    default: 1000,
};
pub(super) const DB_MAX_CONNECTIONS: Number<u32> = Number {
    name: "HOOKLINE_DB_MAX_CONNECTIONS",
    min: 2,
    max: 1000,
    default: 16,
};

pub(super) fn listen(raw: Option<String>) -> Result<SocketAddr, ConfigError> {
    let text = raw.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    text.parse().map_err(|_| {
        ConfigError(format!(
            "HOOKLINE_LISTEN must be an address such as 127.0.0.1:8080 (got '{text}')"
        ))
    })
}

pub(super) fn log_format(raw: Option<&str>) -> Result<LogFormat, ConfigError> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError(format!(
            "HOOKLINE_LOG_FORMAT must be text or json (got '{other}')"
        ))),
    }
}

pub(super) fn retry_policy(
    schedule: Option<String>,
    max_retries: Option<String>,
) -> Result<RetryPolicy, ConfigError> {
    let schedule: Vec<u64> = match schedule {
        Some(v) => v
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_num("HOOKLINE_RETRY_SCHEDULE", s))
            .collect::<Result<_, _>>()?,
        None => DEFAULT_SCHEDULE_SECS.to_vec(),
    };
    if schedule.is_empty() {
        return Err(ConfigError(
            "HOOKLINE_RETRY_SCHEDULE must list at least one delay in seconds".into(),
        ));
    }
    let max_retries = Number {
        name: "HOOKLINE_WEBHOOK_MAX_RETRIES",
        min: 0,
        max: 1000,
        default: u32::try_from(schedule.len()).unwrap_or(u32::MAX),
    }
    .read(max_retries)?;
    Ok(RetryPolicy {
        schedule_secs: schedule,
        max_retries,
        ..RetryPolicy::default()
    })
}

/// The lease must outlast an attempt.
pub(super) fn worker_lease(
    raw: Option<String>,
    webhook_timeout: u64,
) -> Result<Duration, ConfigError> {
    let lease = Number {
        name: "HOOKLINE_WORKER_LEASE_SECONDS",
        min: webhook_timeout + 1,
        max: 24 * 3600,
        default: webhook_timeout + 30,
    }
    .read(raw)
    .map_err(|e| {
        ConfigError(format!(
            "{}; it must be longer than HOOKLINE_WEBHOOK_TIMEOUT_SECONDS",
            e.0
        ))
    })?;
    Ok(Duration::from_secs(lease))
}

pub(super) const CONSOLE_IDLE_TIMEOUT_SECONDS: Number<u64> = Number {
    name: "HOOKLINE_CONSOLE_IDLE_TIMEOUT_SECONDS",
    min: 60,
    max: 7 * 24 * 3600,
    default: 30 * 60,
};
pub(super) const CONSOLE_SESSION_LIFETIME_SECONDS: Number<u64> = Number {
    name: "HOOKLINE_CONSOLE_SESSION_LIFETIME_SECONDS",
    min: 60,
    max: 30 * 24 * 3600,
    default: 8 * 3600,
};

/// `HOOKLINE_PUBLIC_URL`: an http(s) origin, without a trailing slash.
pub(super) fn public_url(raw: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(v) = raw.map(|v| v.trim().trim_end_matches('/').to_string()) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    let ok = (v.starts_with("https://") || v.starts_with("http://"))
        && v.split("://").nth(1).is_some_and(|rest| {
            !rest.is_empty()
                && rest.chars().all(|c| c.is_ascii_graphic())
                && !rest.contains(['?', '#'])
        });
    if !ok {
        return Err(ConfigError(format!(
            "HOOKLINE_PUBLIC_URL must be an http:// or https:// URL such as https://hooks.example.com (got '{v}')"
        )));
    }
    Ok(Some(v))
}
