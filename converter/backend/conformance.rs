//! The conformance suite: what every backend must do, written against the
//! traits alone. An implementation passes when `run` returns for it.
//!
//! Times are real (a shared engine's lease deadlines run on its own
//! clock), and short: the whole suite takes about a second.

use crate::{
    Backend, BackendError, Created, Durability, Modified, Queue, Records, Revision, StoredJob, has_ended, id_of,
    modify, revision_of,
};
use async_trait::async_trait;
use docconv::proto::v1::{Job, JobState, Progress};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A backend under test. Its leases must last `LEASE`.
#[async_trait]
pub trait Subject: Send {
    /// A new backend holding no jobs.
    async fn fresh(&mut self) -> Backend;
    /// The backend after the process using `old` stopped (dropping it) and
    /// a new one started on the same data; `None` for one that does not
    /// outlive its process.
    async fn restart(&mut self, old: Backend) -> Option<Backend>;
}

/// Runs every check of the suite, panicking at the first that fails.
pub async fn run(subject: &mut impl Subject) {
    assert_eq!(subject.fresh().await.queue.lease_time(), LEASE, "the suite's lease time");
    records_get_a_new_revision_at_each_write(&subject.fresh().await).await;
    request_ids_make_submission_idempotent(&subject.fresh().await).await;
    a_write_from_a_stale_read_is_refused(&subject.fresh().await).await;
    concurrent_modifications_are_all_applied(&subject.fresh().await).await;
    watchers_see_revisions_in_order_until_the_end(&subject.fresh().await).await;
    a_watch_starts_at_the_revision_asked_for(&subject.fresh().await).await;
    ended_jobs_expire_and_deletion_forgets_them(&subject.fresh().await).await;
    // Both queues keep the same promises.
    for which in [Which::Jobs, Which::Deliveries] {
        the_queue_hands_out_jobs_in_order(&subject.fresh().await, which).await;
        a_lease_waits_for_work_and_ends_at_close(&subject.fresh().await, which).await;
        a_lease_that_runs_out_is_handed_out_again(&subject.fresh().await, which).await;
        an_extended_lease_is_kept(&subject.fresh().await, which).await;
        a_released_job_waits_again(&subject.fresh().await, which).await;
    }
    assert_eq!(subject.fresh().await.deliveries.lease_time(), LEASE, "the suite's lease time");
    a_delivery_is_queued_once(&subject.fresh().await).await;
    files_are_readable_once_written_whole(&subject.fresh().await).await;
    large_and_empty_files_read_back_whole_and_from_any_offset(&subject.fresh().await).await;
    checkouts_hold_inputs_and_kept_results_are_readable(&subject.fresh().await).await;
    let backend = subject.fresh().await;
    let prepared = prepare_restart(&backend).await;
    if let Some(after) = subject.restart(backend).await {
        check_restart(&after, prepared).await;
    }
}

/// Which of a backend's queues a check runs on.
#[derive(Clone, Copy, Debug)]
enum Which {
    Jobs,
    Deliveries,
}

impl Which {
    fn of(self, backend: &Backend) -> &Arc<dyn Queue> {
        match self {
            Which::Jobs => &backend.queue,
            Which::Deliveries => &backend.deliveries,
        }
    }
}

/// A queued job's record, as the service writes one.
pub fn queued(id: &str, request_id: &str, order: u64) -> StoredJob {
    let mut job = Job { id: id.into(), ..Job::default() };
    job.set_state(JobState::Queued);
    StoredJob {
        job: Some(job),
        request_id: request_id.into(),
        input_extension: "docx".into(),
        order,
        ..Default::default()
    }
}

fn set_state(record: &mut StoredJob, state: JobState) {
    let job = record.job.get_or_insert_default();
    job.set_state(state);
    if state.is_terminal() {
        job.end_time = Some(std::time::SystemTime::now().into());
    }
}

fn with_state(mut record: StoredJob, state: JobState) -> StoredJob {
    set_state(&mut record, state);
    record
}

async fn create(records: &dyn Records, record: StoredJob) -> StoredJob {
    match records.create(record).await.expect("create") {
        Created::New(written) => written,
        Created::Existing(existing) => panic!("a new job was taken for {}", id_of(&existing)),
    }
}

/// The lease time of the backends under test: short, so that leases run
/// out within the suite, long enough for a few calls to a server.
pub const LEASE: Duration = Duration::from_millis(500);

