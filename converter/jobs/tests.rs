//! The hub against the in-memory backend (and the embedded one where a
//! restart matters): races and edge cases made deterministic, no
//! LibreOffice, no sleeps.

use super::*;
use docconv::ids;
use futures_util::StreamExt;

struct Hub {
    jobs: Arc<Jobs>,
}

fn hub(capacity: usize) -> Hub {
    Hub { jobs: Arc::new(Jobs::new(Backend::in_memory(LEASE), capacity, Duration::ZERO)) }
}

async fn write(jobs: &Jobs, id: &str, name: &str) {
    let mut writer = jobs.blobs().create(id, name).await.unwrap();
    writer.write(b"PK").await.unwrap();
    writer.finish().await.unwrap();
}

async fn exists(jobs: &Jobs, id: &str, name: &str) -> bool {
    jobs.blobs().open(id, name, 0).await.unwrap().is_some()
}

fn record(id: &str, request_id: &str) -> StoredJob {
    let job = Job { id: id.into(), file_name: "a.docx".into(), target_format: "pdf".into(), ..Job::default() };
    StoredJob {
        job: Some(job),
        request_id: request_id.into(),
        input_extension: "docx".into(),
        options: Some(ConversionOptions::default()),
        ..StoredJob::default()
    }
}

/// Submits a job the way the service does: input on disk, a place held, then recorded.
async fn submit_as(jobs: &Jobs, request_id: &str) -> Job {
    let id = ids::new_id();
    write(jobs, &id, &files::input("docx")).await;
    let reservation = jobs.reserve().await.unwrap();
    jobs.enqueue(reservation, record(&id, request_id)).await.unwrap()
}

async fn submit(jobs: &Jobs) -> Job {
    submit_as(jobs, "").await
}

async fn next(jobs: &Jobs) -> Claim {
    tokio::time::timeout(Duration::from_secs(5), jobs.next()).await.expect("a job within 5 s").expect("a claim")
}

fn output() -> Output {
    Output { file_name: "a.pdf".into(), content_type: "application/pdf".into(), size_bytes: 3, ..Output::default() }
}

async fn position(jobs: &Jobs, id: &str) -> u32 {
    jobs.get(id).await.unwrap().queue_position
}

/// Every state a watch sends, from now until the end.
async fn states_until_end(jobs: &Jobs, id: &str) -> Vec<Job> {
    let watch = jobs.watch(id).await.unwrap();
    let mut states = vec![watch.snapshot];
    if let Some(mut updates) = watch.updates {
        while let Some(record) = tokio::time::timeout(Duration::from_secs(5), updates.next()).await.unwrap() {
            states.push(record.unwrap().job.unwrap());
        }
    }
    states
}

#[tokio::test]
async fn queue_positions_follow_the_queue() {
    let Hub { jobs, .. } = hub(10);
    let a = submit(&jobs).await;
    let b = submit(&jobs).await;
    let c = submit(&jobs).await;
    assert_eq!((a.queue_position, b.queue_position, c.queue_position), (1, 2, 3), "Submit answers with the position");
    let mut claim = next(&jobs).await;
    assert_eq!(claim.id, a.id);
    // The jobs behind move up once the start is recorded.
    claim.started().await;
    assert_eq!(position(&jobs, &a.id).await, 0, "a running job has no place");
    assert_eq!((position(&jobs, &b.id).await, position(&jobs, &c.id).await), (1, 2));
    jobs.cancel(&b.id).await.unwrap();
    assert_eq!(position(&jobs, &c.id).await, 1, "a cancelled job's place goes to the next");
}

