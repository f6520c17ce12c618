//! A bounded soak: a mixed load with poison documents sprinkled in, against
//! a converter process of its own. Every accepted job must end; memory,
//! descriptors, worker directories and job directories must not grow.
//!
//! One minute by default; `DOCCONV_SOAK_SECS=1800` runs it for half an hour.

use crate::reliability::{Case, worker_temp_files};
use crate::support::*;
use docconv::proto::v1::JobState;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn soak_duration() -> Duration {
    let secs = std::env::var("DOCCONV_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    Duration::from_secs(secs)
}

/// The documents of the load, by name: most convert, some must fail.
fn documents() -> Vec<(&'static str, Vec<u8>, bool)> {
    let noise: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let bomb = flat_odf(
        "spreadsheet",
        "",
        "<table:table table:name=\"S\"><table:table-row table:number-rows-repeated=\"1000000\">\
         <table:table-cell table:number-columns-repeated=\"1000\" office:value-type=\"string\">\
         <text:p>bomb</text:p></table:table-cell></table:table-row></table:table>",
    );
    let fixture = |name: &str| std::fs::read(fixture(name)).unwrap();
    vec![
        ("page_1.docx", fixture("page_1.docx"), true),
        ("sheet.csv", fixture("sheet.csv"), true),
        ("slideshow.ppsx", fixture("slideshow.ppsx"), true),
        ("pages_3.docx", fixture("pages_3.docx"), true),
        ("linked.fodt", document_linking("file:///etc/passwd"), true),
        ("noise.docx", noise.clone(), false),
        ("noise.fodt", noise, false),
        ("page_1.docx", fixture("page_1.docx"), true),
        ("damaged.xlsx", b"PK\x03\x04 and then garbage".to_vec(), false),
        ("bomb.fods", bomb, false),
    ]
}

/// Open descriptors and resident MiB of a process.
fn usage(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (fds, docconv_worker::rss_of(pid).unwrap_or(0) >> 20)
}

/// Entries of `dir` whose name starts with `prefix`.
fn count_entries(dir: &Path, prefix: &str) -> usize {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries.filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count()
}

#[tokio::test]
async fn a_mixed_load_with_poison_loses_nothing_and_leaks_nothing() {
    const WORKERS: usize = 2;
    const LIMIT_MIB: u64 = 500;
    let mut case = Case::soak("mixed load with poison", &format!("{} s, {WORKERS} workers", soak_duration().as_secs()));
    let data_dir = tempfile::tempdir().unwrap();
    let flags = ["--workers", "2", "--job-timeout-secs", "20", "--worker-memory-limit-mib", "500"];
    let (mut process, addr) = start_process_with(data_dir.path(), free_port(), &flags);
    wait_ready(addr);
    let pid = process.id();
    let mut client = connect(addr).await;
    // Warm the service's own paths once before taking the baseline.
    case.accepted(&convert(&mut client, "page_1.docx").await.0.id);
    let (base_fds, base_rss) = usage(pid);
    let base_temp_files = worker_temp_files(data_dir.path());

    let documents = documents();
    let started = Instant::now();
    let mut outcomes: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut accepted = 1;
    let mut worker_peak = 0;
    let mut round = 0;
    while started.elapsed() < soak_duration() {
        // A burst of the whole mix, then every job to its end.
        let mut jobs = Vec::new();
        for (name, data, converts) in &documents {
            let job = case.submit(submit(&mut client, header(name), data).await).unwrap();
            case.count(if *converts { "convertible_jobs" } else { "poison_jobs" }, 1);
            jobs.push((*name, job.id));
        }
        accepted += jobs.len();
        for (name, id) in jobs {
            let job = wait_end(&mut client, &id).await;
            let entry = outcomes.entry(name).or_default();
            match job.state() {
                JobState::Succeeded => entry.0 += 1,
                _ => entry.1 += 1,
            }
            for worker in worker_pids_under(data_dir.path()) {
                worker_peak = worker_peak.max(usage(worker).1);
            }
        }
        round += 1;
    }
    assert!(round >= 1);

    // Every accepted job ended as its document deserves.
    for (name, _, converts) in &documents {
        let (succeeded, failed) = outcomes[name];
        if *converts {
            assert_eq!(failed, 0, "{name}: {succeeded} succeeded, {failed} failed");
        } else {
            assert_eq!(succeeded, 0, "{name}: a poison document succeeded");
        }
    }
    // The service held: still serving, nothing leaked.
    let (last, pdf) = convert(&mut client, "page_2.docx").await;
    case.accepted(&last.id);
    assert_eq!(pdf_pages(&pdf), 1);
    accepted += 1;
    let (fds, rss) = usage(pid);
    assert!(fds <= base_fds + 16, "descriptors grew from {base_fds} to {fds}");
    assert!(rss <= base_rss + 128, "the converter grew from {base_rss} to {rss} MiB");
    assert!(worker_peak <= LIMIT_MIB + 300, "a worker reached {worker_peak} MiB");
    assert_eq!(count_entries(&data_dir.path().join("jobs"), ""), accepted, "job directories leaked or went missing");
    // One directory per live worker (a successor may be warming up).
    let homes = count_entries(&data_dir.path().join("workers"), "worker-");
    assert!(homes <= WORKERS + 2, "{homes} worker directories for {WORKERS} workers");
    eprintln!(
        "soak: {round} rounds, {accepted} jobs in {:?}; converter {base_rss}→{rss} MiB, {base_fds}→{fds} fds; \
         worker peak {worker_peak} MiB; {outcomes:?}",
        started.elapsed()
    );
    let (succeeded, failed) = outcomes.values().fold((0, 0), |(s, f), (ok, bad)| (s + ok, f + bad));
    for (name, value) in [
        ("seconds", started.elapsed().as_secs()),
        ("rounds", round),
        ("succeeded", succeeded as u64),
        ("failed", failed as u64),
        ("converter_rss_mib_before", base_rss),
        ("converter_rss_mib_after", rss),
        ("converter_fds_before", base_fds as u64),
        ("converter_fds_after", fds as u64),
        ("worker_peak_rss_mib", worker_peak),
        ("worker_dirs", homes as u64),
        ("worker_temp_files_before", base_temp_files as u64),
        ("worker_temp_files_after", worker_temp_files(data_dir.path()) as u64),
        ("job_dirs", count_entries(&data_dir.path().join("jobs"), "") as u64),
    ] {
        case.figure(name, value);
    }
    let outcome = case.finish(&client, data_dir.path()).await;
    process.kill().unwrap();
    process.wait().unwrap();
    outcome.assert_clean();
}
