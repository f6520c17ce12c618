//! Faults around uploads and the disk: nothing accepted is lost, nothing
//! refused or abandoned is left behind, and a full disk is a clear,
//! temporary refusal.

use crate::reliability::{Case, Leftovers, files_under};
use crate::support::*;
use docconv::proto::v1::{GetJobRequest, JobState, SubmitRequest, submit_request::Payload};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

/// A Submit call whose stream stays open until `sender` is dropped.
struct OpenUpload {
    sender: mpsc::Sender<SubmitRequest>,
    call: tokio::task::JoinHandle<Result<docconv::proto::v1::Job, tonic::Status>>,
}

/// Starts an upload of `name` and sends its first `bytes` bytes, then
/// leaves the stream open.
async fn open_upload(client: &Client, name: &str, bytes: usize) -> OpenUpload {
    let (sender, receiver) = mpsc::channel(4);
    let mut client = client.clone();
    let call = tokio::spawn(async move { client.submit(ReceiverStream::new(receiver)).await.map(|r| r.into_inner()) });
    sender.send(SubmitRequest { payload: Some(Payload::Header(header(name))) }).await.unwrap();
    sender.send(SubmitRequest { payload: Some(Payload::Data(vec![b'x'; bytes])) }).await.unwrap();
    OpenUpload { sender, call }
}

