//! Resource use of this process (Linux `/proc/self`): memory, and CPU time, which tells how
//! much of a figure is the code and how much the machine's other load.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const USER_HZ: u64 = 100;

/// Field of `stat` (1-based, as in `proc(5)`) where utime is; stime follows.
const UTIME_FIELD: usize = 14;
/// Field of `stat` where cutime (waited-for children) is; cstime follows.
const CUTIME_FIELD: usize = 16;

/// CPU time (user + system, all threads) this process has used, if the platform reports it.
pub fn cpu_time() -> Option<Duration> {
    stat_cpu(UTIME_FIELD)
}

/// CPU time used by the child processes this process has waited for (e.g. `node`).
pub fn children_cpu_time() -> Option<Duration> {
    stat_cpu(CUTIME_FIELD)
}

fn stat_cpu(field: usize) -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat, field).map(|ticks| Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// The sum of fields `field` and `field + 1` of `stat`; the command name (field 2) may hold
/// spaces, so fields are counted after its closing parenthesis (which ends field 2).
fn parse_cpu_ticks(stat: &str, field: usize) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(field.checked_sub(3)?);
    let first: u64 = fields.next()?.parse().ok()?;
    let second: u64 = fields.next()?.parse().ok()?;
    Some(first + second)
}

/// CPU time (user + system) of this process's live threads whose name starts with `prefix`
/// (a runtime's `thread_name`), if the platform reports it. Threads that already exited are
/// not counted.
pub fn threads_cpu_time(prefix: &str) -> Option<Duration> {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        // A thread may exit between the listing and the read: it is skipped.
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !name.starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        ticks += parse_cpu_ticks(&stat, UTIME_FIELD)?;
    }
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Peak resident set size (`VmHWM`) in bytes, if the platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Current resident set size (`VmRSS`) in bytes, if the platform reports it.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib(&status, field)
}

fn parse_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Formats bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_fields_14_and_15() {
        let stat = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 50 7 8 20 0 4";
        assert_eq!(parse_cpu_ticks(stat, UTIME_FIELD), Some(300));
        assert_eq!(parse_cpu_ticks(stat, CUTIME_FIELD), Some(15));
        assert_eq!(parse_cpu_ticks("garbage", UTIME_FIELD), None);
    }

    #[test]
    fn reads_the_kib_figure_of_a_field() {
        let status = "Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t 42 kB\n";
        assert_eq!(parse_kib(status, "VmHWM:"), Some(123_456));
        assert_eq!(parse_kib(status, "VmRSS:"), Some(42));
        assert_eq!(parse_kib(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_its_memory() {
        assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        assert!(rss_bytes().is_some_and(|b| b > 0));
        assert!(cpu_time().is_some());
        assert!(children_cpu_time().is_some());
    }
}