#[tokio::test]
async fn the_running_state_the_progress_and_the_end_are_published_in_order() {
    let Hub { jobs, .. } = hub(10);
    let job = submit(&jobs).await;
    let watcher = {
        let jobs = jobs.clone();
        let id = job.id.clone();
        tokio::spawn(async move { states_until_end(&jobs, &id).await })
    };
    let mut claim = next(&jobs).await;
    claim.progress(Stage::Loading, 30, None);
    claim.progress(Stage::Exporting, 60, Some(StageTimings { load_ms: 7, ..StageTimings::default() }));
    let timings = StageTimings { load_ms: 7, export_ms: 5, store_ms: 1, ..StageTimings::default() };
    jobs.finish(&mut claim, Ending::Succeeded(output(), "result.pdf".into()), timings).await;
    let states = watcher.await.unwrap();
    let sequences: Vec<u64> = states.iter().map(|j| j.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "sequences grow: {sequences:?}");
    let kinds: Vec<JobState> = states.iter().map(|j| j.state()).collect();
    assert_eq!(kinds.first(), Some(&JobState::Queued));
    assert!(kinds.contains(&JobState::Running), "{kinds:?}");
    let last = states.last().unwrap();
    assert_eq!(last.state(), JobState::Succeeded);
    assert_eq!(last.attempts, 1);
    assert_eq!(last.output.as_ref().map(|o| o.size_bytes), Some(3));
    assert!(last.progress.is_none(), "an ended job shows no progress");
    assert_eq!(last.timings.map(|t| (t.load_ms, t.export_ms)), Some((7, 5)));
    assert_eq!(jobs.get(&job.id).await.unwrap(), *last);
}

#[tokio::test]
async fn a_watcher_joining_mid_job_sees_the_current_state_then_the_rest() {
    let Hub { jobs, .. } = hub(10);
    let job = submit(&jobs).await;
    let mut claim = next(&jobs).await;
    claim.started().await;
    let watch = jobs.watch(&job.id).await.unwrap();
    assert_eq!(watch.snapshot.state(), JobState::Running);
    let mut updates = watch.updates.expect("a running job has updates to come");
    jobs.finish(&mut claim, Ending::Failed(Failure::ExportFailed), StageTimings::default()).await;
    let mut last = watch.snapshot;
    while let Some(record) = updates.next().await {
        let job = record.unwrap().job.unwrap();
        assert!(job.sequence > last.sequence);
        last = job;
    }
    assert_eq!(last.state(), JobState::Failed);
    let ended = jobs.watch(&job.id).await.unwrap();
    assert!(ended.updates.is_none(), "an ended job has nothing more to send");
    assert_eq!(ended.snapshot, last);
}

#[tokio::test]
async fn cancel_racing_the_end_ends_the_job_once() {
    let Hub { jobs, .. } = hub(10);
    for round in 0..30 {
        let job = submit(&jobs).await;
        let mut claim = next(&jobs).await;
        let ends = {
            let jobs = jobs.clone();
            let id = job.id.clone();
            tokio::spawn(async move {
                states_until_end(&jobs, &id).await.into_iter().filter(|j| j.state().is_terminal()).count()
            })
        };
        let cancel = {
            let jobs = jobs.clone();
            let id = job.id.clone();
            tokio::spawn(async move { jobs.cancel(&id).await.unwrap() })
        };
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        jobs.finish(&mut claim, Ending::Succeeded(output(), "result.pdf".into()), StageTimings::default()).await;
        let cancelled = tokio::time::timeout(Duration::from_secs(5), cancel).await.expect("cancel returns").unwrap();
        let stored = jobs.get(&job.id).await.unwrap();
        assert_eq!(cancelled, stored, "cancel answers with the final state");
        assert_eq!(stored.state(), JobState::Succeeded, "the runner's end stands");
        assert_eq!(ends.await.unwrap(), 1, "one end, seen once");
    }
}

