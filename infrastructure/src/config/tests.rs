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
fn a_bad_value_from_the_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "log_format = \"xml\"\nmax_body_bytes = 4096\n").unwrap();
    let cli = CliOverrides {
        config_file: Some(file.clone()),
        ..CliOverrides::default()
    };
    let e = load(&[], cli.clone()).unwrap_err().to_string();
    assert!(
        e.contains("HOOKLINE_LOG_FORMAT")
            && e.contains(&format!("`log_format` in {}", file.display())),
        "{e}"
    );
    // The same setting given in the environment (which wins) is named so.
    let e = load(&[("HOOKLINE_LOG_FORMAT", "yaml")], cli)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'yaml'") && !e.contains("c.toml"), "{e}");
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

#[test]
fn flow_settings_read_durations_with_units_and_check_ranges() {
    let load = |pairs: &[(&str, &str)]| {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Settings::load(&CliOverrides::default(), |k| map.get(k).cloned())
    };
    let d = load(&[]).unwrap().flow;
    assert_eq!(d.circuit_threshold, 10);
    assert_eq!(d.auto_disable_after, Duration::from_secs(5 * 24 * 3600));
    assert_eq!(d.probe_min, Duration::from_secs(30));
    assert_eq!(d.probe_max, Duration::from_secs(600));
    let s = load(&[
        ("HOOKLINE_AUTO_DISABLE_AFTER", "90s"),
        ("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD", "3"),
    ])
    .unwrap()
    .flow;
    assert_eq!(s.auto_disable_after, Duration::from_secs(90));
    assert_eq!(s.circuit_threshold, 3);
    assert_eq!(
        load(&[("HOOKLINE_AUTO_DISABLE_AFTER", "2h")])
            .unwrap()
            .flow
            .auto_disable_after,
        Duration::from_secs(7200)
    );
    assert_eq!(
        load(&[("HOOKLINE_AUTO_DISABLE_AFTER", "45")])
            .unwrap()
            .flow
            .auto_disable_after,
        Duration::from_secs(45)
    );
    for bad in ["0", "5w", "-1d", "d", ""] {
        let err = load(&[("HOOKLINE_AUTO_DISABLE_AFTER", bad)]).unwrap_err();
        assert!(
            err.to_string().contains("HOOKLINE_AUTO_DISABLE_AFTER"),
            "{bad}: {err}"
        );
    }
    let err = load(&[
        ("HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS", "60"),
        ("HOOKLINE_CIRCUIT_PROBE_MAX_SECONDS", "30"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("PROBE_MAX"));
    assert!(load(&[("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD", "0")]).is_err());
}

#[test]
fn metrics_settings() {
    let s = load(&[], CliOverrides::default()).unwrap();
    assert!(s.metrics_token.is_none());
    assert!(!s.metrics_per_tenant);
    assert!(s.metrics_listen.is_none());
    let s = load(
        &[
            ("HOOKLINE_METRICS_TOKEN", "scrape-me"),
            ("HOOKLINE_METRICS_PER_TENANT", "true"),
            ("HOOKLINE_METRICS_LISTEN", "127.0.0.1:9464"),
        ],
        CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(s.metrics_token.unwrap().expose(), "scrape-me");
    assert!(s.metrics_per_tenant);
    assert_eq!(s.metrics_listen.unwrap().to_string(), "127.0.0.1:9464");
    let cli = CliOverrides {
        metrics_listen: Some("127.0.0.1:9465".into()),
        ..CliOverrides::default()
    };
    let s = load(&[("HOOKLINE_METRICS_LISTEN", "127.0.0.1:9464")], cli).unwrap();
    assert_eq!(s.metrics_listen.unwrap().to_string(), "127.0.0.1:9465");
    let err = load(
        &[("HOOKLINE_METRICS_PER_TENANT", "maybe")],
        CliOverrides::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("HOOKLINE_METRICS_PER_TENANT"),
        "{err}"
    );
    let err = load(
        &[("HOOKLINE_METRICS_LISTEN", "nowhere")],
        CliOverrides::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("METRICS_LISTEN"), "{err}");
}

#[test]
fn the_delivery_backlog_bound_is_checked() {
    let s = load(&[], CliOverrides::default()).unwrap();
    assert_eq!(s.delivery_backlog_bound, 10_000);
    let s = load(
        &[("HOOKLINE_DELIVERY_BACKLOG_BOUND", "500")],
        CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(s.delivery_backlog_bound, 500);
    for bad in ["0", "-5", "many"] {
        let e = load(
            &[("HOOKLINE_DELIVERY_BACKLOG_BOUND", bad)],
            CliOverrides::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("HOOKLINE_DELIVERY_BACKLOG_BOUND"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn a_user_agent_must_be_a_header_value() {
    for bad in ["a\nb", "caf\u{e9}", &"x".repeat(257)] {
        let e = load(
            &[("HOOKLINE_WEBHOOK_USER_AGENT", bad)],
            CliOverrides::default(),
        )
        .unwrap_err();
        assert!(e.0.contains("HOOKLINE_WEBHOOK_USER_AGENT"), "{e:?}");
    }
    let s = load(
        &[(
            "HOOKLINE_WEBHOOK_USER_AGENT",
            "Acme-Hooks/2.1 (+https://acme.example)",
        )],
        CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(
        s.webhook_user_agent,
        "Acme-Hooks/2.1 (+https://acme.example)"
    );
}

#[test]
fn an_admin_token_of_blanks_is_refused_not_ignored() {
    for bad in ["   ", "two words", "tab\there"] {
        let e = load(&[("HOOKLINE_ADMIN_TOKEN", bad)], CliOverrides::default()).unwrap_err();
        assert!(e.0.contains("HOOKLINE_ADMIN_TOKEN"), "{e:?}");
    }
    let off = load(&[("HOOKLINE_ADMIN_TOKEN", "")], CliOverrides::default()).unwrap();
    assert!(off.admin_token.is_none());
}

#[test]
fn a_retry_schedule_with_an_empty_entry_is_refused() {
    for bad in [
        "5,,6",
        "5,",
        ",5",
        "",
        " ",
        "5, ,6",
        "18446744073709551615",
        "5,2592001",
    ] {
        let e = load(&[("HOOKLINE_RETRY_SCHEDULE", bad)], CliOverrides::default()).unwrap_err();
        assert!(
            e.to_string().contains("HOOKLINE_RETRY_SCHEDULE"),
            "{bad}: {e}"
        );
    }
    let s = load(
        &[("HOOKLINE_RETRY_SCHEDULE", " 5, 30 ,300")],
        CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(s.retry_policy.schedule_secs, vec![5, 30, 300]);
}

#[test]
fn a_malformed_secret_key_is_refused_before_anything_starts() {
    let refused = load(
        &[("HOOKLINE_SECRET_KEY", "notbase64")],
        CliOverrides::default(),
    );
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("HOOKLINE_SECRET_KEY")),
        "{refused:?}"
    );
    let ok = load(
        &[(
            "HOOKLINE_SECRET_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )],
        CliOverrides::default(),
    );
    assert!(ok.is_ok_and(|s| s.secret_key.is_some()));
}
