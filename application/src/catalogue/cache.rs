//! Each tenant's catalogue in memory, for the publish path: the types (the
//! built-ins it never touched, the organisation's, and its own stored ones,
//! each overriding the one before) with their compiled schemas, and its
//! strict setting. An entry is used while the catalogue and tenants read
//! models stand where they stood when it was loaded. When either moved, the
//! tenant's own part is checked (a count and version sum of its and the
//! organisation's stored types, and its tenant row): another tenant's change
//! costs this one two small queries, never a recompile, and a change of its
//! own recompiles only the schemas that changed. One reload per tenant runs
//! at a time; compiling runs as [`SchemaWork`].

use super::per_tenant::PerTenant;
use super::work::SchemaWork;
use crate::error::AppError;
use crate::ports::{CatalogueReadModel, DataSchema, SchemaCompiler, TenantReadModel};
use chrono::{DateTime, Utc};
use hookline_domain::catalogue::{EventTypeSpec, EventTypeState, BUILTINS};
use hookline_domain::{EventType, TenantId};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// Tenants whose catalogues are kept at once; past it the cache starts
/// over (a reload is two small queries).
const MAX_CACHED_TENANTS: usize = 10_000;

/// A type and its compiled schema.
pub(crate) struct Known {
    pub state: EventTypeState,
    pub schema: Option<Arc<dyn DataSchema>>,
    /// Defined or changed by someone (not a built-in as shipped).
    pub stored: bool,
}

pub(crate) struct TenantCatalogue {
    stamp: (u64, u64),
    /// What the stored types of the tenant and the organisation looked
    /// like when loaded.
    fingerprint: (i64, i64),
    pub strict: bool,
    /// When the tenant was created (the built-ins' time).
    pub since: DateTime<Utc>,
    pub types: BTreeMap<EventType, Arc<Known>>,
}

struct CompiledBuiltin {
    name: EventType,
    spec: EventTypeSpec,
    schema: Option<Arc<dyn DataSchema>>,
}

pub(crate) struct CatalogueCache {
    builtins: Arc<Vec<CompiledBuiltin>>,
    tenants: RwLock<HashMap<TenantId, Arc<TenantCatalogue>>>,
    reloads: PerTenant<tokio::sync::Mutex<()>>,
    pub work: SchemaWork,
}