#[tokio::test]
async fn cancelling_a_running_job_tells_its_runner() {
    let Hub { jobs, .. } = hub(10);
    let job = submit(&jobs).await;
    let mut claim = next(&jobs).await;
    let cancel = {
        let jobs = jobs.clone();
        let id = job.id.clone();
        tokio::spawn(async move { jobs.cancel(&id).await.unwrap() })
    };
    tokio::time::timeout(Duration::from_secs(5), claim.cancel.notified()).await.expect("the runner is told");
    jobs.finish(&mut claim, Ending::Failed(Failure::Cancelled), StageTimings::default()).await;
    assert_eq!(cancel.await.unwrap().state(), JobState::Cancelled);
    assert_eq!(jobs.cancel(&job.id).await.unwrap().state(), JobState::Cancelled, "cancelling again changes nothing");
}

#[tokio::test]
async fn a_job_cancelled_while_another_worker_held_it_never_runs() {
    let Hub { jobs, .. } = hub(10);
    let job = submit(&jobs).await;
    // Another node's worker leases the job, then hands it back.
    let lease = jobs.backend.queue.lease().await.unwrap().unwrap();
    let cancel = {
        let jobs = jobs.clone();
        let id = job.id.clone();
        tokio::spawn(async move { jobs.cancel(&id).await.unwrap() })
    };
    // The cancel is recorded before the job comes back.
    let mut events = jobs.backend.records.watch(&job.id, 0).await.unwrap().unwrap();
    while !events.next().await.unwrap().unwrap().cancel_requested {}
    jobs.backend.queue.release(&lease).await.unwrap();
    let later = submit(&jobs).await;
    let claim = next(&jobs).await;
    assert_eq!(claim.id, later.id, "the cancelled job was skipped");
    let cancelled = tokio::time::timeout(Duration::from_secs(5), cancel).await.unwrap().unwrap();
    assert_eq!(cancelled.state(), JobState::Cancelled);
    assert_eq!(cancelled.attempts, 0, "it never ran");
}

#[tokio::test]
async fn a_retry_counts_as_another_attempt() {
    let Hub { jobs, .. } = hub(10);
    let job = submit(&jobs).await;
    let mut claim = next(&jobs).await;
    assert_eq!(claim.attempts, 1);
    jobs.retry(&mut claim).await;
    assert_eq!(claim.attempts, 2);
    let retried = jobs.get(&job.id).await.unwrap();
    assert_eq!((retried.state(), retried.attempts), (JobState::Running, 2));
    jobs.finish(&mut claim, Ending::Failed(Failure::Crashed { attempts: 2 }), StageTimings::default()).await;
    assert_eq!(jobs.get(&job.id).await.unwrap().attempts, 2);
}

#[tokio::test]
async fn a_full_queue_refuses_and_held_places_count() {
    let Hub { jobs, .. } = hub(2);
    submit(&jobs).await;
    let held = jobs.reserve().await.unwrap();
    assert!(matches!(jobs.reserve().await, Err(Error::Overloaded { .. })), "one queued and one held fill two places");
    assert!(matches!(jobs.check_room().await, Err(Error::Overloaded { .. })));
    drop(held);
    jobs.check_room().await.unwrap();
    // A running job leaves the queue.
    let _claim = next(&jobs).await;
    submit(&jobs).await;
    submit(&jobs).await;
    assert!(matches!(jobs.reserve().await, Err(Error::Overloaded { .. })));
}

#[tokio::test]
async fn a_repeated_request_id_gives_the_first_job_and_queues_nothing() {
    let Hub { jobs, .. } = hub(10);
    let first = submit_as(&jobs, "r1").await;
    let again = submit_as(&jobs, "r1").await;
    assert_eq!(again.id, first.id);
    assert_eq!(jobs.backend.queue.waiting().await.unwrap(), std::slice::from_ref(&first.id));
    assert_eq!(jobs.by_request_id("r1").await.unwrap().map(|j| j.id), Some(first.id));
}

