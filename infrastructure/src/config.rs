//! Configuration: defaults < config file (TOML) < `HOOKLINE_*` environment
//! variables < command-line flags, validated once at start.
//!
//! Every key of the file is the environment variable's name without the
//! `HOOKLINE_` prefix, in lowercase (`max_body_bytes = 262144`).

use hookline_domain::retry::{RetryPolicy, DEFAULT_SCHEDULE_SECS};
use hookline_domain::AllowList;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = ".hookline";
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

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
    /// A request must be read and answered within this (else 408), and a
    /// connection must send a complete request head within it (so slow or
    /// idle clients cannot hold connections open).
    pub request_timeout: Duration,
    /// Open HTTP connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    pub secret_rotation_overlap: Duration,
    pub consistency_timeout: Duration,
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
    request_timeout_seconds: Option<String>,
    max_connections: Option<String>,
    secret_rotation_overlap_seconds: Option<String>,
    consistency_timeout_ms: Option<String>,
    log_format: Option<String>,
    role: Option<String>,
    webhook_timeout_seconds: Option<String>,
    webhook_user_agent: Option<String>,
    webhook_max_retries: Option<String>,
    retry_schedule: Option<String>,
    worker_concurrency: Option<String>,
    worker_lease_seconds: Option<String>,
    idempotency_ttl_seconds: Option<String>,
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
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError(format!("{name} must be a whole number (got '{v}')")))
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
        let mut raw = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                let table: toml::Table = text
                    .parse()
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                toml_to_raw(table).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => Raw::default(),
        };
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
            request_timeout_seconds,
            max_connections,
            secret_rotation_overlap_seconds,
            consistency_timeout_ms,
            log_format,
            role,
            webhook_timeout_seconds,
            webhook_user_agent,
            webhook_max_retries,
            retry_schedule,
            worker_concurrency,
            worker_lease_seconds,
            idempotency_ttl_seconds
        );
        if raw.database_url.is_none() {
            raw.database_url = env("DATABASE_URL");
        }
        if let Some(v) = &cli.listen {
            raw.listen = Some(v.clone());
        }
        if let Some(v) = &cli.data_dir {
            raw.data_dir = Some(v.display().to_string());
        }
        if let Some(v) = &cli.database_url {
            raw.database_url = Some(v.clone());
        }
        if let Some(v) = &cli.role {
            raw.role = Some(v.clone());
        }
        Self::validate(raw)
    }

    fn validate(raw: Raw) -> Result<Self, ConfigError> {
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text.parse().map_err(|_| {
            ConfigError(format!(
                "HOOKLINE_LISTEN must be an address such as 127.0.0.1:8080 (got '{listen_text}')"
            ))
        })?;
        let allow_private_targets =
            AllowList::parse(raw.allow_private_targets.as_deref().unwrap_or(""))
                .map_err(|e| ConfigError(format!("HOOKLINE_ALLOW_PRIVATE_TARGETS: {e}")))?;
        let max_body_bytes = match raw.max_body_bytes {
            Some(v) => parse_num("HOOKLINE_MAX_BODY_BYTES", &v)?,
            None => DEFAULT_MAX_BODY_BYTES,
        };
        if max_body_bytes < 1024 {
            return Err(ConfigError(
                "HOOKLINE_MAX_BODY_BYTES must be at least 1024".into(),
            ));
        }
        let request_timeout: u64 = match raw.request_timeout_seconds {
            Some(v) => parse_num("HOOKLINE_REQUEST_TIMEOUT_SECONDS", &v)?,
            None => 30,
        };
        if !(1..=3600).contains(&request_timeout) {
            return Err(ConfigError(
                "HOOKLINE_REQUEST_TIMEOUT_SECONDS must be 1–3600".into(),
            ));
        }
        let max_connections: usize = match raw.max_connections {
            Some(v) => parse_num("HOOKLINE_MAX_CONNECTIONS", &v)?,
            None => 1024,
        };
        if !(1..=1_000_000).contains(&max_connections) {
            return Err(ConfigError(
                "HOOKLINE_MAX_CONNECTIONS must be 1–1000000".into(),
            ));
        }
        let overlap: u64 = match raw.secret_rotation_overlap_seconds {
            Some(v) => parse_num("HOOKLINE_SECRET_ROTATION_OVERLAP_SECONDS", &v)?,
            None => 24 * 3600,
        };
        let consistency_ms: u64 = match raw.consistency_timeout_ms {
            Some(v) => parse_num("HOOKLINE_CONSISTENCY_TIMEOUT_MS", &v)?,
            None => 2000,
        };
        let log_format = match raw
            .log_format
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError(format!(
                    "HOOKLINE_LOG_FORMAT must be text or json (got '{other}')"
                )))
            }
        };
        let role = Role::parse(raw.role.as_deref().unwrap_or("all"))
            .map_err(|e| ConfigError(format!("--role/HOOKLINE_ROLE: {e}")))?;
        let webhook_timeout: u64 = match raw.webhook_timeout_seconds {
            Some(v) => parse_num("HOOKLINE_WEBHOOK_TIMEOUT_SECONDS", &v)?,
            None => 10,
        };
        if !(1..=300).contains(&webhook_timeout) {
            return Err(ConfigError(
                "HOOKLINE_WEBHOOK_TIMEOUT_SECONDS must be 1–300".into(),
            ));
        }
        let schedule: Vec<u64> = match raw.retry_schedule {
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
        let max_retries: u32 = match raw.webhook_max_retries {
            Some(v) => parse_num("HOOKLINE_WEBHOOK_MAX_RETRIES", &v)?,
            None => u32::try_from(schedule.len()).unwrap_or(u32::MAX),
        };
        let worker_concurrency: usize = match raw.worker_concurrency {
            Some(v) => parse_num("HOOKLINE_WORKER_CONCURRENCY", &v)?,
            None => 64,
        };
        if !(1..=10_000).contains(&worker_concurrency) {
            return Err(ConfigError(
                "HOOKLINE_WORKER_CONCURRENCY must be 1–10000".into(),
            ));
        }
        let worker_lease: u64 = match raw.worker_lease_seconds {
            Some(v) => parse_num("HOOKLINE_WORKER_LEASE_SECONDS", &v)?,
            None => webhook_timeout + 30,
        };
        if worker_lease <= webhook_timeout {
            return Err(ConfigError(
                "HOOKLINE_WORKER_LEASE_SECONDS must be longer than HOOKLINE_WEBHOOK_TIMEOUT_SECONDS".into(),
            ));
        }
        let idempotency_ttl: u64 = match raw.idempotency_ttl_seconds {
            Some(v) => parse_num("HOOKLINE_IDEMPOTENCY_TTL_SECONDS", &v)?,
            None => 24 * 3600,
        };
        let db_max_connections: u32 = match raw.db_max_connections {
            Some(v) => parse_num("HOOKLINE_DB_MAX_CONNECTIONS", &v)?,
            None => 16,
        };
        if !(2..=1000).contains(&db_max_connections) {
            return Err(ConfigError(
                "HOOKLINE_DB_MAX_CONNECTIONS must be 2–1000".into(),
            ));
        }
        Ok(Self {
            listen,
            data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.to_string())),
            database_url: non_empty(raw.database_url).map(Secret::new),
            db_max_connections,
            secret_key: non_empty(raw.secret_key).map(Secret::new),
            admin_token: non_empty(raw.admin_token).map(Secret::new),
            allow_private_targets,
            max_body_bytes,
            request_timeout: Duration::from_secs(request_timeout),
            max_connections,
            secret_rotation_overlap: Duration::from_secs(overlap),
            consistency_timeout: Duration::from_millis(consistency_ms),
            log_format,
            role,
            webhook_timeout: Duration::from_secs(webhook_timeout),
            webhook_user_agent: raw
                .webhook_user_agent
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("Hookline/{}", env!("CARGO_PKG_VERSION"))),
            retry_policy: RetryPolicy {
                schedule_secs: schedule,
                max_retries,
                ..RetryPolicy::default()
            },
            worker_concurrency,
            worker_lease: Duration::from_secs(worker_lease),
            idempotency_ttl: Duration::from_secs(idempotency_ttl),
        })
    }

    /// Loads from the process environment.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_env(cli: &CliOverrides) -> Result<Self, ConfigError> {
        Self::load(cli, |k| std::env::var(k).ok())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)], cli: CliOverrides) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Settings::load(&cli, |k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = load(&[], CliOverrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.max_body_bytes, 256 * 1024);
        assert!(s.database_url.is_none());
        assert_eq!(s.retry_policy.max_retries, 8);
        assert_eq!(s.webhook_timeout, Duration::from_secs(10));
        assert!(s.webhook_user_agent.starts_with("Hookline/"));
    }

    #[test]
    fn file_then_env_then_cli() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookline.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\nmax_body_bytes = 4096\nallow_private_targets = [\"127.0.0.0/8\"]\n").unwrap();
        let cli = CliOverrides {
            config_file: Some(file.clone()),
            ..CliOverrides::default()
        };
        let s = load(&[("HOOKLINE_MAX_BODY_BYTES", "8192")], cli.clone()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:1");
        assert_eq!(s.max_body_bytes, 8192);
        assert!(s.allow_private_targets.allows("127.0.0.1".parse().unwrap()));
        let cli = CliOverrides {
            listen: Some("127.0.0.1:2".into()),
            ..cli
        };
        assert_eq!(load(&[], cli).unwrap().listen.to_string(), "127.0.0.1:2");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = load(
            &[("HOOKLINE_MAX_BODY_BYTES", "lots")],
            CliOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("HOOKLINE_MAX_BODY_BYTES"));
        let e = load(
            &[("HOOKLINE_ALLOW_PRIVATE_TARGETS", "nope")],
            CliOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("HOOKLINE_ALLOW_PRIVATE_TARGETS"));
        let e = load(&[("HOOKLINE_LOG_FORMAT", "xml")], CliOverrides::default()).unwrap_err();
        assert!(e.to_string().contains("HOOKLINE_LOG_FORMAT"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        let cli = CliOverrides {
            config_file: Some(file),
            ..CliOverrides::default()
        };
        assert!(load(&[], cli).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = load(
            &[
                ("HOOKLINE_ADMIN_TOKEN", "topsecret"),
                ("DATABASE_URL", "postgres://u:pw@h/db"),
            ],
            CliOverrides::default(),
        )
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("topsecret"));
        assert!(!dbg.contains("pw@"));
    }
}
