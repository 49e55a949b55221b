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

    /// `targets` (in order) in stages that may each be rebuilt at once:
    /// a read model another target reads is in an earlier stage than
    /// that target. The order within and across stages is kept.
    pub fn stages(&self, targets: &[&'static str]) -> Vec<Vec<&'static str>> {
        let mut stages: Vec<Vec<&'static str>> = Vec::new();
        let mut current: Vec<&'static str> = Vec::new();
        for target in targets {
            let reads = self.rebuilder.reads(target);
            if current.iter().any(|t| reads.contains(t)) {
                stages.push(std::mem::take(&mut current));
            }
            current.push(target);
        }
        if !current.is_empty() {
            stages.push(current);
        }
        stages
    }

    /// A stage's targets in units rebuilt by one run each: the read models
    /// that share their reads of the log, when the stage has all of them,
    /// are one unit (where the first of them was); every other target is
    /// a unit of its own.
    pub fn units(&self, stage: &[&'static str]) -> Vec<Vec<&'static str>> {
        let together = self.rebuilder.read_together();
        let joint = together.len() > 1 && together.iter().all(|t| stage.contains(t));
        let mut units: Vec<Vec<&'static str>> = Vec::with_capacity(stage.len());
        let mut placed = false;
        for target in stage {
            if !joint || !together.contains(target) {
                units.push(vec![target]);
            } else if !placed {
                units.push(
                    stage
                        .iter()
                        .copied()
                        .filter(|t| together.contains(t))
                        .collect(),
                );
                placed = true;
            }
        }
        units
    }

    /// Rebuilds (or, with `check`, compares) one read model.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn run(&self, name: &str, check: bool) -> Result<RebuildReport, AppError> {
        self.rebuilder.rebuild(name, check).await
    }

    /// Runs one of [`Self::units`]: a result for each of its read models,
    /// in order.
    pub async fn run_unit(
        &self,
        unit: &[&'static str],
        check: bool,
    ) -> Vec<Result<RebuildReport, AppError>> {
        match unit {
            [one] => vec![self.run(one, check).await],
            several => self.rebuilder.rebuild_together(several, check).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    struct Rebuilder;

    #[async_trait]
    impl ReadModelRebuilder for Rebuilder {
        fn names(&self) -> Vec<&'static str> {
            vec!["a", "b", "c", "d", "e"]
        }

        fn reads(&self, name: &str) -> &'static [&'static str] {
            match name {
                "d" => &["b"],
                "e" => &["z"],
                _ => &[],
            }
        }

        async fn rebuild(&self, _: &str, _: bool) -> Result<RebuildReport, AppError> {
            Err(AppError::Internal("not in this test".into()))
        }

        fn read_together(&self) -> &'static [&'static str] {
            &["c", "e"]
        }
    }

    #[test]
    fn read_models_that_share_their_reads_are_one_unit_where_the_first_was() {
        let replay = ReplayService::new(Arc::new(Rebuilder));
        assert_eq!(
            replay.units(&["a", "c", "d", "e"]),
            vec![vec!["a"], vec!["c", "e"], vec!["d"]]
        );
        assert_eq!(replay.units(&["e", "c"]), vec![vec!["e", "c"]]);
        // Without all of them, each is a unit of its own.
        assert_eq!(replay.units(&["c", "d"]), vec![vec!["c"], vec!["d"]]);
        assert_eq!(replay.units(&["c"]), vec![vec!["c"]]);
        assert!(replay.units(&[]).is_empty());
    }

    #[test]
    fn a_read_model_another_one_reads_is_rebuilt_in_an_earlier_stage() {
        let replay = ReplayService::new(Arc::new(Rebuilder));
        let all = replay.targets("all").unwrap();
        assert_eq!(
            replay.stages(&all),
            vec![vec!["a", "b", "c"], vec!["d", "e"]]
        );
        // Alone, or without what it reads, one stage.
        assert_eq!(replay.stages(&["d"]), vec![vec!["d"]]);
        assert_eq!(replay.stages(&["a", "d", "e"]), vec![vec!["a", "d", "e"]]);
        assert!(replay.stages(&[]).is_empty());
    }
}
