//! Rebuilding read models from the log, or checking them against it.

use crate::error::AppError;
use crate::ports::{ReadModelRebuilder, RebuildReport};
use hookline_domain::ValidationError;
use std::fmt;
use std::sync::Arc;

pub struct ReplayService {
    rebuilder: Arc<dyn ReadModelRebuilder>,
}

impl fmt::Debug for ReplayService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayService").finish_non_exhaustive()
    }
}

impl ReplayService {
    pub fn new(rebuilder: Arc<dyn ReadModelRebuilder>) -> Self {
        Self { rebuilder }
    }

    /// The read models `name` stands for (`all` for every one).
    ///
    /// # Errors
    /// A validation error naming the known read models.
    pub fn targets(&self, name: &str) -> Result<Vec<&'static str>, AppError> {
        let names = self.rebuilder.names();
        if name == "all" {
            return Ok(names);
        }
        names
            .iter()
            .find(|n| **n == name)
            .map(|n| vec![*n])
            .ok_or_else(|| {
                ValidationError::new(
                    "projection",
                    format!("must be one of {}, or all", names.join(", ")),
                )
                .into()
            })
    }

    /// Rebuilds (or, with `check`, compares) one read model.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn run(&self, name: &str, check: bool) -> Result<RebuildReport, AppError> {
        self.rebuilder.rebuild(name, check).await
    }
}
