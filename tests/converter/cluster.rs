//! Cluster mode: converters given the same NATS servers share one job
//! space. Any node answers for any job, and a node killed mid-job loses
//! nothing: its jobs go to another node once their leases run out.

use crate::support::*;
use docconv::proto::v1::{GetJobRequest, JobState};
use docconv_backend::conformance::{NatsCluster, NatsServer};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Lease time of the nodes under test, so a dead node's jobs move on quickly.
const LEASE_SECS: &str = "2";

fn node(nats: &NatsServer, data_dir: &std::path::Path) -> (Process, std::net::SocketAddr) {
    node_leasing(nats, data_dir, LEASE_SECS)
}

fn node_leasing(nats: &NatsServer, data_dir: &std::path::Path, lease_secs: &str) -> (Process, std::net::SocketAddr) {
    let (node, addr) = cluster_node(nats, data_dir, free_port(), &["--job-lease-secs", lease_secs]);
    wait_ready(addr);
    (node, addr)
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

    // Jobs submitted to both nodes are each converted once.
    let mut jobs = Vec::new();
    for name in ["page_2.docx", "pages_3.docx", "page_1.docx", "page_2.docx"] {
        jobs.push(submit_fixture(&mut on_a, name).await);
        jobs.push(submit_fixture(&mut on_b, name).await);
    }
    for job in &jobs {
        let ended = wait_end(&mut on_b, &job.id).await;
        assert_eq!((ended.state(), ended.attempts), (JobState::Succeeded, 1), "{ended:?}");
    }

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
    a.kill();
    b.kill();
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
    a.kill();
    let killed = Instant::now();

    let (_b, addr_b) = node(&nats, dir_b.path());
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
}

/// A GET over a fresh HTTP/1.1 connection: the status and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let reply = http(addr, "GET", path, &[], b"").await;
    (reply.status, reply.body)
}

#[tokio::test]
async fn a_gateway_in_front_of_two_nodes_keeps_serving_when_one_dies() {
    let nats = NatsServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, addr_a) = node(&nats, dir_a.path());
    let (b, addr_b) = node(&nats, dir_b.path());
    let (_gateway, http) = gateway_process(&[addr_a, addr_b]).await;
    let mut on_a = connect(addr_a).await;
    let (job, pdf) = convert(&mut on_a, "page_1.docx").await;
    let download = format!("/jobs/{}/download", job.id);
    assert_eq!(http_get(http, &download).await, (200, pdf.clone()));
    a.kill();
    // Every request after the death is answered, by the node left.
    for _ in 0..5 {
        let (status, body) = http_get(http, &download).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, pdf);
        let (status, page) = http_get(http, &format!("/jobs/{}", job.id)).await;
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&page).contains("card--succeeded"), "the page shows the job's state");
    }
    drop(b);
}

#[test]
fn a_node_that_nats_refuses_stops_at_once_and_never_shows_the_password() {
    let nats = NatsServer::start_with_args(&["--user", "docconv", "--pass", "s3cret"].map(String::from));
    let wrong = nats.url.replace("nats://", "nats://docconv:guess@");
    let dir = tempfile::tempdir().unwrap();
    let node = std::process::Command::new(docconv_exe())
        .args(["converter", "--listen", &format!("127.0.0.1:{}", free_port()), "--nats-url", &wrong])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A node that cannot reach NATS keeps trying for a minute; one that
    // NATS refuses has nothing to wait for.
    let output = exit_within(node, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("refused this node"), "says why: {stderr}");
    assert!(!stderr.contains("guess"), "the password is not shown: {stderr}");
}

