//! Cluster mode: converters given the same NATS servers share one job
//! space. Any node answers for any job, and a node killed mid-job loses
//! nothing: its jobs go to another node once their leases run out.

use crate::support::*;
use docconv::proto::v1::{GetJobRequest, JobState};
use docconv_backend::conformance::NatsServer;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Lease time of the nodes under test, so a dead node's jobs move on quickly.
const LEASE_SECS: &str = "2";

fn node(nats: &NatsServer, data_dir: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    let flags = ["--nats-url", nats.url.as_str(), "--job-lease-secs", LEASE_SECS];
    let (child, addr) = start_process_with(data_dir, free_port(), &flags);
    wait_ready(addr);
    (child, addr)
}

#[tokio::test]
async fn any_node_answers_for_any_job_with_the_same_states_and_bytes() {
    let nats = NatsServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, addr_a) = node(&nats, dir_a.path());
    let (mut b, addr_b) = node(&nats, dir_b.path());
    let (mut on_a, mut on_b) = (connect(addr_a).await, connect(addr_b).await);

    let job = submit_fixture(&mut on_a, "page_1.docx").await;
    let states = watch_all(&mut on_b, &job.id).await;
    let sequences: Vec<u64> = states.iter().map(|j| j.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "sequences grow across nodes: {sequences:?}");
    let ended = states.last().unwrap().clone();
    assert_eq!(ended.state(), JobState::Succeeded, "{ended:?}");
    let from_a = on_a.get_job(GetJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
    assert_eq!(from_a, ended, "both nodes tell the same state");
    let (pdf_a, pdf_b) = (read_result(&mut on_a, &job.id, 0).await, read_result(&mut on_b, &job.id, 0).await);
    assert_eq!(pdf_a, pdf_b);
    let output = ended.output.unwrap();
    assert_eq!(docconv::ids::hex(&Sha256::digest(&pdf_b)), output.sha256, "the bytes the job describes");
    assert_eq!(pdf_pages(&pdf_b), 1);
    assert_eq!(read_result(&mut on_b, &job.id, 100).await, pdf_a[100..], "reads resume at an offset");

    // A request id used on one node names the same job on the other.
    let mut first = header("page_2.docx");
    first.request_id = "cluster-once".into();
    let data = std::fs::read(fixture("page_2.docx")).unwrap();
    let once = submit(&mut on_a, first.clone(), &data).await.unwrap();
    let again = submit(&mut on_b, first, &data).await.unwrap();
    assert_eq!(once.id, again.id, "Submit is idempotent cluster-wide");
    assert_eq!(wait_end(&mut on_b, &once.id).await.state(), JobState::Succeeded);

    // A job running on one node is cancelled from the other.
    let long = submit(&mut on_a, header("long.fodt"), &big_text_document(16000)).await.unwrap();
    wait_running(&mut on_b, &long.id).await;
    let cancelled = on_b.cancel_job(docconv::proto::v1::CancelJobRequest { id: long.id.clone() }).await.unwrap();
    assert_eq!(cancelled.into_inner().state(), JobState::Cancelled);
    a.kill().unwrap();
    b.kill().unwrap();
    let _ = (a.wait(), b.wait());
}

#[tokio::test]
async fn a_killed_node_loses_no_job() {
    let nats = NatsServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, addr_a) = node(&nats, dir_a.path());
    let mut on_a = connect(addr_a).await;
    // Jobs accepted by A alone: it runs the first, the rest wait.
    let running = submit(&mut on_a, header("long.fodt"), &big_text_document(8000)).await.unwrap();
    let mut accepted = vec![running.clone()];
    for name in ["page_1.docx", "page_2.docx", "pages_3.docx"] {
        accepted.push(submit_fixture(&mut on_a, name).await);
    }
    wait_running(&mut on_a, &running.id).await;
    a.kill().unwrap();
    a.wait().unwrap();
    let killed = Instant::now();

    let (mut b, addr_b) = node(&nats, dir_b.path());
    let mut on_b = connect(addr_b).await;
    for job in &accepted {
        let ended = wait_end(&mut on_b, &job.id).await;
        assert_eq!(ended.state(), JobState::Succeeded, "{} ended as {ended:?}", job.file_name);
        let pdf = read_result(&mut on_b, &job.id, 0).await;
        assert_eq!(docconv::ids::hex(&Sha256::digest(&pdf)), ended.output.unwrap().sha256);
    }
    let moved = on_b.get_job(GetJobRequest { id: running.id.clone() }).await.unwrap().into_inner();
    assert_eq!(moved.attempts, 2, "the interrupted job ran again on the other node");
    assert!(killed.elapsed() < Duration::from_secs(120), "failover took {:?}", killed.elapsed());
    b.kill().unwrap();
    let _ = b.wait();
}
