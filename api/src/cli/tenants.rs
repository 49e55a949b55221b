//! `hookline tenants …`: the admin API's tenant and key commands, on the
//! command line.

use super::{operator, DbArgs};
use crate::startup::Services;
use clap::Subcommand;
use hookline_application::pagination::{PageRequest, MAX_LIMIT};
use hookline_application::tenants::TenantView;
use hookline_domain::tenant::TenantName;
use hookline_domain::TenantId;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub(super) enum TenantsCommand {
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
    /// List tenants, newest first.
    List {
        /// Deleted ones too.
        #[arg(long)]
        include_deleted: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Show one tenant.
    Show {
        /// The tenant's id.
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Rename a tenant.
    Rename {
        /// The tenant's id.
        id: String,
        /// The new display name.
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Delete a tenant (soft): its keys stop working and its subscriptions
    /// are deleted.
    Delete {
        /// The tenant's id.
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage a tenant's API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// Issue another key (printed once).
    Create {
        /// The tenant's id.
        tenant: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List a tenant's keys (masked).
    List {
        /// The tenant's id.
        tenant: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a key: it is refused from now on, by every process.
    Revoke {
        /// The tenant's id.
        tenant: String,
        /// The key's id (from `keys list`).
        key_id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

impl TenantsCommand {
    pub(super) fn db(&self) -> &DbArgs {
        match self {
            Self::Create { db, .. }
            | Self::List { db, .. }
            | Self::Show { db, .. }
            | Self::Rename { db, .. }
            | Self::Delete { db, .. } => db,
            Self::Keys { command } => match command {
                KeysCommand::Create { db, .. }
                | KeysCommand::List { db, .. }
                | KeysCommand::Revoke { db, .. } => db,
            },
        }
    }
}

fn tenant(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(raw).map_err(|e| anyhow::anyhow!("{}", e.reason))
}

fn name(raw: &str) -> anyhow::Result<TenantName> {
    TenantName::parse(raw).map_err(|e| anyhow::anyhow!("{e}"))
}

fn line(t: &TenantView) -> String {
    format!(
        "{}  {:<8} {} key{}  {}",
        t.id,
        t.status.as_str(),
        t.active_keys,
        if t.active_keys == 1 { " " } else { "s" },
        t.name
    )
}

fn json(t: &TenantView) -> serde_json::Value {
    serde_json::json!({
        "id": t.id, "name": t.name, "status": t.status, "active_keys": t.active_keys,
        "created_at": t.created_at, "updated_at": t.updated_at,
    })
}

pub(super) async fn run(s: Services, command: TenantsCommand) -> anyhow::Result<ExitCode> {
    let ctx = operator();
    match command {
        TenantsCommand::Create { name: n, json, .. } => {
            let created = s.tenants.create(&ctx, name(&n)?).await?.value;
            if json {
                out!(
                    "{{\"tenant_id\": \"{}\", \"api_key\": \"{}\"}}",
                    created.tenant.id,
                    created.key.api_key
                );
            } else {
                out!("Created tenant '{}'.", created.tenant.name);
                out!("  tenant_id: {}", created.tenant.id);
                out!("  api_key:   {}", created.key.api_key);
                out!("The API key is shown only this once; store it now.");
            }
        }
        TenantsCommand::List {
            include_deleted,
            json: as_json,
            ..
        } => {
            let mut page = PageRequest {
                limit: MAX_LIMIT,
                before: None,
            };
            loop {
                let tenants = s.tenants.list(include_deleted, page).await?;
                for t in &tenants.data {
                    if as_json {
                        out!("{}", json(t));
                    } else {
                        out!("{}", line(t));
                    }
                }
                let Some(last) = tenants
                    .data
                    .last()
                    .filter(|_| tenants.next_cursor.is_some())
                else {
                    break;
                };
                page.before = Some((last.created_at, *last.id.as_uuid()));
            }
        }
        TenantsCommand::Show { id, .. } => {
            let t = s.tenants.get(tenant(&id)?).await?;
            out!("{}", serde_json::to_string_pretty(&json(&t))?);
        }
        TenantsCommand::Rename { id, name: n, .. } => {
            let t = s.tenants.rename(&ctx, tenant(&id)?, name(&n)?).await?;
            out!("{}", line(&t.value));
        }
        TenantsCommand::Delete { id, .. } => {
            if s.tenants.delete(&ctx, tenant(&id)?).await?.value {
                out!("tenant {id} deleted: its keys no longer work");
            } else {
                out!("tenant {id} was already deleted (its subscriptions are deleted too)");
            }
        }
        TenantsCommand::Keys { command } => keys(&s, command).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn keys(s: &Services, command: KeysCommand) -> anyhow::Result<()> {
    let ctx = operator();
    match command {
        KeysCommand::Create { tenant: t, .. } => {
            let key = s.tenants.issue_key(&ctx, tenant(&t)?).await?.value;
            out!("key_id:  {}", key.id);
            out!("api_key: {}", key.api_key);
            out!("The API key is shown only this once; store it now.");
        }
        KeysCommand::List { tenant: t, .. } => {
            for k in s.tenants.keys(tenant(&t)?).await? {
                let state = match (k.active, k.revoked_at) {
                    (true, Some(until)) => format!("works until {until}"),
                    (true, None) => "active".to_string(),
                    (false, Some(at)) => format!("revoked {at}"),
                    (false, None) => "inactive (tenant deleted)".to_string(),
                };
                out!("{}  {:<28} {}", k.id, k.hint, state);
            }
        }
        KeysCommand::Revoke {
            tenant: t, key_id, ..
        } => {
            let key = Uuid::parse_str(key_id.trim())
                .map_err(|_| anyhow::anyhow!("'{key_id}' is not a key id (expected a UUID)"))?;
            s.tenants.revoke_key(&ctx, tenant(&t)?, key).await?;
            out!("key {key} revoked: it is refused from now on");
        }
    }
    Ok(())
}
