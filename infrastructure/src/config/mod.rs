//! Configuration: defaults < config file (TOML) < `HOOKLINE_*` environment
//! variables < command-line flags, validated once at start.
//!
//! Every key of the file is the environment variable's name without the
//! `HOOKLINE_` prefix, in lowercase (`max_body_bytes = 262144`).

use hookline_application::flow::FlowSettings;
use hookline_domain::retry::RetryPolicy;
use hookline_domain::AllowList;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod read;
use read::*;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = ".hookline";
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// The Svix-compatible API's request limit: a 1 MiB payload (Svix's
/// limit) with room for the rest of the request.
pub const DEFAULT_SVIX_MAX_BODY_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// A string that must never be printed (tokens, keys, database URLs with
/// passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which parts of Hookline a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// HTTP API and projections.
    Api,
    /// Projections and delivery workers.
    Worker,
    /// Everything.
    All,
}

impl Role {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "api" => Ok(Self::Api),
            "worker" => Ok(Self::Worker),
            "all" => Ok(Self::All),
            other => Err(format!("role must be api, worker or all (got '{other}')")),
        }
    }
    pub fn serves_api(self) -> bool {
        matches!(self, Self::Api | Self::All)
    }
    pub fn runs_workers(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// When `None`, Hookline runs its own Postgres under `data_dir/pg`.
    pub database_url: Option<Secret>,
    pub db_max_connections: u32,
    /// Base64 of 32 bytes; when `None`, a key file in `data_dir` is used
    /// (and created on first start).
    pub secret_key: Option<Secret>,
    /// Enables `/admin` when set.
    pub admin_token: Option<Secret>,
    pub allow_private_targets: AllowList,
    pub max_body_bytes: usize,
    /// The request body limit of the Svix-compatible API (`/api/v1`).
    pub svix_max_body_bytes: usize,
    /// Log positions first attempts may be behind before publishing waits
    /// (and after 2 s answers `503 backlog_full`).
    pub delivery_backlog_bound: i64,
    /// A request must be read and answered within this (else 408), and a
    /// connection must send a complete request head within it (so slow or
    /// idle clients cannot hold connections open).
    pub request_timeout: Duration,
    /// Open HTTP connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    pub secret_rotation_overlap: Duration,
    pub consistency_timeout: Duration,
    /// How long the deliveries read model holds a new delivery's row for
    /// its first outcome, so that one write makes it (ADR 0021); zero
    /// writes every row at once.
    pub delivery_row_hold: Duration,
    pub log_format: LogFormat,
    pub role: Role,
    pub webhook_timeout: Duration,
    pub webhook_user_agent: String,
    pub retry_policy: RetryPolicy,
    pub worker_concurrency: usize,
    /// How long a claimed delivery stays leased to its worker.
    pub worker_lease: Duration,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
    /// Most subscriptions (not deleted) one tenant may have.
    pub max_subscriptions_per_tenant: u64,
    /// Where clients and providers reach this server
    /// (`https://hooks.example.com`): portal links and sources' ingest URLs
    /// start with it, and the console's cookies are `Secure` when it is
    /// HTTPS. Without it, portal links use the request's `Host` and ingest
    /// URLs `http://` and the listen address.
    pub public_url: Option<String>,
    /// A console session ends after this long without a request…
    pub console_idle_timeout: Duration,
    /// …and after this long in any case.
    pub console_session_lifetime: Duration,
    /// Circuit breaker and auto-disable.
    pub flow: FlowSettings,
    /// `GET /metrics` asks for `Authorization: Bearer <token>` when set;
    /// otherwise it answers loopback clients only.
    pub metrics_token: Option<Secret>,
    /// A `tenant` label on the delivery counters.
    pub metrics_per_tenant: bool,
    /// A second listener serving only `/metrics` (the way a worker-only
    /// process exposes its metrics).
    pub metrics_listen: Option<SocketAddr>,
    /// Where Hookline calls Siigo (`HOOKLINE_SIIGO_URL`, default
    /// `https://api.siigo.com`): a loopback stand-in for tests and demos.
    pub siigo_url: String,
}

