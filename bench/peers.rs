//! The ways of converting a document that the benchmark compares, each
//! driven the way its users drive it.

use super::documents::Document;
use super::system;
use docconv::proto::v1::converter_client::ConverterClient;
use docconv::proto::v1::{
    Job, JobState, ReadResultRequest, SubmitHeader, SubmitRequest, WatchJobRequest, submit_request, watch_job_response,
};
use docconv_worker::proto::Convert;
use docconv_worker::{Outcome, StartMode, Worker, WorkerSpec};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub type Client = ConverterClient<Channel>;

pub async fn connect(addr: SocketAddr) -> Result<Client, String> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("cannot reach docconv at {addr}: {e}"))?;
    Ok(ConverterClient::new(channel).max_decoding_message_size(8 << 20))
}

/// docconv as a client sees it: Submit, WatchJob until done, ReadResult to
/// the last byte. Returns the finished job.
pub async fn docconv_convert(client: &mut Client, document: &Document) -> Result<Job, String> {
    Ok(docconv_convert_traced(client, document).await?.job)
}

/// A conversion as `docconv_convert` makes it, with how long each step
/// took as the client saw it: the job backend's own costs show here.
pub struct Traced {
    pub job: Job,
    /// The Submit call: upload, record, queue.
    pub submit: Duration,
    /// From the Submit answer to the first RUNNING state the watch
    /// delivered; none if the job was never seen running.
    pub to_running: Option<Duration>,
    /// From the end's writing (its `update_time`) to its arrival here.
    pub end_delay: Duration,
    /// ReadResult to the last byte.
    pub read: Duration,
}

pub async fn docconv_convert_traced(client: &mut Client, document: &Document) -> Result<Traced, String> {
    let started = Instant::now();
    let job = submit(client, document).await?;
    let submitted = Instant::now();
    let watched = watch(client, &job.id, |job| job.state() == JobState::Running).await?;
    let job = watched.job;
    if job.state() != JobState::Succeeded {
        return Err(format!("{}: {:?}", document.name, job.error));
    }
    let reading = Instant::now();
    let size = read_result(client, &job.id).await?;
    if size != job.output.as_ref().map_or(0, |o| o.size_bytes) {
        return Err(format!("{}: the result was cut short", document.name));
    }
    Ok(Traced {
        job,
        submit: submitted - started,
        to_running: watched.marked.map(|seen| seen.saturating_duration_since(submitted)),
        end_delay: watched.end_delay,
        read: reading.elapsed(),
    })
}

/// Submits a document in 1 MiB chunks; returns the queued job.
pub async fn submit(client: &mut Client, document: &Document) -> Result<Job, String> {
    let data = std::fs::read(&document.path).map_err(|e| e.to_string())?;
    let header = SubmitHeader { file_name: document.name.clone(), ..Default::default() };
    let mut messages = vec![SubmitRequest { payload: Some(submit_request::Payload::Header(header)) }];
    messages.extend(
        data.chunks(1 << 20).map(|c| SubmitRequest { payload: Some(submit_request::Payload::Data(c.to_vec())) }),
    );
    Ok(client.submit(tokio_stream::iter(messages)).await.map_err(|e| e.to_string())?.into_inner())
}

pub async fn watch_to_end(client: &mut Client, id: &str) -> Result<Job, String> {
    Ok(watch(client, id, |_| false).await?.job)
}

/// What one watch of a job to its end saw.
pub struct Watched {
    /// The last state: the end.
    pub job: Job,
    /// When the first state `watch` was asked to mark arrived.
    pub marked: Option<Instant>,
    /// When the end arrived.
    pub ended: Instant,
    /// From the end's writing (its `update_time`) to its arrival.
    pub end_delay: Duration,
}

/// Watches a job to its end, noting when the first state for which `mark`
/// holds arrived.
pub async fn watch(client: &mut Client, id: &str, mark: impl Fn(&Job) -> bool) -> Result<Watched, String> {
    let mut stream = client.watch_job(WatchJobRequest { id: id.into() }).await.map_err(|e| e.to_string())?.into_inner();
    let (mut last, mut marked) = (None, None);
    while let Some(message) = stream.message().await.map_err(|e| e.to_string())? {
        if let Some(watch_job_response::Event::Job(job)) = message.event {
            if marked.is_none() && mark(&job) {
                marked = Some(Instant::now());
            }
            last = Some((system::since_written(&job), Instant::now(), job));
        }
    }
    let (end_delay, ended, job) = last.ok_or("the watch ended without a state")?;
    Ok(Watched { job, marked, ended, end_delay })
}

