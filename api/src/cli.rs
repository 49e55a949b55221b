//! The `hookline` command line.
//!
//! ```text
//! hookline serve   [--listen ADDR] [--data-dir DIR] [--database-url URL] [--role api|worker|all]
//! hookline migrate [--data-dir DIR] [--database-url URL]
//! hookline tenants create NAME [--json] [--data-dir DIR] [--database-url URL]
//! ```
//! Without a database URL (flag, `DATABASE_URL` or `HOOKLINE_DATABASE_URL`)
//! every command uses the embedded Postgres under the data directory.

use crate::startup::{Application, OpenDatabase};
use clap::{Args, Parser, Subcommand};
use hookline_application::tenants::TenantService;
use hookline_infrastructure::clock::SystemClock;
use hookline_infrastructure::config::{CliOverrides, LogFormat, Settings};
use hookline_infrastructure::postgres::tenants::PgTenantDirectory;
use hookline_infrastructure::telemetry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API, projections and delivery workers.
    Serve {
        /// Address to listen on. Default: 127.0.0.1:8080
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Which parts to run: api, worker or all.
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
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
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Create a tenant and print its id and API key (shown once).
    Create {
        /// The tenant's name.
        name: String,
        /// Print exactly {"tenant_id": "...", "api_key": "..."}.
        #[arg(long)]
        json: bool,
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

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen, role, db } => {
            let mut o = overrides(cli.config, &db);
            o.listen = listen;
            o.role = role;
            let settings = Settings::from_env(&o)?;
            telemetry::init(settings.log_format);
            let app = Application::build(settings).await?;
            app.run(shutdown_signal()).await
        }
        Command::Migrate { db } => {
            let settings = Settings::from_env(&overrides(cli.config, &db))?;
            quiet_logs(settings.log_format);
            let database = OpenDatabase::open(&settings).await?;
            database.close(false).await;
            println!("migrations applied");
            Ok(())
        }
        Command::Tenants {
            command: TenantsCommand::Create { name, json, db },
        } => {
            let settings = Settings::from_env(&overrides(cli.config, &db))?;
            quiet_logs(settings.log_format);
            let database = OpenDatabase::open(&settings).await?;
            let service = TenantService::new(
                Arc::new(PgTenantDirectory::new(database.db.pool.clone())),
                Arc::new(SystemClock),
            );
            let result = service.create(&name).await;
            database.close(false).await;
            let tenant = result?;
            if json {
                println!(
                    "{{\"tenant_id\": \"{}\", \"api_key\": \"{}\"}}",
                    tenant.tenant_id, tenant.api_key
                );
            } else {
                println!("Created tenant '{}'.", name.trim());
                println!("  tenant_id: {}", tenant.tenant_id);
                println!("  api_key:   {}", tenant.api_key);
                println!("The API key is shown only this once; store it now.");
            }
            Ok(())
        }
    }
}

/// One-shot commands log warnings and errors only, unless RUST_LOG says
/// otherwise.
fn quiet_logs(format: LogFormat) {
    telemetry::init_with_default(format, "warn");
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
