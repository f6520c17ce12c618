//! The gRPC contract: watch semantics, idempotency, call errors, downloads.

use crate::support::*;
use docconv::proto::v1::{
    CancelJobRequest, GetJobRequest, JobState, ListFormatsRequest, ReadResultRequest, SubmitHeader, SubmitRequest,
    WatchJobRequest, submit_request, watch_job_response,
};
use tonic::Code;

#[tokio::test]
async fn watch_sends_a_snapshot_first_then_growing_states_then_ends() {
    let mut client = shared().client().await;
    let job = submit_fixture(&mut client, "pages_12.docx").await;
    assert_eq!(job.state(), JobState::Queued);
    assert!(job.queue_position >= 1);
    let states = watch_all(&mut client, &job.id).await;
    let first = &states[0];
    assert!(first.sequence >= job.sequence, "the snapshot is older than the submit reply");
    for pair in states.windows(2) {
        assert!(pair[1].sequence > pair[0].sequence, "sequence must grow: {pair:?}");
    }
    let last = states.last().unwrap();
    assert_eq!(last.state(), JobState::Succeeded);
    assert_eq!(states.iter().filter(|s| is_ended(s)).count(), 1, "exactly one terminal state, last");
    // A job is never seen going back to an earlier state.
    let rank = |s: JobState| match s {
        JobState::Queued => 0,
        JobState::Running => 1,
        _ => 2,
    };
    for pair in states.windows(2) {
        assert!(rank(pair[1].state()) >= rank(pair[0].state()), "{pair:?}");
    }
}

#[tokio::test]
async fn watching_a_finished_job_gives_one_message_then_ok() {
    let mut client = shared().client().await;
    let (job, _) = convert(&mut client, "page_1.docx").await;
    let states = watch_all(&mut client, &job.id).await;
    assert_eq!(states.len(), 1);
    assert_eq!(states[0], job);
}

#[tokio::test]
async fn running_jobs_report_progress_with_stages() {
    let mut client = shared().client().await;
    let big = big_text_document(3000);
    let job = submit(&mut client, header("progress.fodt"), &big).await.unwrap();
    let states = watch_all(&mut client, &job.id).await;
    let running: Vec<_> = states.iter().filter(|s| s.state() == JobState::Running).collect();
    assert!(!running.is_empty(), "no running state seen: {states:?}");
    let percents: Vec<u32> = running.iter().filter_map(|s| s.progress.map(|p| p.percent)).collect();
    assert!(percents.windows(2).all(|w| w[1] >= w[0]), "progress went back: {percents:?}");
    assert!(running.iter().any(|s| s.progress.is_some_and(|p| p.stage == 2)), "no exporting stage: {running:?}");
    // The load reports its progress on the way, not only its end.
    let loading = running.iter().any(|s| s.progress.is_some_and(|p| p.stage == 1 && p.percent > 0));
    assert!(loading, "no loading progress: {percents:?}");
    assert_eq!(states.last().unwrap().state(), JobState::Succeeded);
}

#[tokio::test]
async fn two_watchers_see_the_same_states() {
    let mut client = shared().client().await;
    let job = submit(&mut client, header("two.fodt"), &big_text_document(2000)).await.unwrap();
    let (mut a, mut b) = (client.clone(), client.clone());
    let (first, second) = tokio::join!(watch_all(&mut a, &job.id), watch_all(&mut b, &job.id));
    assert_eq!(first.last(), second.last());
    assert_eq!(first.last().unwrap().state(), JobState::Succeeded);
    // Whatever each saw after both snapshots, they saw alike.
    let from = first[0].sequence.max(second[0].sequence);
    let after = |states: &[docconv::proto::v1::Job]| -> Vec<u64> {
        states.iter().map(|s| s.sequence).filter(|&s| s > from).collect()
    };
    assert_eq!(after(&first), after(&second));
    assert!(!after(&first).is_empty());
}