#[tokio::test]
async fn a_stopping_node_hands_its_running_job_to_another_at_once() {
    let nats = NatsServer::start();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // Leases far longer than the test may take: only a hand-back moves the job.
    let mut nodes = [node_leasing(&nats, dirs[0].path(), "600"), node_leasing(&nats, dirs[1].path(), "600")];
    let mut client = connect(nodes[0].1).await;
    let long = submit(&mut client, header("long.fodt"), &big_text_document(16000)).await.unwrap();
    wait_running(&mut client, &long.id).await;
    // The node converting it has the job's folder, made as it fetches the
    // input, which may be a moment after the job shows as running.
    let has_folder = |runner: usize| dirs[runner].path().join("jobs").join(&long.id).exists();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !has_folder(0) && !has_folder(1) {
        assert!(Instant::now() < deadline, "neither node has the running job's folder");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runner = usize::from(!has_folder(0));
    let pid = rustix::process::Pid::from_raw(nodes[runner].0.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let stopped = Instant::now();
    let _ = nodes[runner].0.0.wait();
    let mut other = connect(nodes[1 - runner].1).await;
    let ended = wait_end(&mut other, &long.id).await;
    assert_eq!((ended.state(), ended.attempts), (JobState::Succeeded, 2), "it ran again on the other node: {ended:?}");
    assert!(stopped.elapsed() < Duration::from_secs(120), "it moved on long before its lease would run out");
    nodes[runner].0.kill();
}

#[tokio::test]
async fn restarting_every_node_resumes_every_job() {
    let nats = NatsServer::start();
    let lease = ["--job-lease-secs", LEASE_SECS];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, addr_a) = cluster_node(&nats, dir_a.path(), free_port(), &lease);
    let (mut b, addr_b) = cluster_node(&nats, dir_b.path(), free_port(), &lease);
    wait_ready(addr_a);
    wait_ready(addr_b);
    let mut clients = [connect(addr_a).await, connect(addr_b).await];
    // Two long jobs first, one for each node's one worker; the rest wait
    // behind them.
    let mut accepted = Vec::new();
    for client in &mut clients {
        accepted.push(submit(client, header("long.fodt"), &big_text_document(16000)).await.unwrap());
    }
    let names = ["page_1.docx", "page_2.docx", "pages_3.docx", "page_1.docx"];
    for (i, name) in names.iter().enumerate() {
        accepted.push(submit_fixture(&mut clients[i % 2], name).await);
    }
    for job in &accepted[..2] {
        wait_running(&mut clients[0], &job.id).await;
    }
    let mut before = Vec::new();
    for job in &accepted {
        before.push(clients[1].get_job(GetJobRequest { id: job.id.clone() }).await.unwrap().into_inner().state());
    }
    assert_eq!(before[..2], [JobState::Running; 2], "both nodes were converting");
    assert!(before[2..].iter().all(|&s| s == JobState::Queued), "the rest were waiting: {before:?}");
    // Both die at once, as a power cut would take them.
    a.kill();
    b.kill();

    // Fresh nodes with nothing of their own: every job is in NATS, the
    // running ones handed out again as their leases run out.
    let (dir_c, dir_d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_c, addr_c) = cluster_node(&nats, dir_c.path(), free_port(), &lease);
    let (_d, addr_d) = cluster_node(&nats, dir_d.path(), free_port(), &lease);
    wait_ready(addr_c);
    wait_ready(addr_d);
    let mut clients = [connect(addr_c).await, connect(addr_d).await];
    for (i, job) in accepted.iter().enumerate() {
        let ended = tokio::time::timeout(Duration::from_secs(300), wait_end(&mut clients[i % 2], &job.id))
            .await
            .unwrap_or_else(|_| panic!("{} did not end within five minutes", job.file_name));
        assert_eq!(ended.state(), JobState::Succeeded, "{} ended as {ended:?}", job.file_name);
        if i < 2 {
            assert!(ended.attempts >= 2, "the interrupted job ran again: {ended:?}");
        }
        let output = ended.output.unwrap();
        let pdf = read_result(&mut clients[(i + 1) % 2], &job.id, 0).await;
        assert!(pdf.starts_with(b"%PDF-"), "{} gave no PDF", job.file_name);
        assert_eq!(docconv::ids::hex(&Sha256::digest(&pdf)), output.sha256, "the bytes the job describes");
        assert_eq!(pdf_pages(&pdf), output.page_count, "{} is whole", job.file_name);
        assert_eq!(read_result(&mut clients[i % 2], &job.id, 0).await, pdf, "both nodes serve the same bytes");
    }
}

#[tokio::test]
async fn losing_one_nats_server_of_three_loses_no_job() {
    let mut nats = NatsCluster::start(3);
    let urls = nats.urls();
    // Leases outlast a NATS leader election on a busy machine, as the
    // default's do: a job is not handed out again while its node is alive.
    let flags = ["--nats-url", urls.as_str(), "--nats-replicas", "3", "--job-lease-secs", "10"];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (child_a, addr_a) = start_process_with(dir_a.path(), free_port(), &flags);
    let (child_b, addr_b) = start_process_with(dir_b.path(), free_port(), &flags);
    let (_a, _b) = (Process(child_a), Process(child_b));
    wait_ready(addr_a);
    wait_ready(addr_b);
    let mut clients = [connect(addr_a).await, connect(addr_b).await];
    // A long job first, so that the loss comes mid-conversion.
    let mut accepted = vec![submit(&mut clients[0], header("long.fodt"), &big_text_document(8000)).await.unwrap()];
    let names = ["page_1.docx", "page_2.docx", "pages_3.docx", "page_1.docx", "page_2.docx"];
    for (i, name) in names.iter().enumerate() {
        accepted.push(submit_fixture(&mut clients[(i + 1) % 2], name).await);
    }
    wait_running(&mut clients[0], &accepted[0].id).await;
    nats.servers[0].kill();
    for (i, job) in accepted.iter().enumerate() {
        let ended = ended_despite_failover(&mut clients[i % 2], &job.id).await;
        assert_eq!(ended.state(), JobState::Succeeded, "{} ended as {ended:?}", job.file_name);
        let pdf = read_result(&mut clients[(i + 1) % 2], &job.id, 0).await;
        assert_eq!(docconv::ids::hex(&Sha256::digest(&pdf)), ended.output.unwrap().sha256, "one result, whole");
    }
}

/// The job's end, asked until it comes, as a client should while a NATS
/// cluster fails over: UNAVAILABLE means "try again shortly".
async fn ended_despite_failover(client: &mut Client, id: &str) -> docconv::proto::v1::Job {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match client.get_job(GetJobRequest { id: id.to_owned() }).await {
            Ok(job) if is_ended(job.get_ref()) => return job.into_inner(),
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::Unavailable => {}
            Err(status) => panic!("job {id}: {status}"),
        }
        assert!(Instant::now() < deadline, "job {id} did not end within two minutes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