#[tokio::test]
async fn shutdown_hands_out_nothing_and_refuses_uploads() {
    let Hub { jobs, .. } = hub(10);
    let job = submit(&jobs).await;
    jobs.stop_accepting();
    assert!(tokio::time::timeout(Duration::from_secs(5), jobs.next()).await.unwrap().is_none());
    assert!(matches!(jobs.reserve().await, Err(Error::Unavailable(_))));
    assert_eq!(jobs.get(&job.id).await.unwrap().state(), JobState::Queued, "queued jobs stay queued");
}

#[tokio::test]
async fn files_without_a_record_are_swept_unless_an_upload_streams_in() {
    let Hub { jobs, .. } = hub(10);
    let job = submit(&jobs).await;
    let orphan = ids::new_id();
    write(&jobs, &orphan, "input.docx").await;
    let streaming = jobs.begin_upload(ids::new_id());
    write(&jobs, streaming.id(), "input.docx").await;
    assert_eq!(jobs.sweep_orphans().await.unwrap(), 1);
    assert!(!exists(&jobs, &orphan, "input.docx").await);
    assert!(exists(&jobs, &job.id, "input.docx").await);
    assert!(exists(&jobs, streaming.id(), "input.docx").await);
    let id = streaming.id().to_owned();
    streaming.discard().await;
    assert!(!exists(&jobs, &id, "input.docx").await, "an upload not kept leaves nothing");
}

