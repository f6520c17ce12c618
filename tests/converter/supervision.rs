//! Worker supervision: cancellation, crashes, deadlines, a full queue.

use crate::reliability::Case;
use crate::support::*;
use docconv::proto::v1::{CancelJobRequest, GetJobRequest, Job, JobState};
use docconv_worker::StartMode;
use std::time::{Duration, Instant};
use tonic::Code;

fn kill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a real pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

async fn wait_until_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) {
        assert!(Instant::now() < deadline, "worker {pid} is still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until the running job is on its `attempt`-th try.
async fn wait_attempt(client: &mut Client, id: &str, attempt: u32) -> Job {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = client.get_job(GetJobRequest { id: id.into() }).await.unwrap().into_inner();
        if job.state() == JobState::Running && job.attempts == attempt {
            return job;
        }
        assert!(!is_ended(&job), "ended early: {job:?}");
        assert!(Instant::now() < deadline, "attempt {attempt} never started: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_worker() {
    let mut case = Case::fault("cancel", "a running job");
    let server = Server::start(|_| {});
    let mut client = server.client().await;
    let job = case.submit(submit(&mut client, header("long.fodt"), &big_text_document(20000)).await).unwrap();
    wait_running(&mut client, &job.id).await;
    let workers = server.worker_pids();
    assert_eq!(workers.len(), 1);

    let asked = Instant::now();
    let cancelled = client.cancel_job(CancelJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
    assert_eq!(cancelled.state(), JobState::Cancelled);
    assert_eq!(cancelled.error.as_ref().unwrap().code, Code::Cancelled as i32);
    wait_until_gone(workers[0]).await;
    case.recovered(asked.elapsed(), "cancel → its worker gone");

    // Idempotent, and the next job runs on a fresh worker.
    let again = client.cancel_job(CancelJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
    assert_eq!(again, cancelled);
    case.accepted(&convert(&mut client, "page_1.docx").await.0.id);
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn cancelling_a_queued_job_ends_it_at_once() {
    let mut case = Case::fault("cancel", "a queued job");
    let server = Server::start(|_| {});
    let mut client = server.client().await;
    let busy = case.submit(submit(&mut client, header("busy.fodt"), &big_text_document(20000)).await).unwrap();
    let queued = submit_fixture(&mut client, "page_1.docx").await;
    let behind = submit_fixture(&mut client, "page_2.docx").await;
    case.accepted(&queued.id);
    case.accepted(&behind.id);
    assert_eq!(queued.state(), JobState::Queued);
    let asked = Instant::now();
    let cancelled = client.cancel_job(CancelJobRequest { id: queued.id.clone() }).await.unwrap().into_inner();
    assert_eq!(cancelled.state(), JobState::Cancelled);
    case.recovered(asked.elapsed(), "cancel → cancelled");
    // The job behind it moved up.
    let behind = client.get_job(GetJobRequest { id: behind.id.clone() }).await.unwrap().into_inner();
    assert_eq!(behind.queue_position, 1, "{behind:?}");
    client.cancel_job(CancelJobRequest { id: busy.id }).await.unwrap();
    assert_eq!(wait_end(&mut client, &behind.id).await.state(), JobState::Succeeded);
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn a_crashed_forked_worker_is_replaced_by_another_and_the_next_job_succeeds() {
    let server = Server::start(|c| c.worker_start = StartMode::Fork);
    let mut client = server.client().await;
    let first = server.worker_pids();
    assert_eq!(first.len(), 1);
    assert!(is_forked_worker(first[0]), "the worker was not forked from the zygote");
    kill(first[0]);

    let job = submit_fixture(&mut client, "page_1.docx").await;
    let done = wait_end(&mut client, &job.id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    let now = server.worker_pids();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0], first[0]);
    assert!(is_forked_worker(now[0]), "the replacement was not forked from the zygote");
}

#[tokio::test]
async fn a_killed_zygote_is_started_again_and_jobs_go_on() {
    let server = Server::start(|c| c.worker_start = StartMode::Fork);
    let mut client = server.client().await;
    let zygotes = zygote_pids_under(server.data_dir.path());
    assert_eq!(zygotes.len(), 1, "{zygotes:?}");
    let worker = server.worker_pids()[0];
    kill(zygotes[0]);
    // Its workers die with it.
    wait_until_gone(worker).await;

    let job = submit_fixture(&mut client, "page_1.docx").await;
    let done = wait_end(&mut client, &job.id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    let now = server.worker_pids();
    assert_eq!(now.len(), 1, "{now:?}");
    assert!(is_forked_worker(now[0]), "the replacement was not forked from a new zygote");
    let zygotes_now = zygote_pids_under(server.data_dir.path());
    assert_eq!(zygotes_now.len(), 1, "{zygotes_now:?}");
    assert_ne!(zygotes_now[0], zygotes[0]);
}

/// LibreOffice changes some settings in memory at every start (its locale
/// among them). The profile layer is read-only to it, so no thread is left
/// behind to write them back a second later: in the zygote, such a thread
/// kept it from forking until it ended.
#[tokio::test]
async fn libreoffice_writes_nothing_back_into_the_profiles() {
    let server = Server::start(|c| c.worker_start = StartMode::Fork);
    let mut client = server.client().await;
    let job = submit_fixture(&mut client, "page_1.docx").await;
    assert_eq!(wait_end(&mut client, &job.id).await.state(), JobState::Succeeded);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let workers = server.data_dir.path().join("workers");
    let profiles: Vec<_> = std::fs::read_dir(&workers)
        .unwrap()
        .map(|entry| entry.unwrap().path().join("profile/user/registrymodifications.xcu"))
        .filter(|file| file.exists())
        .collect();
    assert!(profiles.iter().any(|p| p.to_string_lossy().contains("/zygote-")), "{profiles:?}");
    for profile in profiles {
        let written = std::fs::read_to_string(&profile).unwrap();
        assert!(written.contains("DisableMacrosExecution"), "{}: {written}", profile.display());
        assert!(!written.contains("ooLocale"), "LibreOffice wrote into {}: {written}", profile.display());
    }
}

/// How a worker ended is known however it was started: the converter
/// waits for an exec'd one itself, and the zygote reaps the ones it forks
/// and tells the converter.
#[tokio::test]
async fn a_dead_workers_exit_status_is_known_forked_or_execd() {
    use docconv_worker::{Worker, WorkerSpec, Zygote, proto::Convert};
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), |_| {});
    for start in [StartMode::Exec, StartMode::Fork] {
        let spec = WorkerSpec {
            exe: docconv_exe(),
            program_dir: config.libreoffice_dir.clone(),
            scratch_dir: dir.path().join("workers"),
            start_timeout: Duration::from_secs(60),
            profile_blocks_links: true,
            start,
        };
        let zygote = match start {
            StartMode::Fork => Some(Zygote::start(&spec).await.unwrap()),
            StartMode::Exec => None,
        };
        let mut worker = match &zygote {
            Some(zygote) => Worker::fork(&spec, zygote).await.unwrap(),
            None => Worker::start(&spec).await.unwrap(),
        };
        kill(worker.pid().unwrap());
        let output = dir.path().join("never.pdf").to_string_lossy().into_owned();
        let input = fixture("page_1.docx").to_string_lossy().into_owned();
        let asked = Convert { input_path: input, output_path: output, ..Default::default() };
        let error = worker.convert(asked, |_| {}).await.expect_err("a dead worker converts nothing");
        assert!(error.to_string().contains("SIGKILL"), "{start:?}: {error}");
    }
}

#[tokio::test]
async fn workers_started_by_exec_convert_as_before() {
    let server = Server::start(|c| c.worker_start = StartMode::Exec);
    let mut client = server.client().await;
    let pids = server.worker_pids();
    assert_eq!(pids.len(), 1);
    assert!(!is_forked_worker(pids[0]), "asked for exec, got a forked worker");
    let job = submit_fixture(&mut client, "page_1.docx").await;
    assert_eq!(wait_end(&mut client, &job.id).await.state(), JobState::Succeeded);
}

#[tokio::test]
async fn a_killed_worker_is_replaced_and_its_job_retried_once() {
    let mut case = Case::fault("worker killed mid-job", "SIGKILL while converting");
    let server = Server::start(|_| {});
    let mut client = server.client().await;
    let job = case.submit(submit(&mut client, header("crash.fodt"), &big_text_document(16000)).await).unwrap();
    wait_running(&mut client, &job.id).await;
    let first = server.worker_pids();
    assert_eq!(first.len(), 1);
    let killed = Instant::now();
    kill(first[0]);

    let done = wait_end(&mut client, &job.id).await;
    case.recovered(killed.elapsed(), "kill → job ended (retried)");
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    assert_eq!(done.attempts, 2);
    let pdf = read_result(&mut client, &job.id, 0).await;
    assert!(pdf_pages(&pdf) > 100);
    assert!(!server.worker_pids().contains(&first[0]));
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn a_job_that_kills_two_workers_fails_clearly() {
    let mut case = Case::fault("two crashes", "SIGKILL on both attempts");
    let server = Server::start(|_| {});
    let mut client = server.client().await;
    let job = case.submit(submit(&mut client, header("crash.fodt"), &big_text_document(20000)).await).unwrap();
    wait_attempt(&mut client, &job.id, 1).await;
    kill(server.worker_pids()[0]);
    wait_attempt(&mut client, &job.id, 2).await;
    let killed = Instant::now();
    kill(server.worker_pids()[0]);

    let error = wait_failed(&mut client, &job.id).await;
    case.recovered(killed.elapsed(), "second kill → job failed");
    assert_eq!(error.code, Code::Internal as i32);
    assert!(error.message.contains("crashed"), "{}", error.message);
    // The service goes on with a fresh worker.
    case.accepted(&convert(&mut client, "page_1.docx").await.0.id);
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn a_conversion_past_its_deadline_is_stopped() {
    let mut case = Case::fault("hung past its deadline", "1 s deadline, a conversion of minutes");
    let server = Server::start(|c| c.job_timeout_secs = 1);
    let mut client = server.client().await;
    let job = case.submit(submit(&mut client, header("slow.fodt"), &big_text_document(40000)).await).unwrap();
    wait_running(&mut client, &job.id).await;
    let started = Instant::now();
    let worker = server.worker_pids()[0];
    let error = wait_failed(&mut client, &job.id).await;
    assert_eq!(error.code, Code::DeadlineExceeded as i32);
    assert_eq!(error.message, "conversion took longer than 1 s and was stopped");
    wait_until_gone(worker).await;
    case.recovered(started.elapsed(), "started → failed, its worker gone");
    case.accepted(&convert(&mut client, "page_1.docx").await.0.id);
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn a_full_queue_refuses_new_jobs() {
    let mut case = Case::fault("full queue", "queue of 1; gRPC and web");
    let server = Server::start(|c| c.queue_capacity = 1);
    let mut client = server.client().await;
    let running = case.submit(submit(&mut client, header("busy.fodt"), &big_text_document(20000)).await).unwrap();
    wait_running(&mut client, &running.id).await;
    let queued = submit_fixture(&mut client, "page_1.docx").await;
    case.accepted(&queued.id);
    assert_eq!(queued.queue_position, 1);
    let data = std::fs::read(fixture("page_2.docx")).unwrap();
    let status = case.submit(submit(&mut client, header("page_2.docx"), &data).await).unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("queue is full"));
    // Clients are told when to try again.
    use tonic_types::StatusExt;
    let retry = status.get_error_details().retry_info().cloned().expect("a RetryInfo detail");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(5)));
    // And the web side answers 429 with Retry-After.
    let response = gateway_upload(&server, "page_2.docx", &data).await;
    case.tried();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    let freed = Instant::now();
    client.cancel_job(CancelJobRequest { id: running.id }).await.unwrap();
    assert_eq!(wait_end(&mut client, &queued.id).await.state(), JobState::Succeeded);
    case.recovered(freed.elapsed(), "running job cancelled → queued job ended");
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn workers_are_recycled_after_their_job_limit_without_a_cold_start() {
    let mut case = Case::fault("recycling", "worker retired after 2 jobs");
    let server = Server::start(|c| c.worker_max_jobs = 2);
    let mut client = server.client().await;
    let first = server.worker_pids();
    for _ in 0..2 {
        case.accepted(&convert(&mut client, "page_1.docx").await.0.id);
    }
    let retired = Instant::now();
    // The successor warms up beside the old worker, then takes over.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = server.worker_pids();
        if now.len() == 1 && !now.contains(&first[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "worker never replaced: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    case.recovered(retired.elapsed(), "limit reached → successor alone");
    let (job, _) = convert(&mut client, "page_2.docx").await;
    case.accepted(&job.id);
    assert_eq!(job.attempts, 1);
    case.finish_on(&server).await.assert_clean();
}

/// Uploads one file through a gateway in front of `server`.
async fn gateway_upload(server: &Server, name: &str, data: &[u8]) -> axum::response::Response {
    use tower::ServiceExt;
    let state = docconv_gateway::AppState::new(&[format!("http://{}", server.addr)], Default::default()).unwrap();
    let boundary = "queue-full-boundary";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let request = axum::http::Request::post("/convert")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .header("accept", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    docconv_gateway::app(state).oneshot(request).await.unwrap()
}

#[tokio::test]
async fn one_deadline_covers_every_document_of_a_merge() {
    // Each document converts well within the deadline; all of them do not.
    let mut case = Case::fault("merge past its deadline", "4 s deadline over 8 documents");
    let server = Server::start(|c| c.job_timeout_secs = 4);
    let mut client = server.client().await;
    let documents: Vec<(&str, Vec<u8>)> = (0..8).map(|_| ("part.fodt", big_text_document(6000))).collect();
    let started = Instant::now();
    let job = case.submit(submit_merge(&mut client, header("part.fodt"), &documents).await).unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    case.recovered(started.elapsed(), "submitted → failed");
    assert_eq!(error.code, Code::DeadlineExceeded as i32, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "stopped only after {:?}", started.elapsed());
    // The service goes on.
    let (job, _) = convert(&mut client, "page_1.docx").await;
    case.accepted(&job.id);
    assert_eq!(job.state(), JobState::Succeeded);
    case.finish_on(&server).await.assert_clean();
}
