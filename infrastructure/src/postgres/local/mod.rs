//! The embedded default: a private Postgres cluster under `<data dir>/pg`,
//! run from the machine's Postgres binaries, reachable only through a Unix
//! socket inside the data directory (no TCP port).
//!
//! * Binaries are found on `PATH` or under `/usr/lib/postgresql/*/bin`
//!   (newest version first), or in `HOOKLINE_PG_BIN`.
//! * As root, the cluster runs as the `postgres` system user (Postgres
//!   refuses to run as root); the data directory is owned by it.
//! * `serve` starts the cluster with `pg_ctl` (or reuses a running one) and
//!   stops it on shutdown; other commands stop it only if they started it.
//! * Tests use [`LocalPostgres::start_ephemeral`]: a cluster that stops and
//!   deletes itself when the test process exits.

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

pub const SUPERUSER: &str = "hookline";
pub const DATABASE: &str = "hookline";
const PORT: u16 = 5432;
/// Longest Unix socket path the kernel accepts, minus a margin.
const MAX_SOCKET_PATH: usize = 100;
/// How long a starting (or recovering) cluster may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The line of `postgresql.conf` that brings in Hookline's settings.
const INCLUDE_LINE: &str = "include_if_exists = 'hookline.conf'";
/// Where `initdb` makes a new cluster (`<root>/data.new-<pid>`) before it
/// is moved to `<root>/data`.
const STAGING_PREFIX: &str = "data.new-";

mod host;
pub use host::{cluster_owner, find_binaries, Owner};
use host::{extra_settings, make_private_dir, make_traversable};