impl CatalogueCache {
    /// Compiles the built-ins' schemas once.
    pub fn new(compiler: &dyn SchemaCompiler) -> Self {
        let builtins = BUILTINS
            .iter()
            .filter_map(|b| {
                let name = EventType::parse(b.name, "name").ok()?;
                let spec = EventTypeSpec::of(b).ok()?;
                let schema = spec.schema.as_ref().and_then(|s| match compiler.compile(s) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::error!(event_type = b.name, errors = ?e, "built-in schema does not compile");
                        None
                    }
                });
                Some(CompiledBuiltin { name, spec, schema })
            })
            .collect();
        Self {
            builtins: Arc::new(builtins),
            tenants: RwLock::new(HashMap::new()),
            reloads: PerTenant::default(),
            work: SchemaWork::default(),
        }
    }

    /// The built-in definition of `name`.
    pub fn builtin(&self, name: &EventType) -> Option<&EventTypeSpec> {
        self.builtins
            .iter()
            .find(|b| &b.name == name)
            .map(|b| &b.spec)
    }

    fn cached(&self, tenant: TenantId) -> Option<Arc<TenantCatalogue>> {
        self.tenants.read().ok()?.get(&tenant).cloned()
    }

    /// The tenant's catalogue, checked again when the read models moved.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn get(
        &self,
        tenant: TenantId,
        read: &dyn CatalogueReadModel,
        tenants: &dyn TenantReadModel,
        compiler: &Arc<dyn SchemaCompiler>,
    ) -> Result<Arc<TenantCatalogue>, AppError> {
        let current = || (read.version(), tenants.version());
        if let Some(c) = self.cached(tenant).filter(|c| c.stamp == current()) {
            return Ok(c);
        }
        // Requests that find it out of date wait for one reload.
        let lock = self.reloads.of(tenant, Default::default);
        let reloaded = {
            let _reloading = lock.lock().await;
            self.reload(tenant, read, tenants, compiler).await
        };
        self.reloads.release(tenant, lock);
        reloaded
    }

    /// [`CatalogueCache::get`] past its quick look, holding the tenant's
    /// reload lock.
    async fn reload(
        &self,
        tenant: TenantId,
        read: &dyn CatalogueReadModel,
        tenants: &dyn TenantReadModel,
        compiler: &Arc<dyn SchemaCompiler>,
    ) -> Result<Arc<TenantCatalogue>, AppError> {
        let stamp = (read.version(), tenants.version());
        let cached = self.cached(tenant);
        if let Some(c) = cached.as_ref().filter(|c| c.stamp == stamp) {
            return Ok(c.clone());
        }
        let scope: &[TenantId] = if tenant.is_organisation() {
            &[TenantId::ORGANISATION]
        } else {
            &[tenant, TenantId::ORGANISATION]
        };
        let fingerprint = read.fingerprint(scope).await?;
        let owner = tenants.get(tenant).await?;
        let (strict, since) = owner.map_or((false, DateTime::<Utc>::UNIX_EPOCH), |t| {
            (t.settings.strict_event_types, t.created_at)
        });
        let types = match cached {
            Some(prev) if prev.fingerprint == fingerprint && prev.since == since => {
                prev.types.clone()
            }
            prev => self.load(tenant, read, since, compiler, prev).await?,
        };
        let catalogue = Arc::new(TenantCatalogue {
            stamp,
            fingerprint,
            strict,
            since,
            types,
        });
        if let Ok(mut map) = self.tenants.write() {
            if map.len() >= MAX_CACHED_TENANTS {
                map.clear();
            }
            map.insert(tenant, catalogue.clone());
        }
        Ok(catalogue)
    }

    /// The tenant's types, with the compiled schemas of `prev` kept where
    /// the schema did not change.
    async fn load(
        &self,
        tenant: TenantId,
        read: &dyn CatalogueReadModel,
        since: DateTime<Utc>,
        compiler: &Arc<dyn SchemaCompiler>,
        prev: Option<Arc<TenantCatalogue>>,
    ) -> Result<BTreeMap<EventType, Arc<Known>>, AppError> {
        let entries = read.entries(tenant).await?;
        let mut types = BTreeMap::new();
        for b in self.builtins.iter() {
            let mut state = EventTypeState::builtin(tenant, b.name.clone(), b.spec.clone());
            state.created_at = since;
            state.updated_at = since;
            types.insert(
                b.name.clone(),
                Arc::new(Known {
                    state,
                    schema: b.schema.clone(),
                    stored: false,
                }),
            );
        }
        // The organisation's types, which every tenant has unless it
        // defined its own of that name.
        let inherited = if tenant.is_organisation() {
            Vec::new()
        } else {
            read.entries(TenantId::ORGANISATION).await?
        };
        // Operational types (`hookline.…`) are Hookline's: changes a
        // tenant stored before they were refused are not shown (their
        // events stay in the log and its history).
        let mut stored: BTreeMap<EventType, EventTypeState> = BTreeMap::new();
        for state in inherited
            .into_iter()
            .chain(entries)
            .filter(|s| !s.name.is_operational())
        {
            stored.insert(state.name.clone(), state);
        }
        if stored.is_empty() {
            return Ok(types);
        }
        // Comparing and compiling large schemas is slow work too.
        let (compiler, builtins) = (compiler.clone(), self.builtins.clone());
        let known = self
            .work
            .run(tenant, move || {
                stored
                    .into_values()
                    .map(|state| {
                        let schema = state.spec.schema.as_ref().and_then(|schema| {
                            let unchanged = prev
                                .as_ref()
                                .and_then(|p| p.types.get(&state.name))
                                .filter(|k| {
                                    k.stored && k.state.spec.schema.as_ref() == Some(schema)
                                })
                                .map(|k| k.schema.clone())
                                .or_else(|| {
                                    builtins
                                        .iter()
                                        .find(|b| {
                                            b.name == state.name
                                                && b.spec.schema.as_ref() == Some(schema)
                                        })
                                        .map(|b| b.schema.clone())
                                });
                            unchanged.unwrap_or_else(|| compile(&compiler, &state.name, schema))
                        });
                        Arc::new(Known {
                            state,
                            schema,
                            stored: true,
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        for k in known {
            types.insert(k.state.name.clone(), k);
        }
        Ok(types)
    }
}

/// A stored type's schema compiled, or none (logged) when it no longer
/// compiles: schemas are checked when defined; one a newer compiler or a
/// newer limit refuses is not enforced.
fn compile(
    compiler: &Arc<dyn SchemaCompiler>,
    name: &EventType,
    schema: &Value,
) -> Option<Arc<dyn DataSchema>> {
    match compiler.compile(schema) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(event_type = %name, errors = ?e, "stored schema does not compile");
            None
        }
    }
}
