//! A killed converter process loses nothing: its workers die with it, and
//! the next start runs every unfinished job and still serves old results.

use crate::reliability::Case;
use crate::support::*;
use docconv::proto::v1::{JobState, ListFormatsRequest};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Health answers, in order of change, until SERVING.
async fn health_until_serving(addr: SocketAddr) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: Vec<i32> = Vec::new();
    loop {
        if let Some(status) = health(addr).await {
            if seen.last() != Some(&status) {
                seen.push(status);
            }
            if status == 1 {
                return seen;
            }
        }
        assert!(Instant::now() < deadline, "never ready: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_killed_converter_resumes_its_jobs_after_restart() {
    let mut case = Case::fault("converter killed", "SIGKILL with 1 done, 1 running, 2 queued");
    let data_dir = tempfile::tempdir().unwrap();
    let (mut first, addr) = start_process(data_dir.path(), free_port());
    let seen = health_until_serving(addr).await;
    assert_eq!(seen.first(), Some(&2), "health must say NOT_SERVING until workers are warm: {seen:?}");
    let mut client = connect(addr).await;

    let (finished, pdf) = convert(&mut client, "page_1.docx").await;
    case.accepted(&finished.id);
    let running = case.submit(submit(&mut client, header("long.fodt"), &big_text_document(16000)).await).unwrap();
    let queued = [submit_fixture(&mut client, "page_2.docx").await, submit_fixture(&mut client, "pages_3.docx").await];
    for job in &queued {
        case.accepted(&job.id);
    }
    wait_running(&mut client, &running.id).await;
    let workers = worker_pids_under(data_dir.path());
    assert_eq!(workers.len(), 1);

    first.kill().unwrap();
    first.wait().unwrap();
    // The worker dies with its parent instead of lingering.
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(workers[0]) {
        assert!(Instant::now() < deadline, "the worker outlived the killed converter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let restarted = Instant::now();
    let (mut second, addr) = start_process(data_dir.path(), free_port());
    health_until_serving(addr).await;
    case.recovered(restarted.elapsed(), "restart → SERVING");
    let mut client = connect(addr).await;
    let resumed = wait_end(&mut client, &running.id).await;
    assert_eq!(resumed.state(), JobState::Succeeded, "{resumed:?}");
    assert_eq!(resumed.attempts, 2, "the interrupted run counts as an attempt");
    for job in &queued {
        let done = wait_end(&mut client, &job.id).await;
        assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    }
    case.figure("restart_to_all_ended_ms", restarted.elapsed().as_millis() as u64);
    let pages_3 = read_result(&mut client, &queued[1].id, 0).await;
    assert_eq!(pdf_pages(&pages_3), 3);
    // Results from before the crash are still there, byte for byte.
    assert_eq!(read_result(&mut client, &finished.id, 0).await, pdf);
    let outcome = case.finish(&client, data_dir.path()).await;

    second.kill().unwrap();
    second.wait().unwrap();
    outcome.assert_clean();
}

#[tokio::test]
async fn finished_jobs_expire_after_the_retention_time() {
    // 0.001 h = 3.6 s.
    let server = Server::start(|c| c.retention_hours = 0.001);
    let mut client = server.client().await;
    let (job, _) = convert(&mut client, "page_1.docx").await;
    let job_dir = server.data_dir.path().join("jobs").join(&job.id);
    assert!(job_dir.exists());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = docconv::proto::v1::GetJobRequest { id: job.id.clone() };
        match client.get_job(request).await {
            Err(status) if status.code() == tonic::Code::NotFound => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the job never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!job_dir.exists(), "the job's files outlived it");
}

#[tokio::test]
async fn a_restart_reads_back_what_the_probe_found() {
    let data_dir = tempfile::tempdir().unwrap();
    let kept = data_dir.path().join("formats.json");
    let (mut first, addr) = start_process(data_dir.path(), free_port());
    health_until_serving(addr).await;
    let probed = connect(addr).await.list_formats(ListFormatsRequest {}).await.unwrap().into_inner();
    first.kill().unwrap();
    first.wait().unwrap();
    let written = std::fs::metadata(&kept).expect("the probe's answer is kept").modified().unwrap();

    let (mut second, addr) = start_process(data_dir.path(), free_port());
    health_until_serving(addr).await;
    let read_back = connect(addr).await.list_formats(ListFormatsRequest {}).await.unwrap().into_inner();
    assert_eq!(read_back, probed, "the same targets as probed");
    // A probe would have written its answer again.
    assert_eq!(std::fs::metadata(&kept).unwrap().modified().unwrap(), written, "probed again");
    second.kill().unwrap();
    second.wait().unwrap();

    // A damaged file is a cache miss: the next start probes and answers the same.
    std::fs::write(&kept, b"{not json").unwrap();
    let (mut third, addr) = start_process(data_dir.path(), free_port());
    health_until_serving(addr).await;
    let reprobed = connect(addr).await.list_formats(ListFormatsRequest {}).await.unwrap().into_inner();
    assert_eq!(reprobed, probed);
    assert!(std::fs::read_to_string(&kept).unwrap().starts_with('{'), "written anew");
    assert_ne!(std::fs::read(&kept).unwrap(), b"{not json");
    third.kill().unwrap();
    third.wait().unwrap();
}
