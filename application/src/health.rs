//! Readiness: the database answers and every projection has caught up
//! since start.

use crate::ports::Readiness;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How long the database may take to answer a readiness check.
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct HealthService {
    readiness: Arc<dyn Readiness>,
}

impl fmt::Debug for HealthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthService").finish_non_exhaustive()
    }
}

impl HealthService {
    pub fn new(readiness: Arc<dyn Readiness>) -> Self {
        Self { readiness }
    }

    /// Each projection's position when ready.
    ///
    /// # Errors
    /// Why Hookline is not ready, in words.
    pub async fn ready(&self) -> Result<BTreeMap<String, i64>, String> {
        self.readiness.database(DATABASE_TIMEOUT).await?;
        self.readiness.projections()
    }
}