/// The file/environment layer: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    db_max_connections: Option<String>,
    secret_key: Option<String>,
    admin_token: Option<String>,
    allow_private_targets: Option<String>,
    max_body_bytes: Option<String>,
    svix_max_body_bytes: Option<String>,
    delivery_backlog_bound: Option<String>,
    request_timeout_seconds: Option<String>,
    max_connections: Option<String>,
    secret_rotation_overlap_seconds: Option<String>,
    consistency_timeout_ms: Option<String>,
    delivery_row_hold_ms: Option<String>,
    log_format: Option<String>,
    role: Option<String>,
    webhook_timeout_seconds: Option<String>,
    webhook_user_agent: Option<String>,
    webhook_max_retries: Option<String>,
    retry_schedule: Option<String>,
    worker_concurrency: Option<String>,
    worker_lease_seconds: Option<String>,
    idempotency_ttl_seconds: Option<String>,
    max_subscriptions_per_tenant: Option<String>,
    public_url: Option<String>,
    console_idle_timeout_seconds: Option<String>,
    console_session_lifetime_seconds: Option<String>,
    circuit_failure_threshold: Option<String>,
    circuit_probe_min_seconds: Option<String>,
    circuit_probe_max_seconds: Option<String>,
    auto_disable_after: Option<String>,
    metrics_token: Option<String>,
    metrics_per_tenant: Option<String>,
    metrics_listen: Option<String>,
    siigo_url: Option<String>,
}

/// TOML values may be numbers or strings; both end up as text to parse.
fn toml_to_raw(table: toml::Table) -> Result<Raw, String> {
    let mut strings = toml::Table::new();
    for (k, v) in table {
        let s = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => return Err(format!("{k}: unsupported value {other}")),
        };
        strings.insert(k, toml::Value::String(s));
    }
    strings
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())
}

/// Overrides given on the command line.
#[derive(Debug, Default, Clone)]
pub struct CliOverrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub role: Option<String>,
    pub metrics_listen: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// Names the config file when the setting refused (the first
    /// `HOOKLINE_…` name in the message) came from it, as `from_file`'s
    /// keys did.
    fn located(self, from_file: &[String], path: &Path) -> Self {
        let named = self.0.find("HOOKLINE_").map(|at| {
            self.0[at + "HOOKLINE_".len()..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
                .to_ascii_lowercase()
        });
        match named {
            Some(key) if from_file.contains(&key) => {
                Self(format!("{} (set as `{key}` in {})", self.0, path.display()))
            }
            _ => self,
        }
    }
}

/// `HOOKLINE_ADMIN_TOKEN`: unset or empty leaves the admin API off; a
/// value of blanks (which used to turn it off silently) or with spaces or
/// control characters is refused.
fn admin_token(raw: Option<String>) -> Result<Option<Secret>, ConfigError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.chars().all(|c| c.is_ascii_graphic()) => Ok(Some(Secret::new(s))),
        Some(_) => Err(ConfigError(
            "HOOKLINE_ADMIN_TOKEN: must be printable ASCII without spaces (leave it empty to turn the admin API off)".into(),
        )),
    }
}

/// `HOOKLINE_WEBHOOK_USER_AGENT`: a header value (printable ASCII, at most
/// 256 characters); empty means the default.
fn user_agent(raw: Option<String>) -> Result<String, ConfigError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(format!("Hookline/{}", env!("CARGO_PKG_VERSION"))),
        Some(s) if s.len() <= 256 && s.chars().all(|c| (' '..='~').contains(&c)) => Ok(s),
        Some(_) => Err(ConfigError(
            "HOOKLINE_WEBHOOK_USER_AGENT: must be printable ASCII (letters, digits, spaces, punctuation), at most 256 characters".into(),
        )),
    }
}