#[derive(Debug, thiserror::Error)]
pub enum LocalPgError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or under \
         /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`; \
         Fedora: `dnf install postgresql-server`; macOS: `brew install postgresql`), point \
         HOOKLINE_PG_BIN at their directory, or set DATABASE_URL to use an existing server"
    )]
    BinariesMissing,
    #[error(
        "HOOKLINE_PG_BIN is {0}, which does not hold initdb, pg_ctl and postgres; point it at \
         the directory that does (Debian/Ubuntu: /usr/lib/postgresql/<version>/bin), or unset \
         it to look on PATH and under /usr/lib/postgresql/*/bin"
    )]
    NotInPgBin(String),
    #[error("running as root needs a `postgres` system user to own the cluster (Postgres refuses to run as root); create one (`useradd --system postgres`) or run Hookline as another user")]
    NoPostgresUser,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("the cluster did not accept connections within {0:?}; see {1}")]
    NotReady(Duration, String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Setting(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalPgError {
    let what = what.into();
    move |source| LocalPgError::Io { what, source }
}

/// Memory and WAL settings for the machine the cluster runs on (issue 16;
/// measured in `docs/performance.md`). Durability is never among them:
/// fsync, synchronous_commit and full_page_writes stay on.
fn machine_settings(durable: bool) -> String {
    const MB: u64 = 1024 * 1024;
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(2048 * MB, |kb| kb * 1024);
    // A sixteenth of the memory, between 128 MB and 256 MB: the hot pages
    // (the log's recent ones, the delivery views) fit. More measured no
    // faster under load and slowed rebuilds (dropping and swapping tables
    // scans all of shared buffers): 1 GB cost `replay` 11 %.
    // Throw-away test clusters (several may run at once) keep the default.
    let shared = if durable {
        (memory / 16).clamp(128 * MB, 256 * MB) / MB
    } else {
        128
    };
    let mut text = format!(
        "shared_buffers = '{shared}MB'\n\
         wal_buffers = '16MB'\n"
    );
    if durable {
        // Fewer checkpoints: fewer full-page images after each one.
        text.push_str(
            "max_wal_size = '2GB'\n\
             checkpoint_timeout = '15min'\n\
             checkpoint_completion_target = 0.9\n",
        );
    }
    text
}

/// How the cluster is tuned.
#[derive(Debug, Clone, Copy)]
pub struct ClusterTuning {
    /// fsync and synchronous commit on (always, outside tests).
    pub durable: bool,
    pub max_connections: u32,
}

impl Default for ClusterTuning {
    fn default() -> Self {
        Self {
            durable: true,
            max_connections: 200,
        }
    }
}

/// Left in the cluster's directory by the process that started the
/// cluster: its last user stops it, whether or not that process is still
/// there (a one-shot command killed, or ended while others used it). A
/// server stops it at its end anyway.
const STOP_WHEN_UNUSED: &str = "stop-when-unused";

pub struct LocalPostgres {
    root: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    bins: PathBuf,
    owner: Option<Owner>,
    started_here: bool,
    /// Shared lock on `<dir>/pg.users` while this process uses the cluster,
    /// so the last user out knows it may stop it.
    users_lock: Option<std::fs::File>,
}

impl fmt::Debug for LocalPostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPostgres")
            .field("data", &self.data)
            .field("socket_dir", &self.socket_dir)
            .field("started_here", &self.started_here)
            .finish()
    }
}

impl LocalPostgres {
    /// Prepares `<dir>/pg` (initialising the cluster on first use) without
    /// starting it.
    async fn prepare(dir: &Path, tuning: ClusterTuning) -> Result<Self, LocalPgError> {
        let bins = find_binaries()?;
        let owner = cluster_owner()?;
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let dir = std::fs::canonicalize(dir).map_err(io(format!("resolving {}", dir.display())))?;
        let root = dir.join("pg");
        let data = root.join("data");
        make_private_dir(&root, owner)?;
        if let Some(owner) = owner {
            make_traversable(&root, owner)?;
        }
        let socket_dir = {
            let preferred = root.join("run");
            if preferred.as_os_str().len() + ".s.PGSQL.5432".len() < MAX_SOCKET_PATH {
                preferred
            } else {
                let digest = hex::encode(&Sha256::digest(root.as_os_str().as_encoded_bytes())[..6]);
                PathBuf::from(format!("/tmp/hookline-{digest}"))
            }
        };
        make_private_dir(&socket_dir, owner)?;
        let this = Self {
            root,
            data,
            socket_dir,
            bins,
            owner,
            started_here: false,
            users_lock: None,
        };
        this.set_aside_unfinished()?;
        if !this.data.join("PG_VERSION").exists() {
            this.initdb(tuning).await?;
        }
        this.write_config(tuning)?;
        Ok(this)
    }

    /// Whether `<dir>` holds an initialised embedded cluster (commands
    /// that only read refuse to make one: a mistyped directory would read
    /// as an empty, intact log).
    pub fn exists(dir: &Path) -> bool {
        dir.join("pg/data/PG_VERSION").is_file()
    }

    /// What an initialisation cut short left behind: staging directories
    /// of killed `initdb` runs are removed, and a cluster that never got
    /// Hookline's settings (made by an earlier version killed during its
    /// first start: it never ran with them, and started without them it
    /// listened on the default port and socket) is moved aside, so that a
    /// new one is made.
    fn set_aside_unfinished(&self) -> Result<(), LocalPgError> {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name.to_string_lossy().starts_with(STAGING_PREFIX) {
                    tracing::warn!(dir = %entry.path().display(), "removing what an interrupted cluster initialisation left");
                    if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                        tracing::warn!(dir = %entry.path().display(), error = %e, "could not remove it");
                    }
                }
            }
        }
        if !self.data.join("PG_VERSION").exists() {
            return Ok(());
        }
        let conf = std::fs::read_to_string(self.data.join("postgresql.conf")).unwrap_or_default();
        if conf.contains(INCLUDE_LINE) {
            return Ok(());
        }
        let aside = self.root.join(format!(
            "data.unfinished-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ));
        tracing::warn!(data = %self.data.display(), aside = %aside.display(), "the cluster's initialisation was interrupted before it was ever started: moving it aside and initialising a new one");
        std::fs::rename(&self.data, &aside).map_err(io(format!(
            "moving the unfinished cluster {} aside",
            self.data.display()
        )))
    }

    /// Starts (or reuses) the cluster under `<dir>/pg` with `pg_ctl`, and
    /// makes sure the `hookline` database exists.
    ///
    /// # Errors
    /// Missing binaries, permission problems, or a cluster that does not
    /// start (the message points at its log).
    pub async fn ensure_running(dir: &Path) -> Result<Self, LocalPgError> {
        let lock_path = dir.join("pg.lock");
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        // Registered as a user first: waits while another process is
        // stopping the cluster.
        let users_path = dir.join("pg.users");
        let users = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&users_path)
            .map_err(io(format!("opening {}", users_path.display())))?;
        let users = tokio::task::spawn_blocking(move || users.lock_shared().map(|()| users))
            .await
            .map_err(|e| LocalPgError::Io {
                what: "locking the data directory".into(),
                source: std::io::Error::other(e),
            })?
            .map_err(io(format!("locking {}", users_path.display())))?;
        let lock = lock_exclusive(&lock_path).await?;
        let mut this = Self::prepare(dir, ClusterTuning::default()).await?;
        if !this.running_and_ready().await? {
            this.start().await?;
            this.started_here = true;
            // Whoever uses it last stops it, should this process die
            // first (a server, the owner, stops it at its end anyway).
            if let Err(e) = std::fs::write(this.root.join(STOP_WHEN_UNUSED), b"") {
                tracing::warn!(error = %e, "could not leave the stop of the embedded cluster to its last user");
            }
        } else {
            tracing::info!(data = %this.data.display(), "using the running embedded Postgres cluster");
        }
        if let Err(e) = this.ensure_database().await {
            // Not left running for nobody.
            if this.started_here {
                if let Err(stop) = this.stop().await {
                    tracing::error!(error = %stop, "stopping the cluster this start began failed");
                }
            }
            return Err(e);
        }
        this.users_lock = Some(users);
        drop(lock);
        Ok(this)
    }

    async fn start(&self) -> Result<(), LocalPgError> {
        // A pid file left by a postmaster that is gone (and nothing answers
        // on the socket): `pg_ctl start -w` would take it for the new
        // postmaster's when that one gets the same pid (a container's
        // restart gives out the same small pids) and answer before it is
        // ready.
        if pid_file_pid_is_gone(&self.data) && self.socket_answers() == Some(false) {
            let pid_file = self.data.join("postmaster.pid");
            tracing::info!(path = %pid_file.display(), "removing the pid file of a postmaster that is gone");
            if let Err(e) = std::fs::remove_file(&pid_file) {
                tracing::warn!(error = %e, "could not remove the pid file of a postmaster that is gone");
            }
        }
        tracing::info!(data = %self.data.display(), "starting the embedded Postgres cluster");
        let log = self.root.join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "120".as_ref(),
                "-s".as_ref(),
            ],
        )
        .await
        .map(drop)
    }

    /// What a server needs to keep the cluster running (see
    /// [`Keeper::restart_if_stopped`]).
    pub fn keeper(&self) -> Keeper {
        Keeper(Self {
            root: self.root.clone(),
            data: self.data.clone(),
            socket_dir: self.socket_dir.clone(),
            bins: self.bins.clone(),
            owner: self.owner,
            started_here: false,
            users_lock: None,
        })
    }

    /// Stops using the cluster. It is stopped when no other process uses it
    /// and either `owner` (the server) asks, or a process started it that
    /// left its stop to the last user ([`STOP_WHEN_UNUSED`]).
    ///
    /// # Errors
    /// When stopping fails.
    pub async fn release(mut self, owner: bool) -> Result<(), LocalPgError> {
        let Some(users) = self.users_lock.take() else {
            return Ok(());
        };
        let last_user = users.try_lock().is_ok();
        let handed_over = self.root.join(STOP_WHEN_UNUSED);
        if last_user && (owner || self.started_here || handed_over.exists()) {
            let result = self.stop().await;
            drop(std::fs::remove_file(&handed_over));
            drop(users);
            return result;
        }
        if !last_user {
            tracing::info!(
                "other Hookline processes still use the embedded cluster; leaving it running"
            );
        }
        Ok(())
    }

    /// A throw-away cluster for tests: not durable, owned by this process,
    /// stopped and deleted by a watchdog when the process exits.
    ///
    /// # Errors
    /// As [`LocalPostgres::ensure_running`].
    pub async fn start_ephemeral(dir: &Path) -> Result<Self, LocalPgError> {
        let tuning = ClusterTuning {
            durable: false,
            max_connections: 400,
        };
        let mut this = Self::prepare(dir, tuning).await?;
        let log = std::fs::File::create(this.root.join("postgres.log"))
            .map_err(io("creating the postgres log"))?;
        if let Some(owner) = this.owner {
            std::os::unix::fs::chown(
                this.root.join("postgres.log"),
                Some(owner.uid),
                Some(owner.gid),
            )
            .map_err(io("chown postgres.log"))?;
        }
        let mut cmd = std::process::Command::new(this.bins.join("postgres"));
        cmd.arg("-D")
            .arg(&this.data)
            .current_dir(&this.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("postgres log"))?)
            .stderr(log);
        if let Some(owner) = this.owner {
            use std::os::unix::process::CommandExt;
            cmd.uid(owner.uid).gid(owner.gid);
        }
        let child = cmd.spawn().map_err(io("starting postgres"))?;
        // The watchdog outlives us: when this process is gone it stops the
        // cluster and removes its directory.
        let script = r#"while [ -d "/proc/$1" ]; do sleep 0.5; done
kill -INT "$2" 2>/dev/null
while [ -d "/proc/$2" ] && kill -0 "$2" 2>/dev/null; do sleep 0.2; done
rm -rf "$3" "$4""#;
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("hookline-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(child.id().to_string())
            .arg(dir)
            .arg(&this.socket_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting the cluster watchdog"))?;
        this.started_here = true;
        this.wait_ready(READY_TIMEOUT).await?;
        this.ensure_database().await?;
        Ok(this)
    }

    /// Initialises the cluster in a staging directory and moves it to
    /// its place once complete, with Hookline's settings included: a
    /// process killed meanwhile leaves no cluster that would start
    /// without them.
    async fn initdb(&self, tuning: ClusterTuning) -> Result<(), LocalPgError> {
        tracing::info!(data = %self.data.display(), "initialising a new Postgres cluster");
        let staging = self
            .root
            .join(format!("{STAGING_PREFIX}{}", std::process::id()));
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "-D".as_ref(),
            staging.as_os_str(),
            "-U".as_ref(),
            SUPERUSER.as_ref(),
            "-A".as_ref(),
            "trust".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--no-locale".as_ref(),
        ];
        if !tuning.durable {
            args.push("--no-sync".as_ref());
        }
        self.run("initdb", &args).await?;
        let conf = staging.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(io("reading postgresql.conf"))?;
        text.push_str(&format!(
            "\n# Hookline's settings, rewritten at every start.\n{INCLUDE_LINE}\n"
        ));
        std::fs::write(&conf, text).map_err(io("writing postgresql.conf"))?;
        std::fs::rename(&staging, &self.data).map_err(io(format!(
            "moving the new cluster to {}",
            self.data.display()
        )))
    }

    fn write_config(&self, tuning: ClusterTuning) -> Result<(), LocalPgError> {
        let on_off = |b: bool| if b { "on" } else { "off" };
        let text = format!(
            "listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = '{socket}'\n\
             unix_socket_permissions = 0700\n\
             max_connections = {max}\n\
             {machine}\
             fsync = {durable}\n\
             synchronous_commit = {durable}\n\
             full_page_writes = {durable}\n\
             log_min_messages = warning\n\
             autovacuum_naptime = 2\n\
             log_line_prefix = '%m [%p] '\n\
             {extra}",
            socket = self.socket_dir.display().to_string().replace('\'', "''"),
            max = tuning.max_connections,
            durable = on_off(tuning.durable),
            machine = machine_settings(tuning.durable),
            extra = extra_settings()?,
        );
        let path = self.data.join("hookline.conf");
        std::fs::write(&path, text).map_err(io("writing hookline.conf"))?;
        // Trust over the socket (whose directory only the cluster's owner
        // may enter), nothing over TCP: initdb's file also trusts
        // 127.0.0.1, which a `listen_addresses` in HOOKLINE_PG_CONF would
        // open to every local user.
        let hba = self.data.join("pg_hba.conf");
        std::fs::write(
            &hba,
            "# Written by Hookline at every start: the socket only.\n\
             local all all trust\n",
        )
        .map_err(io("writing pg_hba.conf"))?;
        if let Some(owner) = self.owner {
            for p in [&path, &hba] {
                std::os::unix::fs::chown(p, Some(owner.uid), Some(owner.gid))
                    .map_err(io("chown the cluster's configuration"))?;
            }
        }
        Ok(())
    }

    async fn run(&self, bin: &str, args: &[&std::ffi::OsStr]) -> Result<String, LocalPgError> {
        let mut cmd = tokio::process::Command::new(self.bins.join(bin));
        cmd.args(args)
            .current_dir(&self.root)
            .env_remove("PGDATA")
            .stdin(Stdio::null())
            .kill_on_drop(false);
        if let Some(owner) = self.owner {
            cmd.uid(owner.uid).gid(owner.gid);
        }
        let out = cmd.output().await.map_err(io(format!("running {bin}")))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(LocalPgError::Command {
                command: bin.to_string(),
                status: out.status.to_string(),
                output: text.trim().chars().take(2000).collect(),
            })
        }
    }

    /// Whether a postmaster accepts connections on this cluster's socket,
    /// whatever PID namespace it runs in. The socket is found under the
    /// cluster's own directory (shared by every namespace and mount that
    /// sees the data directory); when it lives elsewhere (a path too long
    /// for a socket), this cannot tell (`None`).
    fn socket_answers(&self) -> Option<bool> {
        if !self.socket_dir.starts_with(&self.root) {
            return None;
        }
        let socket = self.socket_dir.join(format!(".s.PGSQL.{PORT}"));
        Some(std::os::unix::net::UnixStream::connect(socket).is_ok())
    }

    async fn is_running(&self) -> Result<bool, LocalPgError> {
        reap_dead_postgres(&self.data);
        // A postmaster answering on the cluster's socket runs, even when
        // its pid file names a pid of another PID namespace (a server in a
        // container, a command on the host): starting a second one on the
        // same data directory would destroy it.
        if self.socket_answers() == Some(true) {
            return Ok(true);
        }
        if pid_file_is_stale(&self.data) && self.socket_answers() == Some(false) {
            let pid_file = self.data.join("postmaster.pid");
            tracing::warn!(
                path = %pid_file.display(),
                "the cluster's pid file names a process that is not a postmaster (its pid was reused after a crash); removing the file"
            );
            if let Err(e) = std::fs::remove_file(&pid_file) {
                tracing::warn!(error = %e, "could not remove the stale pid file");
            }
            return Ok(false);
        }
        match self
            .run(
                "pg_ctl",
                &["status".as_ref(), "-D".as_ref(), self.data.as_os_str()],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(LocalPgError::Command { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Whether a cluster is running on the data directory, waiting until it
    /// accepts connections. A postmaster killed a moment ago can still look
    /// alive (its pid file stays, and until its parent reaps it the process
    /// exists): wait until it is either ready or gone, so that a crash of
    /// both Hookline and Postgres is followed by a normal start.
    async fn running_and_ready(&self) -> Result<bool, LocalPgError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running().await? {
                return Ok(false);
            }
            if let Ok(conn) = self.options("postgres").connect().await {
                drop(conn.close().await);
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Err(LocalPgError::NotReady(
                    READY_TIMEOUT,
                    self.root.join("postgres.log").display().to_string(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), LocalPgError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.options("postgres").connect().await {
                Ok(conn) => {
                    drop(conn.close().await);
                    return Ok(());
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    return Err(LocalPgError::NotReady(
                        timeout,
                        self.root.join("postgres.log").display().to_string(),
                    ))
                }
            }
        }
    }

    /// Creates `database` unless it exists.
    ///
    /// # Errors
    /// Database errors other than "already exists".
    pub async fn create_database(
        &self,
        database: &str,
        template: Option<&str>,
    ) -> Result<(), LocalPgError> {
        let mut conn = self.options("postgres").connect().await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(database)
                .fetch_optional(&mut conn)
                .await?;
        if exists.is_none() {
            let sql = match template {
                Some(t) => format!("CREATE DATABASE \"{database}\" TEMPLATE \"{t}\""),
                None => format!("CREATE DATABASE \"{database}\""),
            };
            match sqlx::query(&sql).execute(&mut conn).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(e.into()),
            }
        }
        drop(conn.close().await);
        Ok(())
    }

    async fn ensure_database(&self) -> Result<(), LocalPgError> {
        self.create_database(DATABASE, None).await
    }

    /// Connection options for `database` over the private socket.
    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
            .log_statements(tracing::log::LevelFilter::Trace)
    }

    /// A `postgres://` URL for `database` (for child processes and tools).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{database}?host={}",
            self.socket_dir.display()
        )
    }

    pub fn started_here(&self) -> bool {
        self.started_here
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Stops the cluster: a fast shutdown (open transactions roll back)
    /// for up to 30 s, then an immediate one (the next start recovers from
    /// the WAL, as after a crash; nothing committed is lost).
    ///
    /// # Errors
    /// When neither stopped it (a hung postmaster).
    pub async fn stop(&self) -> Result<(), LocalPgError> {
        // A postmaster that died a moment ago (killed; reaped here when this
        // process is its parent, as PID 1): nothing to stop, and `pg_ctl
        // stop` would wait its whole timeout for a pid file nobody removes.
        if !self.is_running().await? {
            tracing::info!(data = %self.data.display(), "the embedded Postgres was not running any more");
            return Ok(());
        }
        tracing::info!(data = %self.data.display(), "stopping the embedded Postgres cluster");
        let fast = self.pg_ctl_stop("fast", "30").await;
        let Err(e) = fast else { return Ok(()) };
        // A postmaster that died before (killed a moment ago): nothing to
        // stop, and the next start recovers from its write-ahead log.
        if !self.is_running().await? {
            tracing::info!(error = %e, "the embedded Postgres was not running any more");
            return Ok(());
        }
        tracing::warn!(error = %e, "a fast shutdown of the embedded Postgres did not finish; trying an immediate one");
        self.pg_ctl_stop("immediate", "10").await
    }

    async fn pg_ctl_stop(&self, mode: &str, seconds: &str) -> Result<(), LocalPgError> {
        self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                mode.as_ref(),
                "-t".as_ref(),
                seconds.as_ref(),
                "-w".as_ref(),
                "-s".as_ref(),
            ],
        )
        .await
        .map(drop)
    }
}

