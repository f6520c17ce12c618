//! What the benchmark reads from the operating system: resident memory and
//! CPU time of process trees, from `/proc`, spare ports, and the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Resident memory of one process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `pid` and all its descendants.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(parent) = stat_field(child, 4) {
            parents.push((child, parent as u32));
        }
    }
    let mut found = vec![pid];
    let mut index = 0;
    while index < found.len() {
        let current = found[index];
        found.extend(parents.iter().filter(|(_, p)| *p == current).map(|(c, _)| *c));
        index += 1;
    }
    found
}

/// CPU time (user + system) used so far by `pid` and its descendants.
pub fn cpu_time(pid: u32) -> Duration {
    let ticks_per_second = rustix::param::clock_ticks_per_second().max(1) as f64;
    let ticks: u64 =
        tree(pid).into_iter().map(|p| stat_field(p, 14).unwrap_or(0) + stat_field(p, 15).unwrap_or(0)).sum();
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

/// Field `number` of `/proc/<pid>/stat`, numbered from 1 as in proc(5):
/// 4 is the parent, 14 and 15 user and system time in ticks.
fn stat_field(pid: u32, number: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces;
    // field 3 is the first after it.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(number - 3)?.parse().ok()
}

/// Microseconds since the epoch: the clock the services stamp each job
/// state's writing with (`update_time`), as they run on this machine.
pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64
}

/// How long ago `job`'s state was written: the delay of its delivery,
/// when read as it arrives.
pub fn since_written(job: &docconv::proto::v1::Job) -> Duration {
    let written = job
        .update_time
        .and_then(|t| SystemTime::try_from(t).ok())
        .map_or(0, |t| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64);
    Duration::from_micros(now_micros().saturating_sub(written))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// Raises the open-file limit to its maximum: thousands of watchers need
/// thousands of sockets, in this process and the services it starts.
pub fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

/// Samples the resident memory of some processes until stopped, keeping
/// each one's peak.
pub struct MemorySampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<u64>>>,
}

impl MemorySampler {
    pub fn start(pids: Vec<u32>) -> MemorySampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peaks = vec![0u64; pids.len()];
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for (peak, pid) in peaks.iter_mut().zip(&pids) {
                    *peak = (*peak).max(rss_kib(*pid));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peaks
        });
        MemorySampler { stop, thread: Some(thread) }
    }

    /// Peak resident memory of each process, in KiB.
    pub fn stop(mut self) -> Vec<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default()
    }
}
