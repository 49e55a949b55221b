//! What the embedded cluster needs from the machine: its Postgres binaries,
//! the user to run them as, and directories that user may reach.

use super::{io, LocalPgError};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A uid/gid pair to run the Postgres binaries as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
///
/// # Errors
/// [`LocalPgError::NotInPgBin`] when `HOOKLINE_PG_BIN` names a directory
/// without them (no fallback: the setting is meant), else
/// [`LocalPgError::BinariesMissing`].
pub fn find_binaries() -> Result<PathBuf, LocalPgError> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("HOOKLINE_PG_BIN").map(PathBuf::from) {
        return if has_all(&dir) {
            Ok(dir)
        } else {
            Err(LocalPgError::NotInPgBin(dir.display().to_string()))
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_all(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions
        .into_iter()
        .next()
        .map(|(_, dir)| dir)
        .ok_or(LocalPgError::BinariesMissing)
}

/// When running as root, the `postgres` user; otherwise `None` (run as
/// ourselves).
///
/// # Errors
/// [`LocalPgError::NoPostgresUser`] as root without such a user.
pub fn cluster_owner() -> Result<Option<Owner>, LocalPgError> {
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(io("reading /etc/passwd"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 4 && fields[0] == "postgres" {
                Some(Owner {
                    uid: fields[2].parse().ok()?,
                    gid: fields[3].parse().ok()?,
                })
            } else {
                None
            }
        })
        .map(Some)
        .ok_or(LocalPgError::NoPostgresUser)
}

/// Settings the embedded cluster owns: where it listens, who may connect
/// and which files it reads. `HOOKLINE_PG_CONF` may not change them (a
/// `port` made the cluster unreachable for Hookline; `listen_addresses`
/// opened it to the network).
const OWNED_SETTINGS: &[&str] = &[
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "include",
    "include_if_exists",
    "include_dir",
];

/// Extra settings for the embedded cluster from `HOOKLINE_PG_CONF`
/// (`name = value` pairs separated by `;` outside quotes), one per line.
///
/// # Errors
/// An entry that is not `name = value`, or names a setting Hookline owns.
pub(super) fn extra_settings() -> Result<String, LocalPgError> {
    parse_extra_settings(&std::env::var("HOOKLINE_PG_CONF").unwrap_or_default())
}

/// `raw` split at each `;` outside a single-quoted value (`''` inside one
/// is a quote, as in `postgresql.conf`).
///
/// # Errors
/// A quote left open.
fn split_entries(raw: &str) -> Result<Vec<&str>, LocalPgError> {
    let (mut entries, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in raw.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            ';' if !quoted => {
                entries.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(LocalPgError::Setting(format!(
            "HOOKLINE_PG_CONF: a quote is not closed in '{}'",
            raw[start..].trim()
        )));
    }
    entries.push(&raw[start..]);
    Ok(entries)
}

fn parse_extra_settings(raw: &str) -> Result<String, LocalPgError> {
    let mut out = String::new();
    for entry in split_entries(raw)?
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let refuse =
            |why: &str| LocalPgError::Setting(format!("HOOKLINE_PG_CONF: '{entry}' {why}"));
        let (name, value) = entry
            .split_once('=')
            .ok_or_else(|| refuse("is not name = value"))?;
        let (name, value) = (name.trim(), value.trim());
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
        if name.is_empty() || !name.chars().all(plain) {
            return Err(refuse("does not start with a setting's name"));
        }
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(refuse("has no value, or a control character in it"));
        }
        if OWNED_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(refuse(
                "changes a setting the embedded cluster owns (where it listens and what it reads)",
            ));
        }
        out.push_str(&format!("{name} = {value}\n"));
    }
    Ok(out)
}

/// Creates `dir` with mode 0700, owned by `owner` when given.
pub(super) fn make_private_dir(dir: &Path, owner: Option<Owner>) -> Result<(), LocalPgError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod {}", dir.display())))?;
    if let Some(owner) = owner {
        std::os::unix::fs::chown(dir, Some(owner.uid), Some(owner.gid))
            .map_err(io(format!("chown {}", dir.display())))?;
    }
    Ok(())
}

/// The cluster owner must be able to reach its directory: add the
/// "others may traverse" bit to ancestors that lack it (never read).
pub(super) fn make_traversable(dir: &Path, owner: Owner) -> Result<(), LocalPgError> {
    for ancestor in dir.ancestors().skip(1) {
        let meta =
            std::fs::metadata(ancestor).map_err(io(format!("stat {}", ancestor.display())))?;
        let mode = meta.permissions().mode();
        let reachable = mode & 0o001 != 0
            || (meta.uid() == owner.uid && mode & 0o100 != 0)
            || (meta.gid() == owner.gid && mode & 0o010 != 0);
        if !reachable {
            tracing::info!(dir = %ancestor.display(), "letting the postgres user traverse this directory (o+x)");
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o001))
                .map_err(io(format!("chmod o+x {}", ancestor.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_extra_settings;

    #[test]
    fn extra_settings_are_name_value_pairs_hookline_does_not_own() {
        assert_eq!(
            parse_extra_settings(" shared_buffers = 64MB ;; log_line_prefix='%m [%p] ' ;").ok(),
            Some("shared_buffers = 64MB\nlog_line_prefix = '%m [%p] '\n".to_string())
        );
        assert_eq!(parse_extra_settings("").ok(), Some(String::new()));
        assert_eq!(
            parse_extra_settings("log_line_prefix = '%m; %p ''x;y'' ' ; work_mem=4MB").ok(),
            Some("log_line_prefix = '%m; %p ''x;y'' '\nwork_mem = 4MB\n".to_string())
        );
        for bad in [
            "port = 5433",
            "PORT=5433",
            "listen_addresses = '*'",
            "include = '/etc/passwd'",
            "shared_buffers",
            "= 5",
            "shared buffers = 5",
            "shared_buffers =",
            "work_mem = 4MB\nport = 1",
            "log_line_prefix = '%m; port = 1",
            "a = 'x'; port = 1",
        ] {
            let refused = parse_extra_settings(bad);
            assert!(
                matches!(&refused, Err(e) if e.to_string().starts_with("HOOKLINE_PG_CONF: ")),
                "{bad}: {refused:?}"
            );
        }
    }
}
