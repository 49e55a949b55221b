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
pub(super) const DELIVERY_BACKLOG_BOUND: Number<i64> = Number {
    name: "HOOKLINE_DELIVERY_BACKLOG_BOUND",
    min: 1,
    max: 100_000_000,
    default: crate::postgres::backlog::BACKLOG_BOUND,
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
pub(super) const DELIVERY_ROW_HOLD_MS: Number<u64> = Number {
    name: "HOOKLINE_DELIVERY_ROW_HOLD_MS",
    min: 0,
    max: 60_000,
    default: 1000,
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
    default: 256,
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
pub(super) const CIRCUIT_FAILURE_THRESHOLD: Number<u32> = Number {
    name: "HOOKLINE_CIRCUIT_FAILURE_THRESHOLD",
    min: 1,
    max: 100_000,
    default: 10,
};
pub(super) const CIRCUIT_PROBE_MIN_SECONDS: Number<u64> = Number {
    name: "HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS",
    min: 1,
    max: 24 * 3600,
    default: 30,
};
pub(super) const CIRCUIT_PROBE_MAX_SECONDS: Number<u64> = Number {
    name: "HOOKLINE_CIRCUIT_PROBE_MAX_SECONDS",
    min: 1,
    max: 7 * 24 * 3600,
    default: 600,
};

/// `HOOKLINE_AUTO_DISABLE_AFTER`: seconds, or a number with `s`, `m`, `h`
/// or `d` (`5d`, the default); at least one second.
pub(super) fn auto_disable_after(raw: Option<String>) -> Result<Duration, ConfigError> {
    const NAME: &str = "HOOKLINE_AUTO_DISABLE_AFTER";
    let Some(text) = raw else {
        return Ok(Duration::from_secs(5 * 24 * 3600));
    };
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let factor: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        _ => {
            return Err(ConfigError(format!(
                "{NAME} must be seconds or a number with s, m, h or d such as 5d (got '{text}')"
            )))
        }
    };
    let n: u64 = parse_num(NAME, digits)?;
    let secs = n
        .checked_mul(factor)
        .filter(|s| (1..=3650 * 24 * 3600).contains(s));
    secs.map(Duration::from_secs).ok_or_else(|| {
        ConfigError(format!(
            "{NAME} must be between 1 second and 3650 days (got '{text}')"
        ))
    })
}

/// The flow controller's settings.
pub(super) fn flow_settings(
    threshold: Option<String>,
    probe_min: Option<String>,
    probe_max: Option<String>,
    auto_disable: Option<String>,
) -> Result<hookline_application::flow::FlowSettings, ConfigError> {
    let probe_min = CIRCUIT_PROBE_MIN_SECONDS.read(probe_min)?;
    let probe_max = CIRCUIT_PROBE_MAX_SECONDS.read(probe_max)?;
    if probe_max < probe_min {
        return Err(ConfigError(format!(
            "HOOKLINE_CIRCUIT_PROBE_MAX_SECONDS ({probe_max}) must not be below HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS ({probe_min})"
        )));
    }
    Ok(hookline_application::flow::FlowSettings {
        circuit_threshold: CIRCUIT_FAILURE_THRESHOLD.read(threshold)?,
        probe_min: Duration::from_secs(probe_min),
        probe_max: Duration::from_secs(probe_max),
        auto_disable_after: auto_disable_after(auto_disable)?,
        ..hookline_application::flow::FlowSettings::default()
    })
}

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

/// `HOOKLINE_METRICS_LISTEN`: an address for a listener serving only
/// `/metrics`, or nothing.
pub(super) fn metrics_listen(raw: Option<String>) -> Result<Option<SocketAddr>, ConfigError> {
    match raw.filter(|s| !s.trim().is_empty()) {
        None => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|_| {
            ConfigError(format!(
                "HOOKLINE_METRICS_LISTEN/--metrics-listen must be an address such as 127.0.0.1:9464 (got '{text}')"
            ))
        }),
    }
}

/// A `true`/`false` setting (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub(super) fn flag(name: &str, raw: Option<String>) -> Result<bool, ConfigError> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false" | "0" | "no" | "off") => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError(format!(
            "{name} must be true or false (also 1/0, yes/no, on/off; got '{other}')"
        ))),
    }
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

/// The longest delay before a retry: 30 days.
const MAX_RETRY_DELAY_SECS: u64 = 30 * 24 * 3600;

pub(super) fn retry_policy(
    schedule: Option<String>,
    max_retries: Option<String>,
) -> Result<RetryPolicy, ConfigError> {
    let schedule: Vec<u64> = match schedule {
        // An empty list is refused below; an empty entry (`5,,6`) is a
        // typo, not a delay.
        Some(v) if v.trim().is_empty() => Vec::new(),
        Some(v) => v
            .split(',')
            .map(|s| {
                if s.trim().is_empty() {
                    Err(ConfigError(format!(
                        "HOOKLINE_RETRY_SCHEDULE has an empty entry in '{v}' (expected delays in seconds separated by commas, e.g. 5,30,300)"
                    )))
                } else {
                    let delay: u64 = parse_num("HOOKLINE_RETRY_SCHEDULE", s)?;
                    // A delay must give a time (a huge one overflowed the
                    // next attempt's time and panicked the worker).
                    if delay > MAX_RETRY_DELAY_SECS {
                        return Err(ConfigError(format!(
                            "HOOKLINE_RETRY_SCHEDULE: each delay must be at most {MAX_RETRY_DELAY_SECS} seconds (30 days; got {delay})"
                        )));
                    }
                    Ok(delay)
                }
            })
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

/// `HOOKLINE_PUBLIC_URL`: an http(s) URL without query or fragment (its
/// trailing `/` dropped).
pub(super) fn public_url(raw: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = |why: &str| ConfigError(format!("HOOKLINE_PUBLIC_URL {why} (got '{raw}')"));
    let url =
        url::Url::parse(raw).map_err(|_| bad("must be a URL such as https://hooks.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("must be an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("must not have a query, fragment or credentials"));
    }
    Ok(Some(raw.trim_end_matches('/').to_string()))
}

/// `HOOKLINE_SIIGO_URL`: Siigo's base URL, an https URL (plain http only
/// to a loopback address: a local stand-in) without path, query or
/// fragment; `https://api.siigo.com` when unset.
pub(super) fn siigo_url(raw: Option<&str>) -> Result<String, ConfigError> {
    const DEFAULT: &str = "https://api.siigo.com";
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT.to_string());
    };
    let bad = |why: &str| ConfigError(format!("HOOKLINE_SIIGO_URL {why} (got '{raw}')"));
    let url =
        url::Url::parse(raw).map_err(|_| bad("must be a URL such as https://api.siigo.com"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => return Err(bad("must have a host")),
    };
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err(bad("must be https:// (http:// only to a loopback address)"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("must not have a query, fragment or credentials"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}