#[tokio::test]
async fn dropping_a_watch_does_not_cancel_the_job() {
    let mut client = shared().client().await;
    let job = submit(&mut client, header("dropped.fodt"), &big_text_document(1000)).await.unwrap();
    let mut stream = client.watch_job(WatchJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    assert_eq!(wait_end(&mut client, &job.id).await.state(), JobState::Succeeded);
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_same_job() {
    let mut client = shared().client().await;
    let data = std::fs::read(fixture("page_2.docx")).unwrap();
    let key = docconv::ids::new_id();
    let with_key = |key: &str| SubmitHeader { request_id: key.into(), ..header("page_2.docx") };
    let first = submit(&mut client, with_key(&key), &data).await.unwrap();
    let again = submit(&mut client, with_key(&key), &data).await.unwrap();
    assert_eq!(first.id, again.id);
    let other = submit(&mut client, with_key(&format!("{key}-other")), &data).await.unwrap();
    assert_ne!(first.id, other.id);
    // After the job ended too.
    wait_end(&mut client, &first.id).await;
    let later = submit(&mut client, with_key(&key), &data).await.unwrap();
    assert_eq!(later.id, first.id);
    assert_eq!(later.state(), JobState::Succeeded);
}

#[tokio::test]
async fn submit_checks_its_header() {
    let mut client = shared().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let cases = [
        (header(""), "file_name"),
        (header("virus.exe"), "extension"),
        (SubmitHeader { target_format: "mp3".into(), ..header("a.docx") }, "target_format"),
        (SubmitHeader { sha256: "abc".into(), ..header("a.docx") }, "sha256"),
        (SubmitHeader { sha256: "0".repeat(64), ..header("a.docx") }, "sha256"),
        (SubmitHeader { size_bytes: Some(5), ..header("a.docx") }, "size_bytes"),
    ];
    for (header, field) in cases {
        let status = submit(&mut client, header.clone(), &data).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{header:?}: {status:?}");
        assert!(status.message().contains(field), "{header:?}: message {:?} should name {field}", status.message());
    }
    // No header at all.
    let only_data = vec![SubmitRequest { payload: Some(submit_request::Payload::Data(data.clone())) }];
    let status = client.submit(tokio_stream::iter(only_data)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("header"));
}

#[tokio::test]
async fn a_matching_sha256_and_size_are_accepted() {
    use sha2::Digest;
    let mut client = shared().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let digest: String = sha2::Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    let header = SubmitHeader { sha256: digest, size_bytes: Some(data.len() as u64), ..header("page_1.docx") };
    let job = submit(&mut client, header, &data).await.unwrap();
    assert_eq!(wait_end(&mut client, &job.id).await.state(), JobState::Succeeded);
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let mut client = shared().client().await;
    for id in ["0123456789abcdef0123456789abcdef", "../../etc/passwd", ""] {
        let status = client.get_job(GetJobRequest { id: id.into() }).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{id}");
        let status = client.watch_job(WatchJobRequest { id: id.into() }).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{id}");
        let status = client.cancel_job(CancelJobRequest { id: id.into() }).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{id}");
    }
}

#[tokio::test]
async fn results_download_resumably() {
    let mut client = shared().client().await;
    let (job, whole) = convert(&mut client, "pages_12.docx").await;
    let tail = read_result(&mut client, &job.id, 1000).await;
    assert_eq!(tail, whole[1000..]);
    let limited = ReadResultRequest { id: job.id.clone(), offset: 10, limit: 20 };
    let mut stream = client.read_result(limited).await.unwrap().into_inner();
    let chunk = stream.message().await.unwrap().unwrap();
    assert_eq!(chunk.data, whole[10..30]);
    let past = ReadResultRequest { id: job.id.clone(), offset: whole.len() as u64 + 1, limit: 0 };
    assert_eq!(client.read_result(past).await.unwrap_err().code(), Code::OutOfRange);
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&whole).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(job.output.unwrap().sha256, digest);
}

#[tokio::test]
async fn failed_jobs_have_no_result_to_read() {
    let mut client = shared().client().await;
    let job = submit(&mut client, header("broken.docx"), b"definitely not a word document").await.unwrap();
    wait_end(&mut client, &job.id).await;
    let status = client.read_result(ReadResultRequest { id: job.id, offset: 0, limit: 0 }).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn formats_are_listed_with_the_upload_limit() {
    let mut client = shared().client().await;
    let formats = client.list_formats(ListFormatsRequest {}).await.unwrap().into_inner();
    for ext in ["docx", "doc", "odt", "xlsx", "ods", "csv", "pptx", "ppsx", "rtf", "txt", "html"] {
        let format = formats.inputs.iter().find(|f| f.extension == ext).unwrap_or_else(|| panic!("{ext} missing"));
        assert!(format.targets.contains(&"pdf".to_string()));
    }
    assert_eq!(formats.max_upload_bytes, 4 * 1024 * 1024);
}

#[tokio::test]
async fn long_silences_get_heartbeats() {
    // A queued job behind a busy worker is silent for seconds.
    let server = Server::start(|c| c.heartbeat_secs = 0.2);
    let mut client = server.client().await;
    let busy = submit(&mut client, header("busy.fodt"), &big_text_document(6000)).await.unwrap();
    let waiting = submit_fixture(&mut client, "page_1.docx").await;
    let mut stream = client.watch_job(WatchJobRequest { id: waiting.id.clone() }).await.unwrap().into_inner();
    let mut heartbeats = 0;
    while let Some(message) = stream.message().await.unwrap() {
        match message.event {
            Some(watch_job_response::Event::Heartbeat(beat)) => {
                assert!(beat.time.is_some());
                heartbeats += 1;
                if heartbeats == 2 {
                    break;
                }
            }
            Some(watch_job_response::Event::Job(job)) => {
                assert!(!is_ended(&job), "ended before any heartbeat")
            }
            None => {}
        }
    }
    assert_eq!(heartbeats, 2);
    client.cancel_job(CancelJobRequest { id: busy.id }).await.unwrap();
}
