//! One value per tenant, made on first use and forgotten once nobody holds
//! it: the per-tenant locks of the catalogue's reloads and of its schema
//! work.

use hookline_domain::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Past this many tenants' values, those nobody holds are dropped before
/// another is made (a caller cut off before [`PerTenant::release`] leaves
/// its value behind).
const MAX_KEPT: usize = 10_000;

pub(crate) struct PerTenant<T>(Mutex<HashMap<TenantId, Arc<T>>>);

impl<T> Default for PerTenant<T> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<T> PerTenant<T> {
    /// The tenant's value (`make` makes it when it has none).
    pub fn of(&self, tenant: TenantId, make: impl FnOnce() -> T) -> Arc<T> {
        match self.0.lock() {
            Ok(mut map) => {
                if map.len() >= MAX_KEPT {
                    map.retain(|_, v| Arc::strong_count(v) > 1);
                }
                map.entry(tenant)
                    .or_insert_with(|| Arc::new(make()))
                    .clone()
            }
            // A poisoned map: a value of its own, shared with nobody.
            Err(_) => Arc::new(make()),
        }
    }

    /// Gives back what [`PerTenant::of`] gave; the tenant's value is
    /// forgotten when nobody else holds or waits for it.
    pub fn release(&self, tenant: TenantId, held: Arc<T>) {
        if let Ok(mut map) = self.0.lock() {
            if Arc::strong_count(&held) == 2 {
                map.remove(&tenant);
            }
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.lock().map_or(true, |m| m.is_empty())
    }
}
