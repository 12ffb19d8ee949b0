//! The standard `process_*` metrics every Prometheus client library exports on
//! Linux, read from `/proc/self` at scrape time the way client_golang's
//! process collector (through prometheus/procfs) reads them.

use std::fs;

/// Clock ticks per second in `/proc` times. The kernel fixes USER_HZ at 100
/// on every architecture it exports it to user space; procfs assumes the same
/// rather than ask sysconf (which, from Rust, would be this crate's second
/// `unsafe` block).
const USER_HZ: f64 = 100.0;

/// One reading of the process's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessMetrics {
    pub cpu_seconds: f64,
    pub resident_memory_bytes: f64,
    pub virtual_memory_bytes: f64,
    pub open_fds: f64,
    pub max_fds: f64,
    pub start_time_seconds: f64,
}

impl ProcessMetrics {
    /// Reads `/proc/self`; `None` where it is missing or unreadable (not
    /// Linux, a restricted sandbox), and the families are then left out.
    pub fn read() -> Option<ProcessMetrics> {
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let limits = fs::read_to_string("/proc/self/limits").ok()?;
        let boot_time = fs::read_to_string("/proc/stat").ok()?;
        let open_fds = fs::read_dir("/proc/self/fd").ok()?.count();
        parse(&stat, &status, &limits, &boot_time, open_fds)
    }
}

fn parse(stat: &str, status: &str, limits: &str, proc_stat: &str, open_fds: usize) -> Option<ProcessMetrics> {
    // The command name, in parentheses, may hold spaces and parentheses of
    // its own: the fields that follow start after the last ')'. Index 0 there
    // is field 3 (state) of proc(5).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |number: usize| fields.get(number - 3)?.parse::<f64>().ok();
    let (utime, stime, start_ticks, vsize) = (field(14)?, field(15)?, field(22)?, field(23)?);
    let resident_kib = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?.split_whitespace().next()?;
    let max_fds = limits.lines().find_map(|line| line.strip_prefix("Max open files"))?.split_whitespace().next()?;
    let boot_time = proc_stat.lines().find_map(|line| line.strip_prefix("btime "))?.trim().parse::<f64>().ok()?;
    Some(ProcessMetrics {
        cpu_seconds: (utime + stime) / USER_HZ,
        resident_memory_bytes: resident_kib.parse::<f64>().ok()? * 1024.0,
        virtual_memory_bytes: vsize,
        open_fds: open_fds as f64,
        // "unlimited" has no number; Go's client reports it as the largest
        // value, and so does this.
        max_fds: max_fds.parse().unwrap_or(f64::from(u32::MAX)),
        start_time_seconds: boot_time + start_ticks / USER_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_proc5_lays_them_out() {
        // A command name with a space and a parenthesis, as `comm` allows.
        let stat = "4242 (code (dep) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 9 0 12345 \
                    1073741824 8000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let status = "Name:\tcodedeploy-expo\nVmSize:\t 1048576 kB\nVmRSS:\t   32000 kB\nThreads:\t9\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let proc_stat = "cpu  1 2 3\nbtime 1764800000\nprocesses 10\n";
        let read = parse(stat, status, limits, proc_stat, 17).expect("parses");
        assert_eq!(
            read,
            ProcessMetrics {
                cpu_seconds: 3.0,
                resident_memory_bytes: 32_000.0 * 1024.0,
                virtual_memory_bytes: 1_073_741_824.0,
                open_fds: 17.0,
                max_fds: 1024.0,
                start_time_seconds: 1_764_800_000.0 + 123.45,
            }
        );
    }

    #[test]
    fn this_process_reads_plausibly() {
        let read = ProcessMetrics::read().expect("tests run on Linux");
        assert!(read.resident_memory_bytes > 0.0 && read.virtual_memory_bytes >= read.resident_memory_bytes);
        assert!(read.open_fds >= 3.0 && read.open_fds <= read.max_fds, "{read:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs_f64();
        assert!(read.start_time_seconds <= now + 1.0 && read.start_time_seconds > now - 86_400.0, "{read:?}");
    }
}