/// Reads a result to the end; returns its size.
pub async fn read_result(client: &mut Client, id: &str) -> Result<u64, String> {
    let request = ReadResultRequest { id: id.into(), offset: 0, limit: 0 };
    let mut stream = client.read_result(request).await.map_err(|e| e.to_string())?.into_inner();
    let mut size = 0;
    while let Some(chunk) = stream.message().await.map_err(|e| e.to_string())? {
        size += chunk.data.len() as u64;
    }
    Ok(size)
}

/// The engine floor: LibreOfficeKit's load and save in a warm worker, with
/// files in memory (`/dev/shm`), without queue, gRPC or store.
pub struct Floor {
    worker: Worker,
    dir: PathBuf,
}

impl Floor {
    pub async fn start(exe: &Path, work: &Path) -> Result<Floor, String> {
        let dir = Path::new("/dev/shm").join(format!("docconv-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let spec = WorkerSpec {
            exe: exe.to_path_buf(),
            program_dir: "/usr/lib/libreoffice/program".into(),
            scratch_dir: work.join("floor"),
            start_timeout: Duration::from_secs(60),
            profile_blocks_links: true,
            start: StartMode::Exec,
        };
        let worker = Worker::start(&spec).await.map_err(|e| e.to_string())?;
        Ok(Floor { worker, dir })
    }

    pub async fn convert(&mut self, document: &Document) -> Result<Duration, String> {
        let input = self.dir.join(&document.name);
        if !input.exists() {
            std::fs::copy(&document.path, &input).map_err(|e| e.to_string())?;
        }
        let request = Convert {
            input_path: input.to_string_lossy().into_owned(),
            output_path: self.dir.join("out.pdf").to_string_lossy().into_owned(),
            format: "pdf".into(),
            ..Convert::default()
        };
        let started = Instant::now();
        match self.worker.convert(request, |_| {}).await {
            Ok(Outcome::Done) => Ok(started.elapsed()),
            Ok(Outcome::Failed(failed)) => Err(format!("{}: {}", document.name, failed.detail)),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// LibreOfficeKit with nothing of docconv around it (`docconv
/// bare-engine`): started once, then `documentLoad`, `saveAs` and
/// `destroy` per document, files in memory (/dev/shm). The true floor.
pub struct BareEngine {
    child: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
    dir: PathBuf,
}

impl BareEngine {
    pub fn start(exe: &Path, work: &Path) -> Result<BareEngine, String> {
        let dir = Path::new("/dev/shm").join(format!("docconv-bench-bare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(["bare-engine", "--program-dir", "/usr/lib/libreoffice/program", "--profile-dir"])
            .arg(work.join("bare-profile"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the bare engine: {e}"))?;
        let requests = child.stdin.take().ok_or("no stdin")?;
        let answers = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(BareEngine { child, requests, answers, dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn convert(&mut self, document: &Document) -> Result<Duration, String> {
        let input = self.dir.join(&document.name);
        if !input.exists() {
            std::fs::copy(&document.path, &input).map_err(|e| e.to_string())?;
        }
        let output = self.dir.join("out.pdf");
        let started = Instant::now();
        writeln!(self.requests, "{}\t{}", input.display(), output.display()).map_err(|e| e.to_string())?;
        self.requests.flush().map_err(|e| e.to_string())?;
        let mut answer = String::new();
        self.answers.read_line(&mut answer).map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        match answer.trim() {
            "ok" => Ok(elapsed),
            "" => Err("the bare engine stopped".into()),
            failed => Err(format!("{}: {failed}", document.name)),
        }
    }
}

impl Drop for BareEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// unoserver 3.7 (one warm soffice over UNO, documents passed in memory
/// over XML-RPC), driven by a persistent Python client; `instances` of it
/// side by side, each with its own soffice, as one would run it to use
/// more than one core.
pub struct Unoserver {
    servers: Vec<Child>,
    client: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
}

/// What a batch of conversions took: the wall time, and each document's.
pub struct BatchTimes {
    pub wall: Duration,
    pub latencies: Vec<Duration>,
}

impl Unoserver {
    pub fn start(venv: &Path, work: &Path, warm_document: &Document) -> Result<(Unoserver, Duration), String> {
        Self::start_instances(venv, work, warm_document, 1)
    }

    /// Starts `instances` unoservers and one client spreading its threads
    /// over them; returns once each has converted `warm_document`.
    pub fn start_instances(
        venv: &Path,
        work: &Path,
        warm_document: &Document,
        instances: usize,
    ) -> Result<(Unoserver, Duration), String> {
        let started = Instant::now();
        let mut servers = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..instances.max(1) {
            let (port, uno_port) = (super::system::free_port(), super::system::free_port());
            // Named by its port, unique among the unoservers running: two
            // soffices given one profile become one (the second hands its
            // work to the first and exits).
            let profile = work.join(format!("unoserver-profile-{port}"));
            let _ = std::fs::remove_dir_all(&profile);
            let server = Command::new(venv.join("bin/unoserver"))
                .args(["--interface", "127.0.0.1", "--port", &port.to_string(), "--uno-port", &uno_port.to_string()])
                .arg("--user-installation")
                .arg(&profile)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot start unoserver: {e}"))?;
            servers.push(server);
            ports.push(port.to_string());
        }
        let script = work.join("unoserver_client.py");
        std::fs::write(&script, include_str!("unoserver_client.py")).map_err(|e| e.to_string())?;
        let mut client = Command::new(venv.join("bin/python"))
            .arg(&script)
            .args(&ports)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the unoserver client: {e}"))?;
        let requests = client.stdin.take().unwrap();
        let answers = BufReader::new(client.stdout.take().unwrap());
        let mut peer = Unoserver { servers, client, requests, answers };
        // Ready once a conversion goes through each instance.
        let deadline = Instant::now() + Duration::from_secs(90);
        for instance in 0..peer.servers.len() {
            while peer.convert_on(warm_document, instance).is_err() {
                if Instant::now() > deadline {
                    return Err(format!("unoserver {} of {} never answered", instance + 1, instances.max(1)));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok((peer, started.elapsed()))
    }

    /// The unoservers, each the root of a tree holding its soffice.
    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(Child::id).collect()
    }

    fn ask(&mut self, request: serde_json::Value) -> Result<serde_json::Value, String> {
        writeln!(self.requests, "{request}").map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.answers.read_line(&mut line).map_err(|e| e.to_string())?;
        let answer: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line:?}"))?;
        match answer.get("error") {
            Some(error) => Err(error.to_string()),
            None => Ok(answer),
        }
    }

    pub fn convert(&mut self, document: &Document) -> Result<Duration, String> {
        self.convert_on(document, 0)
    }

    fn convert_on(&mut self, document: &Document, instance: usize) -> Result<Duration, String> {
        let answer = self.ask(serde_json::json!({ "op": "convert", "path": document.path, "instance": instance }))?;
        Ok(Duration::from_secs_f64(answer["ms"].as_f64().unwrap_or(0.0) / 1000.0))
    }

    /// Converts `documents` with `concurrency` clients; returns the wall time.
    pub fn batch(&mut self, documents: &[Document], concurrency: usize) -> Result<Duration, String> {
        Ok(self.batch_timed(documents, concurrency)?.wall)
    }

    /// Converts `documents` with `concurrency` clients, client `n` talking
    /// to instance `n % instances`; returns the wall time and each
    /// document's latency.
    pub fn batch_timed(&mut self, documents: &[Document], concurrency: usize) -> Result<BatchTimes, String> {
        let paths: Vec<&PathBuf> = documents.iter().map(|d| &d.path).collect();
        let answer = self.ask(serde_json::json!({ "op": "batch", "paths": paths, "concurrency": concurrency }))?;
        let latencies = answer["latencies_ms"]
            .as_array()
            .map(|l| l.iter().filter_map(|v| v.as_f64()).map(|ms| Duration::from_secs_f64(ms / 1000.0)).collect())
            .unwrap_or_default();
        Ok(BatchTimes { wall: Duration::from_secs_f64(answer["seconds"].as_f64().unwrap_or(0.0)), latencies })
    }
}

impl Drop for Unoserver {
    fn drop(&mut self) {
        let _ = self.client.kill();
        let _ = self.client.wait();
        // Each unoserver starts its soffice in its own process group.
        for server in &mut self.servers {
            if let Some(group) = rustix::process::Pid::from_raw(server.id() as i32) {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = server.wait();
        }
    }
}

/// The prototype's way: one `soffice --headless --convert-to pdf` process
/// per document, with a fresh profile.
pub fn soffice_convert(document: &Document, work: &Path, run: usize) -> Result<Duration, String> {
    let profile = work.join(format!("soffice-profile-{run}"));
    let out = work.join(format!("soffice-out-{run}"));
    let started = Instant::now();
    let status = Command::new("soffice")
        .arg(format!("-env:UserInstallation=file://{}", profile.display()))
        .args(["--headless", "--convert-to", "pdf", "--outdir"])
        .arg(&out)
        .arg(&document.path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run soffice: {e}"))?;
    let elapsed = started.elapsed();
    let produced = out.join(Path::new(&document.name).with_extension("pdf"));
    let ok = status.success() && produced.exists();
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_dir_all(&out);
    if ok { Ok(elapsed) } else { Err(format!("soffice failed on {}", document.name)) }
}