/// A pause well within a lease.
const SHORT: Duration = Duration::from_millis(100);

async fn records_get_a_new_revision_at_each_write(backend: &Backend) {
    let records = &*backend.records;
    let created = create(records, queued("a", "", 1)).await;
    assert!(revision_of(&created) > 0, "a new record has a revision");
    assert_eq!(records.get("a").await.unwrap().as_ref(), Some(&created));
    let running = records.update(with_state(created.clone(), JobState::Running), Durability::Lasting).await.unwrap();
    assert!(revision_of(&running) > revision_of(&created), "a write gives a higher revision");
    let mut progressed = running.clone();
    progressed.job.as_mut().unwrap().progress = Some(Progress { stage: 1, percent: 40 });
    let progressed = records.update(progressed, Durability::Passing).await.unwrap();
    assert!(revision_of(&progressed) > revision_of(&running), "a passing write gives a higher revision too");
    assert_eq!(records.get("a").await.unwrap().as_ref(), Some(&progressed), "reads see passing writes");
    let other = create(records, queued("b", "", 2)).await;
    assert!(revision_of(&other) > revision_of(&progressed), "revisions grow across jobs");
    assert!(records.get("nope").await.unwrap().is_none());
}

async fn request_ids_make_submission_idempotent(backend: &Backend) {
    let records = &*backend.records;
    let first = create(records, queued("a", "r1", 1)).await;
    match records.create(queued("b", "r1", 2)).await.unwrap() {
        Created::Existing(existing) => assert_eq!(existing, first),
        Created::New(_) => panic!("a repeated request id made a second job"),
    }
    assert!(records.get("b").await.unwrap().is_none(), "nothing is written for a repeated request id");
    assert_eq!(records.by_request_id("r1").await.unwrap().as_ref().map(id_of), Some("a"));
    assert!(records.by_request_id("r2").await.unwrap().is_none());
    create(records, queued("c", "", 3)).await;
    create(records, queued("d", "", 4)).await;
    records.delete("a").await.unwrap();
    assert!(records.by_request_id("r1").await.unwrap().is_none(), "deleting a job frees its request id");
    create(records, queued("e", "r1", 5)).await;
}

async fn a_write_from_a_stale_read_is_refused(backend: &Backend) {
    let records = &*backend.records;
    let created = create(records, queued("a", "", 1)).await;
    let written = records.update(with_state(created.clone(), JobState::Running), Durability::Lasting).await.unwrap();
    match records.update(with_state(created, JobState::Cancelled), Durability::Lasting).await {
        Err(BackendError::Conflict { id, current }) => {
            assert_eq!(id, "a");
            assert_eq!(current, revision_of(&written));
        }
        other => panic!("a stale write was not refused: {other:?}"),
    }
    assert_eq!(records.get("a").await.unwrap().unwrap(), written);
    let ended = records.update(with_state(written.clone(), JobState::Succeeded), Durability::Lasting).await.unwrap();
    match records.update(with_state(written, JobState::Failed), Durability::Lasting).await {
        Err(BackendError::Conflict { .. }) => {}
        other => panic!("a stale write over an ended job was not refused: {other:?}"),
    }
    assert_eq!(records.get("a").await.unwrap().unwrap(), ended);
    match records.update(queued("ghost", "", 9), Durability::Lasting).await {
        Err(BackendError::Missing { .. }) => {}
        other => panic!("a write to an unknown job: {other:?}"),
    }
}

