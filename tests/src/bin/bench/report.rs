//! Results: percentiles, the table and the JSON.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every accepted delivery arrived, correctly signed.
    Complete,
    /// Something was lost or badly signed.
    Failed,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub outcome: Outcome,
    /// (metric, value, unit, target) in display order.
    pub metrics: Vec<(String, f64, &'static str, Option<Target>)>,
    pub notes: Vec<String>,
    /// What `Complete` and `Failed` mean for this scenario.
    pub verdicts: (&'static str, &'static str),
}

#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, v: f64) -> bool {
        match self {
            Self::AtLeast(t) => v >= t,
            Self::AtMost(t) => v <= t,
        }
    }
    fn text(self) -> String {
        match self {
            Self::AtLeast(t) => format!("≥ {t}"),
            Self::AtMost(t) => format!("≤ {t}"),
        }
    }
}

impl Report {
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.to_string(),
            outcome: Outcome::Complete,
            metrics: Vec::new(),
            notes: Vec::new(),
            verdicts: (
                "every accepted delivery arrived, signatures valid",
                "**FAILED: lost or badly signed deliveries**",
            ),
        }
    }

    pub fn metric(&mut self, name: &str, value: f64, unit: &'static str, target: Option<Target>) {
        self.metrics.push((name.to_string(), value, unit, target));
    }

    pub fn to_json(&self) -> HashMap<&'static str, serde_json::Value> {
        let metrics: serde_json::Map<String, serde_json::Value> = self
            .metrics
            .iter()
            .map(|(n, v, unit, t)| {
                (
                    n.clone(),
                    serde_json::json!({"value": v, "unit": unit, "target": t.map(Target::text), "met": t.map(|t| t.met(*v))}),
                )
            })
            .collect();
        HashMap::from([
            ("scenario", serde_json::json!(self.scenario)),
            (
                "complete",
                serde_json::json!(self.outcome == Outcome::Complete),
            ),
            ("metrics", serde_json::Value::Object(metrics)),
            ("notes", serde_json::json!(self.notes)),
            ("date", serde_json::json!(chrono::Utc::now().to_rfc3339())),
        ])
    }
}

/// The `p`th percentile (0–100) of `values`.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (values.len() as f64 - 1.0)).round() as usize;
    values[rank.min(values.len() - 1)]
}

pub fn print(reports: &[Report]) {
    println!();
    println!("| scenario | metric | value | target | met |");
    println!("|---|---|---|---|---|");
    for r in reports {
        for (name, value, unit, target) in &r.metrics {
            let shown = if value.abs() >= 100.0 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
            let (t, met) = match target {
                Some(t) => (t.text(), if t.met(*value) { "yes" } else { "**no**" }),
                None => (String::new(), ""),
            };
            println!("| {} | {name} | {shown} | {t} | {met} |", r.scenario);
        }
        let status = match r.outcome {
            Outcome::Complete => r.verdicts.0,
            Outcome::Failed => r.verdicts.1,
        };
        println!("| {} | result | {status} | | |", r.scenario);
        for note in &r.notes {
            println!("| {} | note | {note} | | |", r.scenario);
        }
    }
}