async fn lock_exclusive(path: &Path) -> Result<std::fs::File, LocalPgError> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(format!("opening {}", path.display())))?;
    tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| LocalPgError::Io {
            what: "locking the data directory".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(io(format!("locking {}", path.display())))
}

/// Keeps the embedded cluster of a running server up: a postmaster that
/// died (killed, out of memory) is started again, as `serve` would at its
/// start, instead of leaving the server without a database until someone
/// restarts it.
#[derive(Debug)]
pub struct Keeper(LocalPostgres);

impl Keeper {
    /// Starts the cluster when no postmaster runs on its data directory;
    /// whether it did. Other processes of the data directory wait (its
    /// lock) rather than start it twice.
    ///
    /// # Errors
    /// When the cluster does not start (its log says why).
    pub async fn restart_if_stopped(&self) -> Result<bool, LocalPgError> {
        let pg = &self.0;
        if pg.is_running().await? {
            return Ok(false);
        }
        let lock_path = pg
            .root
            .parent()
            .map_or_else(|| pg.root.join("pg.lock"), |dir| dir.join("pg.lock"));
        let lock = lock_exclusive(&lock_path).await?;
        let started = if pg.is_running().await? {
            false
        } else {
            tracing::warn!(data = %pg.data.display(), "the embedded Postgres is not running; starting it again");
            pg.start().await?;
            true
        };
        drop(lock);
        Ok(started)
    }
}

