//! The `hookline` command line.
//!
//! ```text
//! hookline serve   [--listen ADDR] [--role api|worker|all] [--metrics-listen ADDR] [DB]
//! hookline migrate                                           [DB]
//! hookline tenants create NAME [--json]                      [DB]
//! hookline tenants list [--include-deleted] [--json]         [DB]
//! hookline tenants show|delete ID                            [DB]
//! hookline tenants rename ID NAME                            [DB]
//! hookline tenants keys create|list ID                       [DB]
//! hookline tenants keys revoke ID KEY_ID                     [DB]
//! hookline audit export [--tenant ID] [--after POS] [--output FILE] [DB]
//! hookline audit verify [--tenant ID] [--heads FILE]         [DB]
//! hookline audit heads  [--tenant ID] [--output FILE [--force]] [DB]
//! hookline replay [--projection NAME|all] [--check]          [DB]
//! hookline deliveries show ID                                [DB]
//! hookline connectors siigo subscribe [URL] EVENTS USERNAME ACCESS_KEY CLIENT_ID CLIENT_SECRET
//!          --tenant ID [--via-source] [--description D] [--header K=V]... [--sandbox-url URL] [--json] [DB]
//! hookline connectors siigo list|remove …                     [DB]
//! hookline connectors siigo sandbox --listen ADDR
//! ```
//! `[DB]` is `--data-dir DIR` and/or `--database-url URL`. Without a
//! database URL (flag, `DATABASE_URL` or `HOOKLINE_DATABASE_URL`) every
//! command uses the embedded Postgres under the data directory.

/// `println!` that does not panic: a closed standard output (`| head`, a
/// pager quit early) is an error the command reports and exits 1 on,
/// after stopping what it started.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
            .map_err(|e| anyhow::anyhow!("writing to standard output: {e}"))?
    }};
}

mod audit;
mod connectors;
mod deliveries;
mod replay;
mod signals;
mod siigo_sandbox;
mod tenants;