#[tokio::test]
async fn ended_jobs_expire_with_their_files() {
    let Hub { jobs, .. } = hub(10);
    let job = submit(&jobs).await;
    let queued = submit(&jobs).await;
    let mut claim = next(&jobs).await;
    jobs.finish(&mut claim, Ending::Succeeded(output(), "result.pdf".into()), StageTimings::default()).await;
    assert_eq!(jobs.expire(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(jobs.expire(Duration::ZERO).await.unwrap(), 1);
    assert!(matches!(jobs.get(&job.id).await, Err(Error::NotFound(_))));
    assert!(!exists(&jobs, &job.id, "input.docx").await);
    assert!(jobs.get(&queued.id).await.is_ok(), "unfinished jobs never expire");
}

#[tokio::test]
async fn after_a_crash_running_jobs_wait_again_and_missing_inputs_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (store, files) = (dir.path().join("jobs.redb"), dir.path().join("jobs"));
    let (running, queued, lost) = {
        let jobs = Jobs::new(Backend::embedded(&store, &files, LEASE).unwrap(), 10, Duration::ZERO);
        let running = submit(&jobs).await;
        let queued = submit(&jobs).await;
        let lost = submit(&jobs).await;
        let mut claim = next(&jobs).await;
        claim.started().await;
        claim.progress(Stage::Exporting, 60, None);
        std::fs::remove_file(files.join(&lost.id).join("input.docx")).unwrap();
        // The process dies here: the claim and the hub go without a word.
        drop(claim);
        // Let the aborted keeper go, with its hold on the store file.
        tokio::task::yield_now().await;
        (running, queued, lost)
    };
    let jobs = Jobs::new(Backend::embedded(&store, &files, LEASE).unwrap(), 10, Duration::ZERO);
    assert_eq!(jobs.recover().await.unwrap(), 2);
    let again = jobs.get(&running.id).await.unwrap();
    assert_eq!((again.state(), again.queue_position, again.progress), (JobState::Queued, 1, None));
    assert!(again.sequence > running.sequence);
    assert_eq!(position(&jobs, &queued.id).await, 2);
    assert_eq!(jobs.get(&lost.id).await.unwrap().state(), JobState::Failed);
    let claim = next(&jobs).await;
    assert_eq!((claim.id.as_str(), claim.attempts), (running.id.as_str(), 2), "its first attempt counts");
}

#[tokio::test]
async fn a_job_of_a_node_that_died_goes_to_another_once_its_lease_runs_out() {
    let lease = Duration::from_millis(200);
    let backend = Backend::in_memory(lease);
    let first = Jobs::new(backend.clone(), 10, Duration::ZERO);
    let second = Jobs::new(backend, 10, Duration::ZERO);
    let job = submit(&first).await;
    let mut claim = next(&first).await;
    claim.started().await;
    // The first node dies mid-job: its keeper stops extending the lease.
    drop(claim);
    let taken = next(&second).await;
    assert_eq!((taken.id.as_str(), taken.attempts), (job.id.as_str(), 2), "handed out again once the lease ran out");
    // A node that is alive keeps its job past the lease time.
    let other = submit(&first).await;
    let mut kept = next(&first).await;
    assert_eq!(kept.id, other.id);
    assert!(tokio::time::timeout(lease * 3, second.next()).await.is_err(), "a kept lease is not handed out");
    first.finish(&mut kept, Ending::Succeeded(output(), "result.pdf".into()), StageTimings::default()).await;
    assert_eq!(second.get(&other.id).await.unwrap().state(), JobState::Succeeded, "any node sees the end");
}

#[tokio::test]
async fn a_stopping_node_hands_its_running_jobs_back_at_once() {
    let backend = Backend::in_memory(LEASE);
    let stopping = Jobs::new(backend.clone(), 10, Duration::ZERO);
    let other = Jobs::new(backend, 10, Duration::ZERO);
    let job = submit(&stopping).await;
    let claim = next(&stopping).await;
    // Its runner is stopped mid-job.
    drop(claim);
    assert_eq!(stopping.hand_back().await, 1);
    let taken =
        tokio::time::timeout(Duration::from_secs(1), other.next()).await.expect("long before the lease runs out");
    assert_eq!(taken.expect("a claim").id, job.id);
    assert_eq!(stopping.hand_back().await, 0, "nothing is handed back twice");
}

/// Submits a job with a webhook listening for `events`.
async fn submit_with_webhook(jobs: &Jobs, events: docconv::proto::v1::WebhookEvents) -> Job {
    let id = ids::new_id();
    write(jobs, &id, &files::input("docx")).await;
    let mut record = record(&id, "");
    let webhook =
        docconv::proto::v1::Webhook { url: "https://example.com/".into(), events: events as i32, ..Default::default() };
    record.webhook = Some(webhook);
    record.job.as_mut().unwrap().webhook = Some(webhooks::pending());
    let reservation = jobs.reserve().await.unwrap();
    jobs.enqueue(reservation, record).await.unwrap()
}

#[tokio::test]
async fn an_end_a_webhook_wants_is_queued_for_delivery_and_others_are_not_sent() {
    use docconv::proto::v1::WebhookEvents;
    let Hub { jobs, .. } = hub(10);
    let deliveries = jobs.backend.deliveries.clone();
    let plain = submit(&jobs).await;
    let any = submit_with_webhook(&jobs, WebhookEvents::Unspecified).await;
    let failures = submit_with_webhook(&jobs, WebhookEvents::Failed).await;
    let cancelled = submit_with_webhook(&jobs, WebhookEvents::Ended).await;
    for _ in 0..3 {
        let mut claim = next(&jobs).await;
        jobs.finish(&mut claim, Ending::Succeeded(output(), "result.pdf".into()), StageTimings::default()).await;
    }
    jobs.cancel(&cancelled.id).await.unwrap();
    assert_eq!(deliveries.waiting().await.unwrap(), [any.id.clone(), cancelled.id.clone()]);
    let state = |job: Job| job.webhook.map(|w| w.state());
    assert_eq!(state(jobs.get(&plain.id).await.unwrap()), None);
    assert_eq!(state(jobs.get(&any.id).await.unwrap()), Some(WebhookState::Pending), "its courier settles it");
    assert_eq!(state(jobs.get(&failures.id).await.unwrap()), Some(WebhookState::NotSent), "a success is not a failure");
    assert_eq!(state(jobs.get(&cancelled.id).await.unwrap()), Some(WebhookState::Pending));
}