/// `(state, parent pid, command name)` of process `pid`, from `/proc`.
fn proc_stat(pid: i32) -> Option<(String, i32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid …": the name may hold spaces and parentheses.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_string();
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid, comm))
}

/// Reaps Postgres processes that died as this process's children. That
/// happens when Hookline is PID 1 (a container started without an init):
/// the postmaster `pg_ctl` starts is then reparented to Hookline, and when
/// it is killed it stays a zombie until reaped. While it is one its pid
/// "exists", so `pg_ctl status` calls the cluster running and a new
/// postmaster refuses the pid file: the cluster would never be started
/// again. Only `postgres` processes are reaped; the `pg_ctl` and `initdb`
/// this process runs are waited for by their own code.
fn reap_dead_postgres(data: &Path) {
    let me = rustix::process::getpid();
    let mut candidates: Vec<i32> = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next().and_then(|l| l.trim().parse().ok()))
        .into_iter()
        .collect();
    if me.is_init() {
        // Its backends, killed with it, are reparented here too.
        if let Ok(entries) = std::fs::read_dir("/proc") {
            candidates.extend(
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok())),
            );
        }
    }
    for pid in candidates {
        let Some((state, ppid, comm)) = proc_stat(pid) else {
            continue;
        };
        if state != "Z" || ppid != me.as_raw_nonzero().get() || comm != "postgres" {
            continue;
        }
        let Some(child) = rustix::process::Pid::from_raw(pid) else {
            continue;
        };
        match rustix::process::waitpid(Some(child), rustix::process::WaitOptions::NOHANG) {
            Ok(_) => tracing::debug!(pid, "reaped a Postgres process that had exited"),
            Err(e) => tracing::debug!(pid, error = %e, "could not reap a Postgres process"),
        }
    }
}

