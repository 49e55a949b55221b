//! Each tenant's catalogue in memory, for the publish path: the types (the
//! built-ins it never touched, the organisation's, and its own stored ones,
//! each overriding the one before) with their compiled schemas, and its
//! strict setting. An entry is used while the catalogue
//! and tenants read models stand where they stood when it was loaded, and
//! reloaded on first use after either moved.

use crate::error::AppError;
use crate::ports::{CatalogueReadModel, DataSchema, SchemaCompiler, TenantReadModel};
use chrono::{DateTime, Utc};
use hookline_domain::catalogue::{EventTypeSpec, EventTypeState, BUILTINS};
use hookline_domain::{EventType, TenantId};
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
    builtins: Vec<CompiledBuiltin>,
    tenants: RwLock<HashMap<TenantId, Arc<TenantCatalogue>>>,
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
            builtins,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// The built-in definition of `name`.
    pub fn builtin(&self, name: &EventType) -> Option<&EventTypeSpec> {
        self.builtins
            .iter()
            .find(|b| &b.name == name)
            .map(|b| &b.spec)
    }

    /// The tenant's catalogue, loaded again when the read models moved.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn get(
        &self,
        tenant: TenantId,
        read: &dyn CatalogueReadModel,
        tenants: &dyn TenantReadModel,
        compiler: &dyn SchemaCompiler,
    ) -> Result<Arc<TenantCatalogue>, AppError> {
        let stamp = (read.version(), tenants.version());
        if let Ok(map) = self.tenants.read() {
            if let Some(c) = map.get(&tenant).filter(|c| c.stamp == stamp) {
                return Ok(c.clone());
            }
        }
        let entries = read.entries(tenant).await?;
        let owner = tenants.get(tenant).await?;
        let (strict, since) = owner.map_or((false, DateTime::<Utc>::UNIX_EPOCH), |t| {
            (t.settings.strict_event_types, t.created_at)
        });
        let mut types = BTreeMap::new();
        for b in &self.builtins {
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
        for state in inherited
            .into_iter()
            .chain(entries)
            .filter(|s| !s.name.is_operational())
        {
            let schema = self.compiled(&state, compiler);
            types.insert(
                state.name.clone(),
                Arc::new(Known {
                    state,
                    schema,
                    stored: true,
                }),
            );
        }
        let catalogue = Arc::new(TenantCatalogue {
            stamp,
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

    /// A stored type's compiled schema (the built-in's when unchanged).
    fn compiled(
        &self,
        state: &EventTypeState,
        compiler: &dyn SchemaCompiler,
    ) -> Option<Arc<dyn DataSchema>> {
        let schema = state.spec.schema.as_ref()?;
        if let Some(b) = self
            .builtins
            .iter()
            .find(|b| b.name == state.name && b.spec.schema.as_ref() == Some(schema))
        {
            return b.schema.clone();
        }
        match compiler.compile(schema) {
            Ok(c) => Some(c),
            Err(e) => {
                // Schemas are checked when defined; one that no longer
                // compiles (a newer compiler) is not enforced.
                tracing::error!(event_type = %state.name, errors = ?e, "stored schema does not compile");
                None
            }
        }
    }
}
