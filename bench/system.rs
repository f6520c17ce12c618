//! What the benchmark reads from the operating system: resident memory and
//! CPU time of process trees, from `/proc`, spare ports, and the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Resident memory of one process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    kib_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// The value of the `Name:   123 kB` line starting with `name` in the
/// `/proc` file at `path`; 0 if there is none (the process is gone).
fn kib_field(path: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(name))
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

/// CPU time (user + system) used so far by `pid` and its descendants,
/// counting the descendants that have already exited and been waited for
/// (a recycled worker's time stays in the sum once it is gone).
pub fn cpu_time(pid: u32) -> Duration {
    let ticks: u64 = tree(pid)
        .into_iter()
        .map(|p| [14, 15, 16, 17].map(|f| stat_field(p, f).unwrap_or(0)).iter().sum::<u64>())
        .sum();
    from_ticks(ticks)
}

/// CPU time of this process's children that have exited and been waited
/// for: what a short-lived child such as `soffice` cost, read around it.
pub fn reaped_children_cpu_time() -> Duration {
    let me = std::process::id();
    from_ticks(stat_field(me, 16).unwrap_or(0) + stat_field(me, 17).unwrap_or(0))
}

fn from_ticks(ticks: u64) -> Duration {
    let ticks_per_second = rustix::param::clock_ticks_per_second().max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

/// Proportional set size of one process, in KiB: its resident pages, each
/// shared page divided among the processes sharing it, so the sum over a
/// tree of forked workers counts shared LibreOffice pages once.
pub fn pss_kib(pid: u32) -> u64 {
    kib_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// Field `number` of `/proc/<pid>/stat`, numbered from 1 as in proc(5):
/// 4 is the parent, 14 and 15 user and system time in ticks, 16 and 17
/// those of its children that have exited and been waited for.
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

/// Samples the proportional memory (PSS) of a process tree until stopped,
/// keeping its mean and peak. The tree is listed again every few samples,
/// so workers started meanwhile are counted.
pub struct TreeMemorySampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<TreeMemory>>,
}

/// The PSS of a process tree over a period, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeMemory {
    pub mean_kib: f64,
    pub peak_kib: u64,
}

impl TreeMemorySampler {
    /// Reading `smaps_rollup` walks a process's page tables: every 100 ms
    /// keeps the sampler's own CPU small beside the services it watches.
    const EVERY: Duration = Duration::from_millis(100);

    pub fn start(roots: Vec<u32>) -> TreeMemorySampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut total, mut count, mut peak) = (0u64, 0u64, 0u64);
            let mut pids = Vec::new();
            while count == 0 || !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if count % 10 == 0 {
                    pids = roots.iter().flat_map(|root| tree(*root)).collect();
                }
                let sample: u64 = pids.iter().map(|pid| pss_kib(*pid)).sum();
                total += sample;
                peak = peak.max(sample);
                count += 1;
                std::thread::sleep(Self::EVERY);
            }
            TreeMemory { mean_kib: total as f64 / count as f64, peak_kib: peak }
        });
        TreeMemorySampler { stop, thread: Some(thread) }
    }

    pub fn stop(mut self) -> TreeMemory {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}