/// Whether the cluster's pid file names a live process that is not a
/// postmaster: after a crash (or a reboot, or a container's restart) its
/// pid can belong to anything, a shell or another cluster's backend. Then
/// `pg_ctl status` calls the cluster running and Postgres refuses to start
/// ("lock file already exists") for as long as that process lives. A
/// postmaster keeps its command line; every other Postgres process shows
/// `postgres: …` instead. Unknown (no `/proc`, a dead or zombie process):
/// not stale, as Postgres handles a dead pid itself.
///
/// A pid is only meaningful in the PID namespace of the process that wrote
/// it: a postmaster in a container names its own pid, which on the host is
/// another process. So the caller also asks the cluster's socket
/// ([`LocalPostgres::socket_answers`]) before it removes the file:
/// removing a live postmaster's file would let a second one start on the
/// same data directory.
fn pid_file_is_stale(data: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return false;
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return false;
    };
    let Some((state, _, comm)) = proc_stat(pid) else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if state == "Z" {
        return false;
    }
    if comm != "postgres" || cmdline.starts_with(b"postgres: ") {
        return true;
    }
    // A postmaster: of another cluster when it works in another directory
    // (a postmaster's working directory is its data directory). Unknown
    // (not ours to inspect): not stale.
    match (
        std::fs::read_link(format!("/proc/{pid}/cwd")),
        std::fs::canonicalize(data),
    ) {
        (Ok(cwd), Ok(ours)) => cwd != ours,
        _ => false,
    }
}

/// Whether the pid file names a process that does not exist here.
fn pid_file_pid_is_gone(data: &Path) -> bool {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|text| {
            text.lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok())
        })
        .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}
