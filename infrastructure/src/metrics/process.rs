//! Process metrics from Linux's `/proc` (absent elsewhere): CPU time,
//! memory, file descriptors and start time, under the names Prometheus
//! client libraries use.

use super::text::Text;

/// Clock ticks per second of `/proc/self/stat` times (`USER_HZ`, 100 on
/// every Linux architecture Hookline builds for).
const TICKS: f64 = 100.0;

/// The fields of `/proc/self/stat` after the command name, from `state`
/// (field 3) on.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

fn field(fields: &[&str], n: usize) -> Option<f64> {
    // Field n (1-based, as in proc(5)) is at n - 3 after the name.
    fields.get(n.checked_sub(3)?)?.parse().ok()
}

fn status_kb(status: &str, key: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb * 1024.0)
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn max_fds() -> Option<f64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}

/// Writes the `process_*` series this platform offers.
pub fn render(t: &mut Text) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields = stat_fields(&stat);
    if let (Some(user), Some(system)) = (field(&fields, 14), field(&fields, 15)) {
        t.family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        t.sample("process_cpu_seconds_total", &[], (user + system) / TICKS);
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(rss) = status_kb(&status, "VmRSS:") {
            t.family(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            t.sample("process_resident_memory_bytes", &[], rss);
        }
        if let Some(vm) = status_kb(&status, "VmSize:") {
            t.family(
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
            );
            t.sample("process_virtual_memory_bytes", &[], vm);
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        t.family(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        t.sample("process_open_fds", &[], dir.count() as f64);
    }
    if let Some(max) = max_fds() {
        t.family(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
        );
        t.sample("process_max_fds", &[], max);
    }
    if let (Some(start), Some(boot)) = (field(&fields, 22), boot_time()) {
        t.family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
        );
        t.sample("process_start_time_seconds", &[], boot + start / TICKS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_spaces_and_parentheses_in_the_name() {
        let stat =
            "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 12345 1000 200";
        let f = stat_fields(stat);
        assert_eq!(field(&f, 14), Some(250.0));
        assert_eq!(field(&f, 15), Some(50.0));
        assert_eq!(field(&f, 22), Some(12345.0));
    }

    #[test]
    fn this_process_reports_memory_and_descriptors() {
        let mut t = Text::new();
        render(&mut t);
        let s = t.finish();
        if cfg!(target_os = "linux") {
            assert!(s.contains("process_resident_memory_bytes "), "{s}");
            assert!(s.contains("process_open_fds "), "{s}");
            assert!(s.contains("process_start_time_seconds "), "{s}");
        }
    }
}