impl Settings {
    /// Loads settings from the optional file, the given environment and the
    /// command line.
    ///
    /// # Errors
    /// Names the setting that is missing its file, malformed or out of range.
    pub fn load(
        cli: &CliOverrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = cli
            .config_file
            .clone()
            .or_else(|| env("HOOKLINE_CONFIG").map(PathBuf::from));
        // The settings the file gives, to name it when one is refused.
        let mut from_file: Vec<String> = Vec::new();
        let mut raw = match &file {
            Some(path) => {
                let text = read_config_file(path)?;
                let table: toml::Table = text
                    .parse()
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                from_file = table.keys().cloned().collect();
                toml_to_raw(table).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => Raw::default(),
        };
        // Not those the environment or the command line set instead.
        let on_command_line = [
            ("listen", cli.listen.is_some()),
            ("data_dir", cli.data_dir.is_some()),
            ("database_url", cli.database_url.is_some()),
            ("role", cli.role.is_some()),
            ("metrics_listen", cli.metrics_listen.is_some()),
        ];
        from_file.retain(|key| {
            env(&format!("HOOKLINE_{}", key.to_ascii_uppercase())).is_none()
                && !on_command_line.contains(&(key.as_str(), true))
        });
        macro_rules! env_layer {
            ($($field:ident),*) => {
                $(
                    if let Some(v) = env(&format!("HOOKLINE_{}", stringify!($field).to_ascii_uppercase())) {
                        raw.$field = Some(v);
                    }
                )*
            };
        }
        env_layer!(
            listen,
            data_dir,
            database_url,
            db_max_connections,
            secret_key,
            admin_token,
            allow_private_targets,
            max_body_bytes,
            svix_max_body_bytes,
            delivery_backlog_bound,
            request_timeout_seconds,
            max_connections,
            secret_rotation_overlap_seconds,
            consistency_timeout_ms,
            delivery_row_hold_ms,
            log_format,
            role,
            webhook_timeout_seconds,
            webhook_user_agent,
            webhook_max_retries,
            retry_schedule,
            worker_concurrency,
            worker_lease_seconds,
            idempotency_ttl_seconds,
            max_subscriptions_per_tenant,
            public_url,
            console_idle_timeout_seconds,
            console_session_lifetime_seconds,
            circuit_failure_threshold,
            circuit_probe_min_seconds,
            circuit_probe_max_seconds,
            auto_disable_after,
            metrics_token,
            metrics_per_tenant,
            metrics_listen,
            siigo_url
        );
        if raw.database_url.is_none() {
            raw.database_url = env("DATABASE_URL");
        }
        if let Some(v) = &cli.listen {
            raw.listen = Some(v.clone());
        }
        if let Some(v) = &cli.data_dir {
            // Not `display()`: it replaced bytes that are not UTF-8, and
            // the data directory silently became another one.
            raw.data_dir = Some(
                v.to_str()
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "--data-dir: '{}' is not valid UTF-8; use a path that is",
                            v.display()
                        ))
                    })?
                    .to_string(),
            );
        }
        if let Some(v) = &cli.database_url {
            raw.database_url = Some(v.clone());
        }
        if let Some(v) = &cli.role {
            raw.role = Some(v.clone());
        }
        if let Some(v) = &cli.metrics_listen {
            raw.metrics_listen = Some(v.clone());
        }
        Self::validate(raw).map_err(|e| match &file {
            Some(path) => e.located(&from_file, path),
            None => e,
        })
    }

    fn validate(raw: Raw) -> Result<Self, ConfigError> {
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let webhook_timeout = WEBHOOK_TIMEOUT_SECONDS.read(raw.webhook_timeout_seconds)?;
        let listen = listen(raw.listen)?;
        Ok(Self {
            public_url: public_url(raw.public_url.as_deref())?,
            siigo_url: siigo_url(raw.siigo_url.as_deref())?,
            listen,
            data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.to_string())),
            database_url: non_empty(raw.database_url).map(Secret::new),
            db_max_connections: DB_MAX_CONNECTIONS.read(raw.db_max_connections)?,
            secret_key: secret_key(non_empty(raw.secret_key))?,
            admin_token: admin_token(raw.admin_token)?,
            allow_private_targets: AllowList::parse(
                raw.allow_private_targets.as_deref().unwrap_or(""),
            )
            .map_err(|e| ConfigError(format!("HOOKLINE_ALLOW_PRIVATE_TARGETS: {e}")))?,
            max_body_bytes: MAX_BODY_BYTES.read(raw.max_body_bytes)?,
            svix_max_body_bytes: SVIX_MAX_BODY_BYTES.read(raw.svix_max_body_bytes)?,
            delivery_backlog_bound: DELIVERY_BACKLOG_BOUND.read(raw.delivery_backlog_bound)?,
            request_timeout: Duration::from_secs(
                REQUEST_TIMEOUT_SECONDS.read(raw.request_timeout_seconds)?,
            ),
            max_connections: MAX_CONNECTIONS.read(raw.max_connections)?,
            secret_rotation_overlap: Duration::from_secs(
                ROTATION_OVERLAP_SECONDS.read(raw.secret_rotation_overlap_seconds)?,
            ),
            consistency_timeout: Duration::from_millis(
                CONSISTENCY_TIMEOUT_MS.read(raw.consistency_timeout_ms)?,
            ),
            delivery_row_hold: Duration::from_millis(
                DELIVERY_ROW_HOLD_MS.read(raw.delivery_row_hold_ms)?,
            ),
            log_format: log_format(raw.log_format.as_deref())?,
            role: Role::parse(raw.role.as_deref().unwrap_or("all"))
                .map_err(|e| ConfigError(format!("--role/HOOKLINE_ROLE: {e}")))?,
            webhook_timeout: Duration::from_secs(webhook_timeout),
            webhook_user_agent: user_agent(raw.webhook_user_agent)?,
            retry_policy: retry_policy(raw.retry_schedule, raw.webhook_max_retries)?,
            worker_concurrency: WORKER_CONCURRENCY.read(raw.worker_concurrency)?,
            worker_lease: worker_lease(raw.worker_lease_seconds, webhook_timeout)?,
            idempotency_ttl: Duration::from_secs(
                IDEMPOTENCY_TTL_SECONDS.read(raw.idempotency_ttl_seconds)?,
            ),
            max_subscriptions_per_tenant: MAX_SUBSCRIPTIONS_PER_TENANT
                .read(raw.max_subscriptions_per_tenant)?,
            console_idle_timeout: Duration::from_secs(
                CONSOLE_IDLE_TIMEOUT_SECONDS.read(raw.console_idle_timeout_seconds)?,
            ),
            console_session_lifetime: Duration::from_secs(
                CONSOLE_SESSION_LIFETIME_SECONDS.read(raw.console_session_lifetime_seconds)?,
            ),
            flow: flow_settings(
                raw.circuit_failure_threshold,
                raw.circuit_probe_min_seconds,
                raw.circuit_probe_max_seconds,
                raw.auto_disable_after,
            )?,
            metrics_token: non_empty(raw.metrics_token).map(Secret::new),
            metrics_per_tenant: flag("HOOKLINE_METRICS_PER_TENANT", raw.metrics_per_tenant)?,
            metrics_listen: metrics_listen(raw.metrics_listen)?,
        })
    }

    /// Loads from the process environment.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_env(cli: &CliOverrides) -> Result<Self, ConfigError> {
        // A setting that is not UTF-8 would read as unset (another data
        // directory, no admin token): refused instead.
        for (name, value) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if (name.starts_with("HOOKLINE_") || name == "DATABASE_URL") && value.to_str().is_none()
            {
                return Err(ConfigError(format!("{name} is not valid UTF-8")));
            }
        }
        if let Ok(filter) = std::env::var("RUST_LOG") {
            crate::telemetry::check_filter(&filter).map_err(ConfigError)?;
        }
        Self::load(cli, |k| std::env::var(k).ok())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// `HOOKLINE_SECRET_KEY`, checked before anything starts (it was read
/// only once the embedded cluster was up).
fn secret_key(raw: Option<String>) -> Result<Option<Secret>, ConfigError> {
    match raw {
        Some(key) => {
            crate::cipher::XChaChaCipher::from_base64(&key)
                .map_err(|e| ConfigError(e.to_string()))?;
            Ok(Some(Secret::new(key)))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;

/// The longest config file read (a full one is a few KiB).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A config file's text: a file over [`MAX_CONFIG_BYTES`] (or a device
/// that never ends) is refused, not read into memory.
fn read_config_file(path: &std::path::Path) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let unreadable =
        |e: std::io::Error| ConfigError(format!("cannot read config file {}: {e}", path.display()));
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError(format!(
            "config file {} is over {MAX_CONFIG_BYTES} bytes: not a Hookline config file",
            path.display()
        )));
    }
    Ok(text)
}
