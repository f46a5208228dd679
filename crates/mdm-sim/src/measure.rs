//! Measuring a server from outside: CPU time of processes from
//! `/proc/<pid>/stat`, latency percentiles, database counters, and a helper
//! that runs CPU-bound preparation on every core. Shared by `mdm-sim load`
//! and `mdm-load`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// utime + stime of a process, in milliseconds.
pub fn cpu_ms(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0) // USER_HZ is 100 on Linux
}

/// The utime + stime of this process's children that have ended and were
/// waited for (cutime + cstime), in milliseconds.
pub fn children_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(13)?.parse::<f64>().ok()? + f.get(14)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

/// This process's own utime + stime, in milliseconds.
pub fn self_cpu_ms() -> Option<f64> {
    cpu_ms(Some(std::process::id()))
}

/// Busy time of the whole machine (user+nice+system+irq+softirq), in milliseconds.
pub fn machine_busy_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy = [0usize, 1, 2, 5, 6]
        .iter()
        .filter_map(|i| f.get(*i))
        .sum::<f64>();
    Some(busy * 10.0)
}

/// CPU times of several processes (those that exist).
pub fn cpu_sum_ms(pids: &[u32]) -> Vec<(u32, f64)> {
    pids.iter()
        .filter_map(|p| cpu_ms(Some(*p)).map(|ms| (*p, ms)))
        .collect()
}

/// CPU used between two [`cpu_sum_ms`] readings by the processes of the
/// second (a process that started in between counts from zero).
pub fn cpu_delta_ms(before: &[(u32, f64)], after: &[(u32, f64)]) -> f64 {
    after
        .iter()
        .map(|(p, a)| a - before.iter().find(|(q, _)| q == p).map_or(0.0, |(_, b)| *b))
        .sum()
}

/// The `p` quantile (0..=1) of sorted latencies, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Runs a shell command and reads whitespace-separated PIDs from its output.
pub fn pids_from_command(cmd: &str) -> Result<Vec<u32>, String> {
    let out = std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Runs a counters command: "name value" per line.
pub fn read_counters(cmd: &str) -> Result<BTreeMap<String, f64>, String> {
    let out = std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| format!("counters command: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "counters command failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split(|c: char| c.is_whitespace() || c == '|');
            let k = it.next()?.trim();
            let v = it.find(|v| !v.is_empty())?.trim().parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect())
}

/// Reads the counters once a second until two readings agree (at most 15 s;
/// idle PostgreSQL backends flush their statistics about once a second).
pub async fn settled_counters(cmd: &str) -> Result<BTreeMap<String, f64>, String> {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut last = read_counters(cmd)?;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = read_counters(cmd)?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

/// A worker thread of [`parallel`] panicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a worker thread panicked")]
pub struct WorkerPanicked;

/// Runs `f(i)` for i in 0..n on all cores (CPU-bound preparation and checks),
/// results in index order.
pub fn parallel<T: Send, E: Send + From<WorkerPanicked>>(
    n: usize,
    f: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let mut all: Vec<(usize, T)> = Vec::with_capacity(n);
    let parts: Vec<Result<Vec<(usize, T)>, E>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        out.push((i, f(i)?));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(E::from(WorkerPanicked))))
            .collect()
    });
    for part in parts {
        all.extend(part?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_parallel_order() {
        let lat: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&lat, 0.5), 51.0);
        assert_eq!(percentile(&lat, 0.99), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        let squares = parallel(50, |i| Ok::<_, WorkerPanicked>(i * i)).unwrap();
        assert_eq!(squares[7], 49);
        let failed = parallel(10, |i| if i == 3 { Err(WorkerPanicked) } else { Ok(i) });
        assert_eq!(failed, Err(WorkerPanicked));
        assert!(cpu_ms(Some(std::process::id())).is_some());
    }
}