async fn concurrent_modifications_are_all_applied(backend: &Backend) {
    create(&*backend.records, queued("a", "", 1)).await;
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let records = backend.records.clone();
            let durability = if i % 2 == 0 { Durability::Lasting } else { Durability::Passing };
            tokio::spawn(async move {
                for _ in 0..5 {
                    let modified = modify(&*records, "a", durability, |record| {
                        record.job.get_or_insert_default().attempts += 1;
                        true
                    })
                    .await
                    .unwrap();
                    assert!(matches!(modified, Modified::Written(_)));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(backend.records.get("a").await.unwrap().unwrap().job.unwrap().attempts, 40);
    let kept = modify(&*backend.records, "a", Durability::Lasting, |_| false).await.unwrap();
    assert!(matches!(kept, Modified::Kept(_)));
    assert!(matches!(
        modify(&*backend.records, "nope", Durability::Lasting, |_| true).await.unwrap(),
        Modified::Missing
    ));
}

async fn next_of(events: &mut crate::Events) -> Option<StoredJob> {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .map(|item| item.expect("an event, not an error"))
}

async fn watchers_see_revisions_in_order_until_the_end(backend: &Backend) {
    let records = &*backend.records;
    assert!(records.watch("nope", 0).await.unwrap().is_none(), "no watch of an unknown job");
    let created = create(records, queued("a", "", 1)).await;
    let mut early = records.watch("a", 0).await.unwrap().unwrap();
    assert_eq!(next_of(&mut early).await.as_ref(), Some(&created), "a watch starts with the current record");
    let mut last = created;
    let mut written = Vec::new();
    for percent in [10, 20, 30] {
        let mut next = last.clone();
        next.job.as_mut().unwrap().progress = Some(Progress { stage: 1, percent });
        last = records.update(next, Durability::Passing).await.unwrap();
        written.push(revision_of(&last));
    }
    // A watcher joining mid-job starts at the current record.
    let mut late = records.watch("a", 0).await.unwrap().unwrap();
    assert_eq!(next_of(&mut late).await.as_ref(), Some(&last));
    let ended = records.update(with_state(last, JobState::Succeeded), Durability::Lasting).await.unwrap();
    written.push(revision_of(&ended));
    let mut seen = Vec::new();
    while let Some(record) = next_of(&mut early).await {
        seen.push(revision_of(&record));
    }
    assert_eq!(seen, written, "every revision, in order, then the end");
    assert_eq!(next_of(&mut late).await.as_ref(), Some(&ended));
    assert!(next_of(&mut late).await.is_none(), "a watch ends after the end");
    // Watching an ended job gives its last record and ends.
    let mut after = records.watch("a", 0).await.unwrap().unwrap();
    assert_eq!(next_of(&mut after).await.as_ref(), Some(&ended));
    assert!(next_of(&mut after).await.is_none());
}

async fn a_watch_starts_at_the_revision_asked_for(backend: &Backend) {
    let records = &*backend.records;
    let created = create(records, queued("a", "", 1)).await;
    let mut events = records.watch("a", revision_of(&created) + 1).await.unwrap().unwrap();
    let running = records.update(with_state(created.clone(), JobState::Running), Durability::Lasting).await.unwrap();
    assert_eq!(next_of(&mut events).await.as_ref(), Some(&running), "revisions before `from` are not sent");
    let mut current = records.watch("a", revision_of(&created)).await.unwrap().unwrap();
    assert_eq!(next_of(&mut current).await.as_ref(), Some(&running), "the latest at or after `from`");
}

async fn ended_jobs_expire_and_deletion_forgets_them(backend: &Backend) {
    let records = &*backend.records;
    let a = create(records, queued("a", "ra", 1)).await;
    create(records, queued("b", "", 2)).await;
    records.update(with_state(a, JobState::Failed), Durability::Lasting).await.unwrap();
    let now = std::time::SystemTime::now();
    let minute = Duration::from_secs(60);
    assert!(records.ended_before(now - minute).await.unwrap().is_empty(), "nothing ended a minute ago");
    assert_eq!(records.ended_before(now + minute).await.unwrap(), vec!["a".to_owned()], "only ended jobs expire");
    records.delete("a").await.unwrap();
    assert!(records.get("a").await.unwrap().is_none());
    assert!(records.ended_before(now + minute).await.unwrap().is_empty());
    // Deleting a job before it ends ends its watches.
    let mut events = records.watch("b", 0).await.unwrap().unwrap();
    next_of(&mut events).await.unwrap();
    records.delete("b").await.unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("the watch ends");
    assert!(!matches!(gone, Some(Ok(_))), "no record after deletion: {gone:?}");
}

/// Records queued jobs and pushes them onto the `which` queue.
async fn queue_of(backend: &Backend, which: Which, ids: &[&str]) {
    for (order, id) in ids.iter().enumerate() {
        create(&*backend.records, queued(id, "", order as u64 + 1)).await;
        which.of(backend).push(id).await.unwrap();
    }
}

async fn the_queue_hands_out_jobs_in_order(backend: &Backend, which: Which) {
    let queue = &**which.of(backend);
    queue_of(backend, which, &["a", "b", "c", "d"]).await;
    assert_eq!(queue.waiting().await.unwrap(), ["a", "b", "c", "d"]);
    let a = queue.lease().await.unwrap().unwrap();
    assert_eq!((a.id.as_str(), a.deliveries), ("a", 1));
    assert_eq!(queue.waiting().await.unwrap(), ["b", "c", "d"], "a leased job no longer waits");
    assert_eq!(queue.waiting_count().await.unwrap(), 3);
    assert!(queue.remove("c").await.unwrap(), "a waiting job can be taken out");
    assert!(!queue.remove("a").await.unwrap(), "a leased job cannot");
    assert!(!queue.remove("zzz").await.unwrap());
    assert_eq!(queue.waiting().await.unwrap(), ["b", "d"]);
    assert_eq!(queue.waiting_count().await.unwrap(), 2, "the count agrees with the list");
    queue.ack(&a).await.unwrap();
    assert!(matches!(queue.ack(&a).await, Err(BackendError::LeaseLost { .. })), "a lease is acknowledged once");
    assert_eq!(queue.lease().await.unwrap().unwrap().id, "b");
    assert_eq!(queue.lease().await.unwrap().unwrap().id, "d");
}

async fn a_lease_waits_for_work_and_ends_at_close(backend: &Backend, which: Which) {
    let queue = which.of(backend).clone();
    let waiting = tokio::spawn(async move { queue.lease().await });
    tokio::time::sleep(SHORT).await;
    assert!(!waiting.is_finished(), "a lease waits while nothing is queued");
    queue_of(backend, which, &["a"]).await;
    let lease = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("pushed work wakes a lease");
    assert_eq!(lease.unwrap().unwrap().unwrap().id, "a");
    let queue = which.of(backend).clone();
    let waiting = tokio::spawn(async move { queue.lease().await });
    tokio::time::sleep(SHORT / 3).await;
    which.of(backend).close();
    let closed = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("close wakes waiting leases");
    assert!(closed.unwrap().unwrap().is_none());
    queue_of(backend, which, &["b"]).await;
    assert!(which.of(backend).lease().await.unwrap().is_none(), "a closed queue hands out nothing");
}

async fn a_lease_that_runs_out_is_handed_out_again(backend: &Backend, which: Which) {
    let queue = &**which.of(backend);
    queue_of(backend, which, &["a", "b"]).await;
    let first = queue.lease().await.unwrap().unwrap();
    assert_eq!(queue.lease().await.unwrap().unwrap().id, "b");
    // Nothing waits now; the next lease comes when `a`'s runs out.
    let again = tokio::time::timeout(Duration::from_secs(5), queue.lease()).await.expect("handed out again");
    let again = again.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.deliveries), ("a", 2));
    assert_ne!(again.token, first.token);
    assert!(matches!(queue.extend(&first).await, Err(BackendError::LeaseLost { .. })));
    assert!(matches!(queue.ack(&first).await, Err(BackendError::LeaseLost { .. })));
    assert!(matches!(queue.release(&first).await, Err(BackendError::LeaseLost { .. })));
    queue.ack(&again).await.unwrap();
}

async fn an_extended_lease_is_kept(backend: &Backend, which: Which) {
    let queue = &**which.of(backend);
    queue_of(backend, which, &["a"]).await;
    let lease = queue.lease().await.unwrap().unwrap();
    let other = {
        let queue = which.of(backend).clone();
        tokio::spawn(async move { queue.lease().await })
    };
    // Twice the lease time, extended every quarter of it.
    for _ in 0..8 {
        tokio::time::sleep(LEASE / 4).await;
        queue.extend(&lease).await.unwrap();
    }
    assert!(!other.is_finished(), "an extended lease is not handed out again");
    queue.ack(&lease).await.unwrap();
    tokio::time::sleep(LEASE * 2).await;
    assert!(!other.is_finished(), "an acknowledged job is not handed out again");
    other.abort();
}

async fn a_released_job_waits_again(backend: &Backend, which: Which) {
    let queue = &**which.of(backend);
    queue_of(backend, which, &["a", "b"]).await;
    let a = queue.lease().await.unwrap().unwrap();
    queue.release(&a).await.unwrap();
    let mut waiting = queue.waiting().await.unwrap();
    waiting.sort();
    assert_eq!(waiting, ["a", "b"], "at the front or the back of the line");
    let mut leased = [queue.lease().await.unwrap().unwrap().id, queue.lease().await.unwrap().unwrap().id];
    leased.sort();
    assert_eq!(leased, ["a", "b"]);
    assert!(matches!(queue.release(&a).await, Err(BackendError::LeaseLost { .. })), "a lease is handed back once");
}

async fn a_delivery_is_queued_once(backend: &Backend) {
    let queue = &*backend.deliveries;
    for id in ["a", "a", "b"] {
        queue.push(id).await.unwrap();
    }
    assert_eq!(queue.waiting().await.unwrap(), ["a", "b"], "a waiting delivery is not queued twice");
    let a = queue.lease().await.unwrap().unwrap();
    assert_eq!(a.id, "a");
    queue.push("a").await.unwrap();
    assert_eq!(queue.lease().await.unwrap().unwrap().id, "b");
    let again = tokio::time::timeout(SHORT, queue.lease()).await;
    assert!(again.is_err(), "a held delivery is not queued twice: {again:?}");
    queue.ack(&a).await.unwrap();
}

async fn write(backend: &Backend, id: &str, name: &str, parts: &[&[u8]]) {
    let mut writer = backend.blobs.create(id, name).await.unwrap();
    for part in parts {
        writer.write(part).await.unwrap();
    }
    writer.finish().await.unwrap();
}

async fn read(backend: &Backend, id: &str, name: &str, offset: u64) -> Option<Vec<u8>> {
    let mut reader = backend.blobs.open(id, name, offset).await.unwrap()?;
    let mut data = Vec::new();
    reader.read_to_end(&mut data).await.unwrap();
    Some(data)
}

async fn files_are_readable_once_written_whole(backend: &Backend) {
    let blobs = &*backend.blobs;
    let mut writer = blobs.create("a", "input.docx").await.unwrap();
    writer.write(b"hello ").await.unwrap();
    writer.write(b"world").await.unwrap();
    assert!(read(backend, "a", "input.docx", 0).await.is_none(), "a file being written cannot be read");
    writer.finish().await.unwrap();
    assert_eq!(read(backend, "a", "input.docx", 0).await.unwrap(), b"hello world");
    assert_eq!(read(backend, "a", "input.docx", 6).await.unwrap(), b"world", "reads start at the offset");
    assert_eq!(read(backend, "a", "input.docx", 11).await.unwrap(), b"");
    assert!(read(backend, "a", "nope", 0).await.is_none());
    assert!(read(backend, "b", "input.docx", 0).await.is_none());
    let mut abandoned = blobs.create("a", "input-1.docx").await.unwrap();
    abandoned.write(b"half").await.unwrap();
    drop(abandoned);
    assert!(read(backend, "a", "input-1.docx", 0).await.is_none(), "an abandoned file leaves nothing readable");
    write(backend, "a", "input.docx", &[b"again"]).await;
    assert_eq!(read(backend, "a", "input.docx", 0).await.unwrap(), b"again", "writing again replaces");
    write(backend, "c", "input.docx", &[b"c"]).await;
    let mut ids = blobs.ids(Duration::ZERO).await.unwrap();
    ids.sort();
    assert_eq!(ids, ["a", "c"]);
    assert!(blobs.ids(Duration::from_secs(3600)).await.unwrap().is_empty(), "files written just now are young");
    blobs.delete("a").await.unwrap();
    blobs.delete("never").await.unwrap();
    assert!(read(backend, "a", "input.docx", 0).await.is_none());
    assert_eq!(blobs.ids(Duration::ZERO).await.unwrap(), ["c"]);
    write(backend, "d", "input.docx", &[b"d"]).await;
    write(backend, "d", "output.pdf", &[b"%PDF"]).await;
    write(backend, "e", "input.docx", &[b"e"]).await;
    blobs.delete_all(&["c".to_owned(), "d".to_owned(), "never".to_owned()]).await.unwrap();
    assert!(read(backend, "d", "output.pdf", 0).await.is_none(), "every file of each job goes");
    assert_eq!(blobs.ids(Duration::ZERO).await.unwrap(), ["e"], "other jobs' files stay");
}

async fn large_and_empty_files_read_back_whole_and_from_any_offset(backend: &Backend) {
    // Larger than the chunks a store may keep files in (128 KiB for NATS).
    let large: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    write(backend, "a", "input.docx", &[&large[..100_000], &large[100_000..]]).await;
    assert_eq!(read(backend, "a", "input.docx", 0).await.unwrap(), large);
    for offset in [1, 131_072, 200_000, 299_999, 300_000] {
        let read = read(backend, "a", "input.docx", offset as u64).await.unwrap();
        assert!(read == large[offset..], "read from {offset}: {} bytes", read.len());
    }
    write(backend, "b", "input.docx", &[]).await;
    assert_eq!(read(backend, "b", "input.docx", 0).await.unwrap(), b"", "an empty file is a file");
    let folder = backend.blobs.checkout("a", &["input.docx".to_owned()]).await.unwrap();
    assert!(std::fs::read(folder.join("input.docx")).unwrap() == large, "checked out whole");
}

async fn checkouts_hold_inputs_and_kept_results_are_readable(backend: &Backend) {
    let blobs = &*backend.blobs;
    write(backend, "a", "input.docx", &[b"document"]).await;
    let folder = blobs.checkout("a", &["input.docx".to_owned()]).await.unwrap();
    assert_eq!(std::fs::read(folder.join("input.docx")).unwrap(), b"document");
    std::fs::write(folder.join("output.pdf"), b"%PDF").unwrap();
    blobs.keep("a", &["output.pdf".to_owned()]).await.unwrap();
    assert_eq!(read(backend, "a", "output.pdf", 0).await.unwrap(), b"%PDF", "a kept result is readable");
    assert_eq!(blobs.checkout("a", &[]).await.unwrap(), folder, "one folder per job");
    blobs.forget_local("a").await.unwrap();
    assert_eq!(read(backend, "a", "output.pdf", 0).await.unwrap(), b"%PDF", "kept files outlive the local folder");
    let folder = blobs.checkout("a", &["output.pdf".to_owned()]).await.unwrap();
    assert_eq!(std::fs::read(folder.join("output.pdf")).unwrap(), b"%PDF", "and check out again");
    blobs.delete("a").await.unwrap();
    assert!(read(backend, "a", "output.pdf", 0).await.is_none());
    assert!(!folder.join("output.pdf").exists(), "deleting a job clears its folder too");
}

/// What a restart must keep.
pub struct BeforeRestart {
    highest: Revision,
    ended: StoredJob,
    running: StoredJob,
}

async fn prepare_restart(backend: &Backend) -> BeforeRestart {
    let records = &*backend.records;
    queue_of(backend, Which::Jobs, &["ended", "running", "queued"]).await;
    // Deliveries: one done with, one being sent, one waiting.
    for id in ["delivered", "sending", "pending"] {
        backend.deliveries.push(id).await.unwrap();
    }
    let delivered = backend.deliveries.lease().await.unwrap().unwrap();
    backend.deliveries.ack(&delivered).await.unwrap();
    let sending = backend.deliveries.lease().await.unwrap().unwrap();
    assert_eq!(sending.id, "sending");
    let lease = backend.queue.lease().await.unwrap().unwrap();
    let ended = records.get(&lease.id).await.unwrap().unwrap();
    let ended = records.update(with_state(ended, JobState::Succeeded), Durability::Lasting).await.unwrap();
    backend.queue.ack(&lease).await.unwrap();
    let lease = backend.queue.lease().await.unwrap().unwrap();
    let running = records.get(&lease.id).await.unwrap().unwrap();
    let running = records.update(with_state(running, JobState::Running), Durability::Lasting).await.unwrap();
    let mut progressed = running.clone();
    progressed.job.as_mut().unwrap().progress = Some(Progress { stage: 1, percent: 50 });
    let progressed = records.update(progressed, Durability::Passing).await.unwrap();
    write(backend, "ended", "output.pdf", &[b"%PDF"]).await;
    BeforeRestart { highest: revision_of(&progressed), ended, running }
}

async fn check_restart(backend: &Backend, before: BeforeRestart) {
    let records = &*backend.records;
    assert_eq!(records.get("ended").await.unwrap().as_ref(), Some(&before.ended), "lasting writes survive");
    let running = records.get("running").await.unwrap().unwrap();
    assert!(!has_ended(&running));
    assert!(revision_of(&running) >= revision_of(&before.running), "the last lasting write at least");
    let written = records.update(running, Durability::Passing).await.unwrap();
    assert!(revision_of(&written) > before.highest, "revisions keep growing past every one handed out before");
    // Jobs that had not ended are handed out again: the running one once
    // its lease, which died with its process, has run out.
    let mut leased = Vec::new();
    for _ in 0..2 {
        let lease = tokio::time::timeout(LEASE * 4, backend.queue.lease()).await.expect("handed out again");
        leased.push(lease.unwrap().unwrap().id);
    }
    leased.sort();
    assert_eq!(leased, ["queued", "running"]);
    assert_eq!(read(backend, "ended", "output.pdf", 0).await.unwrap(), b"%PDF", "files survive");
    // Deliveries not acknowledged wait again; the one being sent once its
    // lease has run out.
    let mut leased = Vec::new();
    for _ in 0..2 {
        let lease = tokio::time::timeout(LEASE * 4, backend.deliveries.lease()).await.expect("handed out again");
        let lease = lease.unwrap().unwrap();
        backend.deliveries.ack(&lease).await.unwrap();
        leased.push(lease.id);
    }
    leased.sort();
    assert_eq!(leased, ["pending", "sending"]);
    let more = tokio::time::timeout(LEASE * 2, backend.deliveries.lease()).await;
    assert!(more.is_err(), "an acknowledged delivery is not handed out again: {more:?}");
}

/// A NATS server with JetStream on a free port, its storage in a
/// temporary directory; killed when dropped.
pub struct NatsServer {
    child: Option<std::process::Child>,
    pub url: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl NatsServer {
    pub fn start() -> NatsServer {
        NatsServer::start_with_args(&[])
    }

    /// A server started with extra command-line arguments (TLS, users), on
    /// a port it picks itself and reports in a ports file once it listens:
    /// a port picked here could be taken by a server of a test running
    /// beside, whose readiness this one would then take for its own.
    pub fn start_with_args(args: &[String]) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let ports = dir.path().join("ports");
        std::fs::create_dir(&ports).unwrap();
        let mut all = vec!["-p".to_owned(), "-1".to_owned(), "--ports_file_dir".to_owned()];
        all.push(ports.to_string_lossy().into_owned());
        all.extend(args.iter().cloned());
        let child = NatsServer::spawn(dir.path(), &all);
        let url = until_listening(|| {
            let written = std::fs::read_dir(&ports).unwrap().filter_map(Result::ok).next();
            // `{"nats":["nats://127.0.0.1:PORT"]}`, written once it listens.
            let text = written.and_then(|file| std::fs::read_to_string(file.path()).ok()).unwrap_or_default();
            text.split('"').find(|part| part.contains("://127.0.0.1:")).map(|url| url.replace("tls://", "nats://"))
        });
        NatsServer { child: Some(child), url, _dir: dir }
    }

    /// A server on `port` (a cluster's servers name each other's).
    fn start_with(port: u16, args: &[String]) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec!["-p".to_owned(), port.to_string()];
        all.extend(args.iter().cloned());
        let child = NatsServer::spawn(dir.path(), &all);
        until_listening(|| std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        NatsServer { child: Some(child), url: format!("nats://127.0.0.1:{port}"), _dir: dir }
    }

    fn spawn(dir: &std::path::Path, args: &[String]) -> std::process::Child {
        std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-sd"])
            .arg(dir.join("store"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/test installs it)")
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What `listening` finds once a server listens, asked every 20 ms for up
/// to 10 s.
fn until_listening<T>(mut listening: impl FnMut() -> Option<T>) -> T {
    let ready = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(found) = listening() {
            return found;
        }
        assert!(std::time::Instant::now() < ready, "nats-server did not listen within 10 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A NATS cluster of `size` servers routed to each other, JetStream
/// clustered among them.
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    pub fn start(size: usize) -> NatsCluster {
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let servers = ports
            .iter()
            .enumerate()
            .map(|(i, &(client, cluster))| {
                let routes: Vec<String> = ports
                    .iter()
                    .filter(|&&(_, other)| other != cluster)
                    .map(|&(_, other)| format!("nats://127.0.0.1:{other}"))
                    .collect();
                let args = [
                    "-n".to_owned(),
                    format!("docconv-test-{i}"),
                    "--cluster_name".to_owned(),
                    "docconv-test".to_owned(),
                    "--cluster".to_owned(),
                    format!("nats://127.0.0.1:{cluster}"),
                    "--routes".to_owned(),
                    routes.join(","),
                ];
                NatsServer::start_with(client, &args)
            })
            .collect();
        NatsCluster { servers }
    }

    /// Every server's URL, as a comma-separated list.
    pub fn urls(&self) -> String {
        self.servers.iter().map(|s| s.url.as_str()).collect::<Vec<_>>().join(",")
    }
}
