//! Writing the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram with fixed buckets: one atomic add per bucket hit, count
/// and sum (in microseconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Not cumulative; the last one is `+Inf`.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.partition_point(|b| *b < secs);
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Seconds, as Prometheus writes them.
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else {
        format!("{v}")
    }
}

/// An exposition being written.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

impl Text {
    pub fn new() -> Self {
        Self::default()
    }

    /// `# HELP` and `# TYPE` of a family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.out, " {}", number(value));
    }

    pub fn counter(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.out, " {value}");
    }

    /// The `_bucket`, `_sum` and `_count` series of a histogram.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, slot) in h.buckets.iter().enumerate() {
            cumulative += slot.load(Ordering::Relaxed);
            let le = h.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            let le = number(le);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.counter(&bucket, &with_le, cumulative);
        }
        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        self.sample(&format!("{name}_sum"), labels, sum);
        // The count after the buckets: never lower than the +Inf bucket.
        self.counter(&format!("{name}_count"), labels, cumulative);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_ends_in_inf() {
        static B: [f64; 2] = [0.1, 1.0];
        let h = Histogram::new(&B);
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(100));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(3));
        let mut t = Text::new();
        t.family("x_seconds", "histogram", "X.");
        t.histogram("x_seconds", &[("route", "/a\"b")], &h);
        let s = t.finish();
        assert!(
            s.contains("x_seconds_bucket{route=\"/a\\\"b\",le=\"0.1\"} 2\n"),
            "{s}"
        );
        assert!(
            s.contains("x_seconds_bucket{route=\"/a\\\"b\",le=\"1\"} 3\n"),
            "{s}"
        );
        assert!(
            s.contains("x_seconds_bucket{route=\"/a\\\"b\",le=\"+Inf\"} 4\n"),
            "{s}"
        );
        assert!(s.contains("x_seconds_count{route=\"/a\\\"b\"} 4\n"), "{s}");
        assert!(s.contains("x_seconds_sum{route=\"/a\\\"b\"} 3.65\n"), "{s}");
    }
}
