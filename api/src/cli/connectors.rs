//! `hookline connectors siigo …`: provision webhook subscriptions at Siigo
//! with the seed tool's own arguments, list and remove them, and run the
//! local Siigo sandbox.

use super::signals::shutdown_signal;
use super::DbArgs;
use crate::routes::connectors::dto::{EventsBody, ProvisionRequest, UpstreamResponse};
use crate::startup::Services;
use clap::{Args, Subcommand};
use hookline_application::pagination::{PageRequest, MAX_LIMIT};
use hookline_application::{Actor, CommandContext, RequestId};
use hookline_domain::tenant::TenantStatus;
use hookline_domain::{AllowList, TenantId, UpstreamId};
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(super) enum ConnectorsCommand {
    /// Siigo: provision webhook subscriptions at Siigo, run the sandbox.
    Siigo {
        #[command(subcommand)]
        command: SiigoCommand,
    },
}

#[derive(Debug, Args)]
pub(super) struct SubscribeArgs {
    /// URL EVENTS USERNAME ACCESS_KEY CLIENT_ID CLIENT_SECRET (without URL
    /// when --via-source). EVENTS is comma-separated, e.g.
    /// products.create,products.update.
    #[arg(
        num_args = 5..=6,
        value_names = ["URL", "EVENTS", "USERNAME", "ACCESS_KEY", "CLIENT_ID", "CLIENT_SECRET"],
        required = true
    )]
    args: Vec<String>,
    /// The tenant the subscriptions are for.
    #[arg(long, value_name = "TENANT_ID")]
    tenant: String,
    /// Create a header-secret source and have Siigo deliver to it (instead
    /// of URL), with the source's secret in a custom header.
    #[arg(long)]
    pub(super) via_source: bool,
    /// A description (sent as the subscription's name).
    #[arg(long, value_name = "D")]
    description: Option<String>,
    /// A custom header Siigo sends with each delivery (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// A Siigo stand-in's base URL (the sandbox) instead of
    /// https://api.siigo.com.
    #[arg(long, value_name = "URL")]
    sandbox_url: Option<String>,
    /// Siigo's Partner-Id (3–100 letters and digits). Default: CLIENT_ID
    /// when it fits, else "Hookline".
    #[arg(long, value_name = "ID", env = "HOOKLINE_SIIGO_PARTNER_ID")]
    partner_id: Option<String>,
    /// Print the recorded subscription as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Subcommand)]