/// The job directories under a converter's data directory.
fn job_dirs(data_dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data_dir.join("jobs")) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits until `data_dir` holds exactly `expected` job directories.
async fn wait_job_dirs(data_dir: &Path, expected: usize, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dirs = job_dirs(data_dir);
        if dirs.len() == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{why}: {dirs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_upload_the_client_abandons_leaves_nothing() {
    let mut case = Case::fault("abandoned upload", "client gone after 64 KiB");
    let server = Server::start(|_| {});
    let client = server.client().await;
    let upload = open_upload(&client, "abandoned.txt", 64 * 1024).await;
    wait_job_dirs(server.data_dir.path(), 1, "the upload did not start").await;
    // The client goes away mid-stream.
    case.tried();
    let gone = Instant::now();
    upload.call.abort();
    drop(upload.sender);
    wait_job_dirs(server.data_dir.path(), 0, "the abandoned upload was left on disk").await;
    case.recovered(gone.elapsed(), "client gone → upload removed");
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn a_refused_upload_leaves_nothing() {
    let mut case = Case::fault("refused upload", "over the size limit; checksum mismatch");
    let server = Server::start(|c| c.max_upload_mib = 1);
    let mut client = server.client().await;
    let status = case.submit(submit(&mut client, header("big.txt"), &vec![b'a'; 2 << 20]).await).unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let declared = docconv::proto::v1::SubmitHeader { sha256: "0".repeat(64), ..header("bad.txt") };
    let status = case.submit(submit(&mut client, declared, b"some text").await).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let refused = Instant::now();
    wait_job_dirs(server.data_dir.path(), 0, "a refused upload was left on disk").await;
    case.recovered(refused.elapsed(), "last refusal → nothing on disk");
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn uploads_in_progress_hold_no_place_in_the_queue() {
    let mut case = Case::fault("uploads in progress", "3 slow uploads, queue of 1");
    let server = Server::start(|c| c.queue_capacity = 1);
    let client = server.client().await;
    // Slow uploads, more than the queue holds, all still streaming.
    let slow = [
        open_upload(&client, "slow-1.txt", 1024).await,
        open_upload(&client, "slow-2.txt", 1024).await,
        open_upload(&client, "slow-3.txt", 1024).await,
    ];
    let mut client = server.client().await;
    let job = case.submit(submit(&mut client, header("note.txt"), b"A complete upload gets its place.").await).unwrap();
    assert_eq!(wait_end(&mut client, &job.id).await.state(), JobState::Succeeded);
    // The slow clients give up; what they sent must not stay.
    for upload in slow {
        case.tried();
        upload.call.abort();
    }
    case.finish_on(&server).await.assert_clean();
}

#[tokio::test]
async fn a_converter_killed_mid_upload_sweeps_the_partial_file_at_start() {
    let mut case = Case::fault("converter killed mid-upload", "killed after 256 KiB, restarted");
    let data_dir = tempfile::tempdir().unwrap();
    let (mut first, addr) = start_process(data_dir.path(), free_port());
    wait_ready(addr);
    let client = connect(addr).await;
    let _upload = open_upload(&client, "cut-off.txt", 256 * 1024).await;
    case.tried();
    wait_job_dirs(data_dir.path(), 1, "the upload did not start").await;
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(job_dirs(data_dir.path()).len(), 1, "the partial upload is on disk after the kill");

    let restarted = Instant::now();
    let (mut second, addr) = start_process(data_dir.path(), free_port());
    wait_ready(addr);
    case.recovered(restarted.elapsed(), "restart → SERVING");
    assert_eq!(job_dirs(data_dir.path()).len(), 0, "the partial upload survived the restart");
    let outcome = case.finish(&connect(addr).await, data_dir.path()).await;
    second.kill().unwrap();
    second.wait().unwrap();
    outcome.assert_clean();
}

#[tokio::test]
async fn a_lock_file_left_beside_a_job_does_not_stop_its_rerun() {
    // A converter killed while LibreOffice wrote a result left its lock
    // file beside the output; the job runs again at the next start.
    let mut case = Case::fault("stale lock file", "lock files beside 2 unfinished jobs, restarted");
    let data_dir = tempfile::tempdir().unwrap();
    let (mut first, addr) = start_process(data_dir.path(), free_port());
    wait_ready(addr);
    let mut client = connect(addr).await;
    let long = case.submit(submit(&mut client, header("long.fodt"), &big_text_document(16000)).await).unwrap();
    let job = submit_fixture(&mut client, "page_1.docx").await;
    case.accepted(&job.id);
    first.kill().unwrap();
    first.wait().unwrap();
    for id in [&long.id, &job.id] {
        let dir = data_dir.path().join("jobs").join(id);
        for name in [".~lock.output.pdf#", ".~lock.input.docx#", ".~lock.input.fodt#"] {
            std::fs::write(dir.join(name), ",someone,host,29.11.2026 01:00,file:///nowhere;").unwrap();
        }
    }

    let restarted = Instant::now();
    let (mut second, addr) = start_process(data_dir.path(), free_port());
    wait_ready(addr);
    let mut client = connect(addr).await;
    let started = Instant::now();
    for id in [&long.id, &job.id] {
        let done = wait_end(&mut client, id).await;
        assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    }
    case.recovered(restarted.elapsed(), "restart → both jobs ended");
    // Far from the 60 s deadline a lock would have held it to.
    assert!(started.elapsed() < Duration::from_secs(40), "took {:?}", started.elapsed());
    // The planted lock files are files of recorded jobs, which go with
    // them; they are not counted as left behind.
    let outcome = case.finish(&client, data_dir.path()).await;
    second.kill().unwrap();
    second.wait().unwrap();
    outcome.assert_clean();
}

#[tokio::test]
async fn an_oversized_job_id_is_not_echoed() {
    let mut case = Case::fault("oversized job id", "GetJob with a 10 KiB id");
    let mut client = shared().client().await;
    let id = "f".repeat(10 * 1024);
    case.tried();
    let status = client.get_job(GetJobRequest { id }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().len() < 200, "{} bytes of message", status.message().len());
    case.figure("message_bytes", status.message().len());
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn bidirectional_controls_are_dropped_from_file_names() {
    let mut case = Case::fault("bidirectional controls in names", "U+202E in the file name");
    let mut client = shared().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = case.submit(submit(&mut client, header("invoice\u{202E}fdp.docx"), &data).await).unwrap();
    assert_eq!(job.file_name, "invoicefdp.docx");
    let done = wait_end(&mut client, &job.id).await;
    assert_eq!(done.output.unwrap().file_name, "invoicefdp.pdf");
    case.finish_on(shared()).await.assert_clean();
}

/// A small tmpfs, unmounted on drop. Mounting needs root, which the test
/// suite has where it runs (CI, and `scripts/test` as root); elsewhere the
/// disk-full test says so and does nothing.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { dir })
    }

    /// Fills the disk with a file of its own; returns the file.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // Whatever is left, smaller than a block.
        while file.write_all(&[0]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

async fn wait_health(addr: std::net::SocketAddr, status: i32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(addr).await != Some(status) {
        assert!(Instant::now() < deadline, "health never became {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_full_disk_refuses_clearly_accepts_nothing_truncated_and_heals() {
    let Some(disk) = SmallDisk::mount(160) else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let mut case = Case::fault("full disk", "160 MiB tmpfs filled, then freed");
    // No reserve, so uploads really reach the full disk.
    let server = Server::start_in(disk.dir.path(), |c| c.min_free_disk_mib = 0);
    let mut client = server.client().await;
    let filler = disk.fill();

    // Nothing free: refused before any data is taken, and health tells.
    let small = std::fs::read(fixture("page_1.docx")).unwrap();
    let large = vec![b'a'; 3 << 20];
    for (name, data) in [("small.docx", &small), ("large.txt", &large)] {
        let status = case.submit(submit(&mut client, header(name), data).await).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{name}: {status:?}");
        assert!(status.message().contains("out of disk space"), "{name}: {}", status.message());
    }
    wait_health(server.addr, 2).await;

    // A little room: the upload starts, and the disk fills under it. The
    // write error must reach the client, not a job with a cut input.
    let room = std::fs::metadata(&filler).unwrap().len() - 64 * 1024;
    std::fs::OpenOptions::new().write(true).open(&filler).unwrap().set_len(room).unwrap();
    let status = case.submit(submit(&mut client, header("large.txt"), &large).await).unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("out of disk space"), "{}", status.message());
    wait_job_dirs(server.data_dir.path(), 0, "a refused upload was left on the full disk").await;

    std::fs::remove_file(filler).unwrap();
    let freed = Instant::now();
    wait_health(server.addr, 1).await;
    case.recovered(freed.elapsed(), "space freed → SERVING");
    let job = case.submit(submit(&mut client, header("small.docx"), &small).await).unwrap();
    let done = wait_end(&mut client, &job.id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    case.finish_on(&server).await.assert_clean();
}

/// Runs `docconv converter` on `data_dir` expecting it to refuse to start;
/// returns what it printed. The case is told how long the refusal took.
fn refused_start(data_dir: &Path, case: &mut Case) -> String {
    let started = Instant::now();
    let mut child = std::process::Command::new(docconv_exe())
        .args(["converter", "--listen", &format!("127.0.0.1:{}", free_port()), "--workers", "1"])
        .arg("--data-dir")
        .arg(data_dir)
        .env("DOCCONV_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the converter started on a damaged store");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    case.recovered(started.elapsed(), "start → refused, saying why");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}

/// What a refused start did to a data directory that held `ids`: the jobs
/// whose files are gone (lost), and the files it left that were not there
/// before (`before`, from `files_under`).
fn after_refused_start(data_dir: &Path, ids: &[String], before: &[(PathBuf, u64)]) -> (Vec<String>, Leftovers) {
    let lost = ids.iter().filter(|id| !data_dir.join("jobs").join(id).exists()).cloned().collect();
    let new = files_under(data_dir).into_iter().filter(|(path, _)| !before.iter().any(|(old, _)| old == path));
    (lost, Leftovers(new.collect()))
}

/// A data directory with a few finished jobs, its converter stopped.
async fn data_dir_with_jobs(case: &mut Case) -> (tempfile::TempDir, Vec<String>) {
    let data_dir = tempfile::tempdir().unwrap();
    let (mut process, addr) = start_process(data_dir.path(), free_port());
    wait_ready(addr);
    let mut client = connect(addr).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = convert(&mut client, "page_1.docx").await.0.id;
        case.accepted(&id);
        ids.push(id);
    }
    process.kill().unwrap();
    process.wait().unwrap();
    (data_dir, ids)
}

#[tokio::test]
async fn an_emptied_job_store_stops_the_start_and_keeps_the_jobs_files() {
    let mut case = Case::fault("damaged job store", "emptied jobs.redb, 3 jobs");
    let (data_dir, ids) = data_dir_with_jobs(&mut case).await;
    let store = data_dir.path().join("jobs.redb");
    std::fs::File::create(&store).unwrap();
    let before = files_under(data_dir.path());
    let said = refused_start(data_dir.path(), &mut case);
    assert!(said.contains("is damaged") && said.contains("move it aside"), "{said}");
    assert!(said.contains(&store.display().to_string()), "{said}");
    let (lost, leftovers) = after_refused_start(data_dir.path(), &ids, &before);
    assert_eq!(std::fs::metadata(&store).unwrap().len(), 0, "the store was replaced");
    // Lost here: a job whose files the refused start removed.
    case.finish_with(lost, leftovers).assert_clean();
}

#[tokio::test]
async fn a_garbled_job_store_stops_the_start_with_a_clear_message() {
    let mut case = Case::fault("damaged job store", "garbled jobs.redb, 3 jobs");
    let (data_dir, ids) = data_dir_with_jobs(&mut case).await;
    let store = data_dir.path().join("jobs.redb");
    let mut bytes = std::fs::read(&store).unwrap();
    // Noise over every 4 KiB page after the header.
    let mut seed = 0x2545_f491_u32;
    for byte in bytes.iter_mut().skip(4096) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        *byte = seed as u8;
    }
    std::fs::write(&store, bytes).unwrap();
    let before = files_under(data_dir.path());
    let said = refused_start(data_dir.path(), &mut case);
    assert!(said.contains("is damaged"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    let (lost, leftovers) = after_refused_start(data_dir.path(), &ids, &before);
    case.finish_with(lost, leftovers).assert_clean();
}