use crate::startup::{Application, OpenDatabase, Runs, Services};
use clap::{Args, Parser, Subcommand};
use hookline_application::{Actor, CommandContext, RequestId};
use hookline_domain::{DeliveryId, TenantId};
use hookline_infrastructure::config::{CliOverrides, LogFormat, Settings};
use hookline_infrastructure::telemetry;
use signals::{command_interruption, shutdown_signal};
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "hookline",
    version,
    about = "Hookline: an event-sourced webhook platform"
)]
struct Cli {
    /// Configuration file (TOML); keys are the HOOKLINE_* names in lowercase
    /// without the prefix.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone, Default)]
struct DbArgs {
    /// Data directory (embedded Postgres, secret key file). Default: ./.hookline
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Use this Postgres server instead of the embedded one.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Whether the command may initialise a new embedded cluster (it
    /// creates something); the others need an existing one.
    #[arg(skip)]
    initialise: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API, projections and delivery workers.
    Serve {
        /// Address to listen on. Default: 127.0.0.1:8080
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Which parts to run: api, worker or all. Default: all
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        /// Also serve GET /metrics (and nothing else) on this address.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage tenants.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Export, verify and anchor the event log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Rebuild read models from the event log (or check them against it).
    Replay {
        /// tenants, event_types, subscriptions, deliveries (views, attempts
        /// and the due queue), messages, sources, upstream_subscriptions,
        /// or all.
        #[arg(long, default_value = "all", value_name = "NAME")]
        projection: String,
        /// Rebuild aside and report differences from the live tables,
        /// changing nothing (exit code 3 when they differ).
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Inspect deliveries.
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Connectors to other systems (Siigo).
    Connectors {
        #[command(subcommand)]
        command: connectors::ConnectorsCommand,
    },
}

use tenants::TenantsCommand;

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Write the log as JSON Lines in commit order.
    Export {
        /// Only this tenant's events.
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
        /// Start after the event at this position.
        #[arg(long, value_name = "POS", default_value_t = 0)]
        after: i64,
        /// Write here instead of standard output (refused if it exists,
        /// unless --force).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace an existing --output file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Recompute every hash chain and check sequences (exit code 2 on tampering).
    Verify {
        /// Only this tenant's chains.
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
        /// Also check chain heads recorded earlier by `audit heads`.
        #[arg(long, value_name = "FILE")]
        heads: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print every aggregate's chain head and a digest, to anchor elsewhere.
    Heads {
        /// Only this tenant's chains.
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
        /// Write here instead of standard output (refused if it exists,
        /// unless --force).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace an existing --output file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
enum DeliveriesCommand {
    /// Print a readable timeline of one delivery.
    Show {
        /// The delivery id.
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn overrides(config: Option<PathBuf>, db: &DbArgs) -> CliOverrides {
    CliOverrides {
        config_file: config,
        data_dir: db.data_dir.clone(),
        database_url: db.database_url.clone(),
        ..CliOverrides::default()
    }
}

/// Exit code for tampering found by `audit verify`.
pub const EXIT_TAMPERED: u8 = 2;
/// Exit code for read models that differ from the log (`replay --check`).
pub const EXIT_DIFFERENT: u8 = 3;

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// Runs the CLI on the given arguments (the first is the program name).
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `outer: cause: …`, leaving out a cause whose
/// text an outer message already carries (many errors print their source
/// in their own message, which would otherwise repeat it).
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// Settings, an open database and the services over it, for a one-shot
/// command; closes everything when `work` is done.
async fn with_services<F, Fut>(
    config: Option<PathBuf>,
    db: &DbArgs,
    work: F,
) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Services) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    with_services_running(config, db, Runs::OneShot, OnSignal::Stop, work).await
}

/// What Ctrl-C or SIGTERM does to a command's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnSignal {
    /// Ends it: what it wrote so far stays consistent (each write is a
    /// transaction).
    Stop,
    /// Lets it finish: work that changes another system (Siigo) records
    /// what it made there or undoes it, and ended half-way it would leave
    /// things there that nothing records.
    Finish,
}

/// As [`with_services`], with the services `runs` names.
async fn with_services_running<F, Fut>(
    config: Option<PathBuf>,
    db: &DbArgs,
    runs: Runs,
    on_signal: OnSignal,
    work: F,
) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Services) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    // Listened for before anything starts: a signal while the database
    // opens (an embedded cluster starting) is kept and ends the command
    // once it is open, instead of killing it and leaving the cluster up.
    let interrupted = command_interruption()?;
    let settings = Settings::from_env(&overrides(config, db))?;
    quiet_logs(settings.log_format);
    let database = OpenDatabase::open_for(&settings, db.initialise).await?;
    let shutdown = CancellationToken::new();
    let result = async {
        let mut services = Services::build(&settings, &database, runs, &shutdown)?;
        let tasks = services.start(None, &shutdown)?;
        // Ctrl-C or SIGTERM ends the command's work (what it wrote so far
        // stays consistent: each write is a transaction; a partial output
        // file is removed) and still closes the database, stopping an
        // embedded cluster this command started.
        let result = match on_signal {
            OnSignal::Stop => tokio::select! {
                result = work(services) => result,
                () = interrupted => Err(anyhow::anyhow!("interrupted; the command stopped")),
            },
            OnSignal::Finish => {
                let work = work(services);
                tokio::pin!(work);
                tokio::select! {
                    result = &mut work => result,
                    () = interrupted => {
                        eprintln!(
                            "interrupted: finishing first, so that what was made at Siigo is recorded or removed again (kill -9 would leave it there)"
                        );
                        work.await
                    }
                }
            }
        };
        shutdown.cancel();
        for task in tasks {
            drop(task.await);
        }
        result
    }
    .await;
    let closed = database.close(false).await;
    let code = result?;
    closed?;
    Ok(code)
}

/// The context of an operator's command on the command line.
fn operator() -> CommandContext {
    CommandContext {
        request_id: RequestId::system("cli", uuid::Uuid::now_v7()),
        tenant_id: TenantId::from_uuid(uuid::Uuid::nil()),
        actor: Actor::System("cli"),
    }
}

fn tenant_arg(tenant: Option<String>) -> anyhow::Result<Option<TenantId>> {
    tenant
        .map(|t| TenantId::parse(&t).map_err(|e| anyhow::anyhow!("--tenant: {}", e.reason)))
        .transpose()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Serve {
            listen,
            role,
            metrics_listen,
            db,
        } => {
            let mut o = overrides(config, &db);
            o.listen = listen;
            o.role = role;
            o.metrics_listen = metrics_listen;
            let settings = Settings::from_env(&o)?;
            telemetry::init(settings.log_format);
            let signal = shutdown_signal();
            let app = Application::build(settings).await?;
            app.run(signal).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { db } => {
            let settings = Settings::from_env(&overrides(config, &db))?;
            quiet_logs(settings.log_format);
            OpenDatabase::open(&settings).await?.close(false).await?;
            out!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenants { command } => {
            let db = DbArgs {
                initialise: matches!(command, TenantsCommand::Create { .. }),
                ..command.db().clone()
            };
            with_services(config, &db, |s| tenants::run(s, command)).await
        }
        Command::Audit { command } => match command {
            AuditCommand::Export {
                tenant,
                after,
                output,
                force,
                db,
            } => {
                let tenant = tenant_arg(tenant)?;
                with_services(config, &db, |s| async move {
                    audit::export(&s, tenant, after, output.as_deref(), force).await
                })
                .await
            }
            AuditCommand::Verify { tenant, heads, db } => {
                let tenant = tenant_arg(tenant)?;
                with_services(config, &db, |s| async move {
                    audit::verify(&s, tenant, heads.as_deref(), None).await
                })
                .await
            }
            AuditCommand::Heads {
                tenant,
                output,
                force,
                db,
            } => {
                let tenant = tenant_arg(tenant)?;
                with_services(config, &db, |s| async move {
                    audit::verify(&s, tenant, None, Some((output.as_deref(), force))).await
                })
                .await
            }
        },
        Command::Replay {
            projection,
            check,
            db,
        } => with_services(config, &db, |s| replay::run(s, projection, check)).await,
        Command::Deliveries {
            command: DeliveriesCommand::Show { id, db },
        } => {
            let id = DeliveryId::parse(&id).map_err(|e| anyhow::anyhow!("{}", e.reason))?;
            with_services(config, &db, |s| deliveries::show(s, id)).await
        }
        Command::Connectors { command } => run_connectors(config, command).await,
    }
}

async fn run_connectors(
    config: Option<PathBuf>,
    command: connectors::ConnectorsCommand,
) -> anyhow::Result<ExitCode> {
    use connectors::{ConnectorsCommand, SiigoCommand};
    let db = command.db().cloned().unwrap_or_default();
    let ConnectorsCommand::Siigo { command } = command;
    match command {
        SiigoCommand::Sandbox { listen } => connectors::sandbox(&listen).await,
        SiigoCommand::Subscribe(args) => {
            // The source's URL is what Siigo is given: this command cannot
            // know where the server listens, so it must be told.
            if args.via_source
                && Settings::from_env(&overrides(config.clone(), &db))?
                    .public_url
                    .is_none()
            {
                anyhow::bail!(
                    "--via-source needs HOOKLINE_PUBLIC_URL (the address Siigo reaches the server at, as the server has it); nothing was provisioned"
                );
            }
            with_services_running(
                config,
                &db,
                Runs::OneShotSealing,
                OnSignal::Finish,
                |s| async move { connectors::subscribe(s, &args).await },
            )
            .await
        }
        SiigoCommand::List {
            tenant,
            include_removed,
            json,
            ..
        } => {
            with_services(config, &db, |s| async move {
                connectors::list(s, &tenant, include_removed, json).await
            })
            .await
        }
        SiigoCommand::Remove { id, tenant, .. } => {
            with_services_running(
                config,
                &db,
                Runs::OneShotSealing,
                OnSignal::Finish,
                |s| async move { connectors::remove(s, &id, &tenant).await },
            )
            .await
        }
    }
}

/// One-shot commands log warnings and errors only, unless RUST_LOG says
/// otherwise.
fn quiet_logs(format: LogFormat) {
    // Reading the whole log (audit, replay) takes statements of seconds by
    // design: sqlx's slow-statement warnings would only be noise here.
    telemetry::init_with_default(format, "warn,sqlx::query=error");
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("database: {0}")]
    struct Wrapping(#[source] std::io::Error);

    #[test]
    fn error_chains_name_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = anyhow::Error::new(Wrapping(io)).context("starting the embedded Postgres");
        assert_eq!(
            error_chain(&error),
            "starting the embedded Postgres: database: refused"
        );

        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&plain), "outer: inner");
    }
}
