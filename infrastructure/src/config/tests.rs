//! Loading and validating settings.

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