pub(super) enum SiigoCommand {
    /// Provision webhook subscriptions at Siigo (one per event) and record
    /// them; prints Siigo's subscription ids.
    Subscribe(Box<SubscribeArgs>),
    /// List the tenant's Siigo subscriptions.
    List {
        /// The tenant whose subscriptions to list.
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        /// Removed ones too.
        #[arg(long)]
        include_removed: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove a recorded subscription at Siigo and record the removal.
    Remove {
        /// The id Hookline recorded it under.
        id: String,
        /// The tenant it belongs to.
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Run a local stand-in for Siigo (test equipment only).
    Sandbox {
        /// Address to listen on, e.g. 127.0.0.1:8089 (port 0 picks one).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
        listen: String,
    },
}

impl ConnectorsCommand {
    /// The database arguments, for commands that use the database.
    pub(super) fn db(&self) -> Option<&DbArgs> {
        match self {
            Self::Siigo { command } => match command {
                SiigoCommand::Subscribe(a) => Some(&a.db),
                SiigoCommand::List { db, .. } | SiigoCommand::Remove { db, .. } => Some(db),
                SiigoCommand::Sandbox { .. } => None,
            },
        }
    }
}

fn tenant(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(raw).map_err(|e| anyhow::anyhow!("--tenant: {}", e.reason))
}

fn context(tenant_id: TenantId) -> CommandContext {
    CommandContext {
        request_id: RequestId::system("cli", uuid::Uuid::now_v7()),
        tenant_id,
        actor: Actor::System("cli"),
    }
}

/// The seed tool's arguments as the HTTP API's request.
fn provision_request(a: &SubscribeArgs) -> anyhow::Result<ProvisionRequest> {
    let (url, rest) = match (a.via_source, a.args.len()) {
        (false, 6) => (Some(a.args[0].clone()), &a.args[1..]),
        (true, 5) => (None, &a.args[..]),
        (false, _) => anyhow::bail!(
            "expected URL EVENTS USERNAME ACCESS_KEY CLIENT_ID CLIENT_SECRET (6 arguments; with --via-source, leave URL out)"
        ),
        (true, _) => anyhow::bail!(
            "with --via-source, give EVENTS USERNAME ACCESS_KEY CLIENT_ID CLIENT_SECRET (5 arguments, no URL)"
        ),
    };
    let mut headers = BTreeMap::new();
    for h in &a.headers {
        let (k, v) = h
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--header {h}: expected KEY=VALUE"))?;
        headers.insert(k.trim().to_string(), v.to_string());
    }
    Ok(ProvisionRequest {
        url,
        via_source: Some(a.via_source),
        events: Some(EventsBody::Text(rest[0].clone())),
        username: Some(rest[1].clone()),
        access_key: Some(rest[2].clone()),
        client_id: Some(rest[3].clone()),
        client_secret: Some(rest[4].clone()),
        partner_id: a.partner_id.clone(),
        description: a.description.clone(),
        headers: Some(headers),
        sandbox_url: a.sandbox_url.clone(),
    })
}

/// The operator's allow list, plus this machine (a sandbox runs here).
fn local_allow(configured: &AllowList) -> AllowList {
    let mut listed: Vec<String> = configured.nets().iter().map(ToString::to_string).collect();
    listed.extend(["127.0.0.0/8".to_string(), "::1/128".to_string()]);
    AllowList::parse(&listed.join(",")).unwrap_or_else(|_| configured.clone())
}

pub(super) async fn subscribe(s: Services, a: &SubscribeArgs) -> anyhow::Result<ExitCode> {
    let tenant_id = tenant(&a.tenant)?;
    let request = provision_request(a)?;
    let owner = s
        .tenants
        .get(tenant_id)
        .await
        .map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    if owner.status == TenantStatus::Deleted {
        anyhow::bail!("--tenant: tenant '{tenant_id}' has been deleted and cannot be changed");
    }
    let input = request
        .into_provision(&s.siigo_url, &local_allow(&s.allow_list))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let created = s
        .siigo
        .provision(&context(tenant_id), input)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let view = UpstreamResponse::from(created.value);
    if a.json {
        out!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        for id in &view.upstream_ids {
            out!("{id}");
        }
        eprintln!("recorded as upstream subscription {}", view.id);
        if let Some(source) = &view.source {
            eprintln!(
                "source {} receives Siigo's webhooks at {} (its secret travels in the {} header)",
                source.id,
                source.ingest_url,
                source.header_name.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn list(
    s: Services,
    tenant_raw: &str,
    include_removed: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let tenant_id = tenant(tenant_raw)?;
    // This command runs the upstream read model's projection itself (no
    // server may be running): it lists once that has caught up.
    if !s.siigo.settle().await {
        eprintln!(
            "warning: the list may miss upstream subscriptions recorded in the last moments (the read model did not catch up in time)"
        );
    }
    let mut page = PageRequest {
        limit: MAX_LIMIT,
        before: None,
    };
    loop {
        let found = s
            .siigo
            .list(tenant_id, include_removed, page)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for v in found.data {
            let v = UpstreamResponse::from(v);
            if json {
                out!("{}", serde_json::to_string(&v)?);
            } else {
                out!(
                    "{}  {:<7} {}  {}",
                    v.id,
                    v.status.as_str(),
                    v.upstream_ids.join(","),
                    v.url
                );
            }
        }
        match found.next_cursor {
            Some(c) => page = PageRequest::parse(Some(MAX_LIMIT), Some(&c))?,
            None => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn remove(s: Services, id: &str, tenant_raw: &str) -> anyhow::Result<ExitCode> {
    let tenant_id = tenant(tenant_raw)?;
    let id = UpstreamId::parse(id).map_err(|e| anyhow::anyhow!("{}", e.reason))?;
    s.siigo
        .remove(&context(tenant_id), id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    out!("removed {id}");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn sandbox(listen: &str) -> anyhow::Result<ExitCode> {
    super::siigo_sandbox::run(listen, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
